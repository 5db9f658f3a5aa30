/* mapfile.c - see mapfile.h. */
#include "core/mapfile.h"
#include "core/error.h"

#include <errno.h>
#include <stdint.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

gemma_status gm_mapfile_open(gm_mapfile *mf, const char *path, gemma_error *err) {
    memset(mf, 0, sizeof *mf);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return gm_fail(err, GEMMA_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return gm_fail(err, GEMMA_ERR_IO, "%s: not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return gm_fail(err, GEMMA_ERR_FORMAT, "%s: file is empty", path);
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    int saved = errno;
    close(fd);
    if (p == MAP_FAILED) return gm_fail(err, GEMMA_ERR_IO, "%s: mmap failed: %s", path, strerror(saved));
    mf->data = p;
    mf->size = (size_t)st.st_size;
    mf->is_mapped = 1;
    mf->path = strdup(path);
    if (!mf->path) {
        munmap(p, mf->size);
        memset(mf, 0, sizeof *mf);
        return gm_fail(err, GEMMA_ERR_NOMEM, "%s: out of memory", path);
    }
    return GEMMA_OK;
}

void gm_mapfile_close(gm_mapfile *mf) {
    if (!mf) return;
    if (mf->data && mf->is_mapped) munmap((void *)mf->data, mf->size);
    free(mf->path);
    memset(mf, 0, sizeof *mf);
}

void gm_mapfile_drop(const gm_mapfile *mf, const void *p, size_t n) {
#ifdef MADV_DONTNEED
    const unsigned char *c = p;
    if (!mf || !mf->is_mapped || c < mf->data || n > mf->size || (size_t)(c - mf->data) > mf->size - n) return;
    long v = sysconf(_SC_PAGESIZE);
    size_t page = v > 0 ? (size_t)v : 4096;
    uintptr_t b = ((uintptr_t)p + page - 1) & ~(uintptr_t)(page - 1), e = ((uintptr_t)p + n) & ~(uintptr_t)(page - 1);
    if (e > b) madvise((void *)b, e - b, MADV_DONTNEED);
#else
    (void)mf;
    (void)p;
    (void)n;
#endif
}

int gm_mapfile_open_fd(const gm_mapfile *mf) {
    if (!mf || !mf->is_mapped || !mf->path) return -1;
    return open(mf->path, O_RDONLY | O_CLOEXEC);
}

int gm_pread_all(int fd, void *buf, size_t n, uint64_t off) {
    unsigned char *p = buf;
    while (n) {
        ssize_t got = pread(fd, p, n, (off_t)off);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return 0;
        p += got;
        n -= (size_t)got;
        off += (uint64_t)got;
    }
    return 1;
}

gemma_status gm_read_file(const char *path, size_t max_bytes, char **out, size_t *len, gemma_error *err) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return gm_fail(err, GEMMA_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return gm_fail(err, GEMMA_ERR_IO, "%s: not a regular file", path);
    }
    if ((unsigned long long)st.st_size > max_bytes) {
        fclose(f);
        return gm_fail(err, GEMMA_ERR_FORMAT, "%s: file is %lld bytes, more than the %zu allowed", path,
                       (long long)st.st_size, max_bytes);
    }
    size_t n = (size_t)st.st_size;
    char *buf = malloc(n + 1);
    if (!buf) {
        fclose(f);
        return gm_fail(err, GEMMA_ERR_NOMEM, "%s: out of memory", path);
    }
    size_t got = fread(buf, 1, n, f);
    fclose(f);
    if (got != n) {
        free(buf);
        return gm_fail(err, GEMMA_ERR_IO, "%s: short read", path);
    }
    buf[n] = 0;
    *out = buf;
    if (len) *len = n;
    return GEMMA_OK;
}
