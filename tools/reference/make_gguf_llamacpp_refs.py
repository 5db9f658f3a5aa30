"""llama.cpp's own logits for the random-weight GGUF parity fixtures.

gemma.c's GEMMA_NUMERICS_LLAMACPP (the default for GGUF files) claims to
compute what llama.cpp computes, bit for bit.  The real-model test checks that
on Gemma 3 270M; this makes the same check cheap and model-free: for every
GGUF fixture in tests/fixtures/gemma3/ (make_gguf_model_fixtures.py) it runs
llama-cpp-python on the fixture's model.gguf and writes

  ref_llamacpp_batch.f32    logits [n_tokens, vocab] float32 LE, all tokens
                            evaluated in one batch (llama.cpp's prompt path:
                            tinyBLAS attention, the many-row integer GEMM)
  ref_llamacpp_stream.f32   the first PREFIX tokens in one batch, then one
                            token per llama_decode (its generation path)

and records the schedule and versions under "llamacpp" in fixture.json.
test_parity compares them exactly.

llama.cpp will not load a model without a vocabulary, and the fixtures have
none (gemma.c's parity tests need none), so the model is first copied to a
temporary file with a placeholder SentencePiece-style vocabulary added; the
tensors and every other key are copied unchanged.  Settings as in
make_real_270m_refs.py: f16 K/V, no flash attention, no CPU weight repacking
(its AMX path dies with SIGILL in VMs without AMX state), 2 threads,
OMP_WAIT_POLICY=PASSIVE.

    python3 tools/reference/make_gguf_llamacpp_refs.py
"""
import json
import os
import sys
import tempfile

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import gguf  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_real_270m_refs import disable_cpu_repacking  # noqa: E402

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "gemma3")
PREFIX = 8


def with_vocab(src, dst, vocab):
    """Copy src to dst, adding tokenizer.ggml.* for `vocab` placeholder tokens."""
    r = gguf.GGUFReader(src)
    arch = r.fields["general.architecture"].contents()
    w = gguf.GGUFWriter(dst, arch)
    for name, field in r.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture":
            continue
        vtype = field.types[0]
        sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        w.add_key_value(name, field.contents(), vtype, sub_type=sub)
    tokens = ["<pad>", "<eos>", "<bos>", "<unk>"] + ["<t%d>" % i for i in range(4, vocab)]
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores([0.0] * vocab)
    w.add_token_types([3, 3, 3, 2] + [1] * (vocab - 4))
    w.add_bos_token_id(2)
    w.add_eos_token_id(1)
    w.add_unk_token_id(3)
    w.add_pad_token_id(0)
    for t in r.tensors:   # t.data: elements for float types, bytes per row for block types
        w.add_tensor(t.name, np.asarray(t.data), raw_dtype=t.tensor_type)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def run(path, tokens, vocab):
    import llama_cpp
    llm = llama_cpp.Llama(path, n_ctx=256, n_batch=256, n_ubatch=256, n_threads=2, n_threads_batch=2,
                          logits_all=True, verbose=False, type_k=1, type_v=1, flash_attn=False)

    def clear():
        llm.reset()
        llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(llm._ctx.ctx), True)

    clear()
    llm.eval(tokens)
    batch = np.array(llm.scores[:len(tokens)], dtype=np.float32)
    clear()
    llm.eval(tokens[:PREFIX])
    for t in tokens[PREFIX:]:
        llm.eval([t])
    stream = np.array(llm.scores[:len(tokens)], dtype=np.float32)
    assert batch.shape == (len(tokens), vocab), batch.shape
    return batch, stream, llama_cpp.__version__


def main():
    disable_cpu_repacking()
    names = [n.strip() for n in open(os.path.join(FIXTURES, "MANIFEST")) if n.strip().startswith("gguf-")]
    for name in names:
        d = os.path.join(FIXTURES, name)
        meta_path = os.path.join(d, "fixture.json")
        meta = json.load(open(meta_path))
        with tempfile.TemporaryDirectory() as tmp:
            tmp_model = os.path.join(tmp, "model.gguf")
            with_vocab(os.path.join(d, "model.gguf"), tmp_model, meta["vocab_size"])
            batch, stream, version = run(tmp_model, meta["tokens"], meta["vocab_size"])
        batch.astype("<f4").tofile(os.path.join(d, "ref_llamacpp_batch.f32"))
        stream.astype("<f4").tofile(os.path.join(d, "ref_llamacpp_stream.f32"))
        ref = np.fromfile(os.path.join(d, "ref_hf.f32"), dtype="<f4").reshape(batch.shape)
        meta["llamacpp"] = dict(
            tool="llama-cpp-python %s (pip, default CMake build: GGML_NATIVE CPU backend)" % version,
            settings="n_ctx 256, n_batch = n_ubatch 256, 2 threads, f16 K/V, flash attention off, "
                     "use_extra_bufts off, logits_all; placeholder vocabulary added to a copy of model.gguf",
            batch="ref_llamacpp_batch.f32: all tokens in one llama_decode",
            stream="ref_llamacpp_stream.f32: the first %d tokens in one llama_decode, then one per call" % PREFIX,
            stream_prefix=PREFIX,
            max_rel_vs_exact=float(np.abs(batch - ref).max() / np.abs(ref).max()))
        with open(meta_path, "w") as f:
            json.dump(meta, f, indent=1)
        print(f"{name}: llama.cpp vs exact float64 max|d|/max|ref| {meta['llamacpp']['max_rel_vs_exact']:.3e}, "
              f"batch vs stream max|d| {float(np.abs(batch - stream).max()):.3e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
