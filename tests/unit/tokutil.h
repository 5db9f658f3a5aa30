/* tokutil.h - helpers of the tokenizer tests (test_tokenizer.c,
 * test_tokenizer_gguf.c): encode and require ids, decode into a buffer,
 * time a load.  Include after cmocka.h. */
#ifndef GEMMA_TOKUTIL_H
#define GEMMA_TOKUTIL_H

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "gemma.h"

static inline double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Encode s and require exactly `want` (n_want ids). */
static inline void expect_ids(const gemma_tokenizer *t, const char *s, size_t len, int flags, const int32_t *want,
                              size_t n_want) {
    int32_t got[512];
    size_t n = 0;
    gemma_error err;
    gemma_status st = gemma_tokenize(t, s, len, flags, got, 512, &n, &err);
    if (st != GEMMA_OK) fail_msg("tokenize(%s): %s", s, err.message);
    int same = n == n_want && (n == 0 || memcmp(got, want, n * sizeof *got) == 0);
    if (!same) {
        fprintf(stderr, "text %s: got", s);
        for (size_t i = 0; i < n; i++) fprintf(stderr, " %d", got[i]);
        fprintf(stderr, ", want");
        for (size_t i = 0; i < n_want; i++) fprintf(stderr, " %d", want[i]);
        fprintf(stderr, "\n");
        fail_msg("id mismatch");
    }
}

#define EXPECT(t, s, flags, ...)                                                      \
    do {                                                                               \
        static const int32_t want_[] = {__VA_ARGS__};                                  \
        expect_ids((t), (s), strlen(s), (flags), want_, sizeof want_ / sizeof *want_); \
    } while (0)
#define EXPECT_NONE(t, s, flags) expect_ids((t), (s), strlen(s), (flags), NULL, 0)

/* Decode ids (no flags unless given) into a static buffer. */
static inline const char *decode(const gemma_tokenizer *t, const int32_t *ids, size_t n, int flags) {
    static char out[1 << 16];
    size_t len;
    gemma_error err;
    if (gemma_detokenize(t, ids, n, flags, out, sizeof out, &len, &err) != GEMMA_OK) fail_msg("%s", err.message);
    assert_int_equal(len, strlen(out));
    return out;
}

#endif
