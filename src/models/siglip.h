/* siglip.h - the Gemma 3 / MedGemma vision encoder: SigLIP tower + multimodal projector.
 *
 * Pixels in, soft tokens out: per image, mm_tokens_per_image (256) vectors of
 * the text hidden size, exactly transformers'
 * Gemma3ForConditionalGeneration.get_image_features (vision_tower ->
 * last_hidden_state -> multi_modal_projector), in f32.  The lead splices them
 * into the prompt (spec section 3.6); preprocessing (decode, resize,
 * normalize) happens before, elsewhere.
 *
 * Weights bind from a model directory (Hub / transformers-5 / MLX names, any
 * stored kind, OIHW or OHWI conv) or from a llama.cpp mmproj GGUF, and stay
 * mmapped: only norms and biases are widened.  One encode runs every big
 * product as a cache-blocked GEMM (kernels/gemm.h) on all pool threads and
 * allocates nothing: its scratch is sized from the config once. */
#ifndef GM_SIGLIP_H
#define GM_SIGLIP_H

#include <stddef.h>

#include "core/threadpool.h"
#include "gemma.h"
#include "io/mmproj.h"
#include "io/modeldir.h"
#include "io/vision_config.h"
#include "kernels/matmul.h"

#define GM_VISION_MAX_THREADS 256
/* Attention query rows per task: a multiple of every kernel table's tile
 * (12 x 32, 6 x 16, 8 x 12, 4 x 8), so the score and value products tile exactly. */
#define GM_VISION_QBLOCK 96
/* Keys per online-softmax step of attention: a multiple of every table's
 * gemm_mr, so key panels never straddle two blocks; its keys, values and
 * 96 queries' scores (~300 KB) fit a 1 MB L2. */
#define GM_VISION_KBLOCK 288

typedef struct {
    gm_weight q, k, v, o, fc1, fc2;                 /* Linear weights [out, in] */
    const float *ln1_w, *ln1_b, *ln2_w, *ln2_b;
    const float *q_b, *k_b, *v_b, *o_b, *fc1_b, *fc2_b;
} gm_vision_layer;

typedef struct {
    gm_vision_config cfg;
    gm_vision_layout layout;
    gm_weight patch;            /* [hidden, 3 p p]: each row the conv kernel flattened in layout.patch order */
    gm_weight pos;              /* position_embedding [n_patches, hidden] */
    gm_weight proj;             /* mm_input_projection_weight as stored: [hidden, projection_dim] (x @ M) */
    const float *patch_b, *post_w, *post_b;
    const float *soft_norm;     /* the projector RMSNorm's multiplier, 1 + w */
    gm_vision_layer *layers;
    float *vectors;             /* every widened vector, one allocation */
    size_t weight_bytes;        /* bytes of the mapped weights bound */
    char source[1024];          /* directory or mmproj file, for messages */
} gm_vision;

/* Bind from a model directory whose config.json is a Gemma 3 multimodal
 * config.  Errors name the file and tensor (missing tower or projector,
 * shapes that disagree with the config, unsupported kinds). */
gemma_status gm_vision_bind(gm_vision *v, const gm_modeldir *md, gemma_error *err);
/* Bind from an open mmproj GGUF; m must outlive v (the weights are its map). */
gemma_status gm_vision_bind_mmproj(gm_vision *v, const gm_mmproj *m, gemma_error *err);
void gm_vision_free(gm_vision *v);

/* Everything one encode needs, carved from one allocation made through the
 * caller's allocator hooks (core/alloc.h), for pools of up to max_threads. */
typedef struct {
    void *mem;
    size_t bytes;
    int max_threads;
    gemma_allocator allocator;
    float *x, *y, *q, *k, *v, *h, *pooled;   /* per-image activations */
    float *threads;                          /* max_threads areas of thread_floats */
    size_t thread_floats;
    /* Optional: when the caller points this at GM_VISION_PHASES doubles,
     * every encode adds its wall seconds per phase (gm_vision_phase) there,
     * which is how bench/siglip_bench reports where the time goes. */
    double *phase_seconds;
} gm_vision_scratch;

typedef enum {
    GM_VISION_PHASE_EMBED,       /* im2col + patch GEMM + position */
    GM_VISION_PHASE_NORM,        /* the two LayerNorms per layer (and the post norm) */
    GM_VISION_PHASE_QKV,         /* bias rows + the three projections */
    GM_VISION_PHASE_ATTENTION,   /* scores, softmax, values */
    GM_VISION_PHASE_OUT,         /* out_proj + residual */
    GM_VISION_PHASE_FC1,
    GM_VISION_PHASE_GELU,
    GM_VISION_PHASE_FC2,         /* fc2 + residual */
    GM_VISION_PHASE_PROJECTOR,   /* pool, RMSNorm, projection */
    GM_VISION_PHASES
} gm_vision_phase;

/* Bytes gm_vision_scratch_alloc takes for v and max_threads; 0 if it does not fit a size_t. */
size_t gm_vision_scratch_bytes(const gm_vision *v, int max_threads);
gemma_status gm_vision_scratch_alloc(gm_vision_scratch *s, const gm_vision *v, int max_threads,
                                     const gemma_allocator *a, gemma_error *err);
void gm_vision_scratch_free(gm_vision_scratch *s);

/* pixels: [n_images, 3, S, S] f32, normalized (S = cfg.image_size).
 * out: [n_images, tokens_per_image, projection_dim].  Images are encoded one
 * after the other; nothing is allocated.  Fails (naming the problem) only on
 * bad arguments: a pool larger than the scratch, NULL buffers. */
gemma_status gm_vision_encode(const gm_vision *v, gm_pool *pool, const gm_kernels *k, const float *pixels,
                              int n_images, float *out, const gm_vision_scratch *s, gemma_error *err);

#endif
