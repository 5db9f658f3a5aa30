/* test_tokenizer_gguf.c - the tokenizer and chat format read from GGUF metadata.
 *
 * Why: a GGUF carries the vocabulary as SentencePiece pieces, scores and
 * token types, not as tokenizer.json, and the ids must still be HF's.  Small
 * GGUFs written here pin how merges come from scores (ties, the left/right
 * length order, user-defined pieces ranking first), which pieces are added or
 * special, and that every hostile variant (wrong types, arrays of different
 * lengths, bad token types and ids, empty pieces, missing keys, every
 * truncation) is a one-line error naming the file and key.  With the real
 * Gemma 3 270M GGUF, the tokenizer must equal the one from tokenizer.json
 * piece for piece, flag for flag and merge for merge (test_tokenizer runs
 * its whole suite, the HF corpus included, on both), and its chat format must
 * render the chat fixtures exactly as the tokenizer_config.json one does. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include <math.h>

#include "core/json.h"
#include "core/mapfile.h"
#include "gemma.h"
#include "io/gguf.h"
#include "text/chat.h"
#include "text/tokenizer.h"
#include "unit/testutil.h"
#include "unit/tokutil.h"

/* ================================================== a small GGUF writer */

typedef struct {
    uint8_t *p;
    size_t n, cap;
} gw_buf;

static void gw_bytes(gw_buf *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = 2 * (b->n + n) + 256;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    if (n) memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void gw_le(gw_buf *b, uint64_t v, int k) {
    for (int i = 0; i < k; i++) {
        uint8_t c = (uint8_t)(v >> (8 * i));
        gw_bytes(b, &c, 1);
    }
}

static void gw_string(gw_buf *b, const char *s, size_t n) {
    gw_le(b, n, 8);
    gw_bytes(b, s, n);
}

static void gw_key(gw_buf *b, const char *key, uint32_t type) {
    gw_string(b, key, strlen(key));
    gw_le(b, type, 4);
}

static void gw_kv_str(gw_buf *b, const char *key, const char *v) {
    gw_key(b, key, GM_GGUF_STRING);
    gw_string(b, v, strlen(v));
}

static void gw_kv_u32(gw_buf *b, const char *key, uint32_t v) {
    gw_key(b, key, GM_GGUF_U32);
    gw_le(b, v, 4);
}

static void gw_kv_bool(gw_buf *b, const char *key, int v) {
    gw_key(b, key, GM_GGUF_BOOL);
    gw_le(b, v != 0, 1);
}

static void gw_arr(gw_buf *b, const char *key, uint32_t elem, uint64_t count) {
    gw_key(b, key, GM_GGUF_ARRAY);
    gw_le(b, elem, 4);
    gw_le(b, count, 8);
}

/* One array element of type elem (F32, STRING, or a 32-bit integer) holding v. */
static void gw_elem(gw_buf *b, uint32_t elem, double v) {
    if (elem == GM_GGUF_STRING) {
        char s[32];
        gw_string(b, s, (size_t)snprintf(s, sizeof s, "%g", v));
    } else if (elem == GM_GGUF_F32) {
        float f = (float)v;
        uint32_t bits;
        memcpy(&bits, &f, 4);
        gw_le(b, bits, 4);
    } else {
        gw_le(b, (uint32_t)(int32_t)v, 4);
    }
}

/* ============================================ the small vocabulary */

typedef struct {
    const char *piece;
    size_t len;          /* 0: strlen(piece) */
    float score;
    int type;            /* GGUF token type */
} sv_entry;

static sv_entry sv[300];
static int sv_n;
static char sv_bytes[256][8];

enum { SV_BYTE0 = 12, SV_NORMAL = SV_BYTE0 + 256 };
/* Ids of the normal pieces (with byte tokens). */
enum { ID_SPACE = SV_NORMAL, ID_A, ID_B, ID_C, ID_E_ACUTE, ID_SPACE_A, ID_AB, ID_BC, ID_ABC, ID_AA, ID_AAA, SV_COUNT };

static void sv_add(const char *piece, float score, int type) { sv[sv_n++] = (sv_entry){piece, 0, score, type}; }

/* As llama.cpp's converter writes Gemma's: control and user-defined pieces
 * score -1000, byte pieces 0, normal pieces their SentencePiece score; the
 * user-defined "  " is HF's "▁▁". */
static void sv_build(int with_bytes) {
    sv_n = 0;
    static const char *const control[] = {"<pad>", "<eos>", "<bos>", "<unk>", "<mask>",
                                          "<start_of_turn>", "<end_of_turn>", "<unused0>"};
    for (int i = 0; i < 8; i++) sv_add(control[i], -1000, i == 3 ? 2 : 3);
    sv_add("\n", -1000, 4);
    sv_add("  ", -1000, 4);
    sv_add("<start_of_image>", -1000, 4);
    sv_add("<b>", -1000, 4);
    for (int b = 0; with_bytes && b < 256; b++) {
        snprintf(sv_bytes[b], sizeof sv_bytes[b], "<0x%02X>", b);
        sv_add(sv_bytes[b], 0, 6);
    }
    sv_add("\xe2\x96\x81", -1, 1);
    sv_add("a", -2, 1);
    sv_add("b", -3, 1);
    sv_add("c", -4, 1);
    sv_add("\xc3\xa9", -5, 1);
    sv_add("\xe2\x96\x81" "a", -6, 1);
    sv_add("ab", -10, 1);   /* ties with "bc": the lower id merges first */
    sv_add("bc", -10, 1);
    sv_add("abc", -20, 1);
    sv_add("aa", -30, 1);
    sv_add("aaa", -31, 1);
}

/* How the metadata deviates from the good file, one knob per test case. */
static struct {
    const char *drop;            /* leave this key out */
    uint32_t tokens_elem, scores_elem, types_elem;   /* element types; 0: the right one */
    int scores_delta, types_delta;                   /* entries more (or fewer) than tokens */
    const char *model;           /* tokenizer.ggml.model */
    uint32_t bos;                /* tokenizer.ggml.bos_token_id */
    int bos_as_string, add_space_prefix, add_bos_u32, template_u32;
    const char *arch;            /* general.architecture */
    const char *chat_template;   /* NULL: none */
    const char *eos_key;         /* a key set to 1,000,000 (an id out of range) */
    uint32_t unk;                /* tokenizer.ggml.unknown_token_id */
} knob;

static void knob_reset(void) {
    memset(&knob, 0, sizeof knob);
    knob.model = "llama";
    knob.bos = 2;
    knob.unk = 3;
    knob.arch = "gemma3";
}

static int keep(const char *key) { return !knob.drop || strcmp(knob.drop, key) != 0; }

/* The metadata of the small vocabulary under the current knobs. */
static void small_kvs(gw_buf *b, uint64_t *n_kv) {
#define KV(key) if (keep(key) && ++*n_kv)
    uint64_t n = (uint64_t)sv_n;
    KV("general.architecture") gw_kv_str(b, "general.architecture", knob.arch);
    KV("tokenizer.ggml.model") {
        if (knob.model) gw_kv_str(b, "tokenizer.ggml.model", knob.model);
        else gw_kv_u32(b, "tokenizer.ggml.model", 7);
    }
    KV("tokenizer.ggml.pre") gw_kv_str(b, "tokenizer.ggml.pre", "default");
    KV("tokenizer.ggml.tokens") {
        uint32_t e = knob.tokens_elem ? knob.tokens_elem : GM_GGUF_STRING;
        gw_arr(b, "tokenizer.ggml.tokens", e, n);
        for (int i = 0; i < sv_n; i++) {
            if (e == GM_GGUF_STRING) gw_string(b, sv[i].piece, sv[i].len ? sv[i].len : strlen(sv[i].piece));
            else gw_le(b, (uint64_t)i, 4);
        }
    }
    KV("tokenizer.ggml.scores") {
        uint32_t e = knob.scores_elem ? knob.scores_elem : GM_GGUF_F32;
        uint64_t m = n + (uint64_t)(int64_t)knob.scores_delta;
        gw_arr(b, "tokenizer.ggml.scores", e, m);
        for (uint64_t i = 0; i < m; i++) gw_elem(b, e, i < n ? sv[i].score : 0);
    }
    KV("tokenizer.ggml.token_type") {
        uint32_t e = knob.types_elem ? knob.types_elem : GM_GGUF_I32;
        uint64_t m = n + (uint64_t)(int64_t)knob.types_delta;
        gw_arr(b, "tokenizer.ggml.token_type", e, m);
        for (uint64_t i = 0; i < m; i++) gw_elem(b, e, i < n ? sv[i].type : 1);
    }
    KV("tokenizer.ggml.bos_token_id") {
        if (knob.bos_as_string) gw_kv_str(b, "tokenizer.ggml.bos_token_id", "2");
        else gw_kv_u32(b, "tokenizer.ggml.bos_token_id", knob.bos);
    }
    static const char *const ids[][2] = {{"tokenizer.ggml.eos_token_id", "1"},
                                         {"tokenizer.ggml.unknown_token_id", "3"},
                                         {"tokenizer.ggml.padding_token_id", "0"}};
    for (int i = 0; i < 3; i++) {
        uint32_t v = i == 1 ? knob.unk : (uint32_t)atoi(ids[i][1]);
        if (knob.eos_key && strcmp(knob.eos_key, ids[i][0]) == 0) v = 1000000u;
        KV(ids[i][0]) gw_kv_u32(b, ids[i][0], v);
    }
    KV("tokenizer.ggml.add_bos_token") {
        if (knob.add_bos_u32) gw_kv_u32(b, "tokenizer.ggml.add_bos_token", 1);
        else gw_kv_bool(b, "tokenizer.ggml.add_bos_token", 1);
    }
    KV("tokenizer.ggml.add_space_prefix") gw_kv_bool(b, "tokenizer.ggml.add_space_prefix", knob.add_space_prefix);
    if (knob.template_u32) {
        ++*n_kv;
        gw_kv_u32(b, "tokenizer.chat_template", 5);
    } else if (knob.chat_template) {
        ++*n_kv;
        gw_kv_str(b, "tokenizer.chat_template", knob.chat_template);
    }
#undef KV
}

/* The whole file: header, the metadata, no tensors. */
static gw_buf small_file(void) {
    gw_buf kvs = {0}, f = {0};
    uint64_t n_kv = 0;
    small_kvs(&kvs, &n_kv);
    gw_bytes(&f, "GGUF", 4);
    gw_le(&f, 3, 4);
    gw_le(&f, 0, 8);
    gw_le(&f, n_kv, 8);
    gw_bytes(&f, kvs.p, kvs.n);
    free(kvs.p);
    return f;
}

/* Write the small file as dir/name; returns its path (static, 4 in rotation). */
static const char *write_small(const char *dir, const char *name) {
    static char paths[4][1200];
    static int next;
    char *p = paths[next++ & 3];
    gw_buf f = small_file();
    tu_write(tu_path(p, 1200, dir, name), f.p, f.n);
    free(f.p);
    return p;
}

static gemma_tokenizer *load_ok(const char *path) {
    gemma_tokenizer *t;
    gemma_error err;
    if (gemma_tokenizer_load(path, &t, &err) != GEMMA_OK) fail_msg("%s", err.message);
    return t;
}

/* The error must be one line, start with "path: " and contain both needles. */
static void check_message(const gemma_error *err, const char *path, const char *s1, const char *s2) {
    const char *m = err->message;
    size_t pl = strlen(path);
    if (strncmp(m, path, pl) != 0 || strncmp(m + pl, ": ", 2) != 0)
        fail_msg("message '%s' does not start with '%s: '", m, path);
    if (strchr(m, '\n')) fail_msg("message '%s' is not one line", m);
    if (s1 && !strstr(m, s1)) fail_msg("message '%s' lacks '%s'", m, s1);
    if (s2 && !strstr(m, s2)) fail_msg("message '%s' lacks '%s'", m, s2);
}

/* ====================================================== small: loading */

static void test_small_encode(void **state) {
    (void)state;
    knob_reset();
    sv_build(1);
    assert_int_equal(sv_n, SV_COUNT);
    const char *path = write_small(tu_dir("tok_gguf_small"), "small.gguf");
    gemma_tokenizer *t = load_ok(path);
    const int32_t SOFT = SV_COUNT;   /* <image_soft_token>, added after the vocabulary for gemma3 */
    assert_int_equal(gemma_tokenizer_vocab_size(t), SV_COUNT + 1);
    assert_int_equal(gemma_tokenizer_bos(t), 2);
    assert_string_equal(gemma_token_piece(t, 9), "\xe2\x96\x81\xe2\x96\x81");   /* "  " as HF has it */
    assert_string_equal(gemma_token_piece(t, SOFT), "<image_soft_token>");
    /* Special: control and unknown pieces but the placeholders, and the image markers. */
    static const int32_t special[] = {0, 1, 2, 3, 5, 6, 10, SV_COUNT};
    int n_special = 0;
    for (int32_t id = 0; id <= SV_COUNT; id++) n_special += gemma_token_is_special(t, id);
    assert_int_equal(n_special, 8);
    for (int i = 0; i < 8; i++) assert_true(gemma_token_is_special(t, special[i]));
    /* Added: every control, unknown and user-defined piece, in id order. */
    assert_int_equal(gm_tokenizer_added_count(t), 13);
    assert_int_equal(gm_tokenizer_added_id(t, 11), 11);
    assert_int_equal(gm_tokenizer_added_id(t, 12), SOFT);
    EXPECT(t, "abc", 0, ID_ABC);
    EXPECT(t, "bc", 0, ID_BC);
    EXPECT(t, "aaa", 0, ID_AAA);
    EXPECT(t, "aaaa", 0, ID_AA, ID_AA);
    EXPECT(t, " a", 0, ID_SPACE_A);
    EXPECT(t, "  a", 0, 9, ID_A);     /* (▁,▁) ranks first: a user-defined piece scores 0, not -1000 */
    EXPECT(t, "\xe2\x96\x81\xe2\x96\x81" "a", 0, 9, ID_A);   /* a raw "▁▁" is the added token */
    EXPECT(t, "x\xc3\xa9", 0, SV_BYTE0 + 'x', ID_E_ACUTE);
    EXPECT(t, "<b>ab\n", 0, 11, ID_AB, 8);
    EXPECT(t, "a<bos>b", 0, ID_A, 2, ID_B);
    EXPECT(t, "a<bos>b", GEMMA_TOKENIZE_NO_SPECIAL, ID_A, SV_BYTE0 + '<', ID_B, SV_BYTE0 + 'o', SV_BYTE0 + 's',
           SV_BYTE0 + '>', ID_B);
    EXPECT(t, "<mask><unused0>", GEMMA_TOKENIZE_NO_SPECIAL, 4, 7);
    EXPECT(t, "<start_of_image><image_soft_token>", 0, 10, SOFT);
    EXPECT(t, "a", GEMMA_TOKENIZE_ADD_BOS, 2, ID_A);
    int32_t ids[] = {9, ID_A, 8, SV_BYTE0 + 'x', 2, 6};
    assert_string_equal(decode(t, ids, 6, 0), "  a\nx<bos><end_of_turn>");
    assert_string_equal(decode(t, ids, 6, GEMMA_DETOKENIZE_SKIP_SPECIAL), "  a\nx");
    gemma_tokenizer_free(t);
}

/* The merges and their ranks, exactly (see tokenizer.h on how they are ranked). */
static void test_small_merge_ranks(void **state) {
    (void)state;
    knob_reset();
    sv_build(1);
    gemma_tokenizer *t = load_ok(write_small(tu_dir("tok_gguf_ranks"), "small.gguf"));
    static const int32_t want[][3] = {
        {ID_SPACE, ID_SPACE, 9},                    /* user-defined: score 0 */
        {ID_SPACE, ID_A, ID_SPACE_A},
        {ID_A, ID_B, ID_AB}, {ID_B, ID_C, ID_BC},   /* a tie in score: piece order */
        {ID_AB, ID_C, ID_ABC}, {ID_A, ID_BC, ID_ABC},   /* the longer left part first */
        {ID_A, ID_A, ID_AA},
        {ID_AA, ID_A, ID_AAA}, {ID_A, ID_AA, ID_AAA},
    };
    assert_int_equal(gm_tokenizer_merge_count(t), 9);
    for (int r = 0; r < 9; r++) {
        int32_t merged;
        assert_int_equal(gm_tokenizer_merge_rank(t, want[r][0], want[r][1], &merged), r);
        assert_int_equal(merged, want[r][2]);
    }
    assert_int_equal(gm_tokenizer_merge_rank(t, ID_B, ID_A, NULL), -1);
    assert_int_equal(gm_tokenizer_merge_rank(t, -1, ID_A, NULL), -1);
    gemma_tokenizer_free(t);
}

/* Without byte tokens, unknown characters become one fused <unk>; without
 * add_bos_token the bos is optional; another architecture gets no
 * <image_soft_token>. */
static void test_small_variants(void **state) {
    (void)state;
    const char *dir = tu_dir("tok_gguf_variants");
    knob_reset();
    sv_build(0);
    knob.arch = "llama";
    gemma_tokenizer *t = load_ok(write_small(dir, "nobytes.gguf"));
    const int32_t N = SV_NORMAL - 256;
    assert_int_equal(gemma_tokenizer_vocab_size(t), sv_n);
    assert_int_equal(gemma_token_id(t, "<image_soft_token>"), -1);
    EXPECT(t, "xy a", 0, 3, N + (ID_SPACE_A - SV_NORMAL));
    EXPECT(t, "axyzb", 0, N + (ID_A - SV_NORMAL), 3, N + (ID_B - SV_NORMAL));
    gemma_tokenizer_free(t);
    knob_reset();
    sv_build(1);
    knob.drop = "tokenizer.ggml.add_bos_token";   /* absent: true, as llama.cpp reads it */
    t = load_ok(write_small(dir, "bos.gguf"));
    assert_int_equal(gemma_tokenizer_bos(t), 2);
    gemma_tokenizer_free(t);
}

/* ============================================================ paths */

static void test_paths(void **state) {
    (void)state;
    knob_reset();
    sv_build(1);
    gemma_tokenizer *t;
    gemma_error err;
    /* A folder with one GGUF model (and a projector, which does not count). */
    const char *dir = tu_dir("tok_gguf_dir");
    write_small(dir, "model-q4.gguf");
    write_small(dir, "mmproj-model-f16.gguf");
    t = load_ok(dir);
    assert_int_equal(gemma_tokenizer_vocab_size(t), SV_COUNT + 1);
    gemma_tokenizer_free(t);
    /* The magic decides, not the name. */
    t = load_ok(write_small(dir, "weights.bin"));
    gemma_tokenizer_free(t);
    /* Two models: ambiguous. */
    write_small(dir, "model-q8.gguf");
    assert_int_equal(gemma_tokenizer_load(dir, &t, &err), GEMMA_ERR_IO);
    check_message(&err, dir, "no tokenizer.json", "more than one .gguf");
    gemma_chat_format *f;
    assert_int_equal(gemma_chat_format_load(dir, &f, &err), GEMMA_ERR_IO);
    check_message(&err, dir, "no tokenizer_config.json", "more than one .gguf");
    /* tokenizer.json wins over a GGUF. */
    char p[1200];
    if (gemma_tokenizer_load(GEMMA_TOKENIZER_DIR, &t, &err) == GEMMA_OK) {
        gemma_tokenizer_free(t);
        const char *both = tu_dir("tok_gguf_both");
        write_small(both, "model.gguf");
        char cmd[2600];
        snprintf(cmd, sizeof cmd, "cp '%s/tokenizer.json' '%s'", GEMMA_TOKENIZER_DIR, tu_path(p, sizeof p, both, ""));
        assert_int_equal(system(cmd), 0);
        t = load_ok(both);
        assert_int_equal(gemma_tokenizer_vocab_size(t), 262145);
        gemma_tokenizer_free(t);
    }
}

/* ===================================================== hostile files */

typedef struct {
    const char *what;
    gemma_status code;
    const char *key, *needle;
} bad_case;

/* Load the file the knobs describe; it must fail with a one-line message. */
static void expect_bad(const char *dir, const bad_case *c) {
    const char *path = write_small(dir, "bad.gguf");
    gemma_tokenizer *t = (gemma_tokenizer *)1;
    gemma_error err;
    gemma_status st = gemma_tokenizer_load(path, &t, &err);
    if (st == GEMMA_OK) fail_msg("%s: loaded, expected an error with '%s'", c->what, c->key);
    assert_null(t);
    if (st != c->code) fail_msg("%s: status %d (%s), expected %d", c->what, st, err.message, c->code);
    check_message(&err, path, c->key, c->needle);
}

static void test_bad_metadata(void **state) {
    (void)state;
    const char *dir = tu_dir("tok_gguf_bad");
    static const bad_case drops[] = {
        {"tokenizer.ggml.model", GEMMA_ERR_FORMAT, "tokenizer.ggml.model", "missing"},
        {"tokenizer.ggml.tokens", GEMMA_ERR_FORMAT, "tokenizer.ggml.tokens", "missing"},
        {"tokenizer.ggml.scores", GEMMA_ERR_FORMAT, "tokenizer.ggml.scores", "missing"},
        {"tokenizer.ggml.token_type", GEMMA_ERR_FORMAT, "tokenizer.ggml.token_type", "missing"},
        {"tokenizer.ggml.bos_token_id", GEMMA_ERR_FORMAT, "tokenizer.ggml.bos_token_id", "missing"},
        {"tokenizer.ggml.add_space_prefix", GEMMA_ERR_UNSUPPORTED, "tokenizer.ggml.add_space_prefix", "missing"},
    };
    for (size_t i = 0; i < sizeof drops / sizeof *drops; i++) {
        knob_reset();
        sv_build(1);
        knob.drop = drops[i].what;
        expect_bad(dir, &drops[i]);
    }
    /* Types, lengths, values: one knob each. */
    enum { N_CASES = 17 };
    static const bad_case cases[N_CASES] = {
        {"model gpt2", GEMMA_ERR_UNSUPPORTED, "tokenizer.ggml.model", "'gpt2' is not supported"},
        {"model not a string", GEMMA_ERR_FORMAT, "tokenizer.ggml.model", "expected STRING"},
        {"tokens of integers", GEMMA_ERR_FORMAT, "tokenizer.ggml.tokens", "expected an array of STRING"},
        {"scores of integers", GEMMA_ERR_FORMAT, "tokenizer.ggml.scores", "expected an array of FLOAT32"},
        {"types of floats", GEMMA_ERR_FORMAT, "tokenizer.ggml.token_type", "expected an array of INT32"},
        {"scores too short", GEMMA_ERR_FORMAT, "tokenizer.ggml.scores", "entries"},
        {"types too long", GEMMA_ERR_FORMAT, "tokenizer.ggml.token_type", "entries"},
        {"bos out of range", GEMMA_ERR_FORMAT, "tokenizer.ggml.bos_token_id", "out of range"},
        {"bos a string", GEMMA_ERR_FORMAT, "tokenizer.ggml.bos_token_id", "expected an integer"},
        {"eos out of range", GEMMA_ERR_FORMAT, "tokenizer.ggml.eos_token_id", "out of range"},
        {"unk out of range", GEMMA_ERR_FORMAT, "tokenizer.ggml.unknown_token_id", "out of range"},
        {"pad out of range", GEMMA_ERR_FORMAT, "tokenizer.ggml.padding_token_id", "out of range"},
        {"dummy prefix", GEMMA_ERR_UNSUPPORTED, "tokenizer.ggml.add_space_prefix", "not supported"},
        {"add_bos a number", GEMMA_ERR_FORMAT, "tokenizer.ggml.add_bos_token", "expected BOOL"},
        {"model bert", GEMMA_ERR_UNSUPPORTED, "tokenizer.ggml.model", "supported: llama"},
        {"scores of strings", GEMMA_ERR_FORMAT, "tokenizer.ggml.scores", "expected an array of FLOAT32"},
        {"types of strings", GEMMA_ERR_FORMAT, "tokenizer.ggml.token_type", "expected an array of INT32"},
    };
    for (int i = 0; i < N_CASES; i++) {
        knob_reset();
        sv_build(1);
        switch (i) {
        case 0: knob.model = "gpt2"; break;
        case 1: knob.model = NULL; break;
        case 2: knob.tokens_elem = GM_GGUF_I32; break;
        case 3: knob.scores_elem = GM_GGUF_I32; break;
        case 4: knob.types_elem = GM_GGUF_F32; break;
        case 5: knob.scores_delta = -1; break;
        case 6: knob.types_delta = 3; break;
        case 7: knob.bos = (uint32_t)SV_COUNT; break;
        case 8: knob.bos_as_string = 1; break;
        case 9: knob.eos_key = "tokenizer.ggml.eos_token_id"; break;
        case 10: knob.eos_key = "tokenizer.ggml.unknown_token_id"; break;
        case 11: knob.eos_key = "tokenizer.ggml.padding_token_id"; break;
        case 12: knob.add_space_prefix = 1; break;
        case 13: knob.add_bos_u32 = 1; break;
        case 14: knob.model = "bert"; break;
        case 15: knob.scores_elem = GM_GGUF_STRING; break;
        case 16: knob.types_elem = GM_GGUF_STRING; break;
        }
        expect_bad(dir, &cases[i]);
    }
}

/* Bad pieces and token types, one entry of the vocabulary at a time. */
static void test_bad_pieces(void **state) {
    (void)state;
    const char *dir = tu_dir("tok_gguf_bad_pieces");
    static const float nan_score = NAN, inf_score = INFINITY;
    static const struct {
        int index;
        const char *piece;     /* NULL: keep */
        size_t len;
        int type;              /* -100: keep */
        float score;           /* 1: keep */
        bad_case c;
    } cases[] = {
        {ID_B, "", 0, -100, 1, {"empty piece", GEMMA_ERR_FORMAT, "tokenizer.ggml.tokens", "token 270 is empty"}},
        {ID_B, "\xff" "b", 0, -100, 1, {"bad UTF-8", GEMMA_ERR_FORMAT, "tokenizer.ggml.tokens", "UTF-8"}},
        {ID_B, "\xed\xa0\x80", 0, -100, 1, {"surrogate", GEMMA_ERR_FORMAT, "tokenizer.ggml.tokens", "UTF-8"}},
        {ID_B, "a", 0, -100, 1, {"duplicate", GEMMA_ERR_FORMAT, "tokenizer.ggml.tokens", "appears twice"}},
        {ID_AA, "\xe2\x96\x81\xe2\x96\x81", 0, -100, 1,
         {"twin of a user-defined piece", GEMMA_ERR_FORMAT, "tokenizer.ggml.tokens", "appears twice"}},
        {ID_SPACE, "z", 0, -100, 1, {"no space piece", GEMMA_ERR_FORMAT, "tokenizer.ggml.tokens", "U+2581"}},
        {ID_B, NULL, 0, 0, 1, {"type 0", GEMMA_ERR_FORMAT, "tokenizer.ggml.token_type", "entry 270 is not a token type"}},
        {ID_B, NULL, 0, 7, 1, {"type 7", GEMMA_ERR_FORMAT, "tokenizer.ggml.token_type", "not a token type"}},
        {ID_B, NULL, 0, -1, 1, {"type -1", GEMMA_ERR_FORMAT, "tokenizer.ggml.token_type", "not a token type"}},
        {ID_B, NULL, 0, 6, 1, {"byte type on 'b'", GEMMA_ERR_FORMAT, "tokenizer.ggml.token_type", "<0xHH>"}},
        {SV_BYTE0 + 7, NULL, 0, 1, 1, {"255 byte pieces", GEMMA_ERR_FORMAT, "tokenizer.ggml.token_type", "256"}},
        {SV_BYTE0 + 7, "<0x07", 0, -100, 1, {"byte name", GEMMA_ERR_FORMAT, "tokenizer.ggml.token_type", "<0xHH>"}},
        {SV_BYTE0 + 7, "<0x0a>", 0, -100, 1, {"lower-case byte", GEMMA_ERR_FORMAT, "tokenizer.ggml.token_type", "<0xHH>"}},
        {ID_B, NULL, 0, -100, nan_score, {"NaN score", GEMMA_ERR_FORMAT, "tokenizer.ggml.scores", "entry 270"}},
        {ID_B, NULL, 0, -100, inf_score, {"infinite score", GEMMA_ERR_FORMAT, "tokenizer.ggml.scores", "finite"}},
        {3, NULL, 0, 6, 1, {"unk a byte", GEMMA_ERR_FORMAT, "tokenizer.ggml.token_type", "<0xHH>"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        knob_reset();
        sv_build(1);
        sv_entry *e = &sv[cases[i].index];
        if (cases[i].piece) e->piece = cases[i].piece;
        if (cases[i].piece && !cases[i].piece[0]) e->len = 0;
        if (cases[i].type != -100) e->type = cases[i].type;
        if (cases[i].score != 1) e->score = cases[i].score;
        expect_bad(dir, &cases[i].c);
    }
    /* Pieces so long that deriving their merges would take minutes. */
    knob_reset();
    sv_build(1);
    static char longs[3][30001];
    for (int k = 0; k < 3; k++) {
        memset(longs[k], 'a' + k, 30000);
        sv_add(longs[k], -50, 1);
    }
    static const bad_case too_long = {"long pieces", GEMMA_ERR_UNSUPPORTED, "tokenizer.ggml.tokens", "too long"};
    expect_bad(dir, &too_long);
    /* An empty vocabulary. */
    knob_reset();
    sv_n = 0;
    static const bad_case empty = {"no tokens", GEMMA_ERR_FORMAT, "tokenizer.ggml.tokens", "0 tokens"};
    expect_bad(dir, &empty);
    /* The unknown id naming a byte piece. */
    knob_reset();
    sv_build(1);
    knob.unk = SV_BYTE0;
    static const bad_case unk_byte = {"unk a byte", GEMMA_ERR_FORMAT, "tokenizer.ggml.unknown_token_id", "byte"};
    expect_bad(dir, &unk_byte);
    /* No unknown id at all: fine with byte fallback. */
    knob_reset();
    sv_build(1);
    sv[3].type = 3;
    knob.drop = "tokenizer.ggml.unknown_token_id";
    gemma_tokenizer *t = load_ok(write_small(dir, "nounk.gguf"));
    gemma_tokenizer_free(t);
}

/* Every prefix of a good file fails cleanly, and so does the file with any
 * one byte of its metadata flipped (or it loads: a flipped score is fine). */
static void test_truncated_and_flipped(void **state) {
    (void)state;
    knob_reset();
    sv_build(1);
    gw_buf f = small_file();
    const char *dir = tu_dir("tok_gguf_cut");
    char path[1200];
    tu_path(path, sizeof path, dir, "cut.gguf");
    for (size_t n = 4; n < f.n; n += 1 + n / 64) {
        tu_write(path, f.p, n);
        gemma_tokenizer *t;
        gemma_error err;
        if (gemma_tokenizer_load(path, &t, &err) == GEMMA_OK) fail_msg("a file cut at %zu bytes loaded", n);
        check_message(&err, path, NULL, NULL);
    }
    for (size_t at = 24; at < f.n; at += 7) {
        uint8_t *copy = malloc(f.n);
        memcpy(copy, f.p, f.n);
        copy[at] ^= 0x5a;
        tu_write(path, copy, f.n);
        free(copy);
        gemma_tokenizer *t;
        gemma_error err;
        if (gemma_tokenizer_load(path, &t, &err) == GEMMA_OK) gemma_tokenizer_free(t);
        else check_message(&err, path, NULL, NULL);
    }
    free(f.p);
}

/* ============================================================ chat */

static const char *render(const gemma_chat_format *fmt, const char *json) {
    static char out[8192];
    size_t len;
    gemma_error err;
    if (gemma_chat_render_json(fmt, json, strlen(json), 1, out, sizeof out, &len, &err) != GEMMA_OK)
        fail_msg("%s", err.message);
    return out;
}

static void test_small_chat(void **state) {
    (void)state;
    const char *dir = tu_dir("tok_gguf_chat");
    const char *conv = "[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":\" hi \"}]";
    gemma_chat_format *f;
    gemma_error err;
    /* No template, architecture gemma3: the built-in Gemma 3 format. */
    knob_reset();
    sv_build(1);
    const char *path = write_small(dir, "model.gguf");
    assert_int_equal(gemma_chat_format_load(path, &f, &err), GEMMA_OK);
    assert_string_equal(gemma_chat_format_name(f), "gemma3");
    assert_string_equal(render(f, conv), "<bos><start_of_turn>user\nBe brief.\n\nhi<end_of_turn>\n<start_of_turn>model\n");
    gemma_chat_format_free(f);
    assert_int_equal(gemma_chat_format_load(dir, &f, &err), GEMMA_OK);   /* the folder holding it */
    gemma_chat_format_free(f);
    /* tokenizer.chat_template wins (this one puts "\n" after the system text). */
    knob.chat_template = "{{ bos_token }}{%- set first_user_prefix = messages[0]['content'] + '\\n' -%}"
                         "{{ raise_exception(\"Conversation roles must alternate user/assistant/user/assistant/...\") }}"
                         "<start_of_turn>";
    path = write_small(dir, "model.gguf");
    assert_int_equal(gemma_chat_format_load(path, &f, &err), GEMMA_OK);
    assert_string_equal(render(f, conv), "<bos><start_of_turn>user\nBe brief.\nhi<end_of_turn>\n<start_of_turn>model\n");
    gemma_chat_format_free(f);
    /* Errors name the file and key. */
    knob.chat_template = "{{ messages }}";
    path = write_small(dir, "model.gguf");
    assert_int_equal(gemma_chat_format_load(path, &f, &err), GEMMA_ERR_UNSUPPORTED);
    check_message(&err, path, "tokenizer.chat_template", "not recognised");
    knob_reset();
    knob.template_u32 = 1;
    path = write_small(dir, "model.gguf");
    assert_int_equal(gemma_chat_format_load(path, &f, &err), GEMMA_ERR_FORMAT);
    check_message(&err, path, "tokenizer.chat_template", "expected STRING");
    knob_reset();
    knob.arch = "llama";
    path = write_small(dir, "model.gguf");
    assert_int_equal(gemma_chat_format_load(path, &f, &err), GEMMA_ERR_UNSUPPORTED);
    check_message(&err, path, "tokenizer.chat_template", "'llama'");
    knob_reset();
    knob.drop = "general.architecture";
    path = write_small(dir, "model.gguf");
    assert_int_equal(gemma_chat_format_load(path, &f, &err), GEMMA_ERR_FORMAT);
    check_message(&err, path, "general.architecture", "missing");
    /* A tokenizer_config.json next to the GGUF is used instead. */
    char p[1200];
    tu_write_str(tu_path(p, sizeof p, dir, "tokenizer_config.json"), "{\"bos_token\":\"<s>\",\"chat_template\":"
                 "\"{{ first_user_prefix }}<start_of_turn>Conversation roles must alternate\"}");
    assert_int_equal(gemma_chat_format_load(dir, &f, &err), GEMMA_OK);
    assert_string_equal(render(f, "[{\"role\":\"user\",\"content\":\"x\"}]"),
                        "<s><start_of_turn>user\nx<end_of_turn>\n<start_of_turn>model\n");
    gemma_chat_format_free(f);
}

/* ================================================ the real Gemma 3 GGUF */

static gemma_tokenizer *from_json, *from_gguf;

static int setup_real(void **state) {
    (void)state;
    gemma_error err;
    double t0 = now_s();
    if (gemma_tokenizer_load(GEMMA_TOKENIZER_DIR, &from_json, &err) != GEMMA_OK) {
        fprintf(stderr, "%s\n", err.message);
        return -1;
    }
    double t1 = now_s();
    if (gemma_tokenizer_load(tu_real_gguf(), &from_gguf, &err) != GEMMA_OK) {
        fprintf(stderr, "%s\n", err.message);
        return -1;
    }
    fprintf(stderr, "loaded: tokenizer.json in %.3f s, the GGUF's tokenizer in %.3f s\n", t1 - t0, now_s() - t1);
    return 0;
}

static int teardown_real(void **state) {
    (void)state;
    gemma_tokenizer_free(from_json);
    gemma_tokenizer_free(from_gguf);
    return 0;
}

static void test_real_same_vocab(void **state) {
    (void)state;
    int n = gemma_tokenizer_vocab_size(from_json);
    assert_int_equal(n, 262145);
    assert_int_equal(gemma_tokenizer_vocab_size(from_gguf), n);
    assert_int_equal(gemma_tokenizer_bos(from_gguf), gemma_tokenizer_bos(from_json));
    size_t differ = 0;
    for (int32_t id = 0; id < n; id++) {
        const char *a = gemma_token_piece(from_json, id), *b = gemma_token_piece(from_gguf, id);
        if (strcmp(a, b) != 0 || gemma_token_is_special(from_json, id) != gemma_token_is_special(from_gguf, id) ||
            gemma_token_id(from_gguf, a) != gemma_token_id(from_json, a)) {
            if (differ++ < 5) fprintf(stderr, "id %d: '%s' special %d vs '%s' special %d\n", id, a,
                                      gemma_token_is_special(from_json, id), b, gemma_token_is_special(from_gguf, id));
        }
    }
    assert_int_equal(differ, 0);
    assert_int_equal(gm_tokenizer_added_count(from_gguf), gm_tokenizer_added_count(from_json));
    for (size_t i = 0; i < gm_tokenizer_added_count(from_json); i++)
        assert_int_equal(gm_tokenizer_added_id(from_gguf, i), gm_tokenizer_added_id(from_json, i));
    assert_int_equal(gm_tokenizer_max_piece_len(from_gguf), gm_tokenizer_max_piece_len(from_json));
}

/* The merges rebuilt from the scores are tokenizer.json's model.merges, rank for rank. */
static void test_real_same_merges(void **state) {
    (void)state;
    gm_json_doc *doc = tu_load_json(GEMMA_TOKENIZER_DIR "/tokenizer.json");
    const gm_json *merges = gm_json_get(gm_json_get(gm_json_root(doc), "model"), "merges");
    size_t n = gm_json_count(merges), differ = 0;
    assert_int_equal(n, 514906);
    assert_int_equal(gm_tokenizer_merge_count(from_json), n);
    assert_int_equal(gm_tokenizer_merge_count(from_gguf), n);
    for (size_t r = 0; r < n; r++) {
        const gm_json *m = gm_json_at(merges, r);
        int32_t a = gemma_token_id(from_json, gm_json_string(gm_json_at(m, 0)));
        int32_t b = gemma_token_id(from_json, gm_json_string(gm_json_at(m, 1)));
        int32_t c1, c2;
        int64_t r1 = gm_tokenizer_merge_rank(from_json, a, b, &c1), r2 = gm_tokenizer_merge_rank(from_gguf, a, b, &c2);
        if (r1 != (int64_t)r || r2 != (int64_t)r || c1 != c2) {
            if (differ++ < 5) fprintf(stderr, "merge %zu (%d, %d): rank %lld from the GGUF\n", r, a, b, (long long)r2);
        }
    }
    gm_json_free(doc);
    assert_int_equal(differ, 0);
}

/* The chat format of the GGUF (it has no template: the built-in one) renders
 * every chat fixture as the tokenizer_config.json format does. */
static void test_real_chat(void **state) {
    (void)state;
    gemma_chat_format *fg, *fj;
    gemma_error err;
    if (gemma_chat_format_load(tu_real_gguf(), &fg, &err)) fail_msg("%s", err.message);
    if (gemma_chat_format_load(GEMMA_TOKENIZER_DIR, &fj, &err)) fail_msg("%s", err.message);
    assert_string_equal(gemma_chat_format_name(fg), gemma_chat_format_name(fj));
    char *all;
    size_t size;
    if (gm_read_file(GEMMA_FIXTURES_DIR "/chat/gemma3.jsonl", (size_t)1 << 26, &all, &size, &err))
        fail_msg("%s", err.message);
    size_t cases = 0, rendered = 0;
    for (char *line = all; *line;) {
        char *end = strchr(line, '\n');
        size_t ll = end ? (size_t)(end - line) : strlen(line);
        char jerr[128];
        gm_json_doc *doc = ll ? gm_json_parse(line, ll, NULL, jerr, sizeof jerr) : NULL;
        if (doc) {
            const gm_json *row = gm_json_root(doc), *msgs = gm_json_get(row, "messages");
            const gm_json *agp = gm_json_get(row, "add_generation_prompt");
            int gen = agp && agp->type == GM_JSON_TRUE;
            gm_strbuf a, b;
            gm_strbuf_init(&a);
            gm_strbuf_init(&b);
            gemma_error ea, eb;
            gemma_status sa = gm_chat_render_json_value(fg, msgs, gen, &a, &ea);
            gemma_status sb = gm_chat_render_json_value(fj, msgs, gen, &b, &eb);
            assert_int_equal(sa, sb);
            if (!sa) {
                assert_int_equal(a.len, b.len);
                assert_memory_equal(a.data, b.data, a.len);
                rendered++;
            } else {
                assert_string_equal(ea.message, eb.message);
            }
            gm_strbuf_free(&a);
            gm_strbuf_free(&b);
            gm_json_free(doc);
            cases++;
        }
        line += ll + (end ? 1 : 0);
    }
    free(all);
    fprintf(stderr, "chat: %zu cases (%zu rendered) the same from the GGUF and tokenizer_config.json\n", cases,
            rendered);
    assert_int_equal(cases, 218);
    gemma_chat_format_free(fg);
    gemma_chat_format_free(fj);
}

int main(void) {
    const struct CMUnitTest small_tests[] = {
        cmocka_unit_test(test_small_encode),
        cmocka_unit_test(test_small_merge_ranks),
        cmocka_unit_test(test_small_variants),
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_bad_metadata),
        cmocka_unit_test(test_bad_pieces),
        cmocka_unit_test(test_truncated_and_flipped),
        cmocka_unit_test(test_small_chat),
    };
    const struct CMUnitTest real_tests[] = {
        cmocka_unit_test(test_real_same_vocab),
        cmocka_unit_test(test_real_same_merges),
        cmocka_unit_test(test_real_chat),
    };
    int failed = cmocka_run_group_tests_name("GGUF tokenizers written here", small_tests, NULL, NULL);
    if (tu_have_real_gguf())
        failed += cmocka_run_group_tests_name("Gemma 3 270M GGUF vs tokenizer.json", real_tests, setup_real, teardown_real);
    return failed;
}
