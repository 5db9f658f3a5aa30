#!/usr/bin/env python3
"""make_synthetic_e2b_mlx4.py - a random-weight checkpoint with Gemma 4 E2B's real shapes, in the MLX
4-bit (group 64, BF16 scales/biases) layout mlx-vlm writes for mlx-community/gemma-4-e2b-it-4bit.

Why it exists: issue 6 item 5 asks what resident memory the E2B model needs at a 4k context, and no
real Gemma 4 weights can be downloaded here.  Memory depends on shapes and storage formats, not on
the values, so this writes spec-gemma4.md's E2B text decoder (35 layers, hidden 1536, 8 heads, MQA,
head_dim 256 / global 512, layer_types [S,S,S,S,F] x 7, double-wide MLP from layer 15, 20 KV-shared
layers without k/v tensors, per-layer inputs 256 wide, the 262144 x 8960 per-layer table quantized
like everything else) as `language_model.model.*` (spec 3.2), with config.json as mlx-vlm leaves it.
bench/gemma4_e2b_memory.sh uses it.  About 3.2 GB on disk: delete it after use.

Values: the packed 4-bit codes are a repeated block of random bytes, scales 1/(4.6*sqrt(in)) and
biases -7.5*scale (zero-mean weights of std ~ 1/sqrt(in)), norms 1, layer_scalar 1.  Stdlib only.

usage: make_synthetic_e2b_mlx4.py OUT_DIR [--tokenizer DIR]   (copies tokenizer.json/_config.json from DIR)
"""
import json
import math
import os
import random
import shutil
import struct
import sys

D, N, H, KV, HD, GHD, FFN, P, V = 1536, 35, 8, 1, 256, 512, 6144, 256, 262144
FIRST_SHARED, WINDOW, BITS, GROUP = 15, 512, 4, 64
LAYER_TYPES = ["full_attention" if i % 5 == 4 else "sliding_attention" for i in range(N)]


def bf16(x):
    return struct.pack("<I", struct.unpack("<I", struct.pack("<f", x))[0])[2:]


def tensors():
    """(name, kind, shape) in file order: kind 'q' = quantized linear [out, in], 'v' = BF16 vector."""
    pre = "language_model.model."
    out = [(pre + "embed_tokens", "q", (V, D)), (pre + "embed_tokens_per_layer", "q", (V, N * P)),
           (pre + "per_layer_model_projection", "q", (N * P, D)),
           (pre + "per_layer_projection_norm.weight", "v", (P,)), (pre + "norm.weight", "v", (D,))]
    for i in range(N):
        b = f"{pre}layers.{i}."
        hd = GHD if LAYER_TYPES[i] == "full_attention" else HD
        ffn = 2 * FFN if i >= FIRST_SHARED else FFN
        out += [(b + "self_attn.q_proj", "q", (H * hd, D))]
        if i < FIRST_SHARED:
            out += [(b + "self_attn.k_proj", "q", (KV * hd, D)), (b + "self_attn.v_proj", "q", (KV * hd, D)),
                    (b + "self_attn.k_norm.weight", "v", (hd,))]
        out += [(b + "self_attn.o_proj", "q", (D, H * hd)), (b + "self_attn.q_norm.weight", "v", (hd,)),
                (b + "mlp.gate_proj", "q", (ffn, D)), (b + "mlp.up_proj", "q", (ffn, D)),
                (b + "mlp.down_proj", "q", (D, ffn)),
                (b + "per_layer_input_gate", "q", (P, D)), (b + "per_layer_projection", "q", (D, P)),
                (b + "layer_scalar", "v", (1,))]
        out += [(b + n + ".weight", "v", (D,)) for n in ("input_layernorm", "post_attention_layernorm",
                                                          "pre_feedforward_layernorm", "post_feedforward_layernorm",
                                                          "post_per_layer_input_norm")]
    return out


def entries():
    """(name, dtype, shape, fill) for every stored tensor; fill(f) writes its bytes."""
    rng = random.Random(6)
    block = bytes(rng.getrandbits(8) for _ in range(1 << 20))
    for name, kind, shape in tensors():
        if kind == "v":
            n = shape[0]
            yield name, "BF16", list(shape), (lambda f, n=n: f.write(bf16(1.0) * n))
            continue
        rows, cols = shape
        groups = cols // GROUP
        scale = 1.0 / (4.6 * math.sqrt(cols))

        def codes(f, size=rows * cols * BITS // 8):
            while size:
                k = min(size, len(block))
                f.write(block[:k])
                size -= k
        yield name + ".weight", "U32", [rows, cols * BITS // 32], codes
        yield name + ".scales", "BF16", [rows, groups], (lambda f, c=rows * groups, s=scale: f.write(bf16(s) * c))
        yield name + ".biases", "BF16", [rows, groups], (lambda f, c=rows * groups, s=scale: f.write(bf16(-7.5 * s) * c))


def nbytes(dtype, shape):
    return math.prod(shape) * (4 if dtype == "U32" else 2)


def config():
    text = {"model_type": "gemma4_text", "vocab_size": V, "hidden_size": D, "intermediate_size": FFN,
            "num_hidden_layers": N, "num_attention_heads": H, "num_key_value_heads": KV, "head_dim": HD,
            "global_head_dim": GHD, "layer_types": LAYER_TYPES, "sliding_window": WINDOW,
            "sliding_window_pattern": 5, "rms_norm_eps": 1e-6, "hidden_size_per_layer_input": P,
            "vocab_size_per_layer_input": V, "num_kv_shared_layers": N - FIRST_SHARED,
            "use_double_wide_mlp": True, "final_logit_softcapping": 30.0, "attention_k_eq_v": False,
            "enable_moe_block": False, "hidden_activation": "gelu_pytorch_tanh",
            "max_position_embeddings": 131072, "tie_word_embeddings": True, "pad_token_id": 0,
            "bos_token_id": 2, "eos_token_id": 1,
            "rope_parameters": {"sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
                                "full_attention": {"rope_type": "proportional", "partial_rotary_factor": 0.25,
                                                   "rope_theta": 1000000.0}}}
    q = {"group_size": GROUP, "bits": BITS}
    return {"model_type": "gemma4", "vocab_size": V, "text_config": text, "tie_word_embeddings": True,
            "eos_token_id": [1, 106], "image_token_id": 258880, "audio_token_id": 258881,
            "quantization": q, "quantization_config": q}


def main():
    if len(sys.argv) not in (2, 4) or (len(sys.argv) == 4 and sys.argv[2] != "--tokenizer"):
        sys.exit(__doc__.split("usage: ")[1])
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    header, offset, plan = {"__metadata__": {"format": "mlx"}}, 0, []
    for name, dtype, shape, fill in entries():
        n = nbytes(dtype, shape)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}
        plan.append(fill)
        offset += n
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    path = os.path.join(out, "model.safetensors")
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for fill in plan:
            fill(f)
    os.replace(path + ".tmp", path)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config(), f, indent=2)
    with open(os.path.join(out, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": 2, "eos_token_id": [1, 106, 50], "do_sample": True, "temperature": 1.0,
                   "top_k": 64, "top_p": 0.95}, f)
    if len(sys.argv) == 4:
        for name in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(os.path.join(sys.argv[3], name), os.path.join(out, name))
    print(f"{path}: {offset / 1e9:.2f} GB of tensors, {len(header) - 1} tensors")


if __name__ == "__main__":
    main()
