/* tokenizer_gguf.c - the tokenizer from a GGUF file's metadata.
 *
 * Why: most people hold a GGUF, not a Hugging Face folder, and a GGUF carries
 * its vocabulary (tokenizer.ggml.*).  The ids must still be exactly HF
 * tokenizers' on tokenizer.json, so this file undoes what llama.cpp's
 * converter (convert_hf_to_gguf.py) did to the SentencePiece vocabulary and
 * hands tokenizer.c the pieces HF's converter would have seen:
 *
 *   tokenizer.ggml.model      "llama" (SentencePiece) only; anything else is
 *                             GEMMA_ERR_UNSUPPORTED naming the key.
 *   tokenizer.ggml.tokens     the pieces; user-defined ones had "▁" written as
 *                             " " ("pre-normalized"): turned back, so that
 *                             "▁▁" (id 138) is matched and merged as in HF.
 *   tokenizer.ggml.scores     merge ranks (tokenizer.c derives the merges as
 *                             HF's SentencePieceExtractor does).  Control,
 *                             user-defined and unknown pieces rank with score
 *                             0, SentencePiece's own value for them, which the
 *                             converter overwrote with -1000.
 *   tokenizer.ggml.token_type 1 normal, 2 unknown, 3 control, 4 user-defined,
 *                             5 unused, 6 byte.  Control, user-defined and
 *                             unknown pieces are HF's added tokens (matched
 *                             whole on the raw text).  Which of them are
 *                             "special" the types cannot say: the converter
 *                             types <unusedN> and <mask> control although HF
 *                             does not mark them special, and may type
 *                             <start_of_image> / <end_of_image> user-defined
 *                             although HF does.  So: control and unknown
 *                             pieces are special except those placeholders,
 *                             plus the bos/eos/unk/pad ids and Gemma's image
 *                             markers.  Byte pieces must be <0xHH>, all 256.
 *   bos/eos/unknown/padding_token_id, add_bos_token (default true),
 *   add_space_prefix          (default true, as llama.cpp; true is not
 *                             supported: HF's Gemma has no dummy prefix).
 *   general.architecture      "gemma3": <image_soft_token> is added as id
 *                             n_tokens when missing; HF's tokenizer has it
 *                             there and the converter drops ids past the
 *                             embedding size.
 *
 * Every key is checked (type, array lengths, id ranges, empty pieces;
 * tokenizer.c rejects invalid UTF-8) and a bad one is a one-line error
 * naming the file and key. */
#include "core/error.h"
#include "io/gguf.h"
#include "text/tokenizer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER_DEFINED = 4, TT_UNUSED = 5, TT_BYTE = 6 };

#define KEY_TOKENS "tokenizer.ggml.tokens"
#define KEY_SCORES "tokenizer.ggml.scores"
#define KEY_TYPES "tokenizer.ggml.token_type"

static int is_piece(const char *s, size_t n, const char *want) { return n == strlen(want) && memcmp(s, want, n) == 0; }

/* Control pieces that HF does not mark special: the converter's
 * does_token_look_special list for Gemma (<mask>, <2mass>, [@BOS@], <unusedN>). */
static int placeholder(const char *s, size_t n) {
    if (is_piece(s, n, "<mask>") || is_piece(s, n, "<2mass>") || is_piece(s, n, "[@BOS@]")) return 1;
    if (n < 9 || memcmp(s, "<unused", 7) != 0 || s[n - 1] != '>') return 0;
    for (size_t i = 7; i + 1 < n; i++)
        if (s[i] < '0' || s[i] > '9') return 0;
    return 1;
}

/* Gemma's image markers, special in HF whatever type the converter gave them. */
static int image_marker(const char *s, size_t n) {
    return is_piece(s, n, "<start_of_image>") || is_piece(s, n, "<end_of_image>") ||
           is_piece(s, n, "<image_soft_token>");
}

/* "<0xHH>", upper-case hex: the name byte fallback looks pieces up by. */
static int byte_piece(const char *s, size_t n) {
    static const char hex[] = "0123456789ABCDEF";
    return n == 6 && memcmp(s, "<0x", 3) == 0 && s[5] == '>' && s[3] && strchr(hex, s[3]) && s[4] &&
           strchr(hex, s[4]);
}

typedef struct {
    const gm_gguf *g;
    const char *path;
    gemma_error *err;
    uint64_t n;          /* tokens in the file */
    gm_piece_vocab v;
    char **piece;        /* [n + 1] */
    uint32_t *len;
    float *score;
    uint8_t *kind;
    char *text;          /* all pieces, as rewritten */
} gg_loader;

/* An optional id key: absent leaves *out; present must be below n. */
static gemma_status get_id(gg_loader *G, const char *key, int32_t *out) {
    if (!gm_gguf_find_kv(G->g, key)) return GEMMA_OK;
    uint32_t v;
    gemma_status st = gm_gguf_get_u32(G->g, key, &v, G->err);
    if (st) return st;
    if (v >= G->n)
        return gm_fail(G->err, GEMMA_ERR_FORMAT, "%s: key '%s' = %u is out of range (%s has %llu tokens)", G->path,
                       key, (unsigned)v, KEY_TOKENS, (unsigned long long)G->n);
    *out = (int32_t)v;
    return GEMMA_OK;
}

static gemma_status get_flag(gg_loader *G, const char *key, int fallback, int *out) {
    *out = fallback;
    return gm_gguf_find_kv(G->g, key) ? gm_gguf_get_bool(G->g, key, out, G->err) : GEMMA_OK;
}

/* An array key with exactly G->n elements. */
static gemma_status get_parallel(gg_loader *G, const char *key, const gm_gguf_value **out) {
    gemma_status st = gm_gguf_get_arr(G->g, key, GM_GGUF_TYPE_COUNT, out, G->err);
    if (st) return st;
    if ((*out)->count != G->n)
        return gm_fail(G->err, GEMMA_ERR_FORMAT, "%s: key '%s' has %llu entries, %s has %llu", G->path, key,
                       (unsigned long long)(*out)->count, KEY_TOKENS, (unsigned long long)G->n);
    return GEMMA_OK;
}

static gemma_status oom(gg_loader *G) { return gm_fail(G->err, GEMMA_ERR_NOMEM, "%s: out of memory", G->path); }

/* The pieces as HF has them, their kinds and merge scores. */
static gemma_status read_pieces(gg_loader *G, const gm_gguf_value *tokens, const gm_gguf_value *scores,
                                const gm_gguf_value *types, const int32_t *named, size_t n_named, int *byte_fallback) {
    uint64_t n = G->n;
    size_t bytes = 0;
    for (uint64_t i = 0; i < n; i++) {
        size_t l;
        gm_gguf_arr_str(tokens, i, &l);
        if (l == 0) return gm_fail(G->err, GEMMA_ERR_FORMAT, "%s: key '%s': token %llu is empty", G->path, KEY_TOKENS,
                                   (unsigned long long)i);
        if (l > UINT32_MAX / 4 || bytes + 3 * l + 32 < bytes)
            return gm_fail(G->err, GEMMA_ERR_FORMAT, "%s: key '%s': token %llu is too long", G->path, KEY_TOKENS,
                           (unsigned long long)i);
        bytes += 3 * l;   /* a user-defined " " becomes three bytes */
    }
    G->piece = malloc((n + 1) * sizeof *G->piece);
    G->len = malloc((n + 1) * sizeof *G->len);
    G->score = malloc((n + 1) * sizeof *G->score);
    G->kind = malloc(n + 1);
    G->text = malloc(bytes + 32);
    if (!G->piece || !G->len || !G->score || !G->kind || !G->text) return oom(G);
    char *o = G->text;
    int n_bytes = 0;
    for (uint64_t i = 0; i < n; i++) {
        size_t l;
        const char *s = gm_gguf_arr_str(tokens, i, &l);
        int64_t type;
        double sc;
        if (!gm_gguf_arr_int(types, i, &type) || type < TT_NORMAL || type > TT_BYTE)
            return gm_fail(G->err, GEMMA_ERR_FORMAT, "%s: key '%s': entry %llu is not a token type (1..6)", G->path,
                           KEY_TYPES, (unsigned long long)i);
        if (!gm_gguf_arr_f64(scores, i, &sc) || !isfinite(sc) || fabs(sc) > 3.0e38)
            return gm_fail(G->err, GEMMA_ERR_FORMAT, "%s: key '%s': entry %llu is not a finite number", G->path,
                           KEY_SCORES, (unsigned long long)i);
        G->piece[i] = o;
        if (type == TT_USER_DEFINED) {
            for (size_t k = 0; k < l; k++) {
                if (s[k] == ' ') memcpy(o, "\xe2\x96\x81", 3), o += 3;
                else *o++ = s[k];
            }
        } else {
            memcpy(o, s, l);
            o += l;
        }
        G->len[i] = (uint32_t)(o - G->piece[i]);
        G->score[i] = type == TT_NORMAL || type == TT_UNUSED || type == TT_BYTE ? (float)sc : 0.0f;
        uint8_t kind = GM_PIECE_NORMAL;
        if (type == TT_BYTE) {
            if (!byte_piece(s, l))
                return gm_fail(G->err, GEMMA_ERR_FORMAT, "%s: key '%s': token %llu has the byte type but is not <0xHH>",
                               G->path, KEY_TYPES, (unsigned long long)i);
            kind = GM_PIECE_BYTE;
            n_bytes++;
        } else if (type == TT_CONTROL || type == TT_UNKNOWN) {
            kind = placeholder(s, l) ? GM_PIECE_ADDED : GM_PIECE_SPECIAL;
        } else if (type == TT_USER_DEFINED) {
            kind = image_marker(s, l) ? GM_PIECE_SPECIAL : GM_PIECE_ADDED;
        }
        G->kind[i] = kind;
    }
    for (size_t k = 0; k < n_named; k++)
        if (named[k] >= 0 && G->kind[named[k]] != GM_PIECE_BYTE) G->kind[named[k]] = GM_PIECE_SPECIAL;
    if (n_bytes && n_bytes != 256)
        return gm_fail(G->err, GEMMA_ERR_FORMAT,
                       "%s: key '%s' has %d byte tokens; byte fallback needs all 256 (<0x00>..<0xFF>) once each",
                       G->path, KEY_TYPES, n_bytes);
    *byte_fallback = n_bytes == 256;
    return GEMMA_OK;
}

/* Gemma 3's image placeholder, id n_tokens in HF, when the file lacks it. */
static void add_image_token(gg_loader *G) {
    const char *arch = NULL;
    const gm_gguf_kv *kv = gm_gguf_find_kv(G->g, "general.architecture");
    if (kv && kv->value.type == GM_GGUF_STRING) arch = kv->value.str;
    if (!arch || strcmp(arch, "gemma3") != 0) return;
    int has_start = 0;
    for (uint64_t i = 0; i < G->n; i++) {
        if (is_piece(G->piece[i], G->len[i], "<image_soft_token>")) return;
        has_start |= is_piece(G->piece[i], G->len[i], "<start_of_image>");
    }
    if (!has_start) return;
    static const char soft[] = "<image_soft_token>";
    G->piece[G->n] = (char *)soft;
    G->len[G->n] = (uint32_t)(sizeof soft - 1);
    G->score[G->n] = 0;
    G->kind[G->n] = GM_PIECE_SPECIAL;
    G->v.n_ids++;
}

static gemma_status build(gg_loader *G, gemma_tokenizer **out) {
    const gm_gguf *g = G->g;
    const char *model;
    gemma_status st = gm_gguf_get_str(g, "tokenizer.ggml.model", &model, NULL, G->err);
    if (st) return st;
    if (strcmp(model, "llama") != 0)
        return gm_fail(G->err, GEMMA_ERR_UNSUPPORTED,
                       "%s: key 'tokenizer.ggml.model' = '%.40s' is not supported (supported: llama, SentencePiece)",
                       G->path, model);
    const gm_gguf_value *tokens, *scores, *types;
    if ((st = gm_gguf_get_arr(g, KEY_TOKENS, GM_GGUF_STRING, &tokens, G->err))) return st;
    G->n = tokens->count;
    if (G->n == 0 || G->n >= (1u << 28))
        return gm_fail(G->err, GEMMA_ERR_FORMAT, "%s: key '%s' has %llu tokens (1 to 2^28 supported)", G->path,
                       KEY_TOKENS, (unsigned long long)G->n);
    if ((st = get_parallel(G, KEY_SCORES, &scores)) || (st = get_parallel(G, KEY_TYPES, &types))) return st;
    if (scores->elem_type != GM_GGUF_F32 && scores->elem_type != GM_GGUF_F64)
        return gm_fail(G->err, GEMMA_ERR_FORMAT, "%s: key '%s' is an array of %s, expected an array of FLOAT32",
                       G->path, KEY_SCORES, gm_gguf_type_name(scores->elem_type));
    gm_gguf_type te = types->elem_type;
    if (te == GM_GGUF_STRING || te == GM_GGUF_ARRAY || te == GM_GGUF_F32 || te == GM_GGUF_F64 || te == GM_GGUF_BOOL)
        return gm_fail(G->err, GEMMA_ERR_FORMAT, "%s: key '%s' is an array of %s, expected an array of INT32",
                       G->path, KEY_TYPES, gm_gguf_type_name(te));
    int add_bos, space_prefix;
    int32_t named[4] = {-1, -1, -1, -1};   /* bos, eos, unk, pad */
    if ((st = get_flag(G, "tokenizer.ggml.add_bos_token", 1, &add_bos)) ||
        (st = get_flag(G, "tokenizer.ggml.add_space_prefix", 1, &space_prefix)) ||
        (st = get_id(G, "tokenizer.ggml.bos_token_id", &named[0])) ||
        (st = get_id(G, "tokenizer.ggml.eos_token_id", &named[1])) ||
        (st = get_id(G, "tokenizer.ggml.unknown_token_id", &named[2])) ||
        (st = get_id(G, "tokenizer.ggml.padding_token_id", &named[3])))
        return st;
    if (space_prefix)
        return gm_fail(G->err, GEMMA_ERR_UNSUPPORTED,
                       "%s: key 'tokenizer.ggml.add_space_prefix' is %s: a dummy space prefix is not supported", G->path,
                       gm_gguf_find_kv(g, "tokenizer.ggml.add_space_prefix") ? "true" : "missing (default true)");
    if (add_bos && named[0] < 0)
        return gm_fail(G->err, GEMMA_ERR_FORMAT, "%s: key 'tokenizer.ggml.bos_token_id' is missing (add_bos_token is true)",
                       G->path);
    int byte_fallback = 0;
    if ((st = read_pieces(G, tokens, scores, types, named, 4, &byte_fallback))) return st;
    if (named[2] < 0) {   /* SentencePiece's own marking */
        int64_t type;
        for (uint64_t i = 0; i < G->n && named[2] < 0; i++)
            if (gm_gguf_arr_int(types, i, &type) && type == TT_UNKNOWN) named[2] = (int32_t)i;
    }
    if (named[2] >= 0 && G->kind[named[2]] == GM_PIECE_BYTE)
        return gm_fail(G->err, GEMMA_ERR_FORMAT, "%s: key 'tokenizer.ggml.unknown_token_id' names a byte token",
                       G->path);
    G->v = (gm_piece_vocab){.n_ids = (int32_t)G->n, .n_model = (int32_t)G->n, .piece = (const char *const *)G->piece,
                            .len = G->len, .score = G->score, .kind = G->kind, .unk = named[2],
                            .bos = add_bos ? named[0] : -1, .byte_fallback = byte_fallback, .key = KEY_TOKENS};
    add_image_token(G);
    return gm_tokenizer_from_pieces(&G->v, G->path, out, G->err);
}

gemma_status gm_tokenizer_from_gguf(const gm_gguf *g, gemma_tokenizer **out, gemma_error *err) {
    if (!g || !out) return gm_fail(err, GEMMA_ERR_ARG, "tokenizer: NULL argument");
    *out = NULL;
    gg_loader G = {.g = g, .path = gm_gguf_path(g), .err = err};
    gemma_status st = build(&G, out);
    free(G.piece);
    free(G.len);
    free(G.score);
    free(G.kind);
    free(G.text);
    return st;
}

gemma_status gm_tokenizer_load_gguf(const char *path, gemma_tokenizer **out, gemma_error *err) {
    if (!path || !out) return gm_fail(err, GEMMA_ERR_ARG, "tokenizer: NULL argument");
    *out = NULL;
    gm_gguf g;
    gemma_status st = gm_gguf_open(&g, path, err);
    if (st) return st;
    st = gm_tokenizer_from_gguf(&g, out, err);
    gm_gguf_close(&g);
    return st;
}
