/* gguf_model.h - a GGUF language-model file as config + tensors (see gguf_model.c). */
#ifndef GM_GGUF_MODEL_H
#define GM_GGUF_MODEL_H

#include "io/config.h"
#include "io/gguf.h"
#include "io/safetensors.h"

/* Open `path`, fill cfg from its metadata and add its tensors to ts under
 * Hugging Face names (the data stay in the map that *gguf owns: close it
 * after ts).  *gguf is set even on failure; gm_gguf_model_close is safe. */
gemma_status gm_gguf_model_open(gm_gguf **gguf, gm_config *cfg, gm_tensor_set *ts, const char *path,
                                gemma_error *err);
void gm_gguf_model_close(gm_gguf *g);

#endif
