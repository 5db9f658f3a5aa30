#!/usr/bin/env python3
"""Whole multimodal prompts: image files in, all-position logits out, against
transformers' Gemma3ForConditionalGeneration.

The vision tower has its own parity fixtures (make_siglip_fixtures.py) and the
text model its own (make_gemma3_fixtures.py); this checks the chain that joins
them, end to end: decode + resize + normalize (Gemma3ImageProcessor), tower,
projector, splice into the prompt (unscaled soft tokens), bidirectional
attention inside each image, logits.  Each fixture in tests/fixtures/mm/<name>/:

  config.json, model.safetensors   a tiny random Gemma 3 multimodal checkpoint
                                    (every weight random, norms included)
  image0.png, image1.jpg            the prompt's images, real files that need resizing
  pixels.f32                        the HF PIL processor's pixel_values [n, 3, S, S]
  features.f32                      get_image_features [n, tokens, hidden]
  ref_hf.f32                        logits [n_tokens, vocab] of the whole prompt
  fixture.json                      tokens (image runs as 262144), shapes, versions

The image token id 262144 lies outside the tiny vocabulary, as in transformers'
own tiny test models: Gemma3Model then looks up id 0 for those positions and
overwrites them with the image features.

  build    (local; numpy + Pillow, e.g. .refwork/venv-vision/bin/python)  checkpoint + images
  pixels   (local: transformers 5.17 + Pillow 13, .refwork/venv-vision)  pixels.f32 from
           Gemma3ImageProcessorPil, the PIL processor mlx-vlm uses (use_fast=False).  Not on the
           device: with torchvision installed, transformers 5's Gemma3ImageProcessor is the
           torchvision backend, which differs from PIL by one level on some pixels.
  hf       (device: torch + transformers 5.17; writes --out DIR)  features, logits from pixels.f32
  collect  (local)  --from DIR into the fixture folders

Steps: build, pixels (locally), then one device `run` call (the fixture folders travel with the
working tree; the saved bf16 checkpoint is moved up a level, as the tool returns two levels):
  python3 tools/reference/make_mm_fixtures.py hf --out $OUT/mm && cd $OUT/mm/e2e-bf16-t5save &&
    for f in checkpoint/*; do mv "$f" "ckpt_${f#checkpoint/}"; done && rmdir checkpoint
then here: python3 tools/reference/make_mm_fixtures.py collect --from <files_at>/mm
"""
import argparse
import json
import math
import os
import shutil
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from numpy_gemma3 import RawTensor, write_safetensors  # noqa: E402

ROOT = HERE.parents[1]
FIX = ROOT / "tests" / "fixtures" / "mm"
IMG = 262144

FIXTURES = [
    dict(name="e2e-f32-hub", seed=51001,
         text=dict(hidden=64, inter=128, layers=4, heads=2, kv=1, head_dim=32, vocab=300, window=6, pattern=2),
         vision=dict(image_size=56, patch_size=14, hidden=32, inter=48, layers=2, heads=2),
         tokens_per_image=4,
         # text, image 0 (80x50 RGB PNG), text, image 1 (36x60 JPEG), text
         prompt=[(7, None), (0, "image0.png"), (5, None), (1, "image1.jpg"), (6, None)]),
]


def lin(rng, o, i):
    return rng.normal(0.0, 1.0 / math.sqrt(i), (o, i)).astype(np.float32)


def weights(fx):
    rng = np.random.default_rng(fx["seed"])
    t, v = fx["text"], fx["vision"]
    D, V, F, L, H, KV, Dh = (t[k] for k in ("hidden", "vocab", "inter", "layers", "heads", "kv", "head_dim"))
    W = {"language_model.model.embed_tokens.weight": rng.normal(0, 1 / math.sqrt(D), (V, D)).astype(np.float32)}
    for l in range(L):
        p = f"language_model.model.layers.{l}."
        for nm, o, i in [("self_attn.q_proj", H * Dh, D), ("self_attn.k_proj", KV * Dh, D),
                         ("self_attn.v_proj", KV * Dh, D), ("self_attn.o_proj", D, H * Dh),
                         ("mlp.gate_proj", F, D), ("mlp.up_proj", F, D), ("mlp.down_proj", D, F)]:
            W[p + nm + ".weight"] = lin(rng, o, i)
        W[p + "self_attn.q_norm.weight"] = rng.uniform(-0.5, 1.5, Dh).astype(np.float32)
        W[p + "self_attn.k_norm.weight"] = rng.uniform(-0.5, 1.5, Dh).astype(np.float32)
        for nm in ("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
                   "post_feedforward_layernorm"):
            W[p + nm + ".weight"] = rng.uniform(-0.5, 0.5, D).astype(np.float32)
    W["language_model.model.norm.weight"] = rng.uniform(2.0, 4.0, D).astype(np.float32)
    h, inter, ps = v["hidden"], v["inter"], v["patch_size"]
    npos = (v["image_size"] // ps) ** 2
    pre = "vision_tower.vision_model."

    def n(*shape, s=0.05):
        return rng.normal(0.0, s, shape).astype(np.float32)
    W[pre + "embeddings.patch_embedding.weight"] = n(h, 3, ps, ps, s=0.1)
    W[pre + "embeddings.patch_embedding.bias"] = n(h)
    W[pre + "embeddings.position_embedding.weight"] = n(npos, h, s=0.3)
    for l in range(v["layers"]):
        p = pre + f"encoder.layers.{l}."
        for ln in ("layer_norm1", "layer_norm2"):
            W[p + ln + ".weight"] = (1.0 + n(h, s=0.2)).astype(np.float32)
            W[p + ln + ".bias"] = n(h)
        for pr in ("q_proj", "k_proj", "v_proj", "out_proj"):
            W[p + f"self_attn.{pr}.weight"] = n(h, h, s=1 / math.sqrt(h))
            W[p + f"self_attn.{pr}.bias"] = n(h)
        W[p + "mlp.fc1.weight"] = n(inter, h, s=1 / math.sqrt(h))
        W[p + "mlp.fc1.bias"] = n(inter)
        W[p + "mlp.fc2.weight"] = n(h, inter, s=1 / math.sqrt(inter))
        W[p + "mlp.fc2.bias"] = n(h)
    W[pre + "post_layernorm.weight"] = (1.0 + n(h, s=0.2)).astype(np.float32)
    W[pre + "post_layernorm.bias"] = n(h)
    W["multi_modal_projector.mm_input_projection_weight"] = n(h, D, s=1 / math.sqrt(h))
    W["multi_modal_projector.mm_soft_emb_norm.weight"] = rng.uniform(-0.5, 0.5, h).astype(np.float32)
    return W


def config(fx):
    t, v = fx["text"], fx["vision"]
    types = ["full_attention" if (l + 1) % t["pattern"] == 0 else "sliding_attention" for l in range(t["layers"])]
    return {
        "architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3",
        "boi_token_index": 255999, "eoi_token_index": 256000, "image_token_index": IMG,
        "mm_tokens_per_image": fx["tokens_per_image"], "initializer_range": 0.02, "tie_word_embeddings": True,
        "torch_dtype": "float32", "transformers_version": "4.50.0.dev0",
        "text_config": {
            "model_type": "gemma3_text", "hidden_size": t["hidden"], "intermediate_size": t["inter"],
            "num_hidden_layers": t["layers"], "num_attention_heads": t["heads"], "num_key_value_heads": t["kv"],
            "head_dim": t["head_dim"], "query_pre_attn_scalar": t["head_dim"], "vocab_size": t["vocab"],
            "sliding_window": t["window"], "sliding_window_pattern": t["pattern"], "rope_theta": 1000000.0,
            "rope_local_base_freq": 10000.0, "rope_scaling": {"rope_type": "linear", "factor": 8.0},
            "rms_norm_eps": 1e-6, "max_position_embeddings": 4096, "hidden_activation": "gelu_pytorch_tanh"},
        "vision_config": {
            "model_type": "siglip_vision_model", "hidden_size": v["hidden"], "intermediate_size": v["inter"],
            "num_hidden_layers": v["layers"], "num_attention_heads": v["heads"], "image_size": v["image_size"],
            "patch_size": v["patch_size"], "layer_norm_eps": 1e-6, "vision_use_head": False,
            "hidden_act": "gelu_pytorch_tanh", "num_channels": 3},
    }


def make_images(d, rng):
    from PIL import Image
    y, x = np.mgrid[0:50, 0:80]
    a = np.stack([x * 3 % 256, (y * 5 + x) % 256, (x * y) % 256], -1).astype(np.float64)
    a = np.clip(a + rng.normal(0, 20, a.shape), 0, 255).astype(np.uint8)
    Image.fromarray(a, "RGB").save(d / "image0.png")
    y, x = np.mgrid[0:60, 0:36]
    b = np.stack([np.hypot(x - 18, y - 30) * 6 % 256, 200 - y * 3, x * 7 % 256], -1)
    b = np.clip(b + rng.normal(0, 10, b.shape), 0, 255).astype(np.uint8)
    Image.fromarray(b, "RGB").save(d / "image1.jpg", quality=90)


def tokens(fx):
    rng = np.random.default_rng(fx["seed"] + 1)
    out = [2]
    for count, img in fx["prompt"]:
        if img is None:
            out += [int(t) for t in rng.integers(3, fx["text"]["vocab"], count)]
        else:
            out += [IMG] * fx["tokens_per_image"]
    return out


def cmd_build(args):
    for fx in FIXTURES:
        d = FIX / fx["name"]
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        W = weights(fx)
        write_safetensors(d / "model.safetensors", {k: RawTensor("F32", v) for k, v in W.items()},
                          metadata={"format": "pt"})
        (d / "config.json").write_text(json.dumps(config(fx), indent=1) + "\n")
        make_images(d, np.random.default_rng(fx["seed"] + 2))
        meta = dict(name=fx["name"], tokens=tokens(fx), vocab_size=fx["text"]["vocab"],
                    images=[img for _, img in fx["prompt"] if img], image_size=fx["vision"]["image_size"],
                    tokens_per_image=fx["tokens_per_image"], hidden=fx["text"]["hidden"])
        (d / "fixture.json").write_text(json.dumps(meta, indent=1) + "\n")
        print(d, len(meta["tokens"]), "tokens")
    (FIX / "MANIFEST").write_text("".join(fx["name"] + "\n" for fx in FIXTURES))


# Made on the device from a built fixture: the same weights rounded to bf16 and written by transformers
# 5.17's own save_pretrained (its current names and config spelling), references computed in float32
# from the stored bf16 values.
DERIVED = [dict(name="e2e-bf16-t5save", base="e2e-f32-hub")]


def cmd_pixels(args):
    import PIL
    import transformers
    from PIL import Image
    from transformers.models.gemma3.image_processing_pil_gemma3 import Gemma3ImageProcessorPil
    for fx in FIXTURES:
        d = FIX / fx["name"]
        meta = json.loads((d / "fixture.json").read_text())
        S = meta["image_size"]
        proc = Gemma3ImageProcessorPil(size={"height": S, "width": S}, do_pan_and_scan=False)
        imgs = [Image.open(d / f).convert("RGB") for f in meta["images"]]
        pixels = np.asarray(proc(images=imgs, return_tensors="np")["pixel_values"], dtype=np.float32)
        pixels.astype("<f4").tofile(d / "pixels.f32")
        meta["pixels"] = dict(processor="Gemma3ImageProcessorPil", transformers=transformers.__version__,
                              pillow=PIL.__version__, shape=list(pixels.shape))
        (d / "fixture.json").write_text(json.dumps(meta, indent=1) + "\n")
        print(d, meta["pixels"])


def cmd_hf(args):
    import torch
    import transformers
    from PIL import Image
    from transformers import Gemma3ForConditionalGeneration, Gemma3ImageProcessor
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    out_root = Path(args.out)
    for fx in FIXTURES:
        d = FIX / fx["name"]
        meta = json.loads((d / "fixture.json").read_text())
        model = Gemma3ForConditionalGeneration.from_pretrained(d, torch_dtype=torch.float32,
                                                               attn_implementation="eager").eval()
        S = meta["image_size"]
        n = len(meta["images"])
        pixels = torch.from_numpy(np.fromfile(d / "pixels.f32", dtype="<f4").reshape(n, 3, S, S).copy())
        # for the record: the default (torchvision) processor against the PIL one
        proc = Gemma3ImageProcessor(size={"height": S, "width": S}, do_pan_and_scan=False)
        imgs = [Image.open(d / f).convert("RGB") for f in meta["images"]]
        tv = proc(images=imgs, return_tensors="pt")["pixel_values"].to(torch.float32)
        tv_levels = float((tv - pixels).abs().max()) * 127.5
        ids = torch.tensor([meta["tokens"]])
        with torch.no_grad():
            feats = model.get_image_features(pixel_values=pixels)
            if not torch.is_tensor(feats):
                feats = feats.pooler_output if hasattr(feats, "pooler_output") else feats[0]
            logits = model(input_ids=ids, pixel_values=pixels, token_type_ids=(ids == IMG).long(),
                           attention_mask=torch.ones_like(ids)).logits[0]
            # the same prompt with the soft tokens attending causally only, to show the mask matters
            causal = model(input_ids=ids, pixel_values=pixels, attention_mask=torch.ones_like(ids)).logits[0]
        o = out_root / fx["name"]
        o.mkdir(parents=True, exist_ok=True)
        feats.reshape(-1, meta["hidden"]).numpy().astype("<f4").tofile(o / "features.f32")
        logits.numpy().astype("<f4").tofile(o / "ref_hf.f32")
        import PIL
        rec = dict(transformers=transformers.__version__, torch=torch.__version__, pillow=PIL.__version__,
                   pixels_shape=list(pixels.shape), features_shape=list(feats.shape),
                   logits_shape=list(logits.shape),
                   causal_vs_bidirectional_max_abs=float((causal - logits).abs().max()),
                   default_processor=type(proc).__name__, default_vs_pil_max_levels=tv_levels)
        (o / "hf.json").write_text(json.dumps(rec, indent=1) + "\n")
        print(fx["name"], rec)
        for dv in DERIVED:
            if dv["base"] != fx["name"]:
                continue
            od = out_root / dv["name"]
            model.to(torch.bfloat16).save_pretrained(od / "checkpoint")
            m2 = Gemma3ForConditionalGeneration.from_pretrained(od / "checkpoint", torch_dtype=torch.float32,
                                                                attn_implementation="eager").eval()
            with torch.no_grad():
                f2 = m2.get_image_features(pixel_values=pixels)
                if not torch.is_tensor(f2):
                    f2 = f2.pooler_output if hasattr(f2, "pooler_output") else f2[0]
                l2 = m2(input_ids=ids, pixel_values=pixels, token_type_ids=(ids == IMG).long(),
                        attention_mask=torch.ones_like(ids)).logits[0]
            f2.reshape(-1, meta["hidden"]).numpy().astype("<f4").tofile(od / "features.f32")
            l2.numpy().astype("<f4").tofile(od / "ref_hf.f32")
            r2 = dict(rec, saved_by="save_pretrained(torch.bfloat16) of " + fx["name"],
                      bf16_vs_f32_logits_max_abs=float((l2 - logits).abs().max()))
            (od / "hf.json").write_text(json.dumps(r2, indent=1) + "\n")
            print(dv["name"], r2)


def cmd_collect(args):
    src = Path(getattr(args, "from"))
    for dv in DERIVED:
        d, s, base = FIX / dv["name"], src / dv["name"], FIX / dv["base"]
        if not s.exists():
            continue
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        # the saved checkpoint: s/checkpoint/*, or s/ckpt_* (the device tool returns two folder levels)
        ck = [(f, f.name) for f in (s / "checkpoint").iterdir()] if (s / "checkpoint").exists() else \
             [(f, f.name[5:]) for f in s.iterdir() if f.name.startswith("ckpt_")]
        for f, name in ck:
            if name.endswith((".json", ".safetensors")) and name != "generation_config.json":
                shutil.copyfile(f, d / name)
        meta = json.loads((base / "fixture.json").read_text())
        for f in meta["images"] + ["pixels.f32"]:
            shutil.copyfile(base / f, d / f)
        meta["name"] = dv["name"]
        (d / "fixture.json").write_text(json.dumps(meta, indent=1) + "\n")
    for fx in FIXTURES + DERIVED:
        d, s = FIX / fx["name"], src / fx["name"]
        if not s.exists():
            continue
        for f in ("features.f32", "ref_hf.f32"):
            shutil.copyfile(s / f, d / f)
        meta = json.loads((d / "fixture.json").read_text())
        meta["reference"] = json.loads((s / "hf.json").read_text())
        ref = np.fromfile(d / "ref_hf.f32", dtype="<f4")
        meta["max_abs_logit"] = float(np.abs(ref).max())
        (d / "fixture.json").write_text(json.dumps(meta, indent=1) + "\n")
        print(d, meta["reference"])
    (FIX / "MANIFEST").write_text("".join(fx["name"] + "\n" for fx in FIXTURES + DERIVED if (FIX / fx["name"]).exists()))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("build")
    sub.add_parser("pixels")
    h = sub.add_parser("hf")
    h.add_argument("--out", required=True)
    c = sub.add_parser("collect")
    c.add_argument("--from", required=True)
    a = ap.parse_args()
    {"build": cmd_build, "pixels": cmd_pixels, "hf": cmd_hf, "collect": cmd_collect}[a.cmd](a)


if __name__ == "__main__":
    main()
