/* cmd_perplexity.c - `gemma perplexity`: the perplexity of a model on a text
 * file, computed the standard way (Hugging Face's "Perplexity of fixed-length
 * models" guide), so that a quantized checkpoint can be put next to its float
 * original with one number that other tools also report.
 *
 * The text becomes <bos> + its tokens.  Windows of --ctx tokens start every
 * --stride tokens; each window is evaluated from an empty cache and scores only
 * the tokens no earlier window scored (its last end - previous end tokens, all
 * of them with at least ctx - stride tokens of context after the first window;
 * a window's first token is never scored, as in HF's shifted labels).
 * perplexity = exp(sum of those tokens' negative log-likelihoods / their
 * number).  The windows stop at the first one that reaches the end. */
#include "args.h"
#include "common.h"
#include "eval_common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const help =
    "usage: gemma perplexity [-m MODEL] --file TEXT [options]\n"
    "\n"
    "  -m, --model PATH     the model (default: as 'gemma run')\n"
    "  -f, --file TEXT      the text (UTF-8); its tokens are <bos> + the file's\n"
    "  --ctx N              tokens per window (default 1024, at least 2)\n"
    "  --stride S           a window starts every S tokens (default ctx/2; S = ctx: no overlap)\n"
    "  --json               print the result as JSON\n"
    "  -t, --threads N      worker threads (default: all CPUs)\n"
    "  --numerics MODE      auto | exact | llamacpp | int8 (see 'gemma run --help')\n"
    "  --kv-type TYPE       auto | f32 | f16 | bf16: KV cache storage (see 'gemma run --help')\n";

enum { ROWS_PER_STEP = 16 };

typedef struct {
    const int32_t *ids;    /* the whole text's tokens */
    size_t vocab, begin;          /* where the window starts in ids */
    double nll;
    size_t n_scored;
} ppl_acc;

/* Row i of the window predicts ids[begin + i + 1]. */
static int score_row(void *user, size_t i, const float *logits) {
    ppl_acc *acc = user;
    int32_t target = acc->ids[acc->begin + i + 1];
    acc->nll += cli_logsumexp(logits, acc->vocab) - (double)logits[target];
    acc->n_scored++;
    return CLI_OK;
}

int cmd_perplexity(int argc, char **argv) {
    const char *model_dir = NULL, *v;
    long stride = 0;
    cli_eval_flags f = {.ctx = 1024};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(help, stdout);
            return CLI_OK;
        }
        int r = cli_parse_eval_flag(argc, argv, &i, "perplexity", &f);
        if (r < 0) return CLI_USAGE;
        if (r > 0) continue;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!(model_dir = cli_value(argc, argv, &i, "perplexity"))) return CLI_USAGE;
        } else if (!strcmp(a, "--stride")) {
            if (!(v = cli_value(argc, argv, &i, "perplexity"))) return CLI_USAGE;
            if (!cli_parse_int(v, -(1L << 30), 1L << 30, &stride))
                return cli_usage_error("perplexity", "bad --stride '%s'", v);
            if (stride < 1) return cli_usage_error("perplexity", "--stride must be at least 1");
        } else {
            return cli_usage_error("perplexity", "unknown option '%s'", a);
        }
    }
    const char *file = f.file;
    long ctx = f.ctx;
    if (!file) return cli_usage_error("perplexity", "missing --file TEXT");
    if (ctx < 2) return cli_usage_error("perplexity", "--ctx must be at least 2 (got %ld)", ctx);
    if (!stride) stride = ctx / 2;
    if (stride > ctx) return cli_usage_error("perplexity", "--stride %ld is larger than --ctx %ld", stride, ctx);
    if (!(model_dir = cli_model_or_default(model_dir, "perplexity"))) return CLI_USAGE;

    size_t len;
    char *text = cli_read_text_file(file, &len);
    if (!text) return CLI_FAIL;
    int rc = CLI_FAIL;
    cli_assets a = {0};
    gemma_session *s = NULL;
    int32_t *ids = NULL;
    float *rows = NULL;
    size_t n = 0;
    gemma_error err;
    if (len == 0) {
        cli_error("%s: the text is empty", file);
        goto done;
    }
    if (cli_load_assets(model_dir, f.numerics, &a, 0) != CLI_OK) goto done;
    if (cli_tokenize_text_file(a.tok, text, len, file, &ids, &n) != CLI_OK) goto done;
    if (n < 2) {
        cli_error("%s: the text is %zu token(s) with <bos>; perplexity needs at least 2", file, n);
        goto done;
    }
    gemma_session_options so = gemma_session_default_options();
    so.n_threads = (int)f.threads;
    so.n_ctx = (int)ctx;
    so.kv_type = f.kv_type;
    if (gemma_session_create(a.model, &so, &s, &err) != GEMMA_OK) {
        cli_error("%s", err.message);
        goto done;
    }
    size_t vocab = (size_t)gemma_model_vocab_size(a.model);
    if (!(rows = malloc(ROWS_PER_STEP * vocab * sizeof *rows))) {
        cli_error("out of memory");
        goto done;
    }
    size_t windows_total = n <= (size_t)ctx ? 1 : (n - (size_t)ctx + (size_t)stride - 1) / (size_t)stride + 1;
    cli_progress bar;
    cli_progress_start(&bar, windows_total, "window");
    ppl_acc acc = {.ids = ids, .vocab = vocab};
    size_t prev_end = 0, windows = 0;
    double t0 = cli_now();
    for (size_t begin = 0; begin < n; begin += (size_t)stride) {
        size_t end = begin + (size_t)ctx < n ? begin + (size_t)ctx : n;
        size_t first_target = prev_end > begin + 1 ? prev_end : begin + 1;   /* ids[first_target..end) are scored */
        acc.begin = begin;
        gemma_session_reset(s);
        if (cli_eval_rows(s, ids + begin, end - 1 - begin, first_target - 1 - begin, rows, ROWS_PER_STEP, vocab,
                          score_row, &acc) != CLI_OK) {
            cli_progress_end(&bar);
            goto done;
        }
        prev_end = end;
        cli_progress_update(&bar, ++windows);
        if (end == n) break;
    }
    cli_progress_end(&bar);
    double seconds = cli_now() - t0, nll = acc.nll / (double)acc.n_scored, ppl = exp(nll);
    if (f.json) {
        printf("{\"task\":\"perplexity\",\"model\":");
        cli_json_string(stdout, model_dir);
        printf(",\"file\":");
        cli_json_string(stdout, file);
        printf(",\"n_tokens\":%zu,\"n_scored\":%zu,\"windows\":%zu,\"ctx\":%ld,\"stride\":%ld,\"nll_mean\":%.6f,"
               "\"perplexity\":%.6f,\"seconds\":%.2f}\n",
               n, acc.n_scored, windows, ctx, stride, nll, ppl, seconds);
    } else {
        printf("perplexity %.4f (mean NLL %.5f) over %zu scored tokens of %zu; %zu windows of %ld, stride %ld; "
               "%.1f s\n",
               ppl, nll, acc.n_scored, n, windows, ctx, stride, seconds);
    }
    rc = CLI_OK;
done:
    free(rows);
    free(ids);
    free(text);
    gemma_session_free(s);
    cli_free_assets(&a);
    return rc;
}
