#!/usr/bin/env python3
"""make_image_fixtures.py - image files and Hugging Face's pixel values for them.

Why: gemma.c decodes images itself (stb_image) and reimplements the Gemma 3
image processor (PIL BILINEAR resize, rescale, normalise, pan and scan).  The
model was trained on what transformers + PIL produce, so that is what
tests/unit/test_image.c compares against.  This script

  * MAKES varied, real-world-like images (no downloads): a grey radiograph,
    photo-like JPEGs (baseline, progressive, EXIF-rotated, 4:4:4, 4:2:2,
    4:1:1, grey, low-quality noise, and with cjpeg from libjpeg-turbo-progs
    if present, 4:4:0 with restart markers),
    16-bit PNGs, RGBA, palette, grey+alpha, low bit depths, interlaced PNGs,
    every EXIF orientation, extreme and boundary aspect ratios, a tiny 7x5
    image, an exactly 896x896 one, BMP/GIF/PNM/TGA, and a CMYK JPEG that must
    be refused;
  * decodes each with transformers.image_utils.load_image (exif_transpose +
    convert("RGB")), and runs transformers' PIL Gemma3ImageProcessor on it at
    sizes 64, 224 and 896, with and without pan and scan;
  * records, per image: the sha256 of the decoded RGB (plus the RGB itself as
    a PNG where it is not just the input file), and per run: the sha256 of
    every crop's float32 CHW tensor, PIL's own resize output (a PNG at 64,
    row sums at 224, 16 band sums at 896) so a failing test can say where
    it differs, not only that it does.

It also checks its own reasoning: HF's floats must equal a 256-entry table
applied to PIL's uint8 resize of HF's crops, or the script stops.

Needs numpy, Pillow and transformers 5.17 (no torch: the PIL processor runs
without it; later 5.x composite transparent pixels onto white, see
check_no_compositing):
    python3 -m venv .refwork/venv-vision
    .refwork/venv-vision/bin/pip install transformers==5.17.0 pillow numpy
    .refwork/venv-vision/bin/python tools/reference/make_image_fixtures.py
Output: tests/fixtures/images/ (inputs, ref/, manifest.json); rerunning
gives the same files for the same library versions (recorded in the manifest).

Pillow changed its resize pass order in 12.2 and again in 13.0 (see
src/vision/resize.h); the main run uses the newest.  The older orders are
checked against hashes from those Pillows, made from the same inputs:
    python3 -m venv .refwork/venv-pil12
    .refwork/venv-pil12/bin/pip install "pillow==12.1.1" numpy transformers==5.17.0
    .refwork/venv-pil12/bin/python tools/reference/make_image_fixtures.py --pillow-variant
    .refwork/venv-pil12/bin/pip install "pillow==12.3.0"
    .refwork/venv-pil12/bin/python tools/reference/make_image_fixtures.py --pillow-variant
"""
import hashlib
import io
import json
import math
import os
import re
import shutil
import struct
import subprocess
import sys
import zlib

import numpy as np
import PIL
from PIL import Image, features

import transformers
from transformers.image_utils import load_image

try:  # transformers >= 5: the PIL backend has its own class
    from transformers import Gemma3ImageProcessorPil as Processor
except ImportError:  # transformers 4.x: the "slow" processor is the PIL one
    from transformers import Gemma3ImageProcessor as Processor

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "fixtures", "images")
REF = os.path.join(OUT, "ref")

# gemma-3-4b-it / medgemma-4b-it preprocessor_config.json
CONFIG = dict(do_resize=True, size={"height": 896, "width": 896}, resample=2, do_rescale=True,
              rescale_factor=0.00392156862745098, do_normalize=True, image_mean=[0.5, 0.5, 0.5],
              image_std=[0.5, 0.5, 0.5], do_convert_rgb=True)
PAS = dict(pan_and_scan_min_crop_size=256, pan_and_scan_max_num_crops=4, pan_and_scan_min_ratio_to_activate=1.2)
SIZES = (64, 224, 896)
BANDS = 16

rng = np.random.default_rng(20250611)


# ------------------------------------------------------------ PNG writer
# PIL cannot write 16-bit RGB, interlaced or hand-filtered PNGs; this does.

def _chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)


def _filter_rows(raw_rows, bpp):
    """Each row gets filter (y % 5) so every unfilter path of a decoder runs."""
    out = bytearray()
    prev = bytes(len(raw_rows[0])) if raw_rows else b""
    for y, row in enumerate(raw_rows):
        f = y % 5
        line = bytearray(len(row))
        for i in range(len(row)):
            a = row[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 0:
                pred = 0
            elif f == 1:
                pred = a
            elif f == 2:
                pred = b
            elif f == 3:
                pred = (a + b) // 2
            else:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            line[i] = (row[i] - pred) & 0xff
        out.append(f)
        out += line
        prev = row
    return bytes(out)


def _pack_rows(px, depth):
    """px: H x W x C array of samples -> list of raw row bytes."""
    h = px.shape[0]
    rows = []
    for y in range(h):
        r = px[y].reshape(-1)
        if depth == 16:
            rows.append(r.astype(">u2").tobytes())
        elif depth == 8:
            rows.append(r.astype(np.uint8).tobytes())
        else:
            per = 8 // depth
            bits = bytearray((len(r) + per - 1) // per)
            for i, v in enumerate(r):
                bits[i // per] |= int(v) << (8 - depth * (i % per + 1))
            rows.append(bytes(bits))
    return rows


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def write_png(path, px, depth, ctype, interlace=False, palette=None, trns=None, exif=None):
    px = px if px.ndim == 3 else px[:, :, None]
    h, w, ch = px.shape
    bpp = max(1, ch * depth // 8)
    if interlace:
        data = b""
        for x0, y0, dx, dy in ADAM7:
            sub = px[y0::dy, x0::dx]
            if sub.shape[0] and sub.shape[1]:
                data += _filter_rows(_pack_rows(sub, depth), bpp)
    else:
        data = _filter_rows(_pack_rows(px, depth), bpp)
    s = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, int(interlace)))
    if palette is not None:
        s += _chunk(b"PLTE", bytes(np.asarray(palette, np.uint8).reshape(-1)))
    if trns is not None:
        s += _chunk(b"tRNS", trns)
    if exif is not None:
        s += _chunk(b"eXIf", exif)
    z = zlib.compress(data, 9)
    for i in range(0, len(z), 8192):   # several IDAT chunks
        s += _chunk(b"IDAT", z[i:i + 8192])
    s += _chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(s)


# --------------------------------------------------------- image content

def radiograph(w, h):
    """A chest-film-like grey image: soft body silhouette, ribs, spine, noise."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    u, v = (x - w / 2) / (w / 2), (y - h / 2) / (h / 2)
    body = np.clip(1.2 - (u / 0.9) ** 2 - (v / 1.1) ** 4, 0, 1)
    lungs = np.exp(-(((np.abs(u) - 0.42) / 0.25) ** 2 + ((v + 0.1) / 0.55) ** 2))
    ribs = 0.5 + 0.5 * np.sin(v * 18 + np.abs(u) * 4)
    spine = np.exp(-((u / 0.07) ** 2))
    img = 40 + 150 * body - 90 * lungs * body + 25 * ribs * body * (1 - spine) + 60 * spine * body
    img += rng.normal(0, 3.0, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def photo(w, h, texture=6.0):
    """Sky gradient, a sun, hills, a striped 'building', fine texture."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.zeros((h, w, 3))
    t = y / h
    img[..., 0] = 90 + 100 * t
    img[..., 1] = 140 + 60 * t
    img[..., 2] = 235 - 60 * t
    sun = ((x - 0.75 * w) ** 2 + (y - 0.25 * h) ** 2) < (0.08 * min(w, h)) ** 2
    img[sun] = [255, 230, 120]
    hill = y > h * (0.6 + 0.1 * np.sin(x / w * 6.0))
    img[hill] = np.stack([40 + 40 * np.sin(x / 7.0), 120 + 30 * np.cos(y / 5.0), 50 + 0 * x], -1)[hill]
    bx0, bx1, by0 = int(0.15 * w), int(0.35 * w), int(0.3 * h)
    img[by0:int(0.8 * h), bx0:bx1] = [150, 60, 50]
    img[by0:int(0.8 * h):6, bx0:bx1] = [230, 230, 230]
    img += rng.normal(0, texture, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def smooth_rgb(w, h, seed_shift=0.0):
    """Gradients and a few shapes: compresses well, still exercises every tap."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 128 + 100 * np.sin(x / max(w, 1) * 7.0 + seed_shift)
    g = 128 + 100 * np.cos(y / max(h, 1) * 5.0 + 2 * seed_shift)
    b = (x * 3 + y * 5) % 256
    img = np.stack([r, g, b], -1)
    cy, cx = h / 2, w / 3
    disk = (x - cx) ** 2 + (y - cy) ** 2 < (0.3 * min(w, h)) ** 2
    img[disk] = [250, 20, 90]
    img[(x.astype(int) // 11 + y.astype(int) // 11) % 7 == 0] = [5, 5, 5]
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def exif_bytes(orientation):
    ex = Image.Exif()
    ex[0x0112] = orientation
    return ex.tobytes()


# ------------------------------------------------------------- the cases

def make_inputs():
    """Write the input files; return [(name, file, kind)], kind: 'ok' or a rejection substring."""
    os.makedirs(OUT, exist_ok=True)
    cases = []

    def add(name, fname, kind="ok"):
        cases.append((name, fname, kind))

    def add_small(name, fname):   # a decoding case: 896 adds nothing the big cases do not cover (test time)
        cases.append((name, fname, "ok-small"))

    def p(fname):
        return os.path.join(OUT, fname)

    xr = radiograph(448, 560)
    Image.fromarray(xr, "L").save(p("xray_grey.png"), optimize=True)
    add("xray_grey", "xray_grey.png")

    ph = photo(400, 300)
    Image.fromarray(ph).save(p("photo_exif6.jpg"), quality=90, exif=exif_bytes(6))
    add("photo_exif6", "photo_exif6.jpg")
    Image.fromarray(photo(320, 240, 4.0)).save(p("progressive.jpg"), quality=85, progressive=True)
    add("progressive", "progressive.jpg")
    Image.fromarray(photo(160, 120, 3.0)).save(p("jpeg444.jpg"), quality=92, subsampling=0)
    add("jpeg444", "jpeg444.jpg")
    Image.fromarray(photo(144, 96, 3.0)).save(p("jpeg422.jpg"), quality=80, subsampling=1)
    add_small("jpeg422", "jpeg422.jpg")
    Image.fromarray(radiograph(200, 250), "L").save(p("grey.jpg"), quality=88)
    add("grey_jpeg", "grey.jpg")
    noise = rng.integers(0, 256, (47, 61, 3)).astype(np.uint8)   # low quality: IDCT outputs out of range, clamped
    Image.fromarray(noise).save(p("noise_q8.jpg"), quality=8, subsampling="4:2:0")
    add_small("noise_q8", "noise_q8.jpg")
    Image.fromarray(photo(70, 45, 3.0)).save(p("jpeg411.jpg"), quality=70, subsampling="4:1:1")
    add_small("jpeg411", "jpeg411.jpg")
    if shutil.which("cjpeg"):   # vertical-only chroma subsampling (4:4:0) and restart markers: PIL cannot write them
        Image.fromarray(photo(58, 41, 3.0)).save(p("h1v2.ppm"))
        subprocess.run(["cjpeg", "-quality", "75", "-sample", "1x2", "-restart", "1", "-optimize", "-outfile",
                        p("h1v2_restart.jpg"), p("h1v2.ppm")], check=True)
        os.remove(p("h1v2.ppm"))
        add_small("h1v2_restart", "h1v2_restart.jpg")
    else:
        print("cjpeg not found (apt-get install libjpeg-turbo-progs): h1v2_restart.jpg not made", file=sys.stderr)
    Image.fromarray(photo(96, 64, 3.0)).convert("CMYK").save(p("cmyk.jpg"), quality=90)
    add("cmyk_jpeg", "cmyk.jpg", "CMYK")

    # 16-bit grey: a 12-bit-detector-like range, so most pixels are over 255
    # (PIL clips them) and a dark corner below 256 keeps a real gradient
    g16 = (radiograph(240, 200).astype(np.uint32) * 16).astype(np.uint16)
    g16[:64, :96] = (np.arange(96)[None, :] * 2 + np.arange(64)[:, None]).astype(np.uint16)
    write_png(p("grey16.png"), g16, 16, 0)
    add("grey16", "grey16.png")
    r16 = (smooth_rgb(120, 80).astype(np.uint32) * 257 + rng.integers(0, 257, (80, 120, 3))).astype(np.uint16)
    write_png(p("rgb16.png"), r16, 16, 2)
    add("rgb16", "rgb16.png")
    ra16 = np.concatenate([r16[:60, :80], (rng.integers(0, 65536, (60, 80, 1))).astype(np.uint16)], -1)
    write_png(p("rgba16.png"), ra16, 16, 6)
    add_small("rgba16", "rgba16.png")
    la16 = np.stack([g16[:50, :70], rng.integers(0, 65536, (50, 70)).astype(np.uint16)], -1)
    write_png(p("la16.png"), la16, 16, 4)
    add_small("la16", "la16.png")

    rgba = np.concatenate([smooth_rgb(240, 180, 1.0), np.zeros((180, 240, 1), np.uint8)], -1)
    rgba[..., 3] = (np.arange(240)[None, :] + np.arange(180)[:, None]) % 256   # alpha 0 with colour under it
    Image.fromarray(rgba, "RGBA").save(p("rgba.png"))
    add("rgba", "rgba.png")
    la = np.stack([radiograph(150, 100), rng.integers(0, 256, (100, 150)).astype(np.uint8)], -1)
    Image.fromarray(la, "LA").save(p("la.png"))
    add_small("grey_alpha", "la.png")

    pal = Image.fromarray(smooth_rgb(300, 200, 2.0)).quantize(colors=64, method=Image.Quantize.MEDIANCUT)
    pal.save(p("palette.png"), transparency=3)
    add("palette", "palette.png")
    idx = (np.arange(97)[None, :] // 7 + np.arange(61)[:, None] // 5) % 16
    write_png(p("palette4.png"), idx.astype(np.uint8), 4, 3,
              palette=rng.integers(0, 256, (16, 3)), trns=bytes([255, 0, 128]))
    add_small("palette4", "palette4.png")
    write_png(p("grey1.png"), ((np.arange(37)[None, :] + np.arange(23)[:, None]) % 3 == 0).astype(np.uint8), 1, 0)
    add_small("grey1", "grey1.png")
    write_png(p("grey2.png"), ((np.arange(41)[None, :] + np.arange(19)[:, None]) % 4).astype(np.uint8), 2, 0)
    add_small("grey2", "grey2.png")
    write_png(p("grey4_trns.png"), ((np.arange(33)[None, :] * 3 + np.arange(21)[:, None]) % 16).astype(np.uint8),
              4, 0, trns=struct.pack(">H", 5))
    add_small("grey4_trns", "grey4_trns.png")
    write_png(p("interlaced.png"), smooth_rgb(93, 71, 3.0), 8, 2, interlace=True)
    add("interlaced", "interlaced.png")
    write_png(p("interlaced16.png"), r16[:45, :67], 16, 2, interlace=True)
    add_small("interlaced16", "interlaced16.png")

    for o in range(1, 9):   # every EXIF orientation, through a PNG eXIf chunk (exact pixels); the chunk
        # holds the bare TIFF structure, except orient7's, which keeps the "Exif\0\0" prefix PIL also accepts
        write_png(p(f"orient{o}.png"), smooth_rgb(13, 7, o), 8, 2, exif=exif_bytes(o)[0 if o == 7 else 6:])
        add_small(f"orient{o}", f"orient{o}.png")

    Image.fromarray(smooth_rgb(2000, 150, 4.0)).save(p("wide_2000x150.png"), optimize=True)
    add("wide_2000x150", "wide_2000x150.png")
    Image.fromarray(photo(1001, 300, 0.0)).save(p("pas_1001x300.png"), optimize=True)
    add("pas_1001x300", "pas_1001x300.png")
    Image.fromarray(smooth_rgb(300, 700, 5.0)).save(p("tall_300x700.png"), optimize=True)
    add("tall_300x700", "tall_300x700.png")
    Image.fromarray(photo(3, 400, 2.0)).save(p("strip_3x400.png"))
    add("strip_3x400", "strip_3x400.png")   # height > 100 x width: Pillow 12.2's vertical-first rule
    Image.fromarray(smooth_rgb(600, 500, 6.0)).save(p("ratio_600x500.png"), optimize=True)
    add("ratio_600x500", "ratio_600x500.png")   # ratio exactly 1.2: pan and scan turns on (double compare)
    Image.fromarray(rng.integers(0, 256, (5, 7, 3)).astype(np.uint8)).save(p("tiny_7x5.png"))
    add("tiny_7x5", "tiny_7x5.png")
    Image.fromarray(smooth_rgb(896, 896, 7.0)).save(p("exact_896.png"), optimize=True)
    add("exact_896", "exact_896.png")

    Image.fromarray(photo(123, 77, 3.0)).save(p("photo24.bmp"))
    add("bmp24", "photo24.bmp")
    Image.fromarray(smooth_rgb(90, 60, 8.0)).quantize(colors=200).save(p("palette8.bmp"))
    add_small("bmp8", "palette8.bmp")
    Image.fromarray(smooth_rgb(64, 40, 8.5)).quantize(colors=100).save(p("plain.gif"))
    add_small("gif", "plain.gif")
    Image.fromarray(radiograph(71, 53), "L").save(p("grey.pgm"))
    add_small("pgm", "grey.pgm")
    Image.fromarray(smooth_rgb(66, 44, 9.0)).save(p("rgb.ppm"))
    add_small("ppm", "rgb.ppm")
    v12 = (radiograph(40, 30).astype(np.uint32) * 4095 // 255).astype(">u2")
    with open(p("grey12.pgm"), "wb") as f:
        f.write(b"P5\n# 12-bit samples\n40 30\n4095\n" + v12.tobytes())
    add_small("pgm12", "grey12.pgm")
    v10 = (smooth_rgb(30, 20, 9.5).astype(np.uint32) * 1000 // 255).astype(">u2")
    with open(p("rgb1000.ppm"), "wb") as f:
        f.write(b"P6 30 20 1000\n" + v10.tobytes())
    add_small("ppm1000", "rgb1000.ppm")
    v100 = (radiograph(33, 17).astype(np.uint32) * 100 // 255).astype(np.uint8)
    with open(p("grey100.pgm"), "wb") as f:
        f.write(b"P5 33 17 100\n" + v100.tobytes())
    add_small("pgm100", "grey100.pgm")
    Image.fromarray(photo(80, 50, 3.0)).save(p("photo.tga"))
    add_small("tga", "photo.tga")
    Image.fromarray(smooth_rgb(70, 45, 10.0)).save(p("rle.tga"), compression="tga_rle")
    add_small("tga_rle", "rle.tga")
    return cases


# ---------------------------------------------------------- references

def sha(b):
    return hashlib.sha256(b).hexdigest()


def level_table(mean, std):
    """What numpy computes for each uint8 level: rescale in float64 then float32, normalise in float32."""
    v = (np.arange(256).astype(np.float64) * CONFIG["rescale_factor"]).astype(np.float32)
    return np.stack([(v - np.float32(m)) / np.float32(s) for m, s in zip(mean, std)])


TABLE = level_table(CONFIG["image_mean"], CONFIG["image_std"])


def hf_run(proc, img, size, pas):
    out = proc(images=[img], return_tensors="np", size={"height": size, "width": size}, do_pan_and_scan=pas, **PAS)
    pv = np.asarray(out["pixel_values"])
    assert pv.dtype == np.float32 and pv.shape[1:] == (3, size, size), pv.shape
    return pv, [int(c) for c in np.asarray(out["num_crops"]).reshape(-1)]


def pas_rects(w, h):
    """HF's pan_and_scan arithmetic, to record the crop rectangles (checked against HF's crops below)."""
    mn, mx, ratio = PAS["pan_and_scan_min_crop_size"], PAS["pan_and_scan_max_num_crops"], \
        PAS["pan_and_scan_min_ratio_to_activate"]
    if w >= h:
        if w / h < ratio:
            return []
        n = min(int(math.floor(w / mn)), int(math.floor(w / h + 0.5)))
        ncw, nch = min(mx, max(2, n)), 1
    else:
        if h / w < ratio:
            return []
        n = min(int(math.floor(h / mn)), int(math.floor(h / w + 0.5)))
        ncw, nch = 1, min(mx, max(2, n))
    cw, ch = int(math.ceil(w / ncw)), int(math.ceil(h / nch))
    if min(cw, ch) < mn:
        return []
    return [[cw * j, ch * i, min(cw, w - cw * j), min(ch, h - ch * i)] for i in range(nch) for j in range(ncw)]


def save_rgb_png(path, rgb):
    """Grey if the three channels agree (a third of the bytes), else RGB."""
    if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]):
        Image.fromarray(rgb[..., 0], "L").save(path, optimize=True)
    else:
        Image.fromarray(rgb, "RGB").save(path, optimize=True)


def plain_png(path):
    """An 8-bit grey/RGB PNG without EXIF: its decode is its own reference."""
    if not path.endswith(".png"):
        return False
    im = Image.open(path)
    return im.mode in ("L", "RGB") and "exif" not in im.info and not im.info.get("interlace")


def references(cases):
    os.makedirs(REF, exist_ok=True)
    proc = Processor(**CONFIG)
    out_cases = []
    for name, fname, kind in cases:
        path = os.path.join(OUT, fname)
        if not kind.startswith("ok"):
            try:
                Image.open(path).load()
                pil_mode = Image.open(path).mode
            except Exception as e:  # noqa: BLE001
                pil_mode = f"error: {e}"
            out_cases.append({"name": name, "file": fname, "reject": kind, "pil_mode": pil_mode})
            continue
        img = load_image(path)   # HF: exif_transpose + convert("RGB")
        rgb = np.array(img)
        h, w = rgb.shape[:2]
        fmt = Image.open(path).format.lower()
        case = {"name": name, "file": fname, "format": {"mpo": "jpeg", "ppm": "pnm"}.get(fmt, fmt),
                "pil_mode": Image.open(path).mode, "width": w, "height": h, "rgb_sha256": sha(rgb.tobytes())}
        if not plain_png(path):
            ref = f"ref/{name}.rgb.png"
            save_rgb_png(os.path.join(OUT, ref), rgb)
            case["rgb_ref"] = ref
        rects = pas_rects(w, h)
        case["pas_crops"] = rects
        runs = []
        for pas in ([False, True] if rects else [False]):
            crops = [rgb] + ([rgb[y:y + ch, x:x + cw] for x, y, cw, ch in rects] if pas else [])
            for size in (SIZES if kind == "ok" else SIZES[:2]):
                pv, num = hf_run(proc, img, size, pas)
                assert num == [len(crops) - 1], (name, num, len(crops))
                run = {"size": size, "pan_and_scan": int(pas), "n_crops": len(crops), "sha256": []}
                for k, crop in enumerate(crops):
                    resized = np.array(Image.fromarray(crop).resize((size, size), Image.BILINEAR))
                    mine = np.stack([TABLE[c][resized[..., c]] for c in range(3)])
                    if not np.array_equal(mine, pv[k]):
                        sys.exit(f"{name} size {size} crop {k}: HF floats are not the level table of PIL's resize")
                    run["sha256"].append(sha(pv[k].astype("<f4").tobytes()))
                    if size == 64:
                        ref = f"ref/{name}.{size}{'.pas' if pas else ''}.{k}.png"
                        Image.fromarray(resized).save(os.path.join(OUT, ref), optimize=True)
                        run.setdefault("resized", []).append(ref)
                    elif size == 224:
                        run.setdefault("row_sums", []).append(resized.sum(axis=1, dtype=np.int64).T.reshape(-1).tolist())
                    else:
                        bands = resized.reshape(BANDS, size // BANDS, size, 3).sum(axis=(1, 2), dtype=np.int64)
                        run.setdefault("band_sums", []).append(bands.T.reshape(-1).tolist())
                runs.append(run)
        case["runs"] = runs
        out_cases.append(case)
        print(f"{name:16s} {fname:20s} {w}x{h} crops {len(rects)}", file=sys.stderr)
    return proc, out_cases


def level_fixtures(proc):
    """Every uint8 level in every channel, at its own size (no resize): the float table itself, for the
    default normalisation and for CLIP's (non-trivial float32 rounding)."""
    lv = np.arange(256, dtype=np.uint8).reshape(16, 16)
    rgb = np.stack([lv, lv.T, 255 - lv], -1)
    img = Image.fromarray(rgb)
    Image.fromarray(rgb).save(os.path.join(OUT, "levels_16.png"))
    out = {"file": "levels_16.png", "runs": []}
    clip_mean, clip_std = [0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711]
    for tag, mean, std in (("gemma", CONFIG["image_mean"], CONFIG["image_std"]), ("clip", clip_mean, clip_std)):
        pv = np.asarray(proc(images=[img], return_tensors="np", size={"height": 16, "width": 16}, image_mean=mean,
                             image_std=std)["pixel_values"])[0]
        ref = f"ref/levels_16.{tag}.f32"
        pv.astype("<f4").tofile(os.path.join(OUT, ref))
        out["runs"].append({"mean": mean, "std": std, "ref": ref})
    return out


def check_no_compositing():
    """transformers 5.2x's convert_to_rgb composites images that carry alpha or PIL "transparency" info onto
    white; 5.17 (what the fixtures were made with), 4.x and mlx-vlm's pipeline do not (load_image's
    convert("RGB") drops alpha, and the processor leaves RGB images alone).  gemma.c follows the latter."""
    from transformers.image_transforms import convert_to_rgb
    probe = Image.new("RGB", (1, 1), (10, 20, 30))
    probe.info["transparency"] = (10, 20, 30)
    try:
        got = np.array(convert_to_rgb(probe, return_numpy=True))
    except TypeError:
        got = np.array(convert_to_rgb(probe))
    if got.reshape(-1)[:3].tolist() != [10, 20, 30]:
        sys.exit(f"transformers {transformers.__version__} composites transparency onto white; "
                 "these fixtures follow the non-compositing processor: pip install transformers==5.17.0")


def variant_main():
    """--pillow-variant: the same inputs (made by a normal run) through this Python's Pillow, whose resize pass
    order may differ (12.1 and earlier: always horizontal first; 12.2: vertical first for images over 100x taller
    than wide; 13.0: when the height loses over twice the pixels the width does).  Writes only the hashes, to
    manifest.pillow-<version>.json, for gemma_preprocess_options.pillow_version."""
    with open(os.path.join(OUT, "manifest.json")) as f:
        main_manifest = json.load(f)
    proc = Processor(**CONFIG)
    out = {"generator": main_manifest["generator"] + " --pillow-variant", "pillow": PIL.__version__,
           "transformers": transformers.__version__, "cases": {}}
    for case in main_manifest["cases"]:
        if "reject" in case:
            continue
        img = load_image(os.path.join(OUT, case["file"]))
        if sha(np.array(img).tobytes()) != case["rgb_sha256"]:
            sys.exit(f"{case['name']}: this Pillow decodes the input differently; hashes would not be comparable")
        runs = []
        for run in case["runs"]:
            pv, _ = hf_run(proc, img, run["size"], bool(run["pan_and_scan"]))
            runs.append([sha(pv[k].astype("<f4").tobytes()) for k in range(len(pv))])
        out["cases"][case["name"]] = runs
    major, minor = PIL.__version__.split(".")[:2]
    path = os.path.join(OUT, f"manifest.pillow-{major}.{minor}.json")
    with open(path, "w") as f:
        f.write(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path}", file=sys.stderr)


def fuzz_seeds():
    """Small valid files of every format for tests/fuzz/corpus/image (libFuzzer mutates from them)."""
    d = os.path.join(ROOT, "tests", "fuzz", "corpus", "image")
    os.makedirs(d, exist_ok=True)
    im = Image.fromarray(smooth_rgb(12, 9, 1.5))
    im.save(os.path.join(d, "baseline.jpg"), quality=75)
    im.save(os.path.join(d, "progressive.jpg"), quality=75, progressive=True)
    Image.fromarray(smooth_rgb(9, 7, 2.5)).convert("L").save(os.path.join(d, "grey.jpg"), quality=60,
                                                               exif=exif_bytes(8))
    Image.fromarray(smooth_rgb(16, 8, 3.5)).convert("CMYK").save(os.path.join(d, "cmyk.jpg"), quality=50)
    im.save(os.path.join(d, "rgb.png"))
    write_png(os.path.join(d, "interlaced16.png"), (smooth_rgb(5, 4, 1.0).astype(np.uint16) * 257), 16, 2,
              interlace=True, exif=exif_bytes(6)[6:])
    write_png(os.path.join(d, "palette2.png"), (np.arange(20).reshape(4, 5) % 4).astype(np.uint8), 2, 3,
              palette=[[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]], trns=bytes([0, 128]))
    im.save(os.path.join(d, "rgb.bmp"))
    im.quantize(colors=16).save(os.path.join(d, "palette.bmp"))
    im.quantize(colors=16).save(os.path.join(d, "anim.gif"), save_all=True,
                                append_images=[Image.fromarray(smooth_rgb(12, 9, 2.0)).quantize(colors=16)])
    with open(os.path.join(d, "rle.tga"), "wb") as f:   # odd first byte: the fuzzer names it .tga
        buf = io.BytesIO()
        im.save(buf, "TGA", compression="tga_rle", id_section=b"x")
        f.write(buf.getvalue())
    with open(os.path.join(d, "grey16.pgm"), "wb") as f:
        f.write(b"P5\n# c\n3 2\n1000\n" + bytes(range(12)))


def main():
    check_no_compositing()
    if "--pillow-variant" in sys.argv[1:]:
        variant_main()
        return
    fuzz_seeds()
    cases = make_inputs()
    proc, out_cases = references(cases)
    manifest = {
        "generator": "tools/reference/make_image_fixtures.py",
        "versions": {"python": sys.version.split()[0], "transformers": transformers.__version__,
                     "pillow": PIL.__version__, "numpy": np.__version__,
                     "libjpeg_turbo": features.version("libjpeg_turbo"), "zlib": features.version("zlib"),
                     "processor": Processor.__name__},
        "config": CONFIG, "pan_and_scan": PAS,
        "levels": level_fixtures(proc),
        "cases": out_cases,
    }
    text = json.dumps(manifest, indent=1)
    # number lists (row and band sums) on one line each: a third of the bytes, still diffable
    text = re.sub(r"\[\s*(-?\d+(?:,\s*-?\d+)*)\s*\]", lambda m: "[" + ",".join(m.group(1).split()).replace(",,", ",") + "]",
                  text)
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        f.write(text + "\n")
    total = sum(os.path.getsize(os.path.join(d, x)) for d, _, fs in os.walk(OUT) for x in fs)
    print(f"{len(out_cases)} cases, {total / 1e6:.2f} MB in {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
