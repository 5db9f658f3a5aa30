/* eval_common.c - see eval_common.h. */
#include "eval_common.h"
#include "args.h"
#include "common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int cli_parse_eval_flag(int argc, char **argv, int *i, const char *cmd, cli_eval_flags *f) {
    const char *a = argv[*i], *v;
    if (!strcmp(a, "--json")) {
        f->json = 1;
        return 1;
    }
    int is_file = !strcmp(a, "-f") || !strcmp(a, "--file"), is_ctx = !strcmp(a, "--ctx");
    int is_threads = !strcmp(a, "-t") || !strcmp(a, "--threads"), is_numerics = !strcmp(a, "--numerics");
    int is_kv = !strcmp(a, "--kv-type");
    if (!is_file && !is_ctx && !is_threads && !is_numerics && !is_kv) return 0;
    if (!(v = cli_value(argc, argv, i, cmd))) return -1;
    if (is_file) f->file = v;
    if (is_ctx && !cli_parse_int(v, -(1L << 30), 1L << 30, &f->ctx)) return cli_usage_error(cmd, "bad --ctx '%s'", v), -1;
    if (is_threads && !cli_parse_int(v, 1, 256, &f->threads))
        return cli_usage_error(cmd, "bad --threads '%s'", v), -1;
    if (is_numerics && !cli_parse_numerics(v, cmd, &f->numerics)) return -1;
    if (is_kv && !cli_parse_kv_type(v, cmd, &f->kv_type)) return -1;
    return 1;
}

char *cli_read_text_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        cli_error("%s: cannot open", path);
        return NULL;
    }
    char *text = cli_read_stream(f, len);
    int failed = ferror(f);
    fclose(f);
    if (text && !failed) return text;
    free(text);
    cli_error("%s: cannot read%s", path, failed ? "" : " (out of memory)");
    return NULL;
}

int cli_tokenize_text_file(const gemma_tokenizer *tok, const char *text, size_t len, const char *path, int32_t **ids,
                           size_t *n) {
    gemma_error err;
    *ids = malloc((len + 2) * sizeof **ids);
    if (!*ids) return cli_error("%s: out of memory for its tokens", path);
    if (gemma_tokenize(tok, text, len, GEMMA_TOKENIZE_ADD_BOS, *ids, len + 2, n, &err) == GEMMA_OK) return CLI_OK;
    free(*ids);
    *ids = NULL;
    return cli_error("%s: %s", path, err.message);
}

int cli_check_results_path(const char *path, int resume, int force, const char *cmd) {
    struct stat st;
    if (resume && force) return cli_usage_error(cmd, "give --resume or --force, not both");
    if (stat(path, &st) != 0) return CLI_OK;
    if (S_ISDIR(st.st_mode)) return cli_usage_error(cmd, "%s is a directory", path);
    if (!resume && !force)
        return cli_usage_error(cmd, "%s exists: --resume continues it, --force starts it again", path);
    return CLI_OK;
}

/* ============================================================== progress */

void cli_progress_start(cli_progress *p, size_t total, const char *unit) {
    memset(p, 0, sizeof *p);
    p->enabled = isatty(STDERR_FILENO) && total > 0;
    p->total = total;
    p->unit = unit;
    p->t0 = cli_now();
}

void cli_progress_update(cli_progress *p, size_t done) {
    if (!p->enabled) return;
    double now = cli_now();
    if (done < p->total && now - p->last < 0.25) return;
    p->last = now;
    enum { width = 30 };
    size_t filled = p->total ? done * width / p->total : width;
    char bar[width + 1];
    for (size_t i = 0; i < width; i++) bar[i] = i < filled ? '#' : '.';
    bar[width] = 0;
    double elapsed = now - p->t0, per = done ? elapsed / (double)done : 0;
    double eta = per * (double)(p->total - done);
    fprintf(stderr, "\r[%s] %zu/%zu %s  %.2f s/%s  eta %dm%02ds ", bar, done, p->total, p->unit, per, p->unit,
            (int)(eta / 60), (int)eta % 60);
    fflush(stderr);
}

void cli_progress_end(cli_progress *p) {
    if (!p->enabled) return;
    fputc('\n', stderr);
    p->enabled = 0;
}

/* ============================================================ statistics */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void cli_sort_doubles(double *v, size_t n) {
    if (n > 1) qsort(v, n, sizeof *v, cmp_double);
}

double cli_percentile_sorted(const double *sorted, size_t n, double q) {
    if (n == 0) return NAN;
    double rank = q * (double)(n - 1);
    size_t lo = (size_t)rank;
    if (lo + 1 >= n) return sorted[n - 1];
    double frac = rank - (double)lo;
    return sorted[lo] + (sorted[lo + 1] - sorted[lo]) * frac;
}

double cli_logsumexp(const float *logits, size_t n) {
    float max = logits[0];
    for (size_t i = 1; i < n; i++)
        if (logits[i] > max) max = logits[i];
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += exp((double)logits[i] - (double)max);
    return (double)max + log(sum);
}

size_t cli_argmax(const float *v, size_t n) {
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

void cli_json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p == '\n') fputs("\\n", f);
        else if (*p == '\t') fputs("\\t", f);
        else if (*p == '\r') fputs("\\r", f);
        else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

/* ======================================================= chunked logits */

int cli_eval_rows(gemma_session *s, const int32_t *ids, size_t n, size_t first_scored, float *buf, size_t chunk,
                  size_t vocab, cli_row_fn row, void *user) {
    gemma_error err;
    if (first_scored > n) first_scored = n;
    if (first_scored > 0 && gemma_session_eval(s, ids, first_scored, GEMMA_LOGITS_NONE, NULL, &err) != GEMMA_OK)
        return cli_error("%s", err.message);
    for (size_t at = first_scored; at < n; at += chunk) {
        size_t m = n - at < chunk ? n - at : chunk;
        if (gemma_session_eval(s, ids + at, m, GEMMA_LOGITS_ALL, buf, &err) != GEMMA_OK)
            return cli_error("%s", err.message);
        for (size_t k = 0; k < m; k++)
            if (row(user, at + k, buf + k * vocab) != CLI_OK) return CLI_FAIL;
    }
    return CLI_OK;
}
