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

/* Rows of a big, sparsely read matrix taken with pread instead of through the
 * map: Gemma 4's per-layer table (262144 x 8960, 1.3 GB at 4 bits), of which
 * a step reads one row per token.  A mapped row brings the page cache around
 * it into the resident set too (the kernel's fault-around, whatever madvise
 * says: ~128 KB per row measured), so a 4k-token prompt kept ~0.5 GB of the
 * table resident; read with pread, none of it is.  Tensors not in a mapped
 * file, and rows whose read fails, are read through the map. */
typedef struct {
    int opened;          /* gm_row_reader_open ran: fd[] are descriptors or -1 (a zeroed struct owns none) */
    int active;          /* 0: read through the map */
    int fd[3];           /* files of data, scales, biases (MLX) */
    uint64_t off[3];     /* file offset of row 0 of each */
    size_t len[3];       /* bytes per row of each (0: the part does not exist) */
    size_t row_bytes;    /* their sum: the raw buffer a row needs */
} gm_row_reader;

/* Prepare reading w's rows; failing to find or open its file is not an error (r stays inactive). */
void gm_row_reader_open(gm_row_reader *r, const gm_modeldir *md, const gm_weight *w);
void gm_row_reader_close(gm_row_reader *r);
/* Row `row` of w as floats into out (w->cols), staging the stored bytes in raw
 * (r->row_bytes); tmp as gm_weight_row's tmp_groups. */
void gm_row_reader_row(const gm_row_reader *r, const gm_kernels *k, const gm_weight *w, int row, uint8_t *raw,
                       float *out, float *tmp);

/* The text decoder's tensor-name prefix ("model.", "language_model.model.",
 * "model.language_model.") decided by where embed_tokens lives. */
gemma_status gm_find_text_prefix(const gm_modeldir *md, const char **prefix, gemma_error *err);

#endif
