/* test_tokenizer.c - the tokenizer against HF tokenizers, and against bad input.
 *
 * Why: token ids are the contract with the model.  Every expected id list
 * here was produced by HF `tokenizers` (0.23) on the same tokenizer.json,
 * and the corpus test (tests/fixtures/tokenizer/corpus.jsonl, required)
 * checks thousands of texts id for id and decode for decode.  Every test of
 * the real tokenizer runs twice: on tokenizer.json, and on the same
 * vocabulary read from the Gemma 3 270M GGUF (merges rebuilt from its
 * scores), which must give the same ids.  A small hand-made tokenizer.json
 * pins merge order and tie-breaking independently of the real file, and
 * broken files must fail with one-line errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>
#include <cmocka.h>

#include "core/json.h"
#include "core/mapfile.h"
#include "gemma.h"
#include "text/tokenizer.h"
#include "unit/testutil.h"
#include "unit/tokutil.h"

static gemma_tokenizer *real;   /* the Gemma 3 tokenizer, loaded once by each group's setup */

/* ================================================================ helpers */

static int load_real(const char *path, const char *what) {
    gemma_error err;
    double t0 = now_s();
    if (gemma_tokenizer_load(path, &real, &err) != GEMMA_OK) {
        fprintf(stderr, "cannot load the Gemma 3 tokenizer (scripts/setup.sh installs it): %s\n", err.message);
        return -1;
    }
    fprintf(stderr, "%s loaded in %.3f s\n", what, now_s() - t0);
    return 0;
}

static int setup_real(void **state) {
    (void)state;
    return load_real(GEMMA_TOKENIZER_DIR, "tokenizer.json");
}

static int setup_real_gguf(void **state) {
    (void)state;
    return load_real(tu_real_gguf(), "the GGUF's tokenizer");
}

static int teardown_real(void **state) {
    (void)state;
    gemma_tokenizer_free(real);
    return 0;
}

/* Tokenize into a malloc'ed array. */
static int32_t *encode_all(const gemma_tokenizer *t, const char *s, size_t len, int flags, size_t *n) {
    gemma_error err;
    int32_t *ids = malloc((len + 1) * sizeof *ids);
    assert_non_null(ids);
    if (gemma_tokenize(t, s, len, flags, ids, len + 1, n, &err) != GEMMA_OK) fail_msg("%s", err.message);
    return ids;
}

static uint64_t rng_state = 0x853c49e6748fea9bULL;
static uint32_t rnd(void) {
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(rng_state >> 33);
}

/* Append the UTF-8 of code point cp to s; returns bytes written. */
static size_t put_utf8(char *s, uint32_t cp) {
    if (cp < 0x80) {
        s[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        s[0] = (char)(0xc0 | cp >> 6);
        s[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        s[0] = (char)(0xe0 | cp >> 12);
        s[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        s[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    s[0] = (char)(0xf0 | cp >> 18);
    s[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    s[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    s[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* A random valid UTF-8 string of up to max_chars characters (no U+2581,
 * which decodes to a space, and no NUL so strlen works). */
static size_t random_text(char *s, size_t max_chars) {
    static const char *const inserts[] = {"<start_of_turn>", "<end_of_turn>", "<bos>", "\n\n", "  ", "\t", "<unused7>",
                                          "<start_of", "<image_soft_token>", "<b>", "<0x41>", "\n"};
    static const uint32_t ranges[][2] = {{0x20, 0x7e},     {0xa0, 0x2ff},     {0x370, 0x52f},   {0x900, 0xdff},
                                         {0x3040, 0x9fff}, {0xac00, 0xd7a3},  {0x1f300, 0x1faff}, {0x10000, 0x10fffd},
                                         {0x1, 0x1f},      {0xe000, 0xf8ff}};
    size_t n = 0, chars = 1 + rnd() % max_chars;
    for (size_t i = 0; i < chars; i++) {
        uint32_t r = rnd() % 10;
        if (r < 5) {
            s[n++] = (char)(0x20 + rnd() % 95);
        } else if (r < 6) {
            const char *ins = inserts[rnd() % (sizeof inserts / sizeof *inserts)];
            memcpy(s + n, ins, strlen(ins));
            n += strlen(ins);
        } else {
            const uint32_t *rg = ranges[rnd() % (sizeof ranges / sizeof *ranges)];
            uint32_t cp = rg[0] + rnd() % (rg[1] - rg[0] + 1);
            if ((cp >= 0xd800 && cp <= 0xdfff) || cp == 0x2581) cp = 'x';
            n += put_utf8(s + n, cp);
        }
    }
    s[n] = 0;
    return n;
}

/* ============================================================ real: basics */

static void test_load_and_lookup(void **state) {
    (void)state;
    assert_int_equal(gemma_tokenizer_vocab_size(real), 262145);
    assert_int_equal(gemma_tokenizer_bos(real), 2);
    assert_string_equal(gemma_token_piece(real, 238), "<0x00>");
    assert_string_equal(gemma_token_piece(real, 493), "<0xFF>");
    assert_string_equal(gemma_token_piece(real, 6213), "\xe2\x96\x81patient");
    assert_string_equal(gemma_token_piece(real, 262144), "<image_soft_token>");
    assert_null(gemma_token_piece(real, -1));
    assert_null(gemma_token_piece(real, 262145));
    assert_int_equal(gemma_token_id(real, "<start_of_turn>"), 105);
    assert_int_equal(gemma_token_id(real, "<image_soft_token>"), 262144);
    assert_int_equal(gemma_token_id(real, "\n\n"), 108);
    assert_int_equal(gemma_token_id(real, "no such piece, surely"), -1);
    static const int32_t special[] = {0, 1, 2, 3, 105, 106, 255999, 256000, 262144};
    int n_special = 0;
    for (int32_t id = -5; id < 262150; id++) n_special += gemma_token_is_special(real, id);
    assert_int_equal(n_special, 9);
    for (size_t i = 0; i < 9; i++) assert_true(gemma_token_is_special(real, special[i]));
    assert_false(gemma_token_is_special(real, 4));     /* <mask>: added, not special */
    assert_false(gemma_token_is_special(real, 107));   /* "\n" */
    assert_int_equal(gm_tokenizer_added_count(real), 6415);
    assert_int_equal(gm_tokenizer_added_id(real, 6414), 262144);
    assert_true(gm_tokenizer_max_piece_len(real) >= 31);
    /* A path to the file works as well as its directory. */
    gemma_tokenizer *t;
    gemma_error err;
    assert_int_equal(gemma_tokenizer_load(GEMMA_TOKENIZER_DIR "/tokenizer.json", &t, &err), GEMMA_OK);
    assert_int_equal(gemma_tokenizer_vocab_size(t), 262145);
    gemma_tokenizer_free(t);
}

static void test_golden(void **state) {
    (void)state;
    const char *s = "The patient presents with tachycardia and dyspnea.";
    EXPECT(real, s, 0, 818, 6213, 15060, 607, 163379, 532, 17501, 236758, 17802, 236761);
    EXPECT(real, s, GEMMA_TOKENIZE_ADD_BOS, 2, 818, 6213, 15060, 607, 163379, 532, 17501, 236758, 17802, 236761);
    EXPECT(real, "Hello 世界 🤖\n\n  spaces  x", 0, 9259, 84679, 236743, 246143, 108, 138, 35220, 138, 236781);
    EXPECT(real, "<start_of_image><image_soft_token><end_of_image>", 0, 255999, 262144, 256000);
    EXPECT(real, "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n", 0, 2, 105, 2364, 107, 10979,
           106, 107, 105, 4368, 107);
}

static void test_added_tokens_inline(void **state) {
    (void)state;
    EXPECT(real, "a<start_of_turn>b", 0, 236746, 105, 236763);
    EXPECT(real, "<bos><bos>", 0, 2, 2);
    EXPECT(real, "<start_of", 0, 236820, 3041, 236779, 1340);
    EXPECT(real, "<start_of_turn", 0, 236820, 3041, 236779, 1340, 236779, 887);
    EXPECT(real, "<<start_of_turn>>", 0, 236820, 105, 236813);
    EXPECT(real, "\n\n\n\n\n", 0, 111);
    EXPECT(real, "x\n\n\n\n\ny", 0, 236781, 111, 236762);
    EXPECT(real, "\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n", 0, 137, 115);
    EXPECT(real, "\n \n", 0, 107, 236743, 107);
    EXPECT(real, "<0x41>", 0, 236820, 236771, 236781, 236812, 236770, 236813);   /* text, not a byte */
    EXPECT(real, "a\xe2\x96\x81" "b", 0, 236746, 518);
}

static void test_no_special(void **state) {
    (void)state;
    const int f = GEMMA_TOKENIZE_NO_SPECIAL;
    EXPECT(real, "<start_of_turn>x<mask>", f, 236820, 3041, 236779, 1340, 236779, 887, 236813, 236781, 4);
    EXPECT(real, "a<start_of_turn>b", f, 236746, 236820, 3041, 236779, 1340, 236779, 887, 236813, 236763);
    EXPECT(real, "<bos>\n\n<unused0>", f, 236820, 46757, 236813, 108, 6);   /* non-special ones still match */
    EXPECT(real, "<bos>x", f | GEMMA_TOKENIZE_ADD_BOS, 2, 236820, 46757, 236813, 236781);
}

static void test_empty(void **state) {
    (void)state;
    int32_t ids[4] = {-7, -7, -7, -7};
    size_t n = 99;
    gemma_error err;
    assert_int_equal(gemma_tokenize(real, "", 0, 0, ids, 4, &n, &err), GEMMA_OK);
    assert_int_equal(n, 0);
    assert_int_equal(gemma_tokenize(real, NULL, 0, GEMMA_TOKENIZE_ADD_BOS, ids, 4, &n, &err), GEMMA_OK);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], 2);
    assert_int_equal(gemma_tokenize(real, NULL, 0, 0, NULL, 0, &n, &err), GEMMA_OK);
    assert_int_equal(n, 0);
    assert_string_equal(decode(real, NULL, 0, 0), "");
}

/* =========================================================== invalid UTF-8 */

static void expect_bad_utf8(const char *s, size_t len, size_t offset) {
    int32_t ids[64];
    size_t n = 5;
    gemma_error err;
    assert_int_equal(gemma_tokenize(real, s, len, 0, ids, 64, &n, &err), GEMMA_ERR_ARG);
    assert_int_equal(err.code, GEMMA_ERR_ARG);
    assert_int_equal(n, 0);
    char want[64];
    snprintf(want, sizeof want, "invalid UTF-8 at byte offset %zu ", offset);
    if (!strstr(err.message, want)) fail_msg("message '%s' lacks '%s'", err.message, want);
    assert_null(strchr(err.message, '\n'));
}

static void test_invalid_utf8(void **state) {
    (void)state;
    expect_bad_utf8("ab\x80" "cd", 5, 2);                 /* lone continuation byte */
    expect_bad_utf8("ab\xf0\x9f\xa4", 5, 2);              /* truncated 4-byte sequence at the end */
    expect_bad_utf8("ab\xf0\x9f\xa4x", 6, 2);             /* ... and in the middle */
    expect_bad_utf8("\xc0\xaf", 2, 0);                    /* overlong '/' */
    expect_bad_utf8("x\xe0\x80\xaf", 4, 1);               /* overlong 3-byte */
    expect_bad_utf8("ok \xf0\x80\x80\xaf", 7, 3);         /* overlong 4-byte */
    expect_bad_utf8("\xed\xa0\x80", 3, 0);                /* surrogate U+D800 */
    expect_bad_utf8("12345678\xed\xbf\xbf", 11, 8);       /* surrogate U+DFFF after an ASCII word */
    expect_bad_utf8("\xf4\x90\x80\x80", 4, 0);            /* above U+10FFFF */
    expect_bad_utf8("\xff", 1, 0);
    expect_bad_utf8("<start_of_turn>\xfe", 16, 15);
    expect_bad_utf8("\xe2\x96", 2, 0);                    /* half of U+2581 */
    /* The largest valid forms pass. */
    EXPECT(real, "\xf4\x8f\xbf\xbf", 0, 482, 381, 429, 429);
    size_t n;
    gemma_error err;
    int32_t ids[8];
    assert_int_equal(gemma_tokenize(real, "a\0b", 3, 0, ids, 8, &n, &err), GEMMA_OK);   /* NUL is valid */
}

/* =============================================================== buffers */

static void test_buffer_and_counting(void **state) {
    (void)state;
    const char *s = "The patient presents with tachycardia and dyspnea.";
    int32_t ids[16];
    size_t n = 0;
    gemma_error err;
    assert_int_equal(gemma_tokenize(real, s, strlen(s), 0, NULL, 0, &n, &err), GEMMA_ERR_BUFFER);
    assert_int_equal(n, 10);
    assert_int_equal(err.code, GEMMA_ERR_BUFFER);
    memset(ids, 0x55, sizeof ids);
    assert_int_equal(gemma_tokenize(real, s, strlen(s), GEMMA_TOKENIZE_ADD_BOS, ids, 4, &n, &err), GEMMA_ERR_BUFFER);
    assert_int_equal(n, 11);
    assert_int_equal(ids[0], 2);
    assert_int_equal(ids[3], 15060);
    assert_int_equal(ids[4], 0x55555555);   /* nothing written past cap */
    assert_int_equal(gemma_tokenize(real, s, strlen(s), 0, ids, 10, &n, &err), GEMMA_OK);
    assert_int_equal(n, 10);
    /* Arguments. */
    assert_int_equal(gemma_tokenize(NULL, s, 3, 0, ids, 16, &n, &err), GEMMA_ERR_ARG);
    assert_int_equal(gemma_tokenize(real, NULL, 3, 0, ids, 16, &n, &err), GEMMA_ERR_ARG);
    assert_int_equal(gemma_tokenize(real, s, 3, 0, NULL, 16, &n, &err), GEMMA_ERR_ARG);
    assert_int_equal(gemma_tokenize(real, s, 3, 0, ids, 16, NULL, &err), GEMMA_ERR_ARG);
    assert_int_equal(gemma_tokenize(real, s, 3, 64, ids, 16, &n, &err), GEMMA_ERR_ARG);
    /* len + 1 ids always suffice. */
    char text[2048];
    for (int k = 0; k < 300; k++) {
        size_t len = random_text(text, 200);
        int32_t *out = malloc((len + 1) * sizeof *out);
        assert_int_equal(gemma_tokenize(real, text, len, GEMMA_TOKENIZE_ADD_BOS, out, len + 1, &n, &err), GEMMA_OK);
        free(out);
    }
    /* Detokenize: NUL always written, BUFFER when cap <= len, counting with NULL. */
    int32_t hi[] = {9259, 84679};   /* "Hello", "▁世界" */
    char small[4];
    size_t len = 0;
    assert_int_equal(gemma_detokenize(real, hi, 2, 0, NULL, 0, &len, &err), GEMMA_ERR_BUFFER);
    size_t full = len;
    assert_true(full > 4);
    assert_int_equal(gemma_detokenize(real, hi, 2, 0, small, sizeof small, &len, &err), GEMMA_ERR_BUFFER);
    assert_int_equal(len, full);
    assert_int_equal(strlen(small), 3);
    char *exact = malloc(full + 1);
    assert_int_equal(gemma_detokenize(real, hi, 2, 0, exact, full, &len, &err), GEMMA_ERR_BUFFER);
    assert_int_equal(gemma_detokenize(real, hi, 2, 0, exact, full + 1, &len, &err), GEMMA_OK);
    assert_string_equal(exact, "Hello 世界");
    free(exact);
    /* Unknown ids are dropped, as HF's decode drops them. */
    int32_t odd[] = {-1, 9259, 262145, 1 << 30};
    assert_string_equal(decode(real, odd, 4, 0), "Hello");
}

/* ============================================================== decoding */

static void test_decode(void **state) {
    (void)state;
    const int32_t B = 238;   /* <0x00> */
    int32_t world[] = {B + 0xe4, B + 0xb8, B + 0x96};
    assert_string_equal(decode(real, world, 3, 0), "世");
    int32_t bad[] = {B + 0xe4, B + 0xb8, B + 0x96, B + 0xff};   /* one bad byte spoils the run: 4 x U+FFFD */
    assert_string_equal(decode(real, bad, 4, 0), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    int32_t split[] = {B + 0xe4, 2, B + 0xb8, B + 0x96};   /* a skipped special token does not break the run */
    assert_string_equal(decode(real, split, 4, GEMMA_DETOKENIZE_SKIP_SPECIAL), "世");
    assert_string_equal(decode(real, split, 4, 0), "\xef\xbf\xbd<bos>\xef\xbf\xbd\xef\xbf\xbd");
    int32_t trunc[] = {9259, B + 0xf0, B + 0x9f};
    assert_string_equal(decode(real, trunc, 3, 0), "Hello\xef\xbf\xbd\xef\xbf\xbd");
    int32_t spaces[] = {138, 107, 2, B + 0x0a, 106};
    assert_string_equal(decode(real, spaces, 5, 0), "  \n<bos>\n<end_of_turn>");
    assert_string_equal(decode(real, spaces, 5, GEMMA_DETOKENIZE_SKIP_SPECIAL), "  \n\n");
}

static void test_round_trip(void **state) {
    (void)state;
    char text[4096];
    for (int k = 0; k < 2000; k++) {
        size_t len = random_text(text, 300), n;
        int32_t *ids = encode_all(real, text, len, 0, &n);
        const char *back = decode(real, ids, n, 0);
        if (strcmp(back, text) != 0) fail_msg("round trip of '%s' gave '%s'", text, back);
        free(ids);
    }
}

/* =============================================================== streaming */

static size_t stream_all(const gemma_tokenizer *t, const int32_t *ids, size_t n, int flags, char *out) {
    gemma_detokenizer *d = gemma_detokenizer_create(t, flags);
    assert_non_null(d);
    char piece[GEMMA_DETOKENIZER_MAX_OUT];
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k = gemma_detokenizer_push(d, ids[i], piece);
        assert_true(k < GEMMA_DETOKENIZER_MAX_OUT);
        assert_int_equal(piece[k], 0);
        memcpy(out + len, piece, k);
        len += k;
    }
    size_t k = gemma_detokenizer_flush(d, piece);
    memcpy(out + len, piece, k);
    len += k;
    out[len] = 0;
    gemma_detokenizer_free(d);
    return len;
}

static void test_stream_emoji(void **state) {
    (void)state;
    const int32_t B = 238;
    gemma_detokenizer *d = gemma_detokenizer_create(real, 0);
    char out[GEMMA_DETOKENIZER_MAX_OUT];
    assert_int_equal(gemma_detokenizer_push(d, 9259, out), 5);   /* "Hello" */
    assert_string_equal(out, "Hello");
    assert_int_equal(gemma_detokenizer_push(d, B + 0xf0, out), 0);   /* U+1F916, one byte at a time */
    assert_int_equal(gemma_detokenizer_push(d, 2, out), 8);          /* <bos> in the middle is shown... */
    assert_string_equal(out, "\xef\xbf\xbd<bos>");                    /* ...and ends the run */
    assert_int_equal(gemma_detokenizer_push(d, B + 0xf0, out), 0);
    assert_int_equal(gemma_detokenizer_push(d, B + 0x9f, out), 0);
    assert_int_equal(gemma_detokenizer_push(d, B + 0xa4, out), 0);
    assert_int_equal(gemma_detokenizer_push(d, B + 0x96, out), 4);
    assert_string_equal(out, "🤖");
    /* An invalid continuation: the pending bytes become U+FFFD, the new byte starts over. */
    assert_int_equal(gemma_detokenizer_push(d, B + 0xe4, out), 0);
    assert_int_equal(gemma_detokenizer_push(d, B + 0x41, out), 4);
    assert_string_equal(out, "\xef\xbf\xbd" "A");
    assert_int_equal(gemma_detokenizer_push(d, B + 0xe4, out), 0);
    assert_int_equal(gemma_detokenizer_push(d, B + 0xe4, out), 3);
    assert_string_equal(out, "\xef\xbf\xbd");
    assert_int_equal(gemma_detokenizer_push(d, B + 0xff, out), 6);   /* pending E4, then FF itself */
    assert_int_equal(gemma_detokenizer_push(d, B + 0xf0, out), 0);
    assert_int_equal(gemma_detokenizer_flush(d, out), 3);           /* an unfinished tail */
    assert_int_equal(gemma_detokenizer_flush(d, out), 0);
    assert_int_equal(gemma_detokenizer_push(d, 1 << 30, out), 0);   /* unknown ids are dropped */
    gemma_detokenizer_free(d);
    /* Skipping special tokens. */
    d = gemma_detokenizer_create(real, GEMMA_DETOKENIZE_SKIP_SPECIAL);
    assert_int_equal(gemma_detokenizer_push(d, 2, out), 0);
    assert_int_equal(gemma_detokenizer_push(d, 106, out), 0);
    assert_int_equal(gemma_detokenizer_push(d, 108, out), 2);
    gemma_detokenizer_free(d);
    assert_null(gemma_detokenizer_create(NULL, 0));
    assert_null(gemma_detokenizer_create(real, 8));
    gemma_detokenizer_free(NULL);
}

/* Random sequences: ordinary pieces, specials, and characters spelled as byte
 * runs (valid UTF-8): streaming must equal the one-shot decode. */
static void test_stream_equals_batch(void **state) {
    (void)state;
    const int32_t B = 238;
    int32_t ids[400];
    static char a[1 << 16], b[1 << 16];
    int n_vocab = gemma_tokenizer_vocab_size(real);
    for (int k = 0; k < 3000; k++) {
        size_t n = 0, want = 1 + rnd() % 120;
        while (n < want) {
            uint32_t r = rnd() % 10;
            if (r < 5) {
                int32_t id = (int32_t)(rnd() % (uint32_t)n_vocab);
                if (id >= B && id < B + 256) id = 9259;
                ids[n++] = id;
            } else if (r < 6) {
                static const int32_t sp[] = {0, 1, 2, 105, 106, 262144, -3, 300000};
                ids[n++] = sp[rnd() % 8];
            } else {
                char u[4];
                uint32_t cp = rnd() % 3 ? 0x80 + rnd() % 0x10000 : 0x10000 + rnd() % 0x100000;
                if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xe9;
                size_t l = put_utf8(u, cp);
                for (size_t j = 0; j < l; j++) ids[n++] = B + (unsigned char)u[j];
            }
        }
        for (int flags = 0; flags < 2; flags++) {
            size_t la = stream_all(real, ids, n, flags, a), lb;
            gemma_error err;
            assert_int_equal(gemma_detokenize(real, ids, n, flags, b, sizeof b, &lb, &err), GEMMA_OK);
            assert_int_equal(la, lb);
            assert_memory_equal(a, b, la);
        }
    }
}

/* Several threads encoding and decoding with one tokenizer get what one thread gets. */
#define N_THREAD_TEXTS 200
static char thread_texts[N_THREAD_TEXTS][1024];
static size_t thread_want_n[N_THREAD_TEXTS];
static int32_t *thread_want[N_THREAD_TEXTS];

static void *thread_main(void *arg) {
    size_t bad = 0, offset = (size_t)(uintptr_t)arg;
    char out[8192];
    for (int round = 0; round < 5; round++) {
        for (size_t k = 0; k < N_THREAD_TEXTS; k++) {
            size_t i = (k + offset) % N_THREAD_TEXTS, n, len;
            int32_t ids[1100];
            gemma_error err;
            const char *s = thread_texts[i];
            if (gemma_tokenize(real, s, strlen(s), 0, ids, 1100, &n, &err) != GEMMA_OK) bad++;
            else if (n != thread_want_n[i] || memcmp(ids, thread_want[i], n * sizeof *ids) != 0) bad++;
            else if (gemma_detokenize(real, ids, n, 0, out, sizeof out, &len, &err) != GEMMA_OK || strcmp(out, s))
                bad++;
        }
    }
    return (void *)(uintptr_t)bad;
}

static void test_threads(void **state) {
    (void)state;
    for (size_t i = 0; i < N_THREAD_TEXTS; i++) {
        random_text(thread_texts[i], 150);
        thread_want[i] = encode_all(real, thread_texts[i], strlen(thread_texts[i]), 0, &thread_want_n[i]);
    }
    pthread_t th[4];
    for (uintptr_t i = 0; i < 4; i++) assert_int_equal(pthread_create(&th[i], NULL, thread_main, (void *)(i * 37)), 0);
    size_t bad = 0;
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(th[i], &r);
        bad += (size_t)(uintptr_t)r;
    }
    for (size_t i = 0; i < N_THREAD_TEXTS; i++) free(thread_want[i]);
    assert_int_equal(bad, 0);
}

/* ====================================================== the HF corpus */

static int same_ids(const gm_json *want, const int32_t *got, size_t n) {
    if (!gm_json_is(want, GM_JSON_ARRAY) || gm_json_count(want) != n) return 0;
    for (size_t i = 0; i < n; i++) {
        int64_t v;
        if (!gm_json_int(gm_json_at(want, i), &v) || v != got[i]) return 0;
    }
    return 1;
}

static void test_hf_corpus(void **state) {
    (void)state;
    const char *path = getenv("GEMMA_TOKENIZER_CORPUS");
    if (!path) path = GEMMA_FIXTURES_DIR "/tokenizer/corpus.jsonl";
    size_t size;
    char *all;
    gemma_error err;
    if (gm_read_file(path, (size_t)1 << 30, &all, &size, &err) != GEMMA_OK)
        fail_msg("%s (the corpus of HF tokenizers' ids is required)", err.message);
    size_t lines = 0, ids_checked = 0, bytes = 0, decodes = 0, failures = 0;
    for (char *line = all; *line;) {
        char *end = strchr(line, '\n');
        size_t ll = end ? (size_t)(end - line) : strlen(line);
        if (ll == 0) {
            line += 1;
            continue;
        }
        char jerr[128];
        gm_json_doc *doc = gm_json_parse(line, ll, NULL, jerr, sizeof jerr);
        if (!doc) fail_msg("%s line %zu: %s", path, lines + 1, jerr);
        const gm_json *row = gm_json_root(doc);
        const gm_json *text = gm_json_get(row, "text"), *name = gm_json_get(row, "name");
        assert_true(gm_json_is(text, GM_JSON_STRING));
        const char *nm = gm_json_string(name) ? gm_json_string(name) : "?";
        for (int pass = 0; pass < 2; pass++) {
            const gm_json *want = gm_json_get(row, pass ? "ids_bos" : "ids");
            if (!want) {
                if (!pass) fail_msg("%s: line %zu has no ids", path, lines + 1);
                continue;
            }
            size_t n;
            int32_t *got = encode_all(real, text->u.str, text->len, pass ? GEMMA_TOKENIZE_ADD_BOS : 0, &n);
            if (!same_ids(want, got, n)) {
                if (failures++ < 10) {
                    fprintf(stderr, "corpus %s (%s): ids differ; got", nm, pass ? "with bos" : "no bos");
                    for (size_t i = 0; i < n && i < 40; i++) fprintf(stderr, " %d", got[i]);
                    fprintf(stderr, "\n");
                }
            }
            ids_checked += n;
            if (!pass) {
                const gm_json *dec = gm_json_get(row, "decoded");
                if (dec) {
                    size_t cap = 4 * n * 64 + 16, dl;
                    char *out = malloc(cap);
                    assert_int_equal(gemma_detokenize(real, got, n, 0, out, cap, &dl, &err), GEMMA_OK);
                    if (dl != dec->len || memcmp(out, dec->u.str, dl) != 0) {
                        if (failures++ < 10) fprintf(stderr, "corpus %s: decode differs: '%s'\n", nm, out);
                    }
                    decodes++;
                    free(out);
                }
            }
            free(got);
        }
        bytes += text->len;
        lines++;
        gm_json_free(doc);
        line += ll + (end ? 1 : 0);
    }
    free(all);
    fprintf(stderr, "corpus %s: %zu lines, %zu bytes of text, %zu ids and %zu decodes checked, %zu mismatches\n", path,
            lines, bytes, ids_checked, decodes, failures);
    assert_true(lines > 0);
    assert_int_equal(failures, 0);
}

/* =========================================== a small hand-made tokenizer */

/* The vocabulary: specials, a few letters and merges, all 256 byte pieces,
 * and "<0x+A>" (which ByteFallback reads as byte 0x0A, as Rust's
 * from_str_radix accepts a '+'). */
static char *small_json(const char *model_flags, const char *merges, const char *normalizer, const char *pre,
                        const char *added_extra) {
    size_t cap = 65536, n = 0;
    char *s = malloc(cap);
#define APPEND(...) n += (size_t)snprintf(s + n, cap - n, __VA_ARGS__)
    APPEND("{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,\"added_tokens\":["
           "{\"id\":1,\"content\":\"<bos>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,"
           "\"normalized\":false,\"special\":true},"
           "{\"id\":2,\"content\":\"<eos>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,"
           "\"normalized\":false,\"special\":true},"
           "{\"id\":271,\"content\":\"<tag>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,"
           "\"normalized\":false,\"special\":false}%s],",
           added_extra);
    APPEND("\"normalizer\":%s,\"pre_tokenizer\":%s,", normalizer, pre);
    APPEND("\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<bos>\","
           "\"type_id\":0}},"
           "{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}],\"pair\":[],\"special_tokens\":{\"<bos>\":{\"id\":\"<bos>\","
           "\"ids\":[1],\"tokens\":[\"<bos>\"]}}},");
    APPEND("\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\","
           "\"pattern\":{\"String\":\"\\u2581\"},"
           "\"content\":\" \"},{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"}]},");
    APPEND("\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":\"<unk>\",\"continuing_subword_prefix\":null,"
           "\"end_of_word_suffix\":null,%s,\"vocab\":{\"<unk>\":0,\"<bos>\":1,\"<eos>\":2,\"a\":3,\"b\":4,\"c\":5,"
           "\"\\u2581\":6,\"ab\":7,\"bc\":8,\"abc\":9,\"\\u2581a\":10,\"aa\":11,\"aaa\":12,\"\\u00e9\":13",
           model_flags);
    for (int i = 0; i < 256; i++) APPEND(",\"<0x%02X>\":%d", i, 14 + i);
    APPEND(",\"<0x+A>\":270},\"merges\":%s}}", merges);
#undef APPEND
    assert_true(n < cap);
    return s;
}

#define FLAGS_BF "\"fuse_unk\":true,\"byte_fallback\":true,\"ignore_merges\":false"
#define MERGES_STD "[[\"a\",\"b\"],[\"b\",\"c\"],[\"ab\",\"c\"],[\"\\u2581\",\"a\"],[\"a\",\"a\"],[\"aa\",\"a\"]]"
#define NORM_STD "{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"\\u2581\"}"

static gemma_tokenizer *small_load(const char *model_flags, const char *merges, const char *normalizer,
                                   const char *pre, const char *added_extra) {
    char *json = small_json(model_flags, merges, normalizer, pre, added_extra);
    gemma_tokenizer *t;
    gemma_error err;
    if (gm_tokenizer_load_buffer(json, strlen(json), "small.json", &t, &err) != GEMMA_OK) fail_msg("%s", err.message);
    free(json);
    return t;
}

static void test_small_bpe(void **state) {
    (void)state;
    gemma_tokenizer *t = small_load(FLAGS_BF, MERGES_STD, NORM_STD, "null", "");
    assert_int_equal(gemma_tokenizer_vocab_size(t), 272);
    assert_int_equal(gemma_tokenizer_bos(t), 1);
    EXPECT(t, "abc", 0, 9);                    /* (a,b) rank 0 first, then (ab,c) */
    EXPECT(t, "aaa", 0, 12);                   /* ties go leftmost: (aa)a, then aaa */
    EXPECT(t, "aaaa", 0, 11, 11);
    EXPECT(t, "aaaaa", 0, 11, 12);
    EXPECT(t, "bcab", 0, 8, 7);
    EXPECT(t, "a abc", 0, 3, 6, 9);            /* (▁,a) has rank 3 but its a was taken by rank 0 */
    EXPECT(t, "ab\xc3\xa9\xe2\x82\xac", 0, 7, 13, 240, 144, 186);   /* € is not a piece: its bytes */
    EXPECT(t, "x<tag>y<bos>", 0, 134, 271, 135, 1);
    EXPECT(t, "x<tag>y<bos>", GEMMA_TOKENIZE_ADD_BOS, 1, 134, 271, 135, 1);
    EXPECT(t, "", GEMMA_TOKENIZE_ADD_BOS, 1);
    int32_t ids[] = {270, 3, 14 + 0xe2, 14 + 0x82, 14 + 0xac, 6, 2, 14 + 0xff};
    assert_string_equal(decode(t, ids, 8, 0), "\na\xe2\x82\xac <eos>\xef\xbf\xbd");
    gemma_tokenizer_free(t);

    /* A repeated pair: the later rank wins (HF collects merges into a map). */
    t = small_load(FLAGS_BF, "[[\"a\",\"b\"],[\"b\",\"c\"],[\"a\",\"b\"]]", NORM_STD, "null", "");
    EXPECT(t, "abc", 0, 3, 8);
    gemma_tokenizer_free(t);
    /* The legacy "a b" spelling of merges. */
    t = small_load(FLAGS_BF, "[\"a b\",\"b c\",\"ab c\"]", NORM_STD, "null", "");
    EXPECT(t, "abc", 0, 9);
    gemma_tokenizer_free(t);
    /* No byte fallback: unknown characters become <unk>, fused or not. */
    t = small_load("\"fuse_unk\":true,\"byte_fallback\":false", MERGES_STD, NORM_STD, "null", "");
    EXPECT(t, "xy\xe2\x82\xac" "a\xe2\x82\xac", 0, 0, 3, 0);
    gemma_tokenizer_free(t);
    t = small_load("\"fuse_unk\":false,\"byte_fallback\":false", MERGES_STD, NORM_STD, "null", "");
    EXPECT(t, "xy\xe2\x82\xac" "a\xe2\x82\xac", 0, 0, 0, 0, 3, 0);
    gemma_tokenizer_free(t);
    /* ignore_merges: a whole word that is a piece is taken as is. */
    t = small_load("\"byte_fallback\":true,\"ignore_merges\":true", "[[\"a\",\"b\"],[\"b\",\"c\"]]", NORM_STD,
                   "null", "");
    EXPECT(t, "abc", 0, 9);
    EXPECT(t, "abcc", 0, 7, 5, 5);
    gemma_tokenizer_free(t);
    /* A "normalized" added token is matched after the normalizer. */
    t = small_load(FLAGS_BF, MERGES_STD, NORM_STD, "null",
                   ",{\"id\":272,\"content\":\"c a\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,"
                   "\"normalized\":true,\"special\":false}");
    EXPECT(t, "bc ab c a", 0, 4, 272, 4, 6, 272);
    gemma_tokenizer_free(t);
}

/* BPE runs word by word only where no merge can cross into a "▁" word: here
 * "b▁" and "b▁a" are pieces, so a "▁" after "b" must stay glued to it. */
static void test_small_glue(void **state) {
    (void)state;
    static const char json[] =
        "{\"added_tokens\":[],\"normalizer\":{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},"
        "\"content\":\"\\u2581\"},\"pre_tokenizer\":null,\"post_processor\":null,\"decoder\":{\"type\":\"Sequence\","
        "\"decoders\":[{\"type\":\"Replace\",\"pattern\":{\"String\":\"\\u2581\"},\"content\":\" \"},"
        "{\"type\":\"Fuse\"}]},"
        "\"model\":{\"type\":\"BPE\",\"unk_token\":\"<unk>\",\"vocab\":{\"<unk>\":0,\"a\":1,\"b\":2,\"\\u2581\":3,"
        "\"b\\u2581\":4,\"b\\u2581a\":5,\"\\u2581a\":6},\"merges\":[[\"b\",\"\\u2581\"],[\"b\\u2581\",\"a\"],"
        "[\"\\u2581\",\"a\"]]}}";
    gemma_tokenizer *t;
    gemma_error err;
    if (gm_tokenizer_load_buffer(json, strlen(json), "glue.json", &t, &err) != GEMMA_OK) fail_msg("%s", err.message);
    assert_int_equal(gemma_tokenizer_bos(t), -1);
    EXPECT(t, "b a", GEMMA_TOKENIZE_ADD_BOS, 5);
    EXPECT(t, "a b a", 0, 1, 3, 5);
    EXPECT(t, "a a b a", 0, 1, 6, 3, 5);
    EXPECT(t, "ba a", 0, 2, 1, 6);
    gemma_tokenizer_free(t);
}

static void test_small_split(void **state) {
    (void)state;
    static const struct {
        const char *behavior;
        int32_t ids[8];
        size_t n;
    } cases[] = {
        {"MergedWithPrevious", {7, 4, 5, 7, 4}, 5}, {"MergedWithNext", {3, 4, 8, 3, 4, 4}, 6},
        {"Isolated", {3, 4, 4, 5, 3, 4, 4}, 7},     {"Removed", {3, 5, 3}, 3},
        {"Contiguous", {3, 4, 4, 5, 3, 4, 4}, 7},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char pre[160];
        snprintf(pre, sizeof pre,
                 "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"String\":\"b\"},"
                 "\"behavior\":\"%s\",\"invert\":false}]}",
                 cases[i].behavior);
        gemma_tokenizer *t = small_load(FLAGS_BF, MERGES_STD, "null", pre, "");
        expect_ids(t, "abbcabb", 7, 0, cases[i].ids, cases[i].n);
        gemma_tokenizer_free(t);
    }
}

/* ============================================================== bad files */

/* Load `json` from a file and require `code` and a one-line message naming
 * the file and containing `needle`. */
static void expect_bad(const char *json, size_t len, gemma_status code, const char *needle) {
    char path[1024];
    snprintf(path, sizeof path, "%s/tokenizer.json", tu_dir("tokenizer_bad"));
    tu_write(path, json, len);
    gemma_tokenizer *t = (gemma_tokenizer *)&t;
    gemma_error err;
    gemma_status st = gemma_tokenizer_load(path, &t, &err);
    if (st != code) fail_msg("expected %s, got %s: %s", gemma_status_name(code), gemma_status_name(st), err.message);
    assert_null(t);
    assert_int_equal(err.code, code);
    assert_null(strchr(err.message, '\n'));
    if (!strstr(err.message, path)) fail_msg("message does not name the file: %s", err.message);
    if (!strstr(err.message, needle)) fail_msg("message lacks '%s': %s", needle, err.message);
}

/* small_json with `from` replaced by `to` (first occurrence). */
static void expect_bad_edit(const char *from, const char *to, gemma_status code, const char *needle) {
    char *json = small_json(FLAGS_BF, MERGES_STD, NORM_STD, "null", "");
    char *at = strstr(json, from);
    if (!at) fail_msg("test bug: '%s' not in the document", from);
    size_t n = strlen(json), fl = strlen(from), tl = strlen(to);
    char *edited = malloc(n + tl + 1);
    memcpy(edited, json, (size_t)(at - json));
    memcpy(edited + (at - json), to, tl);
    memcpy(edited + (at - json) + tl, at + fl, n - (size_t)(at - json) - fl + 1);
    expect_bad(edited, strlen(edited), code, needle);
    free(edited);
    free(json);
}

static void test_bad_files(void **state) {
    (void)state;
    char *good = small_json(FLAGS_BF, MERGES_STD, NORM_STD, "null", "");
    expect_bad(good, strlen(good) / 2, GEMMA_ERR_FORMAT, "line 1");   /* truncated */
    expect_bad("", 0, GEMMA_ERR_FORMAT, "empty");
    expect_bad("[1,2]", 5, GEMMA_ERR_FORMAT, "top level");
    expect_bad("{\"added_tokens\":[]}", 19, GEMMA_ERR_FORMAT, "field model is missing");
    free(good);
    /* One edit of the good document each: (from, to, expected status, words of the message). */
    static const struct {
        const char *from, *to;
        gemma_status code;
        const char *needle;
    } edits[] = {
        {"\"type\":\"BPE\"", "\"type\":\"WordPiece\"", GEMMA_ERR_UNSUPPORTED, "model.type 'WordPiece'"},
        {"\"type\":\"BPE\",", "", GEMMA_ERR_FORMAT, "model.type is missing"},
        {"\"vocab\":{", "\"vocabulary\":{", GEMMA_ERR_FORMAT, "model.vocab is missing"},
        {"\"merges\":", "\"merge\":", GEMMA_ERR_FORMAT, "model.merges is missing"},
        {"[\"a\",\"b\"]", "[\"a\",\"q\"]", GEMMA_ERR_FORMAT, "merges[0]: piece 'q' is not in model.vocab"},
        {"[\"a\",\"a\"]", "[\"c\",\"a\"]", GEMMA_ERR_FORMAT, "merges[4]: 'c' + 'a' is not a piece"},
        {"[\"a\",\"b\"]", "[\"a\"]", GEMMA_ERR_FORMAT, "merges[0] must be"},
        {"[\"a\",\"b\"]", "\"ab\"", GEMMA_ERR_FORMAT, "has no space"},
        {"\"c\":5", "\"c\":99999999999", GEMMA_ERR_FORMAT, "id 99999999999 is out of range"},
        {"\"c\":5", "\"c\":-1", GEMMA_ERR_FORMAT, "out of range"},
        {"\"c\":5", "\"c\":4", GEMMA_ERR_FORMAT, "duplicate id 4"},
        {"\"c\":5", "\"c\":5.5", GEMMA_ERR_FORMAT, "integer id"},
        {"\"c\":5", "\"a\":5", GEMMA_ERR_FORMAT, "appears twice"},
        {"\"<0x7F>\"", "\"<0x7f>\"", GEMMA_ERR_FORMAT, "no piece '<0x7F>'"},
        {"\"unk_token\":\"<unk>\"", "\"unk_token\":\"<nope>\"", GEMMA_ERR_FORMAT, "unk_token '<nope>'"},
        {"\"dropout\":null", "\"dropout\":0.1", GEMMA_ERR_UNSUPPORTED, "model.dropout"},
        {"\"continuing_subword_prefix\":null", "\"continuing_subword_prefix\":\"##\"",
         GEMMA_ERR_UNSUPPORTED, "continuing_subword_prefix"},
        {"\"byte_fallback\":true", "\"byte_fallback\":1", GEMMA_ERR_FORMAT, "model.byte_fallback"},
        {"\"truncation\":null", "\"truncation\":{}", GEMMA_ERR_UNSUPPORTED, "truncation"},
        {"\"id\":271", "\"id\":4000000000", GEMMA_ERR_FORMAT, "HF tokenizers would give it 271"},
        {"\"id\":271", "\"id\":270", GEMMA_ERR_FORMAT, "would give it 271"},
        {"\"id\":2,\"content\":\"<eos>\"", "\"id\":3,\"content\":\"<eos>\"",
         GEMMA_ERR_FORMAT, "model.vocab gives it 2"},
        {"\"id\":2,\"content\":\"<eos>\"", "\"id\":1,\"content\":\"<bos>\"", GEMMA_ERR_FORMAT, "listed twice"},
        {"\"content\":\"<tag>\"", "\"content\":\"\"", GEMMA_ERR_FORMAT, "content is empty"},
        {"\"content\":\"<tag>\",\"single_word\":false,\"lstrip\":false",
         "\"content\":\"<tag>\",\"single_word\":false,\"lstrip\":true",
         GEMMA_ERR_UNSUPPORTED, "added_tokens[2].lstrip"},
        {"\"added_tokens\":[", "\"added_tokens\":{\"x\":[", GEMMA_ERR_FORMAT, "line"},
        {"\"normalizer\":{\"type\":\"Replace\"", "\"normalizer\":{\"type\":\"NFKC\"",
         GEMMA_ERR_UNSUPPORTED, "normalizer.type 'NFKC'"},
        {"\"pattern\":{\"String\":\" \"}", "\"pattern\":{\"Regex\":\" \"}", GEMMA_ERR_UNSUPPORTED, "Regex"},
        {"\"content\":\"\\u2581\"}", "\"content\":\"__\"}", GEMMA_ERR_UNSUPPORTED, "one character"},
        {"\"pre_tokenizer\":null", "\"pre_tokenizer\":{\"type\":\"ByteLevel\"}",
         GEMMA_ERR_UNSUPPORTED, "pre_tokenizer.type 'ByteLevel'"},
        {"\"pre_tokenizer\":null",
         "\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"String\":\"x\"},\"behavior\":\"Sideways\"}",
         GEMMA_ERR_FORMAT, "behavior 'Sideways'"},
        {"{\"type\":\"ByteFallback\"}", "{\"type\":\"Strip\"}",
         GEMMA_ERR_UNSUPPORTED, "decoder.decoders[1].type 'Strip'"},
        {"\"decoder\":{", "\"decoder\":null,\"x\":{", GEMMA_ERR_UNSUPPORTED, "decoder"},
        {"\"TemplateProcessing\"", "\"BertProcessing\"", GEMMA_ERR_UNSUPPORTED, "post_processor.type"},
        {"\"ids\":[1]", "\"ids\":[1,1]", GEMMA_ERR_FORMAT, "must hold one id"},
        {"\"ids\":[1]", "\"ids\":[7777]", GEMMA_ERR_FORMAT, "id 7777 is not in the vocabulary"},
    };
    for (size_t i = 0; i < sizeof edits / sizeof *edits; i++)
        expect_bad_edit(edits[i].from, edits[i].to, edits[i].code, edits[i].needle);
    /* Paths. */
    gemma_tokenizer *t;
    gemma_error err;
    assert_int_equal(gemma_tokenizer_load(GEMMA_TEST_TMPDIR "/no/such/tokenizer.json", &t, &err), GEMMA_ERR_IO);
    assert_int_equal(gemma_tokenizer_load(tu_dir("tokenizer_empty_dir"), &t, &err), GEMMA_ERR_IO);
    assert_non_null(strstr(err.message, "tokenizer.json"));
    assert_int_equal(gemma_tokenizer_load(NULL, &t, &err), GEMMA_ERR_ARG);
}

int main(void) {
    const struct CMUnitTest real_tests[] = {
        cmocka_unit_test(test_load_and_lookup),
        cmocka_unit_test(test_golden),
        cmocka_unit_test(test_added_tokens_inline),
        cmocka_unit_test(test_no_special),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_buffer_and_counting),
        cmocka_unit_test(test_decode),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_stream_emoji),
        cmocka_unit_test(test_stream_equals_batch),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_hf_corpus),
    };
    const struct CMUnitTest small_tests[] = {
        cmocka_unit_test(test_small_bpe),
        cmocka_unit_test(test_small_glue),
        cmocka_unit_test(test_small_split),
        cmocka_unit_test(test_bad_files),
    };
    int failed = cmocka_run_group_tests_name("small tokenizers and bad files", small_tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("Gemma 3 tokenizer.json", real_tests, setup_real, teardown_real);
    if (tu_have_real_gguf())
        failed += cmocka_run_group_tests_name("Gemma 3 tokenizer from GGUF", real_tests, setup_real_gguf, teardown_real);
    return failed;
}
