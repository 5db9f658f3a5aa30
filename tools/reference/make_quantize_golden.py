#!/usr/bin/env python3
"""Golden hashes for `gemma quantize` -> tests/fixtures/quantize/.

For every case in CASES (a float fixture from tests/fixtures/gemma3/, bits,
group size, --skip-vision, optionally a config.json with another torch_dtype)
this computes the MLX checkpoint that `gemma quantize` must write, tensor by
tensor, with the real mlx.core (astype + mx.quantize), following the rule of
mlx_lm.convert: float tensors are cast to torch_dtype (else text_config.dtype)
when it names float16/bfloat16/float32; every 2-D `*.weight` (the Linear and
Embedding weights) whose last dimension the group size divides is quantized.

The rule itself is checked against the real tools, never assumed:
  * mlx_lm.convert (`python -m mlx_lm convert --hf-path IN --mlx-path OUT -q
    --q-bits B --q-group-size G`) runs on every case it can read (text
    fixtures; Hub-named multimodal ones, where it drops the vision tower); every
    tensor it writes must equal ours byte for byte (dtype, shape, data), its
    tensor set must equal ours (minus vision_tower/multi_modal_projector for
    multimodal), and its config's quantization entry and index total_size /
    total_parameters must match.
  * with --vlm-python PY (a Python that has mlx-vlm), mlx_vlm.convert runs on
    the --skip-vision multimodal cases (it never quantizes the vision tower)
    and must agree the same way.

Output (committed; small):
  tests/fixtures/quantize/golden.json   per case: inputs, options, the config
      quantization entry, and "NAME": "DTYPE [shape] sha256" for every output
      tensor; plus rows cases (see below)
  tests/fixtures/quantize/<case>.config.json   patched configs (other torch_dtype)
  tests/fixtures/quantize/<case>.mlx.f16        mlx-lm's logits on the quantized
      checkpoint (float32 compute, stored float16) for LOGIT_CASES
  tests/fixtures/quantize/rows.safetensors      crafted rows (F32, BF16, F16):
      zeros, constants, tiny values under the 1e-7 scale floor, large values,
      negative- and positive-dominant groups, random normal with outliers;
      golden.json "rows" has sha256 of mx.quantize's packed/scales/biases for
      every (dtype, bits, group size) - the scales in the input dtype.

Run:  python3 tools/reference/make_quantize_golden.py [--vlm-python .refwork/quantize/vlmenv/bin/python]
Needs numpy, mlx, mlx-lm, tokenizers (all CPU).
"""

import argparse
import copy
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import numpy_gemma3 as ng  # noqa: E402

ROOT = HERE.parents[1]
FIX = ROOT / "tests" / "fixtures" / "gemma3"
OUT = ROOT / "tests" / "fixtures" / "quantize"
WORK = ROOT / ".refwork" / "quantize-golden"

# transformers 4.52-4.57 names -> the Hub / mlx-vlm layout of google/medgemma-4b-it
HUB_NAMES = [["model.language_model.", "language_model.model."], ["model.vision_tower.", "vision_tower."],
             ["model.multi_modal_projector.", "multi_modal_projector."]]

# name, fixture, bits, group size, skip_vision, config patch (or {"rename": HUB_NAMES})
CASES = [
    ("text-f32-hub.b8g32", "text-f32-hub", 8, 32, False, None),          # only o_proj (96 wide) divides by 32
    ("text-f32-hub.b4g64", "text-f32-hub", 4, 64, False, None),          # nothing divides by 64
    ("text-f32-hub.bf16.b4g32", "text-f32-hub", 4, 32, False, {"torch_dtype": "bfloat16"}),   # f32 -> bf16 first
    ("text-f32-hub.f16.b6g32", "text-f32-hub", 6, 32, False, {"torch_dtype": "float16"}),     # f32 -> f16 first
    ("text-bf16-t5.b4g64", "text-bf16-t5", 4, 64, False, None),          # bf16 in, bf16 scales; down_proj (96) copied
    ("text-bf16-t5.b8g32", "text-bf16-t5", 8, 32, False, None),
    ("text-bf16-t5.b2g32", "text-bf16-t5", 2, 32, False, None),
    ("text-bf16-t5.b3g32", "text-bf16-t5", 3, 32, False, None),
    ("text-bf16-t5.b5g64", "text-bf16-t5", 5, 64, False, None),
    ("text-bf16-t5.f32.b4g32", "text-bf16-t5", 4, 32, False, {"torch_dtype": "float32"}),   # bf16 -> f32: f32 scales
    ("mm-f32-hub-sharded.b4g32", "mm-f32-hub-sharded", 4, 32, False, None),
    ("mm-f32-hub-sharded.b4g32.skipvision", "mm-f32-hub-sharded", 4, 32, True, None),
    ("mm-f16-t5names.b4g64", "mm-f16-t5names", 4, 64, False, None),
    ("mm-f16-t5names.b8g128", "mm-f16-t5names", 8, 128, False, None),
    ("mm-f16-t5names.b4g64.skipvision", "mm-f16-t5names", 4, 64, True, None),
    # the same weights named like google/medgemma-4b-it (tied): gets language_model.lm_head.*
    ("mm-f16-hubnames.b4g64", "mm-f16-t5names", 4, 64, False, {"rename": HUB_NAMES}),
    ("mm-f16-hubnames.b4g64.skipvision", "mm-f16-t5names", 4, 64, True, {"rename": HUB_NAMES}),
    # Gemma 4 (E2B-like, tests/fixtures/gemma4): per-layer table (80 wide) and projections (8 wide) stay F32
    ("gemma4-e2b-f32-text.b4g32", "../gemma4/e2b-f32-text", 4, 32, False, None),
]

# mlx-lm's logits (params upcast to float32, as the parity fixtures' ref_mlx)
# of these outputs, for the fixture's tokens: the engine must agree to float
# rounding on the quantized checkpoint itself.  Stored as float16 (small).
# Only Hub-spelled configs: mlx-lm ignores transformers 5's rope_parameters /
# layer_types (on the float fixture text-bf16-t5 it is off by 170 %), which is
# checked here first: mlx-lm on the float fixture must match ref_hf.f32.
LOGIT_CASES = ["text-f32-hub.bf16.b4g32", "mm-f32-hub-sharded.b4g32", "gemma4-e2b-f32-text.b4g32"]

ROW_BITS = [2, 3, 4, 5, 6, 8]
ROW_GROUPS = [32, 64, 128]
ROW_COLS = 384

VISION_MARKS = ("vision_tower.", "vision_model.", "multi_modal_projector.")


def _mx():
    import mlx.core as mx
    return mx


def st_name(dt):
    mx = _mx()
    return {mx.float32: "F32", mx.bfloat16: "BF16", mx.float16: "F16", mx.uint32: "U32"}[dt]


def to_mx(rt):
    mx = _mx()
    a = np.ascontiguousarray(rt.data)
    if rt.dtype == "BF16":
        return mx.array(a.astype(np.uint16)).view(mx.bfloat16)
    return mx.array(a)


def raw_bytes(a):
    mx = _mx()
    a = mx.contiguous(a)
    return np.array(a.reshape(-1).view(mx.uint8)).tobytes() if a.size else b""


def describe(a):
    return f"{st_name(a.dtype)} {list(a.shape)} {hashlib.sha256(raw_bytes(a)).hexdigest()}"


def target_dtype(config):
    """mlx_lm.convert / mlx_vlm.convert without --dtype."""
    mx = _mx()
    dt = config.get("torch_dtype", None)
    if dt is None and (tc := config.get("text_config", None)):
        dt = tc.get("dtype", None)
    return getattr(mx, dt) if dt in ("float16", "bfloat16", "float32") else None


def is_vision(name):
    return any(m in name for m in VISION_MARKS)


LM_HEAD = "language_model.lm_head.weight"


def tied_lm_head(tensors, config):
    """mlx-vlm's Gemma 3 needs language_model.lm_head.* in the file; its convert
    writes the embedding there when the checkpoint has none."""
    return (config.get("model_type") == "gemma3" and LM_HEAD not in tensors
            and "language_model.model.embed_tokens.weight" in tensors)


def reference(tensors, config, bits, gs, skip_vision):
    """name -> mx.array of the checkpoint gemma quantize must write."""
    mx = _mx()
    dt = target_dtype(config)
    out = {}
    todo = {n: n for n in tensors}
    if tied_lm_head(tensors, config):
        todo[LM_HEAD] = "language_model.model.embed_tokens.weight"
    for name in sorted(todo):
        a = to_mx(tensors[todo[name]])
        if dt is not None and mx.issubdtype(a.dtype, mx.floating):
            a = a.astype(dt)
        if (a.ndim == 2 and name.endswith(".weight") and a.shape[-1] % gs == 0 and a.shape[0] > 0
                and not (skip_vision and is_vision(name))):
            wq, s, b = mx.quantize(a, group_size=gs, bits=bits)
            base = name[: -len(".weight")]
            out[base + ".weight"], out[base + ".scales"], out[base + ".biases"] = wq, s, b
        else:
            out[name] = a
    mx.eval(list(out.values()))
    return out


def tiny_tokenizer(d, vocab):
    import make_gemma3_fixtures as mf
    mf.write_tiny_tokenizer(d, vocab)


def build_input(case, work):
    name, fixture, bits, gs, skip, patch = case
    src = FIX / fixture
    d = work / "in" / name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    for f in src.iterdir():
        if f.suffix == ".safetensors" or f.name == "model.safetensors.index.json":
            shutil.copy(f, d / f.name)
    config = json.loads((src / "config.json").read_text())
    cfg_file = None
    if patch and "rename" in patch:
        t = {}
        for n, v in ng.read_model_dir(src).items():
            for a, b in patch["rename"]:
                if n.startswith(a):
                    n = b + n[len(a):]
            t[n] = v
        for f in d.iterdir():
            f.unlink()
        ng.write_safetensors(d / "model.safetensors", t, {"format": "pt"})
        shutil.copy(src / "config.json", d / "config.json")
    elif patch:
        config.update(patch)
        cfg_file = f"{name}.config.json"
        (OUT / cfg_file).write_text(json.dumps(config, indent=2) + "\n")
        shutil.copy(OUT / cfg_file, d / "config.json")
    else:
        shutil.copy(src / "config.json", d / "config.json")
    return d, config, cfg_file


def run_tool(cmd):
    print("   $", " ".join(str(c) for c in cmd))
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        print(r.stdout + r.stderr)
        raise SystemExit(f"failed ({r.returncode}): {cmd[0]}")


def load_dir(d):
    mx = _mx()
    out = {}
    for f in sorted(Path(d).glob("*.safetensors")):
        out.update(mx.load(str(f)))
    return out


def compare(tool, got, ref, expect_names):
    bad = [n for n in got if n not in ref or describe(got[n]) != describe(ref[n])]
    if bad:
        raise SystemExit(f"{tool}: {len(bad)} tensors differ from the reference, e.g. {bad[:3]}")
    if set(got) != set(expect_names):
        raise SystemExit(f"{tool}: tensor set differs: only {tool} {sorted(set(got) - set(expect_names))[:5]}, "
                         f"only ours {sorted(set(expect_names) - set(got))[:5]}")


def check_meta(tool, outdir, ref_names, ref, bits, gs, text_only):
    cfg = json.loads((outdir / "config.json").read_text())
    want = {"group_size": gs, "bits": bits, "mode": "affine"}
    for k in ("quantization", "quantization_config"):
        if cfg.get(k) != want:
            raise SystemExit(f"{tool}: config {k} is {cfg.get(k)}, want {want}")
    idx = json.loads((outdir / "model.safetensors.index.json").read_text())
    if text_only:
        total = sum(len(raw_bytes(ref[n])) for n in ref_names)
        if idx["metadata"]["total_size"] != total:
            raise SystemExit(f"{tool}: total_size {idx['metadata']['total_size']} != {total}")
    return idx["metadata"]


def vocab_of(config):
    """vocab_size of a text or multimodal config (without reading its rope schema)."""
    return config.get("text_config", config).get("vocab_size") or config["vocab_size"]


def mlx_lm_case(case, indir, config, ref, work):
    name, fixture, bits, gs, skip, patch = case
    vocab = vocab_of(config)
    d = work / "lm-in" / name
    if d.exists():
        shutil.rmtree(d)
    shutil.copytree(indir, d)
    tiny_tokenizer(d, vocab)
    if config.get("model_type") == "gemma3" and "vocab_size" not in config:
        # mlx-lm's gemma3 wrapper reads vocab_size from the top level only
        (d / "config.json").write_text(json.dumps(dict(config, vocab_size=vocab), indent=2))
    out = work / "lm-out" / name
    if out.exists():
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    run_tool([sys.executable, "-m", "mlx_lm", "convert", "--hf-path", d, "--mlx-path", out,
              "-q", "--q-bits", str(bits), "--q-group-size", str(gs)])
    got = load_dir(out)
    mm = config.get("model_type") == "gemma3"
    # mlx-lm drops the vision tower and keeps a tied model tied
    expect = [n for n in ref if not (mm and is_vision(n))
              and not (tied_lm_head(ng.read_model_dir(indir), config) and n.startswith("language_model.lm_head."))]
    compare("mlx_lm.convert", got, ref, expect)
    meta = check_meta("mlx_lm.convert", out, expect, ref, bits, gs, True)
    return f"mlx_lm.convert: all {len(got)} tensors it writes identical" + (
        " (it drops the vision tower)" if mm else "") + f"; total_parameters {meta.get('total_parameters')}"


# mlx_vlm.convert.convert itself, with the processor stubbed out: the tiny
# fixtures have no image processor or Gemma 3 tokenizer, and the processor
# plays no part in the weights.
VLM_DRIVER = """
import sys
import mlx_vlm.utils as u
from mlx_vlm.convert import convert
class NoProcessor:
    def save_pretrained(self, path):
        pass
u.load_processor = lambda *a, **k: NoProcessor()
convert(sys.argv[1], sys.argv[2], quantize=True, q_bits=int(sys.argv[3]), q_group_size=int(sys.argv[4]))
"""


def mlx_vlm_case(case, indir, config, ref, work, py):
    name, fixture, bits, gs, skip, patch = case
    d = work / "vlm-in" / name
    if d.exists():
        shutil.rmtree(d)
    shutil.copytree(indir, d)
    tiny_tokenizer(d, vocab_of(config))
    # mlx-vlm reads mm_tokens_per_image from text_config (default 256, too many for the tiny tower)
    vc = dict(config, text_config=dict(config["text_config"], mm_tokens_per_image=config["mm_tokens_per_image"]))
    (d / "config.json").write_text(json.dumps(vc, indent=2))
    out = work / "vlm-out" / name
    if out.exists():
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    run_tool([py, "-c", VLM_DRIVER, d, out, str(bits), str(gs)])
    got = load_dir(out)
    # mlx-vlm renames and re-lays out some tensors when it loads (e.g. the conv
    # to OHWI); compare what it writes under our names where the layout agrees
    same = [n for n in got if n in ref and describe(got[n]) == describe(ref[n])]
    differ = sorted(set(got) & set(ref) - set(same))
    only_vlm = sorted(set(got) - set(ref))
    quantized = [n for n in got if n.endswith(".scales")]
    if any(is_vision(n) for n in quantized):
        raise SystemExit("mlx_vlm.convert quantized a vision tensor")
    # mlx-vlm writes the conv in its own OHWI layout (its loader takes either),
    # and its Gemma 3 sanitize replaces an untied lm_head with the embedding
    untied = LM_HEAD in ng.read_model_dir(indir)
    allowed = [n for n in differ if n.endswith("patch_embedding.weight") or (untied and n == LM_HEAD)]
    if len(allowed) != len(differ) or only_vlm or set(got) != set(ref):
        raise SystemExit(f"mlx_vlm.convert differs: {differ[:5]} / only mlx-vlm {only_vlm[:5]} / "
                         f"only ours {sorted(set(ref) - set(got))[:5]}")
    notes = []
    for n in differ:
        notes.append(f"{n} is OHWI there" if n.endswith("patch_embedding.weight")
                     else f"{n} is its embedding copy there (mlx-vlm replaces an untied lm_head)")
    return f"mlx_vlm.convert: {len(same)} of {len(got)} tensors identical" + (f"; {'; '.join(notes)}" if notes else "")


def mlx_lm_logits(case, config):
    """mlx-lm on its own convert output (byte-identical to ours where both write a tensor)."""
    import make_gemma3_fixtures as mf
    name, fixture = case[0], case[1]
    out = WORK / "lm-out" / name
    tokens = json.loads((FIX / fixture / "fixture.json").read_text())["tokens"]
    fcfg = json.loads((FIX / fixture / "config.json").read_text())
    flt = mf._mlx_logits(mf._mlx_model(FIX / fixture, fcfg, upcast=True), tokens)
    hf = np.fromfile(FIX / fixture / "ref_hf.f32", "<f4").reshape(flt.shape)
    rel = float(np.abs(flt - hf).max() / np.abs(hf).max())
    if rel > 1e-4:
        raise SystemExit(f"{name}: mlx-lm reads {fixture} differently from transformers (rel {rel})")
    cfg = json.loads((out / "config.json").read_text())
    lg = mf._mlx_logits(mf._mlx_model(out, cfg, upcast=True), tokens)
    f = f"{name}.mlx.f16"
    lg.astype("<f2").tofile(OUT / f)
    return {"file": f, "shape": list(lg.shape), "max_abs": float(np.abs(lg).max()), "float_vs_hf": rel,
            "f16_rounding": float(np.abs(lg.astype(np.float16).astype(np.float32) - lg).max())}


def make_rows():
    """F32 / BF16 / F16 [8, ROW_COLS] with the groups that stress the edge cases."""
    rng = np.random.default_rng(20240901)
    w = np.zeros((8, ROW_COLS), np.float32)
    w[1] = 0.5                                                   # constant groups: q0 != 0, scale = edge / q0
    w[2] = np.where(np.arange(ROW_COLS) % 2, 1.0, -1.0) * 0.25   # symmetric: ties between the edges
    w[3] = rng.normal(0, 1e-8, ROW_COLS)                         # below the 1e-7 scale floor
    w[4] = rng.normal(0, 2000.0, ROW_COLS)                       # large (f16 still finite)
    w[5] = -np.abs(rng.normal(0, 1, ROW_COLS))                   # negative-dominant: positive scale
    w[6] = np.abs(rng.normal(0, 1, ROW_COLS))                    # positive-dominant: negative scale
    w[7] = rng.normal(0, 0.05, ROW_COLS)
    w[7, ::37] = 0.9                                              # outliers
    return {"F32": ng.as_dtype(w, "F32"), "BF16": ng.as_dtype(w, "BF16"), "F16": ng.as_dtype(w, "F16")}


def rows_golden(rows):
    mx = _mx()
    out = {}
    for dt, rt in rows.items():
        a = to_mx(rt)
        for bits in ROW_BITS:
            for gs in ROW_GROUPS:
                wq, s, b = mx.quantize(a, group_size=gs, bits=bits)
                out[f"{dt}.b{bits}g{gs}"] = {"weight": describe(wq), "scales": describe(s), "biases": describe(b)}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vlm-python", help="a Python with mlx-vlm: also cross-check the --skip-vision cases")
    ap.add_argument("--only", nargs="*", help="case names (default all)")
    a = ap.parse_args()
    import mlx.core as mx
    import mlx_lm
    OUT.mkdir(parents=True, exist_ok=True)
    WORK.mkdir(parents=True, exist_ok=True)
    golden = {"generator": "tools/reference/make_quantize_golden.py",
              "mlx": mx.__version__, "mlx_lm": mlx_lm.__version__, "cases": [], "rows": {}}
    for case in CASES:
        name, fixture, bits, gs, skip, patch = case
        if a.only and name not in a.only:
            continue
        print(f"== {name}")
        indir, config, cfg_file = build_input(case, WORK)
        ref = reference(ng.read_model_dir(indir), config, bits, gs, skip)
        checks = []
        hub_names = not any(n.startswith("model.language_model.") for n in ref)
        if hub_names:
            checks.append(mlx_lm_case(case, indir, config, ref, WORK))
        if a.vlm_python and skip and config.get("model_type") == "gemma3" and hub_names:
            checks.append(mlx_vlm_case(case, indir, config, ref, WORK, a.vlm_python))
        if not checks:
            checks.append("mx.quantize only (mlx-lm reads no model.language_model.* names)")
        for c in checks:
            print("   " + c)
        nq = sum(n.endswith(".scales") for n in ref)
        logits = mlx_lm_logits(case, config) if name in LOGIT_CASES else None
        if logits:
            print(f"   mlx-lm logits {logits}")
        golden["cases"].append({
            "name": name, "fixture": fixture, "config": cfg_file,
            "rename": patch["rename"] if patch and "rename" in patch else None, "bits": bits, "group_size": gs,
            "skip_vision": skip, "quantization": {"group_size": gs, "bits": bits, "mode": "affine"},
            "n_quantized": nq, "checked": checks, "mlx_lm_logits": logits,
            "tensors": {n: describe(v) for n, v in sorted(ref.items())}})
        print(f"   {len(ref)} tensors, {nq} quantized")
    rows = make_rows()
    ng.write_safetensors(OUT / "rows.safetensors", rows, {"format": "pt"})
    golden["rows"] = {"file": "rows.safetensors", "cols": ROW_COLS, "cases": rows_golden(rows)}
    (OUT / "golden.json").write_text(json.dumps(golden, indent=1) + "\n")
    size = sum(f.stat().st_size for f in OUT.iterdir())
    print(f"wrote {OUT} ({size} bytes)")


if __name__ == "__main__":
    main()
