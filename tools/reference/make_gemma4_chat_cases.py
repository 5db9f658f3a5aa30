#!/usr/bin/env python3
"""Gemma 4 chat prompts rendered by jinja2 from gemma-4-E2B-it's own template
(tests/fixtures/chat/gemma4-e2b/chat_template.jinja), in the environment
transformers uses (make_chat_cases.make_env: sandboxed, trim_blocks,
lstrip_blocks, loopcontrols).  Writes tests/fixtures/chat/gemma4.jsonl: one
case per line {name, messages, add_generation_prompt, rendered}.  No token
ids: there is no Gemma 4 tokenizer here.  Only what gemma_chat_message can
say (roles, string or text/image list content), each with and without the
generation prompt, and the cases marked below also with enable_thinking=True
(field "enable_thinking"); no tools.

    python3 tools/reference/make_gemma4_chat_cases.py
"""
import json
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_chat_cases import make_env  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
TEMPLATE = os.path.join(ROOT, "tests", "fixtures", "chat", "gemma4-e2b", "chat_template.jinja")
OUT = os.path.join(ROOT, "tests", "fixtures", "chat", "gemma4.jsonl")


def U(c): return {"role": "user", "content": c}
def A(c): return {"role": "assistant", "content": c}
def S(c): return {"role": "system", "content": c}
def T(t): return {"type": "text", "text": t}
IMG = {"type": "image"}


def cases():
    yield "single_user", [U("Hello")]
    yield "trim", [U("  padded \n\t")]
    yield "unicode_space_trim", [U("\u3000wide\u00a0"), A("\u2003ok\u2003")]
    yield "system", [S(" You are terse. "), U("Hi")]
    yield "developer", [{"role": "developer", "content": "Rules."}, U("Hi")]
    yield "system_parts", [{"role": "system", "content": [T(" a "), T("b")]}, U("Hi")]
    yield "multi_turn", [U("1"), A("2"), U("3"), A("4"), U("5")]
    yield "no_alternation", [U("a"), U("b"), A("c"), A("d"), U("e")]
    yield "model_role", [U("a"), {"role": "model", "content": "b"}, {"role": "assistant", "content": "c"}]
    yield "thinking_stripped", [U("q"), A("<|channel>thought\nhmm<channel|>The answer."), U("again")]
    yield "thinking_twice", [U("q"), A("x<|channel>t1<channel|> y <|channel>t2<channel|>z  "), U("u")]
    yield "thinking_unclosed", [U("q"), A("keep<|channel>dropped"), U("u")]
    yield "close_only", [U("q"), A("a<channel|>b"), U("u")]
    yield "user_keeps_channel", [U("<|channel>not stripped<channel|>")]
    yield "images", [{"role": "user", "content": [IMG, T(" Describe. "), IMG]}]
    yield "image_only", [{"role": "user", "content": [IMG]}]
    yield "model_parts", [U("q"), {"role": "assistant", "content": [T(" p1 "), T("<|channel>t<channel|>p2")]}]
    yield "empty_content", [U(""), A("")]
    yield "tool_message_skipped", [U("a"), {"role": "tool", "content": "ignored"}, A("b")]
    yield "assistant_last", [U("a"), A("b")]
    yield "system_only", [S("just a system prompt")]
    yield "newlines", [U("line 1\n\nline 3"), A("\nx\n")]
    rng = random.Random(4)
    words = ["alpha", "beta", " gamma ", "\n", "<|channel>", "<channel|>", "delta\t", "é", "∑"]
    for i in range(40):
        msgs = []
        if rng.random() < 0.3:
            msgs.append(S("".join(rng.choice(words) for _ in range(rng.randint(0, 4)))))
        for _ in range(rng.randint(1, 5)):
            role = rng.choice(["user", "assistant", "user", "model"])
            text = "".join(rng.choice(words) for _ in range(rng.randint(0, 6)))
            if rng.random() < 0.25:
                msgs.append({"role": role, "content": [T(text), IMG] if rng.random() < 0.5 else [T(text)]})
            else:
                msgs.append({"role": role, "content": text})
        yield f"random_{i}", msgs


def thinking_cases():
    """enable_thinking=True: a system turn opened with <|think|>, with or without a system message."""
    yield "single_user", [U("Hello")]
    yield "system", [S(" Be brief. "), U("Hi")]
    yield "developer", [{"role": "developer", "content": "Rules."}, U("Hi")]
    yield "system_parts", [{"role": "system", "content": [T(" a "), T("b")]}, U("Hi")]
    yield "empty_system", [S(""), U("Hi")]
    yield "no_messages", []
    yield "history_stripped", [U("q"), A("<|channel>thought\nhmm<channel|>The answer."), U("again")]
    yield "multi_turn", [S("sys"), U("1"), A("<|channel>thought\nx<channel|>2"), U("3")]
    yield "system_only", [S("just a system prompt")]


def main():
    env = make_env()
    tmpl = env.from_string(open(TEMPLATE, encoding="utf-8").read())
    n = 0
    with open(OUT, "w", encoding="utf-8") as f:
        for name, msgs in cases():
            for gen in (True, False):
                rendered = tmpl.render(messages=msgs, add_generation_prompt=gen, bos_token="<bos>")
                f.write(json.dumps({"name": f"{name}{'' if gen else '_noagp'}", "messages": msgs,
                                    "add_generation_prompt": gen, "rendered": rendered}, ensure_ascii=False) + "\n")
                n += 1
        for name, msgs in thinking_cases():
            for gen in (True, False):
                rendered = tmpl.render(messages=msgs, add_generation_prompt=gen, bos_token="<bos>",
                                       enable_thinking=True)
                f.write(json.dumps({"name": f"think_{name}{'' if gen else '_noagp'}", "messages": msgs,
                                    "add_generation_prompt": gen, "enable_thinking": True, "rendered": rendered},
                                   ensure_ascii=False) + "\n")
                n += 1
    print(f"{n} cases -> {OUT}")


if __name__ == "__main__":
    main()
