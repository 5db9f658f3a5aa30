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
/* Done reading [p, p + n) of mf for now: the whole pages in it leave this
 * process's resident set (they stay in the page cache and are read again if
 * touched), so a converter can stream a checkpoint larger than RAM.  A no-op
 * for borrowed memory, ranges outside the map, or an OS without the advice. */
void gm_mapfile_drop(const gm_mapfile *mf, const void *p, size_t n);
/* A new read-only descriptor of mf's file (-1 if it is borrowed memory or cannot be opened). */
int gm_mapfile_open_fd(const gm_mapfile *mf);
/* pread all n bytes at off (retrying short reads and EINTR): 1 on success. */
int gm_pread_all(int fd, void *buf, size_t n, uint64_t off);
/* Read a whole (small) file into a NUL-terminated heap buffer, refusing files larger than max_bytes. */
gemma_status gm_read_file(const char *path, size_t max_bytes, char **out, size_t *len, gemma_error *err);

#endif
