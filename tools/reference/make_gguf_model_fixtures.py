"""Tiny random-weight Gemma 3 GGUF checkpoints with reference logits.

The GGUF model path of gemma.c (src/io/gguf_model.c) must compute what the
float model computes on the same, dequantized weights, so each fixture is:

  tests/fixtures/gemma3/<name>/model.gguf    written by gguf-py's GGUFWriter
      the way llama.cpp's convert_hf_to_gguf.py writes Gemma 3: architecture
      gemma3, its metadata keys, blk.N.* tensor names, ggml shape order, every
      RMSNorm weight stored as 1+w; a mix of block types (Q4_0, Q4_1, Q5_0,
      Q5_1, Q8_0, Q4_K, Q5_K, Q6_K, F16, BF16, F32)
  ref_hf.f32      logits of every position, float32 LE [n_tokens, vocab], of
      the independent float64 numpy forward pass (numpy_gemma3.py, which
      agrees with transformers 5.17 to ~1e-6 on every fixture) run on the
      weights exactly as gguf.quants.dequantize reads them back
  fixture.json    as for the other parity fixtures

Weights that gguf-py can quantize (Q4_0 .. Q8_0, F16, BF16) are quantized from
N(0, 1/in) data; K-quant tensors (gguf-py only dequantizes those) are random
block bytes whose f16 super-block scales are set so the values have about the
same spread and no large mean.

    python3 tools/reference/make_gguf_model_fixtures.py          # write fixtures
    python3 tools/reference/make_gguf_model_fixtures.py llamacpp # + compare llama.cpp (llama-cpp-python)

The llamacpp step runs llama.cpp on each model.gguf (all-position logits) and
prints max|llama.cpp - ref| / max|ref| and top-1 agreement: it shows that
these files mean to llama.cpp what they mean to us (norms, names, rope,
window).  llama.cpp quantizes activations to 8 bits inside its dot products,
so it is judged loosely there and not used as the committed reference.
"""
import json
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize, quantize

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy_gemma3 as npg  # noqa: E402

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
OUT = os.path.join(ROOT, "tests", "fixtures", "gemma3")

SMALL_TYPES = [T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0, T.F16, T.BF16, T.F32]   # rows of 32k values
K_TYPES = [T.Q4_K, T.Q5_K, T.Q6_K]                                          # rows of 256k values

FIXTURES = [
    dict(name="gguf-mixed", seed=4101, hidden=128, inter=256, layers=6, heads=4, kv=2, head_dim=64, vocab=300,
         window=5, n_tokens=40, embed=T.Q8_0, output=None, rope_base=1e6, rope_linear=None, pattern_key=None),
    dict(name="gguf-kquant-untied", seed=4102, hidden=256, inter=256, layers=6, heads=2, kv=1, head_dim=128,
         vocab=264, window=6, n_tokens=36, embed=T.Q4_K, output=T.Q6_K, rope_base=2e5, rope_linear=4.0,
         pattern_key=None),
]


# ----------------------------------------------------------------- weights

def kquant_blocks(rng, qtype, rows, cols, std):
    """Random K-quant rows whose values have about the given std and ~zero mean."""
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    n_blocks = rows * cols // block
    raw = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)
    if qtype == T.Q4_K:      # w = d*sc*q - dmin*m, q in [0,15], sc,m in [0,63]
        d = std / 255.0
        fields = {0: d, 2: d * 7.5}
    elif qtype == T.Q5_K:    # q in [0,31]
        d = std / 564.0
        fields = {0: d, 2: d * 15.5}
    else:                    # Q6_K: w = d*sc*(q-32), sc int8
        d = std / 1369.0
        fields = {208: d}
    for off, val in fields.items():
        jitter = rng.uniform(0.7, 1.3, size=n_blocks)
        h = (val * jitter).astype(np.float16).view(np.uint16)
        raw[:, off:off + 2] = h.view(np.uint8).reshape(n_blocks, 2)
    return raw.reshape(rows, cols // block * size)


def make_tensor(rng, qtype, rows, cols, std):
    """(stored array for GGUFWriter, dequantized float32 [rows, cols])."""
    if qtype in K_TYPES:
        stored = kquant_blocks(rng, qtype, rows, cols, std)
    else:
        w = (rng.standard_normal((rows, cols)) * std).astype(np.float32)
        stored = w if qtype == T.F32 else quantize(w, qtype)
    deq = dequantize(stored, qtype).astype(np.float32).reshape(rows, cols)
    return stored, deq


def build(fx):
    rng = np.random.default_rng(fx["seed"])
    D, F, L, H, KV, Dh, V = (fx[k] for k in ("hidden", "inter", "layers", "heads", "kv", "head_dim", "vocab"))
    path = os.path.join(OUT, fx["name"])
    os.makedirs(path, exist_ok=True)
    w = gguf.GGUFWriter(os.path.join(path, "model.gguf"), "gemma3")
    w.add_name("gemma.c parity fixture " + fx["name"])
    w.add_context_length(4096)
    w.add_embedding_length(D)
    w.add_block_count(L)
    w.add_feed_forward_length(F)
    w.add_head_count(H)
    w.add_head_count_kv(KV)
    w.add_key_length(Dh)
    w.add_value_length(Dh)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_rope_freq_base(fx["rope_base"])
    w.add_sliding_window(fx["window"])
    if fx["rope_linear"]:
        w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        w.add_rope_scaling_factor(fx["rope_linear"])
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q4_K_M)

    ref = {}   # HF names -> float32 (norms as w, i.e. stored - 1)
    types = {}

    def add(gguf_name, hf_name, qtype, rows, cols, std):
        stored, deq = make_tensor(rng, qtype, rows, cols, std)
        w.add_tensor(gguf_name, stored, raw_dtype=qtype)
        ref[hf_name] = deq
        types[gguf_name] = qtype.name

    def add_norm(gguf_name, hf_name, n, lo, hi):
        wv = rng.uniform(lo, hi, size=n).astype(np.float32)
        stored = (wv + np.float32(1.0)).astype(np.float32)     # the converter's +1
        w.add_tensor(gguf_name, stored, raw_dtype=T.F32)
        ref[hf_name] = stored - np.float32(1.0)
        types[gguf_name] = "F32"

    add("token_embd.weight", "model.embed_tokens.weight", fx["embed"], V, D, 1.0 / np.sqrt(D))
    if fx["output"] is not None:
        add("output.weight", "lm_head.weight", fx["output"], V, D, 1.0 / np.sqrt(D))
    k = 0
    for l in range(L):
        b, h = f"blk.{l}.", f"model.layers.{l}."
        mats = [("attn_q", "self_attn.q_proj", H * Dh, D), ("attn_k", "self_attn.k_proj", KV * Dh, D),
                ("attn_v", "self_attn.v_proj", KV * Dh, D), ("attn_output", "self_attn.o_proj", D, H * Dh),
                ("ffn_gate", "mlp.gate_proj", F, D), ("ffn_up", "mlp.up_proj", F, D),
                ("ffn_down", "mlp.down_proj", D, F)]
        for g_name, h_name, rows, cols in mats:
            if cols % 256 == 0 and (k % 2 == 0 or cols % 32):
                qtype = K_TYPES[(k // 2) % len(K_TYPES)]
            else:
                qtype = SMALL_TYPES[k % len(SMALL_TYPES)]
            add(b + g_name + ".weight", h + h_name + ".weight", qtype, rows, cols, 1.0 / np.sqrt(cols))
            k += 1
        for g_name, h_name, n, lo, hi in [("attn_norm", "input_layernorm", D, -0.5, 0.5),
                                          ("post_attention_norm", "post_attention_layernorm", D, -0.5, 0.5),
                                          ("ffn_norm", "pre_feedforward_layernorm", D, -0.5, 0.5),
                                          ("post_ffw_norm", "post_feedforward_layernorm", D, -0.5, 0.5),
                                          ("attn_q_norm", "self_attn.q_norm", Dh, -0.5, 1.5),
                                          ("attn_k_norm", "self_attn.k_norm", Dh, -0.5, 1.5)]:
            add_norm(b + g_name + ".weight", h + h_name + ".weight", n, lo, hi)
    add_norm("output_norm.weight", "model.norm.weight", D, 2.0, 4.0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    # the float model these bytes mean (llama.cpp's hard-coded Gemma 3 choices spelled out)
    config = dict(model_type="gemma3_text", vocab_size=V, hidden_size=D, intermediate_size=F,
                  num_hidden_layers=L, num_attention_heads=H, num_key_value_heads=KV, head_dim=Dh,
                  rms_norm_eps=1e-6, query_pre_attn_scalar=Dh, sliding_window=fx["window"],
                  sliding_window_pattern=6, rope_theta=fx["rope_base"], rope_local_base_freq=10000.0,
                  rope_scaling=({"rope_type": "linear", "factor": fx["rope_linear"]} if fx["rope_linear"] else None),
                  tie_word_embeddings=fx["output"] is None)
    tokens = [int(t) for t in rng.integers(0, V, size=fx["n_tokens"])]
    # stored - 1 is exact in f32 for stored in [0.5, 2] (Sterbenz), so 1 + w == stored in the float64 pass
    logits = npg.forward(config, {n: np.asarray(a, np.float32) for n, a in ref.items()}, tokens)
    logits.astype("<f4").tofile(os.path.join(path, "ref_hf.f32"))
    meta = dict(name=fx["name"], tokens=tokens, vocab_size=V, n_tokens=len(tokens), quantized=True,
                sliding_window=fx["window"],
                reference="numpy_gemma3.py float64 on gguf.quants.dequantize of the stored blocks (gguf %s)"
                          % gguf_version(),
                mlx_reference=False, max_abs_logit=float(np.abs(logits).max()), gguf_types=types)
    with open(os.path.join(path, "fixture.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print(f"{fx['name']}: {os.path.getsize(os.path.join(path, 'model.gguf'))} bytes, max|logit| "
          f"{meta['max_abs_logit']:.3f}, types {sorted(set(types.values()))}")
    return path, tokens, logits


def gguf_version():
    try:
        from importlib.metadata import version
        return version("gguf")
    except Exception:
        return "?"


def update_manifest(names):
    mpath = os.path.join(OUT, "MANIFEST")
    have = [ln.strip() for ln in open(mpath) if ln.strip()]
    for n in names:
        if n not in have:
            have.append(n)
    with open(mpath, "w") as f:
        f.write("\n".join(have) + "\n")


def compare_llamacpp(path, tokens, ref):
    from llama_cpp import Llama
    llm = Llama(os.path.join(path, "model.gguf"), n_ctx=256, n_threads=2, logits_all=True, verbose=False,
                n_batch=256)
    llm.eval(tokens)
    lc = np.array(llm.scores[:len(tokens)], dtype=np.float64)
    rel = float(np.abs(lc - ref).max() / np.abs(ref).max())
    top = float((lc.argmax(-1) == ref.argmax(-1)).mean())
    print(f"  llama.cpp {getattr(__import__('llama_cpp'), '__version__', '?')}: max|d|/max|ref| {rel:.2e}, "
          f"top-1 agreement {top * 100:.1f}%")
    return rel, top


def main():
    built = [build(fx) for fx in FIXTURES]
    update_manifest([fx["name"] for fx in FIXTURES])
    if len(sys.argv) > 1 and sys.argv[1] == "llamacpp":
        for path, tokens, logits in built:
            compare_llamacpp(path, tokens, logits)


if __name__ == "__main__":
    main()
