"""Decode speed of llama.cpp (llama-cpp-python, plain ggml-cpu kernels: repacking off, as AMX dies in
this VM) on the real Gemma 3 270M GGUF: 10-token prompt, 64 greedy tokens, 2 threads, 3 runs.
Run: OMP_WAIT_POLICY=PASSIVE python3 bench/llamacpp_270m_decode.py (BENCHMARKS.md)."""
import time, sys, os
import llama_cpp
from llama_cpp import Llama
import llama_cpp.llama_cpp as LL
_orig = LL.llama_model_default_params
def model_params():
    p = _orig(); p.use_extra_bufts = False; return p
LL.llama_model_default_params = model_params
llm = Llama("models/gemma3-270m/gemma-3-270m-q4_k_m.gguf", n_ctx=512, n_threads=2, n_threads_batch=2, verbose=False)
toks = llm.tokenize(b"The three most common causes of chest pain are", add_bos=True)
for r in range(3):
    llm.reset(); t0=time.time(); llm.eval(toks); t1=time.time()
    n=0
    for i in range(64):
        t = llm.sample(temp=0.0, top_k=1, repeat_penalty=1.0); llm.eval([t]); n+=1
    t2=time.time()
    print(f"llama.cpp prompt {len(toks)} tok {len(toks)/(t1-t0):.1f} tok/s, decode {n/(t2-t1):.1f} tok/s")
