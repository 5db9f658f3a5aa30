/* model.h - the loaded model, shared by the architecture files and the session.
 * Matrices are gm_weight views into the mmapped checkpoint; only the small
 * norm vectors are widened to f32 (with Gemma's 1+w folded in). */
#ifndef GM_MODEL_H
#define GM_MODEL_H

#include "gemma.h"
#include "io/modeldir.h"
#include "io/weights.h"
#include "kernels/matmul.h"
#include "models/siglip.h"

typedef struct {
    gm_weight q, k, v, o;
    gm_weight gate, up, down;
    float *input_norm, *post_attn_norm, *pre_ff_norm, *post_ff_norm;   /* [hidden], 1 + w */
    float *q_norm, *k_norm;                                            /* [head_dim], 1 + w */
    float *rope_inv_freq;                                              /* [head_dim / 2] */
    int sliding;
    /* Gemma 4 */
    gm_weight ple_gate, ple_proj;      /* per_layer_input_gate [P, d], per_layer_projection [d, P] */
    float *post_ple_norm;              /* [hidden] */
    float *scalar;                     /* [1] layer_scalar */
    int donor;                         /* a KV-shared layer reads this layer's cache */
} gm_layer;

struct gemma_model {
    gm_modeldir md;
    const gm_config *cfg;          /* = &md.cfg */
    gm_weight embed, lm_head;      /* lm_head is a copy of embed's view when tied */
    gm_layer *layers;
    float *final_norm;
    gm_weight embed_ple, ple_proj;     /* Gemma 4: embed_tokens_per_layer, per_layer_model_projection */
    float *ple_norm;                   /* Gemma 4: per_layer_projection_norm [P] */
    gm_row_reader ple_rows;            /* Gemma 4: embed_ple's rows read from its file (io/weights.h) */
    float embed_scale;             /* bf16(sqrt(hidden)) as the reference rounds it (LLAMACPP: sqrtf) */
    float *vectors;                /* one allocation for all norm and rope vectors */
    gemma_numerics numerics;       /* EXACT or LLAMACPP (AUTO resolved at load) */
    float *gelu_table;             /* LLAMACPP: ggml's GELU of every f16 value [65536] */
    int f16_inputs;                /* LLAMACPP with F16 matrices: sessions need matmul scratch xf */
    uint64_t weight_bytes;
    int max_cols;                  /* widest matrix row, for scratch sizing */
    gm_vision *vision;             /* the vision tower, or NULL (text only) */
    gm_mmproj *mmproj;             /* the mmproj file it lives in (GGUF models), or NULL */
    char description[768];
    gemma_allocator allocator;
};

/* Whether any text matrix multiplies prefill through the GEMM (session scratch sizing). */
int gm_model_uses_gemm(const gemma_model *m);

gemma_status gm_gemma3_bind(gemma_model *m, gemma_error *err);
gemma_status gm_gemma4_bind(gemma_model *m, gemma_error *err);
/* embed_tokens and the LM head: a separate head tensor if present, else tied (as the config must allow). */
gemma_status gm_bind_embed_and_head(gemma_model *m, const char *prefix, gemma_error *err);

#endif
