/* gemma4.c - the Gemma 4 text decoder (E2B, E4B).
 *
 * One forward pass, top to bottom, as transformers' Gemma4TextModel and
 * mlx-lm's gemma4_text compute it: embeddings times sqrt(d); per-layer
 * inputs (a row of the big per-layer table, read with pread so that only this
 * step's rows ever reach memory, plus a normed projection of the embeddings, mixed by 1/sqrt(2)); per
 * layer x*w RMSNorm -> attention with q/k norms, a weightless v norm, scale
 * 1, split-half RoPE (proportional on global layers: only the first pairs
 * rotate) -> post-norm -> residual; MLP likewise; the per-layer-input gate
 * as a third residual branch; then the whole stream times layer_scalar.
 * KV-shared layers compute no K/V: they attend over their donor's.  Final
 * norm, tied head, soft-cap.  All arithmetic in f32.
 *
 * How layers differ (head width, rotated pairs, MLP width, KV donor) is data
 * in gm_layer_config, so this file has no per-variant branches.
 *
 * Spec: shared/docs/spec-gemma4.md, section 2. */
#include "core/error.h"
#include "io/weights.h"
#include "models/ops.h"
#include "runtime/session.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ================================================================ loading */

static gemma_status bind_matrices(gemma_model *m, const char *base, gm_weight **w, const char *const *sub,
                                  const int (*shape)[2], size_t n, gemma_error *err) {
    char name[320];
    for (size_t i = 0; i < n; i++) {
        if (!w[i]) continue;
        snprintf(name, sizeof name, "%s%s", base, sub[i]);
        gemma_status st = gm_bind_matrix(&m->md, name, shape[i][0], shape[i][1], w[i], err);
        if (st) return st;
        m->weight_bytes += gm_weight_bytes(w[i]);
    }
    return GEMMA_OK;
}

static gemma_status bind_vectors(gemma_model *m, const char *base, float ***dst, const char *const *sub,
                                 const int *len, size_t n, float **vec, gemma_error *err) {
    char name[320];
    for (size_t i = 0; i < n; i++) {
        if (!dst[i]) continue;
        snprintf(name, sizeof name, "%s%s", base, sub[i]);
        *dst[i] = *vec;
        gemma_status st = gm_bind_vector(&m->md, name, len[i], 0.0f, *vec, err);
        if (st) return st;
        *vec += len[i];
    }
    return GEMMA_OK;
}

static gemma_status bind_layer(gemma_model *m, const char *prefix, int l, gm_layer *L, float **vec,
                               gemma_error *err) {
    const gm_config *c = m->cfg;
    const gm_layer_config *lc = &c->layers[l];
    int D = c->hidden_size, Dh = lc->head_dim, F = lc->ffn, P = c->ple_dim;
    int qdim = c->n_heads * Dh, kvdim = c->n_kv_heads * Dh, own = lc->kv_source == l;
    char base[256];
    snprintf(base, sizeof base, "%slayers.%d.", prefix, l);

    /* KV-shared layers may still carry k/v projections (Google's checkpoints): ignored */
    gm_weight *mats[] = {&L->q,    own ? &L->k : NULL, own ? &L->v : NULL, &L->o,
                         &L->gate, &L->up,             &L->down,           P ? &L->ple_gate : NULL,
                         P ? &L->ple_proj : NULL};
    static const char *const msub[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                       "self_attn.o_proj", "mlp.gate_proj",    "mlp.up_proj",
                                       "mlp.down_proj",    "per_layer_input_gate", "per_layer_projection"};
    const int shape[][2] = {{qdim, D}, {kvdim, D}, {kvdim, D}, {D, qdim}, {F, D}, {F, D}, {D, F}, {P, D}, {D, P}};
    gemma_status st = bind_matrices(m, base, mats, msub, shape, sizeof mats / sizeof mats[0], err);
    if (st) return st;

    float **norms[] = {&L->input_norm, &L->post_attn_norm, &L->pre_ff_norm, &L->post_ff_norm,
                       P ? &L->post_ple_norm : NULL, &L->q_norm, own ? &L->k_norm : NULL, &L->scalar};
    static const char *const nsub[] = {"input_layernorm.weight",          "post_attention_layernorm.weight",
                                       "pre_feedforward_layernorm.weight", "post_feedforward_layernorm.weight",
                                       "post_per_layer_input_norm.weight", "self_attn.q_norm.weight",
                                       "self_attn.k_norm.weight",          "layer_scalar"};
    const int len[] = {D, D, D, D, D, Dh, Dh, 1};
    if ((st = bind_vectors(m, base, norms, nsub, len, sizeof norms / sizeof norms[0], vec, err))) return st;

    /* inverse frequencies as transformers builds them in f32; the pairs past
     * rope_pairs (proportional RoPE) have angle 0 and are left as they are */
    L->sliding = lc->sliding;
    L->rope_inv_freq = *vec;
    for (int i = 0; i < lc->rope_pairs; i++) {
        float expo = (float)(2 * i) / (float)Dh;
        L->rope_inv_freq[i] = 1.0f / powf((float)lc->rope_theta, expo) / (float)lc->rope_factor;
    }
    *vec += Dh / 2;
    return GEMMA_OK;
}

gemma_status gm_gemma4_bind(gemma_model *m, gemma_error *err) {
    const gm_config *c = m->cfg;
    const gm_modeldir *md = &m->md;
    if (m->numerics == GEMMA_NUMERICS_LLAMACPP)
        return gm_fail(err, GEMMA_ERR_UNSUPPORTED, "%s: Gemma 4 runs with numerics exact or int8 only", md->dir);
    const char *prefix;
    gemma_status st = gm_find_text_prefix(md, &prefix, err);
    if (st) return st;
    int D = c->hidden_size, N = c->n_layers, P = c->ple_dim;
    if (P && c->ple_vocab < c->vocab_size)
        return gm_fail(err, GEMMA_ERR_UNSUPPORTED, "%s: vocab_size_per_layer_input %d < vocab_size %d is not supported",
                       c->path, c->ple_vocab, c->vocab_size);
    if ((st = gm_bind_embed_and_head(m, prefix, err))) return st;

    char name[256];
    if (P) {
        snprintf(name, sizeof name, "%sembed_tokens_per_layer", prefix);
        if ((st = gm_bind_matrix(md, name, c->ple_vocab, N * P, &m->embed_ple, err))) return st;
        snprintf(name, sizeof name, "%sper_layer_model_projection", prefix);
        if ((st = gm_bind_matrix(md, name, N * P, D, &m->ple_proj, err))) return st;
        m->weight_bytes += gm_weight_bytes(&m->embed_ple) + gm_weight_bytes(&m->ple_proj);
        gm_row_reader_open(&m->ple_rows, md, &m->embed_ple);
    }

    size_t per_layer = 5 * (size_t)D + 2 * (size_t)c->max_head_dim + (size_t)c->max_head_dim / 2 + 1;
    m->vectors = calloc(per_layer * (size_t)N + (size_t)D + (size_t)P, sizeof(float));
    m->layers = calloc((size_t)N, sizeof *m->layers);
    if (!m->vectors || !m->layers) return gm_fail(err, GEMMA_ERR_NOMEM, "%s: out of memory", md->dir);
    float *vec = m->vectors;
    for (int l = 0; l < N; l++)
        if ((st = bind_layer(m, prefix, l, &m->layers[l], &vec, err))) return st;
    for (int l = 0; l < N; l++) m->layers[c->layers[l].kv_source].donor |= c->layers[l].kv_source != l;
    snprintf(name, sizeof name, "%snorm.weight", prefix);
    m->final_norm = vec;
    if ((st = gm_bind_vector(md, name, D, 0.0f, vec, err))) return st;
    vec += D;
    if (P) {
        snprintf(name, sizeof name, "%sper_layer_projection_norm.weight", prefix);
        m->ple_norm = vec;
        if ((st = gm_bind_vector(md, name, P, 0.0f, vec, err))) return st;
    }

    /* f32 runs of the reference use sqrt(d) rounded to f32, not to bf16 */
    m->embed_scale = (float)sqrt((double)D);
    int widest = D > c->max_ffn ? D : c->max_ffn;
    if (c->n_heads * c->max_head_dim > widest) widest = c->n_heads * c->max_head_dim;
    if (N * P > widest) widest = N * P;
    m->max_cols = widest;
    return GEMMA_OK;
}

/* ============================================================ primitives */

/* y = x * (mean(x^2) + eps)^-1/2 * w, or without w (the v norm) when w is NULL. */
static void rmsnorm(float *y, const float *x, const float *w, int n, float eps) {
    double ss = 0.0;
    for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float r = 1.0f / sqrtf((float)(ss / n) + eps);
    if (!w) {
        for (int i = 0; i < n; i++) y[i] = x[i] * r;
        return;
    }
    for (int i = 0; i < n; i++) y[i] = (x[i] * r) * w[i];
}

/* ============================================================= attention */

typedef struct {
    gemma_session *s;
    int layer, src, n, pos0, kv_dim;   /* src: the layer whose cache holds the past keys (the donor if shared) */
    const uint8_t *kn, *vn;    /* this step's keys/values of src, rows of the cache's element type */
} attention_task;

/* Key/value row of absolute position j: this step's buffers for j >= pos0, else src's cache. */
static const void *key_at(const void *arg, int j) {
    const attention_task *t = arg;
    if (j < t->pos0) return gm_kv_key(&t->s->kv, t->src, j);
    return t->kn + (size_t)(j - t->pos0) * (size_t)t->kv_dim * (size_t)t->s->kv.elem;
}
static const void *value_at(const void *arg, int j) {
    const attention_task *t = arg;
    if (j < t->pos0) return gm_kv_value(&t->s->kv, t->src, j);
    return t->vn + (size_t)(j - t->pos0) * (size_t)t->kv_dim * (size_t)t->s->kv.elem;
}

/* Causal; sliding layers see the last sliding_window positions including their own. */
static void attention_rows(void *arg, int thread, int n_threads) {
    const attention_task *t = arg;
    gemma_session *s = t->s;
    const gm_config *c = s->model->cfg;
    const gm_kernels *k = s->k;
    const gm_layer_config *lc = &c->layers[t->layer];
    int H = c->n_heads, Dh = lc->head_dim, group = H / c->n_kv_heads;
    float *p = s->scores + (size_t)thread * (size_t)s->n_ctx;
    int begin, end;
    gm_split_range(t->n * H, 1, thread, n_threads, &begin, &end);

    for (int item = begin; item < end; item++) {
        int i = item / H, h = item % H, kvh = h / group, hi = t->pos0 + i;
        int lo = lc->sliding ? hi - c->sliding_window + 1 : 0;
        if (lo < 0) lo = 0;
        const float *q = s->q + (size_t)i * H * Dh + (size_t)h * Dh;
        float *out = s->att + (size_t)i * H * Dh + (size_t)h * Dh;
        gm_attend_head(k, s->kv.dtype, q, Dh, 1.0f, lo, hi, key_at, value_at, t, (size_t)kvh * Dh, p,
                       out);   /* scale 1 */
    }
}

/* Append a step's keys/values (rows of the cache's type) to layer l's cache,
 * after every reader used the old entries. */
static void commit_kv(gemma_session *s, int layer, const uint8_t *kn, const uint8_t *vn, int pos0, int n) {
    const gm_kv_layer *L = &s->kv.layers[layer];
    size_t row = (size_t)L->kv_dim * (size_t)s->kv.elem;
    int first = pos0 + n - L->cap > pos0 ? pos0 + n - L->cap : pos0;
    for (int j = first; j < pos0 + n; j++) {
        memcpy(gm_kv_key(&s->kv, layer, j), kn + (size_t)(j - pos0) * row, row);
        memcpy(gm_kv_value(&s->kv, layer, j), vn + (size_t)(j - pos0) * row, row);
    }
}

/* This step's key and value rows of a layer type as the cache stores them:
 * the f32 buffers, or with a half cache their rounded copies (s->kh / s->vh,
 * the same layout), which the step's own attention reads too. */
static const uint8_t *step_rows(const gemma_session *s, const float *f32, const uint16_t *half, size_t off) {
    return s->kv.elem == 2 ? (const uint8_t *)(half + off) : (const uint8_t *)(f32 + off);
}

/* ===================================================== per-layer inputs */

/* s->ple[i] = (norm(W_plp x0 / sqrt(d)) + E_pl[token] * sqrt(P)) / sqrt(2), [n_layers][P] per token. */
static void per_layer_inputs(gemma_session *s, const int32_t *tokens, int n) {
    const gemma_model *m = s->model;
    const gm_config *c = m->cfg;
    int D = c->hidden_size, P = c->ple_dim, NP = c->n_layers * P;
    float eps = (float)c->rms_norm_eps;
    float proj_scale = (float)(1.0 / sqrt((double)D)), row_scale = (float)sqrt((double)P);
    float mix = (float)(1.0 / sqrt(2.0));
    float *row = s->ple + (size_t)s->n_batch * NP;   /* one table row, widened */
    gm_matmul(s->pool, s->k, &m->ple_proj, s->x, n, s->ple, &s->mm);
    for (int i = 0; i < n; i++) {
        float *pl = s->ple + (size_t)i * NP;
        gm_row_reader_row(&m->ple_rows, s->k, &m->embed_ple, tokens[i], (uint8_t *)s->ple_raw, row,
                          s->mm.per_thread[0]);
        for (int l = 0; l < c->n_layers; l++) {
            float *v = pl + (size_t)l * P;
            for (int e = 0; e < P; e++) v[e] *= proj_scale;
            rmsnorm(v, v, m->ple_norm, P, eps);
            for (int e = 0; e < P; e++) v[e] = (v[e] + row[(size_t)l * P + e] * row_scale) * mix;
        }
    }
}

/* ========================================================== forward pass */

void gm_gemma4_forward(gemma_session *s, const int32_t *tokens, int n, gemma_logits_mode mode, float *logits) {
    const gemma_model *m = s->model;
    const gm_config *c = m->cfg;
    const gm_kernels *k = s->k;
    int D = c->hidden_size, H = c->n_heads, KV = c->n_kv_heads, P = c->ple_dim, NP = c->n_layers * P;
    int pos0 = s->pos;
    float eps = (float)c->rms_norm_eps;
    size_t type_stride = (size_t)s->n_batch * (size_t)c->max_kv_dim;

    for (int i = 0; i < n; i++) {
        float *x = s->x + (size_t)i * D;
        gm_weight_row(k, &m->embed, tokens[i], x, s->mm.per_thread[0]);
        for (int d = 0; d < D; d++) x[d] *= m->embed_scale;
    }
    if (P) per_layer_inputs(s, tokens, n);

    for (int l = 0; l < c->n_layers; l++) {
        const gm_layer *L = &m->layers[l];
        const gm_layer_config *lc = &c->layers[l];
        int Dh = lc->head_dim, qdim = H * Dh, kv_dim = KV * Dh, F = lc->ffn, own = lc->kv_source == l;
        /* the step keys of this layer type: written by unshared layers, read by shared ones */
        float *kn = s->kn + (size_t)lc->sliding * type_stride, *vn = s->vn + (size_t)lc->sliding * type_stride;

        /* ---- attention block */
        for (int i = 0; i < n; i++) rmsnorm(s->xb + (size_t)i * D, s->x + (size_t)i * D, L->input_norm, D, eps);
        gm_matmul_many(s->pool, k, (const gm_weight *const[]){&L->q, &L->k, &L->v}, own ? 3 : 1, s->xb, n,
                       (float *const[]){s->q, kn, vn}, &s->mm);
        for (int i = 0; i < n; i++) {
            float cs[2 * GM_ROPE_MAX_PAIRS];
            gm_rope_angles(lc->rope_pairs, L->rope_inv_freq, pos0 + i, cs);
            for (int h = 0; h < H; h++) {
                float *q = s->q + (size_t)i * qdim + (size_t)h * Dh;
                rmsnorm(q, q, L->q_norm, Dh, eps);
                gm_rope_apply(q, Dh, lc->rope_pairs, cs);
            }
            for (int h = 0; own && h < KV; h++) {
                float *kh = kn + (size_t)i * kv_dim + (size_t)h * Dh, *vh = vn + (size_t)i * kv_dim + (size_t)h * Dh;
                rmsnorm(kh, kh, L->k_norm, Dh, eps);
                gm_rope_apply(kh, Dh, lc->rope_pairs, cs);
                rmsnorm(vh, vh, NULL, Dh, eps);
            }
        }
        size_t off = (size_t)lc->sliding * type_stride;
        const uint8_t *krows = step_rows(s, s->kn, s->kh, off), *vrows = step_rows(s, s->vn, s->vh, off);
        if (own && s->kv.elem == 2) {
            gm_kv_store(s->kv.dtype, s->kh + off, kn, (size_t)n * kv_dim);
            gm_kv_store(s->kv.dtype, s->vh + off, vn, (size_t)n * kv_dim);
        }
        attention_task at = {s, l, lc->kv_source, n, pos0, kv_dim, krows, vrows};
        gm_pool_run(s->pool, attention_rows, &at);
        /* a donor's readers come later in this step and still need its old ring entries */
        if (own && !L->donor) commit_kv(s, l, krows, vrows, pos0, n);
        gm_matmul(s->pool, k, &L->o, s->att, n, s->xb, &s->mm);
        for (int i = 0; i < n; i++) {
            float *x = s->x + (size_t)i * D, *o = s->xb + (size_t)i * D;
            rmsnorm(o, o, L->post_attn_norm, D, eps);
            for (int d = 0; d < D; d++) x[d] += o[d];
        }

        /* ---- MLP block */
        for (int i = 0; i < n; i++) rmsnorm(s->xb + (size_t)i * D, s->x + (size_t)i * D, L->pre_ff_norm, D, eps);
        gm_matmul_many(s->pool, k, (const gm_weight *const[]){&L->gate, &L->up}, 2, s->xb, n,
                       (float *const[]){s->gate, s->up}, &s->mm);
        gm_geglu(k, s->gate, s->up, (size_t)n * F);
        gm_matmul(s->pool, k, &L->down, s->gate, n, s->xb, &s->mm);
        for (int i = 0; i < n; i++) {
            float *x = s->x + (size_t)i * D, *o = s->xb + (size_t)i * D;
            rmsnorm(o, o, L->post_ff_norm, D, eps);
            for (int d = 0; d < D; d++) x[d] += o[d];
        }

        /* ---- per-layer input: a gated third residual branch */
        if (P) {
            gm_matmul(s->pool, k, &L->ple_gate, s->x, n, s->ple_gate, &s->mm);
            for (int i = 0; i < n; i++) {
                float *g = s->ple_gate + (size_t)i * P;
                const float *pl = s->ple + (size_t)i * NP + (size_t)l * P;
                for (int e = 0; e < P; e++) g[e] = gm_gelu_tanh(g[e]) * pl[e];
            }
            gm_matmul(s->pool, k, &L->ple_proj, s->ple_gate, n, s->xb, &s->mm);
            for (int i = 0; i < n; i++) {
                float *x = s->x + (size_t)i * D, *o = s->xb + (size_t)i * D;
                rmsnorm(o, o, L->post_ple_norm, D, eps);
                for (int d = 0; d < D; d++) x[d] += o[d];
            }
        }
        for (size_t e = 0; e < (size_t)n * D; e++) s->x[e] *= L->scalar[0];
    }
    /* donors last: each type's step buffer still holds its donor's keys */
    for (int l = 0; l < c->n_layers; l++)
        if (m->layers[l].donor) {
            size_t off = (size_t)c->layers[l].sliding * type_stride;
            commit_kv(s, l, step_rows(s, s->kn, s->kh, off), step_rows(s, s->vn, s->vh, off), pos0, n);
        }
    s->pos += n;

    if (mode == GEMMA_LOGITS_NONE) return;
    int first = mode == GEMMA_LOGITS_ALL ? 0 : n - 1, count = n - first;
    for (int i = first; i < n; i++)
        rmsnorm(s->xb + (size_t)(i - first) * D, s->x + (size_t)i * D, m->final_norm, D, eps);
    gm_matmul(s->pool, k, &m->lm_head, s->xb, count, logits, &s->mm);
    if (c->final_softcap > 0)
        for (size_t e = 0; e < (size_t)count * c->vocab_size; e++) {
            float cap = (float)c->final_softcap;
            logits[e] = cap * tanhf(logits[e] / cap);
        }
}
