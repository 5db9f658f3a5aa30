/* mapfile.h - read-only memory maps of weight files.
 * Weights are never copied: tensors are pointers into these maps, so a 3 GB
 * checkpoint costs page cache, not heap, and loads in milliseconds. */
#ifndef GM_MAPFILE_H
#define GM_MAPFILE_H

#include <stddef.h>
#include "gemma.h"

typedef struct {
    const unsigned char *data;
    size_t size;
    char *path;
    int is_mapped;   /* 0: data is borrowed memory (tests, fuzzing), not unmapped on close */
} gm_mapfile;

gemma_status gm_mapfile_open(gm_mapfile *mf, const char *path, gemma_error *err);
void gm_mapfile_close(gm_mapfile *mf);
/* Read a whole (small) file into a NUL-terminated heap buffer, refusing files larger than max_bytes. */
gemma_status gm_read_file(const char *path, size_t max_bytes, char **out, size_t *len, gemma_error *err);

#endif
