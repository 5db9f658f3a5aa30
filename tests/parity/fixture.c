/* fixture.c - see fixture.h. */
#include "fixture.h"
#include "core/json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = 0;
        *len = (size_t)n;
    }
    return buf;
}

int fixture_list(const char *root, char names[][128], int max) {
    char path[1200];
    snprintf(path, sizeof path, "%s/MANIFEST", root);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    int n = 0;
    char line[256];
    while (n < max && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        if (!line[0] || line[0] == '#') continue;
        snprintf(names[n++], 128, "%.127s", line);
    }
    fclose(f);
    return n;
}

float *fixture_read_f32(const char *path, size_t expect) {
    size_t len;
    char *buf = read_all(path, &len);
    if (!buf) return NULL;
    if (len != expect * sizeof(float)) {
        fprintf(stderr, "%s: %zu bytes, expected %zu\n", path, len, expect * sizeof(float));
        free(buf);
        return NULL;
    }
    return (float *)(void *)buf;   /* malloc'd: suitably aligned */
}

int fixture_load(const char *root, const char *name, fixture *f) {
    memset(f, 0, sizeof *f);
    snprintf(f->name, sizeof f->name, "%s", name);
    snprintf(f->dir, sizeof f->dir, "%s/%s", root, name);
    char path[1200];
    snprintf(path, sizeof path, "%s/fixture.json", f->dir);
    size_t len;
    char *text = read_all(path, &len);
    if (!text) return 0;
    gm_json_doc *doc = gm_json_parse(text, len, NULL, NULL, 0);
    free(text);
    if (!doc) return 0;
    const gm_json *r = gm_json_root(doc), *toks = gm_json_get(r, "tokens");
    int64_t v;
    int ok = gm_json_int(gm_json_get(r, "vocab_size"), &v);
    f->vocab = (int)v;
    f->quantized = gm_json_is(gm_json_get(r, "quantized"), GM_JSON_TRUE);
    if (gm_json_int(gm_json_get(r, "sliding_window"), &v)) f->sliding_window = (int)v;
    if (gm_json_int(gm_json_get(gm_json_get(r, "llamacpp"), "stream_prefix"), &v)) f->llamacpp_prefix = (int)v;
    f->n_tokens = (int)gm_json_count(toks);
    f->tokens = calloc((size_t)f->n_tokens + 1, sizeof *f->tokens);
    for (int i = 0; ok && f->tokens && i < f->n_tokens; i++) {
        ok = gm_json_int(gm_json_at(toks, (size_t)i), &v);
        f->tokens[i] = (int32_t)v;
    }
    gm_json_free(doc);
    if (!ok || !f->tokens || f->n_tokens == 0) return 0;
    size_t count = (size_t)f->n_tokens * (size_t)f->vocab;
    snprintf(path, sizeof path, "%s/ref_hf.f32", f->dir);
    f->ref_hf = fixture_read_f32(path, count);
    struct { const char *file; float **dst; } optional[] = {
        {"ref_mlx.f32", &f->ref_mlx},
        {"ref_llamacpp_batch.f32", &f->ref_llamacpp_batch},
        {"ref_llamacpp_stream.f32", &f->ref_llamacpp_stream},
    };
    for (size_t i = 0; i < sizeof optional / sizeof optional[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", f->dir, optional[i].file);
        FILE *probe = fopen(path, "rb");
        if (!probe) continue;
        fclose(probe);
        if (!(*optional[i].dst = fixture_read_f32(path, count))) return 0;
    }
    if (f->ref_llamacpp_stream && (f->llamacpp_prefix < 1 || f->llamacpp_prefix > f->n_tokens)) return 0;
    return f->ref_hf != NULL;
}

void fixture_free(fixture *f) {
    free(f->tokens);
    free(f->ref_hf);
    free(f->ref_mlx);
    free(f->ref_llamacpp_batch);
    free(f->ref_llamacpp_stream);
    memset(f, 0, sizeof *f);
}

logit_cmp compare_logits(const float *got, const float *ref, int n, int vocab, double clear_margin) {
    logit_cmp c = {0};
    for (size_t i = 0; i < (size_t)n * (size_t)vocab; i++) {
        double d = fabs((double)got[i] - (double)ref[i]);
        if (!(d <= c.max_abs_diff)) c.max_abs_diff = isnan(d) ? INFINITY : d;
        if (fabs(ref[i]) > c.max_abs_ref) c.max_abs_ref = fabs(ref[i]);
    }
    for (int t = 0; t < n; t++) {
        const float *r = ref + (size_t)t * vocab, *g = got + (size_t)t * vocab;
        int best = 0, gbest = 0;
        for (int j = 1; j < vocab; j++) {
            if (r[j] > r[best]) best = j;
            if (g[j] > g[gbest]) gbest = j;
        }
        double second = -INFINITY;
        for (int j = 0; j < vocab; j++)
            if (j != best && r[j] > second) second = r[j];
        if (r[best] - second > clear_margin) {
            c.top1_checked++;
            c.top1_mismatch += gbest != best;
        }
    }
    c.rel = c.max_abs_ref > 0 ? c.max_abs_diff / c.max_abs_ref : c.max_abs_diff;
    return c;
}

const gm_kernels *fixture_kernels(const char *name) {
    const char *only = getenv("GEMMA_PARITY_ISAS");
    const gm_kernels *k = gm_kernels_by_name(name);
    return k && !(only && *only && !strstr(only, name)) ? k : NULL;
}

int fixture_threads(int dflt) {
    const char *t = getenv("GEMMA_PARITY_THREADS");
    return t && atoi(t) > 0 ? atoi(t) : dflt;
}
