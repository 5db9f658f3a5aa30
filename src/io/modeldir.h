/* modeldir.h - a model on disk: a directory with config.json + safetensors
 * shards, or a GGUF file (or a directory holding one and no config.json).
 *
 * Finds the weight files (model.safetensors, the shards named by
 * model.safetensors.index.json, or every *.safetensors in the folder), maps
 * them, and checks the index against what the shards really hold.  A GGUF
 * file gives the same config and tensor set (io/gguf_model.h). */
#ifndef GM_MODELDIR_H
#define GM_MODELDIR_H

#include "io/config.h"
#include "io/safetensors.h"

struct gm_gguf_s;

typedef struct {
    char dir[1024];          /* the directory (for a GGUF: the file's directory) */
    char gguf_path[1024];    /* the GGUF file, "" for safetensors models */
    gm_config cfg;
    gm_tensor_set tensors;
    struct gm_gguf_s *gguf;  /* the open GGUF (its map holds the tensor data), or NULL */
} gm_modeldir;

gemma_status gm_modeldir_open(gm_modeldir *md, const char *path, gemma_error *err);
void gm_modeldir_close(gm_modeldir *md);
/* What messages name: the GGUF file, or the directory. */
static inline const char *gm_modeldir_source(const gm_modeldir *md) { return md->gguf_path[0] ? md->gguf_path : md->dir; }
/* How many GGUF model files dir holds (mmproj* ignored), counting to 2; the
 * first one's path goes to out. */
int gm_find_gguf_in_dir(const char *dir, char *out, size_t n);

#endif
