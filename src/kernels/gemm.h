/* gemm.h - C = A · op(B) for many rows at once, cache-blocked around the
 * gm_kernels register tile (gemm_f32).
 *
 * The vision tower multiplies thousands of patch rows by every weight
 * (27 layers x 4096 patches ~ 5.5 TFLOP per MedGemma image), which the
 * row-by-row gm_matmul cannot do at speed.  This driver packs operands into
 * the tile's panel layout the way BLIS does (KC-deep blocks; A blocks of MC
 * rows that stay in L2, B micro-panels that stay in L1), widening weights of
 * any stored kind (f32, f16, bf16, MLX affine, GGUF blocks) to f32 once per
 * block, so a weight is decoded once per call whatever M is.
 *
 * A is f32 activations, [M, K] row-major (or [K, M] when a_trans: the
 * transpose of a stored matrix).  B is a gm_weight: [N, K] rows (a Linear's
 * weight, y = x · Wᵀ) or, with b_kn, [K, N] (y = x · W, e.g. the Gemma 3
 * projector); f32 activations are passed as GM_W_F32 views with their own
 * row stride. */
#ifndef GM_GEMM_H
#define GM_GEMM_H

#include <stddef.h>

#include "core/threadpool.h"
#include "kernels/kernels.h"
#include "kernels/matmul.h"

/* Block sizes: multiples of every table's gemm_mr (12, 6, 8, 4) and gemm_nr
 * (32, 16, 12, 8); KC a multiple of every MLX group and GGUF block (256).
 * A KC x NR B micro-panel (32 KB for AVX-512) stays in L1 while the MC/MR
 * A micro-panels of a block (MC x KC, 192 KB) stream past it from L2.  NC
 * covers a thread's whole share of N in the SigLIP shapes (N <= 4304), so
 * A is packed once per KC step instead of once per NC block (it was packed
 * N / 384 times, 11-16 % of a GEMM's time); the B block (KC x NC, 4.7 MB)
 * sits in L3 and each micro-panel of it is read from there once per MC rows.
 * Measured on Zen 5 (48 KB L1d, 1 MB L2) on the MedGemma shapes against MC
 * 96 / 384, KC 192 / 320 / 512 and NC 384 / 768 (within a few % of each
 * other once A is packed once; the shared machine's noise is about that).
 * Memory: a thread's buffer is MC x KC + KC x NC floats plus a widened row,
 * 5.0 MB (it was 0.9 MB with NC 384); weights are not repacked or copied at
 * load: B panels are widened per call, K x N values once per thread, 1/M of
 * the arithmetic. */
#ifndef GM_GEMM_MC   /* (overridable for tuning: -DGM_GEMM_MC=...) */
#define GM_GEMM_MC 192
#endif
#ifndef GM_GEMM_KC
#define GM_GEMM_KC 256
#endif
#ifndef GM_GEMM_NC
#define GM_GEMM_NC 4608
#endif
/* Bounds on any table's register tile (buffers are sized with them). */
#define GM_GEMM_MAX_MR 16
#define GM_GEMM_MAX_NR 64

typedef struct {
    int M, N, K;
    const float *a;           /* [M, K] with row stride lda, or [K, M] (stride lda) when a_trans */
    size_t lda;
    int a_trans;
    const gm_weight *b;       /* [N, K] (rows = N), or [K, N] when b_kn */
    int b_kn;
    float *c;                 /* [M, N], row stride ldc */
    size_t ldc;
    int accumulate;           /* 1: C += A·op(B); 0: C = A·op(B) */
} gm_gemm_args;

/* Floats of one thread's buffer: packed A and B blocks plus a widened
 * weight row of up to max_row values (the widest B row that is read whole:
 * K for [N, K] weights is read in KC pieces, a quantized [K, N] weight whole). */
size_t gm_gemm_buf_floats(int max_row);

/* C[m0:m1, n0:n1] on the calling thread; buf: gm_gemm_buf_floats floats, 64-byte aligned. */
void gm_gemm_block(const gm_kernels *k, const gm_gemm_args *g, int m0, int m1, int n0, int n1, float *buf);

/* The whole product on every pool thread; bufs[t] is thread t's buffer. */
void gm_gemm(gm_pool *pool, const gm_kernels *k, const gm_gemm_args *g, float *const *bufs);

#endif
