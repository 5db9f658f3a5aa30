#!/usr/bin/env python3
"""Independent numpy (float64) implementation of the Gemma 3 text decoder.

Written from the project spec (docs: spec-gemma3-medgemma.md, sections 1 and 2),
NOT from transformers: it is used to cross-check transformers' reading of the
fixture configs (spellings, defaults, per-layer RoPE, windows, softcaps).

Only numpy is needed. Also holds a tiny dependency-free safetensors reader /
writer (F32, F16, BF16, U32, I32, ...) shared by make_gemma3_fixtures.py.

Semantics (spec section 2):
  h = E[id] * bf16(sqrt(hidden))
  per layer: x += postattn(attn(inp(x)));  x += postff(mlp(preff(x)))
  RMSNorm(x) = x / sqrt(mean(x^2) + eps) * (1 + w)
  attention: q/k RMSNorm per head (v not), split-half (NeoX) RoPE with per-layer
  base and linear factor (positions / factor), scores * query_pre_attn_scalar^-0.5,
  optional attention softcap, causal mask, sliding window (key j visible to
  query i iff j <= i and i - j < window), GQA (query head h uses kv head
  h // (H / KV)).
  MLP: down(gelu_tanh(gate(x)) * up(x))
  logits = final_norm(x) . lm_head^T (lm_head = embed if absent); optional
  final softcap.
"""

import json
import math
import struct
from pathlib import Path

import numpy as np

# ----------------------------------------------------------------------------
# bf16 helpers
# ----------------------------------------------------------------------------


def f32_to_bf16_bits(x):
    """Round float32 -> bfloat16 (round to nearest even), return uint16 bits."""
    x = np.array(x, dtype=np.float32, copy=True)
    b = x.view(np.uint32).astype(np.uint64)
    rounding = 0x7FFF + ((b >> 16) & 1)
    out = ((b + rounding) >> 16).astype(np.uint16)
    # keep NaN a NaN
    nan = np.isnan(x)
    if nan.any():
        out[nan] = 0x7FC0
    return out


def bf16_bits_to_f32(u16):
    u16 = np.asarray(u16, dtype=np.uint16)
    return (u16.astype(np.uint32) << 16).view(np.float32)


def bf16_round(x):
    """float -> nearest bfloat16 value, returned as float32."""
    return bf16_bits_to_f32(f32_to_bf16_bits(x))


def embed_scale_bf16(hidden):
    return float(bf16_round(np.float32(math.sqrt(hidden))).reshape(()))


# ----------------------------------------------------------------------------
# safetensors io (no torch / ml_dtypes needed)
# ----------------------------------------------------------------------------

_ST_NP = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16,
    "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8,
    "U64": np.uint64, "U32": np.uint32, "U16": np.uint16, "U8": np.uint8,
    "BF16": np.uint16,  # raw bits
}


class RawTensor:
    """A tensor as stored: dtype string + numpy array of the raw elements
    (BF16 kept as uint16 bits)."""

    __slots__ = ("dtype", "data")

    def __init__(self, dtype, data):
        self.dtype = dtype
        self.data = data

    @property
    def shape(self):
        return tuple(self.data.shape)

    def to_f32(self):
        if self.dtype == "BF16":
            return bf16_bits_to_f32(self.data)
        return self.data.astype(np.float32)

    def nbytes(self):
        return self.data.nbytes


def read_safetensors(path, with_metadata=False):
    path = Path(path)
    blob = path.read_bytes()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", None)
    base = 8 + n
    out = {}
    for name, info in header.items():
        dt = info["dtype"]
        if dt not in _ST_NP:
            raise ValueError(f"{path}: unsupported dtype {dt} for {name}")
        s, e = info["data_offsets"]
        arr = np.frombuffer(blob, dtype=np.dtype(_ST_NP[dt]).newbyteorder("<"),
                            count=(e - s) // np.dtype(_ST_NP[dt]).itemsize,
                            offset=base + s)
        out[name] = RawTensor(dt, arr.reshape(info["shape"]).copy())
    if with_metadata:
        return out, meta
    return out


def write_safetensors(path, tensors, metadata=None):
    """tensors: dict name -> RawTensor. Names are written sorted (like
    safetensors' own serializer); data 8-byte aligned via header padding."""
    names = sorted(tensors)
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    off = 0
    chunks = []
    for nm in names:
        t = tensors[nm]
        raw = np.ascontiguousarray(t.data).astype(
            np.dtype(_ST_NP[t.dtype]).newbyteorder("<"), copy=False).tobytes()
        header[nm] = {"dtype": t.dtype, "shape": list(t.shape),
                      "data_offsets": [off, off + len(raw)]}
        chunks.append(raw)
        off += len(raw)
    hb = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hb += b" " * ((8 - len(hb) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for c in chunks:
            f.write(c)


def as_dtype(x_f32, dtype):
    """float32 numpy -> RawTensor of dtype F32 / F16 / BF16."""
    x = np.asarray(x_f32, dtype=np.float32)
    if dtype == "F32":
        return RawTensor("F32", x.copy())
    if dtype == "F16":
        return RawTensor("F16", x.astype(np.float16))
    if dtype == "BF16":
        return RawTensor("BF16", f32_to_bf16_bits(x))
    raise ValueError(dtype)


def read_model_dir(d):
    """All tensors of a model directory (single file or sharded)."""
    d = Path(d)
    idx = d / "model.safetensors.index.json"
    files = []
    if idx.exists():
        wm = json.loads(idx.read_text())["weight_map"]
        files = sorted(set(wm.values()))
    else:
        files = sorted(p.name for p in d.glob("*.safetensors"))
    out = {}
    for f in files:
        t = read_safetensors(d / f)
        dup = set(t) & set(out)
        if dup:
            raise ValueError(f"duplicate tensors across shards: {sorted(dup)[:3]}")
        out.update(t)
    return out


# ----------------------------------------------------------------------------
# config interpretation (written from the spec, independent of transformers)
# ----------------------------------------------------------------------------

TEXT_DEFAULTS = dict(  # HF Gemma3TextConfig class defaults (spec 1.1)
    vocab_size=262208, hidden_size=2304, intermediate_size=9216,
    num_hidden_layers=26, num_attention_heads=8, num_key_value_heads=4,
    head_dim=256, rms_norm_eps=1e-6, query_pre_attn_scalar=256,
    sliding_window=4096, sliding_window_pattern=6, rope_theta=1_000_000.0,
    rope_local_base_freq=10_000.0, final_logit_softcapping=None,
    attn_logit_softcapping=None, tie_word_embeddings=True,
)


def text_params(config):
    """Normalized text-decoder parameters from a config.json dict."""
    cfg = dict(config)
    is_mm = cfg.get("model_type") == "gemma3"
    tc = dict(cfg.get("text_config") or {}) if is_mm else cfg

    def g(k):
        return tc[k] if k in tc else TEXT_DEFAULTS[k]

    L = int(g("num_hidden_layers"))
    p = dict(
        is_mm=is_mm,
        vocab=int(g("vocab_size")), hidden=int(g("hidden_size")),
        inter=int(g("intermediate_size")), layers=L,
        heads=int(g("num_attention_heads")), kv_heads=int(g("num_key_value_heads")),
        head_dim=int(g("head_dim")), eps=float(g("rms_norm_eps")),
        qpas=float(g("query_pre_attn_scalar")), window=int(g("sliding_window")),
        attn_softcap=tc.get("attn_logit_softcapping"),
        final_softcap=tc.get("final_logit_softcapping"),
    )
    # layer types: explicit list wins; else the pattern (any spelling)
    lt = tc.get("layer_types")
    if lt is None:
        pat = tc.get("sliding_window_pattern", tc.get("_sliding_window_pattern", 6))
        pat = int(pat)
        lt = ["full_attention" if (i + 1) % pat == 0 else "sliding_attention" for i in range(L)]
    assert len(lt) == L, "layer_types length"
    p["layer_types"] = list(lt)
    # RoPE: transformers-5 rope_parameters (per layer type) or Hub spelling
    rp = tc.get("rope_parameters")
    rope = {}
    if rp is not None and ("full_attention" in rp or "sliding_attention" in rp):
        for t in ("full_attention", "sliding_attention"):
            d = rp.get(t) or {}
            typ = d.get("rope_type", d.get("type", "default"))
            theta = d.get("rope_theta", 1e6 if t == "full_attention" else 1e4)
            factor = float(d.get("factor", 1.0)) if typ == "linear" else 1.0
            if typ not in ("default", "linear"):
                raise NotImplementedError(typ)
            rope[t] = (float(theta), factor)
    else:
        rs = tc.get("rope_scaling") or {}
        typ = rs.get("rope_type", rs.get("type", "default"))
        if typ not in ("default", "linear"):
            raise NotImplementedError(typ)
        factor = float(rs.get("factor", 1.0)) if typ == "linear" else 1.0
        rope["full_attention"] = (float(g("rope_theta")), factor)
        rope["sliding_attention"] = (float(g("rope_local_base_freq")), 1.0)
    p["rope"] = rope
    return p


# ----------------------------------------------------------------------------
# weights
# ----------------------------------------------------------------------------

_PREFIXES = ("model.language_model.", "language_model.model.", "model.")


def text_weights(tensors):
    """Canonical float64 text weights from (ref-dir) tensors: keys like
    'embed_tokens.weight', 'layers.3.mlp.up_proj.weight', 'norm.weight',
    'lm_head.weight' (if present)."""
    out = {}
    for k, t in tensors.items():
        arr = t.to_f32() if isinstance(t, RawTensor) else np.asarray(t, np.float32)
        if k in ("lm_head.weight", "language_model.lm_head.weight"):
            out["lm_head.weight"] = arr.astype(np.float64)
            continue
        for pre in _PREFIXES:
            if k.startswith(pre):
                rest = k[len(pre):]
                if rest.startswith(("embed_tokens.", "layers.", "norm.")):
                    out[rest] = arr.astype(np.float64)
                break
    return out


# ----------------------------------------------------------------------------
# forward
# ----------------------------------------------------------------------------


def rms_norm(x, w, eps):
    r = 1.0 / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps)
    return x * r * (1.0 + w)


def gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def rope(x, pos, theta, factor):
    """x: [T, H, D]; split-half rotation."""
    D = x.shape[-1]
    half = D // 2
    inv = 1.0 / (theta ** (np.arange(0, D, 2, dtype=np.float64) / D))
    ang = (pos[:, None].astype(np.float64) / factor) * inv[None, :]  # [T, half]
    c = np.cos(ang)[:, None, :]
    s = np.sin(ang)[:, None, :]
    x1, x2 = x[..., :half], x[..., half:]
    return np.concatenate([x1 * c - x2 * s, x2 * c + x1 * s], axis=-1)


def forward(config, tensors, tokens, embed_scale=None, return_hidden=False):
    """Logits [T, vocab] (float64) for the token ids, full causal pass."""
    p = text_params(config)
    W = text_weights(tensors)
    T = len(tokens)
    H, KV, Dh, D = p["heads"], p["kv_heads"], p["head_dim"], p["hidden"]
    eps = p["eps"]
    E = W["embed_tokens.weight"]
    assert E.shape == (p["vocab"], D), (E.shape, p["vocab"], D)
    S = embed_scale_bf16(D) if embed_scale is None else embed_scale
    x = E[np.asarray(tokens)] * S
    pos = np.arange(T)
    i_idx = pos[:, None]
    j_idx = pos[None, :]
    causal = j_idx <= i_idx
    sliding = causal & ((i_idx - j_idx) < p["window"])
    scale = p["qpas"] ** -0.5
    rep = H // KV
    for l in range(p["layers"]):
        pre = f"layers.{l}."
        lt = p["layer_types"][l]
        theta, factor = p["rope"][lt]
        a = rms_norm(x, W[pre + "input_layernorm.weight"], eps)
        q = (a @ W[pre + "self_attn.q_proj.weight"].T).reshape(T, H, Dh)
        k = (a @ W[pre + "self_attn.k_proj.weight"].T).reshape(T, KV, Dh)
        v = (a @ W[pre + "self_attn.v_proj.weight"].T).reshape(T, KV, Dh)
        q = rms_norm(q, W[pre + "self_attn.q_norm.weight"], eps)
        k = rms_norm(k, W[pre + "self_attn.k_norm.weight"], eps)
        q = rope(q, pos, theta, factor)
        k = rope(k, pos, theta, factor)
        mask = sliding if lt == "sliding_attention" else causal
        o = np.empty((T, H, Dh))
        for h in range(H):
            kh = k[:, h // rep, :]
            vh = v[:, h // rep, :]
            sc = (q[:, h, :] @ kh.T) * scale
            if p["attn_softcap"] is not None:
                c = float(p["attn_softcap"])
                sc = np.tanh(sc / c) * c
            sc = np.where(mask, sc, -np.inf)
            sc = sc - sc.max(axis=-1, keepdims=True)
            pr = np.exp(sc)
            pr /= pr.sum(axis=-1, keepdims=True)
            o[:, h, :] = pr @ vh
        a = o.reshape(T, H * Dh) @ W[pre + "self_attn.o_proj.weight"].T
        a = rms_norm(a, W[pre + "post_attention_layernorm.weight"], eps)
        x = x + a
        m = rms_norm(x, W[pre + "pre_feedforward_layernorm.weight"], eps)
        g = m @ W[pre + "mlp.gate_proj.weight"].T
        u = m @ W[pre + "mlp.up_proj.weight"].T
        m = (gelu_tanh(g) * u) @ W[pre + "mlp.down_proj.weight"].T
        m = rms_norm(m, W[pre + "post_feedforward_layernorm.weight"], eps)
        x = x + m
    out = rms_norm(x, W["norm.weight"], eps)
    head = W.get("lm_head.weight", E)
    logits = out @ head.T
    if p["final_softcap"] is not None and not p["is_mm"]:
        # transformers' Gemma3ForCausalLM applies it; Gemma3ForConditionalGeneration
        # never reads it (spec 2.6). Only gemma3_text fixtures set it.
        c = float(p["final_softcap"])
        logits = np.tanh(logits / c) * c
    if return_hidden:
        return logits, out
    return logits


def forward_dir(ref_dir, tokens, embed_scale=None):
    ref_dir = Path(ref_dir)
    config = json.loads((ref_dir / "config.json").read_text())
    tensors = read_model_dir(ref_dir)
    return forward(config, tensors, tokens, embed_scale=embed_scale)


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("ref_dir")
    ap.add_argument("--tokens", help="comma separated ids (default: tokens.json in ref_dir)")
    a = ap.parse_args()
    toks = ([int(t) for t in a.tokens.split(",")] if a.tokens else
            json.loads((Path(a.ref_dir) / "tokens.json").read_text())["tokens"])
    lg = forward_dir(a.ref_dir, toks)
    print("logits", lg.shape, "max|logit|", float(np.abs(lg).max()), "argmax", lg.argmax(-1).tolist())
