/* cmd_compare.c - `gemma compare -m A -m B --file TEXT`: how far one
 * checkpoint of a model (a quantization, a conversion) is from another,
 * position by position on the same tokens, in the numbers that say whether a
 * quantization hurts: KL(A || B) of the next-token distributions, how often
 * the top-1 token agrees, and the largest logit difference.
 *
 * The text becomes <bos> + its tokens (both models must tokenize it alike and
 * have the same vocabulary) and is cut into windows of --ctx tokens, each
 * evaluated from an empty cache by both models; every position is compared.
 * A is the reference: KL = sum_v pA(v) (log pA(v) - log pB(v)), in double. */
#include "args.h"
#include "common.h"
#include "eval_common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const help =
    "usage: gemma compare -m A -m B --file TEXT [options]\n"
    "\n"
    "  -m, --model PATH     the reference model A, then the model B compared with it\n"
    "  -f, --file TEXT      the text (UTF-8); its tokens are <bos> + the file's\n"
    "  --ctx N              tokens per window; windows do not overlap (default 1024, at least 2)\n"
    "  --json               print the result as JSON\n"
    "  -t, --threads N      worker threads (default: all CPUs)\n"
    "  --numerics MODE      auto | exact | llamacpp | int8, for both models (see 'gemma run --help')\n"
    "  --kv-type TYPE       auto | f32 | f16 | bf16, for both models (see 'gemma run --help')\n"
    "\n"
    "Reports KL(A || B) per position (mean, percentiles, max), top-1 agreement, |logit A - logit B| (the\n"
    "largest over the vocabulary at each position: mean and max), and both models' perplexity on the\n"
    "windows (no overlap, so it is higher than 'gemma perplexity' with a stride).\n";

enum { ROWS_PER_STEP = 16 };

typedef struct {
    double *kl, *max_diff;   /* per position */
    size_t n, top1_agree;
    double nll_a, nll_b;
    size_t n_nll;
} compare_acc;

static void compare_row(compare_acc *acc, const float *la, const float *lb, size_t vocab, int32_t next) {
    double lse_a = cli_logsumexp(la, vocab), lse_b = cli_logsumexp(lb, vocab), kl = 0, max_diff = 0;
    for (size_t v = 0; v < vocab; v++) {
        double lpa = (double)la[v] - lse_a, lpb = (double)lb[v] - lse_b;
        kl += exp(lpa) * (lpa - lpb);
        double d = fabs((double)la[v] - (double)lb[v]);
        if (d > max_diff) max_diff = d;
    }
    acc->kl[acc->n] = kl > 0 ? kl : 0;   /* rounding can leave -1e-17 for identical rows */
    acc->max_diff[acc->n] = max_diff;
    acc->top1_agree += cli_argmax(la, vocab) == cli_argmax(lb, vocab);
    acc->n++;
    if (next < 0) return;
    acc->nll_a += lse_a - (double)la[next];
    acc->nll_b += lse_b - (double)lb[next];
    acc->n_nll++;
}

static int same_tokens(const cli_assets *a, const cli_assets *b, const char *text, size_t len, const char *file,
                       int32_t **ids, size_t *n) {
    int32_t *ids_b;
    size_t n_b;
    if (cli_tokenize_text_file(a->tok, text, len, file, ids, n) != CLI_OK) return CLI_FAIL;
    if (cli_tokenize_text_file(b->tok, text, len, file, &ids_b, &n_b) != CLI_OK) return CLI_FAIL;
    size_t i = 0;
    while (i < *n && i < n_b && (*ids)[i] == ids_b[i]) i++;
    free(ids_b);
    if (i == *n && i == n_b) return CLI_OK;
    return cli_error("%s: the two models' tokenizers differ on it from token %zu (not the same model?)", file, i);
}

static void print_result(const compare_acc *acc, const char *model_a, const char *model_b, const char *file, long ctx,
                         size_t windows, double seconds, int json) {
    cli_sort_doubles(acc->kl, acc->n);
    double kl_mean = 0, diff_mean = 0;
    for (size_t i = 0; i < acc->n; i++) {
        kl_mean += acc->kl[i] / (double)acc->n;
        diff_mean += acc->max_diff[i] / (double)acc->n;
    }
    cli_sort_doubles(acc->max_diff, acc->n);
    double p50 = cli_percentile_sorted(acc->kl, acc->n, 0.5), p90 = cli_percentile_sorted(acc->kl, acc->n, 0.9);
    double p99 = cli_percentile_sorted(acc->kl, acc->n, 0.99), kl_max = acc->kl[acc->n - 1];
    double diff_p50 = cli_percentile_sorted(acc->max_diff, acc->n, 0.5), diff_max = acc->max_diff[acc->n - 1];
    double top1 = (double)acc->top1_agree / (double)acc->n;
    double ppl_a = acc->n_nll ? exp(acc->nll_a / (double)acc->n_nll) : NAN;
    double ppl_b = acc->n_nll ? exp(acc->nll_b / (double)acc->n_nll) : NAN;
    if (json) {
        printf("{\"task\":\"compare\",\"model_a\":");
        cli_json_string(stdout, model_a);
        printf(",\"model_b\":");
        cli_json_string(stdout, model_b);
        printf(",\"file\":");
        cli_json_string(stdout, file);
        printf(",\"n_positions\":%zu,\"ctx\":%ld,\"windows\":%zu,\"kl\":{\"mean\":%.6g,\"p50\":%.6g,\"p90\":%.6g,"
               "\"p99\":%.6g,\"max\":%.6g},\"top1_agreement\":%.6f,\"max_abs_logit_diff\":{\"mean\":%.6g,"
               "\"p50\":%.6g,\"max\":%.6g},\"ppl_a\":%.6f,\"ppl_b\":%.6f,\"seconds\":%.2f}\n",
               acc->n, ctx, windows, kl_mean, p50, p90, p99, kl_max, top1, diff_mean, diff_p50, diff_max, ppl_a,
               ppl_b, seconds);
        return;
    }
    printf("A: %s\nB: %s\n%zu positions of %s (%zu windows of %ld)\n", model_a, model_b, acc->n, file, windows, ctx);
    printf("KL(A||B) per position: mean %.5f  p50 %.5f  p90 %.5f  p99 %.5f  max %.5f\n", kl_mean, p50, p90, p99,
           kl_max);
    printf("top-1 agreement %.4f (%zu/%zu)\n", top1, acc->top1_agree, acc->n);
    printf("max |logit A - logit B| per position: mean %.4f  p50 %.4f  max %.4f\n", diff_mean, diff_p50, diff_max);
    printf("perplexity on these windows: A %.4f  B %.4f; %.1f s\n", ppl_a, ppl_b, seconds);
}

int cmd_compare(int argc, char **argv) {
    const char *models[2] = {NULL, NULL};
    int n_models = 0;
    cli_eval_flags f = {.ctx = 1024};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(help, stdout);
            return CLI_OK;
        }
        int r = cli_parse_eval_flag(argc, argv, &i, "compare", &f);
        if (r < 0) return CLI_USAGE;
        if (r > 0) continue;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (n_models == 2) return cli_usage_error("compare", "give exactly two -m models");
            if (!(models[n_models++] = cli_value(argc, argv, &i, "compare"))) return CLI_USAGE;
        } else {
            return cli_usage_error("compare", "unknown option '%s'", a);
        }
    }
    const char *file = f.file;
    long ctx = f.ctx;
    if (n_models != 2) return cli_usage_error("compare", "give exactly two -m models (A, the reference, then B)");
    if (!file) return cli_usage_error("compare", "missing --file TEXT");
    if (ctx < 2) return cli_usage_error("compare", "--ctx must be at least 2 (got %ld)", ctx);

    size_t len;
    char *text = cli_read_text_file(file, &len);
    if (!text) return CLI_FAIL;
    int rc = CLI_FAIL;
    cli_assets a = {0}, b = {0};
    gemma_session *sa = NULL, *sb = NULL;
    int32_t *ids = NULL;
    float *rows_a = NULL, *rows_b = NULL;
    size_t n = 0;
    compare_acc acc = {0};
    gemma_error err;
    if (len == 0) {
        cli_error("%s: the text is empty", file);
        goto done;
    }
    if (cli_load_assets(models[0], f.numerics, &a, 0) != CLI_OK || cli_load_assets(models[1], f.numerics, &b, 0) != CLI_OK)
        goto done;
    size_t vocab = (size_t)gemma_model_vocab_size(a.model);
    if ((size_t)gemma_model_vocab_size(b.model) != vocab) {
        cli_error("%s has %d logits per position, %s has %zu: not the same model", models[1],
                  gemma_model_vocab_size(b.model), models[0], vocab);
        goto done;
    }
    if (same_tokens(&a, &b, text, len, file, &ids, &n) != CLI_OK) goto done;
    gemma_session_options so = gemma_session_default_options();
    so.n_threads = (int)f.threads;
    so.n_ctx = (int)ctx;
    so.kv_type = f.kv_type;
    if (gemma_session_create(a.model, &so, &sa, &err) != GEMMA_OK || gemma_session_create(b.model, &so, &sb, &err) != GEMMA_OK) {
        cli_error("%s", err.message);
        goto done;
    }
    rows_a = malloc(ROWS_PER_STEP * vocab * sizeof *rows_a);
    rows_b = malloc(ROWS_PER_STEP * vocab * sizeof *rows_b);
    acc.kl = malloc(n * sizeof *acc.kl);
    acc.max_diff = malloc(n * sizeof *acc.max_diff);
    if (!rows_a || !rows_b || !acc.kl || !acc.max_diff) {
        cli_error("out of memory");
        goto done;
    }
    size_t windows = (n + (size_t)ctx - 1) / (size_t)ctx;
    cli_progress bar;
    cli_progress_start(&bar, n, "token");
    double t0 = cli_now();
    for (size_t begin = 0; begin < n; begin += (size_t)ctx) {
        size_t end = begin + (size_t)ctx < n ? begin + (size_t)ctx : n;
        gemma_session_reset(sa);
        gemma_session_reset(sb);
        for (size_t at = begin; at < end; at += ROWS_PER_STEP) {
            size_t m = end - at < ROWS_PER_STEP ? end - at : ROWS_PER_STEP;
            if (gemma_session_eval(sa, ids + at, m, GEMMA_LOGITS_ALL, rows_a, &err) != GEMMA_OK ||
                gemma_session_eval(sb, ids + at, m, GEMMA_LOGITS_ALL, rows_b, &err) != GEMMA_OK) {
                cli_progress_end(&bar);
                cli_error("%s", err.message);
                goto done;
            }
            for (size_t k = 0; k < m; k++)
                compare_row(&acc, rows_a + k * vocab, rows_b + k * vocab, vocab, at + k + 1 < end ? ids[at + k + 1] : -1);
            cli_progress_update(&bar, at + m);
        }
    }
    cli_progress_end(&bar);
    print_result(&acc, models[0], models[1], file, ctx, windows, cli_now() - t0, f.json);
    rc = CLI_OK;
done:
    free(acc.kl);
    free(acc.max_diff);
    free(rows_a);
    free(rows_b);
    free(ids);
    free(text);
    gemma_session_free(sa);
    gemma_session_free(sb);
    cli_free_assets(&a);
    cli_free_assets(&b);
    return rc;
}
