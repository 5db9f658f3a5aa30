/* safetensors.h - memory-mapped safetensors files and a name -> tensor index.
 *
 * Format: u64 little-endian header length, a JSON header mapping names to
 * {dtype, shape, data_offsets}, then raw little-endian data.  Every field is
 * validated before use (header within the file, offsets within the data,
 * size consistent with dtype and shape, no overlaps), so a
 * corrupt or hostile file is an error naming the file and tensor, never a
 * crash.  Tensor data are pointers into the map; nothing is copied.  Data may
 * sit at any byte offset (MLX writes unaligned files), so readers use
 * unaligned loads. */
#ifndef GM_SAFETENSORS_H
#define GM_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "core/dtype.h"
#include "core/mapfile.h"
#include "gemma.h"

#define GM_MAX_DIMS 8
#define GM_DT_UNKNOWN GM_DT_COUNT

typedef struct {
    char *name;
    gm_dtype dtype;          /* GM_DT_UNKNOWN for types we do not read (kept so other tensors load) */
    char dtype_name[12];
    int ndim;
    int64_t shape[GM_MAX_DIMS];
    const uint8_t *data;
    size_t nbytes;
    int file;                /* index into gm_tensor_set.files */
    int ggml_type;           /* GGUF block-quantized tensors: the ggml type id, else -1 */
} gm_tensor;

typedef struct {
    gm_mapfile *files;
    int n_files;
    gm_tensor *tensors;
    size_t n_tensors, cap_tensors;
    uint32_t *slots;         /* open-addressing index: tensor index + 1, 0 = empty */
    size_t n_slots;
} gm_tensor_set;

/* Map `path` and add its tensors.  A name already present (in this or an
 * earlier file) is an error. */
gemma_status gm_tensors_add_file(gm_tensor_set *ts, const char *path, gemma_error *err);
/* Same, for a file already in memory; the set takes ownership of mf (also on failure). */
gemma_status gm_tensors_add_mapped(gm_tensor_set *ts, gm_mapfile mf, gemma_error *err);
const gm_tensor *gm_tensors_find(const gm_tensor_set *ts, const char *name);
/* Register a file whose tensors another reader (GGUF) parsed: takes ownership
 * of mf; returns its index for gm_tensor.file, or -1 on allocation failure. */
int gm_tensors_add_source(gm_tensor_set *ts, gm_mapfile mf);
/* Add one tensor (the name is copied); a repeated name is an error. */
gemma_status gm_tensors_add(gm_tensor_set *ts, const gm_tensor *t, gemma_error *err);
const char *gm_tensors_file_of(const gm_tensor_set *ts, const gm_tensor *t);
void gm_tensors_free(gm_tensor_set *ts);

int64_t gm_tensor_numel(const gm_tensor *t);
/* "[2048, 320]" into buf, for messages */
const char *gm_shape_str(const int64_t *shape, int ndim, char *buf, size_t n);

#endif
