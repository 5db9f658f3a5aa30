#!/usr/bin/env python3
"""make_bf16.py - the bf16 form of a float32 Hugging Face Gemma folder.

Why: the evaluation table compares quantized forms of Gemma 3 270M against a
bf16 reference (the dtype Google publishes), and the only float form setup
makes is float32 (models/gemma3-270m-hf, the GGUF dequantized).  Every float
tensor is rounded to bfloat16 (round to nearest even, as torch's .to(bfloat16)),
config.json says torch_dtype bfloat16, the other files are copied.  numpy only.

    python3 tools/eval/make_bf16.py models/gemma3-270m-hf models/gemma3-270m-bf16
"""
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "reference"))
from numpy_gemma3 import as_dtype, read_safetensors, write_safetensors  # noqa: E402


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: make_bf16.py HF_F32_DIR OUT_DIR")
    src, dst = Path(sys.argv[1]), Path(sys.argv[2])
    if not (src / "model.safetensors").is_file():
        sys.exit(f"make_bf16: {src}/model.safetensors not found (bash scripts/make_real_models.sh makes it)")
    tmp = dst.with_name(dst.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    tensors = read_safetensors(src / "model.safetensors")
    out = {}
    for name, t in tensors.items():
        if t.dtype not in ("F32", "F16", "BF16"):
            sys.exit(f"make_bf16: {src}/model.safetensors: tensor {name} is {t.dtype}, not float")
        out[name] = as_dtype(t.data.astype("float32"), "BF16")
    write_safetensors(tmp / "model.safetensors", out, metadata={"format": "pt"})
    config = json.loads((src / "config.json").read_text())
    config["torch_dtype"] = "bfloat16"
    (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    for f in src.iterdir():
        if f.name not in ("model.safetensors", "config.json") and f.is_file():
            shutil.copy2(f, tmp / f.name)
    shutil.rmtree(dst, ignore_errors=True)
    tmp.rename(dst)
    print(f"make_bf16: {dst}: {len(out)} tensors in bfloat16")


if __name__ == "__main__":
    main()
