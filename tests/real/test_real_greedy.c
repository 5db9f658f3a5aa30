/* test_real_greedy.c - the real Gemma 3 270M against the real peer tools.
 *
 * Random-weight parity proves the math; this proves we read real checkpoints
 * the way the tools people use do.  A reference file made by
 * tools/reference/make_real_270m_refs.py (llama.cpp on the GGUF, mlx-lm on the
 * mlx_lm.convert 4-bit folder and on the f32 Hugging Face folder) holds, per
 * prompt, the prompt ids, N greedy ids and the top-16 logits of every step.
 * We run the same prompt ids through our engine, generate greedily ourselves
 * (free running: our own argmax is fed back) and require the same ids at
 * every step; at every step our logits at the reference's top-16 ids must be
 * within the tolerance.  When the reference has logits for every prompt
 * position, those are checked too.
 *
 *   test_real_greedy REF.json MODEL [--run KEY] [--tol T] [--tokenizer]
 *                    [--tie-margin M --mean-abs-tol A] [--digits N]
 *                    [--numerics auto|exact|llamacpp]
 *
 * For a reference whose numerics differ from exact float32 math on purpose
 * (llama.cpp: 8-bit activations, f16 KV cache), --tie-margin lets a greedy
 * run part where the reference's top-2 margin is below M (any other
 * divergence fails), and --mean-abs-tol replaces the relative bound by a bound
 * on the mean |ours - ref| over all recorded logits.  --digits N requires
 * every recorded logit, printed with N significant digits as the reference
 * was written (make_real_270m_refs.py g6), to be the reference's number: the
 * same floats, as far as recorded.
 *
 * --run KEY takes gen_ids/top_ids/top_logits from each prompt's KEY member
 * (mlx.json holds one run per model folder: "mlx4", "f32").
 * --tokenizer also checks that our tokenizer (loaded from MODEL) turns each
 * prompt's rendered text into the reference's prompt ids.  Exit 0 pass, 1
 * fail, 77 skipped (the model is not installed and GEMMA_REQUIRE_REAL_MODEL
 * is not 1). */
#include "core/json.h"
#include "core/mapfile.h"
#include "gemma.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define TOP 16

static gm_json_doc *read_json(const char *path) {
    char *buf;
    size_t n;
    gemma_error err;
    if (gm_read_file(path, 64u << 20, &buf, &n, &err) != GEMMA_OK) {
        fprintf(stderr, "%s\n", err.message);
        return NULL;
    }
    char jerr[160];
    gm_json_limits lim = {.max_bytes = 64u << 20, .max_depth = 64};
    gm_json_doc *d = gm_json_parse(buf, n, &lim, jerr, sizeof jerr);
    if (!d) fprintf(stderr, "%s: %s\n", path, jerr);
    free(buf);
    return d;
}

static int32_t *int_array(const gm_json *a, size_t *n) {
    *n = gm_json_count(a);
    int32_t *out = malloc((*n ? *n : 1) * sizeof *out);
    for (size_t i = 0; i < *n; i++) {
        int64_t v = -1;
        gm_json_int(gm_json_at(a, i), &v);
        out[i] = (int32_t)v;
    }
    return out;
}

static int argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

typedef struct {
    double tol, tie_margin, mean_abs_tol;
    int digits;         /* --digits N: every recorded logit must print as the reference's N digits */
    long digit_mismatches;
    const char *run_key;
    double max_abs;     /* over every recorded logit */
    double sum_abs;
    long n_abs;
} options;

/* max |ours[id] - ref| over one step's top ids, relative to max |ref| of the step */
static double step_error(const float *logits, const gm_json *ids, const gm_json *vals, int vocab, options *o) {
    double worst = 0, scale = 0;
    for (size_t k = 0; k < gm_json_count(ids) && k < TOP; k++) {
        int64_t id;
        double v;
        if (!gm_json_int(gm_json_at(ids, k), &id) || !gm_json_number(gm_json_at(vals, k), &v) || id < 0 ||
            id >= vocab)
            return INFINITY;
        double d = fabs((double)logits[id] - v);
        o->sum_abs += d;
        o->n_abs++;
        if (d > o->max_abs) o->max_abs = d;
        if (o->digits > 0) {
            char buf[64];
            snprintf(buf, sizeof buf, "%.*g", o->digits, (double)logits[id]);
            if (strtod(buf, NULL) != v) o->digit_mismatches++;
        }
        if (d > worst) worst = d;
        if (fabs(v) > scale) scale = fabs(v);
    }
    return scale > 0 ? worst / scale : worst;
}

static double margin(const gm_json *vals) {
    double a = 0, b = 0;
    gm_json_number(gm_json_at(vals, 0), &a);
    gm_json_number(gm_json_at(vals, 1), &b);
    return a - b;
}

typedef struct {
    int prompts, prompts_identical, prompts_near_tie, steps, steps_identical;
    double worst_step_error, worst_prompt_error;
    int tokenizer_checked, tokenizer_agree;
} totals;

static int check_prompt(gemma_model *m, const gemma_tokenizer *tok, const gm_json *p, options *o, totals *t) {
    const gm_json *run = o->run_key ? gm_json_get(p, o->run_key) : p;
    int by_mean = o->mean_abs_tol > 0;
    const char *name = gm_json_string(gm_json_get(p, "name"));
    size_t n_prompt, n_gen;
    int32_t *prompt = int_array(gm_json_get(p, "prompt_ids"), &n_prompt);
    int32_t *gen = int_array(gm_json_get(run, "gen_ids"), &n_gen);
    const gm_json *top_ids = gm_json_get(run, "top_ids"), *top_logits = gm_json_get(run, "top_logits");
    int vocab = gemma_model_vocab_size(m), ok = 1;
    gemma_error err;

    if (tok) {
        /* chat prompts: the rendered template text (it starts with "<bos>");
         * raw prompts: the text, to which llama.cpp added BOS */
        const gm_json *rj = gm_json_get(p, "rendered");
        int bos = 0;
        if (!gm_json_string(rj)) {
            rj = gm_json_get(p, "text");
            bos = 1;
        }
        const char *text = gm_json_string(rj);
        int32_t ids[8192];
        size_t n_ids = 0;
        if (text && gemma_tokenize(tok, text, rj->len, bos ? GEMMA_TOKENIZE_ADD_BOS : 0, ids, 8192, &n_ids, &err) ==
                        GEMMA_OK) {
            t->tokenizer_checked++;
            if (n_ids == n_prompt && memcmp(ids, prompt, n_ids * sizeof *ids) == 0) t->tokenizer_agree++;
            else {
                printf("  %-20s tokenizer: %zu ids, reference %zu: DIFFERENT\n", name, n_ids, n_prompt);
                ok = 0;
            }
        } else {
            printf("  %-20s tokenizer failed: %s\n", name, err.message);
            ok = 0;
        }
    }

    gemma_session_options so = gemma_session_default_options();
    so.n_ctx = (int)(n_prompt + n_gen + 8);
    so.n_threads = 2;
    gemma_session *s;
    if (gemma_session_create(m, &so, &s, &err) != GEMMA_OK) {
        printf("  %s: %s\n", name, err.message);
        return 0;
    }
    const gm_json *ptop_ids = gm_json_get(p, "prompt_top_ids"), *ptop_logits = gm_json_get(p, "prompt_top_logits");
    size_t rows = ptop_ids ? n_prompt : 1;
    float *logits = malloc(rows * (size_t)vocab * sizeof *logits);
    if (gemma_session_eval(s, prompt, n_prompt, ptop_ids ? GEMMA_LOGITS_ALL : GEMMA_LOGITS_LAST, logits, &err)) {
        printf("  %s: %s\n", name, err.message);
        ok = 0;
        goto done;
    }
    double prompt_err = 0;
    if (ptop_ids) {
        for (size_t i = 0; i < n_prompt && i < gm_json_count(ptop_ids); i++) {
            double e = step_error(logits + i * (size_t)vocab, gm_json_at(ptop_ids, i), gm_json_at(ptop_logits, i), vocab, o);
            if (e > prompt_err) prompt_err = e;
        }
        if (prompt_err > t->worst_prompt_error) t->worst_prompt_error = prompt_err;
        if (!by_mean && prompt_err > o->tol) ok = 0;
        memmove(logits, logits + (n_prompt - 1) * (size_t)vocab, (size_t)vocab * sizeof *logits);
    }
    int identical = 0, first_diff = -1;
    double worst = 0, diff_margin = 0;
    for (size_t i = 0; i < n_gen; i++) {
        double e = step_error(logits, gm_json_at(top_ids, i), gm_json_at(top_logits, i), vocab, o);
        int ours = argmax(logits, vocab);
        if (first_diff < 0) {
            if (e > worst) worst = e;
            if (ours == gen[i]) {
                identical++;
            } else {
                first_diff = (int)i;
                diff_margin = margin(gm_json_at(top_logits, i));
            }
        }
        if (first_diff >= 0) break;   /* free running: after a difference the contexts differ */
        int32_t next = ours;
        if (gemma_session_eval(s, &next, 1, GEMMA_LOGITS_LAST, logits, &err)) {
            printf("  %s: %s\n", name, err.message);
            ok = 0;
            goto done;
        }
    }
    t->prompts++;
    t->steps += (int)n_gen;
    t->steps_identical += identical;
    if (identical == (int)n_gen) t->prompts_identical++;
    if (worst > t->worst_step_error) t->worst_step_error = worst;
    int near_tie = first_diff >= 0 && diff_margin < o->tie_margin;
    t->prompts_near_tie += near_tie;
    if ((identical != (int)n_gen && !near_tie) || (!by_mean && worst > o->tol)) ok = 0;
    printf("  %-20s %4zu prompt ids  %2d/%zu greedy ids identical", name, n_prompt, identical, n_gen);
    if (first_diff >= 0)
        printf(" (step %d: reference top-2 margin %.4f%s)", first_diff, diff_margin, near_tie ? ", a near tie" : "");
    printf("  max rel logit err %.2e", worst);
    if (ptop_ids) printf("  prompt positions %.2e", prompt_err);
    printf("%s\n", ok ? "" : "  FAIL");
done:
    free(logits);
    gemma_session_free(s);
    free(prompt);
    free(gen);
    return ok;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: test_real_greedy REF.json MODEL [--run KEY] [--tol T] [--tokenizer] [--tie-margin M] "
                        "[--mean-abs-tol A] [--digits N] [--numerics auto|exact|llamacpp]\n");
        return 2;
    }
    options o = {.tol = 2e-2};
    gemma_model_options mopts = {0};
    int want_tok = 0;
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "--tol") && i + 1 < argc) o.tol = atof(argv[++i]);
        else if (!strcmp(argv[i], "--run") && i + 1 < argc) o.run_key = argv[++i];
        else if (!strcmp(argv[i], "--tie-margin") && i + 1 < argc) o.tie_margin = atof(argv[++i]);
        else if (!strcmp(argv[i], "--mean-abs-tol") && i + 1 < argc) o.mean_abs_tol = atof(argv[++i]);
        else if (!strcmp(argv[i], "--digits") && i + 1 < argc) o.digits = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--numerics") && i + 1 < argc && gemma_numerics_parse(argv[i + 1]) >= 0)
            mopts.numerics = (gemma_numerics)gemma_numerics_parse(argv[++i]);
        else if (!strcmp(argv[i], "--tokenizer")) want_tok = 1;
    }
    struct stat st;
    if (stat(argv[2], &st) != 0) {
        const char *req = getenv("GEMMA_REQUIRE_REAL_MODEL");
        printf("%s is not installed (bash scripts/setup.sh)\n", argv[2]);
        return req && !strcmp(req, "1") ? 1 : 77;
    }
    gm_json_doc *doc = read_json(argv[1]);
    if (!doc) return 1;
    gemma_error err;
    gemma_model *m;
    if (gemma_model_load(argv[2], &mopts, &m, &err) != GEMMA_OK) {
        printf("%s\n", err.message);
        return 1;
    }
    gemma_tokenizer *tok = NULL;
    if (want_tok && gemma_tokenizer_load(argv[2], &tok, &err) != GEMMA_OK) {
        printf("tokenizer: %s\n", err.message);
        return 1;
    }
    const gm_json *prompts = gm_json_get(gm_json_root(doc), "prompts");
    totals t = {0};
    int ok = gm_json_count(prompts) > 0;
    printf("%s on %s (%s)\n", argv[1], argv[2], gemma_cpu_isa());
    for (size_t i = 0; i < gm_json_count(prompts); i++) ok &= check_prompt(m, tok, gm_json_at(prompts, i), &o, &t);
    double mean_abs = o.n_abs ? o.sum_abs / (double)o.n_abs : 0;
    if (o.mean_abs_tol > 0 && !(mean_abs <= o.mean_abs_tol)) ok = 0;
    if (o.digits > 0 && o.digit_mismatches) ok = 0;
    printf("SUMMARY %d/%d prompts identical (%d part at a near tie < %.2f), %d/%d greedy ids, max rel logit err %.2e "
           "(steps) %.2e (prompt positions), max |dlogit| %.2e, mean |dlogit| %.2e",
           t.prompts_identical, t.prompts, t.prompts_near_tie, o.tie_margin, t.steps_identical, t.steps,
           t.worst_step_error, t.worst_prompt_error, o.max_abs, mean_abs);
    if (o.digits > 0) printf(", %ld of %ld logits differ at %d digits", o.digit_mismatches, o.n_abs, o.digits);
    if (o.mean_abs_tol > 0) printf(" (bound %.2f)", o.mean_abs_tol);
    else printf(", tolerance %.0e", o.tol);
    if (tok) printf(", tokenizer %d/%d prompts", t.tokenizer_agree, t.tokenizer_checked);
    printf(": %s\n", ok ? "PASS" : "FAIL");
    gemma_tokenizer_free(tok);
    gemma_model_free(m);
    gm_json_free(doc);
    return ok ? 0 : 1;
}
