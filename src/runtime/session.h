/* session.h - one conversation's state: KV cache, activations, threads.
 * Everything a forward step touches is allocated here, once, at creation;
 * decoding a token allocates nothing. */
#ifndef GM_SESSION_H
#define GM_SESSION_H

#include "core/threadpool.h"
#include "kernels/matmul.h"
#include "models/model.h"
#include "runtime/kvcache.h"

#define GM_ATT_LANE_ROWS 66

struct gemma_session {
    gemma_model *model;
    const gm_kernels *k;
    gm_pool *pool;
    int n_threads;
    gm_kvcache kv;
    int n_ctx, n_batch, pos;
    int n_rewind;    /* tokens the sliding rings can go back (0 if they cannot) */
    gemma_kv_type kv_type;   /* resolved: F32, F16 or BF16 (s->kv.dtype) */

    /* activations for up to n_batch tokens */
    float *x;        /* [n_batch, hidden] residual stream */
    float *xb;       /* [n_batch, hidden] normed input / sublayer output */
    float *q;        /* [n_batch, n_heads * head_dim] */
    float *kn, *vn;  /* [n_batch, kv_dim] this step's keys and values (Gemma 4: [2][n_batch, kv_dim], by layer type) */
    /* A half-precision cache: kn / vn as the cache stores them (f16 / bf16 bits, same layout), which
     * attention reads for this step's own positions; allocated through the float buffer table. */
    union { float *kh_buf; uint16_t *kh; };
    union { float *vh_buf; uint16_t *vh; };
    float *att;      /* [n_batch, n_heads * head_dim] */
    float *gate, *up;/* [n_batch, intermediate] */
    float *ple;      /* Gemma 4: [n_batch, n_layers * ple_dim] this step's per-layer inputs */
    float *ple_gate; /* Gemma 4: [n_batch, ple_dim] */
    float *ple_raw;  /* Gemma 4: one stored row of the per-layer table (bytes, read with pread) */
    float *scores;   /* [n_threads, n_ctx] attention weights */
    float *att_lanes;/* LLAMACPP: [n_threads, GM_ATT_LANE_ROWS, head_dim] the V product's 64 lane
                        accumulators, the f16-rounded query and one K or V row widened from a half cache */
    /* this step's images (gemma_session_eval_mm), read by the forward pass */
    const float *step_embeds;  /* [image tokens of the step, hidden] replacing their embeddings */
    int step_mm;               /* 1: att_first/att_last hold this step's image runs */
    int *att_first, *att_last; /* [n_batch] a token of an image run also sees its run: first..last (absolute) */
    gm_vision_scratch vision;  /* allocated by the first gemma_session_encode_images */
    gm_matmul_scratch mm;
    float *mm_buffers;
    gemma_allocator allocator;
};

/* One batched step of at most n_batch tokens at positions pos.. (no checks;
 * with s->step_mm, tokens equal to the model's image token take rows of
 * s->step_embeds and attend to their image run). */
void gm_gemma3_forward(gemma_session *s, const int32_t *tokens, int n, gemma_logits_mode mode, float *logits);
void gm_gemma4_forward(gemma_session *s, const int32_t *tokens, int n, gemma_logits_mode mode, float *logits);

#endif
