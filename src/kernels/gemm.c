/* gemm.c - see gemm.h.
 *
 * Loop order (per thread, over its block of C): NC columns of B, then KC of
 * depth (B block packed: KC x NC, widened from the stored kind), then MC rows
 * of A (packed: MC x KC), then NR-wide B micro-panels, then MR-high A
 * micro-panels, each one call of the register tile.  Only the first KC step
 * overwrites C unless the caller accumulates.  With NC covering the thread's
 * columns the NC loop runs once, so each A block is packed once. */
#include "kernels/gemm.h"
#include "quant/ggml_blocks.h"

#include <stdint.h>
#include <string.h>

/* ------------------------------------------------------------- buffers */

static size_t round16(size_t n) { return (n + 15) & ~(size_t)15; }

/* Layout of a thread's buffer: A block, B block, one widened row, MLX group scales/biases. */
typedef struct {
    float *a, *b, *row, *groups;
} bufs_t;

/* The widening area: a whole [K, N] row, or NR rows of KC values widened before their transpose. */
static size_t wide_floats(int max_row) {
    size_t w = (size_t)GM_GEMM_MAX_NR * GM_GEMM_KC;
    return (size_t)max_row > w ? (size_t)max_row : w;
}

static bufs_t carve(float *buf, int max_row) {
    bufs_t t;
    t.a = buf;
    t.b = t.a + round16((size_t)GM_GEMM_MC * GM_GEMM_KC);
    t.row = t.b + round16((size_t)GM_GEMM_KC * GM_GEMM_NC);
    t.groups = t.row + round16(wide_floats(max_row));
    return t;
}

size_t gm_gemm_buf_floats(int max_row) {
    size_t wide = wide_floats(max_row);
    return round16((size_t)GM_GEMM_MC * GM_GEMM_KC) + round16((size_t)GM_GEMM_KC * GM_GEMM_NC) + round16(wide) +
           round16(2 * (wide / 32 + 1));
}

/* ---------------------------------------------------------- widening */

/* Values [c0, c0+n) of row `row` of w as f32: a pointer into the weight when
 * it is aligned f32 already, else widened into tmp.  MLX and GGUF rows start
 * at a group / block boundary (c0 a multiple of KC, or 0). */
static const float *widen(const gm_kernels *k, const gm_weight *w, int row, int c0, int n, float *tmp,
                          float *groups) {
    const uint8_t *base = w->data + (size_t)row * w->row_bytes;
    switch (w->kind) {
    case GM_W_F32: {
        const uint8_t *p = base + (size_t)c0 * 4;
        if (((uintptr_t)p & 3) == 0) return (const float *)(const void *)p;
        memcpy(tmp, p, (size_t)n * sizeof(float));   /* mmapped MLX data may sit at any byte */
        return tmp;
    }
    case GM_W_BF16: k->bf16_to_f32(base + (size_t)c0 * 2, tmp, n); return tmp;
    case GM_W_F16: k->f16_to_f32(base + (size_t)c0 * 2, tmp, n); return tmp;
    case GM_W_MLX: {
        int gs = w->group_size, g0 = c0 / gs, ng = (n + gs - 1) / gs;
        size_t off = (size_t)row * (size_t)(w->cols / gs) + (size_t)g0;
        float *s = groups, *b = groups + ng;
        for (int g = 0; g < ng; g++) {
            s[g] = gm_load_float(w->scales, w->qdtype, off + (size_t)g);
            b[g] = gm_load_float(w->biases, w->qdtype, off + (size_t)g);
        }
        k->dequant_mlx(base + (size_t)c0 * (size_t)w->bits / 8, s, b, w->bits, gs, tmp, n);
        return tmp;
    }
    case GM_W_GGML:
        k->dequant_ggml(w->ggml_type, base + gm_ggml_row_bytes(w->ggml_type, c0), tmp, n);
        return tmp;
    }
    return tmp;
}

static int partial_rows_ok(const gm_weight *w) { return w->kind == GM_W_F32 || w->kind == GM_W_F16 || w->kind == GM_W_BF16; }

/* ------------------------------------------------------------- packing */

/* B block [n0, n0+nc) x [k0, k0+kc) into NR-wide panels: bp[(j/NR)*kc*NR + k*NR + j%NR]. */
static void pack_b(const gm_kernels *k, const gm_gemm_args *g, int n0, int nc, int k0, int kc, bufs_t *t) {
    const int NR = k->gemm_nr;
    const gm_weight *w = g->b;
    float *bp = t->b;
    if (!g->b_kn) {
        /* aligned f32 rows transpose straight from the weight; other kinds are widened first */
        int direct = w->kind == GM_W_F32 && ((uintptr_t)w->data & 3) == 0 && (w->row_bytes & 3) == 0;
        for (int jp = 0; jp < nc; jp += NR) {
            int nb = nc - jp < NR ? nc - jp : NR;
            float *dst = bp + (size_t)jp * kc;
            if (direct) {
                const float *src = (const float *)(const void *)(w->data + (size_t)(n0 + jp) * w->row_bytes) + k0;
                k->pack_t(src, w->row_bytes / 4, nb, kc, NR, dst);
                continue;
            }
            for (int j = 0; j < nb; j++) {
                float *row = t->row + (size_t)j * kc;
                const float *src = widen(k, w, n0 + jp + j, k0, kc, row, t->groups);
                if (src != row) memcpy(row, src, (size_t)kc * sizeof(float));
            }
            k->pack_t(t->row, (size_t)kc, nb, kc, NR, dst);
        }
        return;
    }
    /* [K, N]: a row per depth step; quantized rows are widened whole (groups run along N) */
    int whole = !partial_rows_ok(w);
    for (int kk = 0; kk < kc; kk++) {
        const float *src = whole ? widen(k, w, k0 + kk, 0, w->cols, t->row, t->groups) + n0
                                 : widen(k, w, k0 + kk, n0, nc, t->row, t->groups);
        for (int jp = 0; jp < nc; jp += NR) {
            int nb = nc - jp < NR ? nc - jp : NR;
            float *dst = bp + (size_t)jp * kc + (size_t)kk * NR;
            memcpy(dst, src + jp, (size_t)nb * sizeof(float));
            for (int j = nb; j < NR; j++) dst[j] = 0.0f;
        }
    }
}

/* A block [m0, m0+mc) x [k0, k0+kc) into MR-high panels: ap[(i/MR)*kc*MR + k*MR + i%MR]. */
static void pack_a(const gm_kernels *k, const gm_gemm_args *g, int m0, int mc, int k0, int kc, float *ap) {
    const int MR = k->gemm_mr;
    for (int ip = 0; ip < mc; ip += MR) {
        int mb = mc - ip < MR ? mc - ip : MR;
        float *dst = ap + (size_t)ip * kc;
        if (!g->a_trans) {
            k->pack_t(g->a + (size_t)(m0 + ip) * g->lda + k0, g->lda, mb, kc, MR, dst);
        } else {
            for (int kk = 0; kk < kc; kk++) {
                const float *src = g->a + (size_t)(k0 + kk) * g->lda + m0 + ip;
                memcpy(dst + (size_t)kk * MR, src, (size_t)mb * sizeof(float));
                for (int i = mb; i < MR; i++) dst[(size_t)kk * MR + i] = 0.0f;
            }
        }
    }
}

/* ---------------------------------------------------------------- driver */

void gm_gemm_block(const gm_kernels *k, const gm_gemm_args *g, int m0, int m1, int n0, int n1, float *buf) {
    const int MR = k->gemm_mr, NR = k->gemm_nr;
    int max_row = g->b_kn && !partial_rows_ok(g->b) ? g->b->cols : 0;
    bufs_t t = carve(buf, max_row);
    if (m0 >= m1 || n0 >= n1) return;
    if (g->K == 0) {
        if (!g->accumulate)
            for (int i = m0; i < m1; i++) memset(g->c + (size_t)i * g->ldc + n0, 0, (size_t)(n1 - n0) * sizeof(float));
        return;
    }
    for (int jc = n0; jc < n1; jc += GM_GEMM_NC) {
        int nc = n1 - jc < GM_GEMM_NC ? n1 - jc : GM_GEMM_NC;
        for (int pc = 0; pc < g->K; pc += GM_GEMM_KC) {
            int kc = g->K - pc < GM_GEMM_KC ? g->K - pc : GM_GEMM_KC;
            int acc = g->accumulate || pc > 0;
            pack_b(k, g, jc, nc, pc, kc, &t);
            for (int ic = m0; ic < m1; ic += GM_GEMM_MC) {
                int mc = m1 - ic < GM_GEMM_MC ? m1 - ic : GM_GEMM_MC;
                pack_a(k, g, ic, mc, pc, kc, t.a);
                for (int jr = 0; jr < nc; jr += NR) {
                    int nb = nc - jr < NR ? nc - jr : NR;
                    const float *bp = t.b + (size_t)jr * kc;
                    for (int ir = 0; ir < mc; ir += MR) {
                        int mb = mc - ir < MR ? mc - ir : MR;
                        float *c = g->c + (size_t)(ic + ir) * g->ldc + jc + jr;
                        k->gemm_f32(kc, t.a + (size_t)ir * kc, bp, c, g->ldc, mb, nb, acc);
                    }
                }
            }
        }
    }
}

typedef struct {
    const gm_kernels *k;
    const gm_gemm_args *g;
    float *const *bufs;
    int tm, tn;               /* thread grid: tm row blocks x tn column blocks */
} gemm_task;

static void gemm_worker(void *arg, int thread, int n_threads) {
    const gemm_task *t = arg;
    if (thread >= t->tm * t->tn) return;
    int m0, m1, n0, n1;
    gm_split_range(t->g->M, t->k->gemm_mr, thread / t->tn, t->tm, &m0, &m1);
    gm_split_range(t->g->N, t->k->gemm_nr, thread % t->tn, t->tn, &n0, &n1);
    gm_gemm_block(t->k, t->g, m0, m1, n0, n1, t->bufs[thread]);
    (void)n_threads;
}

void gm_gemm(gm_pool *pool, const gm_kernels *k, const gm_gemm_args *g, float *const *bufs) {
    int T = gm_pool_size(pool);
    if (T == 1) {
        gm_gemm_block(k, g, 0, g->M, 0, g->N, bufs[0]);
        return;
    }
    /* Threads split the longer side: every thread packs all of the other
     * operand for itself, so that one should be the smaller (the vision
     * tower's M = 4096 patches against N <= 4304 weight rows: split M unless
     * N is larger; a projection's few rows against 2560 columns: split N).
     * Each share keeps at least 4 tiles, else fewer threads work on it. */
    int tn = 1;
    if (g->N > g->M)
        for (int d = T; d >= 1; d--)
            if (T % d == 0 && (g->N / d >= 4 * k->gemm_nr || d == 1)) {
                tn = d;
                break;
            }
    int tm = T / tn;
    while (tm > 1 && g->M / tm < 4 * k->gemm_mr) tm--;
    gemm_task t = {k, g, bufs, tm, tn};
    gm_pool_run(pool, gemm_worker, &t);
}
