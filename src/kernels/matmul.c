/* matmul.c - see matmul.h.
 *
 * Threads split the output rows.  One token (decode) dots each packed row
 * with x directly; several tokens (prefill) widen each row once into f32 and
 * reuse it for all of them, so the unpacking cost is paid once per row. */
#include "kernels/matmul.h"

#include <string.h>

size_t gm_matmul_scratch_floats(int max_cols) {
    /* a widened row + f32 scales + f32 biases, rounded up to whole cache lines */
    size_t n = (size_t)max_cols + 2 * ((size_t)max_cols / 32 + 16);
    return (n + 15) & ~(size_t)15;
}

size_t gm_matmul_xsum_floats(int max_tokens, int max_cols) {
    return (size_t)max_tokens * ((size_t)max_cols / 32 + 1);
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
} matmul_task;

static void matmul_rows(void *arg, int thread, int n_threads) {
    const matmul_task *t = arg;
    const gm_weight *w = t->w;
    const gm_kernels *k = t->k;
    int begin, end;
    gm_split_range(w->rows, 8, thread, n_threads, &begin, &end);
    float *buf = t->scratch->per_thread[thread];
    int cols = w->cols, T = t->n_tokens;
    int groups = w->kind == GM_W_MLX ? cols / w->group_size : 0;
    float *scales = buf + cols, *biases = scales + groups;

    for (int o = begin; o < end; o++) {
        const uint8_t *row = w->data + (size_t)o * w->row_bytes;
        if (T == 1) {
            float v;
            switch (w->kind) {
            case GM_W_F32: v = k->dot_wf32(row, t->x, cols); break;
            case GM_W_BF16: v = k->dot_bf16(row, t->x, cols); break;
            case GM_W_F16: v = k->dot_f16(row, t->x, cols); break;
            case GM_W_GGML: v = k->dot_ggml(w->ggml_type, row, t->x, cols); break;
            default:
                widen_scales(k, w, o, scales, biases);
                v = k->dot_mlx(row, scales, biases, t->scratch->xsum, w->bits, w->group_size, t->x, cols);
                break;
            }
            t->y[o] = v;
            continue;
        }
        gm_weight_row(k, w, o, buf, scales);   /* widen once (copy for f32: alignment), reuse T times */
        for (int i = 0; i < T; i++) t->y[(size_t)i * w->rows + o] = k->dot_f32(buf, t->x + (size_t)i * cols, cols);
    }
}

void gm_matmul(gm_pool *pool, const gm_kernels *k, const gm_weight *w, const float *x, int n_tokens, float *y,
               gm_matmul_scratch *scratch) {
    if (w->kind == GM_W_MLX && n_tokens == 1) {
        int gs = w->group_size;
        for (int g = 0; g * gs < w->cols; g++) {
            float s = 0.0f;
            for (int i = 0; i < gs; i++) s += x[g * gs + i];
            scratch->xsum[g] = s;
        }
    }
    matmul_task t = {k, w, x, n_tokens, y, scratch};
    gm_pool_run(pool, matmul_rows, &t);
}
