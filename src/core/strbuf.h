/* strbuf.h - a growable byte string for building prompts and messages.
 * Out-of-memory is sticky (ok = 0) so callers check once at the end. */
#ifndef GM_STRBUF_H
#define GM_STRBUF_H

#include <stdlib.h>
#include <string.h>

typedef struct {
    char *data;
    size_t len, cap;
    int ok;
} gm_strbuf;

static inline void gm_strbuf_init(gm_strbuf *b) {
    b->data = NULL;
    b->len = b->cap = 0;
    b->ok = 1;
}

static inline void gm_strbuf_append(gm_strbuf *b, const char *s, size_t n) {
    if (!b->ok) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d) {
            b->ok = 0;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    if (n) memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = 0;
}

static inline void gm_strbuf_puts(gm_strbuf *b, const char *s) { gm_strbuf_append(b, s, strlen(s)); }
static inline void gm_strbuf_free(gm_strbuf *b) {
    free(b->data);
    gm_strbuf_init(b);
}

#endif
