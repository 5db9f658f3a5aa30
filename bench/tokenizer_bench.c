/* tokenizer_bench.c - encode speed of our tokenizer on PubMedQA, to set beside HF's.
 *
 * Why: the tokenizer sits in front of every prompt (and a server tokenizes
 * whole documents), so we measure it against HF `tokenizers` on the same
 * texts: bench/tokenizer_bench.py runs the same workload.  The workload: every
 * QUESTION, each CONTEXTS entry and the LONG_ANSWER of the 1000 items of
 * ori_pqal.json, in file order, each encoded on its own without <bos>, on one
 * thread.  Prints load time and, per run, seconds, MB/s and tokens/s, then
 * the min and median over the runs; the token count must match HF's.
 *
 *   tokenizer_bench [-t tokenizer_dir_or_json] [-d ori_pqal.json] [-r runs] [-l loads]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/json.h"
#include "core/mapfile.h"
#include "gemma.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

typedef struct {
    const char *s;
    size_t len;
} text;

int main(int argc, char **argv) {
    const char *tok_path = "models/gemma3-tokenizer", *data_path = "/work/shared/data/pubmedqa/ori_pqal.json";
    int runs = 7, loads = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "-t") == 0) tok_path = argv[i + 1];
        else if (strcmp(argv[i], "-d") == 0) data_path = argv[i + 1];
        else if (strcmp(argv[i], "-r") == 0) runs = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "-l") == 0) loads = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "usage: %s [-t tokenizer] [-d ori_pqal.json] [-r runs] [-l loads]\n", argv[0]);
            return 2;
        }
    }
    if (runs < 1 || runs > 100 || loads < 1 || loads > 100) {
        fprintf(stderr, "runs and loads must be 1..100\n");
        return 2;
    }
    gemma_error err;
    gemma_tokenizer *tok = NULL;
    double load_s[100];
    for (int i = 0; i < loads; i++) {
        gemma_tokenizer_free(tok);
        double t0 = now_s();
        if (gemma_tokenizer_load(tok_path, &tok, &err) != GEMMA_OK) {
            fprintf(stderr, "%s\n", err.message);
            return 1;
        }
        load_s[i] = now_s() - t0;
    }
    char *raw;
    size_t raw_len;
    if (gm_read_file(data_path, (size_t)1 << 30, &raw, &raw_len, &err) != GEMMA_OK) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    char jerr[128];
    gm_json_doc *doc = gm_json_parse(raw, raw_len, NULL, jerr, sizeof jerr);
    if (!doc) {
        fprintf(stderr, "%s: %s\n", data_path, jerr);
        return 1;
    }
    const gm_json *root = gm_json_root(doc);
    size_t n_texts = 0, cap = 16384, bytes = 0;
    text *texts = malloc(cap * sizeof *texts);
    for (size_t i = 0; i < gm_json_count(root); i++) {
        const gm_json *item = gm_json_at(root, i);
        const gm_json *ctx = gm_json_get(item, "CONTEXTS");
        const gm_json *parts[64];
        size_t np = 0;
        parts[np++] = gm_json_get(item, "QUESTION");
        for (size_t k = 0; k < gm_json_count(ctx) && np < 63; k++) parts[np++] = gm_json_at(ctx, k);
        parts[np++] = gm_json_get(item, "LONG_ANSWER");
        for (size_t k = 0; k < np; k++) {
            if (!gm_json_string(parts[k])) continue;
            if (n_texts == cap) texts = realloc(texts, (cap *= 2) * sizeof *texts);
            texts[n_texts++] = (text){parts[k]->u.str, parts[k]->len};
            bytes += parts[k]->len;
        }
    }
    size_t id_cap = 1 << 16;
    int32_t *ids = malloc(id_cap * sizeof *ids);
    double run_s[100];
    size_t tokens = 0;
    for (int r = 0; r < runs; r++) {
        tokens = 0;
        double t0 = now_s();
        for (size_t i = 0; i < n_texts; i++) {
            size_t n;
            if (texts[i].len + 1 > id_cap) ids = realloc(ids, (id_cap = texts[i].len + 1) * sizeof *ids);
            if (gemma_tokenize(tok, texts[i].s, texts[i].len, 0, ids, id_cap, &n, &err) != GEMMA_OK) {
                fprintf(stderr, "%s\n", err.message);
                return 1;
            }
            tokens += n;
        }
        run_s[r] = now_s() - t0;
        printf("run %d: %.4f s  %.2f MB/s  %.0f tokens/s\n", r + 1, run_s[r], bytes / run_s[r] / 1e6,
               tokens / run_s[r]);
    }
    double lmin = load_s[0], rmin = run_s[0];
    for (int i = 1; i < loads; i++) lmin = load_s[i] < lmin ? load_s[i] : lmin;
    for (int i = 1; i < runs; i++) rmin = run_s[i] < rmin ? run_s[i] : rmin;
    double lmed = median(load_s, loads), rmed = median(run_s, runs);
    printf("texts %zu  bytes %zu  tokens %zu\n", n_texts, bytes, tokens);
    printf("gemma.c load: min %.3f s  median %.3f s  (%d loads)\n", lmin, lmed, loads);
    printf("gemma.c encode: min %.4f s (%.2f MB/s, %.0f tokens/s)  "
           "median %.4f s (%.2f MB/s, %.0f tokens/s)  (%d runs)\n",
           rmin, bytes / rmin / 1e6, tokens / rmin, rmed, bytes / rmed / 1e6, tokens / rmed, runs);
    free(ids);
    free(texts);
    gm_json_free(doc);
    free(raw);
    gemma_tokenizer_free(tok);
    return 0;
}
