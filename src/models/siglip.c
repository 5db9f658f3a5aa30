/* siglip.c - the SigLIP vision tower and Gemma 3 multimodal projector (see siglip.h).
 *
 * Forward pass, as transformers' SiglipVisionModel + Gemma3MultiModalProjector
 * (spec sections 3.2-3.5): patch embedding as one GEMM over im2col'd patches
 * (+ bias, + position embedding); per layer LayerNorm -> q/k/v (with biases)
 * -> full bidirectional attention (scale head_dim^-0.5, f32 softmax) ->
 * out_proj + residual -> LayerNorm -> fc1 -> GELU(tanh) -> fc2 + residual;
 * post LayerNorm; k x k average pool of the patch grid; Gemma RMSNorm (1 + w);
 * x @ mm_input_projection_weight.  All arithmetic in f32.
 *
 * Attention never holds a [patches x patches] matrix, nor even one query
 * block's scores against every key: each task takes 96 query rows of one
 * head and walks the keys in blocks of 288 (flash attention), forming the
 * block's scores as a GEMM, exponentiating them with an online softmax
 * (running max and sum per query; the output so far rescaled when the max
 * grows) and adding Vᵀ · Pᵀ into Oᵀ (head_dim x 96, which tiles the register
 * kernel exactly).  A block's keys, values and scores (about 300 KB) stay in
 * L2 while they are used 96 times; the whole-row version streamed a 1.5 MB
 * score block through L3 three times. */
#include "models/siglip.h"
#include "core/alloc.h"
#include "core/error.h"
#include "io/weights.h"
#include "kernels/gemm.h"
#include "quant/ggml_blocks.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

/* ================================================================ binding */

typedef struct {
    const gm_modeldir *md;   /* the tensors (for an mmproj: a shell around its set) */
    const char *vp, *pp;     /* tower and projector name prefixes */
    int ohwi_hint;           /* a 3x3 patch makes OIHW and OHWI the same shape: the source decides */
} bind_ctx;

static const char *tensor_file(const gm_modeldir *md, const gm_tensor *t) { return gm_tensors_file_of(&md->tensors, t); }

/* Tensor "<prefix><suffix>" (its full name into name[320]), or an error naming it. */
static gemma_status find_tensor(const bind_ctx *b, const char *prefix, const char *suffix, char *name,
                                const gm_tensor **out, gemma_error *err) {
    snprintf(name, 320, "%s%s", prefix, suffix);
    *out = gm_tensors_find(&b->md->tensors, name);
    if (!*out) return gm_fail(err, GEMMA_ERR_FORMAT, "%s: missing tensor '%s'", gm_modeldir_source(b->md), name);
    return GEMMA_OK;
}

/* The conv weight: [D, 3, p, p] (OIHW) or [D, p, p, 3] (OHWI), any float type, as a [D, 3 p p] matrix. */
static gemma_status bind_patch(gm_vision *v, const bind_ctx *b, gemma_error *err) {
    const gm_vision_config *c = &v->cfg;
    char name[320], sb[96];
    const gm_tensor *t;
    gemma_status st = find_tensor(b, b->vp, "embeddings.patch_embedding.weight", name, &t, err);
    if (st) return st;
    int64_t D = c->hidden, p = c->patch_size;
    int oihw = t->ndim == 4 && t->shape[0] == D && t->shape[1] == 3 && t->shape[2] == p && t->shape[3] == p;
    int ohwi = t->ndim == 4 && t->shape[0] == D && t->shape[1] == p && t->shape[2] == p && t->shape[3] == 3;
    if (!oihw && !ohwi)
        return gm_fail(err, GEMMA_ERR_FORMAT,
                       "%s: tensor '%s' has shape %s, expected [%lld, 3, %lld, %lld] (PyTorch OIHW) or [%lld, %lld, %lld, 3] "
                       "(MLX OHWI) from vision_config", tensor_file(b->md, t), name,
                       gm_shape_str(t->shape, t->ndim, sb, sizeof sb), (long long)D, (long long)p, (long long)p,
                       (long long)D, (long long)p, (long long)p);
    if (!gm_dtype_is_float(t->dtype) || t->ggml_type > 0)
        return gm_fail(err, GEMMA_ERR_UNSUPPORTED, "%s: tensor '%s' is %s; the patch embedding must be F32, F16 or BF16",
                       tensor_file(b->md, t), name, t->dtype_name);
    v->layout.patch = oihw && ohwi ? (b->ohwi_hint ? GM_PATCH_OHWI : GM_PATCH_OIHW) : ohwi ? GM_PATCH_OHWI : GM_PATCH_OIHW;
    gm_weight *w = &v->patch;
    memset(w, 0, sizeof *w);
    w->kind = t->dtype == GM_DT_F32 ? GM_W_F32 : t->dtype == GM_DT_BF16 ? GM_W_BF16 : GM_W_F16;
    w->rows = c->hidden;
    w->cols = 3 * c->patch_size * c->patch_size;
    w->data = t->data;
    w->row_bytes = (size_t)w->cols * (size_t)gm_dtype_size(t->dtype);
    return GEMMA_OK;
}

/* mm_input_projection_weight: a bare parameter (no ".weight" module), [D, text hidden], float or GGUF blocks. */
static gemma_status bind_projection(gm_vision *v, const bind_ctx *b, gemma_error *err) {
    const gm_vision_config *c = &v->cfg;
    char name[320], sb[96];
    const gm_tensor *t;
    gemma_status st = find_tensor(b, b->pp, "mm_input_projection_weight", name, &t, err);
    if (st) return st;
    int rows = v->layout.proj_transposed ? c->projection_dim : c->hidden;
    int cols = v->layout.proj_transposed ? c->hidden : c->projection_dim;
    if (t->ndim != 2 || t->shape[0] != rows || t->shape[1] != cols) {
        int swapped = t->ndim == 2 && t->shape[0] == cols && t->shape[1] == rows;
        return gm_fail(err, GEMMA_ERR_FORMAT, "%s: tensor '%s' has shape %s, expected [%d, %d] (vision hidden, text "
                       "hidden: used as x @ M)%s", tensor_file(b->md, t), name,
                       gm_shape_str(t->shape, t->ndim, sb, sizeof sb), rows, cols,
                       swapped ? "; it looks transposed like a Linear weight" : "");
    }
    gm_weight *w = &v->proj;
    memset(w, 0, sizeof *w);
    w->rows = rows;
    w->cols = cols;
    w->data = t->data;
    if (t->ggml_type > 0) {
        size_t rb = gm_ggml_type_supported((uint32_t)t->ggml_type) ? gm_ggml_row_bytes((uint32_t)t->ggml_type, cols) : 0;
        if (!rb || rb * (size_t)rows != t->nbytes)
            return gm_fail(err, GEMMA_ERR_UNSUPPORTED, "%s: tensor '%s' has GGML type %s, which cannot hold rows of %d "
                           "(supported: %s)", tensor_file(b->md, t), name, t->dtype_name, cols, gm_ggml_supported_list());
        w->kind = GM_W_GGML;
        w->ggml_type = (uint32_t)t->ggml_type;
        w->row_bytes = rb;
        return GEMMA_OK;
    }
    if (!gm_dtype_is_float(t->dtype))
        return gm_fail(err, GEMMA_ERR_UNSUPPORTED, "%s: tensor '%s' is %s; expected F32, F16 or BF16",
                       tensor_file(b->md, t), name, t->dtype_name);
    w->kind = t->dtype == GM_DT_F32 ? GM_W_F32 : t->dtype == GM_DT_BF16 ? GM_W_BF16 : GM_W_F16;
    w->row_bytes = (size_t)cols * (size_t)gm_dtype_size(t->dtype);
    return GEMMA_OK;
}

static gemma_status bind_layer(gm_vision *v, const bind_ctx *b, int l, float **vec, gemma_error *err) {
    const gm_vision_config *c = &v->cfg;
    gm_vision_layer *L = &v->layers[l];
    int D = c->hidden, F = c->ffn;
    char base[320], name[400];
    snprintf(base, sizeof base, "%sencoder.layers.%d.", b->vp, l);
    gemma_status st;
    struct { gm_weight *w; const char *sub; int rows, cols; } mats[] = {
        {&L->q, "self_attn.q_proj", D, D}, {&L->k, "self_attn.k_proj", D, D}, {&L->v, "self_attn.v_proj", D, D},
        {&L->o, "self_attn.out_proj", D, D}, {&L->fc1, "mlp.fc1", F, D},      {&L->fc2, "mlp.fc2", D, F},
    };
    for (size_t i = 0; i < sizeof mats / sizeof mats[0]; i++) {
        snprintf(name, sizeof name, "%s%s", base, mats[i].sub);
        if ((st = gm_bind_matrix(b->md, name, mats[i].rows, mats[i].cols, mats[i].w, err))) return st;
        v->weight_bytes += gm_weight_bytes(mats[i].w);
    }
    struct { const float **dst; const char *sub; int n; } vecs[] = {
        {&L->ln1_w, "layer_norm1.weight", D}, {&L->ln1_b, "layer_norm1.bias", D},
        {&L->ln2_w, "layer_norm2.weight", D}, {&L->ln2_b, "layer_norm2.bias", D},
        {&L->q_b, "self_attn.q_proj.bias", D}, {&L->k_b, "self_attn.k_proj.bias", D},
        {&L->v_b, "self_attn.v_proj.bias", D}, {&L->o_b, "self_attn.out_proj.bias", D},
        {&L->fc1_b, "mlp.fc1.bias", F},        {&L->fc2_b, "mlp.fc2.bias", D},
    };
    for (size_t i = 0; i < sizeof vecs / sizeof vecs[0]; i++) {
        snprintf(name, sizeof name, "%s%s", base, vecs[i].sub);
        if ((st = gm_bind_vector(b->md, name, vecs[i].n, 0.0f, *vec, err))) return st;
        *vecs[i].dst = *vec;
        *vec += vecs[i].n;
    }
    return GEMMA_OK;
}

static gemma_status bind_all(gm_vision *v, const bind_ctx *b, gemma_error *err) {
    const gm_vision_config *c = &v->cfg;
    int D = c->hidden, F = c->ffn;
    snprintf(v->source, sizeof v->source, "%s", gm_modeldir_source(b->md));
    size_t n_vec = 4 * (size_t)D + (size_t)c->layers * (9 * (size_t)D + (size_t)F);
    v->vectors = calloc(n_vec, sizeof(float));
    v->layers = calloc((size_t)c->layers, sizeof *v->layers);
    if (!v->vectors || !v->layers) return gm_fail(err, GEMMA_ERR_NOMEM, "%s: out of memory", v->source);
    float *vec = v->vectors;
    char name[320];
    gemma_status st;
    if ((st = bind_patch(v, b, err))) return st;
    v->weight_bytes += gm_weight_bytes(&v->patch);
    struct { const float **dst; const char *prefix, *sub; float add; } vecs[] = {
        {&v->patch_b, b->vp, "embeddings.patch_embedding.bias", 0.0f},
        {&v->post_w, b->vp, "post_layernorm.weight", 0.0f},
        {&v->post_b, b->vp, "post_layernorm.bias", 0.0f},
        {&v->soft_norm, b->pp, "mm_soft_emb_norm.weight", v->layout.soft_emb_norm_add},
    };
    for (size_t i = 0; i < sizeof vecs / sizeof vecs[0]; i++) {
        snprintf(name, sizeof name, "%s%s", vecs[i].prefix, vecs[i].sub);
        if ((st = gm_bind_vector(b->md, name, D, vecs[i].add, vec, err))) return st;
        *vecs[i].dst = vec;
        vec += D;
    }
    snprintf(name, sizeof name, "%sembeddings.position_embedding", b->vp);
    if ((st = gm_bind_matrix(b->md, name, c->n_patches, D, &v->pos, err))) return st;
    v->weight_bytes += gm_weight_bytes(&v->pos);
    if ((st = bind_projection(v, b, err))) return st;
    v->weight_bytes += gm_weight_bytes(&v->proj);
    for (int l = 0; l < c->layers; l++)
        if ((st = bind_layer(v, b, l, &vec, err))) return st;
    return GEMMA_OK;
}

/* Name prefixes by where the patch embedding and the projection live. */
static const char *const TOWER_PREFIXES[] = {"vision_tower.vision_model.", "model.vision_tower.vision_model.",
                                             "model.vision_tower.", "vision_tower."};
static const char *const PROJ_PREFIXES[] = {"multi_modal_projector.", "model.multi_modal_projector."};

static const char *find_prefix(const gm_modeldir *md, const char *const *list, size_t n, const char *suffix) {
    char name[320];
    for (size_t i = 0; i < n; i++) {
        snprintf(name, sizeof name, "%s%s", list[i], suffix);
        if (gm_tensors_find(&md->tensors, name)) return list[i];
    }
    return NULL;
}

static gemma_status bind_from(gm_vision *v, const gm_modeldir *md, int ohwi_hint, gemma_error *err) {
    bind_ctx b = {md, NULL, NULL, ohwi_hint};
    b.vp = find_prefix(md, TOWER_PREFIXES, sizeof TOWER_PREFIXES / sizeof TOWER_PREFIXES[0],
                       "embeddings.patch_embedding.weight");
    if (!b.vp)
        return gm_fail(err, GEMMA_ERR_FORMAT,
                       "%s: missing tensor 'vision_tower.vision_model.embeddings.patch_embedding.weight' (also tried "
                       "model.vision_tower.vision_model.*, model.vision_tower.*, vision_tower.*): no vision tower",
                       gm_modeldir_source(md));
    b.pp = find_prefix(md, PROJ_PREFIXES, sizeof PROJ_PREFIXES / sizeof PROJ_PREFIXES[0], "mm_input_projection_weight");
    if (!b.pp)
        return gm_fail(err, GEMMA_ERR_FORMAT,
                       "%s: missing tensor 'multi_modal_projector.mm_input_projection_weight' (also tried "
                       "model.multi_modal_projector.*): no multimodal projector", gm_modeldir_source(md));
    gemma_status st = bind_all(v, &b, err);
    if (st) gm_vision_free(v);
    return st;
}

gemma_status gm_vision_bind(gm_vision *v, const gm_modeldir *md, gemma_error *err) {
    memset(v, 0, sizeof *v);
    if (md->gguf)
        return gm_fail(err, GEMMA_ERR_UNSUPPORTED,
                       "%s: a GGUF text model holds no vision tower; llama.cpp keeps it in a separate mmproj file",
                       gm_modeldir_source(md));
    if (!md->cfg.doc) return gm_fail(err, GEMMA_ERR_FORMAT, "%s: no config.json to read vision_config from", md->dir);
    gemma_status st = gm_vision_config_from_json(&v->cfg, md->cfg.path, gm_json_root(md->cfg.doc), err);
    if (st) return st;
    v->layout = (gm_vision_layout){.patch = GM_PATCH_OIHW, .proj_transposed = 0, .soft_emb_norm_add = 1.0f,
                                   .ffn_swapped = 0};
    /* MLX conversions are the OHWI ones; they say so with a quantization section (only a 3x3 patch needs it) */
    return bind_from(v, md, md->cfg.has_quantization, err);
}

gemma_status gm_vision_bind_mmproj(gm_vision *v, const gm_mmproj *m, gemma_error *err) {
    memset(v, 0, sizeof *v);
    gemma_status st = gm_vision_config_from_mmproj(&v->cfg, m, err);
    if (st) return st;
    v->layout = m->layout;
    /* a shell model directory around the mmproj's tensor set, so the binding helpers serve both */
    gm_modeldir *md = calloc(1, sizeof *md);
    if (!md) return gm_fail(err, GEMMA_ERR_NOMEM, "%s: out of memory", m->path);
    md->tensors = m->ts;
    snprintf(md->dir, sizeof md->dir, "%s", m->path);
    snprintf(md->gguf_path, sizeof md->gguf_path, "%s", m->path);
    st = bind_from(v, md, m->layout.patch == GM_PATCH_OHWI, err);
    free(md);   /* the set is m's: not freed here */
    return st;
}

void gm_vision_free(gm_vision *v) {
    if (!v) return;
    free(v->vectors);
    free(v->layers);
    memset(v, 0, sizeof *v);
}

/* ================================================================ scratch */

/* Per-thread regions (floats).  Attention keeps one head's keys and values
 * packed for the register tile (kp: MR-row panels of keys x head_dim; vp:
 * MR-row panels of head_dim x keys) while it runs that head's query blocks;
 * sp holds one key block's scores transposed, in NR-wide query panels, which
 * is both the C of Sᵀ = K·Qᵀ and the packed B of Oᵀ = Vᵀ·Sᵀ; run holds the
 * online softmax's running max and sum per query. */
typedef struct {
    size_t gemm, kp, vp, qp, sp, ot, run, row;
} thread_layout;

static size_t r16(size_t n) { return (n + 15) & ~(size_t)15; }

static thread_layout thread_regions(const gm_vision_config *c) {
    /* padded to whole panels of any tile size up to GM_GEMM_MAX_MR x GM_GEMM_MAX_NR */
    size_t P = (size_t)c->n_patches, Dh = (size_t)c->head_dim, QB = GM_VISION_QBLOCK + GM_GEMM_MAX_NR;
    thread_layout t;
    t.gemm = r16(gm_gemm_buf_floats(c->projection_dim));
    t.kp = r16((P + GM_GEMM_MAX_MR) * Dh);
    t.vp = r16((Dh + GM_GEMM_MAX_MR) * P);
    t.qp = r16(QB * Dh);
    t.sp = r16(QB * (size_t)GM_VISION_KBLOCK);
    t.ot = r16((Dh + GM_GEMM_MAX_MR) * QB);
    t.run = r16(2 * QB);
    t.row = r16((size_t)c->hidden + 2 * ((size_t)c->hidden / 32 + 16));   /* a position row + its MLX groups */
    return t;
}

static size_t thread_total(const thread_layout *t) { return t->gemm + t->kp + t->vp + t->qp + t->sp + t->ot + t->run + t->row; }

static size_t patch_len(const gm_vision_config *c) { return 3 * (size_t)c->patch_size * (size_t)c->patch_size; }

static size_t h_width(const gm_vision_config *c) {
    size_t w = (size_t)c->ffn > patch_len(c) ? (size_t)c->ffn : patch_len(c);
    return w > (size_t)c->hidden ? w : (size_t)c->hidden;
}

/* Floats of the shared buffers and of one thread's area; 0 on overflow. */
static int scratch_floats(const gm_vision_config *c, int max_threads, size_t *shared, size_t *per_thread) {
    thread_layout t = thread_regions(c);
    size_t P = (size_t)c->n_patches, D = (size_t)c->hidden, act, hbuf, total_t;
    if (!gm_mul_size(P, D, &act) || !gm_mul_size(P, h_width(c), &hbuf)) return 0;
    act = r16(act);
    hbuf = r16(hbuf);
    *per_thread = thread_total(&t);
    if (!gm_mul_size(*per_thread, (size_t)max_threads, &total_t)) return 0;
    *shared = 5 * act + hbuf + r16((size_t)c->tokens_per_image * D);
    return *shared <= SIZE_MAX / sizeof(float) - total_t;
}

/* The GEMMs read activation rows 4.6-17 KB apart (16 rows per panel) and
 * sweep C tiles across the same strides: on 4 KB pages a 70 MB activation
 * outruns the TLB.  Ask Linux for transparent huge pages on the 2 MB-aligned
 * interior of the scratch (a hint: ignored where unsupported, or when the
 * memory is not anonymous, e.g. a caller's allocator). */
static void ask_huge_pages(void *mem, size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    const uintptr_t huge = (uintptr_t)2 << 20;
    uintptr_t lo = ((uintptr_t)mem + huge - 1) & ~(huge - 1), hi = ((uintptr_t)mem + bytes) & ~(huge - 1);
    if (hi > lo) (void)madvise((void *)lo, (size_t)(hi - lo), MADV_HUGEPAGE);
#else
    (void)mem, (void)bytes;
#endif
}

size_t gm_vision_scratch_bytes(const gm_vision *v, int max_threads) {
    size_t shared, per;
    if (max_threads < 1 || max_threads > GM_VISION_MAX_THREADS || !scratch_floats(&v->cfg, max_threads, &shared, &per))
        return 0;
    size_t total = shared + per * (size_t)max_threads;
    return total > SIZE_MAX / sizeof(float) ? 0 : total * sizeof(float);
}

gemma_status gm_vision_scratch_alloc(gm_vision_scratch *s, const gm_vision *v, int max_threads,
                                     const gemma_allocator *a, gemma_error *err) {
    memset(s, 0, sizeof *s);
    size_t bytes = gm_vision_scratch_bytes(v, max_threads), shared, per;
    if (!bytes || !scratch_floats(&v->cfg, max_threads, &shared, &per))
        return gm_fail(err, GEMMA_ERR_ARG, "%s: vision scratch for %d threads does not fit in memory", v->source,
                       max_threads);
    if (a) s->allocator = *a;
    if (!(s->mem = gm_alloc(&s->allocator, bytes)))
        return gm_fail(err, GEMMA_ERR_NOMEM, "%s: out of memory for the vision scratch (%zu MB)", v->source, bytes >> 20);
    ask_huge_pages(s->mem, bytes);
    const gm_vision_config *c = &v->cfg;
    size_t act = r16((size_t)c->n_patches * (size_t)c->hidden);
    float *p = s->mem;
    s->x = p, p += act;
    s->y = p, p += act;
    s->q = p, p += act;
    s->k = p, p += act;
    s->v = p, p += act;
    s->h = p, p += r16((size_t)c->n_patches * h_width(c));
    s->pooled = p, p += r16((size_t)c->tokens_per_image * (size_t)c->hidden);
    s->threads = p;
    s->thread_floats = per;
    s->bytes = bytes;
    s->max_threads = max_threads;
    return GEMMA_OK;
}

void gm_vision_scratch_free(gm_vision_scratch *s) {
    if (!s) return;
    gm_free(&s->allocator, s->mem);
    memset(s, 0, sizeof *s);
}

/* ============================================================ primitives */

typedef struct {
    const gm_vision *v;
    const gm_kernels *k;
    const gm_vision_scratch *s;
    float *bufs[GM_VISION_MAX_THREADS];   /* each thread's GEMM buffer */
} encoder;

static float *thread_area(const encoder *e, int thread) { return e->s->threads + (size_t)thread * e->s->thread_floats; }

/* Sum in eight lanes (vectorizes without reassociating a single chain). */
static float sum8(const float *x, int n) {
    float a[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) a[j] += x[i + j];
    float s = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
    for (; i < n; i++) s += x[i];
    return s;
}

/* y = (x - mean) / sqrt(var + eps) * w + b, biased variance (two passes, as the reference). */
static void layer_norm(const gm_kernels *k, float *y, const float *x, const float *w, const float *b, int n, float eps) {
    float mean = sum8(x, n) / (float)n;
    for (int i = 0; i < n; i++) y[i] = x[i] - mean;
    float var = k->dot_f32(y, y, n) / (float)n;
    float r = 1.0f / sqrtf(var + eps);
    for (int i = 0; i < n; i++) y[i] = y[i] * r * w[i] + b[i];
}

typedef enum { OP_LAYERNORM, OP_SET_ROWS, OP_ADD_ROWS, OP_GELU, OP_ADD_POS, OP_IM2COL, OP_PROJ_NORM } row_op;

typedef struct {
    const encoder *e;
    row_op op;
    int rows, width;
    float *dst;
    const float *src, *w, *b;   /* LAYERNORM: src rows, w/b; SET/ADD_ROWS: b is the row vector */
    const float *pixels;        /* IM2COL: this image */
} rows_task;

static void im2col_row(const gm_vision *v, const float *img, int r, float *dst) {
    const gm_vision_config *c = &v->cfg;
    int p = c->patch_size, S = c->image_size, py = r / c->patches_per_side, px = r % c->patches_per_side;
    for (int ch = 0; ch < 3; ch++)
        for (int ky = 0; ky < p; ky++) {
            const float *src = img + ((size_t)ch * S + (size_t)(py * p + ky)) * S + (size_t)px * p;
            for (int kx = 0; kx < p; kx++) {
                /* the flatten order of the weight's rows: (c, ky, kx) for OIHW, (ky, kx, c) for OHWI */
                size_t col = v->layout.patch == GM_PATCH_OHWI ? ((size_t)ky * p + kx) * 3 + ch
                                                               : ((size_t)ch * p + ky) * p + kx;
                dst[col] = src[kx];
            }
        }
}

/* Pool token t (k x k patches, summed row by row then divided, as torch's
 * avg_pool2d), then the Gemma RMSNorm (x * rsqrt(mean x^2 + eps)) * (1 + w). */
static void pool_norm_row(const gm_vision *v, const float *x, int t, float *dst) {
    const gm_vision_config *c = &v->cfg;
    int D = c->hidden, k = c->pool, r = t / c->tokens_per_side, col = t % c->tokens_per_side;
    for (int d = 0; d < D; d++) dst[d] = 0.0f;
    for (int dy = 0; dy < k; dy++)
        for (int dx = 0; dx < k; dx++) {
            const float *src = x + ((size_t)(r * k + dy) * c->patches_per_side + (size_t)(col * k + dx)) * D;
            for (int d = 0; d < D; d++) dst[d] += src[d];
        }
    float div = (float)(k * k);
    double ss = 0.0;
    for (int d = 0; d < D; d++) {
        dst[d] /= div;
        ss += (double)dst[d] * dst[d];
    }
    float rs = 1.0f / sqrtf((float)(ss / D) + c->eps);
    for (int d = 0; d < D; d++) dst[d] = (dst[d] * rs) * v->soft_norm[d];
}

static void rows_worker(void *arg, int thread, int n_threads) {
    const rows_task *t = arg;
    const encoder *e = t->e;
    const gm_kernels *k = e->k;
    int begin, end, W = t->width;
    gm_split_range(t->rows, 1, thread, n_threads, &begin, &end);
    if (t->op == OP_GELU) {
        if (end > begin) k->gelu_tanh(t->dst + (size_t)begin * W, (end - begin) * W);
        return;
    }
    thread_layout tl = thread_regions(&e->v->cfg);
    float *row = thread_area(e, thread) + (thread_total(&tl) - tl.row);   /* a widened position row */
    for (int r = begin; r < end; r++) {
        float *d = t->dst + (size_t)r * W;
        switch (t->op) {
        case OP_LAYERNORM: layer_norm(k, d, t->src + (size_t)r * W, t->w, t->b, W, e->v->cfg.eps); break;
        case OP_SET_ROWS: memcpy(d, t->b, (size_t)W * sizeof(float)); break;
        case OP_ADD_ROWS:
            for (int i = 0; i < W; i++) d[i] += t->b[i];
            break;
        case OP_ADD_POS:
            gm_weight_row(k, &e->v->pos, r, row, row + W);
            for (int i = 0; i < W; i++) d[i] += row[i];
            break;
        case OP_IM2COL: im2col_row(e->v, t->pixels, r, d); break;
        case OP_PROJ_NORM: pool_norm_row(e->v, t->src, r, d); break;
        default: break;
        }
    }
}

static void run_rows(gm_pool *pool, const encoder *e, row_op op, int rows, int width, float *dst, const float *src,
                     const float *w, const float *b) {
    rows_task t = {e, op, rows, width, dst, src, w, b, NULL};
    gm_pool_run(pool, rows_worker, &t);
}

/* y[M, N] (+)= x[M, K] · Wᵀ on every thread. */
static void linear(gm_pool *pool, const encoder *e, const gm_weight *w, const float *x, int M, float *y, int accumulate) {
    gm_gemm_args g = {.M = M, .N = w->rows, .K = w->cols, .a = x, .lda = (size_t)w->cols, .b = w, .b_kn = 0,
                      .c = y, .ldc = (size_t)w->rows, .accumulate = accumulate};
    gm_gemm(pool, e->k, &g, e->bufs);
}

/* ============================================================= attention */

typedef struct {
    const encoder *e;
    const float *q, *k, *v;   /* [P, D], heads side by side */
    float *out;               /* [P, D] */
} attention_task;

/* Head h's keys as MR-row panels (depth head_dim) and values as MR-row panels of Vᵀ (depth P). */
static void pack_head(const attention_task *t, int h, float *kp, float *vp) {
    const gm_kernels *k = t->e->k;
    const gm_vision_config *c = &t->e->v->cfg;
    int P = c->n_patches, D = c->hidden, Dh = c->head_dim, MR = k->gemm_mr;
    for (int j0 = 0; j0 < P; j0 += MR)
        k->pack_t(t->k + (size_t)j0 * D + (size_t)h * Dh, (size_t)D, P - j0 < MR ? P - j0 : MR, Dh, MR,
                  kp + (size_t)j0 * Dh);
    for (int d0 = 0; d0 < Dh; d0 += MR) {
        int mb = Dh - d0 < MR ? Dh - d0 : MR;
        float *dst = vp + (size_t)d0 * P;
        for (int j = 0; j < P; j++) {
            memcpy(dst + (size_t)j * MR, t->v + (size_t)j * D + (size_t)h * Dh + d0, (size_t)mb * sizeof(float));
            for (int i = mb; i < MR; i++) dst[(size_t)j * MR + i] = 0.0f;
        }
    }
}

static void attention_worker(void *arg, int thread, int n_threads) {
    const attention_task *t = arg;
    const encoder *e = t->e;
    const gm_kernels *k = e->k;
    const gm_vision_config *c = &e->v->cfg;
    const int MR = k->gemm_mr, NR = k->gemm_nr, KB = GM_VISION_KBLOCK;
    int P = c->n_patches, D = c->hidden, Dh = c->head_dim, H = c->heads;
    int nqb = (P + GM_VISION_QBLOCK - 1) / GM_VISION_QBLOCK;
    thread_layout tl = thread_regions(c);
    float *kp = thread_area(e, thread) + tl.gemm, *vp = kp + tl.kp, *qp = vp + tl.vp, *sp = qp + tl.qp;
    float *ot = sp + tl.sp, *run_max = ot + tl.ot, *run_sum = run_max + tl.run / 2;
    float scale = (float)(1.0 / sqrt((double)Dh));
    int begin, end, packed = -1;
    gm_split_range(H * nqb, 1, thread, n_threads, &begin, &end);
    for (int item = begin; item < end; item++) {
        int h = item / nqb, q0 = (item % nqb) * GM_VISION_QBLOCK;
        int mq = P - q0 < GM_VISION_QBLOCK ? P - q0 : GM_VISION_QBLOCK;
        int nq = (mq + NR - 1) / NR, ldo = nq * NR;
        if (h != packed) pack_head(t, h, kp, vp), packed = h;
        /* the block's queries as NR-wide panels (depth head_dim) */
        for (int jq = 0; jq < nq; jq++)
            k->pack_t(t->q + (size_t)(q0 + jq * NR) * D + (size_t)h * Dh, (size_t)D,
                      mq - jq * NR < NR ? mq - jq * NR : NR, Dh, NR, qp + (size_t)jq * NR * Dh);
        memset(ot, 0, (size_t)Dh * (size_t)ldo * sizeof(float));
        for (int i = 0; i < ldo; i++) run_max[i] = -INFINITY, run_sum[i] = 0.0f;
        for (int j0 = 0; j0 < P; j0 += KB) {
            int kb = P - j0 < KB ? P - j0 : KB;   /* KB is a multiple of every MR: panels never straddle blocks */
            /* Sᵀ[kb, queries] = K_blk · Q_blkᵀ, written straight into NR-wide panels of depth KB */
            for (int jj = j0; jj < j0 + kb; jj += MR)
                for (int jq = 0; jq < nq; jq++)
                    k->gemm_f32(Dh, kp + (size_t)jj * Dh, qp + (size_t)jq * NR * Dh,
                                sp + (size_t)jq * NR * KB + (size_t)(jj - j0) * NR, (size_t)NR, P - jj < MR ? P - jj : MR,
                                NR, 0);
            /* Oᵀ[Dh, queries] = Oᵀ · f + V_blkᵀ · exp(Sᵀ - max), one query panel at a time (it stays in L1) */
            for (int jq = 0; jq < nq; jq++) {
                float *pj = sp + (size_t)jq * NR * KB;
                k->softmax_cols(pj, kb, NR, scale, run_max + jq * NR, run_sum + jq * NR, ot + (size_t)jq * NR,
                                (size_t)ldo, Dh);
                for (int d0 = 0; d0 < Dh; d0 += MR)
                    k->gemm_f32(kb, vp + (size_t)d0 * P + (size_t)j0 * MR, pj, ot + (size_t)d0 * ldo + (size_t)jq * NR,
                                (size_t)ldo, Dh - d0 < MR ? Dh - d0 : MR, NR, 1);
            }
        }
        for (int i = 0; i < mq; i++) {
            float *dst = t->out + (size_t)(q0 + i) * D + (size_t)h * Dh, inv = 1.0f / run_sum[i];
            for (int d = 0; d < Dh; d++) dst[d] = ot[(size_t)d * ldo + i] * inv;
        }
    }
}

/* ========================================================== forward pass */

static double seconds_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Adds the time since *t0 to phase `ph` when the caller asked for phase times; restarts the clock. */
static void phase_done(const gm_vision_scratch *s, gm_vision_phase ph, double *t0) {
    if (!s->phase_seconds) return;
    double t = seconds_now();
    s->phase_seconds[ph] += t - *t0;
    *t0 = t;
}

static void encode_image(gm_pool *pool, const encoder *e, const float *img, float *out) {
    const gm_vision *v = e->v;
    const gm_vision_config *c = &v->cfg;
    const gm_vision_scratch *s = e->s;
    int P = c->n_patches, D = c->hidden, F = c->ffn, K = (int)patch_len(c);
    double t0 = s->phase_seconds ? seconds_now() : 0.0;

    /* patch embedding: im2col rows (in the weight's flatten order) · Wᵀ + bias + position */
    rows_task im = {e, OP_IM2COL, P, K, s->h, NULL, NULL, NULL, img};
    gm_pool_run(pool, rows_worker, &im);
    run_rows(pool, e, OP_SET_ROWS, P, D, s->x, NULL, NULL, v->patch_b);
    linear(pool, e, &v->patch, s->h, P, s->x, 1);
    run_rows(pool, e, OP_ADD_POS, P, D, s->x, NULL, NULL, NULL);
    phase_done(s, GM_VISION_PHASE_EMBED, &t0);

    for (int l = 0; l < c->layers; l++) {
        const gm_vision_layer *L = &v->layers[l];
        run_rows(pool, e, OP_LAYERNORM, P, D, s->y, s->x, L->ln1_w, L->ln1_b);
        phase_done(s, GM_VISION_PHASE_NORM, &t0);
        run_rows(pool, e, OP_SET_ROWS, P, D, s->q, NULL, NULL, L->q_b);
        run_rows(pool, e, OP_SET_ROWS, P, D, s->k, NULL, NULL, L->k_b);
        run_rows(pool, e, OP_SET_ROWS, P, D, s->v, NULL, NULL, L->v_b);
        linear(pool, e, &L->q, s->y, P, s->q, 1);
        linear(pool, e, &L->k, s->y, P, s->k, 1);
        linear(pool, e, &L->v, s->y, P, s->v, 1);
        phase_done(s, GM_VISION_PHASE_QKV, &t0);
        attention_task at = {e, s->q, s->k, s->v, s->y};
        gm_pool_run(pool, attention_worker, &at);
        phase_done(s, GM_VISION_PHASE_ATTENTION, &t0);
        run_rows(pool, e, OP_ADD_ROWS, P, D, s->x, NULL, NULL, L->o_b);
        linear(pool, e, &L->o, s->y, P, s->x, 1);          /* residual: x += attn · Woᵀ + b */
        phase_done(s, GM_VISION_PHASE_OUT, &t0);

        run_rows(pool, e, OP_LAYERNORM, P, D, s->y, s->x, L->ln2_w, L->ln2_b);
        phase_done(s, GM_VISION_PHASE_NORM, &t0);
        run_rows(pool, e, OP_SET_ROWS, P, F, s->h, NULL, NULL, L->fc1_b);
        linear(pool, e, &L->fc1, s->y, P, s->h, 1);
        phase_done(s, GM_VISION_PHASE_FC1, &t0);
        run_rows(pool, e, OP_GELU, P, F, s->h, NULL, NULL, NULL);
        phase_done(s, GM_VISION_PHASE_GELU, &t0);
        run_rows(pool, e, OP_ADD_ROWS, P, D, s->x, NULL, NULL, L->fc2_b);
        linear(pool, e, &L->fc2, s->h, P, s->x, 1);        /* residual: x += gelu(fc1) · W2ᵀ + b */
        phase_done(s, GM_VISION_PHASE_FC2, &t0);
    }
    run_rows(pool, e, OP_LAYERNORM, P, D, s->y, s->x, v->post_w, v->post_b);
    phase_done(s, GM_VISION_PHASE_NORM, &t0);

    /* projector: pool + RMSNorm per token, then tokens · M (M as stored: [D, text hidden]) */
    run_rows(pool, e, OP_PROJ_NORM, c->tokens_per_image, D, s->pooled, s->y, NULL, NULL);
    gm_gemm_args g = {.M = c->tokens_per_image, .N = c->projection_dim, .K = D, .a = s->pooled, .lda = (size_t)D,
                      .b = &v->proj, .b_kn = !v->layout.proj_transposed, .c = out,
                      .ldc = (size_t)c->projection_dim};
    gm_gemm(pool, e->k, &g, e->bufs);
    phase_done(s, GM_VISION_PHASE_PROJECTOR, &t0);
}

gemma_status gm_vision_encode(const gm_vision *v, gm_pool *pool, const gm_kernels *k, const float *pixels,
                              int n_images, float *out, const gm_vision_scratch *s, gemma_error *err) {
    if (!v || !v->layers || !pool || !k || !s || !s->mem)
        return gm_fail(err, GEMMA_ERR_ARG, "gm_vision_encode: no tower, pool, kernels or scratch");
    if (n_images < 0 || (n_images > 0 && (!pixels || !out)))
        return gm_fail(err, GEMMA_ERR_ARG, "%s: gm_vision_encode: %d images with pixels %p, out %p", v->source, n_images,
                       (const void *)pixels, (void *)out);
    int T = gm_pool_size(pool);
    if (T > s->max_threads || s->bytes < gm_vision_scratch_bytes(v, s->max_threads))
        return gm_fail(err, GEMMA_ERR_ARG, "%s: a pool of %d threads needs a vision scratch made for at least that many "
                       "(it has %d)", v->source, T, s->max_threads);
    encoder e = {v, k, s, {0}};
    for (int t = 0; t < T; t++) e.bufs[t] = thread_area(&e, t);
    const gm_vision_config *c = &v->cfg;
    size_t img = 3 * (size_t)c->image_size * (size_t)c->image_size;
    size_t per_out = (size_t)c->tokens_per_image * (size_t)c->projection_dim;
    for (int i = 0; i < n_images; i++) encode_image(pool, &e, pixels + (size_t)i * img, out + (size_t)i * per_out);
    return GEMMA_OK;
}
