/* gemma3.c - the Gemma 3 text decoder (Gemma 3 270M-27B, MedGemma's language half).
 *
 * One forward pass, top to bottom, as in the reference (transformers'
 * Gemma3TextModel, JAX gemma): embeddings scaled by bf16(sqrt(d)); per layer
 * (1+w) RMSNorm -> attention with q/k norms, split-half RoPE (local base on
 * sliding layers, global base with linear scaling on global layers), GQA and
 * a sliding window that includes the current token -> post-norm -> residual;
 * then (1+w) RMSNorm -> GeGLU(tanh) MLP -> post-norm -> residual; final norm;
 * tied or separate LM head; optional final soft-cap.  All arithmetic in f32,
 * exactly (GEMMA_NUMERICS_EXACT) or rounded as llama.cpp rounds it
 * (GEMMA_NUMERICS_LLAMACPP, for GGUF files: see "llama.cpp's arithmetic").
 *
 * Spec: shared/docs/spec-gemma3-medgemma.md, section 2. */
#include "core/error.h"
#include "io/weights.h"
#include "models/ops.h"
#include "runtime/session.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static gemma_status build_gelu_table(gemma_model *m, gemma_error *err);

/* ================================================================ loading */

static gemma_status bind_layer(gemma_model *m, const char *prefix, int l, gm_layer *L, float **vec,
                               gemma_error *err) {
    const gm_config *c = m->cfg;
    const gm_modeldir *md = &m->md;
    int D = c->hidden_size, Dh = c->head_dim, F = c->intermediate_size;
    int qdim = c->n_heads * Dh, kvdim = c->n_kv_heads * Dh;
    char base[256], name[320];
    snprintf(base, sizeof base, "%slayers.%d.", prefix, l);
    gemma_status st;

    struct { gm_weight *w; const char *sub; int rows, cols; } mats[] = {
        {&L->q, "self_attn.q_proj", qdim, D},   {&L->k, "self_attn.k_proj", kvdim, D},
        {&L->v, "self_attn.v_proj", kvdim, D},  {&L->o, "self_attn.o_proj", D, qdim},
        {&L->gate, "mlp.gate_proj", F, D},      {&L->up, "mlp.up_proj", F, D},
        {&L->down, "mlp.down_proj", D, F},
    };
    for (size_t i = 0; i < sizeof mats / sizeof mats[0]; i++) {
        snprintf(name, sizeof name, "%s%s", base, mats[i].sub);
        if ((st = gm_bind_matrix(md, name, mats[i].rows, mats[i].cols, mats[i].w, err))) return st;
        mats[i].w->llamacpp = m->numerics == GEMMA_NUMERICS_LLAMACPP;
        m->f16_inputs |= gm_matmul_lanes_ok(mats[i].w) && mats[i].w->kind != GM_W_F32;
        m->weight_bytes += gm_weight_bytes(mats[i].w);
    }

    struct { float **dst; const char *sub; int n; } norms[] = {
        {&L->input_norm, "input_layernorm.weight", D},
        {&L->post_attn_norm, "post_attention_layernorm.weight", D},
        {&L->pre_ff_norm, "pre_feedforward_layernorm.weight", D},
        {&L->post_ff_norm, "post_feedforward_layernorm.weight", D},
        {&L->q_norm, "self_attn.q_norm.weight", Dh},
        {&L->k_norm, "self_attn.k_norm.weight", Dh},
    };
    for (size_t i = 0; i < sizeof norms / sizeof norms[0]; i++) {
        snprintf(name, sizeof name, "%s%s", base, norms[i].sub);
        *norms[i].dst = *vec;
        if ((st = gm_bind_vector(md, name, norms[i].n, c->norm_shift, *vec, err))) return st;
        *vec += norms[i].n;
    }

    /* RoPE inverse frequencies exactly as the reference builds them in f32:
     * 1 / base^(2i/d), then divided by the linear factor on scaled layers. */
    const gm_layer_config *lc = &c->layers[l];
    L->sliding = lc->sliding;
    L->rope_inv_freq = *vec;
    for (int i = 0; i < Dh / 2; i++) {
        float expo = (float)(2 * i) / (float)Dh;
        float inv = 1.0f / powf((float)lc->rope_theta, expo);
        L->rope_inv_freq[i] = inv / (float)lc->rope_factor;
    }
    *vec += Dh / 2;
    return GEMMA_OK;
}

gemma_status gm_gemma3_bind(gemma_model *m, gemma_error *err) {
    const gm_config *c = m->cfg;
    const gm_modeldir *md = &m->md;
    const char *prefix;
    gemma_status st = gm_find_text_prefix(md, &prefix, err);
    if (st) return st;
    int D = c->hidden_size, Dh = c->head_dim;
    if (m->numerics == GEMMA_NUMERICS_LLAMACPP && Dh % 64 != 0)
        return gm_fail(err, GEMMA_ERR_UNSUPPORTED, "%s: numerics llamacpp needs head_dim a multiple of 64 (it is %d)",
                       gm_modeldir_source(md), Dh);

    if ((st = gm_bind_embed_and_head(m, prefix, err))) return st;

    size_t per_layer = 4 * (size_t)D + 2 * (size_t)Dh + (size_t)Dh / 2;
    m->vectors = calloc(per_layer * (size_t)c->n_layers + (size_t)D, sizeof(float));
    m->layers = calloc((size_t)c->n_layers, sizeof *m->layers);
    if (!m->vectors || !m->layers) return gm_fail(err, GEMMA_ERR_NOMEM, "%s: out of memory", md->dir);
    float *vec = m->vectors;
    for (int l = 0; l < c->n_layers; l++)
        if ((st = bind_layer(m, prefix, l, &m->layers[l], &vec, err))) return st;
    char name[256];
    snprintf(name, sizeof name, "%snorm.weight", prefix);
    m->final_norm = vec;
    if ((st = gm_bind_vector(md, name, D, c->norm_shift, vec, err))) return st;

    m->embed_scale = gm_bf16_round(sqrtf((float)D));
    if (m->numerics == GEMMA_NUMERICS_LLAMACPP) {
        m->embed_scale = sqrtf((float)D);
        m->embed.llamacpp = m->lm_head.llamacpp = 1;
        m->f16_inputs |= gm_matmul_lanes_ok(&m->lm_head) && m->lm_head.kind != GM_W_F32;
        if ((st = build_gelu_table(m, err))) return st;
    }
    int widest = D > c->intermediate_size ? D : c->intermediate_size;
    if (c->n_heads * Dh > widest) widest = c->n_heads * Dh;
    m->max_cols = widest;
    return GEMMA_OK;
}

/* ============================================================ primitives */

/* y = x / rms(x) * w   (w already holds 1 + weight).  llama.cpp sums the
 * f32 squares in double; exact math squares in double. */
static void rmsnorm(float *y, const float *x, const float *w, int n, float eps, int ggml) {
    double ss = 0.0;
    if (ggml)
        for (int i = 0; i < n; i++) ss += (double)(x[i] * x[i]);
    else
        for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float r = 1.0f / sqrtf((float)(ss / n) + eps);
    for (int i = 0; i < n; i++) y[i] = (x[i] * r) * w[i];
}

static void softcap(float *x, int n, float cap) {
    for (int i = 0; i < n; i++) x[i] = cap * tanhf(x[i] / cap);
}

/* ================================================ llama.cpp's arithmetic
 *
 * GEMMA_NUMERICS_LLAMACPP reproduces ggml-cpu (llama-cpp-python 0.3.36,
 * ggml 0.25.3, x86 AVX-512 build) operation for operation, measured to give
 * its logits bit for bit on the real Gemma 3 270M Q4_K_M
 * (tools/reference/llamacpp-numerics/README.md lists what each step is worth).
 * Besides the 8-bit matmul inputs (quant/ggml_q8.h): the embedding scale
 * sqrtf(D) unrounded; GELU through an f16 table; K, V, the scaled query and
 * the attention weights rounded to f16 (its f16 cache); its RoPE angles;
 * RMSNorm sums in double; its attention summation orders and exp. */

static inline float f16_round(float v) { return gm_f16_to_f32(gm_f32_to_f16(v)); }

/* ggml's GELU table: f16 input -> f16(gelu(x)), gelu as GCC compiles
 * ggml_gelu_f32 (1 + A x^2 contracted to fma(A x, x, 1)). */
static gemma_status build_gelu_table(gemma_model *m, gemma_error *err) {
    m->gelu_table = malloc(65536 * sizeof(float));
    if (!m->gelu_table) return gm_fail(err, GEMMA_ERR_NOMEM, "%s: out of memory", m->md.dir);
    for (int h = 0; h < 65536; h++) {
        float f = gm_f16_to_f32((uint16_t)h);
        float g = 0.5f * f * (1.0f + tanhf(0.79788456080286535587989211986876f * f * fmaf(0.044715f * f, f, 1.0f)));
        m->gelu_table[h] = f16_round(g);
    }
    return GEMMA_OK;
}

/* ggml_vec_geglu: saturated outside [-10, 10], else the table. */
static inline float geglu_ggml(const float *table, float g, float up) {
    if (g <= -10.0f) return 0.0f;
    if (g >= 10.0f) return g * up;
    return table[gm_f32_to_f16(g)] * up;
}

/* ggml's RoPE: theta_i = pos * theta_scale^i by repeated f32 multiplication,
 * cosf/sinf of freq_scale * theta_i, the products fused as GCC contracts them. */
static void rope_ggml(float *x, int dim, float base, float freq_scale, int pos) {
    int half = dim / 2;
    float theta_scale = powf(base, -2.0f / (float)dim), theta = (float)pos;
    for (int i = 0; i < half; i++) {
        float th = freq_scale * theta;
        float c = cosf(th), s = sinf(th);
        float a = x[i], b = x[i + half];
        x[i] = fmaf(a, c, -(b * s));
        x[i + half] = fmaf(a, s, b * c);
        theta *= theta_scale;
    }
}

/* ggml_v_expf, one lane. */
static float expf_ggml(float x) {
    float z = fmaf(x, 0x1.715476p+0f, 0x1.8p23f);
    float n = z - 0x1.8p23f;
    float b = fmaf(-n, 0x1.7f7d1cp-20f, fmaf(-n, 0x1.62e4p-1f, x));
    if (!(fabsf(n) <= 192.0f)) return n <= 0 ? 0.0f : INFINITY;
    float u = b * b;
    float j = fmaf(fmaf(fmaf(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u, fmaf(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)), u,
                   fmaf(0x1.ffffecp-1f, b, 1.0f));
    return ldexpf(j, (int)n);
}

/* ============================================================= attention */

typedef struct {
    gemma_session *s;
    int layer, n, pos0, kv_dim;
} attention_task;

/* Key/value row of absolute position j, of the cache's element type: this
 * step's buffers for j >= pos0, else the cache.  With a half cache the step's
 * rows are the half ones (s->kh / s->vh): a token attends to the same numbers
 * whether its neighbours came in its batch or before it. */
static inline const uint8_t *step_row(const gemma_session *s, const float *f32, const uint16_t *half, int i,
                                      int kv_dim) {
    size_t at = (size_t)i * (size_t)kv_dim;
    return s->kv.elem == 2 ? (const uint8_t *)(half + at) : (const uint8_t *)(f32 + at);
}
static inline const uint8_t *key_at(const attention_task *t, int j, int kv_dim) {
    const gemma_session *s = t->s;
    if (j < t->pos0) return gm_kv_key(&s->kv, t->layer, j);
    return step_row(s, s->kn, s->kh, j - t->pos0, kv_dim);
}
static inline const uint8_t *value_at(const attention_task *t, int j, int kv_dim) {
    const gemma_session *s = t->s;
    if (j < t->pos0) return gm_kv_value(&s->kv, t->layer, j);
    return step_row(s, s->vn, s->vh, j - t->pos0, kv_dim);
}

static const void *key_of(const void *t, int j) {
    return key_at(t, j, ((const attention_task *)t)->kv_dim);
}
static const void *value_of(const void *t, int j) {
    return value_at(t, j, ((const attention_task *)t)->kv_dim);
}

/* A K or V row (Dh values at p) as f32 for the lane kernels: itself, or
 * widened into the thread's scratch row (f16 and bf16 widen exactly, so
 * llama.cpp's bits survive an f16 cache). */
static inline const float *row_f32(const gemma_session *s, const uint8_t *p, float *scratch, int Dh) {
    if (s->kv.dtype == GM_DT_F32) return (const float *)(const void *)p;
    if (s->kv.dtype == GM_DT_F16)
        s->k->f16_to_f32(p, scratch, Dh);
    else
        s->k->bf16_to_f32(p, scratch, Dh);
    return scratch;
}

/* The positions query i of this step sees: lo..hi.  Causal (and the window
 * on sliding layers), or, for a token of an image run, also its whole run
 * (transformers: (causal AND window) OR same image). */
static inline void visible(const attention_task *t, int i, int *lo, int *hi) {
    const gemma_session *s = t->s;
    const gm_config *c = s->model->cfg;
    int qpos = t->pos0 + i;
    int first = s->model->layers[t->layer].sliding ? qpos - c->sliding_window + 1 : 0;
    if (first < 0) first = 0;
    *lo = first;
    *hi = qpos;
    if (s->step_mm) {
        if (s->att_first[i] < *lo) *lo = s->att_first[i];
        *hi = s->att_last[i];
    }
}

static void attention_rows(void *arg, int thread, int n_threads) {
    const attention_task *t = arg;
    gemma_session *s = t->s;
    const gm_config *c = s->model->cfg;
    const gm_kernels *k = s->k;
    int H = c->n_heads, Dh = c->head_dim, group = H / c->n_kv_heads;
    float scale = (float)(1.0 / sqrt(c->query_pre_attn_scalar));
    float *p = s->scores + (size_t)thread * (size_t)s->n_ctx;
    int begin, end;
    gm_split_range(t->n * H, 1, thread, n_threads, &begin, &end);

    for (int item = begin; item < end; item++) {
        int i = item / H, h = item % H, kvh = h / group, lo, hi;
        visible(t, i, &lo, &hi);
        const float *q = s->q + (size_t)i * H * Dh + (size_t)h * Dh;
        float *out = s->att + (size_t)i * H * Dh + (size_t)h * Dh;
        gm_attend_head(k, s->kv.dtype, q, Dh, scale, lo, hi, key_of, value_of, t, (size_t)kvh * Dh, p, out);
    }
}

/* ggml-cpu's non-flash attention on its f16 cache.  A step of 2+ tokens
 * multiplies through llamafile's tinyBLAS (one 16-lane fma accumulator per
 * output), a single token through ggml_vec_dot_f16 (four, 64 values a
 * step); lanes are indexed by the absolute position (llama.cpp's cache cell,
 * the whole context kept), so positions outside the window only add zeros.
 * Softmax: ggml_v_expf, per-16-cell sums added in double, p * (1/sum)
 * rounded to f16 for V.  The V product keeps one accumulator row of head_dim
 * per lane (s->att_lanes) and reduces them lane-wise at the end: ggml's dot
 * over positions, vectorized over the output dimension. */
static void attention_rows_ggml(void *arg, int thread, int n_threads) {
    const attention_task *t = arg;
    gemma_session *s = t->s;
    const gm_config *c = s->model->cfg;
    const gm_kernels *k = s->k;
    int H = c->n_heads, Dh = c->head_dim, kv_dim = c->n_kv_heads * Dh, group = H / c->n_kv_heads;
    int groups = t->n > 1 ? 1 : 4, n_lanes = 16 * groups;
    float scale = (float)(1.0 / sqrt(c->query_pre_attn_scalar));
    float *p = s->scores + (size_t)thread * (size_t)s->n_ctx;    /* by absolute position */
    float *lanes = s->att_lanes + (size_t)thread * GM_ATT_LANE_ROWS * (size_t)Dh;
    float *q16 = lanes + (size_t)64 * Dh, *wide = lanes + (size_t)65 * Dh;
    size_t elem = (size_t)s->kv.elem;
    int begin, end;
    gm_split_range(t->n * H, 1, thread, n_threads, &begin, &end);

    for (int item = begin; item < end; item++) {
        int i = item / H, h = item % H, kvh = h / group, lo, hi;
        visible(t, i, &lo, &hi);
        const float *q = s->q + (size_t)i * H * Dh + (size_t)h * Dh;
        for (int d = 0; d < Dh; d++) q16[d] = f16_round(q[d] * scale);

        float mx = -INFINITY;
        for (int j = lo; j <= hi; j++) {
            p[j] = k->dot_lanes(row_f32(s, key_at(t, j, kv_dim) + (size_t)kvh * Dh * elem, wide, Dh), q16, Dh, groups);
            if (p[j] > mx) mx = p[j];
        }
        double sum = 0.0;
        for (int c0 = lo & ~15; c0 <= hi; c0 += 16) {
            float e[16];
            for (int l = 0; l < 16; l++) {
                int j = c0 + l;
                e[l] = j >= lo && j <= hi ? (p[j] = expf_ggml(p[j] - mx)) : 0.0f;
            }
            sum += (double)gm_lanes_reduce16(e);
        }
        float inv = (float)(1.0 / sum);

        memset(lanes, 0, (size_t)n_lanes * Dh * sizeof(float));
        for (int j = lo; j <= hi; j++)
            k->fma_row(f16_round(p[j] * inv), row_f32(s, value_at(t, j, kv_dim) + (size_t)kvh * Dh * elem, wide, Dh),
                       lanes + (size_t)(j & (n_lanes - 1)) * Dh, Dh);
        /* gm_lanes_reduce, for every output dimension at once */
#define LANE(g, e) (lanes + (size_t)((g) * 16 + (e)) * Dh)
        if (groups == 4)
            for (int e = 0; e < 16; e++) {
                float *a0 = LANE(0, e), *a1 = LANE(1, e), *a2 = LANE(2, e), *a3 = LANE(3, e);
                for (int d = 0; d < Dh; d++) {
                    a0[d] = a0[d] + a2[d];
                    a1[d] = a1[d] + a3[d];
                    a0[d] = a0[d] + a1[d];
                }
            }
        for (int e = 0; e < 8; e++)
            for (int d = 0; d < Dh; d++) LANE(0, e)[d] = LANE(0, e + 8)[d] + LANE(0, e)[d];
        for (int e = 0; e < 4; e++)
            for (int d = 0; d < Dh; d++) LANE(0, e)[d] = LANE(0, e + 4)[d] + LANE(0, e)[d];
        float *out = s->att + (size_t)i * H * Dh + (size_t)h * Dh;
        for (int d = 0; d < Dh; d++) out[d] = (LANE(0, 0)[d] + LANE(0, 2)[d]) + (LANE(0, 1)[d] + LANE(0, 3)[d]);
#undef LANE
    }
}

/* Append this step's keys/values to the cache (after attention used them):
 * rows of the cache's type, already rounded for a half cache. */
static void commit_kv(gemma_session *s, int layer, int pos0, int n) {
    const gm_kv_layer *L = &s->kv.layers[layer];
    size_t row = (size_t)s->kv.kv_dim * (size_t)s->kv.elem;
    const uint8_t *kn = s->kv.elem == 2 ? (const uint8_t *)s->kh : (const uint8_t *)s->kn;
    const uint8_t *vn = s->kv.elem == 2 ? (const uint8_t *)s->vh : (const uint8_t *)s->vn;
    int first = pos0 + n - L->cap > pos0 ? pos0 + n - L->cap : pos0;
    for (int j = first; j < pos0 + n; j++) {
        memcpy(gm_kv_key(&s->kv, layer, j), kn + (size_t)(j - pos0) * row, row);
        memcpy(gm_kv_value(&s->kv, layer, j), vn + (size_t)(j - pos0) * row, row);
    }
}

/* q/k norm and RoPE of one head at position pos. */
/* RMS-normalize each of n heads, then rotate them all at position pos (the
 * exact path computes the angles once for them all). */
static void norm_rope_heads(const gemma_model *m, int l, float *x, int n, const float *norm, int pos) {
    const gm_config *c = m->cfg;
    int ggml = m->numerics == GEMMA_NUMERICS_LLAMACPP, Dh = c->head_dim;
    float cs[2 * GM_ROPE_MAX_PAIRS];
    if (!ggml) gm_rope_angles(Dh / 2, m->layers[l].rope_inv_freq, pos, cs);
    for (int h = 0; h < n; h++) {
        float *xh = x + (size_t)h * Dh;
        rmsnorm(xh, xh, norm, Dh, (float)c->rms_norm_eps, ggml);
        if (ggml)
            rope_ggml(xh, Dh, (float)c->layers[l].rope_theta, 1.0f / (float)c->layers[l].rope_factor, pos);
        else
            gm_rope_apply(xh, Dh, Dh / 2, cs);
    }
}

/* ========================================================== forward pass */

void gm_gemma3_forward(gemma_session *s, const int32_t *tokens, int n, gemma_logits_mode mode, float *logits) {
    const gemma_model *m = s->model;
    const gm_config *c = m->cfg;
    const gm_kernels *k = s->k;
    int D = c->hidden_size, H = c->n_heads, KV = c->n_kv_heads, Dh = c->head_dim, F = c->intermediate_size;
    int qdim = H * Dh, kv_dim = KV * Dh, pos0 = s->pos;
    int ggml = m->numerics == GEMMA_NUMERICS_LLAMACPP;
    float eps = (float)c->rms_norm_eps;

    /* embeddings: one row each, dequantized on the fly, times the scale;
     * image tokens take their image's embeddings as given (unscaled) */
    const float *image_row = s->step_mm ? s->step_embeds : NULL;
    for (int i = 0; i < n; i++) {
        float *x = s->x + (size_t)i * D;
        if (image_row && tokens[i] == c->image_token_id) {
            memcpy(x, image_row, (size_t)D * sizeof(float));
            image_row += D;
            continue;
        }
        gm_weight_row(k, &m->embed, tokens[i], x, s->mm.per_thread[0] + D);
        for (int d = 0; d < D; d++) x[d] *= m->embed_scale;
    }

    for (int l = 0; l < c->n_layers; l++) {
        const gm_layer *L = &m->layers[l];

        /* ---- attention block */
        for (int i = 0; i < n; i++) rmsnorm(s->xb + (size_t)i * D, s->x + (size_t)i * D, L->input_norm, D, eps, ggml);
        gm_matmul_many(s->pool, k, (const gm_weight *const[]){&L->q, &L->k, &L->v}, 3, s->xb, n,
                       (float *const[]){s->q, s->kn, s->vn}, &s->mm);
        for (int i = 0; i < n; i++) {
            norm_rope_heads(m, l, s->q + (size_t)i * qdim, H, L->q_norm, pos0 + i);
            norm_rope_heads(m, l, s->kn + (size_t)i * kv_dim, KV, L->k_norm, pos0 + i);
        }
        if (ggml)   /* llama.cpp's f16 cache */
            for (size_t e = 0; e < (size_t)n * kv_dim; e++) {
                s->kn[e] = f16_round(s->kn[e]);
                s->vn[e] = f16_round(s->vn[e]);
            }
        if (s->kv.elem == 2) {   /* a half cache: the step's rows as it will store them */
            gm_kv_store(s->kv.dtype, s->kh, s->kn, (size_t)n * kv_dim);
            gm_kv_store(s->kv.dtype, s->vh, s->vn, (size_t)n * kv_dim);
        }
        attention_task at = {s, l, n, pos0, kv_dim};
        gm_pool_run(s->pool, ggml ? attention_rows_ggml : attention_rows, &at);
        commit_kv(s, l, pos0, n);
        gm_matmul(s->pool, k, &L->o, s->att, n, s->xb, &s->mm);
        for (int i = 0; i < n; i++) {
            float *x = s->x + (size_t)i * D, *o = s->xb + (size_t)i * D;
            rmsnorm(o, o, L->post_attn_norm, D, eps, ggml);
            for (int d = 0; d < D; d++) x[d] += o[d];
        }

        /* ---- MLP block */
        for (int i = 0; i < n; i++) rmsnorm(s->xb + (size_t)i * D, s->x + (size_t)i * D, L->pre_ff_norm, D, eps, ggml);
        gm_matmul_many(s->pool, k, (const gm_weight *const[]){&L->gate, &L->up}, 2, s->xb, n,
                       (float *const[]){s->gate, s->up}, &s->mm);
        if (ggml)
            for (size_t e = 0; e < (size_t)n * F; e++) s->gate[e] = geglu_ggml(m->gelu_table, s->gate[e], s->up[e]);
        else
            gm_geglu(k, s->gate, s->up, (size_t)n * F);
        gm_matmul(s->pool, k, &L->down, s->gate, n, s->xb, &s->mm);
        for (int i = 0; i < n; i++) {
            float *x = s->x + (size_t)i * D, *o = s->xb + (size_t)i * D;
            rmsnorm(o, o, L->post_ff_norm, D, eps, ggml);
            for (int d = 0; d < D; d++) x[d] += o[d];
        }
    }
    s->pos += n;

    if (mode == GEMMA_LOGITS_NONE) return;
    int first = mode == GEMMA_LOGITS_ALL ? 0 : n - 1, count = n - first;
    for (int i = first; i < n; i++)
        rmsnorm(s->xb + (size_t)(i - first) * D, s->x + (size_t)i * D, m->final_norm, D, eps, ggml);
    gm_matmul(s->pool, k, &m->lm_head, s->xb, count, logits, &s->mm);
    if (c->final_softcap > 0) softcap(logits, count * c->vocab_size, (float)c->final_softcap);
}
