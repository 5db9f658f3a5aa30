#!/usr/bin/env python3
"""Tiny random-weight Gemma 3 vision towers (SigLIP + multimodal projector) and
reference image features for gemma.c's vision parity test (tests/unit/test_siglip.c).

Each fixture is a checkpoint in one of the layouts people have, plus two
already-normalized images and the image features that transformers'
Gemma3ForConditionalGeneration.get_image_features computes for them:

  f32-hub        F32, Hub names (vision_tower.vision_model.*, multi_modal_projector.*), OIHW conv,
                 196 patches (3 attention query blocks), patch 6 (K = 108), 49 tokens (pool 2)
  bf16-t5        BF16, the names transformers 5.17 saves (vision_tower.*, multi_modal_projector.*),
                 patch 14 (K = 588, MedGemma's), layer_norm_eps 1e-5
  mlx-bf16       what mlx-vlm's own convert writes (its load_model + sanitize: OHWI conv,
                 vision_tower.vision_model.*, bf16), text weights included
  mlx4-vision    the mlx-bf16 layout with the vision linears and the position table
                 4-bit / group 64 (mx.quantize, as mlx-vlm before skip-multimodal did: fc2's
                 input width is not a multiple of 64, so it stays bf16, like MedGemma's 4304)
  gguf-f16       llama.cpp mmproj, current converter, F16, pool 1 (scale_factor key written)
  gguf-q8_0      llama.cpp mmproj, current converter, Q8_0, 256 patches, default pool 4
  gguf-legacy    llama.cpp mmproj, the first converter (fc1/fc2 written swapped), F16

Subcommands (paths relative to the repository root):

  build    (local: numpy, gguf, mlx, and mlx-vlm in .refwork/venv-siglip)  fixture folders
           tests/fixtures/siglip/<name>/ (checkpoint + pixels.f16) and the reference
           input .refwork/siglip/hf/<name>/: config.json, model.safetensors with the
           weights exactly as the engine reads them (dequantized / widened to f32,
           Hub names, OIHW), orig.safetensors (the f32 weights before rounding or
           quantization), pixels.f32, and numpy.f32 (an independent float64 numpy
           forward pass written from the spec).
  hf       (device: torch + transformers)  get_image_features in float32 (eager
           attention, TF32 off) for every reference input -> .refwork/siglip/out/<name>/;
           also checks it against vision_tower + multi_modal_projector called directly,
           the numpy forward, and records what save_pretrained names the tensors.
  mlx      (local, optional)  mlx-vlm's own vision tower + projector on the MLX fixture
           folders, float32, for the record (its post-LayerNorm eps is 1e-5).
  collect  (local)  ref_hf.f32 + fixture.json into the fixture folders, MANIFEST.

Regenerating everything (build is deterministic; seeds in FIXTURES):

  python3 -m venv --system-site-packages .refwork/venv-siglip && .refwork/venv-siglip/bin/pip install mlx-vlm
  python3 tools/reference/make_siglip_fixtures.py build
  # device machine (torch 2.11 + transformers 5.17), one `run` call carrying [".refwork/siglip/hf"]:
  #   python3 tools/reference/make_siglip_fixtures.py hf --cpu --out $OUT/cpu
  # then here: rm -rf .refwork/siglip/out && mkdir -p .refwork/siglip/out && cp -r <files_at>/cpu/* .refwork/siglip/out/
  python3 tools/reference/make_siglip_fixtures.py mlx        # optional: mlx-vlm's own numbers for the record
  python3 tools/reference/make_siglip_fixtures.py collect

Measured (transformers 5.17.0, torch 2.11.0): HF vs the float64 numpy forward 2.6e-7 .. 6.6e-7 of max|ref|
on CPU and 2.1e-7 .. 6.6e-7 on the GPU (TF32 off); get_image_features equals vision_tower +
multi_modal_projector called directly (0); mlx-vlm 0.7.10 (fp32) on the two MLX folders 5.2e-7 / 4.4e-7.
transformers 5.17 keeps model.vision_tower.* / model.multi_modal_projector.* in memory and its
save_pretrained writes vision_tower.* / multi_modal_projector.* (no vision_model. level).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from numpy_gemma3 import RawTensor, as_dtype, read_safetensors, write_safetensors  # noqa: E402

ROOT = HERE.parents[1]
FIX = ROOT / "tests" / "fixtures" / "siglip"
WORK = ROOT / ".refwork" / "siglip"
HF_IN = WORK / "hf"
HF_OUT = WORK / "out"
SRC = WORK / "src"
VENV_PY = ROOT / ".refwork" / "venv-siglip" / "bin" / "python"

N_IMAGES = 2
TEXT_HIDDEN = 64

# vision sizes: HF vision_config names; tokens = mm_tokens_per_image
FIXTURES = [
    dict(name="f32-hub", seed=41001, layout="hub", dtype="F32",
         vision=dict(image_size=84, patch_size=6, hidden_size=48, intermediate_size=80, num_hidden_layers=2,
                     num_attention_heads=4, layer_norm_eps=1e-6), tokens=49),
    dict(name="bf16-t5", seed=41002, layout="t5", dtype="BF16",
         vision=dict(image_size=56, patch_size=14, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                     num_attention_heads=2, layer_norm_eps=1e-5), tokens=4),
    dict(name="mlx-bf16", seed=41003, layout="mlx", dtype="BF16",
         vision=dict(image_size=64, patch_size=8, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                     num_attention_heads=4, layer_norm_eps=1e-6), tokens=16),
    dict(name="mlx4-vision", seed=41004, layout="mlx4", dtype="BF16",
         vision=dict(image_size=64, patch_size=8, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
                     num_attention_heads=2, layer_norm_eps=1e-6), tokens=4),
    dict(name="gguf-f16", seed=41005, layout="gguf", ftype="F16", converter="current",
         vision=dict(image_size=56, patch_size=14, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                     num_attention_heads=2, layer_norm_eps=1e-6), tokens=16),
    dict(name="gguf-q8_0", seed=41006, layout="gguf", ftype="Q8_0", converter="current",
         vision=dict(image_size=64, patch_size=4, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                     num_attention_heads=4, layer_norm_eps=1e-6), tokens=16),
    dict(name="gguf-legacy", seed=41007, layout="gguf", ftype="F16", converter="legacy",
         vision=dict(image_size=64, patch_size=8, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                     num_attention_heads=2, layer_norm_eps=1e-6), tokens=4),
]
BY_NAME = {f["name"]: f for f in FIXTURES}

VT = "vision_tower.vision_model."
PJ = "multi_modal_projector."
MAX_DIR_BYTES = 2_000_000

# ----------------------------------------------------------------------------- configs


def text_config():
    """A tiny Gemma 3 text config (Hub spelling): only here so that the full model can be built."""
    return {"head_dim": 16, "hidden_size": TEXT_HIDDEN, "intermediate_size": 64, "model_type": "gemma3_text",
            "num_attention_heads": 2, "num_hidden_layers": 1, "num_key_value_heads": 1,
            "query_pre_attn_scalar": 16, "rms_norm_eps": 1e-6, "rope_local_base_freq": 10000.0,
            "rope_scaling": {"factor": 8.0, "rope_type": "linear"}, "rope_theta": 1000000.0,
            "sliding_window": 4, "sliding_window_pattern": 6, "vocab_size": 64}


def model_config(spec):
    v = dict(spec["vision"])
    v.update({"model_type": "siglip_vision_model", "vision_use_head": False, "num_channels": 3,
              "hidden_act": "gelu_pytorch_tanh", "attention_dropout": 0.0})
    c = {"architectures": ["Gemma3ForConditionalGeneration"], "boi_token_index": 255999,
         "eoi_token_index": 256000, "eos_token_id": [1, 106], "image_token_index": 262144,
         "initializer_range": 0.02, "mm_tokens_per_image": spec["tokens"], "model_type": "gemma3",
         "text_config": text_config(), "vision_config": dict(sorted(v.items()))}
    if spec["layout"] in ("mlx", "mlx4"):
        # mlx-vlm reads the pooling from text_config.mm_tokens_per_image (default 256)
        c["text_config"]["mm_tokens_per_image"] = spec["tokens"]
    if spec.get("dtype") == "BF16":
        c["torch_dtype"] = "bfloat16"
    elif spec.get("dtype") == "F32":
        c["torch_dtype"] = "float32"
    return c


# ----------------------------------------------------------------------------- weights


def vision_state_dict(rng, v, text_hidden):
    """Random vision tower + projector weights, float32, Hub names, OIHW conv."""
    d, f, p = v["hidden_size"], v["intermediate_size"], v["patch_size"]
    n_patches = (v["image_size"] // p) ** 2
    f32 = np.float32

    def lin(o, i):
        return (rng.standard_normal((o, i)) / np.sqrt(i)).astype(f32)

    def vec(n, lo=-0.5, hi=0.5):
        return rng.uniform(lo, hi, n).astype(f32)

    sd = {VT + "embeddings.patch_embedding.weight": (rng.standard_normal((d, 3, p, p)) / np.sqrt(3 * p * p)).astype(f32),
          VT + "embeddings.patch_embedding.bias": vec(d),
          VT + "embeddings.position_embedding.weight": (rng.standard_normal((n_patches, d)) * 0.5).astype(f32)}
    for layer in range(v["num_hidden_layers"]):
        lp = f"{VT}encoder.layers.{layer}."
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            # q/k a little larger so that attention is not flat
            sd[lp + f"self_attn.{proj}.weight"] = lin(d, d) * (f32(1.6) if proj in ("q_proj", "k_proj") else f32(1))
            sd[lp + f"self_attn.{proj}.bias"] = vec(d)
        for ln in ("layer_norm1", "layer_norm2"):
            sd[lp + f"{ln}.weight"] = vec(d, 0.5, 1.5)
            sd[lp + f"{ln}.bias"] = vec(d)
        sd[lp + "mlp.fc1.weight"] = lin(f, d) * f32(2)
        sd[lp + "mlp.fc1.bias"] = vec(f)
        sd[lp + "mlp.fc2.weight"] = lin(d, f)
        sd[lp + "mlp.fc2.bias"] = vec(d)
    sd[VT + "post_layernorm.weight"] = vec(d, 0.5, 1.5)
    sd[VT + "post_layernorm.bias"] = vec(d)
    # a bare parameter used as x @ M: [vision hidden, text hidden]
    sd[PJ + "mm_input_projection_weight"] = lin(d, text_hidden)
    sd[PJ + "mm_soft_emb_norm.weight"] = vec(d)   # Gemma RMSNorm offset (scale 1 + w)
    return {k: np.ascontiguousarray(a, dtype=f32) for k, a in sd.items()}


def text_state_dict(rng):
    """Tiny random text weights (Hub names), so that mlx-vlm can build and convert the full model."""
    t = text_config()
    D, F, H, KV, Dh, V = (t["hidden_size"], t["intermediate_size"], t["num_attention_heads"],
                          t["num_key_value_heads"], t["head_dim"], t["vocab_size"])
    f32 = np.float32
    sd = {"language_model.model.embed_tokens.weight": (rng.standard_normal((V, D)) / np.sqrt(D)).astype(f32),
          "language_model.model.norm.weight": np.zeros(D, f32)}
    lp = "language_model.model.layers.0."
    for nm, shape in (("self_attn.q_proj", (H * Dh, D)), ("self_attn.k_proj", (KV * Dh, D)),
                      ("self_attn.v_proj", (KV * Dh, D)), ("self_attn.o_proj", (D, H * Dh)),
                      ("mlp.gate_proj", (F, D)), ("mlp.up_proj", (F, D)), ("mlp.down_proj", (D, F))):
        sd[lp + nm + ".weight"] = (rng.standard_normal(shape) / np.sqrt(shape[1])).astype(f32)
    for nm in ("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
               "post_feedforward_layernorm"):
        sd[lp + nm + ".weight"] = np.zeros(D, f32)
    for nm in ("q_norm", "k_norm"):
        sd[lp + "self_attn." + nm + ".weight"] = np.zeros(Dh, f32)
    return sd


def make_pixels(rng, v):
    """Two already-normalized images in [-1, 1]: a smooth one and a noisy one."""
    s = v["image_size"]
    yy, xx = np.meshgrid(np.linspace(-1, 1, s), np.linspace(-1, 1, s), indexing="ij")
    smooth = np.stack([np.sin(3 * xx + c) * np.cos(2 * yy - c) for c in range(3)])
    noisy = rng.uniform(-1, 1, (3, s, s))
    # stored as f16 (half the bytes); every value is exact in the float32 the engine and transformers get
    return np.stack([smooth, noisy]).astype(np.float16).astype(np.float32)


# ----------------------------------------------------------------------------- numpy reference


def layer_norm(x, w, b, eps):
    m = x.mean(-1, keepdims=True)
    var = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / np.sqrt(var + eps) * w + b


def gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))


def numpy_features(v, tokens, W, pixels):
    """get_image_features in float64, from the spec (section 3.2-3.5)."""
    W = {k: np.asarray(a, np.float64) for k, a in W.items()}
    B, C, S, _ = pixels.shape
    p, D, H = v["patch_size"], v["hidden_size"], v["num_attention_heads"]
    eps = v["layer_norm_eps"]
    n = S // p
    x = pixels.astype(np.float64).reshape(B, C, n, p, n, p).transpose(0, 2, 4, 1, 3, 5).reshape(B, n * n, C * p * p)
    x = x @ W[VT + "embeddings.patch_embedding.weight"].reshape(D, -1).T + W[VT + "embeddings.patch_embedding.bias"]
    x = x + W[VT + "embeddings.position_embedding.weight"]
    dh = D // H
    for layer in range(v["num_hidden_layers"]):
        lp = f"{VT}encoder.layers.{layer}."
        def lin(t, nm):
            return t @ W[lp + nm + ".weight"].T + W[lp + nm + ".bias"]
        y = layer_norm(x, W[lp + "layer_norm1.weight"], W[lp + "layer_norm1.bias"], eps)
        q, k, vv = (lin(y, "self_attn." + m).reshape(B, -1, H, dh).transpose(0, 2, 1, 3) for m in ("q_proj", "k_proj", "v_proj"))
        s = q @ k.transpose(0, 1, 3, 2) * dh ** -0.5
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        a = (s @ vv).transpose(0, 2, 1, 3).reshape(B, -1, D)
        x = x + lin(a, "self_attn.out_proj")
        y = layer_norm(x, W[lp + "layer_norm2.weight"], W[lp + "layer_norm2.bias"], eps)
        x = x + lin(gelu_tanh(lin(y, "mlp.fc1")), "mlp.fc2")
    x = layer_norm(x, W[VT + "post_layernorm.weight"], W[VT + "post_layernorm.bias"], eps)
    side = int(round(tokens ** 0.5))
    kk = n // side
    g = x.reshape(B, side, kk, side, kk, D).mean(axis=(2, 4)).reshape(B, side * side, D)
    g = g / np.sqrt((g ** 2).mean(-1, keepdims=True) + eps) * (1 + W[PJ + "mm_soft_emb_norm.weight"])
    return g @ W[PJ + "mm_input_projection_weight"]


# ----------------------------------------------------------------------------- layouts


def t5_name(name):
    """Hub name -> the name transformers 5.17's save_pretrained writes (the `hf` step records it:
    vision_tower.* without vision_model., multi_modal_projector.*; in memory both carry a model. prefix)."""
    if name.startswith(VT):
        return "vision_tower." + name[len(VT):]
    return name


def bf16_roundtrip(a):
    return as_dtype(a, "BF16").to_f32().reshape(a.shape)


def write_hub_like(spec, sd, d):
    """f32-hub / bf16-t5: one safetensors file with the vision tensors only."""
    dt = spec["dtype"]
    name_of = t5_name if spec["layout"] == "t5" else (lambda s: s)
    write_safetensors(d / "model.safetensors", {name_of(k): as_dtype(a, dt) for k, a in sd.items()},
                      metadata={"format": "pt"})
    view = {k: (a if dt == "F32" else bf16_roundtrip(a)) for k, a in sd.items()}
    return view


def mlx_convert(spec, sd, text_sd, d):
    """Run mlx-vlm's own conversion (load_model + sanitize + cast + save_weights) on an HF folder."""
    src = SRC / spec["name"]
    if src.exists():
        shutil.rmtree(src)
    src.mkdir(parents=True)
    cfg = model_config(spec)
    (src / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    allw = dict(text_sd)
    allw.update(sd)
    write_safetensors(src / "model.safetensors", {k: as_dtype(a, "F32") for k, a in allw.items()},
                      metadata={"format": "pt"})
    out = SRC / (spec["name"] + "-mlx")
    if out.exists():
        shutil.rmtree(out)
    code = r"""
import sys, json, glob, shutil
from pathlib import Path
import mlx.core as mx
from mlx.utils import tree_map_with_path
from mlx_vlm.utils import load_model, save_weights
src, dst = Path(sys.argv[1]), Path(sys.argv[2])
model = load_model(src, lazy=False)          # the model class' sanitize runs here (OIHW -> OHWI)
dtype = mx.bfloat16                          # convert(): config torch_dtype bfloat16
model.update(tree_map_with_path(lambda k, v: v.astype(dtype) if mx.issubdtype(v.dtype, mx.floating) else v,
                                model.parameters()))
save_weights(dst, model, donate_weights=True)
shutil.copy(src / "config.json", dst)
"""
    subprocess.run([str(VENV_PY), "-c", code, str(src), str(out)], check=True)
    for f in sorted(out.iterdir()):
        if f.name.endswith(".safetensors") or f.name in ("config.json", "model.safetensors.index.json"):
            shutil.copy(f, d / f.name)


def mlx_quantize_vision(spec, d):
    """Quantize the vision linears and the position table to 4 bits / group 64 (mx.quantize),
    like mlx-vlm's get_class_predicate before it skipped multimodal modules."""
    import mlx.core as mx
    path = d / "model.safetensors"
    w, meta = mx.load(str(path), return_metadata=True)
    out = {}
    quantized = []
    for k, a in w.items():
        mod = k[: -len(".weight")] if k.endswith(".weight") else None
        is_target = mod is not None and k.startswith(VT) and a.ndim == 2 and (
            ".self_attn." in k or ".mlp.fc" in k or "position_embedding" in k) and a.shape[-1] % 64 == 0
        if is_target:
            q, s, b = mx.quantize(a, group_size=64, bits=4)
            out[mod + ".weight"], out[mod + ".scales"], out[mod + ".biases"] = q, s, b
            quantized.append(mod)
        else:
            out[k] = a
    mx.save_safetensors(str(path), out, metadata=meta)
    idx = d / "model.safetensors.index.json"
    if idx.exists():
        j = json.loads(idx.read_text())
        j["weight_map"] = {k: "model.safetensors" for k in sorted(out)}
        idx.write_text(json.dumps(j, indent=4) + "\n")
    cfg = json.loads((d / "config.json").read_text())
    cfg["quantization"] = {"group_size": 64, "bits": 4}
    cfg["quantization_config"] = {"group_size": 64, "bits": 4}
    (d / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    return quantized


def unpack_u32(words, bits, n):
    """Independent unpacker: element k at bits [k*bits, (k+1)*bits) of the little-endian row stream."""
    raw = np.ascontiguousarray(words).view(np.uint8).reshape(words.shape[0], -1)
    bitsarr = np.unpackbits(raw, axis=1, bitorder="little")[:, : n * bits].reshape(words.shape[0], n, bits)
    return (bitsarr * (1 << np.arange(bits))).sum(-1)


def mlx_view(spec, d):
    """The fixture's vision tensors as the engine reads them: f32, OIHW, Hub names."""
    t = {}
    for f in sorted(d.glob("*.safetensors")):
        t.update(read_safetensors(f))
    view = {}
    for k, rt in t.items():
        if not (k.startswith(VT) or k.startswith(PJ)) or k.endswith((".scales", ".biases")):
            continue
        mod = k[: -len(".weight")]
        if mod + ".scales" in t:
            s, b = t[mod + ".scales"].to_f32(), t[mod + ".biases"].to_f32()
            n = s.shape[1] * 64
            q = unpack_u32(rt.data, 4, n).astype(np.float32)
            a = q * np.repeat(s, 64, axis=1) + np.repeat(b, 64, axis=1)   # f32, as an f32 port computes it
        else:
            a = rt.to_f32().reshape(rt.shape)
        if k.endswith("patch_embedding.weight"):
            assert a.shape[1] == a.shape[2] and a.shape[3] == 3, a.shape   # OHWI as mlx-vlm saves it
            a = a.transpose(0, 3, 1, 2)
        view[k] = np.ascontiguousarray(a, np.float32)
    return view


def write_gguf(spec, sd, d):
    """An mmproj GGUF from the same state dict, written the way llama.cpp's converters do
    (tools/reference/make_mmproj_fixture.py repeats them step by step)."""
    import gguf
    import make_mmproj_fixture as mm
    fx = {"vision": spec["vision"], "text_hidden": TEXT_HIDDEN, "image_seq_length": spec["tokens"],
          "ftype": {"F16": gguf.LlamaFileType.MOSTLY_F16, "Q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}[spec["ftype"]],
          "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}
    path = d / "mmproj.gguf"
    w = gguf.GGUFWriter(str(path), "clip")
    if spec["converter"] == "current":
        tensors = mm.convert_current(sd, fx)
        mm.write_metadata_current(w, fx)
    else:
        tensors = mm.convert_legacy(sd, fx)
        mm.write_metadata_legacy(w, fx)
    view = {}
    types = {}
    for hf_name, gguf_name, data, stored, qtype in tensors:
        w.add_tensor(gguf_name, stored, raw_dtype=qtype)
        deq = gguf.quants.dequantize(np.ascontiguousarray(stored).view(np.uint8), qtype).astype(np.float32)
        deq = np.ascontiguousarray(deq).reshape(data.shape)
        if "soft_emb_norm" in hf_name:
            deq = deq - np.float32(1)   # the file holds 1 + w; transformers adds the 1 itself
        view[hf_name] = deq
        types[hf_name] = qtype.name
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return view, types


# ----------------------------------------------------------------------------- build


def build_one(spec):
    name = spec["name"]
    v = spec["vision"]
    assert v["image_size"] % v["patch_size"] == 0
    pps = v["image_size"] // v["patch_size"]
    side = int(round(spec["tokens"] ** 0.5))
    assert side * side == spec["tokens"] and pps % side == 0, name
    rng = np.random.default_rng(spec["seed"])
    sd = vision_state_dict(rng, v, TEXT_HIDDEN)
    text_sd = text_state_dict(rng)
    pixels = make_pixels(rng, v)

    d = FIX / name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    info = {"layout": spec["layout"]}
    if spec["layout"] in ("hub", "t5"):
        view = write_hub_like(spec, sd, d)
        (d / "config.json").write_text(json.dumps(model_config(spec), indent=2, sort_keys=True) + "\n")
        info["dtype"] = spec["dtype"]
    elif spec["layout"] in ("mlx", "mlx4"):
        mlx_convert(spec, sd, text_sd, d)
        if spec["layout"] == "mlx4":
            info["quantized_modules"] = mlx_quantize_vision(spec, d)
        view = mlx_view(spec, d)
        info["dtype"] = "BF16" + (" + MLX 4-bit g64" if spec["layout"] == "mlx4" else "")
    else:
        view, types = write_gguf(spec, sd, d)
        (d / "config.json").unlink(missing_ok=True)
        info["dtype"] = "GGUF " + spec["ftype"]
        info["gguf_types"] = sorted(set(types.values()))
    assert sorted(view) == sorted(sd), (name, sorted(set(sd) ^ set(view)))
    for k in sd:
        assert view[k].shape == sd[k].shape, (k, view[k].shape, sd[k].shape)
    pixels.astype("<f2").tofile(d / "pixels.f16")

    ref = HF_IN / name
    if ref.exists():
        shutil.rmtree(ref)
    ref.mkdir(parents=True)
    cfg = model_config(spec)
    cfg.pop("torch_dtype", None)
    (ref / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    write_safetensors(ref / "model.safetensors", {k: as_dtype(a, "F32") for k, a in view.items()})
    write_safetensors(ref / "orig.safetensors", {k: as_dtype(a, "F32") for k, a in sd.items()})
    pixels.astype("<f4").tofile(ref / "pixels.f32")
    feats = numpy_features(v, spec["tokens"], view, pixels)
    feats.astype("<f4").tofile(ref / "numpy.f32")
    orig = numpy_features(v, spec["tokens"], sd, pixels)
    info["numpy_rel_vs_unrounded_weights"] = float(np.abs(feats - orig).max() / np.abs(orig).max())
    (ref / "info.json").write_text(json.dumps(info, indent=1) + "\n")
    size = sum(f.stat().st_size for f in d.iterdir())
    print(f"  {name:12s} {size / 1e3:7.1f} KB  {info['dtype']}  max|feat| {np.abs(feats).max():.3g}  "
          f"rounding/quantization effect {info['numpy_rel_vs_unrounded_weights']:.2e}")


def cmd_build(args):
    FIX.mkdir(parents=True, exist_ok=True)
    for spec in FIXTURES:
        if args.only and spec["name"] not in args.only:
            continue
        build_one(spec)
    total = sum(f.stat().st_size for f in FIX.rglob("*") if f.is_file())
    print(f"{FIX}: {total / 1e6:.2f} MB")
    assert total < MAX_DIR_BYTES, total


# ----------------------------------------------------------------------------- hf (device)


def tensor_features(out):
    """get_image_features' result: a tensor (4.x) or an output object (5.x)."""
    if hasattr(out, "pooler_output") and out.pooler_output is not None:
        return out.pooler_output
    if isinstance(out, (tuple, list)):
        return out[0]
    return out


def cmd_hf(args):
    import torch
    import transformers
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    dev = torch.device("cuda" if torch.cuda.is_available() and not args.cpu else "cpu")
    versions = dict(transformers=transformers.__version__, torch=torch.__version__, device=str(dev))
    print("versions:", versions, flush=True)
    out_root = Path(args.out) if args.out else HF_OUT
    if out_root.exists():
        shutil.rmtree(out_root)
    out_root.mkdir(parents=True)
    summary = {"versions": versions, "fixtures": {}}
    names = args.only or [f["name"] for f in FIXTURES]
    for nm in names:
        rd = HF_IN / nm
        cfg = transformers.Gemma3Config.from_pretrained(str(rd))
        cfg._attn_implementation = "eager"
        cfg.vision_config._attn_implementation = "eager"
        cfg.text_config._attn_implementation = "eager"
        torch.manual_seed(0)
        model = transformers.Gemma3ForConditionalGeneration(cfg).float().eval()
        mem = model.state_dict()
        pixels = np.fromfile(rd / "pixels.f32", "<f4").reshape(N_IMAGES, 3, cfg.vision_config.image_size, -1)

        def canon(k):
            for a in ("model.vision_tower.vision_model.", "model.vision_tower.", "vision_tower.vision_model."):
                if k.startswith(a):
                    return VT + k[len(a):]
            for a in ("model.multi_modal_projector.", "multi_modal_projector."):
                if k.startswith(a):
                    return PJ + k[len(a):]
            return None

        def run(path):
            w = {k: torch.from_numpy(t.to_f32().reshape(t.shape).copy()) for k, t in read_safetensors(path).items()}
            sd = {}
            for k in mem:
                c = canon(k)
                if c is not None:
                    assert c in w, f"{nm}: reference input lacks {c} (for {k})"
                    assert tuple(w[c].shape) == tuple(mem[k].shape), (k, w[c].shape, mem[k].shape)
                    sd[k] = w[c]
            used = {canon(k) for k in sd}
            assert used == set(w), f"{nm}: unused {sorted(set(w) - used)}"
            model.load_state_dict(sd, strict=False)
            m = model.to(dev)
            px = torch.from_numpy(pixels).to(dev)
            with torch.no_grad():
                f = tensor_features(m.get_image_features(pixel_values=px)).float()
                # the same, module by module
                vt = m.model.vision_tower(pixel_values=px).last_hidden_state
                f2 = m.model.multi_modal_projector(vt).float()
            f, f2 = f.cpu().numpy(), f2.cpu().numpy()
            f = f.reshape(N_IMAGES, -1, f.shape[-1])
            return f, float(np.abs(f - f2.reshape(f.shape)).max())

        feats, self_diff = run(rd / "model.safetensors")
        orig, _ = run(rd / "orig.safetensors")
        npy = np.fromfile(rd / "numpy.f32", "<f4").reshape(feats.shape)
        vc = model.config.vision_config
        seen = dict(hidden=vc.hidden_size, ffn=vc.intermediate_size, layers=vc.num_hidden_layers,
                    heads=vc.num_attention_heads, image=vc.image_size, patch=vc.patch_size,
                    eps=vc.layer_norm_eps, tokens=model.config.mm_tokens_per_image,
                    text_hidden=model.config.text_config.hidden_size,
                    soft_emb_norm_eps=float(model.model.multi_modal_projector.mm_soft_emb_norm.eps),
                    post_ln_eps=float(model.model.vision_tower.vision_model.post_layernorm.eps
                                      if hasattr(model.model.vision_tower, "vision_model")
                                      else model.model.vision_tower.post_layernorm.eps))
        od = out_root / nm
        od.mkdir()
        feats.astype("<f4").tofile(od / "ref_hf.f32")
        mx_abs = float(np.abs(feats).max())
        summary["fixtures"][nm] = dict(
            shape=list(feats.shape), max_abs=mx_abs, nan=bool(~np.isfinite(feats).all()),
            rel_vs_numpy=float(np.abs(feats - npy).max() / np.abs(npy).max()),
            rel_get_image_features_vs_modules=self_diff / mx_abs,
            rel_vs_unrounded_weights=float(np.abs(feats - orig).max() / np.abs(orig).max()),
            config_seen=seen)
        print(nm, json.dumps(summary["fixtures"][nm]), flush=True)
    # what transformers writes for a multimodal Gemma 3 (tensor names of save_pretrained)
    tmp = out_root / "_saved"
    model.save_pretrained(str(tmp))
    keys = []
    for f in sorted(tmp.glob("*.safetensors")):
        keys += list(read_safetensors(f).keys())
    summary["save_pretrained_vision_names"] = sorted(k for k in keys if "vision" in k or "projector" in k)[:8]
    summary["in_memory_vision_names"] = sorted(k for k in mem if "vision" in k or "projector" in k)[:8]
    shutil.rmtree(tmp)
    (out_root / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print("saved names:", summary["save_pretrained_vision_names"][:4])
    print("in-memory names:", summary["in_memory_vision_names"][:4])
    if args.tar:
        with tarfile.open(args.tar, "w") as t:
            t.add(out_root, arcname="out")


# ----------------------------------------------------------------------------- mlx (local, optional)


def cmd_mlx(args):
    code = r"""
import sys, json
from pathlib import Path
import numpy as np
import mlx.core as mx
from mlx.utils import tree_map
from mlx_vlm.utils import load_model
d, ref_out, n_img = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
model = load_model(d, lazy=False)
model.update(tree_map(lambda v: v.astype(mx.float32) if mx.issubdtype(v.dtype, mx.floating) else v, model.parameters()))
cfg = json.loads((d / "config.json").read_text())
s = cfg["vision_config"]["image_size"]
px = np.fromfile(d / "pixels.f16", "<f2").astype(np.float32).reshape(n_img, 3, s, s)
h, _, _ = model.vision_tower(mx.array(px).transpose(0, 2, 3, 1), output_hidden_states=True)
f = np.array(model.multi_modal_projector(h).astype(mx.float32))
ref = np.fromfile(ref_out / "ref_hf.f32", "<f4").reshape(f.shape)
print(json.dumps({"rel_mlx_vlm_vs_hf": float(np.abs(f - ref).max() / np.abs(ref).max())}))
"""
    res = {}
    for spec in FIXTURES:
        if spec["layout"] not in ("mlx", "mlx4"):
            continue
        r = subprocess.run([str(VENV_PY), "-c", code, str(FIX / spec["name"]), str(HF_OUT / spec["name"]),
                            str(N_IMAGES)], check=True, capture_output=True, text=True)
        res[spec["name"]] = json.loads(r.stdout.strip().splitlines()[-1])
        print(spec["name"], res[spec["name"]])
    (HF_OUT / "mlx.json").write_text(json.dumps(res, indent=1) + "\n")


# ----------------------------------------------------------------------------- collect


def cmd_collect(args):
    summary = json.loads((HF_OUT / "summary.json").read_text())
    mlx = json.loads((HF_OUT / "mlx.json").read_text()) if (HF_OUT / "mlx.json").exists() else {}
    names = []
    for spec in FIXTURES:
        nm = spec["name"]
        s = summary["fixtures"][nm]
        assert not s["nan"] and s["rel_vs_numpy"] < 1e-5 and s["rel_get_image_features_vs_modules"] < 1e-6, (nm, s)
        v = spec["vision"]
        seen = s["config_seen"]
        assert (seen["hidden"], seen["ffn"], seen["layers"], seen["heads"], seen["image"], seen["patch"],
                seen["tokens"], seen["text_hidden"]) == (
            v["hidden_size"], v["intermediate_size"], v["num_hidden_layers"], v["num_attention_heads"],
            v["image_size"], v["patch_size"], spec["tokens"], TEXT_HIDDEN), (nm, seen)
        d = FIX / nm
        shutil.copy(HF_OUT / nm / "ref_hf.f32", d / "ref_hf.f32")
        info = json.loads((HF_IN / nm / "info.json").read_text())
        fj = dict(name=nm, layout=spec["layout"], weights=info["dtype"], n_images=N_IMAGES,
                  image_size=v["image_size"], tokens_per_image=spec["tokens"], text_hidden=TEXT_HIDDEN,
                  max_abs_ref=s["max_abs"], checkpoint="mmproj.gguf" if spec["layout"] == "gguf" else ".",
                  reference="transformers %s Gemma3ForConditionalGeneration.get_image_features, float32, eager, "
                            "on the weights as stored (dequantized / widened to f32)" % summary["versions"]["transformers"],
                  rel_hf_vs_numpy=s["rel_vs_numpy"],
                  rel_vs_unrounded_f32_weights=s["rel_vs_unrounded_weights"])
        if nm in mlx:
            fj["rel_mlx_vlm_vs_hf"] = mlx[nm]["rel_mlx_vlm_vs_hf"]
        (d / "fixture.json").write_text(json.dumps(fj, indent=1) + "\n")
        names.append(nm)
    (FIX / "MANIFEST").write_text("\n".join(names) + "\n")
    total = sum(f.stat().st_size for f in FIX.rglob("*") if f.is_file())
    print(f"{FIX}: {len(names)} fixtures, {total / 1e6:.2f} MB")
    assert total < MAX_DIR_BYTES, total


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cmd", choices=["build", "hf", "mlx", "collect"])
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--cpu", action="store_true", help="hf: run on the CPU even if a GPU is there")
    ap.add_argument("--out", help="hf: output folder (default .refwork/siglip/out)")
    ap.add_argument("--tar", help="hf: also write the output folder into this tar")
    args = ap.parse_args()
    {"build": cmd_build, "hf": cmd_hf, "mlx": cmd_mlx, "collect": cmd_collect}[args.cmd](args)


if __name__ == "__main__":
    main()
