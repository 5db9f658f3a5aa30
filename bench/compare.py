#!/usr/bin/env python3
"""Side-by-side speed of gemma.c and llama.cpp on this machine, one invocation.

For each architecture (the real models' exact shapes, random weights):
  * llama.cpp (llama-cpp-python, installed from PyPI by this script if missing) runs a GGUF written here
    with the gguf package: every matrix Q4_0 (4.5 bits/weight), norms f32, a placeholder vocabulary;
  * gemma.c runs `gemma bench --synthetic ARCH --quant mlx4` (MLX 4-bit g64 with bf16 scales and biases:
    also 4.5 bits/weight) and the same Q4_0 GGUF file;
  * the same prompt length, generation length and threads; decode feeds back the argmax of the logits in
    both engines; the machine's FMA peak and read bandwidth come from gemma bench's probe in the same run.
Prints a Markdown table (and writes --json). Usage:

    python3 bench/compare.py [--arch gemma3-270m,gemma3-1b] [--threads 2] [--prompt 512] [--gen 64]
                             [--reps 3] [--rounds 2] [--rt] [--json out.json]

--rt runs both engines under SCHED_FIFO (chrt, root only) so that other work on a shared machine does not
preempt them. Timings are medians over reps x rounds, the engines alternating each round.
"""
import argparse, ctypes, json, os, statistics, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GEMMA = os.path.join(ROOT, "build", "gemma")

# name: hidden, layers, ffn, heads, kv_heads, head_dim, vocab, window, rope_linear (as tools/gemma/bench_synth.c)
ARCHS = {
    "gemma3-270m": (640, 18, 2048, 4, 1, 256, 262144, 512, None),
    "gemma3-1b": (1152, 26, 6912, 4, 1, 256, 262144, 512, None),
    "medgemma-4b": (2560, 34, 10240, 8, 4, 256, 262208, 1024, 8.0),
}


def ensure_peer():
    try:
        import llama_cpp  # noqa: F401
        import gguf  # noqa: F401
    except ImportError:
        subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "llama-cpp-python", "gguf", "numpy"])


def write_q4_0_gguf(path, arch):
    """A gemma3 GGUF with random Q4_0 matrices (per block: f16 scale + 16 bytes of nibbles)."""
    import numpy as np, gguf
    D, L, F, H, KV, Dh, V, window, rope_linear = ARCHS[arch]
    rng = np.random.default_rng(0)
    w = gguf.GGUFWriter(path, "gemma3")
    w.add_name("gemma.c bench " + arch)
    w.add_context_length(131072)
    w.add_embedding_length(D)
    w.add_block_count(L)
    w.add_feed_forward_length(F)
    w.add_head_count(H)
    w.add_head_count_kv(KV)
    w.add_key_length(Dh)
    w.add_value_length(Dh)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_rope_freq_base(1e6)
    w.add_sliding_window(window)
    if rope_linear:
        w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        w.add_rope_scaling_factor(rope_linear)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q4_0)
    tokens = ["<pad>", "<eos>", "<bos>", "<unk>"] + ["<t%d>" % i for i in range(4, V)]
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores([0.0] * V)
    w.add_token_types([3, 3, 3, 2] + [1] * (V - 4))
    w.add_bos_token_id(2)
    w.add_eos_token_id(1)
    w.add_unk_token_id(3)
    w.add_pad_token_id(0)

    def q4_0(rows, cols):
        blocks = rng.integers(0, 256, size=(rows, cols // 32, 18), dtype=np.uint8)
        scale = np.float16(2.0 * np.sqrt(3.0 / cols) / 15.0)     # uniform levels with std ~ 1/sqrt(cols)
        blocks[:, :, 0:2] = np.frombuffer(scale.tobytes(), dtype=np.uint8)
        return blocks.reshape(rows, cols // 32 * 18)

    def mat(name, rows, cols):
        w.add_tensor(name, q4_0(rows, cols), raw_dtype=gguf.GGMLQuantizationType.Q4_0)

    def norm(name, n):
        w.add_tensor(name, np.ones(n, dtype=np.float32), raw_dtype=gguf.GGMLQuantizationType.F32)  # stored 1 + w

    mat("token_embd.weight", V, D)
    for l in range(L):
        b = f"blk.{l}."
        for name, rows, cols in [("attn_q", H * Dh, D), ("attn_k", KV * Dh, D), ("attn_v", KV * Dh, D),
                                 ("attn_output", D, H * Dh), ("ffn_gate", F, D), ("ffn_up", F, D),
                                 ("ffn_down", D, F)]:
            mat(b + name + ".weight", rows, cols)
        for name, n in [("attn_norm", D), ("post_attention_norm", D), ("ffn_norm", D), ("post_ffw_norm", D),
                        ("attn_q_norm", Dh), ("attn_k_norm", Dh)]:
            norm(b + name + ".weight", n)
    norm("output_norm.weight", D)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def prompt_ids(n, vocab):
    seed, ids = 12345, [2]
    for _ in range(1, n):   # the same LCG as gemma bench: ids in [1000, 200000)
        seed = (seed * 1664525 + 1013904223) % 2**32
        ids.append(1000 + (seed >> 8) % (min(vocab, 200000) - 1000))
    return ids


LLAMA_SCRIPT = r'''
import ctypes, json, sys, time
import numpy as np
import llama_cpp.llama_cpp as LL
from llama_cpp import Llama
orig = LL.llama_model_default_params
def params():
    p = orig(); p.use_extra_bufts = False; return p     # no CPU repacking buffers (AMX dies in this VM)
LL.llama_model_default_params = params
path, threads, n_gen, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
prompt = json.loads(sys.argv[5])
t0 = time.time()
llm = Llama(path, n_ctx=len(prompt) + n_gen + 16, n_batch=512, n_ubatch=512, n_threads=threads,
            n_threads_batch=threads, verbose=False)
load_ms = 1e3 * (time.time() - t0)
vocab = llm.n_vocab()
def last_argmax():
    p = LL.llama_get_logits_ith(llm.ctx, -1)
    return int(np.argmax(np.ctypeslib.as_array(p, shape=(vocab,))))
out = []
for r in range(reps):
    llm.reset()
    LL.llama_kv_self_clear(llm.ctx) if hasattr(LL, "llama_kv_self_clear") else None
    t0 = time.time(); llm.eval(prompt); t1 = time.time()
    tok = last_argmax()
    for i in range(n_gen):
        llm.eval([tok]); tok = last_argmax()
    t2 = time.time()
    out.append({"prefill_tok_s": len(prompt) / (t1 - t0), "decode_tok_s": n_gen / (t2 - t1), "ttft_ms": 1e3 * (t1 - t0)})
print(json.dumps({"load_ms": load_ms, "runs": out}))
'''


def run_llamacpp(path, args, prompt, rt):
    env = dict(os.environ)
    env.setdefault("OMP_WAIT_POLICY", "ACTIVE")   # its fastest setting here (PASSIVE sleeps at every barrier)
    cmd = [sys.executable, "-c", LLAMA_SCRIPT, path, str(args.threads), str(args.gen), str(args.reps), json.dumps(prompt)]
    out = subprocess.run(rt + cmd, capture_output=True, text=True, env=env, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def run_gemma(extra, args, rt, machine):
    cmd = [GEMMA, "bench", "--prompt", str(args.prompt), "--gen", str(args.gen), "--reps", str(args.reps),
           "-t", str(args.threads), "--json"] + ([] if machine else ["--no-machine"]) + extra
    out = subprocess.run(rt + cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arch", default="gemma3-270m,gemma3-1b")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompt", type=int, default=512)
    ap.add_argument("--gen", type=int, default=64)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--rt", action="store_true", help="run the engines under chrt -f 10 (root)")
    ap.add_argument("--workdir", default="/dev/shm/gemma-compare" if os.path.isdir("/dev/shm") else "/tmp/gemma-compare")
    ap.add_argument("--json")
    args = ap.parse_args()
    if not os.path.exists(GEMMA):
        subprocess.check_call(["cmake", "-S", ROOT, "-B", os.path.join(ROOT, "build"), "-DCMAKE_BUILD_TYPE=Release"])
        subprocess.check_call(["cmake", "--build", os.path.join(ROOT, "build"), "-j", "--target", "gemma"])
    ensure_peer()
    import llama_cpp
    rt = ["chrt", "-f", "10"] if args.rt else []
    os.makedirs(args.workdir, exist_ok=True)
    rows, machine = [], None
    for arch in args.arch.split(","):
        if arch not in ARCHS:
            sys.exit(f"compare.py: unknown --arch {arch} (one of {', '.join(ARCHS)})")
        gguf_path = os.path.join(args.workdir, arch + "-q4_0.gguf")
        if not os.path.exists(gguf_path):
            t0 = time.time()
            write_q4_0_gguf(gguf_path + ".tmp", arch)
            os.rename(gguf_path + ".tmp", gguf_path)
            print(f"# wrote {gguf_path} in {time.time() - t0:.1f} s", file=sys.stderr)
        synth_dir = os.path.join(args.workdir, arch + "-mlx4")
        prompt = prompt_ids(args.prompt, ARCHS[arch][6])
        res = {"llama.cpp Q4_0": [], "gemma.c MLX 4-bit": [], "gemma.c MLX 4-bit (int8 numerics)": [],
               "gemma.c Q4_0 (exact)": [], "gemma.c Q4_0 (llamacpp numerics)": []}
        info = {}
        for rnd in range(args.rounds):
            print(f"# {arch}: round {rnd + 1}/{args.rounds}", file=sys.stderr)
            r = run_llamacpp(gguf_path, args, prompt, rt)
            res["llama.cpp Q4_0"] += r["runs"]
            g = run_gemma(["--synthetic", arch, "--quant", "mlx4", "--synthetic-dir", synth_dir], args, rt, machine is None)
            if machine is None:
                machine = {"fma_gflops": g["fma_gflops"], "read_gbs": g["read_gbs"], "isa": g["isa"]}
            info["gemma.c MLX 4-bit"] = g
            res["gemma.c MLX 4-bit"].append(g)
            g = run_gemma(["--synthetic", arch, "--quant", "mlx4", "--synthetic-dir", synth_dir, "--numerics", "int8"],
                          args, rt, False)
            info["gemma.c MLX 4-bit (int8 numerics)"] = g
            res["gemma.c MLX 4-bit (int8 numerics)"].append(g)
            for numerics, key in [("exact", "gemma.c Q4_0 (exact)"), ("llamacpp", "gemma.c Q4_0 (llamacpp numerics)")]:
                g = run_gemma(["-m", gguf_path, "--numerics", numerics], args, rt, False)
                info[key] = g
                res[key].append(g)
        base = {k: statistics.median(x[k] for x in res["llama.cpp Q4_0"]) for k in ("prefill_tok_s", "decode_tok_s")}
        for engine, runs in res.items():
            pf = statistics.median(x["prefill_tok_s"] for x in runs)
            dc = statistics.median(x["decode_tok_s"] for x in runs)
            tb = info.get(engine, info["gemma.c MLX 4-bit"])["bytes_per_token"]
            roof = machine["read_gbs"] * 1e9 / tb
            rows.append({"arch": arch, "engine": engine, "prefill_tok_s": pf, "decode_tok_s": dc,
                         "prefill_vs_llamacpp": pf / base["prefill_tok_s"], "decode_vs_llamacpp": dc / base["decode_tok_s"],
                         "bytes_per_token": tb, "decode_roofline_ratio": dc / roof,
                         "peak_rss_mb": info[engine]["peak_rss_mb"] if engine in info else None})
    print(f"\nMachine: {machine['isa']} kernels, FMA peak {machine['fma_gflops']:.0f} GFLOP/s, read bandwidth "
          f"{machine['read_gbs']:.1f} GB/s; {args.threads} threads, prompt {args.prompt}, gen {args.gen}, "
          f"llama-cpp-python {llama_cpp.__version__}; medians of {args.reps} reps x {args.rounds} rounds\n")
    print("| arch | engine | prefill tok/s | decode tok/s | prefill vs llama.cpp | decode vs llama.cpp | decode / roofline |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['arch']} | {r['engine']} | {r['prefill_tok_s']:.1f} | {r['decode_tok_s']:.2f} | "
              f"{r['prefill_vs_llamacpp']:.2f}x | {r['decode_vs_llamacpp']:.2f}x | {100 * r['decode_roofline_ratio']:.0f}% |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine, "args": vars(args), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
