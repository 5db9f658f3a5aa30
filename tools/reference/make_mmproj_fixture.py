"""Write tests/fixtures/mmproj/: tiny Gemma 3 vision "mmproj" GGUFs as llama.cpp writes them.

MedGemma / Gemma 3 GGUF users have a text GGUF plus an mmproj GGUF (SigLIP
tower + Gemma 3 projector) written by llama.cpp's converter.  src/io/mmproj.c
loads those; tests/unit/test_mmproj.c checks it against the files made here.

    python3 tools/reference/make_mmproj_fixture.py        # needs: pip install gguf numpy

This script does not run llama.cpp (it needs torch and a real HF folder); it
repeats, step by step, what the converter does to a Gemma3ForConditionalGeneration
state dict, using gguf-py's own tensor-name map and quantizers:

  convert_hf_to_gguf.py, class Gemma3VisionModel(MmprojModel) (the --mmproj path):
    * keeps only multi_modal_projector.* / vision_tower.* tensors, renames
      `_weight` -> `.weight` (so mm_input_projection_weight becomes
      mm.input_projection.weight), maps names with gguf.get_tensor_name_map(MMPROJ)
      (fc1 -> ffn_up, fc2 -> ffn_down);
    * mm.soft_emb_norm.weight: data + 1 (Gemma3RMSNorm's 1 + w, baked in);
      no other tensor is changed: no transposes, the conv weight keeps PyTorch's
      [out, in, kh, kw] (ggml ne = [kw, kh, in, out]), the projection keeps HF's
      [vision_hidden, text_hidden] (clip.cpp transposes it when building the graph);
    * types (tensor_force_quant, then ModelBase.prepare_tensors): input_projection
      always F16; '.embeddings.' (patch and position embedding, weight and bias)
      F32; 1-D tensors and *_norm.weight F32; the rest in the file type (F16 or
      Q8_0); Q8_0 rows that are not a multiple of 32 fall back to F16 (QuantError);
    * metadata (MmprojModel.set_gguf_parameters + Gemma3VisionModel): general.type
      "mmproj", general.file_type, clip.has_vision_encoder, clip.vision.{projection_dim,
      image_size, patch_size, embedding_length, feed_forward_length, block_count,
      attention.head_count, image_mean, image_std}, clip.projector_type "gemma3",
      clip.vision.attention.layer_norm_epsilon, clip.use_gelu, and
      clip.vision.projector.scale_factor only when it is not the default 4
      ((image/patch) / sqrt(image_seq_length)).

  examples/llava/gemma3_convert_encoder_to_gguf.py (the first, now removed, converter;
  its files are still on the Hub): same keys except general.type/file_type, plus
  clip.has_text_encoder / clip.has_llava_projector = false, mean/std fixed at 0.5,
  and fc1/fc2 written as ffn_DOWN/ffn_UP (swapped; clip.cpp swaps them back when
  ffn_down's ne[0] == n_embd); input_projection follows the file type.

Output:
  mmproj-f16.gguf     current converter, --outtype f16, pooling 2 (scale_factor key written)
  mmproj-q8_0.gguf    current converter, --outtype q8_0, pooling 4 (default, key absent)
  mmproj-legacy.gguf  the old gemma3_convert_encoder_to_gguf.py, f16, swapped ffn names
  text-gemma3.gguf    a (tiny, random) Gemma 3 text GGUF, for "text model given as --mmproj"
  expected.json       per file: config, and per tensor (HF name) the GGUF name, PyTorch
                      shape, ggml type, sha256 of gguf.quants.dequantize of the stored
                      data (float32 LE, row-major), the first values, and for
                      mm_soft_emb_norm the raw HF weight (the file holds 1 + w)
"""
import hashlib
import json
import os

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T

OUT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "fixtures", "mmproj"))

# tiny SigLIP + Gemma 3 projector configs (HF config.json / preprocessor_config.json fields)
FIXTURES = [
    {"file": "mmproj-f16.gguf", "converter": "current", "ftype": gguf.LlamaFileType.MOSTLY_F16, "seed": 11,
     "vision": {"image_size": 16, "patch_size": 4, "hidden_size": 16, "intermediate_size": 40,
                "num_hidden_layers": 2, "num_attention_heads": 2, "layer_norm_eps": 1e-6},
     "text_hidden": 40, "image_seq_length": 4,
     "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]},
    {"file": "mmproj-q8_0.gguf", "converter": "current", "ftype": gguf.LlamaFileType.MOSTLY_Q8_0, "seed": 12,
     "vision": {"image_size": 8, "patch_size": 2, "hidden_size": 32, "intermediate_size": 40,
                "num_hidden_layers": 2, "num_attention_heads": 4, "layer_norm_eps": 1e-5},
     "text_hidden": 24, "image_seq_length": 1,
     "mean": [0.48, 0.46, 0.41], "std": [0.27, 0.26, 0.28]},
    {"file": "mmproj-legacy.gguf", "converter": "legacy", "ftype": gguf.LlamaFileType.MOSTLY_F16, "seed": 13,
     "vision": {"image_size": 8, "patch_size": 2, "hidden_size": 16, "intermediate_size": 24,
                "num_hidden_layers": 1, "num_attention_heads": 2, "layer_norm_eps": 1e-6},
     "text_hidden": 8, "image_seq_length": 1,
     "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]},
]


def hf_state_dict(rng, fx):
    """A random Gemma3ForConditionalGeneration vision + projector state dict (transformers < 4.52 names)."""
    v = fx["vision"]
    d, f, p = v["hidden_size"], v["intermediate_size"], v["patch_size"]
    n_patches = (v["image_size"] // p) ** 2
    f32 = np.float32

    def lin(o, i):
        return (rng.standard_normal((o, i)) / np.sqrt(i)).astype(f32)

    def vec(n, lo=-0.5, hi=0.5):
        return rng.uniform(lo, hi, n).astype(f32)

    pre = "vision_tower.vision_model."
    sd = {
        pre + "embeddings.patch_embedding.weight": (rng.standard_normal((d, 3, p, p)) * 0.2).astype(f32),
        pre + "embeddings.patch_embedding.bias": vec(d),
        pre + "embeddings.position_embedding.weight": (rng.standard_normal((n_patches, d)) * 0.1).astype(f32),
    }
    for layer in range(v["num_hidden_layers"]):
        lp = f"{pre}encoder.layers.{layer}."
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            sd[lp + f"self_attn.{proj}.weight"] = lin(d, d)
            sd[lp + f"self_attn.{proj}.bias"] = vec(d)
        for ln in ("layer_norm1", "layer_norm2"):
            sd[lp + f"{ln}.weight"] = vec(d, 0.5, 1.5)
            sd[lp + f"{ln}.bias"] = vec(d)
        sd[lp + "mlp.fc1.weight"] = lin(f, d)
        sd[lp + "mlp.fc1.bias"] = vec(f)
        sd[lp + "mlp.fc2.weight"] = lin(d, f)
        sd[lp + "mlp.fc2.bias"] = vec(d)
    sd[pre + "post_layernorm.weight"] = vec(d, 0.5, 1.5)
    sd[pre + "post_layernorm.bias"] = vec(d)
    # a raw nn.Parameter used as x @ W: [vision hidden, text hidden], not a Linear's [out, in]
    sd["multi_modal_projector.mm_input_projection_weight"] = lin(d, fx["text_hidden"])
    sd["multi_modal_projector.mm_soft_emb_norm.weight"] = vec(d)   # Gemma RMSNorm offset w (scale 1 + w)
    return sd


def quantize(data, qtype):
    """gguf.quants.quantize with the converters' fallback to F16 when rows do not fit the blocks."""
    try:
        return gguf.quants.quantize(data, qtype), qtype
    except gguf.QuantError:
        return gguf.quants.quantize(data, T.F16), T.F16


def file_qtype(ftype):
    return {gguf.LlamaFileType.MOSTLY_F16: T.F16, gguf.LlamaFileType.MOSTLY_Q8_0: T.Q8_0,
            gguf.LlamaFileType.ALL_F32: T.F32}[ftype]


def convert_current(sd, fx):
    """Gemma3VisionModel: filter_tensors, modify_tensors, tensor_force_quant, prepare_tensors."""
    n_layers = fx["vision"]["num_hidden_layers"]
    tmap = gguf.get_tensor_name_map(gguf.MODEL_ARCH.MMPROJ, n_layers)
    out = []
    for name, data in sd.items():
        hf_name = name
        if not name.startswith(("multi_modal_projector.", "vision_tower.", "multimodal_projector.", "vision_model.")):
            continue
        name = name.replace("_weight", ".weight")
        if "soft_emb_norm.weight" in name:
            data = data + np.float32(1)   # torch: data_torch + 1 (float32)
        new_name = tmap.get_name(name, try_suffixes=(".weight", ".bias"))
        assert new_name, name
        n_dims = data.ndim
        qtype = False
        if "input_projection" in name:
            qtype = T.F16
        elif ".embeddings." in name:
            qtype = T.F32
        elif ".patch_embd.weight" in new_name:
            qtype = T.F16 if fx["ftype"] == gguf.LlamaFileType.MOSTLY_F16 else T.F32
        if n_dims <= 1 or new_name.endswith("_norm.weight"):
            qtype = T.F32
        if qtype is False and (new_name.startswith("v.position_embd") or new_name[-7:] != ".weight"):
            qtype = T.F32
        if qtype is False:
            qtype = file_qtype(fx["ftype"])
        stored, qtype = quantize(data, qtype)
        out.append((hf_name, new_name, data, stored, qtype))
    return out


def convert_legacy(sd, fx):
    """gemma3_convert_encoder_to_gguf.py, Gemma3VisionTower.add_tensor."""
    out = []
    for name, data in sd.items():
        hf_name = name
        is_1d = data.ndim == 1
        is_embd = ".embeddings." in name
        if not name.startswith("vision_tower.vision_model.") and not name.startswith("multi_modal_projector."):
            continue
        name = name.replace("vision_tower.vision_model.encoder.layers.", "v.blk.")
        name = name.replace("vision_tower.vision_model.", "v.")
        name = name.replace(".embeddings.patch_embedding.", ".patch_embd.")
        name = name.replace(".embeddings.position_embedding.", ".position_embd.")
        name = name.replace("multi_modal_projector.mm_input_projection_weight", "mm.input_projection.weight")
        name = name.replace("multi_modal_projector.mm_soft_emb_norm.weight", "mm.soft_emb_norm.weight")
        name = name.replace("post_layernorm.", "post_ln.")
        name = name.replace(".self_attn.k_proj.", ".attn_k.")
        name = name.replace(".self_attn.v_proj.", ".attn_v.")
        name = name.replace(".self_attn.q_proj.", ".attn_q.")
        name = name.replace(".self_attn.out_proj.", ".attn_out.")
        name = name.replace(".layer_norm1.", ".ln1.")
        name = name.replace(".layer_norm2.", ".ln2.")
        name = name.replace(".mlp.fc1.", ".ffn_down.")
        name = name.replace(".mlp.fc2.", ".ffn_up.")
        qtype = file_qtype(fx["ftype"]) if not is_1d and not is_embd else T.F32
        if "soft_emb_norm.weight" in name:
            data = data + np.float32(1)
        stored, qtype = quantize(data, qtype)
        out.append((hf_name, name, data, stored, qtype))
    return out


def write_metadata_current(w, fx):
    v = fx["vision"]
    w.add_type(gguf.GGUFType.MMPROJ)                  # ModelBase.prepare_metadata -> set_type
    w.add_name("Tiny Gemma3 Vision Fixture")           # Metadata.set_gguf_meta_model (abridged)
    w.add_file_type(fx["ftype"])                       # MmprojModel.set_gguf_parameters
    w.add_clip_has_vision_encoder(True)
    w.add_vision_projection_dim(fx["text_hidden"])
    w.add_vision_image_size(v["image_size"])
    w.add_vision_patch_size(v["patch_size"])
    w.add_vision_embedding_length(v["hidden_size"])
    w.add_vision_feed_forward_length(v["intermediate_size"])
    w.add_vision_block_count(v["num_hidden_layers"])
    w.add_vision_head_count(v["num_attention_heads"])
    w.add_vision_image_mean(fx["mean"])
    w.add_vision_image_std(fx["std"])
    w.add_clip_projector_type(gguf.VisionProjectorType.GEMMA3)   # Gemma3VisionModel.set_gguf_parameters
    w.add_vision_attention_layernorm_eps(v.get("layer_norm_eps", 1e-6))
    w.add_vision_use_gelu(True)
    n_per_side = int(fx["image_seq_length"] ** 0.5)
    scale = (v["image_size"] // v["patch_size"]) // n_per_side
    if scale > 0 and scale != 4:
        w.add_vision_projector_scale_factor(scale)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)


def write_metadata_legacy(w, fx):
    v = fx["vision"]
    w.add_string("clip.projector_type", "gemma3")
    w.add_bool("clip.has_text_encoder", False)
    w.add_bool("clip.has_vision_encoder", True)
    w.add_bool("clip.has_llava_projector", False)
    w.add_uint32("clip.vision.image_size", v["image_size"])
    w.add_uint32("clip.vision.patch_size", v["patch_size"])
    w.add_uint32("clip.vision.embedding_length", v["hidden_size"])
    w.add_uint32("clip.vision.feed_forward_length", v["intermediate_size"])
    w.add_uint32("clip.vision.projection_dim", fx["text_hidden"])
    w.add_uint32("clip.vision.block_count", v["num_hidden_layers"])
    w.add_uint32("clip.vision.attention.head_count", v["num_attention_heads"])
    w.add_float32("clip.vision.attention.layer_norm_epsilon", v.get("layer_norm_eps", 1e-6))
    w.add_array("clip.vision.image_mean", [0.5, 0.5, 0.5])
    w.add_array("clip.vision.image_std", [0.5, 0.5, 0.5])
    w.add_bool("clip.use_gelu", True)


def write_text_gguf(rng):
    """A minimal gemma3 text GGUF (the keys and tensor names of convert_hf_to_gguf.py's Gemma3Model)."""
    w = gguf.GGUFWriter(os.path.join(OUT, "text-gemma3.gguf"), "gemma3")
    w.add_type(gguf.GGUFType.MODEL)
    w.add_block_count(1)
    w.add_embedding_length(8)
    w.add_head_count(1)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_tensor("token_embd.weight", rng.standard_normal((4, 8)).astype(np.float32))
    w.add_tensor("output_norm.weight", np.ones(8, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def as_f32(x):
    return float(np.float32(x))


def build_one(fx):
    rng = np.random.default_rng(fx["seed"])
    sd = hf_state_dict(rng, fx)
    path = os.path.join(OUT, fx["file"])
    w = gguf.GGUFWriter(path, "clip")   # general.architecture = "clip" (MODEL_ARCH_NAMES[MMPROJ])
    if fx["converter"] == "current":
        tensors = convert_current(sd, fx)
        write_metadata_current(w, fx)
    else:
        tensors = convert_legacy(sd, fx)
        write_metadata_legacy(w, fx)
    entries = []
    for hf_name, gguf_name, data, stored, qtype in tensors:
        w.add_tensor(gguf_name, stored, raw_dtype=qtype)
        deq = gguf.quants.dequantize(np.ascontiguousarray(stored).view(np.uint8), qtype).astype("<f4", copy=False)
        deq = np.ascontiguousarray(deq).reshape(data.shape)
        e = {"name": hf_name, "gguf": gguf_name, "shape": list(data.shape), "type": qtype.name, "type_id": int(qtype),
             "sha256": hashlib.sha256(deq.tobytes()).hexdigest(),
             "first": [float(x) for x in deq.reshape(-1)[:4]]}
        if "soft_emb_norm" in hf_name:
            e["hf_values"] = [float(x) for x in sd[hf_name]]
        entries.append(e)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    v = fx["vision"]
    side = v["image_size"] // v["patch_size"]
    scale = side // int(fx["image_seq_length"] ** 0.5)
    key = fx["converter"] == "current" and scale != 4   # only the current converter writes it, and only if not 4
    pool = scale if key else 4
    return {"file": fx["file"], "converter": fx["converter"], "file_type": int(fx["ftype"]),
            "config": {"image_size": v["image_size"], "patch_size": v["patch_size"], "hidden": v["hidden_size"],
                       "ffn": v["intermediate_size"], "layers": v["num_hidden_layers"],
                       "heads": v["num_attention_heads"], "eps": as_f32(v["layer_norm_eps"]),
                       "mean": [as_f32(x) for x in fx["mean"]], "std": [as_f32(x) for x in fx["std"]],
                       "projection_dim": fx["text_hidden"], "patches_per_side": side, "pool": pool,
                       "tokens_per_image": (side // pool) ** 2,
                       "scale_factor_key": key},
            "ffn_swapped": fx["converter"] == "legacy",
            "tensors": entries}


def check_readback(doc):
    """gguf-py reads back names, ggml shapes and types, and the keys the C loader needs."""
    for f in doc["files"]:
        r = gguf.GGUFReader(os.path.join(OUT, f["file"]))
        by_name = {t.name: t for t in r.tensors}
        assert len(by_name) == len(f["tensors"]), f["file"]
        for e in f["tensors"]:
            t = by_name[e["gguf"]]
            assert [int(x) for x in t.shape] == list(reversed(e["shape"])), (e["gguf"], t.shape)
            assert t.tensor_type.name == e["type"], e
        arch = r.fields["general.architecture"]
        assert bytes(arch.parts[arch.data[0]]).decode() == "clip"
        pt = r.fields["clip.projector_type"]
        assert bytes(pt.parts[pt.data[0]]).decode() == "gemma3"
        assert ("clip.vision.projector.scale_factor" in r.fields) == f["config"]["scale_factor_key"]


def build():
    os.makedirs(OUT, exist_ok=True)
    for name in os.listdir(OUT):
        if name.endswith(".gguf") or name == "expected.json":
            os.remove(os.path.join(OUT, name))
    files = [build_one(fx) for fx in FIXTURES]
    write_text_gguf(np.random.default_rng(14))
    doc = {"generator": "tools/reference/make_mmproj_fixture.py", "gguf_py": gguf_version(), "numpy": np.__version__,
           "hash_of": "sha256 of gguf.quants.dequantize(stored data) as float32 little-endian, PyTorch row-major order",
           "files": files}
    with open(os.path.join(OUT, "expected.json"), "w") as fh:
        fh.write(compact_json(doc))
    check_readback(doc)
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    for n in sorted(os.listdir(OUT)):
        print(f"  {n:22s} {os.path.getsize(os.path.join(OUT, n)):7d} bytes")
    print(f"{OUT}: {total / 1e3:.1f} KB")
    assert total < 100_000, total


def compact_json(doc):
    """Indented down to the tensor entries, one line per tensor (keeps the fixture small and diffable)."""
    files = []
    for f in doc["files"]:
        head = {k: v for k, v in f.items() if k != "tensors"}
        body = ",\n".join("    " + json.dumps(e) for e in f["tensors"])
        files.append("  " + json.dumps(head)[:-1] + ', "tensors": [\n' + body + "\n  ]}")
    top = {k: v for k, v in doc.items() if k != "files"}
    return json.dumps(top, indent=1)[:-2] + ',\n "files": [\n' + ",\n".join(files) + "\n ]\n}\n"


def gguf_version():
    try:
        from importlib.metadata import version
        return version("gguf")
    except Exception:
        return "?"


if __name__ == "__main__":
    build()
