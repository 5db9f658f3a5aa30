/* fuzz_tokenizer.c - libFuzzer target for the tokenizer (src/text/tokenizer.c).
 *
 * Why: tokenizer.json is a large untrusted document, and the text to encode
 * and the ids to decode come from users and HTTP clients; a GGUF's
 * tokenizer metadata is just as untrusted.  The first input byte picks one
 * of four modes:
 *   '{'   the whole input is a tokenizer.json: load it; when it loads,
 *         encode and decode with it and check the invariants below.
 *   'G'   the whole input is a GGUF file (tokenizer.ggml.* metadata): the
 *         same, through tokenizer_gguf.c.
 *   even  the rest is text for the real Gemma 3 tokenizer (loaded once):
 *         invalid UTF-8 must fail with GEMMA_ERR_ARG, valid text must fit in
 *         len + 1 ids, counting must agree with writing, NO_SPECIAL must
 *         yield no special id, and decoding must give the text back
 *         (unless it holds U+2581, which decodes to a space).
 *   odd   (other than '{' and 'G') the rest is a list of ids (3 bytes
 *         each) to decode: counting must agree with writing, the text must
 *         be valid UTF-8, every streaming push must be bounded and whole
 *         characters, and streaming must equal one-shot decoding whenever no
 *         byte run was invalid.
 * The real tokenizer is found through $GEMMA_TOKENIZER, else the build's
 * GEMMA_TOKENIZER_DIR, else models/gemma3-tokenizer under the working
 * directory; without it the text and id modes do nothing (and say so once). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mapfile.h"
#include "gemma.h"
#include "io/gguf.h"
#include "text/tokenizer.h"

#include "fuzz_check.h"

#ifndef GEMMA_TOKENIZER_DIR
#define GEMMA_TOKENIZER_DIR "models/gemma3-tokenizer"
#endif

static const gemma_tokenizer *real_tokenizer(void) {
    static gemma_tokenizer *tok;
    static int tried;
    if (!tried) {
        tried = 1;
        const char *path = getenv("GEMMA_TOKENIZER");
        gemma_error err;
        if (gemma_tokenizer_load(path ? path : GEMMA_TOKENIZER_DIR, &tok, &err) != GEMMA_OK) {
            fprintf(stderr, "fuzz_tokenizer: %s (text and id modes are off)\n", err.message);
            tok = NULL;
        }
    }
    return tok;
}

/* Strict UTF-8, written out here so the check does not trust the code under test. */
static int valid_utf8(const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    for (size_t i = 0; i < n;) {
        unsigned c = s[i], len = c < 0x80 ? 1 : c < 0xc2 ? 0 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : c < 0xf5 ? 4 : 0;
        if (!len || i + len > n) return 0;
        uint32_t cp = len == 1 ? c : c & (0x7fu >> len);
        for (unsigned k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return 0;
            cp = cp << 6 | (s[i + k] & 0x3fu);
        }
        static const uint32_t least[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < least[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
        i += len;
    }
    return 1;
}

static int contains(const char *s, size_t n, const char *needle, size_t k) {
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(s + i, needle, k) == 0) return 1;
    return 0;
}

/* Decode ids every way and check that the ways agree. */
static void check_decode(const gemma_tokenizer *t, const int32_t *ids, size_t n) {
    for (int flags = 0; flags < 2; flags++) {
        size_t len = 0, len2 = 0;
        gemma_error err;
        gemma_status st = gemma_detokenize(t, ids, n, flags, NULL, 0, &len, &err);
        CHECK(st == GEMMA_ERR_BUFFER);
        char *out = malloc(len + 1);
        CHECK(out);
        CHECK(gemma_detokenize(t, ids, n, flags, out, len + 1, &len2, &err) == GEMMA_OK);
        CHECK(len2 == len && out[len] == 0);
        CHECK(valid_utf8(out, len));
        /* Streaming. */
        gemma_detokenizer *d = gemma_detokenizer_create(t, flags);
        CHECK(d);
        char *streamed = malloc(len * 3 + 16 + n * 16);
        char piece[GEMMA_DETOKENIZER_MAX_OUT];
        size_t sl = 0;
        for (size_t i = 0; i <= n; i++) {
            size_t k = i < n ? gemma_detokenizer_push(d, ids[i], piece) : gemma_detokenizer_flush(d, piece);
            CHECK(k < GEMMA_DETOKENIZER_MAX_OUT && piece[k] == 0);
            CHECK(valid_utf8(piece, k));
            memcpy(streamed + sl, piece, k);
            sl += k;
        }
        gemma_detokenizer_free(d);
        /* An invalid byte run is the only way to a U+FFFD that no piece spells. */
        if (!contains(out, len, "\xef\xbf\xbd", 3)) CHECK(sl == len && memcmp(streamed, out, len) == 0);
        free(streamed);
        free(out);
    }
}

static void check_encode(const gemma_tokenizer *t, const char *s, size_t n, int round_trip) {
    gemma_error err;
    size_t count = 0, count2 = 0;
    int vocab = gemma_tokenizer_vocab_size(t);
    gemma_status st = gemma_tokenize(t, s, n, 0, NULL, 0, &count, &err);
    if (st == GEMMA_ERR_ARG) {
        CHECK(strstr(err.message, "invalid UTF-8 at byte offset"));
        return;
    }
    if (st == GEMMA_ERR_UNSUPPORTED) return;   /* no byte fallback and no unk: some text cannot be encoded */
    CHECK(st == GEMMA_OK || st == GEMMA_ERR_BUFFER);
    CHECK(count <= n + 1);
    int32_t *ids = malloc((n + 2) * sizeof *ids);
    CHECK(ids);
    CHECK(gemma_tokenize(t, s, n, GEMMA_TOKENIZE_ADD_BOS, ids, n + 1, &count2, &err) == GEMMA_OK);
    CHECK(count2 == count + (gemma_tokenizer_bos(t) >= 0));
    CHECK(gemma_tokenize(t, s, n, 0, ids, n + 1, &count2, &err) == GEMMA_OK);
    CHECK(count2 == count);
    for (size_t i = 0; i < count; i++) CHECK(ids[i] >= 0 && ids[i] < vocab && gemma_token_piece(t, ids[i]));
    check_decode(t, ids, count);
    if (round_trip) {
        size_t len;
        char *back = malloc(n * 3 + 16);
        CHECK(gemma_detokenize(t, ids, count, 0, back, n * 3 + 16, &len, &err) == GEMMA_OK);
        if (!contains(s, n, "\xe2\x96\x81", 3)) CHECK(len == n && memcmp(back, s, n) == 0);
        free(back);
        CHECK(gemma_tokenize(t, s, n, GEMMA_TOKENIZE_NO_SPECIAL, ids, n + 1, &count2, &err) == GEMMA_OK);
        for (size_t i = 0; i < count2; i++) CHECK(!gemma_token_is_special(t, ids[i]));
    }
    free(ids);
}

/* A failed load: one line naming the file, nothing returned. */
static void check_failed(const gemma_tokenizer *t, gemma_status st, const gemma_error *err, const char *name) {
    CHECK(t == NULL && err->code == st && !strchr(err->message, '\n'));
    CHECK(strncmp(err->message, name, strlen(name)) == 0 && strncmp(err->message + strlen(name), ": ", 2) == 0);
}

static void exercise(gemma_tokenizer *t, const uint8_t *data, size_t size);

static void fuzz_json(const uint8_t *data, size_t size) {
    gemma_tokenizer *t;
    gemma_error err;
    gemma_status st = gm_tokenizer_load_buffer((const char *)data, size, "fuzz.json", &t, &err);
    if (st != GEMMA_OK) {
        check_failed(t, st, &err, "fuzz.json");
        return;
    }
    exercise(t, data, size);
}

static void fuzz_gguf(const uint8_t *data, size_t size) {
    gm_mapfile mf = {.data = data, .size = size, .path = strdup("fuzz.gguf"), .is_mapped = 0};
    CHECK(mf.path);
    gm_gguf g;
    gemma_error err;
    gemma_tokenizer *t = NULL;
    gemma_status st = gm_gguf_open_mapped(&g, mf, &err);
    if (st == GEMMA_OK) {
        st = gm_tokenizer_from_gguf(&g, &t, &err);
        gm_gguf_close(&g);
    }
    if (st != GEMMA_OK) {
        check_failed(t, st, &err, "fuzz.gguf");
        return;
    }
    exercise(t, data, size);
}

/* Encode and decode with a tokenizer that loaded, then free it. */
static void exercise(gemma_tokenizer *t, const uint8_t *data, size_t size) {
    int vocab = gemma_tokenizer_vocab_size(t);
    CHECK(vocab > 0);
    static const char *const texts[] = {"",           "a",           "abc abc", "aaaaaaa", "\xc3\xa9\xe2\x82\xac x",
                                        "<bos>a<tag>", " \n\t "};
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) check_encode(t, texts[i], strlen(texts[i]), 0);
    check_encode(t, (const char *)data, size, 0);
    int32_t ids[64];
    for (int i = 0; i < 64; i++) ids[i] = (int32_t)((i * 7919u + size) % (unsigned)(vocab + 3)) - 1;
    check_decode(t, ids, 64);
    for (int32_t id = 0; id < vocab; id++) {
        const char *p = gemma_token_piece(t, id);
        int32_t back = p ? gemma_token_id(t, p) : -1;   /* a piece with a NUL inside reads shorter */
        if (back >= 0) CHECK(strcmp(gemma_token_piece(t, back), p) == 0);
    }
    gemma_tokenizer_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    if (data[0] == '{') {
        fuzz_json(data, size);
        return 0;
    }
    if (data[0] == 'G') {
        fuzz_gguf(data, size);
        return 0;
    }
    const gemma_tokenizer *t = real_tokenizer();
    if (!t) return 0;
    if (!(data[0] & 1)) {
        check_encode(t, (const char *)data + 1, size - 1, 1);
        return 0;
    }
    size_t n = (size - 1) / 3;
    int32_t *ids = malloc((n ? n : 1) * sizeof *ids);
    CHECK(ids);
    int vocab = gemma_tokenizer_vocab_size(t);
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = data + 1 + 3 * i;
        uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16;
        /* Mostly byte pieces (238..493) and specials, where the edge cases are. */
        if (p[2] & 0x80) ids[i] = 238 + (int32_t)(v % 256);
        else ids[i] = (int32_t)(v % (uint32_t)(vocab + 64)) - 32;
    }
    check_decode(t, ids, n);
    free(ids);
    return 0;
}
