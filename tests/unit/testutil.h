/* testutil.h - helpers for tests that write model files: temp folders, a
 * safetensors writer, and a tiny random Gemma 3 model that bad-input tests
 * then corrupt one field at a time. */
#ifndef GEMMA_TESTUTIL_H
#define GEMMA_TESTUTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/json.h"
#include "core/mapfile.h"

static inline void tu_write(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) { perror(path); abort(); }
    if (n && fwrite(data, 1, n, f) != n) abort();
    fclose(f);
}

static inline void tu_write_str(const char *path, const char *s) { tu_write(path, s, strlen(s)); }

/* A JSON file parsed (up to 1 GB); aborts with the reason if it cannot be. */
static inline gm_json_doc *tu_load_json(const char *path) {
    char *text, jerr[160];
    size_t n;
    gemma_error err;
    if (gm_read_file(path, (size_t)1 << 30, &text, &n, &err) != GEMMA_OK) {
        fprintf(stderr, "%s\n", err.message);
        abort();
    }
    gm_json_doc *doc = gm_json_parse(text, n, NULL, jerr, sizeof jerr);
    free(text);
    if (!doc) {
        fprintf(stderr, "%s: %s\n", path, jerr);
        abort();
    }
    return doc;
}

/* A fresh empty folder GEMMA_TEST_TMPDIR/<name>; returns a static path. */
static inline const char *tu_dir(const char *name) {
    static char path[4][1024];
    static int next;
    char *p = path[next++ & 3];
    snprintf(p, 1024, "%s/%s", GEMMA_TEST_TMPDIR, name);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", p, p);
    if (system(cmd) != 0) abort();
    return p;
}

static inline char *tu_path(char *buf, size_t n, const char *dir, const char *file) {
    snprintf(buf, n, "%s/%s", dir, file);
    return buf;
}

/* ------------------------------------------------------- the real GGUF */
#ifdef GEMMA_MODELS_DIR

/* The Gemma 3 270M GGUF: $GEMMA_GGUF_270M, else the file scripts/setup.sh installs. */
static inline const char *tu_real_gguf(void) {
    const char *env = getenv("GEMMA_GGUF_270M");
    return env && *env ? env : GEMMA_MODELS_DIR "/gemma3-270m/gemma-3-270m-q4_k_m.gguf";
}

/* Whether to run the tests that need it: yes when it exists, and also when
 * GEMMA_REQUIRE_REAL_MODEL=1 (CI), so that a missing file fails them. */
static inline int tu_have_real_gguf(void) {
    struct stat st;
    if (stat(tu_real_gguf(), &st) == 0) return 1;
    const char *req = getenv("GEMMA_REQUIRE_REAL_MODEL");
    if (req && strcmp(req, "1") == 0) return 1;
    fprintf(stderr, "%s not found: its tests are skipped (GEMMA_REQUIRE_REAL_MODEL=1 makes that a failure)\n",
            tu_real_gguf());
    return 0;
}
#endif

/* NULL if an error message is one line that starts with "path: " and contains
 * s1 and s2 (each if not NULL); else what is wrong with it, for fail_msg. */
static inline const char *tu_message_problem(const char *msg, const char *path, const char *s1, const char *s2) {
    static char why[1400];
    size_t pl = strlen(path);
    if (strncmp(msg, path, pl) != 0 || strncmp(msg + pl, ": ", 2) != 0)
        snprintf(why, sizeof why, "does not start with '%s: '", path);
    else if (strchr(msg, '\n') || strchr(msg, '\r'))
        snprintf(why, sizeof why, "is not one line");
    else if ((s1 && !strstr(msg, s1)) || (s2 && !strstr(msg, s2)))
        snprintf(why, sizeof why, "lacks '%s'", s1 && !strstr(msg, s1) ? s1 : s2);
    else
        return NULL;
    return why;
}

/* ------------------------------------------------------ safetensors writer */

#define TU_MAX_TENSORS 256
typedef struct {
    char name[128];
    char dtype[8];
    int64_t shape[4];
    int ndim;
    const void *data;
    size_t nbytes;
} tu_tensor;

typedef struct {
    tu_tensor t[TU_MAX_TENSORS];
    int n;
} tu_st;

static inline void tu_st_add(tu_st *st, const char *name, const char *dtype, const int64_t *shape, int ndim,
                             const void *data, size_t nbytes) {
    tu_tensor *t = &st->t[st->n++];
    snprintf(t->name, sizeof t->name, "%s", name);
    snprintf(t->dtype, sizeof t->dtype, "%s", dtype);
    memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
    t->ndim = ndim;
    t->data = data;
    t->nbytes = nbytes;
}

/* The JSON header text for st (offsets in order of addition). */
static inline char *tu_st_header(const tu_st *st) {
    size_t cap = 256 + (size_t)st->n * 256, used = 0;
    char *h = malloc(cap);
    used += (size_t)snprintf(h + used, cap - used, "{\"__metadata__\":{\"format\":\"pt\"}");
    size_t off = 0;
    for (int i = 0; i < st->n; i++) {
        const tu_tensor *t = &st->t[i];
        used += (size_t)snprintf(h + used, cap - used, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", t->name, t->dtype);
        for (int d = 0; d < t->ndim; d++) used += (size_t)snprintf(h + used, cap - used, "%s%lld", d ? "," : "", (long long)t->shape[d]);
        used += (size_t)snprintf(h + used, cap - used, "],\"data_offsets\":[%zu,%zu]}", off, off + t->nbytes);
        off += t->nbytes;
    }
    snprintf(h + used, cap - used, "}");
    return h;
}

/* Write header text + every tensor's bytes. */
static inline void tu_st_write_with_header(const tu_st *st, const char *path, const char *header) {
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    uint64_t n = strlen(header);
    unsigned char len[8];
    for (int i = 0; i < 8; i++) len[i] = (unsigned char)(n >> (8 * i));
    fwrite(len, 1, 8, f);
    fwrite(header, 1, n, f);
    for (int i = 0; i < st->n; i++) fwrite(st->t[i].data, 1, st->t[i].nbytes, f);
    fclose(f);
}

static inline void tu_st_write(const tu_st *st, const char *path) {
    char *h = tu_st_header(st);
    tu_st_write_with_header(st, path, h);
    free(h);
}

/* ------------------------------------------------------------ tiny model */

/* Sizes of the tiny model: hidden 32, 2 heads x 16, 1 kv head, ffn 64, 2 layers, vocab 50. */
enum { TU_D = 32, TU_H = 2, TU_KV = 1, TU_DH = 16, TU_F = 64, TU_L = 2, TU_V = 50 };

static const char *const TU_CONFIG =
    "{\"model_type\":\"gemma3_text\",\"hidden_size\":32,\"num_attention_heads\":2,\"num_key_value_heads\":1,"
    "\"head_dim\":16,\"intermediate_size\":64,\"num_hidden_layers\":2,\"vocab_size\":50,\"sliding_window\":4,"
    "\"sliding_window_pattern\":2,\"query_pre_attn_scalar\":16,\"max_position_embeddings\":256}";

typedef struct {
    tu_st st;
    float *store;
} tu_model;

static inline float tu_rand(uint32_t *s) {
    *s = *s * 1664525u + 1013904223u;
    return ((float)(*s >> 8) / 16777216.0f - 0.5f);
}

/* Fill st with every tensor of the tiny model (HF names, f32). */
static inline void tu_model_build(tu_model *m) {
    memset(&m->st, 0, sizeof m->st);
    size_t total = (size_t)TU_V * TU_D + TU_D + (size_t)TU_L * (4 * TU_D * TU_D * 2 + 3 * TU_F * TU_D + 4 * TU_D + 2 * TU_DH);
    m->store = malloc(total * sizeof(float));
    uint32_t seed = 7;
    for (size_t i = 0; i < total; i++) m->store[i] = tu_rand(&seed);
    float *p = m->store;
#define TU_ADD(nm, r, c) do { int64_t sh[2] = {r, c}; int nd = (c) ? 2 : 1; if (!(c)) sh[0] = r; \
        size_t cnt = (size_t)(r) * ((c) ? (size_t)(c) : 1); tu_st_add(&m->st, nm, "F32", sh, nd, p, cnt * 4); p += cnt; } while (0)
    TU_ADD("model.embed_tokens.weight", TU_V, TU_D);
    TU_ADD("model.norm.weight", TU_D, 0);
    for (int l = 0; l < TU_L; l++) {
        char n[128];
#define TU_L_ADD(sub, r, c) do { snprintf(n, sizeof n, "model.layers.%d.%s", l, sub); TU_ADD(n, r, c); } while (0)
        TU_L_ADD("self_attn.q_proj.weight", TU_H * TU_DH, TU_D);
        TU_L_ADD("self_attn.k_proj.weight", TU_KV * TU_DH, TU_D);
        TU_L_ADD("self_attn.v_proj.weight", TU_KV * TU_DH, TU_D);
        TU_L_ADD("self_attn.o_proj.weight", TU_D, TU_H * TU_DH);
        TU_L_ADD("mlp.gate_proj.weight", TU_F, TU_D);
        TU_L_ADD("mlp.up_proj.weight", TU_F, TU_D);
        TU_L_ADD("mlp.down_proj.weight", TU_D, TU_F);
        TU_L_ADD("input_layernorm.weight", TU_D, 0);
        TU_L_ADD("post_attention_layernorm.weight", TU_D, 0);
        TU_L_ADD("pre_feedforward_layernorm.weight", TU_D, 0);
        TU_L_ADD("post_feedforward_layernorm.weight", TU_D, 0);
        TU_L_ADD("self_attn.q_norm.weight", TU_DH, 0);
        TU_L_ADD("self_attn.k_norm.weight", TU_DH, 0);
#undef TU_L_ADD
    }
#undef TU_ADD
}

static inline int tu_model_index(const tu_model *m, const char *name) {
    for (int i = 0; i < m->st.n; i++)
        if (strcmp(m->st.t[i].name, name) == 0) return i;
    abort();   /* tests only ask for tensors they created */
}

static inline tu_tensor *tu_model_find(tu_model *m, const char *name) { return &m->st.t[tu_model_index(m, name)]; }

static inline void tu_model_remove(tu_model *m, const char *name) {
    for (int i = 0; i < m->st.n; i++)
        if (strcmp(m->st.t[i].name, name) == 0) {
            memmove(&m->st.t[i], &m->st.t[i + 1], (size_t)(m->st.n - i - 1) * sizeof m->st.t[0]);
            m->st.n--;
            return;
        }
}

/* Write config (default TU_CONFIG) and model.safetensors into dir. */
static inline void tu_model_write(const tu_model *m, const char *dir, const char *config) {
    char p[1200];
    tu_write_str(tu_path(p, sizeof p, dir, "config.json"), config ? config : TU_CONFIG);
    tu_st_write(&m->st, tu_path(p, sizeof p, dir, "model.safetensors"));
}

static inline void tu_model_free(tu_model *m) { free(m->store); }

#endif
