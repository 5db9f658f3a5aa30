/* matmul.c - see matmul.h.
 *
 * Threads split the output rows.  One token (decode) dots each packed row
 * with x directly; several tokens (prefill) widen each row once into f32 and
 * reuse it for all of them, so the unpacking cost is paid once per row.
 * GGUF block weights in llama.cpp numerics instead follow llama.cpp: every
 * input row is quantized once per call to the weight type's 8-bit activation
 * type, and each output is an integer block dot (for one token or many). */
#include "kernels/matmul.h"
#include "kernels/gemm.h"
#include "kernels/mlx_rows.h"
#include "quant/ggml_q8.h"

#include <string.h>

size_t gm_matmul_scratch_floats(int max_cols, int gemm) {
    /* a widened row + f32 scales + f32 biases, or the GEMM's packed blocks,
     * rounded up to whole cache lines */
    size_t n = (size_t)max_cols + 2 * ((size_t)max_cols / 32 + 16), g = gemm ? gm_gemm_buf_floats(0) : 0;
    if (g > n) n = g;
    return (n + 15) & ~(size_t)15;
}

size_t gm_matmul_xsum_floats(int max_tokens, int max_cols) {
    return (size_t)max_tokens * ((size_t)max_cols / 32 + 1);
}

size_t gm_matmul_xq_floats(int max_tokens, int max_cols) {
    return (size_t)max_tokens * ((gm_q8_max_row_bytes(max_cols) + 3) / 4);
}

size_t gm_matmul_x8_floats(int max_tokens, int max_cols) {
    return (size_t)max_tokens * gm_mlx_q8_dxv_floats(max_cols);   /* cols/4 floats = cols bytes */
}

size_t gm_weight_bytes(const gm_weight *w) {
    size_t n = w->row_bytes * (size_t)w->rows;
    if (w->kind == GM_W_MLX)
        n += 2 * (size_t)w->rows * (size_t)(w->cols / w->group_size) * (size_t)gm_dtype_size(w->qdtype);
    return n;
}

static void widen_scales(const gm_kernels *k, const gm_weight *w, int row, float *s, float *b) {
    int groups = w->cols / w->group_size;
    size_t off = (size_t)row * (size_t)groups;
    switch (w->qdtype) {
    case GM_DT_BF16:
        k->bf16_to_f32(w->scales + 2 * off, s, groups);
        k->bf16_to_f32(w->biases + 2 * off, b, groups);
        break;
    case GM_DT_F16:
        k->f16_to_f32(w->scales + 2 * off, s, groups);
        k->f16_to_f32(w->biases + 2 * off, b, groups);
        break;
    default:
        memcpy(s, w->scales + 4 * off, (size_t)groups * sizeof(float));
        memcpy(b, w->biases + 4 * off, (size_t)groups * sizeof(float));
        break;
    }
}

void gm_weight_row(const gm_kernels *k, const gm_weight *w, int row, float *out, float *tmp_groups) {
    const uint8_t *p = w->data + (size_t)row * w->row_bytes;
    switch (w->kind) {
    case GM_W_F32: memcpy(out, p, (size_t)w->cols * sizeof(float)); break;
    case GM_W_BF16: k->bf16_to_f32(p, out, w->cols); break;
    case GM_W_F16: k->f16_to_f32(p, out, w->cols); break;
    case GM_W_MLX: {
        int groups = w->cols / w->group_size;
        float *s = tmp_groups, *b = tmp_groups + groups;
        widen_scales(k, w, row, s, b);
        k->dequant_mlx(p, s, b, w->bits, w->group_size, out, w->cols);
        break;
    }
    case GM_W_GGML: k->dequant_ggml(w->ggml_type, p, out, w->cols); break;
    }
}

/* ------------------------------------------------------------------ tasks */

typedef struct {
    const gm_kernels *k;
    const gm_weight *w;
    const float *x;
    int n_tokens;
    float *y;
    gm_matmul_scratch *scratch;
    uint32_t act_type;        /* GGUF blocks: the activation type of xq */
    size_t xq_row_bytes;
    const float *xl;          /* F16/F32 weights in llama.cpp numerics: the inputs as ggml sees them */
    int q8;                   /* MLX rows with int8 inputs (scratch x8 / x8d / xsum) */
} matmul_task;

/* F16 / BF16 / F32 weights in llama.cpp numerics.  ggml rounds the inputs
 * of an F16 or BF16 matrix to that type (its vec_dot_type) and forms f32
 * lane sums of the widened values: a batch of 2+ rows through llamafile's
 * tinyBLAS (one 16-lane accumulator per output, groups 1), a single row
 * through ggml_vec_dot_f16/_bf16/_f32 (four, groups 4).  Measured on the
 * random GGUF fixtures against llama-cpp-python 0.3.36 (AVX-512 build):
 * every logit equal, BF16 included (the build's BF16 dots widen to f32 the
 * same way rather than use vdpbf16ps). */
int gm_matmul_lanes_ok(const gm_weight *w) {
    return w->llamacpp && (w->kind == GM_W_F16 || w->kind == GM_W_BF16 || w->kind == GM_W_F32) && w->cols % 64 == 0;
}

static void matmul_rows_lanes(const matmul_task *t, int begin, int end, float *buf) {
    const gm_weight *w = t->w;
    int groups = t->n_tokens > 1 ? 1 : 4;
    for (int o = begin; o < end; o++) {
        const uint8_t *row = w->data + (size_t)o * w->row_bytes;
        if (w->kind == GM_W_F16)
            t->k->f16_to_f32(row, buf, w->cols);
        else if (w->kind == GM_W_BF16)
            t->k->bf16_to_f32(row, buf, w->cols);
        else
            memcpy(buf, row, (size_t)w->cols * sizeof(float));
        for (int i = 0; i < t->n_tokens; i++) {
            const float *x = t->xl + (size_t)i * w->cols;
            t->y[(size_t)i * w->rows + o] = t->k->dot_lanes(buf, x, w->cols, groups);
        }
    }
}

static void quantize_rows(void *arg, int thread, int n_threads) {
    const matmul_task *t = arg;
    int begin, end, cols = t->w->cols;
    gm_split_range(t->n_tokens, 1, thread, n_threads, &begin, &end);
    uint8_t *xq = (uint8_t *)t->scratch->xq;
    for (int i = begin; i < end; i++)
        t->k->quantize_q8(t->act_type, t->x + (size_t)i * cols, xq + (size_t)i * t->xq_row_bytes, cols);
}

/* Integer dots, the token loop inside: the weight row stays in L1.  Like
 * llama.cpp, many rows at once take its GEMM's rounding (K-quants differ). */
static void matmul_rows_q8(const matmul_task *t, int begin, int end) {
    const gm_weight *w = t->w;
    const uint8_t *xq = (const uint8_t *)t->scratch->xq;
    float (*dot)(uint32_t, const void *, const void *, int) =
        t->n_tokens >= GM_Q8_GEMM_MIN_ROWS ? t->k->dot_ggml_q8_gemm : t->k->dot_ggml_q8;
    for (int o = begin; o < end; o++) {
        const uint8_t *row = w->data + (size_t)o * w->row_bytes;
        for (int i = 0; i < t->n_tokens; i++)
            t->y[(size_t)i * w->rows + o] = dot(w->ggml_type, row, xq + (size_t)i * t->xq_row_bytes, w->cols);
    }
}

/* Int8 inputs: blocks of 64 rows (their weights stay in L2) by 64 tokens
 * (their inputs too), so a prefill reads each weight from memory once. */
static void matmul_rows_mlx_q8(const matmul_task *t, int begin, int end) {
    enum { ROW_BLOCK = 64, TOKEN_BLOCK = 64 };
    const gm_weight *w = t->w;
    const gm_matmul_scratch *s = t->scratch;
    gm_mlx_rows rows = {w->data, w->row_bytes, w->scales, w->biases, (int)w->qdtype, w->bits, w->group_size, w->cols};
    size_t dstride = gm_mlx_q8_dxv_floats(w->cols), groups = (size_t)(w->cols / w->group_size);
    const int8_t *x8 = (const int8_t *)s->x8;
    int T = t->n_tokens, row_block = T == 1 ? end - begin : ROW_BLOCK;
    for (int r = begin; r < end; r += row_block) {
        int re = end - r < row_block ? end : r + row_block;
        for (int t0 = 0; t0 < T; t0 += TOKEN_BLOCK) {
            int nt = T - t0 < TOKEN_BLOCK ? T - t0 : TOKEN_BLOCK;
            t->k->matmul_mlx_q8(&rows, r, re, nt, x8 + (size_t)t0 * (size_t)w->cols, s->x8d + (size_t)t0 * dstride,
                                s->xsum + (size_t)t0 * groups, t->y + (size_t)t0 * (size_t)w->rows + (size_t)r,
                                (size_t)w->rows);
        }
    }
}

static void matmul_range(const matmul_task *t, int begin, int end, int thread) {
    const gm_weight *w = t->w;
    const gm_kernels *k = t->k;
    float *buf = t->scratch->per_thread[thread];
    if (t->q8) {
        matmul_rows_mlx_q8(t, begin, end);
        return;
    }
    if (t->act_type) {
        matmul_rows_q8(t, begin, end);
        return;
    }
    if (t->xl) {
        matmul_rows_lanes(t, begin, end, buf);
        return;
    }
    int cols = w->cols, T = t->n_tokens;
    if (T == 1 && w->kind == GM_W_MLX) {
        gm_mlx_rows rows = {w->data, w->row_bytes, w->scales, w->biases, (int)w->qdtype, w->bits, w->group_size, cols};
        k->matvec_mlx(&rows, begin, end, t->scratch->xp, t->scratch->xsum, t->y + begin);
        return;
    }
    for (int o = begin; o < end; o++) {
        const uint8_t *row = w->data + (size_t)o * w->row_bytes;
        if (T == 1) {
            float v;
            switch (w->kind) {
            case GM_W_F32: v = k->dot_wf32(row, t->x, cols); break;
            case GM_W_BF16: v = k->dot_bf16(row, t->x, cols); break;
            case GM_W_F16: v = k->dot_f16(row, t->x, cols); break;
            default: v = k->dot_ggml(w->ggml_type, row, t->x, cols); break;   /* GGUF blocks (MLX: above) */
            }
            t->y[o] = v;
            continue;
        }
        gm_weight_row(k, w, o, buf, buf + cols);   /* widen once (copy for f32: alignment), reuse T times */
        for (int i = 0; i < T; i++) t->y[(size_t)i * w->rows + o] = k->dot_f32(buf, t->x + (size_t)i * cols, cols);
    }
}

static void matmul_rows(void *arg, int thread, int n_threads) {
    const matmul_task *t = arg;
    int begin, end;
    gm_split_range(t->w->rows, 8, thread, n_threads, &begin, &end);
    matmul_range(t, begin, end, thread);
}

/* Several matrices of one input in one pool step: the threads split the
 * rows of all of them as one range (decode: one barrier instead of three). */
typedef struct {
    matmul_task part[GM_MATMUL_MAX_MANY];
    int n, total_rows;
} many_task;

static void matmul_many_rows(void *arg, int thread, int n_threads) {
    const many_task *m = arg;
    int begin, end;
    gm_split_range(m->total_rows, 8, thread, n_threads, &begin, &end);
    for (int i = 0, base = 0; i < m->n; base += m->part[i].w->rows, i++) {
        int b = begin > base ? begin - base : 0, e = end - base < m->part[i].w->rows ? end - base : m->part[i].w->rows;
        if (b < e) matmul_range(&m->part[i], b, e, thread);
    }
}

static void group_sums(const float *x, int cols, int gs, float *out) {
    for (int g = 0; g * gs < cols; g++) {
        float s = 0.0f;
        for (int i = 0; i < gs; i++) s += x[g * gs + i];
        out[g] = s;
    }
}

static int int8_shape(const gm_weight *w) {
    return w->kind == GM_W_MLX && gm_mlx_q8_ok(w->bits, w->group_size, w->cols);
}

static int takes_q8(const gm_weight *w, const gm_matmul_scratch *scratch) { return scratch->int8 && int8_shape(w); }

int gm_matmul_uses_gemm(const gm_weight *w, int int8) {
    return w->rows && !w->llamacpp && !(int8 && int8_shape(w));
}

/* Token i's inputs for the int8 path: group sums and int8 values. */
static void prepare_q8_token(const gm_weight *w, const float *x, int i, gm_matmul_scratch *scratch) {
    size_t cols = (size_t)w->cols;
    group_sums(x + i * cols, w->cols, w->group_size, scratch->xsum + (size_t)i * (cols / (size_t)w->group_size));
    gm_mlx_quantize_x8(x + i * cols, w->cols, w->bits, (int8_t *)scratch->x8 + i * cols,
                       scratch->x8d + (size_t)i * gm_mlx_q8_dxv_floats(w->cols));
}

static void prepare_q8_rows(void *arg, int thread, int n_threads) {
    const matmul_task *t = arg;
    int begin, end;
    gm_split_range(t->n_tokens, 1, thread, n_threads, &begin, &end);
    for (int i = begin; i < end; i++) prepare_q8_token(t->w, t->x, i, t->scratch);
}

static void prepare_mlx_input(const gm_kernels *k, const gm_weight *w, const float *x, gm_matmul_scratch *scratch) {
    if (takes_q8(w, scratch)) {
        prepare_q8_token(w, x, 0, scratch);
        return;
    }
    group_sums(x, w->cols, w->group_size, scratch->xsum);
    k->mlx_prep_x(x, w->cols, w->bits, w->group_size, scratch->xp);
}

void gm_matmul_many(gm_pool *pool, const gm_kernels *k, const gm_weight *const *w, int n, const float *x,
                    int n_tokens, float *const *y, gm_matmul_scratch *scratch) {
    int fuse = n_tokens == 1 && n <= GM_MATMUL_MAX_MANY;
    const gm_weight *mlx = NULL;
    for (int i = 0; i < n && fuse; i++) {
        if (w[i]->llamacpp || w[i]->cols != w[0]->cols) fuse = 0;
        if (w[i]->kind != GM_W_MLX) continue;
        if (mlx && (w[i]->bits != mlx->bits || w[i]->group_size != mlx->group_size)) fuse = 0;
        mlx = w[i];
    }
    if (!fuse) {
        for (int i = 0; i < n; i++) gm_matmul(pool, k, w[i], x, n_tokens, y[i], scratch);
        return;
    }
    if (mlx) prepare_mlx_input(k, mlx, x, scratch);
    many_task m;
    m.n = n;
    m.total_rows = 0;
    for (int i = 0; i < n; i++) {
        matmul_task t = {k, w[i], x, 1, y[i], scratch, 0, 0, NULL, takes_q8(w[i], scratch)};
        m.part[i] = t;
        m.total_rows += w[i]->rows;
    }
    gm_pool_run(pool, matmul_many_rows, &m);
}

void gm_matmul(gm_pool *pool, const gm_kernels *k, const gm_weight *w, const float *x, int n_tokens, float *y,
               gm_matmul_scratch *scratch) {
    if (takes_q8(w, scratch)) {
        matmul_task t = {k, w, x, n_tokens, y, scratch, 0, 0, NULL, 1};
        if (n_tokens == 1)
            prepare_q8_token(w, x, 0, scratch);
        else
            gm_pool_run(pool, prepare_q8_rows, &t);
        gm_pool_run(pool, matmul_rows, &t);
        return;
    }
    if (w->kind == GM_W_MLX && n_tokens == 1) prepare_mlx_input(k, w, x, scratch);
    if (n_tokens >= GM_MATMUL_GEMM_MIN_TOKENS && !w->llamacpp) {
        /* prefill: a cache-blocked GEMM decodes each weight once per call, not once per token */
        gm_gemm_args g = {n_tokens, w->rows, w->cols, x, (size_t)w->cols, 0, w, 0, y, (size_t)w->rows, 0};
        gm_gemm(pool, k, &g, scratch->per_thread);
        return;
    }
    matmul_task t = {k, w, x, n_tokens, y, scratch, 0, 0, NULL, 0};
    if (gm_matmul_lanes_ok(w)) {
        t.xl = x;
        size_t n = (size_t)n_tokens * (size_t)w->cols;
        if (w->kind == GM_W_F16)
            for (size_t i = 0; i < n; i++) scratch->xf[i] = gm_f16_to_f32(gm_f32_to_f16(x[i]));
        if (w->kind == GM_W_BF16)
            for (size_t i = 0; i < n; i++) scratch->xf[i] = gm_bf16_round(x[i]);
        if (w->kind != GM_W_F32) t.xl = scratch->xf;
    }
    if (w->kind == GM_W_GGML && w->llamacpp && (t.act_type = gm_q8_act_type(w->ggml_type)) != 0) {
        t.xq_row_bytes = gm_q8_row_bytes(t.act_type, w->cols);
        if (n_tokens == 1)
            quantize_rows(&t, 0, 1);
        else
            gm_pool_run(pool, quantize_rows, &t);
    }
    gm_pool_run(pool, matmul_rows, &t);
}
