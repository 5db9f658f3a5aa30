/* cmd_bench.c - `gemma bench`: prefill, decode and vision speed, load time
 * and memory of a model, next to this machine's limits measured in the same
 * run (FMA peak, read bandwidth), so each number comes with the ratio that
 * says how good it is.  --synthetic benchmarks a real architecture's exact
 * shapes with random weights (bench_synth.h), no download needed. */
#include "args.h"
#include "bench_synth.h"
#include "common.h"
#include "gemma.h"

#include "eval_common.h"

#include "core/cpu.h"
#include "core/threadpool.h"
#include "kernels/probe.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *const help =
    "usage: gemma bench (-m MODEL | --synthetic ARCH) [options]\n"
    "\n"
    "  -m, --model PATH       a model directory or GGUF file\n"
    "  --synthetic ARCH       random weights with the exact shapes of ARCH: gemma3-270m, gemma3-1b,\n"
    "                         medgemma-4b, gemma4-e2b, gemma4-e4b\n"
    "  --quant Q              synthetic weight format: mlx4 (default), mlx8, bf16\n"
    "  --synthetic-dir DIR    write the synthetic model there and reuse it on later runs\n"
    "                         (default: a temporary folder in /dev/shm or $TMPDIR, removed at exit)\n"
    "  --prompt N             prompt tokens, one prefill (default 512; 0: none)\n"
    "  --gen N                tokens decoded one by one after it (default 64)\n"
    "  --ctx N                context size (default prompt + gen)\n"
    "  -t, --threads N        worker threads (default: all CPUs)\n"
    "  --reps N               repetitions of prefill + decode; medians reported (default 3)\n"
    "  --image                also time one image through the vision tower (vision_ms)\n"
    "  --numerics MODE        auto | exact | llamacpp | int8\n"
    "  --kv-type TYPE         KV cache storage: auto (f16 with llamacpp or int8 numerics, else f32) |\n"
    "                         f32 | f16 | bf16\n"
    "  --no-machine           skip measuring the FMA peak and read bandwidth\n"
    "  --json                 one JSON line instead of the table\n";

typedef struct {
    const char *model, *synthetic, *synthetic_dir;
    synth_quant quant;
    long prompt, gen, ctx, threads, reps;
    int image, json, machine;
    gemma_numerics numerics;
    gemma_kv_type kv_type;
} bench_opts;

typedef struct {
    double fma_gflops, read_gbs;
} machine_limits;

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct {
    double median, min, max;
} stat3;

static stat3 summarize(double *v, int n) {
    stat3 s = {0, 0, 0};
    if (n <= 0) return s;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    s.min = v[0];
    s.max = v[n - 1];
    s.median = cli_percentile_sorted(v, (size_t)n, 0.5);
    return s;
}

/* kB value of a /proc/self/status line ("VmHWM:", ...), -1 if unknown. */
static long proc_status_kb(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long v = -1;
    size_t n = strlen(key);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, n)) {
            v = atol(line + n);
            break;
        }
    fclose(f);
    return v;
}

/* ---------------------------------------------------------------- machine */

/* In a child process, so the probe's buffer never counts in our peak RSS. */
static int measure_machine(int threads, machine_limits *out) {
    int fd[2];
    memset(out, 0, sizeof *out);
    if (pipe(fd) != 0) return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]);
        close(fd[1]);
        return -1;
    }
    if (pid == 0) {
        close(fd[0]);
        machine_limits m = {0, 0};
        gm_pool *pool = gm_pool_create(threads);
        if (pool) {
            m.fma_gflops = gm_probe_fma_gflops(pool, 0.6);
            m.read_gbs = gm_probe_read_gbs(pool, (size_t)1 << 29, 5);
            gm_pool_free(pool);
        }
        ssize_t w = write(fd[1], &m, sizeof m);
        _exit(w == (ssize_t)sizeof m ? 0 : 1);
    }
    close(fd[1]);
    ssize_t r = read(fd[0], out, sizeof *out);
    close(fd[0]);
    int status;
    waitpid(pid, &status, 0);
    return r == (ssize_t)sizeof *out ? 0 : -1;
}

/* ------------------------------------------------------ synthetic folders */

static char temp_root[1100];   /* the folder we made and remove at exit, "" if none */

static void remove_tree(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[1400];
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            struct stat st;
            if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
                remove_tree(p);
            else
                unlink(p);
        }
    closedir(d);
    rmdir(dir);
}

static void remove_temp_root(void) {
    if (temp_root[0]) remove_tree(temp_root);
    temp_root[0] = 0;
}

static int make_synthetic(const bench_opts *o, const bench_arch *a, char *path, size_t cap, double *seconds,
                          uint64_t *bytes) {
    if (o->synthetic_dir) {
        snprintf(path, cap, "%s", o->synthetic_dir);
    } else {
        struct stat st;
        const char *base = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0
                               ? "/dev/shm"
                               : (getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        snprintf(temp_root, sizeof temp_root, "%s/gemma-bench-XXXXXX", base);
        if (!mkdtemp(temp_root)) {
            temp_root[0] = 0;
            return cli_error("%s: cannot create a temporary folder: %s", base, strerror(errno));
        }
        atexit(remove_temp_root);
        snprintf(path, cap, "%s/%s-%s", temp_root, a->name, synth_quant_name(o->quant));
    }
    double t0 = cli_now();
    if (bench_synth_write(path, a, o->quant, bytes)) return CLI_FAIL;
    *seconds = cli_now() - t0;
    return CLI_OK;
}

/* ------------------------------------------------------------------ runs */

typedef struct {
    double load_ms, session_ms, synth_s;
    uint64_t synth_bytes;
    stat3 prefill_tok_s, decode_tok_s, ttft_ms;
    double vision_ms;
    long peak_rss_kb, rss_anon_kb, rss_file_kb, rss_shmem_kb;
    uint64_t kv_bytes;
    int threads;
} bench_result;

static int32_t argmax(const float *v, int n) {
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

static int run_text(gemma_model *m, gemma_session *s, const bench_opts *o, bench_result *r) {
    /* ordinary ids (past the specials of a real vocabulary; any id of a tiny test one) */
    int vocab = gemma_model_vocab_size(m), hi = vocab < 200000 ? vocab : 200000, lo = vocab > 2000 ? 1000 : 0;
    float *logits = malloc((size_t)vocab * sizeof(float));
    int32_t *prompt = malloc((size_t)(o->prompt + 1) * sizeof(int32_t));
    double *pf = calloc((size_t)o->reps, sizeof(double)), *dc = calloc((size_t)o->reps, sizeof(double)),
           *tt = calloc((size_t)o->reps, sizeof(double));
    int rc = CLI_FAIL;
    gemma_error err = {0};
    if (!logits || !prompt || !pf || !dc || !tt) {
        cli_error("out of memory");
        goto done;
    }
    uint32_t seed = 12345;
    prompt[0] = vocab > 2 ? 2 : 0;   /* <bos> */
    for (long i = 1; i < o->prompt; i++) {
        seed = seed * 1664525u + 1013904223u;
        prompt[i] = lo + (int32_t)((seed >> 8) % (uint32_t)(hi - lo));
    }
    long n_prompt = o->prompt > 0 ? o->prompt : 1;
    for (long rep = 0; rep < o->reps; rep++) {
        gemma_session_reset(s);
        double t0 = cli_now();
        if (gemma_session_eval(s, prompt, (size_t)n_prompt, GEMMA_LOGITS_LAST, logits, &err) != GEMMA_OK) {
            cli_error("%s", err.message);
            goto done;
        }
        int32_t next = argmax(logits, vocab);
        double t1 = cli_now();
        pf[rep] = (double)n_prompt / (t1 - t0);
        tt[rep] = 1e3 * (t1 - t0);
        for (long g = 0; g < o->gen; g++) {
            if (gemma_session_eval(s, &next, 1, GEMMA_LOGITS_LAST, logits, &err) != GEMMA_OK) {
                cli_error("%s", err.message);
                goto done;
            }
            next = argmax(logits, vocab);
        }
        dc[rep] = o->gen > 0 ? (double)o->gen / (cli_now() - t1) : 0;
    }
    r->prefill_tok_s = summarize(pf, (int)o->reps);
    r->decode_tok_s = summarize(dc, (int)o->reps);
    r->ttft_ms = summarize(tt, (int)o->reps);
    rc = CLI_OK;
done:
    free(logits);
    free(prompt);
    free(pf);
    free(dc);
    free(tt);
    return rc;
}

static int run_vision(gemma_model *m, gemma_session *s, bench_result *r) {
    if (!gemma_model_has_vision(m)) return cli_error("--image: this model has no vision tower");
    int S = gemma_model_image_size(m), T = gemma_model_image_tokens(m);
    size_t n = 3 * (size_t)S * (size_t)S;
    float *pixels = malloc(n * sizeof(float)), *out = malloc((size_t)T * gemma_model_hidden_size(m) * sizeof(float));
    if (!pixels || !out) {
        free(pixels);
        free(out);
        return cli_error("out of memory");
    }
    uint32_t seed = 7;
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        pixels[i] = (float)(seed >> 8) / (float)(1u << 23) - 1.0f;   /* [-1, 1): a normalized image */
    }
    gemma_error err = {0};
    double t0 = cli_now();
    gemma_status st = gemma_session_encode_images(s, pixels, 1, out, &err);
    r->vision_ms = 1e3 * (cli_now() - t0);
    free(pixels);
    free(out);
    return st == GEMMA_OK ? CLI_OK : cli_error("%s", err.message);
}

/* ---------------------------------------------------------------- output */

static void print_json(const bench_opts *o, gemma_model *m, gemma_session *s, const bench_arch *a,
                       const bench_result *r, const machine_limits *ml) {
    uint64_t tb = gemma_model_token_bytes(m);
    double roof = ml->read_gbs > 0 && tb ? ml->read_gbs * 1e9 / (double)tb : 0;
    printf("{\"model\": \"%s\", \"arch\": \"%s\", \"quant\": \"%s\", \"numerics\": \"%s\", \"kv_type\": \"%s\", \"isa\": \"%s\", "
           "\"threads\": %d, \"prompt\": %ld, \"gen\": %ld, \"ctx\": %d, \"reps\": %ld, "
           "\"prefill_tok_s\": %.2f, \"prefill_tok_s_min\": %.2f, \"prefill_tok_s_max\": %.2f, "
           "\"decode_tok_s\": %.2f, \"decode_tok_s_min\": %.2f, \"decode_tok_s_max\": %.2f, "
           "\"ttft_ms\": %.2f, \"load_ms\": %.2f, \"session_ms\": %.2f, ",
           o->synthetic ? "synthetic" : o->model, a ? a->name : gemma_model_arch(m),
           o->synthetic ? synth_quant_name(o->quant) : "file", gemma_numerics_name(gemma_model_numerics(m)),
           gemma_kv_type_name(gemma_session_kv_type(s)), gemma_cpu_isa(), r->threads, o->prompt, o->gen, (int)o->ctx, o->reps, r->prefill_tok_s.median,
           r->prefill_tok_s.min, r->prefill_tok_s.max, r->decode_tok_s.median, r->decode_tok_s.min,
           r->decode_tok_s.max, r->ttft_ms.median, r->load_ms, r->session_ms);
    if (o->image) {
        double fl = a ? bench_vision_flops(a) : 0;
        printf("\"vision_ms\": %.1f, ", r->vision_ms);
        if (fl > 0) printf("\"vision_gflops\": %.1f, ", fl / (r->vision_ms * 1e-3) / 1e9);
        if (fl > 0 && ml->fma_gflops > 0)
            printf("\"vision_peak_ratio\": %.3f, ", fl / (r->vision_ms * 1e-3) / 1e9 / ml->fma_gflops);
    }
    printf("\"peak_rss_mb\": %.1f, \"rss_anon_mb\": %.1f, \"rss_file_mb\": %.1f, \"rss_shmem_mb\": %.1f, "
           "\"kv_bytes\": %llu, \"weight_bytes\": %llu, \"bytes_per_token\": %llu, "
           "\"fma_gflops\": %.1f, \"read_gbs\": %.2f, \"roofline_tok_s\": %.2f, \"decode_roofline_ratio\": %.3f}\n",
           r->peak_rss_kb / 1024.0, r->rss_anon_kb / 1024.0, r->rss_file_kb / 1024.0, r->rss_shmem_kb / 1024.0,
           (unsigned long long)r->kv_bytes, (unsigned long long)gemma_model_weight_bytes(m), (unsigned long long)tb,
           ml->fma_gflops, ml->read_gbs, roof, roof > 0 ? r->decode_tok_s.median / roof : 0);
}

static void print_table(const bench_opts *o, gemma_model *m, gemma_session *s, const bench_arch *a,
                        const bench_result *r, const machine_limits *ml) {
    uint64_t tb = gemma_model_token_bytes(m);
    printf("model      %s%s%s, %s numerics, %s KV cache, kernels %s, %d threads\n", a ? a->name : o->model,
           a ? " synthetic " : "", a ? synth_quant_name(o->quant) : "", gemma_numerics_name(gemma_model_numerics(m)),
           gemma_kv_type_name(gemma_session_kv_type(s)), gemma_cpu_isa(), r->threads);
    if (a && r->synth_bytes) printf("synthetic  %.2f GB written in %.1f s\n", (double)r->synth_bytes / 1e9, r->synth_s);
    if (a && !r->synth_bytes) printf("synthetic  reused %s\n", o->synthetic_dir);
    printf("weights    %.1f MB mapped, %.1f MB read per decoded token\n", gemma_model_weight_bytes(m) / 1e6,
           (double)tb / 1e6);
    printf("load       %.1f ms (session %.1f ms: %.1f MB of KV cache and scratch for %ld tokens)\n", r->load_ms, r->session_ms,
           (double)r->kv_bytes / 1e6, o->ctx);
    printf("prefill    %ld tokens: %.1f tok/s (%.1f-%.1f), time to first token %.1f ms\n", o->prompt,
           r->prefill_tok_s.median, r->prefill_tok_s.min, r->prefill_tok_s.max, r->ttft_ms.median);
    printf("decode     %ld tokens: %.2f tok/s (%.2f-%.2f)\n", o->gen, r->decode_tok_s.median, r->decode_tok_s.min,
           r->decode_tok_s.max);
    if (o->image) {
        double fl = a ? bench_vision_flops(a) : 0;
        printf("vision     %.0f ms per image", r->vision_ms);
        if (fl > 0) printf(", %.1f GFLOP/s", fl / (r->vision_ms * 1e-3) / 1e9);
        if (fl > 0 && ml->fma_gflops > 0)
            printf(" = %.0f%% of the FMA peak", 100 * fl / (r->vision_ms * 1e-3) / 1e9 / ml->fma_gflops);
        printf("\n");
    }
    printf("memory     peak RSS %.1f MB (now: anon %.1f, file %.1f, shmem %.1f MB)\n", r->peak_rss_kb / 1024.0,
           r->rss_anon_kb / 1024.0, r->rss_file_kb / 1024.0, r->rss_shmem_kb / 1024.0);
    if (ml->read_gbs > 0) {
        double roof = ml->read_gbs * 1e9 / (double)tb;
        printf("machine    FMA peak %.1f GFLOP/s, read bandwidth %.2f GB/s -> decode roofline %.1f tok/s; "
               "decode at %.0f%% of it\n",
               ml->fma_gflops, ml->read_gbs, roof, 100 * r->decode_tok_s.median / roof);
    }
}

/* ------------------------------------------------------------------ main */

static int parse(int argc, char **argv, bench_opts *o) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        long *num = NULL, lo = 0, hi = 1 << 20;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(help, stdout);
            return -1;
        }
        if (!strcmp(a, "--image")) o->image = 1;
        else if (!strcmp(a, "--json")) o->json = 1;
        else if (!strcmp(a, "--no-machine")) o->machine = 0;
        else if (!strcmp(a, "-m") || !strcmp(a, "--model") || !strcmp(a, "--synthetic") || !strcmp(a, "--quant") ||
                 !strcmp(a, "--synthetic-dir") || !strcmp(a, "--numerics") || !strcmp(a, "--kv-type")) {
            if (!(v = cli_value(argc, argv, &i, "bench"))) return CLI_USAGE;
            if (a[1] == 'm' || !strcmp(a, "--model")) o->model = v;
            else if (!strcmp(a, "--synthetic")) o->synthetic = v;
            else if (!strcmp(a, "--synthetic-dir")) o->synthetic_dir = v;
            else if (!strcmp(a, "--numerics")) {
                if (!cli_parse_numerics(v, "bench", &o->numerics)) return CLI_USAGE;
            } else if (!strcmp(a, "--kv-type")) {
                if (!cli_parse_kv_type(v, "bench", &o->kv_type)) return CLI_USAGE;
            } else if (!synth_quant_parse(v, &o->quant))
                return cli_usage_error("bench", "--quant must be mlx4, mlx8 or bf16, not '%s'", v);
        } else {
            if (!strcmp(a, "--prompt")) num = &o->prompt;
            else if (!strcmp(a, "--gen")) num = &o->gen;
            else if (!strcmp(a, "--ctx")) num = &o->ctx, lo = 1;
            else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) num = &o->threads, lo = 1, hi = 1024;
            else if (!strcmp(a, "--reps")) num = &o->reps, lo = 1, hi = 1000;
            else return cli_usage_error("bench", "unknown option '%s'", a);
            if (!(v = cli_value(argc, argv, &i, "bench"))) return CLI_USAGE;
            if (!cli_parse_int(v, lo, hi, num)) return cli_usage_error("bench", "%s must be %ld..%ld, not '%s'", a, lo, hi, v);
        }
    }
    if (!!o->model == !!o->synthetic) return cli_usage_error("bench", "give -m MODEL or --synthetic ARCH (one of them)");
    if (o->synthetic_dir && !o->synthetic) return cli_usage_error("bench", "--synthetic-dir needs --synthetic");
    return 0;
}

int cmd_bench(int argc, char **argv) {
    bench_opts o = {NULL, NULL, NULL, SYNTH_MLX4, 512, 64, 0, 0, 3, 0, 0, 1, GEMMA_NUMERICS_AUTO, GEMMA_KV_AUTO};
    int rc = parse(argc, argv, &o);
    if (rc) return rc < 0 ? CLI_OK : rc;
    const bench_arch *arch = NULL;
    if (o.synthetic && !(arch = bench_arch_find(o.synthetic)))
        return cli_usage_error("bench", "unknown --synthetic '%s' (one of: %s)", o.synthetic, bench_arch_names());
    if (o.image && arch && !arch->v_layers) return cli_usage_error("bench", "--image: %s has no vision tower", arch->name);
    if (!o.ctx) o.ctx = (o.prompt > 0 ? o.prompt : 1) + o.gen;
    if (o.ctx < (o.prompt > 0 ? o.prompt : 1) + o.gen)
        return cli_usage_error("bench", "--ctx %ld is smaller than --prompt + --gen", o.ctx);

    bench_result r;
    memset(&r, 0, sizeof r);
    r.threads = o.threads ? (int)o.threads : 0;
    char path[1400];
    if (arch && make_synthetic(&o, arch, path, sizeof path, &r.synth_s, &r.synth_bytes)) return CLI_FAIL;
    const char *model_path = arch ? path : o.model;

    gemma_session_options so = gemma_session_default_options();
    so.n_ctx = (int)o.ctx;
    so.n_threads = (int)o.threads;
    so.kv_type = o.kv_type;
    machine_limits ml = {0, 0};
    if (o.machine && measure_machine(o.threads ? (int)o.threads : gm_cpu_count(), &ml))
        fprintf(stderr, "gemma: warning: could not measure the machine's limits\n");

    gemma_model_options mo;
    memset(&mo, 0, sizeof mo);
    mo.numerics = o.numerics;
    gemma_model *m = NULL;
    gemma_session *s = NULL;
    gemma_error err = {0};
    double t0 = cli_now();
    if (gemma_model_load(model_path, &mo, &m, &err) != GEMMA_OK) return cli_error("%s", err.message);
    double t1 = cli_now();
    r.load_ms = 1e3 * (t1 - t0);
    if (gemma_session_create(m, &so, &s, &err) != GEMMA_OK) {
        gemma_model_free(m);
        return cli_error("%s", err.message);
    }
    r.session_ms = 1e3 * (cli_now() - t1);
    r.kv_bytes = gemma_session_memory_bytes(m, &so);
    r.threads = gemma_session_threads(s);

    rc = run_text(m, s, &o, &r);
    if (rc == CLI_OK && o.image) rc = run_vision(m, s, &r);
    if (rc == CLI_OK) {
        r.peak_rss_kb = proc_status_kb("VmHWM:");
        r.rss_anon_kb = proc_status_kb("RssAnon:");
        r.rss_file_kb = proc_status_kb("RssFile:");
        r.rss_shmem_kb = proc_status_kb("RssShmem:");
        if (o.json)
            print_json(&o, m, s, arch, &r, &ml);
        else
            print_table(&o, m, s, arch, &r, &ml);
    }
    gemma_session_free(s);
    gemma_model_free(m);
    return rc;
}
