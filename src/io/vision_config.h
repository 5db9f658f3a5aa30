/* vision_config.h - the SigLIP vision tower's and Gemma 3 projector's sizes as data.
 *
 * Two sources give the same gm_vision_config (io/mmproj.h defines it): the
 * vision_config section of a Gemma 3 multimodal config.json (plus its
 * top-level mm_tokens_per_image and text_config.hidden_size), and the
 * clip.vision.* keys of a llama.cpp mmproj GGUF.  Either way the sizes are
 * checked for consistency here, once, so the tower can trust them: the patch
 * divides the image, the heads divide the hidden size, tokens_per_image is a
 * square whose side divides the patch grid (the projector's average pool),
 * and every buffer size the encoder derives fits in memory arithmetic. */
#ifndef GM_VISION_CONFIG_H
#define GM_VISION_CONFIG_H

#include <stddef.h>

#include "core/json.h"
#include "gemma.h"
#include "io/mmproj.h"

/* Gemma 3's image processor (preprocessor_config.json, not config.json):
 * pixel = (v/255 - 0.5) / 0.5.  config.json has no such fields, so the
 * safetensors path fills these. */
#define GM_VISION_DEFAULT_MEAN 0.5f
#define GM_VISION_DEFAULT_STD 0.5f

/* config.json text -> vc.  `path` is used in messages only. */
gemma_status gm_vision_config_parse(gm_vision_config *vc, const char *path, const char *text, size_t len,
                                    gemma_error *err);
/* The same from an already parsed config.json root object. */
gemma_status gm_vision_config_from_json(gm_vision_config *vc, const char *path, const gm_json *root,
                                        gemma_error *err);
/* From an open mmproj GGUF (its reader already checked the keys; this
 * applies the same consistency rules as config.json gets). */
gemma_status gm_vision_config_from_mmproj(gm_vision_config *vc, const gm_mmproj *m, gemma_error *err);

/* The consistency rules, on filled sizes; derives head_dim, patches_per_side,
 * n_patches, pool, tokens_per_side.  `what` prefixes field names in messages
 * ("vision_config." for config.json). */
gemma_status gm_vision_config_check(gm_vision_config *vc, const char *path, const char *what, gemma_error *err);

#endif
