#!/usr/bin/env python3
"""Tiny random-weight Gemma 3 text checkpoints + reference logits for gemma.c's
parity tests.

Subcommands (run from anywhere; paths are relative to the repository root):

  build    (local: numpy + mlx + mlx-lm)  writes tests/fixtures/gemma3/<name>/
           (config.json + safetensors, in the layout users have) and, for every
           fixture, a transformers-loadable float32 reference input
           .refwork/hf/<name>/ (config.json without quantization keys,
           model.safetensors with transformers' in-memory names, tokens.json).
  hf       (device: torch + transformers)  logits of every .refwork/hf/<name>
           in float32, eager attention, no cache, embed_scale forced to
           bf16(sqrt(hidden)); checks against the numpy implementation
           (numpy_gemma3.py) and, for float fixtures, against transformers
           loading the fixture folder itself.  Writes .refwork/out/hf/ (or a tar).
  mlx      (local: mlx-lm)  logits of the MLX-quantized fixtures computed by
           mlx-lm directly from the fixture folder -> .refwork/out/mlx/<name>/.
  collect  (local)  copies ref_hf.f32 / ref_mlx.f32 into the fixture folders,
           writes fixture.json per fixture and tests/fixtures/gemma3/MANIFEST.

Global options (before or after the subcommand; give the same ones to every step):

  --fixtures-dir DIR  where the fixture folders go (default tests/fixtures/gemma3)
  --work-dir DIR      scratch root: hf/, out/hf, out/mlx, src/, convert/ (default .refwork)
  --fresh SEED        an untuned fixture set: every fixture keeps its layout,
                      spelling, dtype, sharding and quantization recipe, but gets
                      a weight seed derived from SEED and sizes drawn from SEED
                      (see draw_sizes).  Without --fixtures-dir / --work-dir it
                      writes .refwork/fresh-SEED/fixtures and .refwork/fresh-SEED;
                      it never writes tests/fixtures/gemma3.

Every weight is random (seeded per fixture, see FIXTURES), norms included.
"""

import argparse
import copy
import json
import math
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import numpy_gemma3 as ng  # noqa: E402
from numpy_gemma3 import RawTensor, as_dtype  # noqa: E402

ROOT = HERE.parents[1]
DEFAULT_FIX = ROOT / "tests" / "fixtures" / "gemma3"
DEFAULT_WORK = ROOT / ".refwork"


def set_paths(fix, work):
    """Point every step at a fixture folder and a scratch root."""
    global FIX, WORK, HF_IN, HF_OUT, MLX_OUT, SRC
    FIX = Path(fix).resolve()
    WORK = Path(work).resolve()
    HF_IN = WORK / "hf"
    HF_OUT = WORK / "out" / "hf"
    MLX_OUT = WORK / "out" / "mlx"
    SRC = WORK / "src"


set_paths(DEFAULT_FIX, DEFAULT_WORK)

REFERENCE_STRING = "transformers {tv} (torch {pv}), float32, eager"

# ----------------------------------------------------------------------------
# fixture table: name -> seed, token count, properties
# ----------------------------------------------------------------------------

FIXTURES = [
    dict(name="text-f32-hub", seed=31001, n_tokens=40, quantized=False, mlx=False),
    dict(name="text-bf16-t5", seed=31002, n_tokens=30, quantized=False, mlx=False),
    dict(name="mm-f32-hub-sharded", seed=31003, n_tokens=36, quantized=False, mlx=False),
    dict(name="mm-f16-t5names", seed=31004, n_tokens=33, quantized=False, mlx=False),
    dict(name="mlx4-g64-convert", seed=31005, n_tokens=44, quantized=True, mlx=True),
    dict(name="mlx8-g32-vlm", seed=31006, n_tokens=38, quantized=True, mlx=True),
    dict(name="mlx-mixed-bits", seed=31007, n_tokens=29, quantized=True, mlx=True),
]

# Text sizes of the committed fixtures.  layer_types: L = sliding, G = full.
# None = the key is left out of the config (defaults apply).
SIZES = {
    "text-f32-hub": dict(
        hidden=80, heads=4, kv_heads=2, head_dim=24, inter=112, layers=7, vocab=397, window=6,
        qpas=24, theta=1000000.0, local_theta=10000.0, factor=8.0, pattern=3),
    "text-bf16-t5": dict(
        hidden=64, heads=4, kv_heads=1, head_dim=16, inter=96, layers=6, vocab=300, window=4,
        qpas=32, theta=500000.0, local_theta=10000.0, factor=4.0, layer_types="LGLLGL",
        final_softcap=8.0),
    "mm-f32-hub-sharded": dict(
        hidden=48, heads=2, kv_heads=1, head_dim=32, inter=80, layers=7, vocab=333, window=5,
        qpas=None, theta=None, local_theta=None, factor=8.0, pattern=None),
    "mm-f16-t5names": dict(
        hidden=64, heads=4, kv_heads=2, head_dim=16, inter=128, layers=6, vocab=256, window=7,
        qpas=16, theta=250000.0, local_theta=20000.0, factor=2.0, layer_types="LLGLLG"),
    "mlx4-g64-convert": dict(
        hidden=128, heads=4, kv_heads=2, head_dim=32, inter=256, layers=6, vocab=320, window=5,
        qpas=32, theta=1000000.0, local_theta=10000.0, factor=8.0, pattern=6),
    "mlx8-g32-vlm": dict(
        hidden=128, heads=2, kv_heads=2, head_dim=64, inter=256, layers=6, vocab=300, window=6,
        qpas=64, theta=1000000.0, local_theta=10000.0, factor=8.0, pattern=2),
    "mlx-mixed-bits": dict(
        hidden=128, heads=4, kv_heads=2, head_dim=32, inter=256, layers=5, vocab=280, window=4,
        qpas=40, theta=1000000.0, local_theta=10000.0, factor=8.0, pattern=5),
}
for _f in FIXTURES:
    _f["sizes"] = SIZES[_f["name"]]
BY_NAME = {f["name"]: f for f in FIXTURES}

TINY_VISION = {  # siglip, as small as transformers accepts
    "hidden_size": 32, "image_size": 28, "intermediate_size": 64,
    "model_type": "siglip_vision_model", "num_attention_heads": 2,
    "num_hidden_layers": 1, "patch_size": 14, "vision_use_head": False,
}


def _hub_text(**kw):
    """A gemma3_text config in the Hub (transformers 4.50) spelling."""
    c = {
        "architectures": ["Gemma3ForCausalLM"],
        "attention_bias": False, "attention_dropout": 0.0,
        "attn_logit_softcapping": None, "bos_token_id": 2, "eos_token_id": 1,
        "final_logit_softcapping": None, "hidden_activation": "gelu_pytorch_tanh",
        "initializer_range": 0.02, "max_position_embeddings": 32768,
        "model_type": "gemma3_text", "pad_token_id": 0, "rms_norm_eps": 1e-06,
        "rope_local_base_freq": 10000.0, "rope_theta": 1000000.0,
        "transformers_version": "4.50.0.dev0", "use_cache": True,
    }
    c.update(kw)
    return dict(sorted(c.items()))


def _hub_sizes(s):
    """The size keys of a Hub-spelled (gemma3_text) config."""
    return dict(
        head_dim=s["head_dim"], hidden_size=s["hidden"], intermediate_size=s["inter"],
        num_attention_heads=s["heads"], num_hidden_layers=s["layers"],
        num_key_value_heads=s["kv_heads"], query_pre_attn_scalar=s["qpas"],
        rope_local_base_freq=s["local_theta"], rope_theta=s["theta"],
        rope_scaling={"factor": s["factor"], "rope_type": "linear"},
        sliding_window=s["window"], sliding_window_pattern=s["pattern"], vocab_size=s["vocab"])


def _layer_types(code):
    return ["full_attention" if c == "G" else "sliding_attention" for c in code]


def config_for(name, s=None):
    s = SIZES[name] if s is None else s
    if name == "text-f32-hub":
        return _hub_text(torch_dtype="float32", **_hub_sizes(s))
    if name == "text-bf16-t5":
        # transformers-5 spelling (what Gemma3TextConfig.to_dict() writes); note
        # _sliding_window_pattern (6) disagrees with layer_types: layer_types wins.
        # attn_logit_softcapping is null on purpose: transformers 5.17's Gemma3
        # never passes it to the attention (see README); final softcap is honoured.
        return {
            "_sliding_window_pattern": 6,
            "architectures": ["Gemma3ForCausalLM"],
            "attention_bias": False, "attention_dropout": 0.0,
            "attn_logit_softcapping": None, "bos_token_id": 2, "dtype": "bfloat16",
            "eos_token_id": 1, "final_logit_softcapping": s["final_softcap"], "head_dim": s["head_dim"],
            "hidden_activation": "gelu_pytorch_tanh", "hidden_size": s["hidden"],
            "initializer_range": 0.02, "intermediate_size": s["inter"],
            "layer_types": _layer_types(s["layer_types"]),
            "max_position_embeddings": 131072, "model_type": "gemma3_text",
            "num_attention_heads": s["heads"], "num_hidden_layers": s["layers"],
            "num_key_value_heads": s["kv_heads"],
            "pad_token_id": 0, "query_pre_attn_scalar": s["qpas"], "rms_norm_eps": 1e-06,
            "rope_parameters": {
                "full_attention": {"factor": s["factor"], "rope_theta": s["theta"], "rope_type": "linear"},
                "sliding_attention": {"rope_theta": s["local_theta"], "rope_type": "default"}},
            "sliding_window": s["window"], "tie_word_embeddings": True,
            "transformers_version": "5.17.0", "use_bidirectional_attention": False,
            "use_cache": True, "vocab_size": s["vocab"],
        }
    if name == "mm-f32-hub-sharded":
        # google/gemma-3-4b-it style: text_config minimal, defaults apply for
        # query_pre_attn_scalar (256), rope_theta (1e6), rope_local_base_freq
        # (1e4), rms_norm_eps (1e-6), sliding_window_pattern (6).
        # tie_word_embeddings=false at the TOP level (where transformers reads it
        # for gemma3); text_config does not repeat it.
        assert all(s[k] is None for k in ("qpas", "theta", "local_theta", "pattern"))
        return {
            "architectures": ["Gemma3ForConditionalGeneration"],
            "boi_token_index": 255999, "eoi_token_index": 256000, "eos_token_id": [1, 106],
            "image_token_index": 262144, "initializer_range": 0.02,
            "mm_tokens_per_image": 1, "model_type": "gemma3",
            "text_config": {
                "head_dim": s["head_dim"], "hidden_size": s["hidden"], "intermediate_size": s["inter"],
                "model_type": "gemma3_text", "num_attention_heads": s["heads"],
                "num_hidden_layers": s["layers"], "num_key_value_heads": s["kv_heads"],
                "rope_scaling": {"factor": s["factor"], "rope_type": "linear"},
                "sliding_window": s["window"], "vocab_size": s["vocab"]},
            "tie_word_embeddings": False,
            "torch_dtype": "float32", "transformers_version": "4.50.0.dev0",
            "vision_config": dict(TINY_VISION),
        }
    if name == "mm-f16-t5names":
        return {
            "architectures": ["Gemma3ForConditionalGeneration"],
            "boi_token_index": 255999, "dtype": "float16", "eoi_token_index": 256000,
            "image_token_index": 262144, "initializer_range": 0.02,
            "mm_tokens_per_image": 1, "model_type": "gemma3",
            "text_config": {
                "_sliding_window_pattern": 6, "attention_bias": False,
                "attention_dropout": 0.0, "attn_logit_softcapping": None,
                "bos_token_id": 2, "dtype": "float16", "eos_token_id": 1,
                "final_logit_softcapping": None, "head_dim": s["head_dim"],
                "hidden_activation": "gelu_pytorch_tanh", "hidden_size": s["hidden"],
                "initializer_range": 0.02, "intermediate_size": s["inter"],
                "layer_types": _layer_types(s["layer_types"]),
                "max_position_embeddings": 131072, "model_type": "gemma3_text",
                "num_attention_heads": s["heads"], "num_hidden_layers": s["layers"],
                "num_key_value_heads": s["kv_heads"],
                "pad_token_id": 0, "query_pre_attn_scalar": s["qpas"], "rms_norm_eps": 1e-06,
                "rope_parameters": {
                    "full_attention": {"factor": s["factor"], "rope_theta": s["theta"], "rope_type": "linear"},
                    "sliding_attention": {"rope_theta": s["local_theta"], "rope_type": "default"}},
                "sliding_window": s["window"], "tie_word_embeddings": True,
                "use_bidirectional_attention": False, "use_cache": True, "vocab_size": s["vocab"]},
            "tie_word_embeddings": True, "transformers_version": "5.17.0",
            "vision_config": dict(TINY_VISION, attention_dropout=0.0,
                                  hidden_act="gelu_pytorch_tanh", layer_norm_eps=1e-06,
                                  num_channels=3),
        }
    if name == "mlx4-g64-convert":  # the HF source config fed to mlx_lm.convert
        return _hub_text(torch_dtype="float32", **_hub_sizes(s))
    if name == "mlx8-g32-vlm":
        q = {"group_size": 32, "bits": 8, "mode": "affine",
             "language_model.model.layers.2.mlp.down_proj": {"group_size": 128, "bits": 4, "mode": "affine"},
             "language_model.model.layers.1.self_attn.k_proj": False}
        return {
            "architectures": ["Gemma3ForConditionalGeneration"],
            "boi_token_index": 255999, "eoi_token_index": 256000, "eos_token_id": [1, 106],
            "image_token_index": 262144, "initializer_range": 0.02,
            "mm_tokens_per_image": 1, "model_type": "gemma3",
            "quantization": q, "quantization_config": copy.deepcopy(q),
            "text_config": {
                "head_dim": s["head_dim"], "hidden_size": s["hidden"], "intermediate_size": s["inter"],
                "model_type": "gemma3_text", "num_attention_heads": s["heads"],
                "num_hidden_layers": s["layers"], "num_key_value_heads": s["kv_heads"],
                "query_pre_attn_scalar": s["qpas"], "rms_norm_eps": 1e-06,
                "rope_local_base_freq": s["local_theta"], "rope_theta": s["theta"],
                "rope_scaling": {"factor": s["factor"], "rope_type": "linear"},
                "sliding_window": s["window"], "sliding_window_pattern": s["pattern"],
                "vocab_size": s["vocab"]},
            "torch_dtype": "bfloat16", "transformers_version": "4.50.0.dev0",
            "vision_config": dict(TINY_VISION),
        }
    if name == "mlx-mixed-bits":
        q = {"group_size": 64, "bits": 3, "mode": "affine"}
        q.update(_mixed_overrides(s))
        return _hub_text(torch_dtype="float16", quantization=q,
                         quantization_config=copy.deepcopy(q), **_hub_sizes(s))
    raise KeyError(name)


def _mixed_overrides(s):
    """Per-module (bits, group) for mlx-mixed-bits: default 3 bits / g64;
    embedding 6 bits / g64; the rest cycles through 2/3/5/6 bits and
    g32/64/128; entries equal to the default are left out of the config.
    (Fresh sizes: a cycle entry whose group does not divide the module's input
    width is skipped; the committed sizes divide by 128 everywhere.)"""
    cyc = [(2, 32), (3, 64), (5, 128), (6, 32), (2, 128), (5, 64), (6, 128), (3, 32)]
    mods = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
            "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]
    in_dim = {m: s["hidden"] for m in mods}
    in_dim["self_attn.o_proj"] = s["heads"] * s["head_dim"]
    in_dim["mlp.down_proj"] = s["inter"]
    out = {"model.embed_tokens": {"group_size": 64, "bits": 6, "mode": "affine"}}
    i = 0
    for l in range(s["layers"]):
        for m in mods:
            while in_dim[m] % cyc[i % len(cyc)][1]:
                i += 1
            b, g = cyc[i % len(cyc)]
            i += 1
            if (b, g) != (3, 64):
                out[f"model.layers.{l}.{m}"] = {"group_size": g, "bits": b, "mode": "affine"}
    return out


# ----------------------------------------------------------------------------
# fresh (untuned) fixture sets: seeds and sizes drawn from one number
# ----------------------------------------------------------------------------

# per fixture: input widths must be multiples of these (hidden, heads*head_dim,
# intermediate) -- the quantization group sizes its recipe uses -- plus the
# weight bytes per parameter (incl. scales/biases) used to keep it < 2 MB.
FRESH_RULES = {
    "text-f32-hub": dict(align=(2, 2, 2), bpp=4.0),
    "text-bf16-t5": dict(align=(2, 2, 2), bpp=2.0),
    "mm-f32-hub-sharded": dict(align=(2, 2, 2), bpp=4.0, untied=True, vision=True, min_layers=6),
    "mm-f16-t5names": dict(align=(2, 2, 2), bpp=2.0, vision=True),
    "mlx4-g64-convert": dict(align=(64, 64, 64), bpp=0.5 + 8 / 64),      # 4 bit, f32 scales+biases
    "mlx8-g32-vlm": dict(align=(32, 32, 128), bpp=1.0 + 4 / 32, untied=True, vision=True),
    "mlx-mixed-bits": dict(align=(64, 64, 64), bpp=0.75 + 4 / 32),       # <= 6 bit, f16 scales+biases
}
FRESH_MAX_BYTES = 1_800_000   # estimate; the built folder is checked against 2 MB


def _estimate_bytes(name, s):
    r = FRESH_RULES[name]
    D, L = s["hidden"], s["layers"]
    qd, kvd = s["heads"] * s["head_dim"], s["kv_heads"] * s["head_dim"]
    n = s["vocab"] * D * (2 if r.get("untied") else 1)
    n += L * (2 * D * qd + 2 * D * kvd + 3 * D * s["inter"])
    extra = 30_000 * 4 if r.get("vision") else 0
    norms = (L * (4 * D + 2 * s["head_dim"]) + D) * 4
    return int(n * r["bpp"] + extra + norms + 4 * s["vocab"] * 48)   # + ref logits (<= 48 tokens)


def _log_uniform(rng, lo, hi, digits=2):
    v = math.exp(rng.uniform(math.log(lo), math.log(hi)))
    return float(f"{v:.{digits}g}")


def draw_sizes(name, rng, ratio):
    """Random sizes for fixture `name` that keep its recipe valid.  `ratio` is
    the GQA ratio heads/kv_heads (1, 2 or 4)."""
    base = SIZES[name]
    r = FRESH_RULES[name]
    ah, aq, af = r["align"]
    for _ in range(1000):
        s = {}
        kv_max = {1: 6, 2: 4, 4: 2}[ratio]
        s["kv_heads"] = int(rng.integers(1, kv_max + 1))
        s["heads"] = s["kv_heads"] * ratio
        H = s["heads"]
        # transformers 5.17 (Gemma3TextConfig.validate_architecture) rejects
        # hidden % heads != 0, even with an explicit head_dim
        step = math.lcm(ah, H)
        hid = np.arange(step * math.ceil(32 / step), 161, step)
        if len(hid) == 0:
            continue
        s["hidden"] = int(rng.choice(hid))
        dh = [d for d in range(8, 73, 2) if (H * d) % aq == 0]
        natural = s["hidden"] // H
        if s["hidden"] % H == 0 and natural in dh and rng.random() < 0.3:
            s["head_dim"] = natural                  # sometimes hidden / heads
        else:
            s["head_dim"] = int(rng.choice(dh))
        s["inter"] = int(rng.choice(np.arange(max(32, af), 321, af)))
        s["layers"] = int(rng.integers(r.get("min_layers", 5), 10))
        s["vocab"] = int(rng.integers(200, 480))
        n_tokens = int(rng.integers(24, 49))
        s["window"] = int(rng.integers(2, min(9, (n_tokens - 1) // 2) + 1))   # < n_tokens / 2
        s["qpas"] = s["head_dim"] if rng.random() < 0.3 else int(rng.integers(8, 257))
        s["theta"] = _log_uniform(rng, 5e3, 5e6)
        s["local_theta"] = _log_uniform(rng, 1e3, 1e5)
        s["factor"] = float(rng.choice([1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.5, 16.0]))
        L = s["layers"]
        if "pattern" in base:
            s["pattern"] = int(rng.integers(2, L + 1))   # at least one full layer
        if "layer_types" in base:
            # irregular, both kinds present, and different from what the
            # config's _sliding_window_pattern (6) would give
            p6 = "".join("G" if (i + 1) % 6 == 0 else "L" for i in range(L))
            while True:
                lt = "".join(rng.choice(["L", "G"], L, p=[0.65, 0.35]))
                if "L" in lt and "G" in lt and lt != p6:
                    break
            s["layer_types"] = lt
        if "final_softcap" in base:
            s["final_softcap"] = float(rng.integers(8, 61)) / 2          # 4.0 .. 30.0
        for k, v in base.items():                    # keys the fixture leaves out stay out
            if v is None:
                s[k] = None
        s = {k: s[k] for k in ["hidden", "heads", "kv_heads"] + [k for k in base if k not in
                                                                 ("hidden", "heads", "kv_heads")]}
        if _estimate_bytes(name, s) <= FRESH_MAX_BYTES:
            return s, n_tokens
    raise RuntimeError(f"{name}: no sizes under the byte limit")


def fresh_fixtures(seed):
    """The fixture table with seeds and sizes derived from `seed`."""
    ratios = [1, 2, 4, 1, 2, 4]
    np.random.default_rng([seed, 0]).shuffle(ratios)
    ratios.append(int(np.random.default_rng([seed, 1]).choice([1, 2, 4])))
    out = []
    for i, f in enumerate(FIXTURES):
        rng = np.random.default_rng([seed, 100 + i])
        sizes, n_tokens = draw_sizes(f["name"], rng, ratios[i])
        wseed = int(np.random.SeedSequence([seed, 200 + i]).generate_state(1)[0] % 2**31)
        out.append(dict(f, seed=wseed, n_tokens=n_tokens, sizes=sizes))
    return out


def use_fixtures(table):
    global FIXTURES, BY_NAME
    FIXTURES = table
    BY_NAME = {f["name"]: f for f in FIXTURES}

# ----------------------------------------------------------------------------
# random weights
# ----------------------------------------------------------------------------


def gen_text(rng, p, untied=False):
    """Canonical float32 text weights (names relative to the text model)."""
    D, V, F, L = p["hidden"], p["vocab"], p["inter"], p["layers"]
    H, KV, Dh = p["heads"], p["kv_heads"], p["head_dim"]

    def lin(o, i):
        return rng.normal(0.0, 1.0 / math.sqrt(i), (o, i)).astype(np.float32)

    def un(lo, hi, n):
        return rng.uniform(lo, hi, n).astype(np.float32)

    W = {"embed_tokens.weight": rng.normal(0.0, 1.0 / math.sqrt(D), (V, D)).astype(np.float32)}
    for l in range(L):
        pre = f"layers.{l}."
        W[pre + "self_attn.q_proj.weight"] = lin(H * Dh, D)
        W[pre + "self_attn.k_proj.weight"] = lin(KV * Dh, D)
        W[pre + "self_attn.v_proj.weight"] = lin(KV * Dh, D)
        W[pre + "self_attn.o_proj.weight"] = lin(D, H * Dh)
        W[pre + "self_attn.q_norm.weight"] = un(-0.5, 1.5, Dh)
        W[pre + "self_attn.k_norm.weight"] = un(-0.5, 1.5, Dh)
        W[pre + "mlp.gate_proj.weight"] = lin(F, D)
        W[pre + "mlp.up_proj.weight"] = lin(F, D)
        W[pre + "mlp.down_proj.weight"] = lin(D, F)
        for nm in ("input_layernorm", "post_attention_layernorm",
                   "pre_feedforward_layernorm", "post_feedforward_layernorm"):
            W[pre + nm + ".weight"] = un(-0.5, 0.5, D)
    # final norm offset 2..4 (scale 3..5): gives logits a healthy spread
    W["norm.weight"] = un(2.0, 4.0, D)
    if untied:
        W["lm_head.weight"] = rng.normal(0.0, 1.0 / math.sqrt(D), (V, D)).astype(np.float32)
    return W


def gen_vision(rng, vc, text_hidden):
    """SigLIP tower (names relative to vision_model, conv OIHW) + projector."""
    h, inter, p = vc["hidden_size"], vc["intermediate_size"], vc["patch_size"]
    npos = (vc["image_size"] // p) ** 2

    def n(*shape, s=0.05):
        return rng.normal(0.0, s, shape).astype(np.float32)

    V = {"embeddings.patch_embedding.weight": n(h, 3, p, p),
         "embeddings.patch_embedding.bias": n(h),
         "embeddings.position_embedding.weight": n(npos, h)}
    for l in range(vc["num_hidden_layers"]):
        pre = f"encoder.layers.{l}."
        for ln in ("layer_norm1", "layer_norm2"):
            V[pre + ln + ".weight"] = (1.0 + n(h)).astype(np.float32)
            V[pre + ln + ".bias"] = n(h)
        for pr in ("q_proj", "k_proj", "v_proj", "out_proj"):
            V[pre + f"self_attn.{pr}.weight"] = n(h, h, s=1 / math.sqrt(h))
            V[pre + f"self_attn.{pr}.bias"] = n(h)
        V[pre + "mlp.fc1.weight"] = n(inter, h, s=1 / math.sqrt(h))
        V[pre + "mlp.fc1.bias"] = n(inter)
        V[pre + "mlp.fc2.weight"] = n(h, inter, s=1 / math.sqrt(inter))
        V[pre + "mlp.fc2.bias"] = n(h)
    V["post_layernorm.weight"] = (1.0 + n(h)).astype(np.float32)
    V["post_layernorm.bias"] = n(h)
    P = {"mm_input_projection_weight": n(h, text_hidden, s=1 / math.sqrt(h)),
         "mm_soft_emb_norm.weight": rng.uniform(-0.5, 0.5, h).astype(np.float32)}
    return V, P


def gen_tokens(spec, vocab):
    rng = np.random.default_rng(spec["seed"] + 7777)
    return [int(t) for t in rng.integers(0, vocab, spec["n_tokens"])]


# ----------------------------------------------------------------------------
# MLX quantization helpers (local only)
# ----------------------------------------------------------------------------


def _mx():
    import mlx.core as mx
    return mx


def mx_to_raw(a):
    mx = _mx()
    if a.dtype == mx.bfloat16:
        return RawTensor("BF16", np.array(mx.view(a, mx.uint16)))
    if a.dtype == mx.float16:
        return RawTensor("F16", np.array(a))
    if a.dtype == mx.float32:
        return RawTensor("F32", np.array(a))
    if a.dtype == mx.uint32:
        return RawTensor("U32", np.array(a))
    raise ValueError(a.dtype)


def mx_dtype(st):
    mx = _mx()
    return {"BF16": mx.bfloat16, "F16": mx.float16, "F32": mx.float32}[st]


def quantize_raw(w_f32, st_dtype, group_size, bits):
    """Cast to st_dtype, mx.quantize -> (U32 weight, scales, biases) RawTensors
    (scales/biases in st_dtype, like mlx-lm / mlx-vlm)."""
    mx = _mx()
    w = mx.array(np.asarray(w_f32, np.float32)).astype(mx_dtype(st_dtype))
    wq, s, b = mx.quantize(w, group_size=group_size, bits=bits)
    return mx_to_raw(wq), mx_to_raw(s), mx_to_raw(b)


def dequantize_raw(wq, scales, biases, group_size, bits):
    """mx.dequantize of exactly the stored tensors, computed in float32
    (scales/biases upcast exactly first; what an fp32 port does)."""
    mx = _mx()
    out = mx.dequantize(mx.array(wq.data), mx.array(scales.to_f32()), mx.array(biases.to_f32()),
                        group_size=group_size, bits=bits)
    return np.array(out.astype(mx.float32))


def unpack_bits_numpy(wq_u32, bits, in_dims):
    """Independent unpacker: each row is a little-endian bit stream, element k
    at bits [k*bits, (k+1)*bits).  Used to double-check the packing layout."""
    rows = wq_u32.shape[0]
    by = np.ascontiguousarray(wq_u32.astype("<u4")).view(np.uint8).reshape(rows, -1)
    bitsarr = np.unpackbits(by, axis=1, bitorder="little")[:, : in_dims * bits]
    bitsarr = bitsarr.reshape(rows, in_dims, bits).astype(np.uint32)
    return (bitsarr << np.arange(bits, dtype=np.uint32)).sum(-1)


# ----------------------------------------------------------------------------
# writing fixture folders
# ----------------------------------------------------------------------------


def write_json(path, obj):
    Path(path).write_text(json.dumps(obj, indent=2) + "\n")


def write_sharded(d, tensors, n_shards, metadata):
    names = sorted(tensors)
    sizes = [tensors[n].nbytes() for n in names]
    total = sum(sizes)
    bounds, acc, cur = [], 0, []
    shards = [[] for _ in range(n_shards)]
    k = 0
    for nm, sz in zip(names, sizes):
        if k < n_shards - 1 and acc >= total * (k + 1) / n_shards:
            k += 1
        shards[k].append(nm)
        acc += sz
    wm = {}
    for i, sh in enumerate(shards):
        assert sh, "empty shard"
        fn = f"model-{i + 1:05d}-of-{n_shards:05d}.safetensors"
        ng.write_safetensors(d / fn, {n: tensors[n] for n in sh}, metadata)
        for n in sh:
            wm[n] = fn
    write_json(d / "model.safetensors.index.json",
               {"metadata": {"total_size": total}, "weight_map": dict(sorted(wm.items()))})


def write_single_with_index(d, tensors, metadata):
    ng.write_safetensors(d / "model.safetensors", tensors, metadata)
    total = sum(t.nbytes() for t in tensors.values())
    write_json(d / "model.safetensors.index.json",
               {"metadata": {"total_size": total},
                "weight_map": {n: "model.safetensors" for n in sorted(tensors)}})


def fresh_dir(d):
    d = Path(d)
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    return d


def write_tiny_tokenizer(d, vocab):
    """A valid WordLevel tokenizer with `vocab` entries (needed by
    mlx_lm.convert, which loads a tokenizer; not kept in the fixture)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    toks = {"<pad>": 0, "<eos>": 1, "<bos>": 2, "<unk>": 3}
    for i in range(4, vocab):
        toks[f"t{i}"] = i
    tk = Tokenizer(models.WordLevel(vocab=toks, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tk.save(str(d / "tokenizer.json"))
    write_json(d / "tokenizer_config.json", {
        "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<bos>",
        "eos_token": "<eos>", "pad_token": "<pad>", "unk_token": "<unk>",
        "model_max_length": 4096})


def build_fixture(spec):
    name = spec["name"]
    rng = np.random.default_rng(spec["seed"])
    cfg = config_for(name, spec["sizes"])
    p = ng.text_params(cfg)
    d = fresh_dir(FIX / name)
    pt_meta = {"format": "pt"}

    if name == "text-f32-hub":
        W = gen_text(rng, p)
        ng.write_safetensors(d / "model.safetensors",
                             {"model." + k: as_dtype(v, "F32") for k, v in W.items()}, pt_meta)
    elif name == "text-bf16-t5":
        W = gen_text(rng, p)
        ng.write_safetensors(d / "model.safetensors",
                             {"model." + k: as_dtype(v, "BF16") for k, v in W.items()}, pt_meta)
    elif name == "mm-f32-hub-sharded":
        W = gen_text(rng, p, untied=True)
        Vw, Pw = gen_vision(rng, cfg["vision_config"], p["hidden"])
        t = {}
        for k, v in W.items():
            if k == "lm_head.weight":
                t["language_model.lm_head.weight"] = as_dtype(v, "F32")
            else:
                t["language_model.model." + k] = as_dtype(v, "F32")
        t.update({"vision_tower.vision_model." + k: as_dtype(v, "F32") for k, v in Vw.items()})
        t.update({"multi_modal_projector." + k: as_dtype(v, "F32") for k, v in Pw.items()})
        write_sharded(d, t, 2, pt_meta)
    elif name == "mm-f16-t5names":
        W = gen_text(rng, p)
        Vw, Pw = gen_vision(rng, cfg["vision_config"], p["hidden"])
        t = {"model.language_model." + k: as_dtype(v, "F16") for k, v in W.items()}
        t.update({"model.vision_tower.vision_model." + k: as_dtype(v, "F16") for k, v in Vw.items()})
        t.update({"model.multi_modal_projector." + k: as_dtype(v, "F16") for k, v in Pw.items()})
        ng.write_safetensors(d / "model.safetensors", t, pt_meta)
    elif name == "mlx4-g64-convert":
        W = gen_text(rng, p)
        src = fresh_dir(SRC / name)
        write_json(src / "config.json", cfg)
        ng.write_safetensors(src / "model.safetensors",
                             {"model." + k: as_dtype(v, "F32") for k, v in W.items()}, pt_meta)
        write_tiny_tokenizer(src, p["vocab"])
        out = WORK / "convert" / name
        if out.exists():
            shutil.rmtree(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "mlx_lm", "convert", "--hf-path", str(src),
               "--mlx-path", str(out), "-q", "--q-bits", "4", "--q-group-size", "64"]
        print("   $", " ".join(cmd))
        r = subprocess.run(cmd, capture_output=True, text=True)
        print("   " + (r.stdout + r.stderr).strip().replace("\n", "\n   "))
        if r.returncode != 0:
            raise SystemExit(f"mlx_lm convert failed ({r.returncode})")
        kept = []
        for f in sorted(out.iterdir()):
            if f.name == "config.json" or f.name.startswith("model") and (
                    f.suffix == ".safetensors" or f.name.endswith(".index.json")):
                shutil.copy(f, d / f.name)
                kept.append(f.name)
        print("   convert wrote:", sorted(x.name for x in out.iterdir()), "kept:", kept)
        cfg = json.loads((d / "config.json").read_text())
    elif name == "mlx8-g32-vlm":
        W = gen_text(rng, p)
        # mlx-vlm copies embed_tokens into language_model.lm_head before quantizing
        W["lm_head.weight"] = W["embed_tokens.weight"].copy()
        Vw, Pw = gen_vision(rng, cfg["vision_config"], p["hidden"])
        q = cfg["quantization"]
        t = {}
        for k, v in W.items():
            full = ("language_model.lm_head.weight" if k == "lm_head.weight"
                    else "language_model.model." + k)
            mod = full[: -len(".weight")]
            qp = q.get(mod, None)
            quantizable = v.ndim == 2
            if quantizable and qp is not False:
                gs = qp["group_size"] if isinstance(qp, dict) else q["group_size"]
                bits = qp["bits"] if isinstance(qp, dict) else q["bits"]
                wq, s, b = quantize_raw(v, "BF16", gs, bits)
                t[mod + ".weight"], t[mod + ".scales"], t[mod + ".biases"] = wq, s, b
            else:
                t[full] = as_dtype(v, "BF16")
        for k, v in Vw.items():  # vision left unquantized (mlx-vlm skips it); conv OHWI
            if k == "embeddings.patch_embedding.weight":
                v = v.transpose(0, 2, 3, 1)
            t["vision_tower.vision_model." + k] = as_dtype(v, "BF16")
        t.update({"multi_modal_projector." + k: as_dtype(v, "BF16") for k, v in Pw.items()})
        write_single_with_index(d, t, {"format": "mlx"})
    elif name == "mlx-mixed-bits":
        W = gen_text(rng, p)
        q = cfg["quantization"]
        t = {}
        for k, v in W.items():
            mod = "model." + k[: -len(".weight")]
            if v.ndim == 2:
                qp = q.get(mod)
                gs = qp["group_size"] if isinstance(qp, dict) else q["group_size"]
                bits = qp["bits"] if isinstance(qp, dict) else q["bits"]
                wq, s, b = quantize_raw(v, "F16", gs, bits)
                t[mod + ".weight"], t[mod + ".scales"], t[mod + ".biases"] = wq, s, b
            else:
                t["model." + k] = as_dtype(v, "F16")
        write_single_with_index(d, t, {"format": "mlx"})
    else:
        raise KeyError(name)

    if name != "mlx4-g64-convert":
        write_json(d / "config.json", cfg)
    return cfg, p


# ----------------------------------------------------------------------------
# reference input (.refwork/hf/<name>) derived from the fixture as stored
# ----------------------------------------------------------------------------


def _quant_params_for(cfg, mod):
    q = cfg.get("quantization")
    if q is None:
        return None
    v = q.get(mod, None)
    if v is False:
        return False
    if isinstance(v, dict):
        return v["group_size"], v["bits"]
    return q["group_size"], q["bits"]


def hf_name(name, model_type):
    """fixture tensor name -> transformers 5.17 in-memory parameter name."""
    if model_type == "gemma3_text":
        return name
    for a, b in (("language_model.lm_head.", "lm_head."),
                 ("language_model.model.", "model.language_model."),
                 ("model.vision_tower.vision_model.", "model.vision_tower."),
                 ("vision_tower.vision_model.", "model.vision_tower."),
                 ("multi_modal_projector.", "model.multi_modal_projector.")):
        if name.startswith(a):
            return b + name[len(a):]
    return name  # already model.language_model.* / model.multi_modal_projector.* / lm_head.*


def make_ref(spec):
    """Read the fixture folder back and write the float32 transformers input."""
    name = spec["name"]
    d = FIX / name
    cfg = json.loads((d / "config.json").read_text())
    p = ng.text_params(cfg)
    tensors = ng.read_model_dir(d)
    mods_q = sorted(k[: -len(".scales")] for k in tensors if k.endswith(".scales"))
    out = {}
    qinfo = {}
    for mod in mods_q:
        wq, s, b = tensors[mod + ".weight"], tensors[mod + ".scales"], tensors[mod + ".biases"]
        qp = _quant_params_for(cfg, mod)
        assert qp not in (None, False), f"{mod}: scales present but config says {qp}"
        gs, bits = qp
        in_dims = s.shape[-1] * gs
        assert wq.dtype == "U32" and wq.shape[-1] * 32 == in_dims * bits, (mod, wq.shape, s.shape, gs, bits)
        deq = dequantize_raw(wq, s, b, gs, bits)
        # independent unpack check (layout documentation for the C port)
        qv = unpack_bits_numpy(wq.data, bits, in_dims).astype(np.float32)
        sg = np.repeat(s.to_f32(), gs, axis=1)
        bg = np.repeat(b.to_f32(), gs, axis=1)
        mine = sg * qv + bg
        err = float(np.abs(mine - deq).max())
        assert err <= 1e-6 * max(1.0, float(np.abs(deq).max())), (mod, err)
        out[mod + ".weight"] = deq
        qinfo[mod] = dict(bits=bits, group_size=gs, scales=s.dtype)
    for k, t in tensors.items():
        base = k.rsplit(".", 1)[0]
        if base in qinfo:
            continue
        if t.dtype not in ("F32", "F16", "BF16"):
            raise ValueError(f"{name}: unexpected {t.dtype} tensor {k}")
        if _quant_params_for(cfg, base) is False:
            qinfo[base] = "unquantized (config: false)"
        v = t.to_f32()
        if k.endswith("patch_embedding.weight") and v.shape[-1] == 3 and v.shape[1] != 3:
            v = v.transpose(0, 3, 1, 2)  # MLX OHWI -> OIHW
        out[k] = v
    rd = fresh_dir(HF_IN / name)
    rcfg = {k: v for k, v in cfg.items() if k not in ("quantization", "quantization_config")}
    write_json(rd / "config.json", rcfg)
    ng.write_safetensors(rd / "model.safetensors",
                         {hf_name(k, cfg["model_type"]): as_dtype(v, "F32") for k, v in out.items()},
                         {"format": "pt"})
    tokens = gen_tokens(spec, p["vocab"])
    assert all(0 <= t < p["vocab"] for t in tokens)
    assert len(tokens) > 2 * p["window"]
    write_json(rd / "tokens.json", {"name": name, "tokens": tokens})
    return p, tokens, qinfo


def dir_size(d):
    return sum(f.stat().st_size for f in Path(d).rglob("*") if f.is_file())


def cmd_build(args):
    FIX.mkdir(parents=True, exist_ok=True)
    names = args.only or [f["name"] for f in FIXTURES]
    if args.fresh is not None:
        table = {f["name"]: dict(seed=f["seed"], n_tokens=f["n_tokens"], sizes=f["sizes"],
                                 estimated_bytes=_estimate_bytes(f["name"], f["sizes"]))
                 for f in FIXTURES}
        WORK.mkdir(parents=True, exist_ok=True)
        write_json(WORK / "fresh.json", {"fresh_seed": args.fresh, "fixtures_dir": str(FIX),
                                         "fixtures": table})
        print(f"fresh set {args.fresh}: sizes in {WORK / 'fresh.json'}")
    for nm in names:
        spec = BY_NAME[nm]
        print(f"== build {nm} (seed {spec['seed']}, {spec['n_tokens']} tokens)")
        build_fixture(spec)
        p, tokens, qinfo = make_ref(spec)
        files = sorted(f.name for f in (FIX / nm).iterdir())
        print(f"   fixture files: {files}  ({dir_size(FIX / nm)} bytes)")
        if args.fresh is not None:
            # the text sizes as transformers will read them must be the drawn ones
            sz = spec["sizes"]
            for k, pk in (("hidden", "hidden"), ("heads", "heads"), ("kv_heads", "kv_heads"),
                          ("head_dim", "head_dim"), ("inter", "inter"), ("layers", "layers"),
                          ("vocab", "vocab"), ("window", "window")):
                assert p[pk] == sz[k], (nm, k, p[pk], sz[k])
            assert p["heads"] % p["kv_heads"] == 0 and p["head_dim"] % 2 == 0
            assert 2 * p["window"] < len(tokens)
            assert dir_size(FIX / nm) < 2_000_000, (nm, dir_size(FIX / nm))
        print(f"   text: hidden {p['hidden']} heads {p['heads']}/{p['kv_heads']} head_dim {p['head_dim']} "
              f"inter {p['inter']} layers {p['layers']} vocab {p['vocab']} window {p['window']} "
              f"qpas {p['qpas']} layer_types {''.join('G' if t == 'full_attention' else 'L' for t in p['layer_types'])} "
              f"rope {p['rope']} final_softcap {p['final_softcap']}")
        if qinfo:
            dist = {}
            for m, v in qinfo.items():
                key = v if isinstance(v, str) else f"{v['bits']}b/g{v['group_size']}/{v['scales']}"
                dist[key] = dist.get(key, 0) + 1
            print(f"   quantized modules: {dist}")
        # quick sanity: numpy logits spread
        lg = ng.forward_dir(HF_IN / nm, tokens)
        top2 = np.sort(lg, axis=-1)[:, -2:]
        margin = top2[:, 1] - top2[:, 0]
        print(f"   numpy: max|logit| {np.abs(lg).max():.3f}  std {lg.std():.3f}  "
              f"median top1-top2 margin {np.median(margin):.3f}  min {margin.min():.4f}")
    print(f"total {FIX}: {dir_size(FIX)} bytes")


# ----------------------------------------------------------------------------
# hf: transformers reference (device)
# ----------------------------------------------------------------------------


def _hf_load(path, model_type, torch, dev):
    import transformers
    if model_type == "gemma3":
        cls = transformers.Gemma3ForConditionalGeneration
    else:
        cls = transformers.AutoModelForCausalLM
    model, info = cls.from_pretrained(str(path), dtype=torch.float32, attn_implementation="eager",
                                      output_loading_info=True)
    model = model.to(dev).eval()
    return model, info


def _embed_module(model, model_type):
    if model_type == "gemma3":
        return model.model.language_model.embed_tokens
    return model.model.embed_tokens


def _set_embed_scale(model, model_type, hidden):
    emb = _embed_module(model, model_type)
    assert hasattr(emb, "embed_scale"), f"no embed_scale buffer on {type(emb).__name__}"
    before = float(emb.embed_scale)
    target = ng.embed_scale_bf16(hidden)
    with __import__("torch").no_grad():
        emb.embed_scale.fill_(target)
    after = float(emb.embed_scale)
    assert after == target, (after, target)
    return before, after


def _hf_logits(model, tokens, torch, dev):
    ids = torch.tensor([tokens], dtype=torch.long, device=dev)
    with torch.no_grad():
        out = model(input_ids=ids, use_cache=False)
    return out.logits[0].float().cpu().numpy()


def _hf_interpretation(model, model_type):
    cfg = model.config
    tc = cfg.get_text_config() if model_type == "gemma3" else cfg
    r = dict(
        layer_types=list(tc.layer_types), rope_parameters=tc.rope_parameters,
        query_pre_attn_scalar=tc.query_pre_attn_scalar, sliding_window=tc.sliding_window,
        rms_norm_eps=tc.rms_norm_eps, attn_logit_softcapping=tc.attn_logit_softcapping,
        final_logit_softcapping=tc.final_logit_softcapping,
        head_dim=tc.head_dim, heads=tc.num_attention_heads, kv_heads=tc.num_key_value_heads,
        tie_word_embeddings_top=getattr(cfg, "tie_word_embeddings", None),
        vocab_size=tc.vocab_size,
    )
    emb = _embed_module(model, model_type)
    r["lm_head_is_embedding"] = model.lm_head.weight.data_ptr() == emb.weight.data_ptr()
    r["lm_head_equals_embedding"] = bool((model.lm_head.weight == emb.weight).all())
    # per-layer attention properties as the modules see them
    layers = model.model.language_model.layers if model_type == "gemma3" else model.model.layers
    r["layer_sliding_window"] = [l.self_attn.sliding_window for l in layers]
    r["layer_scaling"] = [float(l.self_attn.scaling) for l in layers]
    return r


def _compare_interpretation(hfi, p):
    bad = []
    if hfi["layer_types"] != p["layer_types"]:
        bad.append(f"layer_types hf={hfi['layer_types']} np={p['layer_types']}")
    for t, (theta, factor) in p["rope"].items():
        rp = hfi["rope_parameters"][t]
        hf_factor = float(rp.get("factor", 1.0)) if rp.get("rope_type") == "linear" else 1.0
        if float(rp["rope_theta"]) != theta or hf_factor != factor:
            bad.append(f"rope {t} hf={rp} np={(theta, factor)}")
    if float(hfi["query_pre_attn_scalar"]) != p["qpas"]:
        bad.append(f"qpas hf={hfi['query_pre_attn_scalar']} np={p['qpas']}")
    if hfi["sliding_window"] != p["window"]:
        bad.append(f"window hf={hfi['sliding_window']} np={p['window']}")
    if float(hfi["rms_norm_eps"]) != p["eps"]:
        bad.append(f"eps hf={hfi['rms_norm_eps']} np={p['eps']}")
    return bad


def cmd_hf(args):
    import torch
    import transformers
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    dev = torch.device("cuda" if torch.cuda.is_available() and not args.cpu else "cpu")
    versions = dict(transformers=transformers.__version__, torch=torch.__version__.split("+")[0],
                    torch_full=torch.__version__, numpy=np.__version__, device=str(dev),
                    device_name=(torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu"))
    print("versions:", versions)
    out_root = Path(args.out) if args.out else HF_OUT
    if out_root.exists():
        shutil.rmtree(out_root)
    out_root.mkdir(parents=True)
    summary = {"versions": versions, "fixtures": {}}
    failures = []
    names = args.only or [f["name"] for f in FIXTURES]
    for nm in names:
        spec = BY_NAME[nm]
        rd = HF_IN / nm
        t0 = time.time()
        cfg = json.loads((rd / "config.json").read_text())
        mt = cfg["model_type"]
        p = ng.text_params(cfg)
        tokens = json.loads((rd / "tokens.json").read_text())["tokens"]
        model, info = _hf_load(rd, mt, torch, dev)
        miss = [k for k in info.get("missing_keys", [])]
        unexp = [k for k in info.get("unexpected_keys", [])]
        before, after = _set_embed_scale(model, mt, p["hidden"])
        hfi = _hf_interpretation(model, mt)
        lg = _hf_logits(model, tokens, torch, dev)
        assert lg.shape == (len(tokens), p["vocab"]), lg.shape
        nan = bool(np.isnan(lg).any() or np.isinf(lg).any())
        mx_abs = float(np.abs(lg).max())
        # independent numpy forward on the same reference input
        lnp = ng.forward_dir(rd, tokens)
        rel_np = float(np.abs(lg - lnp).max() / np.abs(lnp).max())
        top_np = bool((lg.argmax(-1) == lnp.argmax(-1)).all())
        # transformers reading the fixture folder itself (float fixtures)
        rel_direct = None
        direct_info = None
        if not spec["quantized"]:
            m2, info2 = _hf_load(FIX / nm, mt, torch, dev)
            _set_embed_scale(m2, mt, p["hidden"])
            l2 = _hf_logits(m2, tokens, torch, dev)
            rel_direct = float(np.abs(l2 - lg).max() / np.abs(lg).max())
            direct_info = {k: sorted(v) for k, v in info2.items()
                           if k in ("missing_keys", "unexpected_keys", "mismatched_keys") and v}
            del m2
        bad = _compare_interpretation(hfi, p)
        od = out_root / nm
        od.mkdir()
        lg.astype("<f4").tofile(od / "ref_hf.f32")
        top2 = np.sort(lg, axis=-1)[:, -2:]
        margin = top2[:, 1] - top2[:, 0]
        meta = dict(name=nm, n_tokens=len(tokens), vocab_size=p["vocab"], max_abs_logit=mx_abs,
                    nan_or_inf=nan, embed_scale_before=before, embed_scale_after=after,
                    rel_diff_vs_numpy=rel_np, top1_equal_numpy=top_np,
                    rel_diff_direct_fixture_load=rel_direct, direct_load_issues=direct_info,
                    missing_keys=miss, unexpected_keys=unexp, interpretation=hfi,
                    interpretation_mismatches=bad, median_top2_margin=float(np.median(margin)),
                    min_top2_margin=float(margin.min()), versions=versions,
                    seconds=round(time.time() - t0, 2))
        write_json(od / "hf_meta.json", meta)
        summary["fixtures"][nm] = {k: meta[k] for k in (
            "max_abs_logit", "nan_or_inf", "rel_diff_vs_numpy", "rel_diff_direct_fixture_load",
            "embed_scale_before", "embed_scale_after", "interpretation_mismatches",
            "missing_keys", "unexpected_keys", "direct_load_issues", "median_top2_margin")}
        print(f"== {nm}: max|logit| {mx_abs:.4f} nan {nan}  |hf-numpy|/max {rel_np:.3e} (top1 eq {top_np})"
              f"  direct-load {('%.3e' % rel_direct) if rel_direct is not None else '-'}"
              f"  embed_scale {before:.6f}->{after:.6f}  {meta['seconds']}s")
        print(f"   interp: layer_types {''.join('G' if t == 'full_attention' else 'L' for t in hfi['layer_types'])}"
              f" rope {hfi['rope_parameters']} qpas {hfi['query_pre_attn_scalar']} window {hfi['sliding_window']}"
              f" eps {hfi['rms_norm_eps']} softcap attn {hfi['attn_logit_softcapping']} final {hfi['final_logit_softcapping']}"
              f" tie(top) {hfi['tie_word_embeddings_top']} lm_head_is_embed {hfi['lm_head_is_embedding']}")
        if miss or unexp:
            print(f"   loading: missing {miss} unexpected {unexp}")
        if direct_info:
            print(f"   direct fixture load issues: {direct_info}")
        if bad:
            print(f"   INTERPRETATION MISMATCH: {bad}")
        if nan or bad or miss or unexp or rel_np > 1e-4 or (rel_direct is not None and rel_direct > 1e-6):
            failures.append(nm)
        del model
    summary["failures"] = failures
    write_json(out_root / "summary.json", summary)
    if args.tar:
        with tarfile.open(args.tar, "w") as tf:
            tf.add(out_root, arcname="hf")
        print("wrote", args.tar)
    print("FAILURES:", failures if failures else "none")
    return 1 if failures else 0


# ----------------------------------------------------------------------------
# mlx: mlx-lm reference for quantized fixtures (local)
# ----------------------------------------------------------------------------


def _mlx_model(path, cfg, overrides=None, upcast=True):
    """mlx-lm model loaded (strict) from the fixture folder.  upcast=True casts
    every floating parameter (norms, unquantized weights, quantization
    scales/biases) to float32 after loading -- exact, the packed weights are
    untouched -- so mlx-lm's own graph (quantized matmuls, QuantizedEmbedding,
    RoPE, masks) runs in float32 like the C port.  upcast=False runs in the
    checkpoint's dtype (bf16 / f16), which adds that dtype's rounding noise."""
    from mlx.utils import tree_map
    from mlx_lm.utils import load_model
    mc = {}
    if cfg["model_type"] == "gemma3":
        # mlx-lm's gemma3 wrapper takes vocab_size from the TOP level (default
        # 262208) and writes it into text_config; HF configs keep it in text_config.
        mc["vocab_size"] = cfg["text_config"]["vocab_size"]
        if overrides:
            tc = dict(cfg["text_config"])
            tc.update(overrides)
            mc["text_config"] = tc
    elif overrides:
        mc.update(overrides)
    model, _ = load_model(Path(path), strict=True, model_config=mc)
    if upcast:
        mx = _mx()
        model.update(tree_map(
            lambda x: x.astype(mx.float32) if mx.issubdtype(x.dtype, mx.floating) else x,
            model.parameters()))
    return model


def _mlx_logits(model, tokens):
    mx = _mx()
    out = model(mx.array(tokens)[None])
    return np.array(out[0].astype(mx.float32))


def cmd_mlx(args):
    import mlx_lm
    mx = _mx()
    print("mlx", mx.__version__, "mlx-lm", mlx_lm.__version__, "device", mx.default_device())
    if MLX_OUT.exists():
        shutil.rmtree(MLX_OUT)
    MLX_OUT.mkdir(parents=True)
    names = args.only or [f["name"] for f in FIXTURES if f["mlx"]]
    res = {}
    for nm in names:
        spec = BY_NAME[nm]
        d = FIX / nm
        cfg = json.loads((d / "config.json").read_text())
        p = ng.text_params(cfg)
        tokens = json.loads((HF_IN / nm / "tokens.json").read_text())["tokens"]
        upcast = not args.native
        model = _mlx_model(d, cfg, upcast=upcast)
        lg = _mlx_logits(model, tokens)
        assert lg.shape == (len(tokens), p["vocab"]), lg.shape
        assert not np.isnan(lg).any()
        native = _mlx_logits(_mlx_model(d, cfg, upcast=False), tokens)
        # the sliding-window mask must be active: a huge window must change logits
        big = _mlx_model(d, cfg, {"sliding_window": 1 << 20}, upcast=upcast)
        lbig = _mlx_logits(big, tokens)
        win_effect = float(np.abs(lbig - lg).max())
        assert win_effect > 1e-3, f"{nm}: sliding window has no effect in mlx-lm ({win_effect})"
        # rows before the window first bites must agree exactly-ish
        early = float(np.abs(lbig[: p["window"]] - lg[: p["window"]]).max())
        od = MLX_OUT / nm
        od.mkdir()
        lg.astype("<f4").tofile(od / "ref_mlx.f32")
        native.astype("<f4").tofile(od / "ref_mlx_native.f32")
        r = dict(compute=("float32 (params upcast)" if upcast else "checkpoint dtype"),
                 max_abs_logit=float(np.abs(lg).max()), window_effect=win_effect,
                 window_effect_first_rows=early, mlx=mx.__version__, mlx_lm=mlx_lm.__version__)
        hf = HF_OUT / nm / "ref_hf.f32"
        if hf.exists():
            lh = np.fromfile(hf, "<f4").reshape(lg.shape)
            r["rel_diff_vs_hf"] = float(np.abs(lg - lh).max() / np.abs(lh).max())
            r["top1_agree_vs_hf"] = float((lg.argmax(-1) == lh.argmax(-1)).mean())
            r["native_rel_diff_vs_hf"] = float(np.abs(native - lh).max() / np.abs(lh).max())
            r["native_top1_agree_vs_hf"] = float((native.argmax(-1) == lh.argmax(-1)).mean())
        lnp = ng.forward_dir(HF_IN / nm, tokens)
        r["rel_diff_vs_numpy"] = float(np.abs(lg - lnp).max() / np.abs(lnp).max())
        write_json(od / "mlx_meta.json", r)
        res[nm] = r
        print(f"== {nm}: " + "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                       for k, v in r.items()))
    return 0


# ----------------------------------------------------------------------------
# collect
# ----------------------------------------------------------------------------


def cmd_collect(args):
    hf_root = HF_OUT
    if args.hf_tar:
        tmp = WORK / "out" / "hf_from_tar"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        with tarfile.open(args.hf_tar) as tf:
            tf.extractall(tmp)
        hf_root = tmp / "hf"
    names = [f["name"] for f in FIXTURES]
    for nm in names:
        spec = BY_NAME[nm]
        d = FIX / nm
        meta = json.loads((hf_root / nm / "hf_meta.json").read_text())
        cfg = json.loads((d / "config.json").read_text())
        p = ng.text_params(cfg)
        tokens = json.loads((HF_IN / nm / "tokens.json").read_text())["tokens"]
        assert meta["n_tokens"] == len(tokens) and meta["vocab_size"] == p["vocab"]
        assert not meta["nan_or_inf"]
        shutil.copy(hf_root / nm / "ref_hf.f32", d / "ref_hf.f32")
        assert (d / "ref_hf.f32").stat().st_size == 4 * len(tokens) * p["vocab"]
        have_mlx = False
        if spec["mlx"]:
            src = MLX_OUT / nm / "ref_mlx.f32"
            if src.exists():
                shutil.copy(src, d / "ref_mlx.f32")
                have_mlx = True
            else:
                print(f"warning: {nm}: no mlx reference at {src}")
        v = meta["versions"]
        fj = {"name": nm, "tokens": tokens, "vocab_size": p["vocab"], "n_tokens": len(tokens),
              "quantized": spec["quantized"], "sliding_window": p["window"],
              "reference": REFERENCE_STRING.format(tv=v["transformers"], pv=v["torch"]),
              "mlx_reference": have_mlx, "max_abs_logit": round(meta["max_abs_logit"], 6)}
        write_json(d / "fixture.json", fj)
        print(f"{nm}: {dir_size(d)} bytes, max|logit| {fj['max_abs_logit']}, mlx {have_mlx}")
    (FIX / "MANIFEST").write_text("\n".join(names) + "\n")
    print(f"total {FIX}: {dir_size(FIX)} bytes")
    return 0


def _global_options(parser, default):
    """--fixtures-dir / --work-dir / --fresh, accepted before and after the
    subcommand (the subparsers use SUPPRESS so they do not reset the values)."""
    parser.add_argument("--fixtures-dir", default=default,
                        help="fixture folders (default tests/fixtures/gemma3; "
                             "with --fresh SEED: .refwork/fresh-SEED/fixtures)")
    parser.add_argument("--work-dir", default=default,
                        help="scratch root for hf/, out/, src/, convert/ (default .refwork; "
                             "with --fresh SEED: .refwork/fresh-SEED)")
    parser.add_argument("--fresh", type=int, default=default, metavar="SEED",
                        help="untuned set: seeds and sizes derived from SEED (same layouts/recipes)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _global_options(ap, None)
    common = argparse.ArgumentParser(add_help=False)
    _global_options(common, argparse.SUPPRESS)
    sp = ap.add_subparsers(dest="cmd", required=True)
    b = sp.add_parser("build", parents=[common])
    b.add_argument("--only", nargs="*")
    h = sp.add_parser("hf", parents=[common])
    h.add_argument("--only", nargs="*")
    h.add_argument("--cpu", action="store_true", help="force CPU even if CUDA is available")
    h.add_argument("--out", help="output folder (default .refwork/out/hf)")
    h.add_argument("--tar", help="also pack the output folder into this tar file")
    m = sp.add_parser("mlx", parents=[common])
    m.add_argument("--only", nargs="*")
    m.add_argument("--native", action="store_true",
                   help="ref_mlx.f32 in the checkpoint dtype instead of float32-upcast params")
    c = sp.add_parser("collect", parents=[common])
    c.add_argument("--hf-tar", help="tar written by `hf --tar` (default: use .refwork/out/hf)")
    a = ap.parse_args()
    fix, work = a.fixtures_dir, a.work_dir
    if a.fresh is not None:
        base = DEFAULT_WORK / f"fresh-{a.fresh}"
        fix = fix or base / "fixtures"
        work = work or base
        if Path(fix).resolve() == DEFAULT_FIX.resolve():
            ap.error("--fresh must not write into tests/fixtures/gemma3")
        use_fixtures(fresh_fixtures(a.fresh))
    set_paths(fix or DEFAULT_FIX, work or DEFAULT_WORK)
    print(f"fixtures: {FIX}  work: {WORK}" + (f"  fresh seed {a.fresh}" if a.fresh is not None else ""))
    rc = {"build": cmd_build, "hf": cmd_hf, "mlx": cmd_mlx, "collect": cmd_collect}[a.cmd](a)
    sys.exit(rc or 0)


if __name__ == "__main__":
    main()
