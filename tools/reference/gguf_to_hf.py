"""Turn a Gemma 3 text GGUF into a Hugging Face `gemma3_text` folder in float32.

    python3 tools/reference/gguf_to_hf.py GGUF OUT_DIR [--tokenizer-dir models/gemma3-tokenizer]

Writes OUT_DIR/model.safetensors, config.json, generation_config.json and (with
--tokenizer-dir) copies of tokenizer.json / tokenizer_config.json.  Needs gguf,
numpy and safetensors (numpy API; no torch).

* Every tensor is gguf.quants.dequantize'd to float32.  The numpy array that
  dequantize returns is already in torch order [rows, cols] (ggml's ne order
  reversed), so no transpose is needed; `ne` is checked against the HF shape.
* Norm weights: llama.cpp's converter stores Gemma's RMSNorm weights as 1 + w
  (every tensor whose name ends in "norm.weight", q/k norms included); they are
  written back as (1 + w) - 1 in float32, because transformers / mlx-lm add the 1.
* llama.cpp does not permute q/k for Gemma (NEOX rope = HF rotate_half), so the
  projections are copied as they are.
* The output is tied (GGUF has no output.weight); no lm_head is written.
* config.json: what GGUF carries (sizes, heads, head_dim, eps, rope base,
  sliding window, context) plus the values of the real google/gemma-3-270m
  config for what it does not (query_pre_attn_scalar, rope_local_base_freq,
  the 5:1 sliding pattern, activation, special ids).

Deterministic: the same GGUF gives byte-identical files.  Prints the sha256 of
model.safetensors.
"""
import argparse
import hashlib
import json
import os
import shutil
import sys

import numpy as np
import gguf
from gguf.quants import dequantize
from safetensors.numpy import save_file

# GGUF names (after "blk.N.") -> HF names (after "model.layers.N.")
LAYER_MAP = {
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "attn_q_norm": "self_attn.q_norm",
    "attn_k_norm": "self_attn.k_norm",
    "attn_norm": "input_layernorm",
    "post_attention_norm": "post_attention_layernorm",
    "ffn_norm": "pre_feedforward_layernorm",
    "post_ffw_norm": "post_feedforward_layernorm",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}
TOP_MAP = {"token_embd": "model.embed_tokens", "output_norm": "model.norm"}

# The real google/gemma-3-270m values for what GGUF does not carry.
HF_EXTRA = {
    "query_pre_attn_scalar": 256,
    "rope_local_base_freq": 10000.0,
    "sliding_window_pattern": 6,
    "hidden_activation": "gelu_pytorch_tanh",
    "bos_token_id": 2,
    "eos_token_id": [1, 106],
    "pad_token_id": 0,
    "attn_logit_softcapping": None,
    "final_logit_softcapping": None,
    "rope_scaling": None,
    "attention_bias": False,
    "attention_dropout": 0.0,
    "initializer_range": 0.02,
    "use_bidirectional_attention": False,
    "use_cache": True,
    "tie_word_embeddings": True,
}


def field(reader, key, default=None):
    f = reader.fields.get(key)
    if f is None:
        if default is None:
            sys.exit(f"gguf_to_hf: {key} missing from the GGUF")
        return default
    v = f.contents()
    return v


def f32_repr(x):
    """The shortest decimal that reads back as the same float32 (1e-06, not 9.99999997e-07)."""
    return float(str(np.float32(x)))


def hf_name(gname):
    base, suffix = gname.rsplit(".", 1)   # ".weight"
    if base in TOP_MAP:
        return TOP_MAP[base] + "." + suffix
    parts = base.split(".")
    if parts[0] == "blk" and len(parts) == 3 and parts[2] in LAYER_MAP:
        return f"model.layers.{int(parts[1])}.{LAYER_MAP[parts[2]]}.{suffix}"
    sys.exit(f"gguf_to_hf: no HF name for tensor '{gname}'")


def make_config(r):
    arch = field(r, "general.architecture")
    if arch != "gemma3":
        sys.exit(f"gguf_to_hf: general.architecture is '{arch}', expected gemma3")
    a = arch + "."
    n_layers = int(field(r, a + "block_count"))
    n_heads = int(field(r, a + "attention.head_count"))
    n_kv = int(field(r, a + "attention.head_count_kv"))
    key_len = int(field(r, a + "attention.key_length"))
    val_len = int(field(r, a + "attention.value_length"))
    if key_len != val_len:
        sys.exit(f"gguf_to_hf: key_length {key_len} != value_length {val_len}")
    vocab = len(r.fields["tokenizer.ggml.tokens"].data)
    pattern = HF_EXTRA["sliding_window_pattern"]
    cfg = {
        "architectures": ["Gemma3ForCausalLM"],
        "model_type": "gemma3_text",
        "hidden_size": int(field(r, a + "embedding_length")),
        "intermediate_size": int(field(r, a + "feed_forward_length")),
        "num_hidden_layers": n_layers,
        "num_attention_heads": n_heads,
        "num_key_value_heads": n_kv,
        "head_dim": key_len,
        "rms_norm_eps": f32_repr(field(r, a + "attention.layer_norm_rms_epsilon")),
        "rope_theta": f32_repr(field(r, a + "rope.freq_base")),
        "sliding_window": int(field(r, a + "attention.sliding_window")),
        "max_position_embeddings": int(field(r, a + "context_length")),
        "vocab_size": vocab,
        "torch_dtype": "float32",
        "_sliding_window_pattern": pattern,
        "layer_types": ["full_attention" if (i + 1) % pattern == 0 else "sliding_attention"
                        for i in range(n_layers)],
    }
    cfg.update(HF_EXTRA)
    # GGUF special ids must agree with the HF ones used above
    for key, hf in (("bos_token_id", 2), ("padding_token_id", 0)):
        got = int(field(r, "tokenizer.ggml." + key))
        assert got == hf, (key, got, hf)
    assert int(field(r, "tokenizer.ggml.eos_token_id")) in HF_EXTRA["eos_token_id"]
    return dict(sorted(cfg.items()))


GENERATION_CONFIG = {   # google/gemma-3-270m generation_config.json
    "bos_token_id": 2,
    "cache_implementation": "hybrid",
    "do_sample": True,
    "eos_token_id": [1, 106],
    "pad_token_id": 0,
    "top_k": 64,
    "top_p": 0.95,
}


def convert(path, out_dir, tok_dir):
    r = gguf.GGUFReader(path)
    cfg = make_config(r)
    hidden, inter = cfg["hidden_size"], cfg["intermediate_size"]
    hd, nh, nkv = cfg["head_dim"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    expect = {"model.embed_tokens": (cfg["vocab_size"], hidden), "model.norm": (hidden,)}
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        expect.update({
            p + "self_attn.q_proj": (nh * hd, hidden), p + "self_attn.k_proj": (nkv * hd, hidden),
            p + "self_attn.v_proj": (nkv * hd, hidden), p + "self_attn.o_proj": (hidden, nh * hd),
            p + "self_attn.q_norm": (hd,), p + "self_attn.k_norm": (hd,),
            p + "input_layernorm": (hidden,), p + "post_attention_layernorm": (hidden,),
            p + "pre_feedforward_layernorm": (hidden,), p + "post_feedforward_layernorm": (hidden,),
            p + "mlp.gate_proj": (inter, hidden), p + "mlp.up_proj": (inter, hidden),
            p + "mlp.down_proj": (hidden, inter),
        })
    tensors = {}
    types = {}
    for t in r.tensors:
        name = hf_name(t.name)
        ne = [int(x) for x in t.shape]
        w = dequantize(np.asarray(t.data).view(np.uint8) if t.tensor_type.name not in ("F32", "F16")
                       else np.asarray(t.data), t.tensor_type)
        w = np.ascontiguousarray(w.astype(np.float32, copy=False))
        assert list(w.shape) == list(reversed(ne)), (t.name, w.shape, ne)
        shape = expect.pop(name[:-len(".weight")], None)
        if shape is None:
            sys.exit(f"gguf_to_hf: unexpected or duplicate tensor '{t.name}' -> '{name}'")
        assert tuple(w.shape) == shape, (t.name, w.shape, shape)
        if t.name.endswith("norm.weight"):
            w = w - np.float32(1.0)
        tensors[name] = w
        types[t.tensor_type.name] = types.get(t.tensor_type.name, 0) + 1
    if expect:
        sys.exit(f"gguf_to_hf: tensors missing from the GGUF: {sorted(expect)[:5]}")
    os.makedirs(out_dir, exist_ok=True)
    st = os.path.join(out_dir, "model.safetensors")
    save_file(tensors, st, metadata={"format": "pt"})
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    with open(os.path.join(out_dir, "generation_config.json"), "w") as f:
        json.dump(GENERATION_CONFIG, f, indent=2)
        f.write("\n")
    if tok_dir:
        for fn in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copyfile(os.path.join(tok_dir, fn), os.path.join(out_dir, fn))
    h = hashlib.sha256()
    with open(st, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    n = sum(v.size for v in tensors.values())
    print(f"{out_dir}: {len(tensors)} tensors ({types}), {n} parameters, "
          f"{os.path.getsize(st) / 1e6:.1f} MB float32")
    print(f"model.safetensors sha256 {h.hexdigest()}")
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("gguf")
    ap.add_argument("out_dir")
    ap.add_argument("--tokenizer-dir", default=None)
    a = ap.parse_args()
    convert(a.gguf, a.out_dir, a.tokenizer_dir)


if __name__ == "__main__":
    main()
