#!/usr/bin/env python3
"""Tiny random-weight Gemma 4 text checkpoints + reference logits for gemma.c's
parity tests (tests/fixtures/gemma4/).

Every weight is random (seeded per fixture), norms and layer_scalar included.
Shapes follow E2B (4:1 sliding:global, MQA, double-wide MLP on the KV-shared
layers) and E4B (5:1, GQA), with a wider global head_dim and proportional
partial RoPE on the global layers, per-layer embeddings and KV sharing.

Subcommands (paths relative to the repository root unless given):

  build    (local: numpy + mlx)  fixture folders tests/fixtures/gemma4/<name>/
           in the layout users have, and for each a transformers-loadable
           float32 reference input <work>/hf/<name>/ (gemma4_text config,
           Gemma4ForCausalLM names model.*, MLX-quantized modules
           dequantized with mx.dequantize in float32, tokens.json).  Also
           copies this script into <work>/ so the hf step can run from there.
  hf       (device: torch + transformers)  Gemma4ForCausalLM.from_pretrained
           of every <work>/hf/<name> in float32, eager attention, no cache;
           fails on missing/unexpected keys.  Writes <work>/out/hf/<name>/.
  mlx      (local: mlx-lm)  mlx-lm (its gemma4 / gemma4_text) on the fixture
           folder itself, every float parameter upcast to float32 after
           loading -> <work>/out/mlx/<name>/ref_mlx.f32.
  collect  (local)  ref_hf.f32 / ref_mlx.f32 + fixture.json into the fixture
           folders, and the MANIFEST.

Options: --fixtures-dir (default tests/fixtures/gemma4), --work-dir (default
.refwork/gemma4).
"""

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1] if (HERE.parent.name == "tools") else Path.cwd()

# name -> sizes and layout.  types: period p means layer i is global iff i % p == p - 1.
FIXTURES = [
    dict(name="e2b-f32-text", seed=41001, layout="text", dtype="F32", vocab=160, hidden=32, heads=2, kv_heads=1,
         head_dim=16, global_head_dim=32, layers=10, period=5, shared=5, double_wide=True, inter=32, ple=8,
         window=5, partial=0.25, theta=(1e4, 1e6), softcap=30.0, n_tokens=24),
    dict(name="e4b-bf16-mm", seed=41002, layout="mm", dtype="BF16", vocab=200, hidden=48, heads=4, kv_heads=2,
         head_dim=16, global_head_dim=32, layers=12, period=6, shared=4, double_wide=False, inter=64, ple=16,
         window=6, partial=0.5, theta=(2e4, 5e5), softcap=20.0, n_tokens=26),
    dict(name="e2b-mlx4-vlm", seed=41003, layout="mlx", dtype="BF16", vocab=200, hidden=64, heads=2, kv_heads=1,
         head_dim=32, global_head_dim=64, layers=10, period=5, shared=5, double_wide=True, inter=64, ple=32,
         window=5, partial=0.25, theta=(1e4, 1e6), softcap=30.0, n_tokens=22, bits=4, group=32),
]


def layer_types(f):
    return ["full_attention" if i % f["period"] == f["period"] - 1 else "sliding_attention"
            for i in range(f["layers"])]


def text_config(f):
    return {
        "model_type": "gemma4_text", "vocab_size": f["vocab"], "hidden_size": f["hidden"],
        "intermediate_size": f["inter"], "num_hidden_layers": f["layers"], "num_attention_heads": f["heads"],
        "num_key_value_heads": f["kv_heads"], "head_dim": f["head_dim"], "global_head_dim": f["global_head_dim"],
        "layer_types": layer_types(f), "sliding_window": f["window"], "rms_norm_eps": 1e-6,
        "hidden_size_per_layer_input": f["ple"], "vocab_size_per_layer_input": f["vocab"],
        "num_kv_shared_layers": f["shared"], "use_double_wide_mlp": f["double_wide"],
        "final_logit_softcapping": f["softcap"], "attention_k_eq_v": False, "enable_moe_block": False,
        "hidden_activation": "gelu_pytorch_tanh", "max_position_embeddings": 4096, "tie_word_embeddings": True,
        "pad_token_id": 0, "bos_token_id": 2, "eos_token_id": 1,
        "rope_parameters": {
            "sliding_attention": {"rope_type": "default", "rope_theta": f["theta"][0]},
            "full_attention": {"rope_type": "proportional", "partial_rotary_factor": f["partial"],
                               "rope_theta": f["theta"][1]},
        },
    }


def gen_weights(f):
    """name (Gemma4ForCausalLM's, without the leading 'model.') -> float32 array."""
    rng = np.random.default_rng(f["seed"])
    D, H, KV, V, P, N = f["hidden"], f["heads"], f["kv_heads"], f["vocab"], f["ple"], f["layers"]
    types = layer_types(f)
    first_shared = N - f["shared"]

    def lin(o, i):
        return rng.normal(0, 1.0 / np.sqrt(i), (o, i)).astype(np.float32)

    def un(n, lo=0.5, hi=1.5):
        return rng.uniform(lo, hi, n).astype(np.float32)

    w = {"embed_tokens.weight": rng.normal(0, 0.3, (V, D)).astype(np.float32),
         "embed_tokens_per_layer.weight": rng.normal(0, 0.2, (V, N * P)).astype(np.float32),
         "per_layer_model_projection.weight": lin(N * P, D),
         "per_layer_projection_norm.weight": un(P),
         "norm.weight": un(D)}
    for l in range(N):
        hd = f["global_head_dim"] if types[l] == "full_attention" else f["head_dim"]
        F = f["inter"] * (2 if f["double_wide"] and l >= first_shared else 1)
        b = f"layers.{l}."
        w[b + "self_attn.q_proj.weight"] = lin(H * hd, D)
        if l < first_shared:
            w[b + "self_attn.k_proj.weight"] = lin(KV * hd, D)
            w[b + "self_attn.v_proj.weight"] = lin(KV * hd, D)
            w[b + "self_attn.k_norm.weight"] = un(hd)
        w[b + "self_attn.o_proj.weight"] = lin(D, H * hd)
        w[b + "self_attn.q_norm.weight"] = un(hd)
        w[b + "mlp.gate_proj.weight"] = lin(F, D)
        w[b + "mlp.up_proj.weight"] = lin(F, D)
        w[b + "mlp.down_proj.weight"] = lin(D, F)
        w[b + "per_layer_input_gate.weight"] = lin(P, D)
        w[b + "per_layer_projection.weight"] = lin(D, P)
        for n in ("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
                  "post_feedforward_layernorm", "post_per_layer_input_norm"):
            w[b + n + ".weight"] = un(D)
        w[b + "layer_scalar"] = un(1, 0.4, 1.2)
    return w


def gen_tokens(f):
    rng = np.random.default_rng(f["seed"] + 7)
    return [2] + [int(t) for t in rng.integers(3, f["vocab"], f["n_tokens"] - 1)]


def is_matrix(name):
    return name.endswith(".weight") and not name.endswith("norm.weight")


def cmd_build(a):
    sys.path.insert(0, str(HERE))
    import numpy_gemma3 as ng
    import make_gemma3_fixtures as mf

    for f in FIXTURES:
        name = f["name"]
        w = gen_weights(f)
        tokens = gen_tokens(f)
        tc = text_config(f)
        fix = a.fixtures_dir / name
        shutil.rmtree(fix, ignore_errors=True)
        fix.mkdir(parents=True)
        ref = {}   # reference input: exactly the values the fixture stores, as f32
        stored = {}
        if f["layout"] == "text":
            cfg = dict(tc, architectures=["Gemma4ForCausalLM"], torch_dtype="float32")
            for k, v in w.items():
                stored["model." + k] = ng.as_dtype(v, f["dtype"])
                ref[k] = stored["model." + k].to_f32()
        elif f["layout"] == "mm":
            cfg = {"model_type": "gemma4", "architectures": ["Gemma4ForConditionalGeneration"],
                   "text_config": dict(tc), "tie_word_embeddings": True, "eos_token_id": [1, 106],
                   "image_token_id": 258880, "torch_dtype": "bfloat16"}
            for k, v in w.items():
                stored["model.language_model." + k] = ng.as_dtype(v, f["dtype"])
                ref[k] = stored["model.language_model." + k].to_f32()
        else:   # mlx-vlm's layout: language_model.model.*, linears and embeddings quantized
            q = {"group_size": f["group"], "bits": f["bits"]}
            cfg = {"model_type": "gemma4", "vocab_size": f["vocab"], "text_config": dict(tc),
                   "tie_word_embeddings": True, "eos_token_id": [1, 106], "quantization": q,
                   "quantization_config": q}
            for k, v in w.items():
                n = "language_model.model." + k
                if is_matrix(k):
                    wq, s, b = mf.quantize_raw(v, f["dtype"], f["group"], f["bits"])
                    m = n[: -len(".weight")]
                    stored[n], stored[m + ".scales"], stored[m + ".biases"] = wq, s, b
                    ref[k] = mf.dequantize_raw(wq, s, b, f["group"], f["bits"])
                else:
                    stored[n] = ng.as_dtype(v, f["dtype"])
                    ref[k] = stored[n].to_f32()
        ng.write_safetensors(fix / "model.safetensors", stored, {"format": "pt" if f["layout"] != "mlx" else "mlx"})
        (fix / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")

        hf = a.work_dir / "hf" / name
        shutil.rmtree(hf, ignore_errors=True)
        hf.mkdir(parents=True)
        ng.write_safetensors(hf / "model.safetensors",
                             {"model." + k: ng.RawTensor("F32", np.ascontiguousarray(v, np.float32))
                              for k, v in ref.items()}, {"format": "pt"})
        (hf / "config.json").write_text(json.dumps(dict(tc, architectures=["Gemma4ForCausalLM"],
                                                        torch_dtype="float32"), indent=2) + "\n")
        (hf / "tokens.json").write_text(json.dumps(tokens) + "\n")
        print(f"built {name}: {sum(p.stat().st_size for p in fix.iterdir()) / 1e6:.2f} MB")
    shutil.copy(Path(__file__), a.work_dir / Path(__file__).name)


def cmd_hf(a):
    import torch
    import transformers
    from transformers import Gemma4ForCausalLM

    dev = "cuda" if torch.cuda.is_available() else "cpu"
    for d in sorted((a.work_dir / "hf").iterdir()):
        t0 = time.time()
        tokens = json.loads((d / "tokens.json").read_text())
        model, info = Gemma4ForCausalLM.from_pretrained(str(d), dtype=torch.float32, attn_implementation="eager",
                                                        output_loading_info=True)
        bad = {k: v for k, v in info.items() if v}
        if bad:
            sys.exit(f"{d.name}: loading info {bad}")
        # the checkpoint must reach every parameter and buffer that matters: layer_scalar is a buffer
        sd = dict(model.state_dict())
        for k in ("model.layers.0.layer_scalar",):
            assert k in sd, k
        model = model.to(dev).eval()
        with torch.no_grad():
            ids = torch.tensor([tokens], dtype=torch.long, device=dev)
            logits = model(ids, use_cache=False).logits[0].float().cpu().numpy()
        out = a.work_dir / "out" / "hf" / d.name
        out.mkdir(parents=True, exist_ok=True)
        logits.astype("<f4").tofile(out / "ref_hf.f32")
        l0 = model.model.layers[0]
        meta = {"reference": f"transformers {transformers.__version__} (torch {torch.__version__}) "
                             f"Gemma4ForCausalLM, float32, eager, no cache, {dev}",
                "shape": list(logits.shape), "max_abs": float(np.abs(logits).max()),
                "layer0_scalar": float(l0.layer_scalar.reshape(-1)[0]),
                "embed_scale": float(model.model.embed_tokens.embed_scale),
                "seconds": round(time.time() - t0, 2)}
        (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
        print(d.name, meta)


def cmd_mlx(a):
    import mlx.core as mx
    from mlx.utils import tree_map
    from mlx_lm.utils import load_model

    for f in FIXTURES:
        name = f["name"]
        # mlx-lm's gemma4 wrapper takes vocab_size from the top level (default 262144)
        mc = {"vocab_size": f["vocab"]} if f["layout"] != "text" else {}
        model, _ = load_model(a.fixtures_dir / name, strict=True, model_config=mc)
        model.update(tree_map(lambda x: x.astype(mx.float32) if mx.issubdtype(x.dtype, mx.floating) else x,
                              model.parameters()))
        tokens = json.loads((a.work_dir / "hf" / name / "tokens.json").read_text())
        out = np.array(model(mx.array(tokens)[None])[0].astype(mx.float32))
        d = a.work_dir / "out" / "mlx" / name
        d.mkdir(parents=True, exist_ok=True)
        out.astype("<f4").tofile(d / "ref_mlx.f32")
        print(f"mlx {name}: {out.shape}, max|logit| {np.abs(out).max():.3f}")


def cmd_collect(a):
    import mlx_lm
    names = []
    for f in FIXTURES:
        name = f["name"]
        fix = a.fixtures_dir / name
        tokens = json.loads((a.work_dir / "hf" / name / "tokens.json").read_text())
        hf = a.work_dir / "out" / "hf" / name
        shutil.copy(hf / "ref_hf.f32", fix / "ref_hf.f32")
        meta = json.loads((hf / "meta.json").read_text())
        ref_hf = np.fromfile(fix / "ref_hf.f32", "<f4").reshape(len(tokens), f["vocab"])
        info = {"tokens": tokens, "vocab_size": f["vocab"], "quantized": f["layout"] == "mlx",
                "sliding_window": f["window"], "reference": meta["reference"]}
        mlx = a.work_dir / "out" / "mlx" / name / "ref_mlx.f32"
        if mlx.exists():
            shutil.copy(mlx, fix / "ref_mlx.f32")
            ref_mlx = np.fromfile(mlx, "<f4").reshape(ref_hf.shape)
            rel = float(np.abs(ref_mlx - ref_hf).max() / np.abs(ref_hf).max())
            info["reference_mlx"] = f"mlx-lm {mlx_lm.__version__} gemma4, parameters upcast to float32"
            info["mlx_vs_hf_rel"] = rel
            print(f"{name}: mlx-lm vs transformers max|d|/max|ref| = {rel:.2e}")
        (fix / "fixture.json").write_text(json.dumps(info) + "\n")
        names.append(name)
    (a.fixtures_dir / "MANIFEST").write_text("\n".join(names) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cmd", choices=["build", "hf", "mlx", "collect"])
    ap.add_argument("--fixtures-dir", type=Path, default=ROOT / "tests" / "fixtures" / "gemma4")
    ap.add_argument("--work-dir", type=Path, default=ROOT / ".refwork" / "gemma4")
    a = ap.parse_args()
    a.fixtures_dir = a.fixtures_dir.resolve()
    a.work_dir = a.work_dir.resolve()
    {"build": cmd_build, "hf": cmd_hf, "mlx": cmd_mlx, "collect": cmd_collect}[a.cmd](a)


if __name__ == "__main__":
    main()
