#!/usr/bin/env python3
"""serve_tests.py - `gemma serve` driven by clients nobody here wrote.

The official OpenAI Python client (pip `openai`) and, from here, the official
JS client (npm `openai`, tests/server/test_openai_js.mjs) talk to a real
`gemma serve` on a loopback port it picks itself.  Suites (one ctest each):

  clients     chat, streaming, images, completions, models, parameters, every
              error path, the API key, a full queue (both clients)
  load        8 concurrent clients x 10 requests: zero failures, resident
              memory before/after, p50/p95 latency (printed, not asserted)
  disconnect  a client that drops a stream: generation stops, the slot is
              freed, the server keeps serving
  real        the real Gemma 3 270M: a two-turn conversation whose second
              turn reuses the first's KV cache (times printed, not asserted)

Every server is stopped with SIGTERM and must exit 0, so a sanitizer build's
leak check at exit fails the suite.  No assertion depends on timing.
usage: serve_tests.py SUITE --gemma BIN --model DIR [--vision-model DIR] [--text-model DIR] [--fixtures DIR]
"""
import argparse
import base64
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import openai
from openai import OpenAI

HERE = os.path.dirname(os.path.abspath(__file__))
passed = failed = 0
running = []   # servers to kill if a suite dies half-way


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name} {detail}")
    sys.stdout.flush()
    return cond


class Server:
    """A `gemma serve` child on a port of its choosing; its stderr is kept."""

    def __init__(self, gemma, model, *args):
        env = dict(os.environ)
        env.pop("GEMMA_API_KEY", None)
        self.proc = subprocess.Popen([gemma, "serve", "-m", model, "--port", "0", *args], stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, text=True, env=env)
        self.lines = []
        self.port = None
        for line in self.proc.stderr:
            self.lines.append(line)
            m = re.search(r"listening on http://[^ ]*:(\d+)", line)
            if m:
                self.port = int(m.group(1))
                break
        if self.port is None:
            self.proc.wait(timeout=60)
            raise RuntimeError("gemma serve did not start:\n" + "".join(self.lines))
        self.drain = threading.Thread(target=lambda: self.lines.extend(self.proc.stderr), daemon=True)
        self.drain.start()
        self.base = f"http://127.0.0.1:{self.port}"
        running.append(self)

    def client(self, **kw):
        kw.setdefault("api_key", "unused")
        kw.setdefault("max_retries", 0)
        kw.setdefault("timeout", 120)
        return OpenAI(base_url=self.base + "/v1", **kw)

    def rss_kb(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))

    def metrics(self):
        with urllib.request.urlopen(self.base + "/metrics", timeout=30) as r:
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out

    def raw(self, method, path, body=None, headers=None):
        """(status, parsed JSON or text) of one request made without the OpenAI client."""
        req = urllib.request.Request(self.base + path, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                status, data = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, data = e.code, e.read()
        try:
            return status, json.loads(data)
        except ValueError:
            return status, data.decode(errors="replace")

    def stop(self):
        if self in running:
            running.remove(self)
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.drain.join(timeout=10)
        return rc

    def log(self):
        return "".join(self.lines)


def stopped_cleanly(name, server):
    rc = server.stop()
    check(f"{name}: exits 0 on SIGTERM (no leak report)", rc == 0, f"exit {rc}\n{server.log()[-3000:]}")


def data_url(path):
    mime = "image/png" if path.endswith(".png") else "image/jpeg"
    with open(path, "rb") as f:
        return f"data:{mime};base64," + base64.b64encode(f.read()).decode()


def is_error(e, status, param=None, code=None):
    body = getattr(e, "body", None) or {}
    err = body.get("error", body) if isinstance(body, dict) else {}
    return (getattr(e, "status_code", None) == status and isinstance(err, dict) and "message" in err and "type" in err
            and (param is None or err.get("param") == param) and (code is None or err.get("code") == code))


def expect_error(name, status, fn, param=None, code=None):
    try:
        fn()
        check(name, False, "no error")
    except openai.APIStatusError as e:
        check(name, is_error(e, status, param, code), f"got {e.status_code} {getattr(e, 'body', None)}")


def chat_stream(client, **kw):
    """(text, finish_reason, usage, number of content chunks, first delta) of a streamed chat."""
    text, finish, usage, n, first = "", None, None, 0, None
    for ch in client.chat.completions.create(stream=True, **kw):
        if ch.usage:
            usage = ch.usage
        for c in ch.choices:
            if first is None:
                first = c.delta
            if c.delta.content:
                text += c.delta.content
                n += 1
            finish = c.finish_reason or finish
    return text, finish, usage, n, first


# ====================================================================== clients

def cli_exit(gemma, *args):
    p = subprocess.run([gemma, "serve", *args], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout + p.stderr


def suite_clients(a):
    rc, out = cli_exit(a.gemma, "--help")
    check("serve --help", rc == 0 and "base_url" in out)
    rc, out = cli_exit(a.gemma, "-m", a.text_model, "--bogus")
    check("serve: unknown flag is a usage error", rc == 2 and "unknown option" in out, out)
    rc, out = cli_exit(a.gemma, "-m", a.text_model, "--port", "70000")
    check("serve: bad --port is a usage error", rc == 2 and "bad value" in out, out)
    rc, out = cli_exit(a.gemma, "-m", a.text_model + "/missing")
    check("serve: a missing model fails with one line", rc == 1 and "gemma: error" in out, out)
    s = Server(a.gemma, a.vision_model, "--parallel", "2", "--queue", "4", "--ctx", "512", "--max-body", "262144",
               "-t", "1")
    c = s.client()
    hi = [{"role": "user", "content": "Hello there"}]
    r = c.chat.completions.create(model="any", messages=hi, max_tokens=12, temperature=0)
    ch = r.choices[0]
    check("chat: a reply", isinstance(ch.message.content, str) and ch.message.role == "assistant")
    check("chat: finish_reason length at max_tokens", ch.finish_reason == "length" and r.usage.completion_tokens == 12,
          f"{ch.finish_reason} {r.usage}")
    check("chat: usage adds up", r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens and
          r.usage.prompt_tokens == 11, str(r.usage))
    check("chat: object and id", r.object == "chat.completion" and r.id.startswith("chatcmpl-"))
    r2 = c.chat.completions.create(model="any", messages=hi, max_tokens=12, temperature=0)
    check("chat: greedy is deterministic", r2.choices[0].message.content == ch.message.content)
    check("chat: the same prompt again reuses the cache",
          r2.usage.prompt_tokens_details.cached_tokens == r2.usage.prompt_tokens - 1, str(r2.usage))
    seeded = [c.chat.completions.create(model="any", messages=hi, max_tokens=16, temperature=1, seed=s_).choices[0]
              .message.content for s_ in (7, 7, 8)]
    check("chat: a seed reproduces a sampled reply", seeded[0] == seeded[1])
    check("chat: another seed, another reply", seeded[0] != seeded[2])
    r = c.chat.completions.create(model="any", messages=hi, max_completion_tokens=3, temperature=0)
    check("chat: max_completion_tokens", r.usage.completion_tokens == 3)

    text, finish, usage, n, first = chat_stream(c, model="any", messages=hi, max_tokens=12, temperature=0,
                                                stream_options={"include_usage": True})
    check("stream: the same text as without streaming", text == ch.message.content, repr((text, ch.message.content)))
    check("stream: first delta carries the role", first is not None and first.role == "assistant")
    check("stream: finish_reason and usage chunk", finish == "length" and usage is not None and
          usage.completion_tokens == 12, f"{finish} {usage}")
    text, finish, usage, n, _ = chat_stream(c, model="any", messages=hi, max_tokens=5, temperature=0)
    check("stream: no usage chunk unless asked", usage is None and finish == "length")

    # stop strings: cut before the first occurrence, never emitted in part, also when streamed
    full = c.chat.completions.create(model="any", messages=hi, max_tokens=24, temperature=1, seed=11)
    full_text = full.choices[0].message.content
    stop = full_text[6:9].strip() or full_text[:2]
    cut = c.chat.completions.create(model="any", messages=hi, max_tokens=24, temperature=1, seed=11, stop=[stop, "zzzq"])
    want = full_text[:full_text.find(stop)]
    check("stop: the reply ends right before the stop string", cut.choices[0].message.content == want and
          cut.choices[0].finish_reason == "stop", repr((stop, want, cut.choices[0].message.content)))
    text, finish, _, _, _ = chat_stream(c, model="any", messages=hi, max_tokens=24, temperature=1, seed=11, stop=stop)
    check("stop: streamed, the same cut and no part of the stop string", text == want and finish == "stop",
          repr((text, want)))

    # logit_bias, penalties, extensions, unknown fields
    hello = 9259   # "Hello" in the Gemma 3 vocabulary
    r = c.chat.completions.create(model="any", messages=hi, max_tokens=4, temperature=0, logit_bias={str(hello): 100})
    check("logit_bias +100 forces the token", r.choices[0].message.content == "Hello" * 4, r.choices[0].message.content)
    r = c.chat.completions.create(model="any", messages=hi, max_tokens=4, temperature=0.7, top_p=0.9,
                                  presence_penalty=1.5, frequency_penalty=1.0, seed=3,
                                  extra_body={"top_k": 20, "min_p": 0.05, "repetition_penalty": 1.1,
                                              "a_field_nobody_knows": {"x": [1, 2]}})
    check("penalties, top_k/min_p extensions and unknown fields accepted", r.usage.completion_tokens == 4)
    r = c.chat.completions.create(model="any", max_tokens=3, temperature=0, messages=[
        {"role": "developer", "content": "Be brief."}, {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
        {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "And?"}])
    check("system/developer roles, content parts, multi-turn", r.usage.completion_tokens == 3)

    # images: base64 data: URLs in content parts
    png, jpg = os.path.join(a.fixtures, "image0.png"), os.path.join(a.fixtures, "image1.jpg")
    def img_msg(*paths, text="What is this?"):
        parts = [{"type": "image_url", "image_url": {"url": data_url(p)}} for p in paths]
        return [{"role": "user", "content": parts + [{"type": "text", "text": text}]}]
    plain = c.chat.completions.create(model="any", messages=[{"role": "user", "content": "What is this?"}],
                                      max_tokens=4, temperature=0)
    r1 = c.chat.completions.create(model="any", messages=img_msg(png), max_tokens=4, temperature=0)
    check("image: a PNG in the prompt (4 more tokens: one soft token + markers)",
          r1.usage.prompt_tokens == plain.usage.prompt_tokens + 4, f"{r1.usage} vs {plain.usage}")
    r2 = c.chat.completions.create(model="any", messages=img_msg(png, jpg), max_tokens=4, temperature=0)
    check("image: a PNG and a JPEG", r2.usage.prompt_tokens == plain.usage.prompt_tokens + 8, str(r2.usage))
    r3 = c.chat.completions.create(model="any", messages=img_msg(png), max_tokens=4, temperature=0)
    check("image: the same image again comes from the cache",
          r3.usage.prompt_tokens_details.cached_tokens == r3.usage.prompt_tokens - 1 and
          r3.choices[0].message.content == r1.choices[0].message.content, str(r3.usage))
    r4 = c.chat.completions.create(model="any", messages=img_msg(jpg), max_tokens=4, temperature=0)
    check("image: another image is not taken for the cached one",
          r4.usage.prompt_tokens_details.cached_tokens < r4.usage.prompt_tokens - 6, str(r4.usage))
    text, finish, _, _, _ = chat_stream(c, model="any", messages=img_msg(png), max_tokens=4, temperature=0)
    check("image: streamed", text == r1.choices[0].message.content, repr(text))

    # completions and models
    r = c.completions.create(model="any", prompt="Once upon a time", max_tokens=6, temperature=0)
    check("completions: text and usage", r.object == "text_completion" and r.usage.completion_tokens == 6 and
          r.usage.prompt_tokens == 5 and r.choices[0].finish_reason == "length", str(r))
    streamed = "".join(x.choices[0].text for x in c.completions.create(model="any", prompt="Once upon a time",
                                                                        max_tokens=6, temperature=0, stream=True)
                       if x.choices)
    check("completions: streamed equals non-streamed", streamed == r.choices[0].text, repr(streamed))
    models = c.models.list()
    check("models: lists the served model", len(models.data) == 1 and models.data[0].object == "model")
    check("models: retrieve by id", c.models.retrieve(models.data[0].id).id == models.data[0].id)

    # errors: always an OpenAI error object with the right status
    expect_error("error: missing messages", 400,
                 lambda: c.post("/chat/completions", body={"model": "x"}, cast_to=object), param="messages")
    expect_error("error: messages of the wrong type", 400,
                 lambda: c.post("/chat/completions", body={"messages": "hi"}, cast_to=object), param="messages")
    expect_error("error: empty messages", 400, lambda: c.chat.completions.create(model="any", messages=[]))
    expect_error("error: a message without a role", 400,
                 lambda: c.chat.completions.create(model="any", messages=[{"content": "hi"}]))
    expect_error("error: temperature out of range", 400,
                 lambda: c.chat.completions.create(model="any", messages=hi, temperature=5), param="temperature")
    expect_error("error: max_tokens of the wrong type", 400,
                 lambda: c.chat.completions.create(model="any", messages=hi, max_tokens="ten"), param="max_tokens")
    expect_error("error: n > 1 unsupported", 400, lambda: c.chat.completions.create(model="any", messages=hi, n=2),
                 param="n")
    expect_error("error: logit_bias key not a token id", 400,
                 lambda: c.chat.completions.create(model="any", messages=hi, logit_bias={"abc": 1}), param="logit_bias")
    expect_error("error: stop of the wrong type", 400,
                 lambda: c.chat.completions.create(model="any", messages=hi, stop=[1, 2]), param="stop")
    expect_error("error: roles that do not alternate", 400, lambda: c.chat.completions.create(
        model="any", messages=[{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]))
    expect_error("error: prompt longer than the context", 400, lambda: c.chat.completions.create(
        model="any", messages=[{"role": "user", "content": "word " * 600}]), code="context_length_exceeded")
    expect_error("error: a remote image URL is never fetched", 400, lambda: c.chat.completions.create(
        model="any", messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "http://127.0.0.1:9/x.png"}}]}]))
    expect_error("error: an image that is not an image", 400, lambda: c.chat.completions.create(
        model="any", messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {
            "url": "data:image/png;base64," + base64.b64encode(b"not a png at all").decode()}}]}]))
    expect_error("error: an image soft token typed as text", 400, lambda: c.chat.completions.create(
        model="any", messages=[{"role": "user", "content": "look: <image_soft_token>"}]))
    expect_error("error: more image markers than images", 400, lambda: c.chat.completions.create(
        model="any", messages=img_msg(png, text="and <start_of_image> here")))
    expect_error("error: bad base64", 400, lambda: c.chat.completions.create(
        model="any", messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {
            "url": "data:image/png;base64,@@@@"}}]}]))
    expect_error("error: too many images", 400, lambda: c.chat.completions.create(
        model="any", messages=img_msg(*([png] * 9))))
    expect_error("error: a body over --max-body", 413, lambda: c.chat.completions.create(
        model="any", messages=[{"role": "user", "content": "x" * 300000}]))
    expect_error("error: completions without a prompt", 400,
                 lambda: c.post("/completions", body={"max_tokens": 3}, cast_to=object), param="prompt")
    st, body = s.raw("POST", "/v1/chat/completions", b'{"messages": [', {"Content-Type": "application/json"})
    check("error: malformed JSON -> 400 error object", st == 400 and "error" in body and "message" in body["error"],
          f"{st} {body}")
    st, body = s.raw("POST", "/v1/chat/completions", b"[" * 100 + b"]" * 100)
    check("error: JSON nested too deep -> 400", st == 400 and "error" in body, f"{st} {body}")
    st, body = s.raw("POST", "/v1/chat/completions", b'{"messages":[{"role":"user","content":"\xff"}]}')
    check("error: invalid UTF-8 -> 400", st == 400 and "error" in body, f"{st} {body}")
    st, body = s.raw("GET", "/v1/chat/completions")
    check("error: wrong method -> 405", st == 405 and "error" in body, f"{st} {body}")
    st, body = s.raw("GET", "/v1/nothing-here")
    check("error: unknown route -> 404 error object", st == 404 and body["error"]["code"] == "not_found", f"{st} {body}")
    st, body = s.raw("GET", "/health")
    check("health", st == 200 and body == {"status": "ok"})
    m = s.metrics()
    check("metrics: Prometheus text with request and token counters",
          m.get('gemma_requests_total{route="chat_completions",status="200"}', 0) >= 10 and
          m.get("gemma_generated_tokens_total", 0) > 0 and m.get("gemma_slots") == 2 and
          m.get("process_resident_memory_bytes", 0) > 0, str(m)[:400])

    rc, out = cli_exit(a.gemma, "-m", a.text_model, "--port", str(s.port))
    check("serve: a port in use fails with one line", rc == 1 and "cannot listen" in out, out)

    # a full queue: one slot, no waiting room; a second request while the first streams gets 503
    q = Server(a.gemma, a.vision_model, "--parallel", "1", "--queue", "0", "-t", "1", "--ctx", "4096")
    qc = q.client()
    stream = qc.chat.completions.create(model="any", messages=hi, max_tokens=3000, temperature=1, seed=1, stream=True)
    next(iter(stream))
    expect_error("queue full: 503 with an error object", 503,
                 lambda: qc.chat.completions.create(model="any", messages=hi, max_tokens=2))
    stream.close()
    check("queue full: counted in metrics", q.metrics().get("gemma_requests_rejected_total") == 1)
    stopped_cleanly("queue server", q)

    # the official JS client, unchanged, against the same server
    js = os.path.join(HERE, "test_openai_js.mjs")
    if not os.path.isdir(os.path.join(HERE, "node_modules", "openai")):
        check("JS client installed (bash scripts/setup.sh)", False)
    else:
        env = dict(os.environ, GEMMA_BASE_URL=s.base + "/v1", GEMMA_PNG=png)
        p = subprocess.run(["node", js], env=env, capture_output=True, text=True, timeout=120)
        print(p.stdout, end="")
        m = re.search(r"^(\d+) passed, (\d+) failed$", p.stdout, re.M)
        check("JS client suite", p.returncode == 0 and m and m.group(2) == "0", p.stderr[-2000:])
    stopped_cleanly("server", s)

    # the API key: 401 without it or with a wrong one, 200 with it; /health needs none
    k = Server(a.gemma, a.text_model, "--api-key", "sekret-123", "-t", "1")
    st, body = k.raw("POST", "/v1/chat/completions", json.dumps({"messages": hi, "max_tokens": 2}).encode())
    check("api key: missing -> 401 error object", st == 401 and body["error"]["code"] == "invalid_api_key",
          f"{st} {body}")
    expect_error("api key: wrong -> 401", 401, lambda: k.client(api_key="sekret-124").chat.completions.create(
        model="any", messages=hi, max_tokens=2))
    try:
        r = k.client(api_key="sekret-123").chat.completions.create(model="any", messages=hi, max_tokens=2)
        check("api key: right -> 200", r.usage.completion_tokens == 2)
    except openai.APIError as e:
        check("api key: right -> 200", False, str(e))
    st, _ = k.raw("GET", "/health")
    check("api key: /health needs none", st == 200)
    st, _ = k.raw("GET", "/metrics")
    check("api key: /metrics needs it", st == 401)
    expect_error("text-only model: an image -> 400", 400, lambda: k.client(api_key="sekret-123").chat.completions
                 .create(model="any", messages=img_msg(png), max_tokens=2))
    stopped_cleanly("api-key server", k)


# ========================================================================= load

def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def suite_load(a):
    n_clients, n_requests = 8, 10
    s = Server(a.gemma, a.text_model, "--parallel", "2", "--queue", "16", "-t", "1", "-q")
    def warm(w):   # one round first, so every thread and cache has done its first allocations
        s.client().chat.completions.create(model="any", messages=[{"role": "user", "content": f"warm up {w}"}],
                                           max_tokens=max_tokens)
    max_tokens = 8
    warmers = [threading.Thread(target=warm, args=(w,)) for w in range(n_clients)]
    for t in warmers:
        t.start()
    for t in warmers:
        t.join(timeout=600)
    rss_before = s.rss_kb()
    latencies, errors, lock = [], [], threading.Lock()

    def worker(w):
        c = s.client(max_retries=0)
        for i in range(n_requests):
            msgs = [{"role": "user", "content": f"Client {w} asks question {i}: tell me something."}]
            t0 = time.monotonic()
            try:
                if i % 2:
                    text, finish, usage, _, _ = chat_stream(c, model="any", messages=msgs, max_tokens=max_tokens, seed=i,
                                                            stream_options={"include_usage": True})
                    ok = finish in ("stop", "length") and usage is not None
                else:
                    r = c.chat.completions.create(model="any", messages=msgs, max_tokens=max_tokens, seed=i)
                    ok = r.choices[0].finish_reason in ("stop", "length")
                with lock:
                    latencies.append(time.monotonic() - t0)
                    if not ok:
                        errors.append(f"client {w} request {i}: bad reply")
            except Exception as e:   # every failure is counted, none stops the others
                with lock:
                    errors.append(f"client {w} request {i}: {type(e).__name__}: {e}")

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker, args=(w,)) for w in range(n_clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    wall = time.monotonic() - t0
    rss_after = s.rss_kb()
    total = n_clients * n_requests
    print(f"load: {total} requests from {n_clients} clients in {wall:.2f} s, {len(errors)} failed; latency p50 "
          f"{percentile(latencies, 50) * 1e3:.0f} ms, p95 {percentile(latencies, 95) * 1e3:.0f} ms, max "
          f"{max(latencies) * 1e3:.0f} ms; RSS before {rss_before / 1024:.1f} MiB, after {rss_after / 1024:.1f} MiB "
          f"({(rss_after - rss_before) / 1024:+.1f} MiB)")
    check(f"load: {total} requests, zero failures", not errors and len(latencies) == total, "; ".join(errors[:5]))
    m = s.metrics()
    check("load: the server counted them all",
          m.get('gemma_requests_total{route="chat_completions",status="200"}') == total + n_clients and
          m.get("gemma_slots_busy") == 0 and m.get("gemma_queue_waiting") == 0, str(m)[:500])
    check("load: resident memory stable (< 32 MiB growth)", rss_after - rss_before < 32 * 1024,
          f"{rss_before} -> {rss_after} kB")
    stopped_cleanly("load server", s)


# =================================================================== disconnect

def read_until_closed(sock):
    got = b""
    while True:
        part = sock.recv(4096)
        if not part:
            return got
        got += part


def suite_disconnect(a):
    s = Server(a.gemma, a.text_model, "--parallel", "1", "-t", "1", "--ctx", "4096", "--timeout", "1")
    c = s.client()
    # slow clients: headers that never end, a body shorter than promised; both are dropped at --timeout
    stalled_headers = socket.create_connection(("127.0.0.1", s.port), timeout=60)
    stalled_headers.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
    stalled_body = socket.create_connection(("127.0.0.1", s.port), timeout=60)
    stalled_body.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"messages\"")
    r = c.chat.completions.create(model="any", messages=[{"role": "user", "content": "meanwhile"}], max_tokens=3)
    check("slow clients: others are served meanwhile", r.usage.completion_tokens == 3)
    got = read_until_closed(stalled_headers)
    check("slow client: headers that never end are dropped (a 400 error object, or just closed)",
          got == b"" or (re.match(rb"HTTP/1\.[01] 400", got) and b'"error"' in got), repr(got))
    got = read_until_closed(stalled_body)
    check("slow client: a body that stops coming gets a 400 error object and the connection closed",
          got.startswith(b"HTTP/1.1 400") and b'"error"' in got, repr(got[:300]))
    stalled_headers.close()
    stalled_body.close()

    stream = c.chat.completions.create(model="any", messages=[{"role": "user", "content": "Talk for a long time"}],
                                       max_tokens=4000, temperature=1, seed=5, stream=True)
    got = 0
    for chunk in stream:
        got += 1
        if got == 5:
            break
    stream.close()   # the client goes away mid-stream
    r = c.chat.completions.create(model="any", messages=[{"role": "user", "content": "Still there?"}], max_tokens=5)
    check("disconnect: the server keeps serving (the one slot was freed)", r.usage.completion_tokens == 5)
    # a client that gives up on a non-streamed reply (its timeout) also stops the generation
    try:
        s.client(timeout=1.0).chat.completions.create(
            model="any", messages=[{"role": "user", "content": "Talk for a long time, again"}], max_tokens=4000,
            temperature=1, seed=6)
        check("disconnect: the impatient client timed out", False, "the reply came in time")
    except openai.APITimeoutError:
        pass
    r = c.chat.completions.create(model="any", messages=[{"role": "user", "content": "And now?"}], max_tokens=5)
    check("disconnect (non-streamed): the slot was freed for the next request", r.usage.completion_tokens == 5)
    m = s.metrics()
    check("disconnect: both counted, and nothing is left busy",
          m.get("gemma_client_disconnects_total") == 2 and m.get("gemma_slots_busy") == 0, str(m)[:400])
    gone = [int(re.search(r"\| (\d+) generated", l).group(1)) for l in s.lines if "client gone" in l]
    check("disconnect: both generations stopped early", len(gone) == 2 and all(0 < n < 4000 for n in gone),
          f"{gone}")
    print(f"disconnect: generation stopped after {gone} tokens (of max_tokens 4000; a stream, then a plain request)")

    # a client that gives up while queued behind a stream loses its place; the stream goes on
    holder = c.chat.completions.create(model="any", messages=[{"role": "user", "content": "Hold the slot"}],
                                       max_tokens=4000, temperature=1, seed=7, stream=True)
    chunks = iter(holder)
    next(chunks)
    try:
        s.client(timeout=1.0).chat.completions.create(model="any", messages=[{"role": "user", "content": "queued"}],
                                                      max_tokens=5)
        check("queued client timed out", False, "it was served")
    except openai.APITimeoutError:
        pass
    for _ in range(100):   # the server looks every 0.2 s; bounded wait, nothing timed is asserted
        m = s.metrics()
        if m.get("gemma_queue_waiting") == 0:
            break
        time.sleep(0.1)
    check("disconnect while queued: the request leaves the queue", m.get("gemma_queue_waiting") == 0 and
          m.get("gemma_client_disconnects_total") == 3 and
          m.get('gemma_requests_total{route="chat_completions",status="499"}', 0) >= 3, str(m)[:600])
    next(chunks)
    check("disconnect while queued: the stream ahead of it goes on", m.get("gemma_slots_busy") == 1)
    holder.close()
    stopped_cleanly("disconnect server", s)


# ========================================================================= real

def suite_real(a):
    if not os.path.exists(a.model):
        required = os.environ.get("GEMMA_REQUIRE_REAL_MODEL") == "1"
        check(f"real model {a.model} present (bash scripts/setup.sh installs it)", not required)
        print(f"{passed} passed, {failed} failed")
        sys.exit(1 if required else 77)
    s = Server(a.gemma, a.model, "--parallel", "2")
    c = s.client()
    # greedy replies through the server equal llama.cpp's on the same GGUF (tests/fixtures/real270m)
    with open(os.path.join(HERE, "..", "fixtures", "real270m", "llamacpp.json")) as f:
        refs = {p["name"]: p for p in json.load(f)["prompts"]}
    for name in ("gk_capital", "short_hi"):
        ref = refs[name]
        r = c.chat.completions.create(model="any", messages=ref["messages"], max_tokens=len(ref["gen_ids"]),
                                      temperature=0)
        check(f"real: chat '{name}' equals llama.cpp's greedy reply", r.choices[0].message.content == ref["gen_text"]
              and r.usage.prompt_tokens == ref["n_prompt"], repr((r.choices[0].message.content, ref["gen_text"])))
    ref = refs["raw_story"]
    text = "".join(x.choices[0].text for x in c.completions.create(
        model="any", prompt=ref["text"], max_tokens=len(ref["gen_ids"]), temperature=0, stream=True) if x.choices)
    check("real: streamed completion 'raw_story' equals llama.cpp's", text == ref["gen_text"],
          repr((text, ref["gen_text"])))
    system = ("You are a careful clinical assistant. Answer in plain language, cite the reasoning behind each "
              "recommendation, and say when a question needs a doctor in person. ") * 8
    conv = [{"role": "system", "content": system}, {"role": "user", "content": "What are common causes of a cough?"}]

    def turn(msgs):
        t0 = time.monotonic()
        ttft, text, usage = None, "", None
        for ch in c.chat.completions.create(model="any", messages=msgs, max_tokens=24, temperature=0, stream=True,
                                            stream_options={"include_usage": True}):
            if ch.usage:
                usage = ch.usage
            if ch.choices and ch.choices[0].delta.content:
                if ttft is None:
                    ttft = time.monotonic() - t0
                text += ch.choices[0].delta.content
        return text, ttft, usage

    text1, ttft1, u1 = turn(conv)
    conv += [{"role": "assistant", "content": text1}, {"role": "user", "content": "And which need a doctor?"}]
    text2, ttft2, u2 = turn(conv)
    print(f"real: turn 1 prompt {u1.prompt_tokens} tokens ({u1.prompt_tokens_details.cached_tokens} cached), "
          f"time to first token {ttft1 * 1e3:.0f} ms; turn 2 prompt {u2.prompt_tokens} tokens "
          f"({u2.prompt_tokens_details.cached_tokens} cached), time to first token {ttft2 * 1e3:.0f} ms")
    check("real: the second turn reuses the first turn's cache",
          u2.prompt_tokens_details.cached_tokens >= u1.prompt_tokens, f"{u1} {u2}")
    stopped_cleanly("real server", s)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("suite", choices=["clients", "load", "disconnect", "real"])
    ap.add_argument("--gemma", required=True)
    ap.add_argument("--model", help="the real model (suite real)")
    ap.add_argument("--text-model")
    ap.add_argument("--vision-model")
    ap.add_argument("--fixtures", default=os.path.join(HERE, "..", "fixtures", "mm", "e2e-f32-hub"))
    a = ap.parse_args()
    print(f"openai (Python) {openai.__version__}")
    try:
        {"clients": suite_clients, "load": suite_load, "disconnect": suite_disconnect, "real": suite_real}[a.suite](a)
    except Exception as e:   # a broken suite still reports, and leaves no server behind
        check(f"suite {a.suite} ran to the end", False, f"{type(e).__name__}: {e}")
        for s in list(running):
            print(s.log()[-3000:])
    finally:
        for s in list(running):
            s.proc.kill()
            s.proc.wait()
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
