/* weights.h - binding checkpoint tensors to the matrices a model needs.
 *
 * Knows the naming layouts found in the wild and the MLX quantization rules
 * (a module is quantized iff <module>.scales exists), and checks every shape
 * against the config so a mismatched file fails at load with the tensor's
 * name, never at inference with a wild read. */
#ifndef GM_WEIGHTS_H
#define GM_WEIGHTS_H

#include "io/modeldir.h"
#include "kernels/matmul.h"

/* Bind module "<module>.weight" (+ .scales/.biases) as a [rows, cols] matrix. */
gemma_status gm_bind_matrix(const gm_modeldir *md, const char *module, int rows, int cols, gm_weight *out,
                            gemma_error *err);
/* Is "<module>.weight" present? */
int gm_has_module(const gm_modeldir *md, const char *module);
/* Bind a float vector "<name>" of n elements, widened into out[n] (plus `add`, e.g. 1 for Gemma's 1+w norms). */
gemma_status gm_bind_vector(const gm_modeldir *md, const char *name, int n, float add, float *out, gemma_error *err);

/* The text decoder's tensor-name prefix ("model.", "language_model.model.",
 * "model.language_model.") decided by where embed_tokens lives. */
gemma_status gm_find_text_prefix(const gm_modeldir *md, const char **prefix, gemma_error *err);

#endif
