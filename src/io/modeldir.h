/* modeldir.h - a model directory on disk: config.json + safetensors shards.
 *
 * Finds the weight files (model.safetensors, the shards named by
 * model.safetensors.index.json, or every *.safetensors in the folder), maps
 * them, and checks the index against what the shards really hold. */
#ifndef GM_MODELDIR_H
#define GM_MODELDIR_H

#include "io/config.h"
#include "io/safetensors.h"

typedef struct {
    char dir[1024];
    gm_config cfg;
    gm_tensor_set tensors;
} gm_modeldir;

gemma_status gm_modeldir_open(gm_modeldir *md, const char *path, gemma_error *err);
void gm_modeldir_close(gm_modeldir *md);

#endif
