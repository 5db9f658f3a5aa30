"""Write tests/fixtures/q8/: activation rows and their 8-bit quantizations.

llama.cpp quantizes the activations of every matmul with GGUF block weights
(src/quant/ggml_q8.c does the same).  tests/unit/test_ggml_q8.c checks our
quantizers against these files byte for byte:

    python3 tools/reference/make_q8_fixtures.py     # needs: pip install gguf numpy

Output (little-endian, rows of N_COLS values, manifest.json says the sizes):
  input.f32       the activation rows, float32
  q8_0_gguf.bin   gguf.quants.quantize(rows, Q8_0): ggml's quantize_row_q8_0_ref
                  (d = f16(amax/127), q = roundf(x * (1/d)), half away from zero)
  q8_0_x86.bin    ggml-cpu's AVX quantize_row_q8_0, written here in numpy:
                  q = round-half-even(x * (127/amax)), saturated to int8
  q8_1_ref.bin    quantize_row_q8_1_ref: Q8_0_ref plus s = f16(d * sum(q)),
                  blocks of f16 d, f16 s, int8 qs[32] (36 bytes, ggml's block_q8_1)
  q8_1_x86.bin    ggml-cpu's AVX quantize_row_q8_1 (the x86 rounding, same s)
  q8_K.bin        quantize_row_q8_K_ref (ggml-cpu runs it on x86 too): per 256
                  values max = the signed value of largest magnitude (first on
                  ties), iscale = -127/max, q = min(127, rint(iscale * x)),
                  d = 1/iscale (f32), bsums = sums of 16 q (int16); blocks of
                  f32 d, int8 qs[256], int16 bsums[16] (292 bytes)

gguf-py has no Q8_1 or Q8_K quantizer; those and the x86 variants are
independent numpy readings of ggml's C (all arithmetic in float32, as there).

The rows: normal data at several scales, rows whose x * 127/amax land exactly
on .5 (where half-even and half-away rounding differ), an all-zero block, a
block with one nonzero value, negative extremes, ties for the largest
magnitude, tiny (subnormal-scale) and large values.
"""
import json
import os

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.quants import quantize

OUT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "fixtures", "q8"))
N_ROWS, N_COLS = 16, 512
F32 = np.float32


def rows():
    rng = np.random.default_rng(20240801)
    r = []
    for scale in (1.0, 0.01, 30.0, 1e-3, 4.0, 250.0):
        r.append(rng.standard_normal(N_COLS).astype(F32) * F32(scale))
    # exact halves: amax 127 makes 127/amax == 1, so x * id == x
    half = (rng.integers(-126, 126, N_COLS) + 0.5).astype(F32)
    half[::32] = 127.0
    r.append(half)
    r.append(id_split_row(rng))
    # heavy tails, negative extremes, ties for the largest magnitude
    t = (rng.standard_cauchy(N_COLS) * 0.5).astype(F32)
    t[5], t[40] = F32(-77.0), F32(77.0)     # Q8_K: the first (negative) one scales the block
    r.append(t)
    z = rng.standard_normal(N_COLS).astype(F32)
    z[0:32] = 0.0                           # an all-zero Q8_0 block
    z[64:96] = 0.0
    z[70] = F32(-3.25)                      # a Q8_0 block with one nonzero value
    z[256:512] = 0.0                        # an all-zero Q8_K block
    r.append(z)
    r.append((rng.standard_normal(N_COLS) * 1e-30).astype(F32))   # d underflows f16 to subnormals / zero
    r.append((rng.standard_normal(N_COLS) * 1e-41).astype(F32))   # subnormal inputs: 127/amax is inf
    r.append((rng.standard_normal(N_COLS) * 2.5e6).astype(F32))   # d around f16's largest (some round to inf)
    r.append(rng.uniform(-1, 1, N_COLS).astype(F32))
    r.append(np.full(N_COLS, F32(-0.75)))
    r.append((np.arange(N_COLS, dtype=F32) - F32(255.5)) / F32(7))
    assert len(r) == N_ROWS
    return np.stack(r).astype(F32)


def roundf(p):
    """C roundf, half away from zero (floor(|p| + 0.5) would round 0.49999997 up in float32)."""
    a = np.abs(p)
    fl = np.floor(a)
    return np.sign(p) * (fl + np.floor(F32(2) * (a - fl)))


def id_split_row(rng):
    """Blocks whose amax makes 1/(amax/127) != 127/amax in float32, filled with
    values near k + 1/2 for which the two multipliers round apart."""
    out = np.empty(N_COLS, dtype=F32)
    for blk in range(N_COLS // 32):
        while True:
            amax = F32(rng.uniform(0.5, 2.0))
            id_ref, id_x86 = F32(1) / (amax / F32(127)), F32(127) / amax
            if id_ref != id_x86:
                break
        vals = [amax]
        while len(vals) < 32:
            k = int(rng.integers(-120, 120))
            x = F32((k + 0.5) / float(id_x86))
            for cand in (x, np.nextafter(x, F32(0)), np.nextafter(x, F32(1e9) * np.sign(x))):
                p_ref, p_x86 = cand * id_ref, cand * id_x86
                if roundf(p_ref) != np.rint(p_x86) and abs(cand) < amax:
                    vals.append(cand)
                    break
        out[32 * blk:32 * blk + 32] = rng.permutation(np.array(vals, dtype=F32))
    return out


def blocks(x, size):
    return x.reshape(-1, size)


def f16_bytes(v):
    return np.asarray(v, dtype=F32).astype(np.float16).view(np.uint8).reshape(-1, 2)


def cvtps_epi32(r):
    """x86 float -> int32: NaN and out-of-range values give INT32_MIN."""
    with np.errstate(invalid="ignore"):
        ok = np.abs(r) < 2.0 ** 31
    return np.where(ok, np.nan_to_num(r), -2.0 ** 31).astype(np.int64)


def q8_x86(b):
    """ggml-cpu AVX quantize_row_q8_0 / q8_1 on (n_blocks, 32) float32."""
    amax = np.abs(b).max(axis=1, keepdims=True)
    d = amax / F32(127)
    with np.errstate(divide="ignore", over="ignore"):
        idv = np.where(amax != 0, F32(127) / amax, F32(0)).astype(F32)
    with np.errstate(invalid="ignore", over="ignore"):
        q = cvtps_epi32(np.rint(b * idv))   # float32 product, half to even
    # the int32 sum for s (of the values before the saturating packs) wraps like
    # the vector adds: it matters only for the row of inf/NaN products
    qsum = (q.sum(axis=1) + 2 ** 31) % 2 ** 32 - 2 ** 31
    return d, np.clip(q, -128, 127).astype(np.int32), qsum


def q8_ref(b):
    """quantize_row_q8_0_ref / q8_1_ref."""
    amax = np.abs(b).max(axis=1, keepdims=True)
    d = amax / F32(127)
    with np.errstate(divide="ignore"):
        idv = np.where(d != 0, F32(1) / d, F32(0)).astype(F32)
    p = b * idv
    q = roundf(p)
    return d, q.astype(np.int32), q.astype(np.int64).sum(axis=1)


def pack_q8_0(d, q, qsum):
    return np.concatenate([f16_bytes(d), q.astype(np.int8).view(np.uint8)], axis=1).tobytes()


def pack_q8_1(d, q, qsum):
    s = d[:, 0] * qsum.astype(F32)
    return np.concatenate([f16_bytes(d), f16_bytes(s), q.astype(np.int8).view(np.uint8)], axis=1).tobytes()


def q8_k_blocks(b):
    """quantize_row_q8_K_ref on (n_blocks, 256) float32: d (float32, [n]), q (int32)."""
    a = np.abs(b)
    mx = b[np.arange(len(b)), np.argmax(a, axis=1)][:, None]   # first of the largest magnitudes
    zero = a.max(axis=1) == 0
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        iscale = (F32(-127) / mx).astype(F32)
        # nearest_int: add 1.5 * 2^23 in float32 and read the low mantissa bits
        # (exact rounding half to even for finite values; what it does to inf
        # and NaN is reproduced too)
        bits = ((iscale * b) + F32(12582912)).astype(F32).view(np.int32)
        d = (F32(1) / iscale[:, 0]).astype(F32)
    q = np.minimum((bits & 0x007FFFFF) - 0x00400000, 127).astype(np.int8).astype(np.int32)
    q[zero] = 0
    d[zero] = 0
    return d, q


def q8_k(x):
    out = bytearray()
    d, q = q8_k_blocks(blocks(x, 256))
    for i in range(len(d)):
        bsums = q[i].reshape(16, 16).sum(axis=1).astype(np.int16)
        out += np.array([d[i]], dtype="<f4").tobytes()
        out += q[i].astype(np.int8).tobytes() + bsums.astype("<i2").tobytes()
    return bytes(out)


def main():
    os.makedirs(OUT, exist_ok=True)
    x = rows()
    files = {}

    def put(name, data):
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
        files[name] = len(data)

    put("input.f32", x.astype("<f4").tobytes())
    put("q8_0_gguf.bin", quantize(x, T.Q8_0).tobytes())
    b32 = blocks(x, 32)
    put("q8_0_x86.bin", pack_q8_0(*q8_x86(b32)))
    put("q8_1_ref.bin", pack_q8_1(*q8_ref(b32)))
    put("q8_1_x86.bin", pack_q8_1(*q8_x86(b32)))
    put("q8_K.bin", q8_k(x))
    # the numpy _ref reading must agree with gguf-py, or it is not a reading of ggml
    assert pack_q8_0(*q8_ref(b32)) == quantize(x, T.Q8_0).tobytes()
    x86, ref = q8_x86(b32)[1], q8_ref(b32)[1]
    manifest = {
        "generator": "tools/reference/make_q8_fixtures.py",
        "rows": N_ROWS, "cols": N_COLS, "files": files,
        # per row: how many values ggml-cpu's x86 Q8_0 rounds differently from the _ref one
        # (row 11's 127/amax overflows: ggml's _ref then casts inf/NaN to int8, undefined in C)
        "q8_0_x86_vs_ref_differing_values": [int(v) for v in (x86 != ref).reshape(N_ROWS, -1).sum(axis=1)],
    }
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    print(json.dumps(manifest))


if __name__ == "__main__":
    main()
