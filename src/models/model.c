/* model.c - gemma_model_load and the model accessors of the public API.
 * Opens the directory, parses the config, and hands binding to the
 * architecture's file (only Gemma 3 so far). */
#include "models/model.h"
#include "core/error.h"
#include "io/weights.h"
#include "quant/ggml_blocks.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *kind_name(const gm_weight *w, char *buf, size_t n) {
    switch (w->kind) {
    case GM_W_F32: return "f32";
    case GM_W_F16: return "f16";
    case GM_W_BF16: return "bf16";
    case GM_W_MLX: snprintf(buf, n, "mlx%d-g%d", w->bits, w->group_size); return buf;
    case GM_W_GGML: snprintf(buf, n, "%s", gm_ggml_type_name(w->ggml_type)); return buf;
    }
    return "?";
}

static void describe(gemma_model *m) {
    const gm_config *c = m->cfg;
    int global = 0;
    for (int l = 0; l < c->n_layers; l++) global += !c->layers[l].sliding;
    char k0[32], k1[32], k2[32];
    snprintf(m->description, sizeof m->description,
             "%s: %d layers (%d global), hidden %d, heads %d/%d x %d, ffn %d, vocab %d, window %d; "
             "embed %s, attn %s, mlp %s; %s head; %.1f MB of weights; numerics %s",
             c->model_type, c->n_layers, global, c->hidden_size, c->n_heads, c->n_kv_heads, c->head_dim,
             c->intermediate_size, c->vocab_size, c->sliding_window, kind_name(&m->embed, k0, sizeof k0),
             kind_name(&m->layers[0].q, k1, sizeof k1), kind_name(&m->layers[0].down, k2, sizeof k2),
             m->lm_head.data == m->embed.data ? "tied" : "separate", (double)m->weight_bytes / 1e6,
             gemma_numerics_name(m->numerics));
    if (c->arch == GM_ARCH_GEMMA4) {
        size_t len = strlen(m->description);
        snprintf(m->description + len, sizeof m->description - len,
                 "; global head_dim %d, per-layer inputs %d, %d KV-shared layers (text decoder only)",
                 c->max_head_dim, c->ple_dim, c->n_kv_shared);
    }
    if (m->vision) {
        const gm_vision_config *v = &m->vision->cfg;
        size_t len = strlen(m->description);
        snprintf(m->description + len, sizeof m->description - len,
                 "; vision: %dx%d px, patch %d, %d layers, hidden %d, %d tokens per image (%s)", v->image_size,
                 v->image_size, v->patch_size, v->layers, v->hidden, v->tokens_per_image,
                 m->mmproj ? "mmproj" : "in the checkpoint");
    }
}

/* ============================================================== weights */

gemma_status gm_bind_embed_and_head(gemma_model *m, const char *prefix, gemma_error *err) {
    const gm_config *c = m->cfg;
    const gm_modeldir *md = &m->md;
    int D = c->hidden_size;
    gemma_status st;
    char name[256];
    snprintf(name, sizeof name, "%sembed_tokens", prefix);
    if ((st = gm_bind_matrix(md, name, c->vocab_size, D, &m->embed, err))) return st;
    m->weight_bytes += gm_weight_bytes(&m->embed);

    /* A separate head wins when present (MLX VLM conversions store one). */
    static const char *const heads[] = {"lm_head", "language_model.lm_head", "model.lm_head"};
    const char *head = NULL;
    for (size_t i = 0; i < sizeof heads / sizeof heads[0] && !head; i++)
        if (gm_has_module(md, heads[i])) head = heads[i];
    if (head) {
        if ((st = gm_bind_matrix(md, head, c->vocab_size, D, &m->lm_head, err))) return st;
        m->weight_bytes += gm_weight_bytes(&m->lm_head);
    } else if (!c->tie_word_embeddings) {
        return gm_fail(err, GEMMA_ERR_FORMAT, "%s: tie_word_embeddings is false but there is no lm_head.weight",
                       gm_modeldir_source(md));
    } else {
        m->lm_head = m->embed;
    }

    return GEMMA_OK;
}

/* ================================================================= vision */

#define GEMMA3_IMAGE_TOKEN 262144   /* <image_soft_token> in every Gemma 3 vocabulary */

/* The mmproj*.gguf beside a GGUF model loaded from a folder ("" if none; ambiguous if several). */
static gemma_status sibling_mmproj(const gm_modeldir *md, char *out, size_t n, gemma_error *err) {
    out[0] = 0;
    DIR *d = opendir(md->dir);
    if (!d) return GEMMA_OK;
    struct dirent *de;
    int found = 0;
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (strncmp(de->d_name, "mmproj", 6) != 0 || len < 5 || strcmp(de->d_name + len - 5, ".gguf") != 0) continue;
        if (found++) break;
        snprintf(out, n, "%s/%s", md->dir, de->d_name);
    }
    closedir(d);
    if (found > 1)
        return gm_fail(err, GEMMA_ERR_ARG, "%s: several mmproj*.gguf files; name one (--mmproj)", md->dir);
    return GEMMA_OK;
}

static int is_directory(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static gemma_status attach_vision(gemma_model *m, const char *path, const gemma_model_options *opts,
                                  gemma_error *err) {
    const gm_modeldir *md = &m->md;
    const char *mmproj = opts ? opts->mmproj : NULL;
    if (opts && opts->text_only) return GEMMA_OK;
    char sibling[2048];
    gemma_status st;
    if (!mmproj && md->gguf && is_directory(path)) {
        if ((st = sibling_mmproj(md, sibling, sizeof sibling, err))) return st;
        if (sibling[0]) mmproj = sibling;
    }
    if (mmproj && !md->gguf)
        return gm_fail(err, GEMMA_ERR_ARG, "%s: an mmproj file goes with a GGUF text model; this folder is "
                       "safetensors (its vision tower, if any, is in the folder)", md->dir);
    if (!mmproj && (md->gguf || !gm_json_get(gm_json_root(md->cfg.doc), "vision_config"))) return GEMMA_OK;

    m->vision = calloc(1, sizeof *m->vision);
    if (!m->vision) return gm_fail(err, GEMMA_ERR_NOMEM, "out of memory");
    if (mmproj) {
        m->mmproj = calloc(1, sizeof *m->mmproj);
        if (!m->mmproj) return gm_fail(err, GEMMA_ERR_NOMEM, "out of memory");
        if ((st = gm_mmproj_open(m->mmproj, mmproj, err))) return st;
        if ((st = gm_vision_bind_mmproj(m->vision, m->mmproj, err))) return st;
        m->md.cfg.image_token_id = GEMMA3_IMAGE_TOKEN;
    } else if ((st = gm_vision_bind(m->vision, md, err))) {
        return st;
    }
    if (m->vision->cfg.projection_dim != m->cfg->hidden_size)
        return gm_fail(err, GEMMA_ERR_FORMAT, "%s: the vision projector gives %d values per token, the text model "
                       "takes %d (a mmproj for another model?)", m->vision->source, m->vision->cfg.projection_dim,
                       m->cfg->hidden_size);
    return GEMMA_OK;
}

int gemma_model_has_vision(const gemma_model *m) { return m && m->vision; }
int gemma_model_image_size(const gemma_model *m) { return m && m->vision ? m->vision->cfg.image_size : 0; }
int gemma_model_image_tokens(const gemma_model *m) { return m && m->vision ? m->vision->cfg.tokens_per_image : 0; }
void gemma_model_image_norm(const gemma_model *m, float mean[3], float std[3]) {
    for (int c = 0; c < 3; c++) {
        mean[c] = m && m->vision ? m->vision->cfg.mean[c] : GM_VISION_DEFAULT_MEAN;
        std[c] = m && m->vision ? m->vision->cfg.std[c] : GM_VISION_DEFAULT_STD;
    }
}

/* ================================================================== load */

gemma_status gemma_model_load(const char *path, const gemma_model_options *opts, gemma_model **out,
                              gemma_error *err) {
    gm_ok(err);
    if (!out) return gm_fail(err, GEMMA_ERR_ARG, "gemma_model_load: out is NULL");
    *out = NULL;
    gemma_model *m = calloc(1, sizeof *m);
    if (!m) return gm_fail(err, GEMMA_ERR_NOMEM, "out of memory");
    if (opts && opts->allocator) m->allocator = *opts->allocator;
    gemma_status st = gm_modeldir_open(&m->md, path, err);
    if (st) {
        free(m);
        return st;
    }
    m->cfg = &m->md.cfg;
    gemma_numerics numerics = opts ? opts->numerics : GEMMA_NUMERICS_AUTO;
    int gguf = m->md.gguf != NULL;
    if (numerics == GEMMA_NUMERICS_AUTO) numerics = gguf ? GEMMA_NUMERICS_LLAMACPP : GEMMA_NUMERICS_EXACT;
    if (numerics != GEMMA_NUMERICS_EXACT && numerics != GEMMA_NUMERICS_LLAMACPP && numerics != GEMMA_NUMERICS_INT8) {
        gemma_model_free(m);
        return gm_fail(err, GEMMA_ERR_ARG, "gemma_model_load: unknown numerics %d", (int)numerics);
    }
    if (numerics == GEMMA_NUMERICS_LLAMACPP && !gguf) {
        st = gm_fail(err, GEMMA_ERR_UNSUPPORTED, "%s: numerics llamacpp is for GGUF files (this is safetensors)",
                     m->md.dir);
        gemma_model_free(m);
        return st;
    }
    m->numerics = numerics;
    /* Gemma 4: the text decoder only (its vision and audio towers are not implemented) */
    int gemma4 = m->cfg->arch == GM_ARCH_GEMMA4;
    st = gemma4 ? gm_gemma4_bind(m, err) : gm_gemma3_bind(m, err);
    if (!st && !gemma4) st = attach_vision(m, path, opts, err);
    if (st) {
        gemma_model_free(m);
        return st;
    }
    describe(m);
    *out = m;
    return GEMMA_OK;
}

void gemma_model_free(gemma_model *m) {
    if (!m) return;
    if (m->vision) gm_vision_free(m->vision);
    free(m->vision);
    if (m->mmproj) gm_mmproj_close(m->mmproj);
    free(m->mmproj);
    gm_row_reader_close(&m->ple_rows);
    gm_modeldir_close(&m->md);
    free(m->layers);
    free(m->vectors);
    free(m->gelu_table);
    free(m);
}

int gemma_model_vocab_size(const gemma_model *m) { return m ? m->cfg->vocab_size : 0; }
int gemma_model_n_layers(const gemma_model *m) { return m ? m->cfg->n_layers : 0; }
int gemma_model_hidden_size(const gemma_model *m) { return m ? m->cfg->hidden_size : 0; }
int gemma_model_max_context(const gemma_model *m) { return m ? m->cfg->max_position_embeddings : 0; }
const char *gemma_model_arch(const gemma_model *m) { return m ? m->cfg->model_type : ""; }
const char *gemma_model_describe(const gemma_model *m) { return m ? m->description : ""; }
gemma_numerics gemma_model_numerics(const gemma_model *m) { return m ? m->numerics : GEMMA_NUMERICS_AUTO; }

static const char *const numerics_names[] = {"auto", "exact", "llamacpp", "int8"};

const char *gemma_numerics_name(gemma_numerics n) {
    return (unsigned)n < sizeof numerics_names / sizeof numerics_names[0] ? numerics_names[n] : "?";
}

int gemma_numerics_parse(const char *name) {
    for (size_t i = 0; name && i < sizeof numerics_names / sizeof numerics_names[0]; i++)
        if (strcmp(name, numerics_names[i]) == 0) return (int)i;
    return -1;
}
uint64_t gemma_model_weight_bytes(const gemma_model *m) { return m ? m->weight_bytes : 0; }
const char *gemma_model_path(const gemma_model *m) { return m ? m->md.dir : ""; }

uint64_t gemma_model_param_count(const gemma_model *m) {
    if (!m) return 0;
    const gm_config *c = m->cfg;
    uint64_t D = (uint64_t)c->hidden_size, P = (uint64_t)c->ple_dim, N = (uint64_t)c->n_layers;
    uint64_t n = (uint64_t)c->vocab_size * D + D;
    for (int l = 0; l < c->n_layers; l++) {
        const gm_layer_config *L = &c->layers[l];
        uint64_t Dh = (uint64_t)L->head_dim, F = (uint64_t)L->ffn, own = L->kv_source == l;
        uint64_t q = (uint64_t)c->n_heads * Dh, kv = (uint64_t)c->n_kv_heads * Dh;
        n += 2 * D * q + own * (2 * D * kv + Dh) + 3 * D * F + 4 * D + Dh;
        if (c->arch == GM_ARCH_GEMMA4) n += 2 * P * D + (P ? D : 0) + 1;   /* PLE gate, projection, norm; layer_scalar */
    }
    if (P) n += (uint64_t)c->ple_vocab * N * P + N * P * D + P;
    if (m->lm_head.data != m->embed.data) n += (uint64_t)c->vocab_size * D;
    return n;
}

/* A layer's matrices (unbound ones have no rows). */
enum { LAYER_MATRICES = 9 };
static void layer_matrices(const gm_layer *L, const gm_weight *w[LAYER_MATRICES]) {
    const gm_weight *all[LAYER_MATRICES] = {&L->q, &L->k, &L->v, &L->o, &L->gate, &L->up, &L->down, &L->ple_gate, &L->ple_proj};
    memcpy(w, all, sizeof all);
}

uint64_t gemma_model_token_bytes(const gemma_model *m) {
    if (!m) return 0;
    uint64_t n = gm_weight_bytes(&m->lm_head) + gm_weight_bytes(&m->ple_proj);
    if (m->embed.rows) n += gm_weight_bytes(&m->embed) / (uint64_t)m->embed.rows;
    if (m->embed_ple.rows) n += gm_weight_bytes(&m->embed_ple) / (uint64_t)m->embed_ple.rows;
    for (int l = 0; l < m->cfg->n_layers; l++) {
        const gm_weight *w[LAYER_MATRICES];
        layer_matrices(&m->layers[l], w);
        for (int i = 0; i < LAYER_MATRICES; i++) n += gm_weight_bytes(w[i]);
    }
    return n;
}

int gm_model_uses_gemm(const gemma_model *m) {
    int int8 = m->numerics == GEMMA_NUMERICS_INT8;
    if (gm_matmul_uses_gemm(&m->lm_head, int8) || gm_matmul_uses_gemm(&m->ple_proj, int8)) return 1;
    for (int l = 0; l < m->cfg->n_layers; l++) {
        const gm_weight *w[LAYER_MATRICES];
        layer_matrices(&m->layers[l], w);
        for (int i = 0; i < LAYER_MATRICES; i++)
            if (gm_matmul_uses_gemm(w[i], int8)) return 1;
    }
    return 0;
}

size_t gemma_model_stop_tokens(const gemma_model *m, int32_t *ids, size_t cap) {
    if (!m) return 0;
    size_t n = (size_t)m->cfg->n_eos;
    for (size_t i = 0; i < n && i < cap; i++) ids[i] = m->cfg->eos_token_ids[i];
    return n;
}

gemma_sampler_params gemma_model_sampler_params(const gemma_model *m) {
    gemma_sampler_params p = gemma_sampler_default_params();
    if (m && m->cfg->has_generation_config) {
        if (!m->cfg->gen_do_sample) return p;   /* greedy */
        p.temperature = (float)m->cfg->gen_temperature;
        p.top_k = m->cfg->gen_top_k;
        p.top_p = (float)m->cfg->gen_top_p;
        p.min_p = (float)m->cfg->gen_min_p;
        return p;
    }
    p.temperature = 1.0f;
    p.top_k = 64;
    p.top_p = 0.95f;
    return p;
}
