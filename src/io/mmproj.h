/* mmproj.h - llama.cpp "mmproj" GGUF files: the Gemma 3 / MedGemma vision tower and projector.
 *
 * People who run Gemma 3 4B+ or MedGemma with llama.cpp have a text GGUF plus
 * a second GGUF (`--mmproj`, usually F16, sometimes Q8_0) holding the SigLIP
 * encoder and the Gemma 3 multimodal projector.  This file reads that second
 * file into a vision config and a tensor set under the Hugging Face names
 * (transformers < 4.52 spelling), so the vision code binds one set of names
 * whatever the source (HF safetensors, MLX, or this).  Tensors point into the
 * map; nothing is copied or converted.
 *
 * What the converters write (read in llama.cpp: convert_hf_to_gguf.py class
 * Gemma3VisionModel(MmprojModel) and ModelBase.prepare_tensors; gguf-py
 * constants.py Keys.Clip / Keys.ClipVision and tensor_mapping.py; tools/mtmd/
 * clip-impl.h KEY_* / TN_* and clip.cpp load_hparams / load_tensors / the
 * PROJECTOR_TYPE_GEMMA3 graph; the first converter, examples/llava/
 * gemma3_convert_encoder_to_gguf.py, whose files are still on the Hub):
 *
 *   general.architecture "clip"; clip.projector_type "gemma3" (files with
 *   several modalities use clip.vision.projector_type; clip.cpp reads the
 *   first, then the second); clip.vision.{image_size, patch_size,
 *   embedding_length, feed_forward_length, block_count, attention.head_count,
 *   attention.layer_norm_epsilon, projection_dim (= text hidden size),
 *   image_mean[3], image_std[3]}; clip.use_gelu true; clip.has_vision_encoder
 *   true; clip.vision.projector.scale_factor only when the pooling is not 4
 *   (llama.cpp's test model tinygemma3), otherwise clip.cpp assumes 4.
 *
 *   v.patch_embd.{weight,bias}, v.position_embd.weight,
 *   v.blk.N.{attn_q,attn_k,attn_v,attn_out,ln1,ln2,ffn_up,ffn_down}.{weight,bias},
 *   v.post_ln.{weight,bias}, mm.input_projection.weight, mm.soft_emb_norm.weight.
 *
 * The layout differences a consumer must know (also in gm_mmproj.layout):
 *
 *   - mm_soft_emb_norm.weight holds 1 + w: the converter adds 1 (Gemma3RMSNorm
 *     scales by 1 + w; clip.cpp multiplies by the stored vector).  Multiply by
 *     stored + layout.soft_emb_norm_add (0 here, 1 for HF/MLX checkpoints).
 *     No other norm is changed: the SigLIP LayerNorms are plain (w, b).
 *   - mm_input_projection_weight is NOT transposed: shape [vision hidden, text
 *     hidden] (1152 x 2560), used as out = x @ M as in HF (clip.cpp transposes
 *     it when building its graph).  Each of the 1152 stored rows holds the
 *     2560 outputs' weights for one input channel, so a row-dot matvec needs
 *     the transpose; an axpy over rows does not.  Always F16 from the current
 *     converter (issue #13025), whatever --outtype.
 *   - patch_embedding.weight keeps PyTorch's OIHW [hidden, 3, patch, patch]
 *     (ggml ne = [kw, kh, c, o]); MLX checkpoints hold OHWI instead.  F32 (the
 *     converter forces '.embeddings.' tensors, and the position table, to F32).
 *   - fc1 / fc2: the current converter writes fc1 as ffn_up and fc2 as
 *     ffn_down; the first converter wrote them swapped.  Like clip.cpp, a file
 *     whose ffn_down has the fc1 shape ([ffn, hidden], ne[0] == hidden) is
 *     read as swapped (layout.ffn_swapped); the names here are always right.
 *     (When ffn == hidden the shapes cannot tell, and the names are taken as
 *     written.)
 *   - Linear weights are [out, in] as in PyTorch; q/k/v are separate, with
 *     biases, and not permuted (SigLIP has no RoPE).
 *
 * Tensor types, as for every GGUF tensor in a gm_tensor_set: F32/F16/BF16
 * data get dtype GM_DT_F32/F16/BF16 and ggml_type -1; block types (Q8_0, ...)
 * get dtype GM_DT_UNKNOWN and ggml_type = the ggml type id; dtype_name is the
 * stored ggml type name ("F16", "Q8_0") either way.  Shapes are in PyTorch
 * order (the reverse of ggml's ne).  1-D tensors must be F32/F16/BF16; the
 * others may be any type gm_ggml_type_supported accepts.  The set holds
 * exactly 7 + 16 * layers tensors; other tensors in the file are ignored. */
#ifndef GM_MMPROJ_H
#define GM_MMPROJ_H

#include <stdint.h>

#include "core/mapfile.h"
#include "gemma.h"
#include "io/safetensors.h"

#define GM_MMPROJ_MAX_LAYERS 256
#define GM_MMPROJ_DEFAULT_POOL 4   /* clip.cpp's default for PROJECTOR_TYPE_GEMMA3 */

typedef struct {
    int image_size;           /* clip.vision.image_size (896) */
    int patch_size;           /* clip.vision.patch_size (14) */
    int hidden;               /* clip.vision.embedding_length (1152) */
    int ffn;                  /* clip.vision.feed_forward_length (4304) */
    int layers;               /* clip.vision.block_count (27) */
    int heads;                /* clip.vision.attention.head_count (16) */
    int head_dim;             /* hidden / heads (72) */
    float eps;                /* clip.vision.attention.layer_norm_epsilon: every LayerNorm incl. post_layernorm,
                               * and the projector's RMSNorm (1e-6) */
    float mean[3], std[3];    /* clip.vision.image_mean / image_std (0.5): pixel = (v/255 - mean) / std */
    int projection_dim;       /* clip.vision.projection_dim = text hidden size (2560) */
    int patches_per_side;     /* image_size / patch_size (64) */
    int n_patches;            /* patches_per_side^2 (4096) = position_embedding rows */
    int pool;                 /* average-pool kernel and stride over the patch grid:
                               * clip.vision.projector.scale_factor, else 4 */
    int tokens_per_side;      /* patches_per_side / pool (16) */
    int tokens_per_image;     /* tokens_per_side^2 (256) */
} gm_vision_config;

typedef enum {
    GM_PATCH_OIHW = 0,        /* [hidden, 3, kh, kw]: HF / PyTorch / GGUF */
    GM_PATCH_OHWI = 1         /* [hidden, kh, kw, 3]: MLX */
} gm_patch_layout;

/* How the stored tensors relate to the HF modules (see the file comment). */
typedef struct {
    gm_patch_layout patch;    /* GGUF: OIHW */
    int proj_transposed;      /* 0: mm_input_projection_weight is [hidden, projection_dim], out = x @ M (all sources) */
    float soft_emb_norm_add;  /* RMSNorm multiplier = stored + this: GGUF 0 (1 + w stored), HF/MLX 1 */
    int ffn_swapped;          /* 1: a legacy file named fc1 ffn_down (already undone in the names) */
} gm_vision_layout;

typedef struct {
    char *path;
    gm_vision_config cfg;
    gm_vision_layout layout;
    int file_type;            /* general.file_type (1 = F16, 7 = Q8_0), -1 if absent (legacy files) */
    gm_tensor_set ts;         /* HF names -> views into the map; owns the map */
} gm_mmproj;

/* Open and validate `path`.  Errors are one line naming the file and the key
 * or tensor: wrong architecture (e.g. a text GGUF), a projector other than
 * gemma3 (GEMMA_ERR_UNSUPPORTED), missing keys or tensors, shapes that do
 * not match the config, unsupported types.  On failure out is left empty
 * (gm_mmproj_close is still safe). */
gemma_status gm_mmproj_open(gm_mmproj *out, const char *path, gemma_error *err);
/* Same for a file already in memory (tests, fuzzing); out takes ownership of mf, also on failure. */
gemma_status gm_mmproj_open_mapped(gm_mmproj *out, gm_mapfile mf, gemma_error *err);
void gm_mmproj_close(gm_mmproj *m);

#endif
