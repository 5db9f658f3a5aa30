/* tokenizer.c - the model's tokenizer: Hugging Face tokenizer.json, natively.
 *
 * Why: prompts must become exactly the ids HF `tokenizers` produces (the
 * models were trained on them) and generated ids must print exactly as HF
 * decodes them, without a Rust or C++ runtime.  tests/fixtures/tokenizer/
 * holds HF's ids and decodings for a corpus; test_tokenizer requires equality.
 *
 * Supported tokenizer.json (Gemma 3's, and files built the same way); any
 * other value fails at load with GEMMA_ERR_UNSUPPORTED naming the field:
 *   model           BPE: "vocab", "merges" as ["a","b"] pairs or "a b"
 *                   strings, byte_fallback, fuse_unk, unk_token, ignore_merges;
 *                   dropout null or 0; no continuing_subword_prefix or
 *                   end_of_word_suffix.
 *   added_tokens    id, content, special, normalized; single_word, lstrip and
 *                   rstrip false.  A token outside model.vocab must carry the
 *                   id HF assigns it (the next one after the vocabulary and
 *                   the added tokens before it), so ids cannot silently differ.
 *   normalizer      null, Replace (String pattern -> one character that is in
 *                   the vocabulary), or a Sequence of those.  This keeps the
 *                   API's promise that len + 1 ids always suffice.
 *   pre_tokenizer   null, Split (String pattern, any behavior, invert false),
 *                   or a Sequence holding at most one Split.
 *   post_processor  null, or TemplateProcessing whose single template is $A
 *                   or one special token then $A (GEMMA_TOKENIZE_ADD_BOS).
 *   decoder         Replace (String pattern), ByteFallback and Fuse, alone or
 *                   in a Sequence, Replace steps before ByteFallback, Fuse last.
 *   truncation, padding: null.
 *
 * A GGUF file carries the same vocabulary as SentencePiece pieces, scores
 * and token types (tokenizer_gguf.c reads them); gm_tokenizer_from_pieces
 * builds from those the tokenizer HF's converter writes into tokenizer.json,
 * merges derived from the scores, so both sources give the same ids.
 *
 * Encoding, as HF does it: added tokens are matched on the raw text, leftmost
 * first and then longest (Aho-Corasick LeftmostLongest in HF; here a trie
 * walked from each position, which finds the same matches).  With
 * GEMMA_TOKENIZE_NO_SPECIAL a special match is skipped and stays plain text
 * (HF's split_special_tokens).  Each stretch between added tokens is
 * normalized, split again on "normalized" added tokens, pre-tokenized, and run
 * through BPE: every character becomes its vocabulary piece or else its
 * <0xHH> byte pieces (else <unk>), then the adjacent pair of lowest merge rank
 * (ties: leftmost) is merged until no pair has a rank: a priority queue over a
 * linked list of symbols, O(n log n), with HF's own rule for stale entries.
 * Where the vocabulary proves that no merge can cross the start of a "▁"
 * word (find_word_starts), the merging runs word by word, short words by a
 * linear scan: the same ids, about eight times faster than HF on PubMedQA.
 *
 * Invalid UTF-8 input (stray continuation or bad lead bytes, truncated
 * sequences, overlong forms, UTF-16 surrogates, code points above U+10FFFF:
 * what Rust's str rejects) fails with GEMMA_ERR_ARG and the message
 * "text: invalid UTF-8 at byte offset N (0xHH)", N being the offset of the
 * first byte of the bad sequence.
 *
 * Decoding, as HF's decode does: ids outside the vocabulary are dropped,
 * special ones too with SKIP_SPECIAL; pieces get the decoder's Replace steps
 * ("▁" -> " "), and a run of <0xHH> pieces becomes its bytes if they are valid
 * UTF-8, else one U+FFFD per byte of the run.  The streaming decoder cannot
 * wait for a run to end (its output per push is bounded), so it emits each
 * character as soon as it is complete and turns only the offending bytes into
 * U+FFFD: the same text as gemma_detokenize whenever byte runs are valid.
 *
 * The tokenizer is immutable after loading and encoding allocates its scratch
 * per call, so any number of threads may share one.  All strings live in one
 * arena; the JSON tree is freed before loading returns. */
#include "text/tokenizer.h"
#include "core/error.h"
#include "core/json.h"
#include "core/mapfile.h"
#include "io/modeldir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define TK_MAX_FILE_BYTES ((size_t)1 << 30)
#define TK_MAX_IDS (1 << 28)
#define TK_MAX_STEPS 8
#define TK_EMPTY UINT32_MAX
/* A decoded piece plus a pending UTF-8 tail turned into U+FFFD must fit one push. */
#define TK_MAX_TEXT (GEMMA_DETOKENIZER_MAX_OUT - 16)

/* TK_GLUE: the piece ends in a character that some piece has right before
 * a "▁" (or in "▁"), so a merge may join it to a following "▁" (see bpe). */
enum { TK_PRESENT = 1, TK_SPECIAL = 2, TK_ADDED = 4, TK_NORMALIZED = 8, TK_GLUE = 16 };
#define TK_SPACE 0x2581u   /* "▁", what Gemma's normalizer makes of " " */
#define TK_SCAN_MAX 32     /* words up to this many symbols merge by linear scan, longer ones through a heap */

typedef struct {
    uint32_t off, len;   /* a string in the arena (NUL-terminated there) */
} tk_span;

typedef struct {
    uint32_t hash, id;   /* id TK_EMPTY: free slot */
    uint32_t off, len;   /* the piece, copied here to save a cache miss per probe */
} tk_slot;

typedef struct {
    uint32_t cp;         /* TK_EMPTY: free slot */
    int32_t id;
} tk_cpslot;

typedef struct {
    uint64_t key;        /* left << 32 | right; UINT64_MAX: free slot */
    uint32_t rank, new_id;
} tk_merge;

/* Added-token patterns as a byte trie: children of a node are a sibling list,
 * except the root's, which are indexed by byte (that doubles as the
 * "could a token start here" test of the scanning loop). */
typedef struct {
    int32_t id;          /* token ending here, -1 if none */
    int32_t child, sibling;
    uint8_t byte;
} tk_node;

typedef struct {
    tk_node *node;
    size_t n, cap;
    int32_t root[256];
} tk_trie;

typedef enum { SPLIT_REMOVED, SPLIT_ISOLATED, SPLIT_MERGED_PREVIOUS, SPLIT_MERGED_NEXT, SPLIT_CONTIGUOUS } tk_behavior;

typedef struct {
    tk_span pattern, content;
} tk_replace;

struct gemma_tokenizer {
    char *arena;
    size_t arena_len, arena_cap;

    int32_t n_ids, n_model;       /* all ids; ids of model.vocab (0 .. n_model-1) */
    tk_span *piece;               /* [n_ids] the stored piece */
    tk_span *text;                /* [n_ids] the piece after the decoder's Replace steps */
    int16_t *byte;                /* [n_ids] byte of a <0xHH> piece when decoding with ByteFallback, else -1 */
    uint8_t *flags;               /* [n_ids] TK_* */
    int32_t *added;               /* added token ids in file order */
    size_t n_added;

    tk_slot *vocab;               /* every piece (model and added) -> id */
    uint32_t vocab_mask;
    tk_cpslot *chars;             /* single-character model pieces, by code point */
    uint32_t chars_mask;
    int32_t ascii[128];
    tk_merge *merges;
    uint32_t merges_mask;
    int merges_shift;
    size_t n_merges;              /* distinct pairs */

    int byte_fallback, fuse_unk, ignore_merges;
    int32_t unk, bos;
    int32_t space_id;             /* the piece "▁" */
    int word_split;               /* BPE may run word by word (see bpe) */
    int32_t byte_id[256];

    tk_replace norm[TK_MAX_STEPS];
    int n_norm;
    int has_split;
    tk_span split_pattern;
    tk_behavior split_behavior;
    tk_replace dec[TK_MAX_STEPS];
    int n_dec, dec_byte_fallback;

    tk_trie raw, normalized;      /* added tokens matched before / after normalization */
    int has_normalized_added;
    size_t max_text;
};

/* ============================================================== utilities */

/* Length of the valid UTF-8 sequence at s[0] (n >= 1 bytes available), 0 if
 * invalid; *cp receives the code point. */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp) {
    unsigned c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c < 0xc2 || c > 0xf4) return 0;
    size_t len = c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
    if (n < len) return 0;
    unsigned lo = 0x80, hi = 0xbf;
    if (c == 0xe0) lo = 0xa0;
    else if (c == 0xed) hi = 0x9f;
    else if (c == 0xf0) lo = 0x90;
    else if (c == 0xf4) hi = 0x8f;
    if (s[1] < lo || s[1] > hi) return 0;
    uint32_t v = c & (0x7f >> len);
    for (size_t k = 1; k < len; k++) {
        if ((s[k] & 0xc0) != 0x80) return 0;
        v = (v << 6) | (s[k] & 0x3f);
    }
    *cp = v;
    return len;
}

/* Offset of the first invalid sequence, or len if all of s is valid. */
static size_t utf8_check(const unsigned char *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        if (len - i >= 8) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (!(w & 0x8080808080808080ULL)) {
                i += 8;
                continue;
            }
        }
        uint32_t cp;
        size_t l = utf8_decode(s + i, len - i, &cp);
        if (!l) return i;
        i += l;
    }
    return len;
}

/* The code point at s (known valid); returns its length. */
static inline size_t utf8_next(const unsigned char *s, uint32_t *cp) {
    unsigned c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c < 0xe0) {
        *cp = ((c & 0x1fu) << 6) | (s[1] & 0x3fu);
        return 2;
    }
    if (c < 0xf0) {
        *cp = ((c & 0x0fu) << 12) | ((s[1] & 0x3fu) << 6) | (s[2] & 0x3fu);
        return 3;
    }
    *cp = ((c & 0x07u) << 18) | ((s[1] & 0x3fu) << 12) | ((s[2] & 0x3fu) << 6) | (s[3] & 0x3fu);
    return 4;
}

/* The number of characters in valid UTF-8. */
static size_t utf8_chars(const unsigned char *s, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++) c += (s[i] & 0xc0) != 0x80;
    return c;
}

static inline uint64_t mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static uint32_t hash_bytes(const void *p, size_t n) {
    const unsigned char *s = p;
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ (uint64_t)n;
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, s, 8);
        h = (h ^ v) * 0x100000001b3ULL;
        h ^= h >> 29;
        s += 8;
        n -= 8;
    }
    /* The last n < 8 bytes, little-endian, from overlapping loads: the same
     * value as copying them, without a call to memcpy. */
    uint64_t v = 0;
    if (n >= 4) {
        uint32_t lo, hi;
        memcpy(&lo, s, 4);
        memcpy(&hi, s + n - 4, 4);
        v = (uint64_t)lo | (uint64_t)hi << (8 * (n - 4));
    } else if (n) {
        v = (uint64_t)s[0] | (uint64_t)s[n / 2] << (8 * (n / 2)) | (uint64_t)s[n - 1] << (8 * (n - 1));
    }
    return (uint32_t)mix64(h ^ v);
}

/* A piece quoted for an error message: escapes, at most ~40 bytes shown. */
static const char *quote(char *buf, size_t cap, const char *s, size_t n) {
    size_t o = 0;
    buf[o++] = '\'';
    for (size_t i = 0; i < n && o + 8 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (i >= 40) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        if (c == '\n') o += (size_t)snprintf(buf + o, cap - o, "\\n");
        else if (c < 0x20 || c == 0x7f) o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", c);
        else buf[o++] = (char)c;
    }
    buf[o++] = '\'';
    buf[o] = 0;
    return buf;
}

static size_t pow2_at_least(size_t n) {
    size_t p = 16;
    while (p < n) p <<= 1;
    return p;
}

/* Grow *p (elements of `size` bytes) to hold at least `need`; 0 on failure. */
static int grow(void *pp, size_t *cap, size_t need, size_t size) {
    if (need <= *cap) return 1;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    if (c > SIZE_MAX / size) return 0;
    void **p = pp;
    void *q = realloc(*p, c * size);
    if (!q) return 0;
    *p = q;
    *cap = c;
    return 1;
}

/* ================================================================ tables */

static inline const char *span_str(const gemma_tokenizer *t, tk_span s) { return t->arena + s.off; }

static int arena_put(gemma_tokenizer *t, const void *s, size_t n, tk_span *out) {
    if (n >= UINT32_MAX || t->arena_len + n + 1 >= UINT32_MAX) return 0;
    if (!grow(&t->arena, &t->arena_cap, t->arena_len + n + 1, 1)) return 0;
    if (n) memcpy(t->arena + t->arena_len, s, n);
    t->arena[t->arena_len + n] = 0;
    out->off = (uint32_t)t->arena_len;
    out->len = (uint32_t)n;
    t->arena_len += n + 1;
    return 1;
}

#if defined(__GNUC__)
#define TK_PREFETCH(p) __builtin_prefetch(p)
#else
#define TK_PREFETCH(p) ((void)(p))
#endif

/* Any piece (model or added) with hash h -> id, -1 if absent. */
static int32_t vocab_find_h(const gemma_tokenizer *t, const void *s, size_t n, uint32_t h) {
    for (uint32_t i = h & t->vocab_mask;; i = (i + 1) & t->vocab_mask) {
        tk_slot sl = t->vocab[i];
        if (sl.id == TK_EMPTY) return -1;
        if (sl.hash == h && sl.len == n && memcmp(t->arena + sl.off, s, n) == 0) return (int32_t)sl.id;
    }
}

static int32_t vocab_find(const gemma_tokenizer *t, const void *s, size_t n) {
    return vocab_find_h(t, s, n, hash_bytes(s, n));
}

/* A piece of model.vocab -> id (what BPE may use), -1 if absent. */
static int32_t model_find(const gemma_tokenizer *t, const void *s, size_t n) {
    int32_t id = vocab_find(t, s, n);
    return id < t->n_model ? id : -1;
}

/* Index t->piece[id]; if that string is already there, return its id instead. */
static int32_t vocab_add_h(gemma_tokenizer *t, int32_t id, uint32_t h) {
    tk_span p = t->piece[id];
    uint32_t i = h & t->vocab_mask;
    for (; t->vocab[i].id != TK_EMPTY; i = (i + 1) & t->vocab_mask) {
        tk_slot sl = t->vocab[i];
        if (sl.hash == h && sl.len == p.len && memcmp(t->arena + sl.off, t->arena + p.off, p.len) == 0)
            return (int32_t)sl.id;
    }
    t->vocab[i] = (tk_slot){h, (uint32_t)id, p.off, p.len};
    return -1;
}

static int32_t vocab_add(gemma_tokenizer *t, int32_t id) {
    return vocab_add_h(t, id, hash_bytes(span_str(t, t->piece[id]), t->piece[id].len));
}

static inline int32_t char_find(const gemma_tokenizer *t, uint32_t cp) {
    if (cp < 128) return t->ascii[cp];
    uint32_t h = (uint32_t)mix64(cp);
    for (uint32_t i = h & t->chars_mask;; i = (i + 1) & t->chars_mask) {
        if (t->chars[i].cp == cp) return t->chars[i].id;
        if (t->chars[i].cp == TK_EMPTY) return -1;
    }
}

static inline uint32_t merge_slot(const gemma_tokenizer *t, uint64_t key) {
    return (uint32_t)((key * 0x9e3779b97f4a7c15ULL) >> t->merges_shift);
}

static inline const tk_merge *merge_find(const gemma_tokenizer *t, int32_t a, int32_t b) {
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    for (uint32_t i = merge_slot(t, key);; i = (i + 1) & t->merges_mask) {
        const tk_merge *m = &t->merges[i];
        if (m->key == key) return m;
        if (m->key == UINT64_MAX) return NULL;
    }
}

/* A later duplicate pair overwrites the earlier one, as HF's HashMap collect does. */
static void merge_insert(gemma_tokenizer *t, int32_t a, int32_t b, uint32_t rank, int32_t new_id) {
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    uint32_t i = merge_slot(t, key);
    while (t->merges[i].key != UINT64_MAX && t->merges[i].key != key) i = (i + 1) & t->merges_mask;
    t->n_merges += t->merges[i].key == UINT64_MAX;
    t->merges[i].key = key;
    t->merges[i].rank = rank;
    t->merges[i].new_id = (uint32_t)new_id;
}

static void trie_init(tk_trie *tr) {
    memset(tr, 0, sizeof *tr);
    for (int i = 0; i < 256; i++) tr->root[i] = -1;
}

static int trie_insert(tk_trie *tr, const unsigned char *s, size_t n, int32_t id) {
    int32_t node = -1;
    for (size_t i = 0; i < n; i++) {
        int32_t c = node < 0 ? tr->root[s[i]] : tr->node[node].child, last = -1;
        if (node >= 0)
            for (; c >= 0 && tr->node[c].byte != s[i]; c = tr->node[c].sibling) last = c;
        if (c < 0) {
            /* Links are indices, never pointers: the node array moves as it grows. */
            if (!grow(&tr->node, &tr->cap, tr->n + 1, sizeof *tr->node)) return 0;
            c = (int32_t)tr->n++;
            tr->node[c] = (tk_node){-1, -1, -1, s[i]};
            if (node < 0) tr->root[s[i]] = c;
            else if (last < 0) tr->node[node].child = c;
            else tr->node[last].sibling = c;
        }
        node = c;
    }
    tr->node[node].id = id;
    return 1;
}

/* The longest token starting at s[0], -1 if none; *len receives its length. */
static int32_t trie_longest(const tk_trie *tr, const unsigned char *s, size_t n, size_t *len) {
    int32_t node = tr->root[s[0]], best = -1;
    size_t i = 0;
    for (;;) {
        if (tr->node[node].id >= 0) {
            best = tr->node[node].id;
            *len = i + 1;
        }
        if (++i == n) break;
        int32_t c = tr->node[node].child;
        while (c >= 0 && tr->node[c].byte != s[i]) c = tr->node[c].sibling;
        if (c < 0) break;
        node = c;
    }
    return best;
}

/* ================================================================ loading */

typedef struct {
    gemma_tokenizer *t;
    const char *name;   /* the file, for messages */
    gemma_error *err;
    char q[128];        /* quote() buffers */
    char q2[128];
} loader;

#define QUOTE(L, s, n) quote((L)->q, sizeof (L)->q, (s), (n))
#define QUOTE2(L, s, n) quote((L)->q2, sizeof (L)->q2, (s), (n))

static gemma_status oom(loader *L) { return gm_fail(L->err, GEMMA_ERR_NOMEM, "%s: out of memory", L->name); }

/* A boolean member: absent or null -> fallback. */
static gemma_status get_bool(loader *L, const gm_json *obj, const char *key, const char *where, int fallback,
                             int *out) {
    const gm_json *v = gm_json_get(obj, key);
    *out = fallback;
    if (!v || v->type == GM_JSON_NULL) return GEMMA_OK;
    if (!gm_json_is_bool(v))
        return gm_fail(L->err, GEMMA_ERR_FORMAT, "%s: field %s.%s must be true or false", L->name, where, key);
    *out = v->type == GM_JSON_TRUE;
    return GEMMA_OK;
}

/* A string member; absent or null -> NULL. */
static gemma_status get_string(loader *L, const gm_json *obj, const char *key, const char *where, const gm_json **out) {
    const gm_json *v = gm_json_get(obj, key);
    *out = NULL;
    if (!v || v->type == GM_JSON_NULL) return GEMMA_OK;
    if (v->type != GM_JSON_STRING)
        return gm_fail(L->err, GEMMA_ERR_FORMAT, "%s: field %s.%s must be a string", L->name, where, key);
    *out = v;
    return GEMMA_OK;
}

/* "type" of a component object. */
static gemma_status get_type(loader *L, const gm_json *obj, const char *where, const char **out) {
    if (!gm_json_is(obj, GM_JSON_OBJECT))
        return gm_fail(L->err, GEMMA_ERR_FORMAT, "%s: field %s must be an object or null", L->name, where);
    *out = gm_json_string(gm_json_get(obj, "type"));
    if (!*out) return gm_fail(L->err, GEMMA_ERR_FORMAT, "%s: field %s.type is missing", L->name, where);
    return GEMMA_OK;
}

/* {"String": "..."}: a literal pattern (Regex patterns are not supported). */
static gemma_status get_pattern(loader *L, const gm_json *obj, const char *where, const gm_json **out) {
    const gm_json *p = gm_json_get(obj, "pattern");
    *out = NULL;
    if (!gm_json_is(p, GM_JSON_OBJECT))
        return gm_fail(L->err, GEMMA_ERR_FORMAT, "%s: field %s.pattern is missing", L->name, where);
    if (gm_json_get(p, "Regex"))
        return gm_fail(L->err, GEMMA_ERR_UNSUPPORTED,
                       "%s: field %s.pattern: Regex patterns are not supported (only String)",
                       L->name, where);
    *out = gm_json_get(p, "String");
    if (!gm_json_is(*out, GM_JSON_STRING))
        return gm_fail(L->err, GEMMA_ERR_FORMAT, "%s: field %s.pattern.String must be a string", L->name, where);
    if ((*out)->len == 0)
        return gm_fail(L->err, GEMMA_ERR_UNSUPPORTED, "%s: field %s.pattern.String is empty", L->name, where);
    return GEMMA_OK;
}

static gemma_status load_model_options(loader *L, const gm_json *model) {
    gemma_tokenizer *t = L->t;
    const char *type = gm_json_string(gm_json_get(model, "type"));
    if (!type) return gm_fail(L->err, GEMMA_ERR_FORMAT, "%s: field model.type is missing", L->name);
    if (strcmp(type, "BPE") != 0)
        return gm_fail(L->err, GEMMA_ERR_UNSUPPORTED, "%s: field model.type '%s' is not supported (supported: BPE)",
                       L->name, type);
    gemma_status st;
    if ((st = get_bool(L, model, "byte_fallback", "model", 0, &t->byte_fallback)) ||
        (st = get_bool(L, model, "fuse_unk", "model", 0, &t->fuse_unk)) ||
        (st = get_bool(L, model, "ignore_merges", "model", 0, &t->ignore_merges)))
        return st;
    const gm_json *dropout = gm_json_get(model, "dropout");
    double d = 0;
    if (dropout && dropout->type != GM_JSON_NULL && (!gm_json_number(dropout, &d) || d != 0))
        return gm_fail(L->err, GEMMA_ERR_UNSUPPORTED,
                       "%s: field model.dropout must be null or 0 (BPE dropout is for training)",
                       L->name);
    static const char *const affixes[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int i = 0; i < 2; i++) {
        const gm_json *v;
        if ((st = get_string(L, model, affixes[i], "model", &v))) return st;
        if (v && v->len)
            return gm_fail(L->err, GEMMA_ERR_UNSUPPORTED, "%s: field model.%s is not supported (must be null)", L->name,
                           affixes[i]);
    }
    return GEMMA_OK;
}

/* The per-id tables for `cap` ids, the piece index, and an arena that holds
 * `bytes` of pieces without growing. */
static gemma_status alloc_ids(loader *L, size_t cap, size_t bytes) {
    gemma_tokenizer *t = L->t;
    t->piece = calloc(cap, sizeof *t->piece);
    t->text = calloc(cap, sizeof *t->text);
    t->byte = malloc(cap * sizeof *t->byte);
    t->flags = calloc(cap, 1);
    size_t slots = pow2_at_least(cap + cap / 2);
    t->vocab = malloc(slots * sizeof *t->vocab);
    t->vocab_mask = (uint32_t)(slots - 1);
    if (!t->piece || !t->text || !t->byte || !t->flags || !t->vocab) return oom(L);
    memset(t->vocab, 0xff, slots * sizeof *t->vocab);
    if (!grow(&t->arena, &t->arena_cap, bytes + 1024, 1)) return oom(L);
    return GEMMA_OK;
}

static gemma_status load_vocab(loader *L, const gm_json *vocab, size_t n_added) {
    gemma_tokenizer *t = L->t;
    if (!gm_json_is(vocab, GM_JSON_OBJECT))
        return gm_fail(L->err, GEMMA_ERR_FORMAT, "%s: field model.vocab is %s", L->name,
                       vocab ? "not an object" : "missing");
    size_t n = gm_json_count(vocab);
    if (n == 0) return gm_fail(L->err, GEMMA_ERR_FORMAT, "%s: field model.vocab is empty", L->name);
    if (n + n_added > TK_MAX_IDS)
        return gm_fail(L->err, GEMMA_ERR_UNSUPPORTED, "%s: %zu vocabulary entries and added tokens are more than %d",
                       L->name, n + n_added, TK_MAX_IDS);
    t->n_model = (int32_t)n;
    /* Pieces first, then the string table: all of the arena in one growth. */
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) bytes += gm_json_at(vocab, i)->key_len + 1;
    gemma_status st = alloc_ids(L, n + n_added, bytes);
    if (st) return st;
    for (size_t i = 0; i < n; i++) {
        const gm_json *e = gm_json_at(vocab, i);
        int64_t id;
        if (!gm_json_int(e, &id))
            return gm_fail(L->err, GEMMA_ERR_FORMAT, "%s: field model.vocab[%s] must be an integer id", L->name,
                           QUOTE(L, e->key, e->key_len));
        if (id < 0 || id >= (int64_t)n)
            return gm_fail(L->err, GEMMA_ERR_FORMAT,
                           "%s: field model.vocab[%s]: id %lld is out of range (the %zu entries must use ids 0..%zu)",
                           L->name, QUOTE(L, e->key, e->key_len), (long long)id, n, n - 1);
        if (t->flags[id] & TK_PRESENT)
            return gm_fail(L->err, GEMMA_ERR_FORMAT, "%s: field model.vocab: duplicate id %lld (%s and %s)", L->name,
                           (long long)id, QUOTE(L, span_str(t, t->piece[id]), t->piece[id].len),
                           QUOTE2(L, e->key, e->key_len));
        if (!arena_put(t, e->key, e->key_len, &t->piece[id])) return oom(L);
        if (vocab_add(t, (int32_t)id) >= 0)
            return gm_fail(L->err, GEMMA_ERR_FORMAT, "%s: field model.vocab: piece %s appears twice", L->name,
                           QUOTE(L, e->key, e->key_len));
        t->flags[id] = TK_PRESENT;
    }
    t->n_ids = (int32_t)n;
    return GEMMA_OK;
}

/* Single-character pieces by code point, and the byte-fallback pieces. */
static gemma_status index_chars(loader *L) {
    gemma_tokenizer *t = L->t;
    size_t count = 0;
    for (int i = 0; i < 128; i++) t->ascii[i] = -1;
    for (int32_t id = 0; id < t->n_model; id++) count += t->piece[id].len <= 4;
    size_t slots = pow2_at_least(count * 2);
    t->chars = malloc(slots * sizeof *t->chars);
    if (!t->chars) return oom(L);
    memset(t->chars, 0xff, slots * sizeof *t->chars);
    t->chars_mask = (uint32_t)(slots - 1);
    for (int32_t id = 0; id < t->n_model; id++) {
        const unsigned char *s = (const unsigned char *)span_str(t, t->piece[id]);
        uint32_t cp, len = t->piece[id].len;
        if (len == 0 || len > 4 || utf8_decode(s, len, &cp) != len) continue;
        if (cp < 128) {
            t->ascii[cp] = id;
            continue;
        }
        uint32_t i = (uint32_t)mix64(cp) & t->chars_mask;
        while (t->chars[i].cp != TK_EMPTY) i = (i + 1) & t->chars_mask;
        t->chars[i].cp = cp;
        t->chars[i].id = id;
    }
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        t->byte_id[b] = model_find(t, name, 6);
        if (t->byte_fallback && t->byte_id[b] < 0)
            return gm_fail(L->err, GEMMA_ERR_FORMAT,
                           "%s: field model.byte_fallback is true but model.vocab has no piece '%s'", L->name, name);
    }
    return GEMMA_OK;
}

/* "a b" of the legacy merges format: one space splits it; with several, the
 * one cut whose halves and concatenation are all pieces (as HF resolves it). */
static gemma_status split_legacy_merge(loader *L, size_t r, const gm_json *m, size_t *cut) {
    const char *s = m->u.str;
    size_t n = m->len, spaces = 0, found = 0, at = 0;
    for (size_t i = 0; i < n; i++) spaces += s[i] == ' ';
    if (spaces == 0)
        return gm_fail(L->err, GEMMA_ERR_FORMAT, "%s: field model.merges[%zu] %s has no space between its two pieces",
                       L->name, r, QUOTE(L, s, n));
    for (size_t i = 0; i < n; i++) {
        if (s[i] != ' ') continue;
        if (spaces == 1) {
            *cut = i;
            return GEMMA_OK;
        }
        char *both = malloc(n);
        if (!both) return oom(L);
        memcpy(both, s, i);
        memcpy(both + i, s + i + 1, n - i - 1);
        int ok = model_find(L->t, s, i) >= 0 && model_find(L->t, s + i + 1, n - i - 1) >= 0 &&
                 model_find(L->t, both, n - 1) >= 0;
        free(both);
        if (ok) {
            found++;
            at = i;
        }
    }
    if (found != 1)
        return gm_fail(L->err, GEMMA_ERR_FORMAT, "%s: field model.merges[%zu] %s is %s", L->name, r, QUOTE(L, s, n),
                       found ? "ambiguous (several spaces split it into known pieces)"
                             : "not two pieces of model.vocab separated by a space");
    *cut = at;
    return GEMMA_OK;
}

/* An empty merge table for n pairs. */
static gemma_status alloc_merges(loader *L, size_t n) {
    gemma_tokenizer *t = L->t;
    if (n >= UINT32_MAX / 4) return gm_fail(L->err, GEMMA_ERR_UNSUPPORTED, "%s: too many merges (%zu)", L->name, n);
    size_t slots = pow2_at_least(n * 2);
    int bits = 0;
    while (((size_t)1 << bits) < slots) bits++;
    t->merges = malloc(slots * sizeof *t->merges);
    if (!t->merges) return oom(L);
    memset(t->merges, 0xff, slots * sizeof *t->merges);
    t->merges_mask = (uint32_t)(slots - 1);
    t->merges_shift = 64 - bits;
    return GEMMA_OK;
}

static gemma_status load_merges(loader *L, const gm_json *merges) {
    gemma_tokenizer *t = L->t;
    if (!gm_json_is(merges, GM_JSON_ARRAY))
        return gm_fail(L->err, GEMMA_ERR_FORMAT, "%s: field model.merges is %s", L->name,
                       merges ? "not an array" : "missing");
    size_t n = gm_json_count(merges);
    gemma_status st = alloc_merges(L, n), late = GEMMA_OK;
    if (st) return st;
    size_t longest = 0;
    for (int32_t id = 0; id < t->n_model; id++)
        if (t->piece[id].len > longest) longest = t->piece[id].len;
    /* Lookups go in batches whose table slots are prefetched first: the
     * table is far bigger than the caches, and this halves loading time. */
    enum { BATCH = 32 };
    struct {
        const char *a, *b;
        size_t na, nb;
        uint32_t ha, hb, hc;
        int32_t ia, ib, ic;
    } q[BATCH];
    size_t stride = 2 * longest + 2;
    char *both = malloc(BATCH * stride);
    if (!both) return oom(L);
    for (size_t base = 0; base < n && !st && !late; base += BATCH) {
        size_t cnt = n - base < BATCH ? n - base : BATCH;
        for (size_t j = 0; j < cnt; j++) {
            size_t r = base + j;
            const gm_json *m = gm_json_at(merges, r);
            if (m->type == GM_JSON_STRING) {
                size_t cut = 0;
                if ((late = split_legacy_merge(L, r, m, &cut))) {
                    cnt = j;
                    break;
                }
                q[j].a = m->u.str;
                q[j].na = cut;
                q[j].b = m->u.str + cut + 1;
                q[j].nb = m->len - cut - 1;
            } else if (m->type == GM_JSON_ARRAY && m->len == 2 && gm_json_at(m, 0)->type == GM_JSON_STRING &&
                       gm_json_at(m, 1)->type == GM_JSON_STRING) {
                q[j].a = gm_json_at(m, 0)->u.str;
                q[j].na = gm_json_at(m, 0)->len;
                q[j].b = gm_json_at(m, 1)->u.str;
                q[j].nb = gm_json_at(m, 1)->len;
            } else {
                late = gm_fail(L->err, GEMMA_ERR_FORMAT,
                               "%s: field model.merges[%zu] must be [\"a\", \"b\"] or \"a b\"",
                               L->name, r);
                cnt = j;
                break;
            }
            q[j].ha = hash_bytes(q[j].a, q[j].na);
            q[j].hb = hash_bytes(q[j].b, q[j].nb);
            TK_PREFETCH(&t->vocab[q[j].ha & t->vocab_mask]);
            TK_PREFETCH(&t->vocab[q[j].hb & t->vocab_mask]);
            q[j].hc = 0;
            if (q[j].na + q[j].nb < stride) {
                char *c = both + j * stride;
                memcpy(c, q[j].a, q[j].na);
                memcpy(c + q[j].na, q[j].b, q[j].nb);
                q[j].hc = hash_bytes(c, q[j].na + q[j].nb);
                TK_PREFETCH(&t->vocab[q[j].hc & t->vocab_mask]);
            }
        }
        for (size_t j = 0; j < cnt; j++) {
            size_t r = base + j;
            int32_t ia = vocab_find_h(t, q[j].a, q[j].na, q[j].ha), ib = vocab_find_h(t, q[j].b, q[j].nb, q[j].hb);
            if (ia < 0 || ia >= t->n_model || ib < 0 || ib >= t->n_model) {
                int left = ia < 0 || ia >= t->n_model;
                st = gm_fail(L->err, GEMMA_ERR_FORMAT, "%s: field model.merges[%zu]: piece %s is not in model.vocab",
                             L->name, r, QUOTE(L, left ? q[j].a : q[j].b, left ? q[j].na : q[j].nb));
                break;
            }
            int32_t ic = -1;
            if (q[j].na + q[j].nb < stride) ic = vocab_find_h(t, both + j * stride, q[j].na + q[j].nb, q[j].hc);
            if (ic < 0 || ic >= t->n_model) {
                st = gm_fail(L->err, GEMMA_ERR_FORMAT,
                             "%s: field model.merges[%zu]: %s + %s is not a piece of model.vocab", L->name, r,
                             QUOTE(L, q[j].a, q[j].na), QUOTE2(L, q[j].b, q[j].nb));
                break;
            }
            q[j].ia = ia, q[j].ib = ib, q[j].ic = ic;
            TK_PREFETCH(&t->merges[merge_slot(t, (uint64_t)(uint32_t)ia << 32 | (uint32_t)ib)]);
        }
        for (size_t j = 0; j < cnt && !st; j++) merge_insert(t, q[j].ia, q[j].ib, (uint32_t)(base + j), q[j].ic);
    }
    free(both);
    return st ? st : late;
}

static gemma_status load_added_tokens(loader *L, const gm_json *list) {
    gemma_tokenizer *t = L->t;
    size_t n = gm_json_count(list);
    t->added = malloc((n ? n : 1) * sizeof *t->added);
    if (!t->added) return oom(L);
    int32_t max_added = -1;
    for (size_t i = 0; i < n; i++) {
        const gm_json *e = gm_json_at(list, i);
        if (!gm_json_is(e, GM_JSON_OBJECT))
            return gm_fail(L->err, GEMMA_ERR_FORMAT, "%s: field added_tokens[%zu] must be an object", L->name, i);
        char where[48];
        snprintf(where, sizeof where, "added_tokens[%zu]", i);
        const gm_json *content;
        gemma_status st;
        if ((st = get_string(L, e, "content", where, &content))) return st;
        if (!content || content->len == 0)
            return gm_fail(L->err, GEMMA_ERR_FORMAT, "%s: field %s.content is %s", L->name, where,
                           content ? "empty" : "missing");
        int64_t id;
        if (!gm_json_int(gm_json_get(e, "id"), &id))
            return gm_fail(L->err, GEMMA_ERR_FORMAT, "%s: field %s.id must be an integer", L->name, where);
        int special, normalized, flag;
        if ((st = get_bool(L, e, "special", where, 0, &special)) ||
            (st = get_bool(L, e, "normalized", where, !special, &normalized)))
            return st;
        static const char *const unsupported[] = {"single_word", "lstrip", "rstrip"};
        for (int k = 0; k < 3; k++) {
            if ((st = get_bool(L, e, unsupported[k], where, 0, &flag))) return st;
            if (flag)
                return gm_fail(L->err, GEMMA_ERR_UNSUPPORTED,
                               "%s: field %s.%s (token %s) is not supported (must be false)",
                               L->name, where, unsupported[k], QUOTE(L, content->u.str, content->len));
        }
        int32_t known = vocab_find(t, content->u.str, content->len);
        if (known >= 0 && (t->flags[known] & TK_ADDED))
            return gm_fail(L->err, GEMMA_ERR_FORMAT, "%s: field %s: token %s is listed twice", L->name, where,
                           QUOTE(L, content->u.str, content->len));
        if (known >= 0 && known != id)
            return gm_fail(L->err, GEMMA_ERR_FORMAT,
                           "%s: field %s.id: token %s has id %lld but model.vocab gives it %d",
                           L->name, where, QUOTE(L, content->u.str, content->len), (long long)id, known);
        if (known < 0) {
            /* HF ignores the stored id and takes the next free one. */
            int32_t expect = max_added < 0 ? t->n_model : max_added >= t->n_model ? max_added + 1 : t->n_model;
            if (id != expect)
                return gm_fail(L->err, GEMMA_ERR_FORMAT,
                               "%s: field %s.id: token %s has id %lld, but HF tokenizers would give it %d (tokens "
                               "outside model.vocab take the next ids after it, in order)",
                               L->name, where, QUOTE(L, content->u.str, content->len), (long long)id, expect);
            if (!arena_put(t, content->u.str, content->len, &t->piece[id])) return oom(L);
            t->flags[id] = TK_PRESENT;
            vocab_add(t, (int32_t)id);
            if (id >= t->n_ids) t->n_ids = (int32_t)id + 1;
        }
        t->flags[id] |= TK_ADDED | (special ? TK_SPECIAL : 0) | (normalized ? TK_NORMALIZED : 0);
        if (id > max_added) max_added = (int32_t)id;
        t->added[t->n_added++] = (int32_t)id;
    }
    return GEMMA_OK;
}

static gemma_status load_replace(loader *L, const gm_json *r, const char *where, int one_char, tk_replace *out) {
    const gm_json *pat = NULL, *content = NULL;
    gemma_status st;
    if ((st = get_pattern(L, r, where, &pat)) || (st = get_string(L, r, "content", where, &content))) return st;
    if (!content) return gm_fail(L->err, GEMMA_ERR_FORMAT, "%s: field %s.content is missing", L->name, where);
    if (one_char) {
        const unsigned char *s = (const unsigned char *)content->u.str;
        if (utf8_chars(s, content->len) != 1 || model_find(L->t, s, content->len) < 0)
            return gm_fail(L->err, GEMMA_ERR_UNSUPPORTED,
                           "%s: field %s.content %s is not supported (must be one character that is in model.vocab)",
                           L->name, where, QUOTE(L, content->u.str, content->len));
    }
    if (!arena_put(L->t, pat->u.str, pat->len, &out->pattern) ||
        !arena_put(L->t, content->u.str, content->len, &out->content))
        return oom(L);
    return GEMMA_OK;
}

static gemma_status load_normalizer(loader *L, const gm_json *norm) {
    if (!norm || norm->type == GM_JSON_NULL) return GEMMA_OK;
    const char *type;
    gemma_status st;
    if ((st = get_type(L, norm, "normalizer", &type))) return st;
    if (strcmp(type, "Replace") == 0) {
        L->t->n_norm = 1;
        return load_replace(L, norm, "normalizer", 1, &L->t->norm[0]);
    }
    if (strcmp(type, "Sequence") != 0)
        return gm_fail(L->err, GEMMA_ERR_UNSUPPORTED,
                       "%s: field normalizer.type '%s' is not supported (supported: Replace, Sequence of Replace)",
                       L->name, type);
    const gm_json *list = gm_json_get(norm, "normalizers");
    if (!gm_json_is(list, GM_JSON_ARRAY))
        return gm_fail(L->err, GEMMA_ERR_FORMAT, "%s: field normalizer.normalizers must be an array", L->name);
    if (gm_json_count(list) > TK_MAX_STEPS)
        return gm_fail(L->err, GEMMA_ERR_UNSUPPORTED,
                       "%s: field normalizer.normalizers has more than %d steps", L->name,
                       TK_MAX_STEPS);
    for (size_t i = 0; i < gm_json_count(list); i++) {
        char where[48];
        snprintf(where, sizeof where, "normalizer.normalizers[%zu]", i);
        if ((st = get_type(L, gm_json_at(list, i), where, &type))) return st;
        if (strcmp(type, "Replace") != 0)
            return gm_fail(L->err, GEMMA_ERR_UNSUPPORTED,
                           "%s: field %s.type '%s' is not supported (supported: Replace)",
                           L->name, where, type);
        if ((st = load_replace(L, gm_json_at(list, i), where, 1, &L->t->norm[L->t->n_norm++]))) return st;
    }
    return GEMMA_OK;
}

static gemma_status load_split(loader *L, const gm_json *split, const char *where) {
    static const char *const names[] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"};
    gemma_tokenizer *t = L->t;
    const gm_json *pat = NULL, *behavior = NULL;
    int invert;
    gemma_status st;
    if ((st = get_pattern(L, split, where, &pat)) || (st = get_string(L, split, "behavior", where, &behavior)) ||
        (st = get_bool(L, split, "invert", where, 0, &invert)))
        return st;
    if (invert) return gm_fail(L->err, GEMMA_ERR_UNSUPPORTED,
                               "%s: field %s.invert true is not supported", L->name, where);
    int b = -1;
    for (int i = 0; i < 5 && behavior; i++)
        if (strcmp(behavior->u.str, names[i]) == 0) b = i;
    if (b < 0)
        return gm_fail(L->err, GEMMA_ERR_FORMAT, "%s: field %s.behavior %s is not one of Removed, Isolated, "
                       "MergedWithPrevious, MergedWithNext, Contiguous", L->name, where,
                       behavior ? QUOTE(L, behavior->u.str, behavior->len) : "(missing)");
    t->has_split = 1;
    t->split_behavior = (tk_behavior)b;
    return arena_put(t, pat->u.str, pat->len, &t->split_pattern) ? GEMMA_OK : oom(L);
}

static gemma_status load_pre_tokenizer(loader *L, const gm_json *pre) {
    if (!pre || pre->type == GM_JSON_NULL) return GEMMA_OK;
    const char *type;
    gemma_status st;
    if ((st = get_type(L, pre, "pre_tokenizer", &type))) return st;
    if (strcmp(type, "Split") == 0) return load_split(L, pre, "pre_tokenizer");
    const gm_json *list = gm_json_get(pre, "pretokenizers");
    if (strcmp(type, "Sequence") != 0 || !gm_json_is(list, GM_JSON_ARRAY) || gm_json_count(list) > 1)
        return gm_fail(L->err, GEMMA_ERR_UNSUPPORTED,
                       "%s: field pre_tokenizer.type '%s' is not supported (supported: Split with a String pattern, "
                       "or a Sequence holding one)", L->name, type);
    if (gm_json_count(list) == 0) return GEMMA_OK;
    if ((st = get_type(L, gm_json_at(list, 0), "pre_tokenizer.pretokenizers[0]", &type))) return st;
    if (strcmp(type, "Split") != 0)
        return gm_fail(L->err, GEMMA_ERR_UNSUPPORTED,
                       "%s: field pre_tokenizer.pretokenizers[0].type '%s' is not supported (supported: Split)",
                       L->name, type);
    return load_split(L, gm_json_at(list, 0), "pre_tokenizer.pretokenizers[0]");
}

static gemma_status load_post_processor(loader *L, const gm_json *post) {
    gemma_tokenizer *t = L->t;
    t->bos = -1;
    if (!post || post->type == GM_JSON_NULL) return GEMMA_OK;
    const char *type;
    gemma_status st;
    if ((st = get_type(L, post, "post_processor", &type))) return st;
    if (strcmp(type, "TemplateProcessing") != 0)
        return gm_fail(L->err, GEMMA_ERR_UNSUPPORTED,
                       "%s: field post_processor.type '%s' is not supported (supported: TemplateProcessing)", L->name,
                       type);
    const gm_json *single = gm_json_get(post, "single");
    size_t n = gm_json_count(single);
    const gm_json *last = gm_json_at(single, n ? n - 1 : 0);
    const gm_json *first = n == 2 ? gm_json_get(gm_json_at(single, 0), "SpecialToken") : NULL;
    if (!gm_json_is(single, GM_JSON_ARRAY) || n < 1 || n > 2 || !gm_json_get(last, "Sequence") ||
        (n == 2 && !first))
        return gm_fail(L->err, GEMMA_ERR_UNSUPPORTED,
                       "%s: field post_processor.single is not supported (supported: [$A] or [special token, $A])",
                       L->name);
    if (n == 1) return GEMMA_OK;
    const gm_json *name = gm_json_get(first, "id");
    if (!gm_json_is(name, GM_JSON_STRING))
        return gm_fail(L->err, GEMMA_ERR_FORMAT, "%s: field post_processor.single[0].SpecialToken.id must be a string",
                       L->name);
    const gm_json *entry = gm_json_get(gm_json_get(post, "special_tokens"), name->u.str);
    const gm_json *ids = gm_json_get(entry, "ids");
    int64_t id;
    if (gm_json_count(ids) != 1 || !gm_json_is(ids, GM_JSON_ARRAY) || !gm_json_int(gm_json_at(ids, 0), &id))
        return gm_fail(L->err, GEMMA_ERR_FORMAT, "%s: field post_processor.special_tokens[%s].ids must hold one id",
                       L->name, QUOTE(L, name->u.str, name->len));
    if (id < 0 || id >= t->n_ids || !(t->flags[id] & TK_PRESENT))
        return gm_fail(L->err, GEMMA_ERR_FORMAT, "%s: field post_processor.special_tokens[%s].ids: id %lld is not in "
                       "the vocabulary", L->name, QUOTE(L, name->u.str, name->len), (long long)id);
    t->bos = (int32_t)id;
    return GEMMA_OK;
}

static gemma_status load_decoder_step(loader *L, const gm_json *d, const char *where, int *fused) {
    gemma_tokenizer *t = L->t;
    const char *type;
    gemma_status st;
    if ((st = get_type(L, d, where, &type))) return st;
    if (*fused)
        return gm_fail(L->err, GEMMA_ERR_UNSUPPORTED,
                       "%s: field %s: steps after Fuse are not supported", L->name, where);
    if (strcmp(type, "Fuse") == 0) {
        *fused = 1;
        return GEMMA_OK;
    }
    if (strcmp(type, "ByteFallback") == 0) {
        t->dec_byte_fallback = 1;
        return GEMMA_OK;
    }
    if (strcmp(type, "Replace") == 0) {
        if (t->dec_byte_fallback)
            return gm_fail(L->err, GEMMA_ERR_UNSUPPORTED, "%s: field %s: Replace after ByteFallback is not supported",
                           L->name, where);
        if (t->n_dec == TK_MAX_STEPS)
            return gm_fail(L->err, GEMMA_ERR_UNSUPPORTED, "%s: field %s: more than %d Replace steps", L->name, where,
                           TK_MAX_STEPS);
        return load_replace(L, d, where, 0, &t->dec[t->n_dec++]);
    }
    return gm_fail(L->err, GEMMA_ERR_UNSUPPORTED,
                   "%s: field %s.type '%s' is not supported (supported: Replace, ByteFallback, Fuse, Sequence)",
                   L->name, where, type);
}

static gemma_status load_decoder(loader *L, const gm_json *dec) {
    if (!dec || dec->type == GM_JSON_NULL)
        return gm_fail(L->err, GEMMA_ERR_UNSUPPORTED, "%s: field decoder: a missing decoder is not supported", L->name);
    const char *type;
    gemma_status st;
    int fused = 0;
    if ((st = get_type(L, dec, "decoder", &type))) return st;
    if (strcmp(type, "Sequence") != 0) return load_decoder_step(L, dec, "decoder", &fused);
    const gm_json *list = gm_json_get(dec, "decoders");
    if (!gm_json_is(list, GM_JSON_ARRAY))
        return gm_fail(L->err, GEMMA_ERR_FORMAT, "%s: field decoder.decoders must be an array", L->name);
    for (size_t i = 0; i < gm_json_count(list); i++) {
        char where[48];
        snprintf(where, sizeof where, "decoder.decoders[%zu]", i);
        if ((st = load_decoder_step(L, gm_json_at(list, i), where, &fused))) return st;
    }
    return GEMMA_OK;
}

/* Replace every occurrence of r->pattern in s[0..n) into *out (grown as needed). */
static int replace_all(const gemma_tokenizer *t, const tk_replace *r, const unsigned char *s, size_t n, char **out,
                       size_t *cap, size_t *out_len) {
    const char *pat = span_str(t, r->pattern), *con = span_str(t, r->content);
    size_t pl = r->pattern.len, cl = r->content.len;
    size_t worst = n + (n / pl + 1) * cl + 1;
    if (!grow(out, cap, worst, 1)) return 0;
    char *o = *out;
    size_t i = 0, k = 0;
    while (i < n) {
        const unsigned char *hit = memchr(s + i, (unsigned char)pat[0], n - i);
        size_t at = hit ? (size_t)(hit - s) : n;
        memcpy(o + k, s + i, at - i);
        k += at - i;
        i = at;
        if (!hit) break;
        if (n - at >= pl && memcmp(s + at, pat, pl) == 0) {
            memcpy(o + k, con, cl);
            k += cl;
            i += pl;
        } else {
            o[k++] = (char)s[i++];
        }
    }
    *out_len = k;
    return 1;
}

/* Where BPE may cut a piece into words.  A merge joins two adjacent symbols
 * into a piece that holds both strings, so a symbol that starts with "▁"
 * can only merge with the one before it if some piece holds the last
 * character of that one followed by "▁".  Gemma 3 has one such piece,
 * ">▁</", so the characters before "▁" in any piece (here ">") and "▁"
 * itself are marked TK_GLUE, and every other "▁" starts a word that no merge
 * crosses.  Running BPE word by word then gives exactly the ids of running it
 * over the whole piece (merges in separate words never interact, and within a
 * word their order is unchanged), in far less time. */
static void find_word_starts(gemma_tokenizer *t) {
    t->space_id = char_find(t, TK_SPACE);
    if (t->space_id < 0) return;
    uint32_t glue[64];
    size_t n_glue = 0;
    glue[n_glue++] = TK_SPACE;
    for (int32_t id = 0; id < t->n_model; id++) {
        const unsigned char *s = (const unsigned char *)span_str(t, t->piece[id]);
        uint32_t n = t->piece[id].len, cp;
        for (uint32_t k = 1; k + 3 <= n; k++) {
            if (memcmp(s + k, "\xe2\x96\x81", 3) != 0) continue;
            uint32_t j = k - 1;
            while (j > 0 && (s[j] & 0xc0) == 0x80) j--;
            if (utf8_decode(s + j, k - j, &cp) != k - j) return;
            size_t g = 0;
            while (g < n_glue && glue[g] != cp) g++;
            if (g == n_glue) {
                if (n_glue == sizeof glue / sizeof *glue) return;   /* too many: no word splitting */
                glue[n_glue++] = cp;
            }
        }
    }
    for (int32_t id = 0; id < t->n_model; id++) {
        const unsigned char *s = (const unsigned char *)span_str(t, t->piece[id]);
        uint32_t n = t->piece[id].len, j = n, cp;
        if (n == 0) continue;
        do j--;
        while (j > 0 && (s[j] & 0xc0) == 0x80);
        if (utf8_decode(s + j, n - j, &cp) != n - j) continue;
        for (size_t g = 0; g < n_glue; g++)
            if (glue[g] == cp) t->flags[id] |= TK_GLUE;
    }
    t->word_split = 1;
}

/* Two buffers that a chain of Replace steps alternates between. */
typedef struct {
    char *a, *b;
    size_t a_cap, b_cap;
} tk_pingpong;

/* Apply the steps in order to *s (n bytes); *s and *n then describe the
 * result, which lives in pp (or is *s itself when there are no steps). */
static int replace_chain(const gemma_tokenizer *t, const tk_replace *steps, int n_steps, tk_pingpong *pp,
                         const unsigned char **s, size_t *n) {
    for (int k = 0; k < n_steps; k++) {
        size_t m;
        if (!replace_all(t, &steps[k], *s, *n, &pp->a, &pp->a_cap, &m)) return 0;
        char *buf = pp->a;
        size_t cap = pp->a_cap;
        pp->a = pp->b, pp->a_cap = pp->b_cap, pp->b = buf, pp->b_cap = cap;
        *s = (const unsigned char *)pp->b;
        *n = m;
    }
    return 1;
}

/* Decoded text and byte value per id, the added-token tries. */
static gemma_status finish(loader *L) {
    gemma_tokenizer *t = L->t;
    tk_pingpong pp = {0};
    gemma_status st = GEMMA_OK;
    trie_init(&t->raw);
    trie_init(&t->normalized);
    for (int32_t id = 0; id < t->n_ids && !st; id++) {
        t->byte[id] = -1;
        tk_span text = t->piece[id];
        if (!(t->flags[id] & TK_PRESENT)) continue;
        const unsigned char *d = (const unsigned char *)span_str(t, text);
        size_t n = text.len;
        if (!replace_chain(t, t->dec, t->n_dec, &pp, &d, &n)) {
            st = oom(L);
            break;
        }
        /* d is in pp, never in the arena, whenever it differs from the piece. */
        if ((n != text.len || memcmp(d, span_str(t, text), n) != 0) && !arena_put(t, d, n, &text)) {
            st = oom(L);
            break;
        }
        t->text[id] = text;
        if (text.len > t->max_text) t->max_text = text.len;
        /* ByteFallback's test: six bytes "<0x" XX ">" where XX parses as a
         * base-16 u8 in Rust (which also takes "+F"). */
        const char *s = span_str(t, text);
        if (t->dec_byte_fallback && text.len == 6 && memcmp(s, "<0x", 3) == 0 && s[5] == '>') {
            char hex[3] = {s[3], s[4], 0}, *end;
            int ok = (hex[0] == '+' || strchr("0123456789abcdefABCDEF", hex[0])) && hex[0] != 0 &&
                     strchr("0123456789abcdefABCDEF", hex[1]) && hex[1] != 0;
            if (ok) t->byte[id] = (int16_t)strtol(hex, &end, 16);
        }
        if (text.len > TK_MAX_TEXT)
            st = gm_fail(L->err, GEMMA_ERR_UNSUPPORTED,
                         "%s: token %d decodes to %u bytes, more than the %d a streaming decoder step can emit",
                         L->name, id, text.len, TK_MAX_TEXT);
    }
    for (size_t i = 0; i < t->n_added && !st; i++) {
        int32_t id = t->added[i];
        const unsigned char *s = (const unsigned char *)span_str(t, t->piece[id]);
        size_t n = t->piece[id].len;
        tk_trie *trie = &t->raw;
        if (t->flags[id] & TK_NORMALIZED) {
            trie = &t->normalized;
            t->has_normalized_added = 1;
            if (!replace_chain(t, t->norm, t->n_norm, &pp, &s, &n)) st = oom(L);
        }
        if (!st && !trie_insert(trie, s, n, id)) st = oom(L);
    }
    free(pp.a);
    free(pp.b);
    return st;
}

static gemma_status build(loader *L, const gm_json *root) {
    gemma_tokenizer *t = L->t;
    if (!gm_json_is(root, GM_JSON_OBJECT))
        return gm_fail(L->err, GEMMA_ERR_FORMAT, "%s: the top level must be an object", L->name);
    static const char *const unused[] = {"truncation", "padding"};
    for (int i = 0; i < 2; i++) {
        const gm_json *v = gm_json_get(root, unused[i]);
        if (v && v->type != GM_JSON_NULL)
            return gm_fail(L->err, GEMMA_ERR_UNSUPPORTED, "%s: field %s is not supported (must be null)", L->name,
                           unused[i]);
    }
    const gm_json *model = gm_json_get(root, "model");
    if (!gm_json_is(model, GM_JSON_OBJECT))
        return gm_fail(L->err, GEMMA_ERR_FORMAT, "%s: field model is %s", L->name, model ? "not an object" : "missing");
    const gm_json *added = gm_json_get(root, "added_tokens");
    if (added && added->type != GM_JSON_NULL && added->type != GM_JSON_ARRAY)
        return gm_fail(L->err, GEMMA_ERR_FORMAT, "%s: field added_tokens must be an array", L->name);
    gemma_status st;
    const gm_json *unk;
    if ((st = load_model_options(L, model)) ||
        (st = load_vocab(L, gm_json_get(model, "vocab"), gm_json_count(added))) ||
        (st = load_added_tokens(L, added)) || (st = index_chars(L)) ||
        (st = load_merges(L, gm_json_get(model, "merges"))) || (st = get_string(L, model, "unk_token", "model", &unk)))
        return st;
    t->unk = -1;
    if (unk) {
        t->unk = model_find(t, unk->u.str, unk->len);
        if (t->unk < 0)
            return gm_fail(L->err, GEMMA_ERR_FORMAT, "%s: field model.unk_token %s is not in model.vocab", L->name,
                           QUOTE(L, unk->u.str, unk->len));
    }
    find_word_starts(t);
    if ((st = load_normalizer(L, gm_json_get(root, "normalizer"))) ||
        (st = load_pre_tokenizer(L, gm_json_get(root, "pre_tokenizer"))) ||
        (st = load_post_processor(L, gm_json_get(root, "post_processor"))) ||
        (st = load_decoder(L, gm_json_get(root, "decoder"))))
        return st;
    return finish(L);
}

gemma_status gm_tokenizer_load_buffer(const char *json, size_t len, const char *name, gemma_tokenizer **out,
                                      gemma_error *err) {
    if (!out || (!json && len)) return gm_fail(err, GEMMA_ERR_ARG, "tokenizer: NULL argument");
    *out = NULL;
    if (!name) name = "tokenizer.json";
    if (len == 0) return gm_fail(err, GEMMA_ERR_FORMAT, "%s: the file is empty", name);
    char jerr[160];
    gm_json_doc *doc = gm_json_parse(json ? json : "", len, NULL, jerr, sizeof jerr);
    if (!doc) {
        if (strcmp(jerr, "out of memory") == 0) return gm_fail(err, GEMMA_ERR_NOMEM, "%s: out of memory", name);
        return gm_fail(err, GEMMA_ERR_FORMAT, "%s: %s", name, jerr);
    }
    gemma_tokenizer *t = calloc(1, sizeof *t);
    if (!t) {
        gm_json_free(doc);
        return gm_fail(err, GEMMA_ERR_NOMEM, "%s: out of memory", name);
    }
    loader L = {.t = t, .name = name, .err = err};
    gemma_status st = build(&L, gm_json_root(doc));
    gm_json_free(doc);
    if (st) {
        gemma_tokenizer_free(t);
        return st;
    }
    gm_ok(err);
    *out = t;
    return GEMMA_OK;
}

/* ================================================ a SentencePiece vocabulary */

/* A merge found in the pieces, with what ranks it. */
typedef struct {
    uint32_t skey;          /* score_key of the merged piece */
    uint32_t len_l, len_r;  /* characters of the two parts */
    int32_t c, a, b;        /* merged piece, left, right */
} tk_cand;

/* Higher scores to lower keys; -0 and 0 are one score, as Python compares them. */
static uint32_t score_key(float f) {
    if (f == 0) f = 0;
    uint32_t u;
    memcpy(&u, &f, 4);
    u = (u & 0x80000000u) ? ~u : u | 0x80000000u;   /* ascending with f */
    return ~u;
}

/* transformers' generate_merges sorts by (score, len(left), len(right)),
 * descending and stable over candidates listed in piece order.  The splits
 * of one piece differ in len(left), so the piece id completes the order. */
static int cand_cmp(const void *x, const void *y) {
    const tk_cand *p = x, *q = y;
    if (p->skey != q->skey) return p->skey < q->skey ? -1 : 1;
    if (p->len_l != q->len_l) return p->len_l > q->len_l ? -1 : 1;
    if (p->len_r != q->len_r) return p->len_r > q->len_r ? -1 : 1;
    return (p->c > q->c) - (p->c < q->c);
}

/* LSD radix sort of n keys, 16 bits a pass; tmp holds n. */
static void radix_sort64(uint64_t *a, uint64_t *tmp, size_t n, size_t *count) {
    for (int shift = 0; shift < 64; shift += 16) {
        memset(count, 0, 65537 * sizeof *count);
        for (size_t i = 0; i < n; i++) count[((a[i] >> shift) & 0xffff) + 1]++;
        if (count[((a[0] >> shift) & 0xffff) + 1] == n) continue;   /* one digit everywhere */
        for (size_t d = 0; d < 65536; d++) count[d + 1] += count[d];
        for (size_t i = 0; i < n; i++) tmp[count[(a[i] >> shift) & 0xffff]++] = a[i];
        memcpy(a, tmp, n * sizeof *a);
    }
}

/* A lookup of s[0..n) among the model pieces, resolved in batches. */
typedef struct {
    const char *s;
    uint32_t n, h;
    int32_t id;            /* the answer, -1 if absent */
} tk_query;

/* The index is far bigger than the caches: prefetch every query's slot, then
 * the string of the slot that may hold it, then compare. */
static void find_batch(const gemma_tokenizer *t, tk_query *q, size_t k) {
    uint32_t slot[128];
    for (size_t i = 0; i < k; i++) TK_PREFETCH(&t->vocab[q[i].h & t->vocab_mask]);
    for (size_t i = 0; i < k; i++) {
        uint32_t j = q[i].h & t->vocab_mask;
        while (t->vocab[j].id != TK_EMPTY && (t->vocab[j].hash != q[i].h || t->vocab[j].len != q[i].n))
            j = (j + 1) & t->vocab_mask;
        slot[i] = j;
        if (t->vocab[j].id != TK_EMPTY) TK_PREFETCH(t->arena + t->vocab[j].off);
    }
    for (size_t i = 0; i < k; i++) {
        const tk_slot *sl = &t->vocab[slot[i]];
        int32_t id = sl->id == TK_EMPTY ? -1
                     : memcmp(t->arena + sl->off, q[i].s, q[i].n) == 0 ? (int32_t)sl->id
                     : vocab_find_h(t, q[i].s, q[i].n, q[i].h);   /* a hash twin: rare */
        q[i].id = id < t->n_model ? id : -1;
    }
}

/* A bit per piece hash (the bits the index slot does not use): most splits
 * of a piece have a part that is no piece, and this says so from L2. */
#define TK_FILTER_LOG 23
#define TK_FILTER_BITS (1u << TK_FILTER_LOG)
static inline uint32_t filter_bit(uint32_t h) { return h >> (32 - TK_FILTER_LOG); }
static inline int filter_has(const uint8_t *f, uint32_t h) { return f[filter_bit(h) >> 3] >> (filter_bit(h) & 7) & 1; }

typedef struct {
    tk_cand *cand;
    size_t n, cap;
    tk_query q[128];
    tk_cand pending[64];   /* the candidate of each query pair, a and b to be found */
    size_t k;
} tk_merge_work;

/* The pending splits, in order: those whose two hashes pass the filter
 * (its bytes were prefetched when they were queued) are looked up. */
static int flush_splits(const gemma_tokenizer *t, tk_merge_work *w, const uint8_t *filter) {
    size_t kept = 0;
    for (size_t i = 0; i < w->k; i++) {
        if (!filter_has(filter, w->q[2 * i].h) || !filter_has(filter, w->q[2 * i + 1].h)) continue;
        w->q[2 * kept] = w->q[2 * i];
        w->q[2 * kept + 1] = w->q[2 * i + 1];
        w->pending[kept++] = w->pending[i];
    }
    find_batch(t, w->q, 2 * kept);
    if (!grow(&w->cand, &w->cap, w->n + kept, sizeof *w->cand)) return 0;
    for (size_t i = 0; i < kept; i++) {
        if (w->q[2 * i].id < 0 || w->q[2 * i + 1].id < 0) continue;
        tk_cand c = w->pending[i];
        c.a = w->q[2 * i].id;
        c.b = w->q[2 * i + 1].id;
        w->cand[w->n++] = c;
    }
    w->k = 0;
    return 1;
}

/* Every split of a model piece, at a character boundary, into two model
 * pieces is a merge, ranked as cand_cmp orders them: what HF's
 * SentencePieceExtractor writes into tokenizer.json (Gemma 3's model.merges,
 * all 514,906, come out in the same order; test_tokenizer_gguf checks).
 * Pieces are visited in score order, so only runs of equal scores need
 * sorting; a bit filter over the piece hashes skips most splits unlooked.
 * Splits go in batches (filter bytes, then index slots, then strings
 * prefetched a stage ahead): the tables are far bigger than the caches. */
static gemma_status merges_from_scores(loader *L, const float *score, const char *key) {
    gemma_tokenizer *t = L->t;
    size_t n = (size_t)t->n_model;
    uint64_t *order = malloc(2 * n * sizeof *order);
    size_t *count = malloc(65537 * sizeof *count);
    uint8_t *filter = calloc(TK_FILTER_BITS / 8, 1);
    tk_merge_work w = {0};
    gemma_status st = GEMMA_OK;
    if (!order || !count || !filter) {
        st = oom(L);
        goto done;
    }
    /* Hashing every split of a piece costs its length squared: bound the
     * total (Gemma 3 needs 2.7e7 of it) so that no file can make this hang. */
    uint64_t work = 0;
    for (size_t c = 0; c < n; c++) work += (uint64_t)t->piece[c].len * t->piece[c].len;
    if (work > ((uint64_t)1 << 31)) {
        st = gm_fail(L->err, GEMMA_ERR_UNSUPPORTED,
                     "%s: key '%s': the pieces are too long to derive merges from (%llu byte steps, 2^31 allowed)",
                     L->name, key, (unsigned long long)work);
        goto done;
    }
    for (uint32_t i = 0; i <= t->vocab_mask; i++) {
        const tk_slot *sl = &t->vocab[i];
        if (sl->id != TK_EMPTY && (int32_t)sl->id < t->n_model)
            filter[filter_bit(sl->hash) >> 3] |= (uint8_t)(1u << (filter_bit(sl->hash) & 7));
    }
    for (size_t c = 0; c < n; c++) order[c] = (uint64_t)score_key(score[c]) << 32 | c;
    radix_sort64(order, order + n, n, count);
    for (size_t j = 0; j < n; j++) {
        int32_t c = (int32_t)(uint32_t)order[j];
        const char *s = span_str(t, t->piece[c]);
        uint32_t len = t->piece[c].len, chars = (uint32_t)utf8_chars((const unsigned char *)s, len), left = 0;
        for (uint32_t i = 1; i < len; i++) {
            if ((s[i] & 0xc0) == 0x80) continue;
            left++;
            uint32_t hl = hash_bytes(s, i), hr = hash_bytes(s + i, len - i);
            TK_PREFETCH(&filter[filter_bit(hl) >> 3]);
            TK_PREFETCH(&filter[filter_bit(hr) >> 3]);
            w.q[2 * w.k] = (tk_query){s, i, hl, -1};
            w.q[2 * w.k + 1] = (tk_query){s + i, len - i, hr, -1};
            w.pending[w.k++] = (tk_cand){(uint32_t)(order[j] >> 32), left, chars - left, c, -1, -1};
            if (w.k == 64 && !flush_splits(t, &w, filter)) {
                st = oom(L);
                goto done;
            }
        }
    }
    if (w.k && !flush_splits(t, &w, filter)) {
        st = oom(L);
        goto done;
    }
    /* Within a run of one score: a single piece's splits came shortest left
     * part first, so reverse them; several pieces (ties) get sorted. */
    for (size_t i = 0; i < w.n;) {
        size_t j = i + 1;
        while (j < w.n && w.cand[j].skey == w.cand[i].skey) j++;
        if (w.cand[i].c == w.cand[j - 1].c) {
            for (size_t a = i, b = j - 1; a < b; a++, b--) {
                tk_cand x = w.cand[a];
                w.cand[a] = w.cand[b];
                w.cand[b] = x;
            }
        } else {
            qsort(w.cand + i, j - i, sizeof *w.cand, cand_cmp);
        }
        i = j;
    }
    st = alloc_merges(L, w.n);
    for (size_t r = 0; r < w.n && !st; r++) {
        if (r + 16 < w.n)
            TK_PREFETCH(&t->merges[merge_slot(t, (uint64_t)(uint32_t)w.cand[r + 16].a << 32 | (uint32_t)w.cand[r + 16].b)]);
        merge_insert(t, w.cand[r].a, w.cand[r].b, (uint32_t)r, w.cand[r].c);
    }
done:
    free(order);
    free(count);
    free(filter);
    free(w.cand);
    return st;
}

static gemma_status build_pieces(loader *L, const gm_piece_vocab *v) {
    gemma_tokenizer *t = L->t;
    if (v->n_ids <= 0 || v->n_model <= 0 || v->n_model > v->n_ids || v->n_ids > TK_MAX_IDS)
        return gm_fail(L->err, GEMMA_ERR_FORMAT, "%s: key '%s': %d pieces (%d in the model) is not a vocabulary",
                       L->name, v->key, (int)v->n_ids, (int)v->n_model);
    size_t bytes = 0;
    for (int32_t id = 0; id < v->n_ids; id++) bytes += (size_t)v->len[id] + 1;
    gemma_status st = alloc_ids(L, (size_t)v->n_ids, bytes);
    if (st) return st;
    t->added = malloc((size_t)v->n_ids * sizeof *t->added);
    if (!t->added) return oom(L);
    t->n_model = v->n_model;
    t->n_ids = v->n_ids;
    uint32_t hash[32];
    for (int32_t id = 0; id < v->n_ids; id++) {
        if (id % 32 == 0)   /* the index slots of the next 32, prefetched */
            for (int32_t k = 0; k < 32 && id + k < v->n_ids; k++) {
                hash[k] = hash_bytes(v->piece[id + k], v->len[id + k]);
                TK_PREFETCH(&t->vocab[hash[k] & t->vocab_mask]);
            }
        int kind = v->kind[id];
        if (utf8_check((const unsigned char *)v->piece[id], v->len[id]) != v->len[id] || v->len[id] == 0)
            return gm_fail(L->err, GEMMA_ERR_FORMAT, "%s: key '%s': piece %d is %s", L->name, v->key, (int)id,
                           v->len[id] ? "not valid UTF-8" : "empty");
        if (!arena_put(t, v->piece[id], v->len[id], &t->piece[id])) return oom(L);
        int32_t twin = vocab_add_h(t, id, hash[id % 32]);
        if (twin >= 0)
            return gm_fail(L->err, GEMMA_ERR_FORMAT, "%s: key '%s': piece %s appears twice (ids %d and %d)", L->name,
                           v->key, QUOTE(L, v->piece[id], v->len[id]), (int)twin, (int)id);
        t->flags[id] = TK_PRESENT;
        if (kind == GM_PIECE_ADDED || kind == GM_PIECE_SPECIAL) {
            t->flags[id] |= TK_ADDED | (kind == GM_PIECE_SPECIAL ? TK_SPECIAL : 0);
            t->added[t->n_added++] = id;
        } else if (id >= v->n_model) {
            return gm_fail(L->err, GEMMA_ERR_FORMAT, "%s: key '%s': piece %d is outside the model and not added",
                           L->name, v->key, (int)id);
        }
    }
    t->byte_fallback = v->byte_fallback;
    t->fuse_unk = 1;
    if (v->unk >= v->n_model || v->bos >= v->n_ids)
        return gm_fail(L->err, GEMMA_ERR_FORMAT, "%s: key '%s': the unk (%d) or bos (%d) id is not a piece", L->name,
                       v->key, (int)v->unk, (int)v->bos);
    t->unk = v->unk < 0 ? -1 : v->unk;
    t->bos = v->bos < 0 ? -1 : v->bos;
    if ((st = index_chars(L)) || (st = merges_from_scores(L, v->score, v->key))) return st;
    find_word_starts(t);
    /* HF's normalizer Replace(" " -> "▁") and decoder Replace("▁" -> " "),
     * ByteFallback, Fuse; no pre-tokenizer (its Split(" ") never matches
     * after the normalizer) and no dummy prefix. */
    if (t->space_id < 0)
        return gm_fail(L->err, GEMMA_ERR_FORMAT, "%s: key '%s' has no piece '\xe2\x96\x81' (U+2581, the space)",
                       L->name, v->key);
    static const char space[] = " ", meta[] = "\xe2\x96\x81";
    if (!arena_put(t, space, 1, &t->norm[0].pattern) || !arena_put(t, meta, 3, &t->norm[0].content) ||
        !arena_put(t, meta, 3, &t->dec[0].pattern) || !arena_put(t, space, 1, &t->dec[0].content))
        return oom(L);
    t->n_norm = 1;
    t->n_dec = 1;
    t->dec_byte_fallback = 1;
    return finish(L);
}

gemma_status gm_tokenizer_from_pieces(const gm_piece_vocab *v, const char *name, gemma_tokenizer **out,
                                      gemma_error *err) {
    if (!out || !v) return gm_fail(err, GEMMA_ERR_ARG, "tokenizer: NULL argument");
    *out = NULL;
    gemma_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return gm_fail(err, GEMMA_ERR_NOMEM, "%s: out of memory", name);
    loader L = {.t = t, .name = name, .err = err};
    gemma_status st = build_pieces(&L, v);
    if (st) {
        gemma_tokenizer_free(t);
        return st;
    }
    gm_ok(err);
    *out = t;
    return GEMMA_OK;
}

gemma_status gemma_tokenizer_load(const char *path, gemma_tokenizer **out, gemma_error *err) {
    if (!path || !out) return gm_fail(err, GEMMA_ERR_ARG, "tokenizer: NULL argument");
    *out = NULL;
    struct stat st;
    if (stat(path, &st) != 0) return gm_fail(err, GEMMA_ERR_IO, "%s: no such file or directory", path);
    size_t plen = strlen(path);
    char *file = malloc(plen + sizeof "/tokenizer.json");
    if (!file) return gm_fail(err, GEMMA_ERR_NOMEM, "%s: out of memory", path);
    memcpy(file, path, plen + 1);
    if (S_ISDIR(st.st_mode)) {
        memcpy(file + plen, "/tokenizer.json", sizeof "/tokenizer.json");
        /* No tokenizer.json: the vocabulary of the folder's one GGUF model. */
        char gguf[1400];
        int n_gguf = stat(file, &st) != 0 ? gm_find_gguf_in_dir(path, gguf, sizeof gguf) : 0;
        if (n_gguf > 1) {
            free(file);
            return gm_fail(err, GEMMA_ERR_IO, "%s: no tokenizer.json and more than one .gguf model file: name the file",
                           path);
        }
        if (n_gguf == 1) {
            free(file);
            return gm_tokenizer_load_gguf(gguf, out, err);
        }
    } else if (gm_gguf_file_has_magic(path)) {
        free(file);
        return gm_tokenizer_load_gguf(path, out, err);
    }
    char *text;
    size_t len;
    gemma_status s = gm_read_file(file, TK_MAX_FILE_BYTES, &text, &len, err);
    if (s == GEMMA_OK) {
        s = gm_tokenizer_load_buffer(text, len, file, out, err);
        free(text);
    }
    free(file);
    return s;
}

void gemma_tokenizer_free(gemma_tokenizer *t) {
    if (!t) return;
    free(t->arena);
    free(t->piece);
    free(t->text);
    free(t->byte);
    free(t->flags);
    free(t->added);
    free(t->vocab);
    free(t->chars);
    free(t->merges);
    free(t->raw.node);
    free(t->normalized.node);
    free(t);
}

/* =============================================================== encoding */

typedef struct {
    uint64_t key;        /* rank << 32 | position of the left symbol: the smallest merges first */
    int32_t new_id;
} tk_entry;

typedef struct {
    size_t start, end;
    int match;
} tk_region;

/* Per-call scratch: nothing here outlives one gemma_tokenize. */
typedef struct {
    const gemma_tokenizer *t;
    int flags;
    int32_t *ids;
    size_t cap, n;
    tk_pingpong norm;             /* the normalized stretch */
    int32_t *sym, *prev, *next;
    size_t sym_cap, prev_cap, next_cap;
    tk_entry *heap;
    size_t heap_cap;
    tk_region *reg;
    size_t reg_cap;
    gemma_error *err;
} tk_work;

static inline void emit(tk_work *w, int32_t id) {
    if (w->n < w->cap) w->ids[w->n] = id;
    w->n++;
}

static gemma_status work_oom(tk_work *w) { return gm_fail(w->err, GEMMA_ERR_NOMEM, "tokenize: out of memory"); }

static inline void heap_push(tk_entry *h, size_t *n, tk_entry e) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h[p].key <= e.key) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = e;
}

static inline void heap_sift_down(tk_entry *h, size_t n, size_t i) {
    tk_entry e = h[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && h[c + 1].key < h[c].key) c++;
        if (e.key <= h[c].key) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = e;
}

static inline void push_pair(const gemma_tokenizer *t, tk_entry *h, size_t *hn, int32_t a, int32_t b, size_t pos) {
    const tk_merge *m = merge_find(t, a, b);
    if (m) heap_push(h, hn, (tk_entry){(uint64_t)m->rank << 32 | pos, (int32_t)m->new_id});
}

/* The rank and result of merging pair (a, b); rank UINT32_MAX if none. */
static inline void pair_rank(const gemma_tokenizer *t, int32_t a, int32_t b, uint32_t *rank, int32_t *new_id) {
    const tk_merge *m = merge_find(t, a, b);
    *rank = m ? m->rank : UINT32_MAX;
    *new_id = m ? (int32_t)m->new_id : -1;
}

/* Merge a short word in place by scanning for the pair of lowest rank (the
 * first of equals: the leftmost, as HF's (rank, position) order has it);
 * returns the number of symbols left. */
static size_t merge_scan(const gemma_tokenizer *t, int32_t *sym, size_t m) {
    uint32_t rank[TK_SCAN_MAX];
    int32_t nid[TK_SCAN_MAX];
    for (size_t i = 0; i + 1 < m; i++) pair_rank(t, sym[i], sym[i + 1], &rank[i], &nid[i]);
    while (m > 1) {
        size_t best = 0;
        for (size_t i = 1; i + 1 < m; i++)
            if (rank[i] < rank[best]) best = i;
        if (rank[best] == UINT32_MAX) break;
        sym[best] = nid[best];
        for (size_t i = best + 1; i + 1 < m; i++) sym[i] = sym[i + 1];
        for (size_t i = best + 1; i + 2 < m; i++) {
            rank[i] = rank[i + 1];
            nid[i] = nid[i + 1];
        }
        m--;
        if (best > 0) pair_rank(t, sym[best - 1], sym[best], &rank[best - 1], &nid[best - 1]);
        if (best + 1 < m) pair_rank(t, sym[best], sym[best + 1], &rank[best], &nid[best]);
    }
    return m;
}

/* Merge a word of any length with HF's Word::merge_all: a priority queue of
 * (rank, position) over a linked list.  A popped entry is skipped when its
 * left symbol is gone or last, or when the pair there no longer merges into
 * the entry's result.  Survivors are compacted to the front of sym. */
static size_t merge_heap(tk_work *w, int32_t *sym, size_t m) {
    const gemma_tokenizer *t = w->t;
    int32_t *prev = w->prev, *next = w->next;
    tk_entry *heap = w->heap;
    size_t hn = 0;
    for (size_t i = 0; i < m; i++) {
        prev[i] = (int32_t)i - 1;
        next[i] = i + 1 < m ? (int32_t)i + 1 : -1;
    }
    for (size_t i = 0; i + 1 < m; i++) {
        const tk_merge *mg = merge_find(t, sym[i], sym[i + 1]);
        if (mg) heap[hn++] = (tk_entry){(uint64_t)mg->rank << 32 | i, (int32_t)mg->new_id};
    }
    for (size_t i = hn / 2; i-- > 0;) heap_sift_down(heap, hn, i);
    while (hn) {
        tk_entry top = heap[0];
        heap[0] = heap[--hn];
        if (hn) heap_sift_down(heap, hn, 0);
        size_t p = (uint32_t)top.key;
        if (sym[p] < 0 || next[p] < 0) continue;
        int32_t q = next[p];
        const tk_merge *cur = merge_find(t, sym[p], sym[q]);
        if (!cur || (int32_t)cur->new_id != top.new_id) continue;
        sym[p] = top.new_id;
        sym[q] = -1;
        next[p] = next[q];
        if (next[q] >= 0) prev[next[q]] = (int32_t)p;
        if (prev[p] >= 0) push_pair(t, heap, &hn, sym[prev[p]], sym[p], (size_t)prev[p]);
        if (next[p] >= 0) push_pair(t, heap, &hn, sym[p], sym[next[p]], p);
    }
    size_t k = 0;
    for (int32_t i = 0; i >= 0; i = next[i]) sym[k++] = sym[i];
    return k;
}

/* BPE over one pre-tokenized piece s[0..n) (valid UTF-8, n > 0), as HF's
 * BPE model does it: characters to pieces (byte fallback, then <unk>), then
 * merges.  The merges run word by word where find_word_starts allows it. */
static gemma_status bpe(tk_work *w, const unsigned char *s, size_t n) {
    const gemma_tokenizer *t = w->t;
    if (t->ignore_merges) {
        int32_t whole = model_find(t, s, n);
        if (whole >= 0) {
            emit(w, whole);
            return GEMMA_OK;
        }
    }
    if (!grow(&w->sym, &w->sym_cap, n, sizeof *w->sym)) return work_oom(w);
    int32_t *sym = w->sym;
    size_t m = 0;
    int unk_pending = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t cl = utf8_next(s + i, &cp);
        int32_t id = char_find(t, cp);
        if (id >= 0 || t->byte_fallback) {
            if (unk_pending) sym[m++] = t->unk;
            unk_pending = 0;
            if (id >= 0) {
                sym[m++] = id;
            } else {
                for (size_t k = 0; k < cl; k++) sym[m++] = t->byte_id[s[i + k]];
            }
        } else if (t->unk >= 0) {
            if (unk_pending && !t->fuse_unk) sym[m++] = t->unk;
            unk_pending = 1;
        } else {
            return gm_fail(w->err, GEMMA_ERR_UNSUPPORTED,
                           "tokenize: character U+%04X is not in the vocabulary and the tokenizer has neither byte "
                           "fallback nor an unk token",
                           (unsigned)cp);
        }
        i += cl;
    }
    if (unk_pending) sym[m++] = t->unk;
    size_t start = 0;
    for (size_t i = 1; i <= m; i++) {
        if (i < m && !(t->word_split && sym[i] == t->space_id && !(t->flags[sym[i - 1]] & TK_GLUE))) continue;
        size_t len = i - start, kept;
        if (len <= TK_SCAN_MAX) {
            kept = merge_scan(t, sym + start, len);
        } else {
            if (!grow(&w->prev, &w->prev_cap, len, sizeof *w->prev) ||
                !grow(&w->next, &w->next_cap, len, sizeof *w->next) ||
                !grow(&w->heap, &w->heap_cap, 3 * len + 1, sizeof *w->heap))
                return work_oom(w);
            kept = merge_heap(w, sym + start, len);
        }
        for (size_t k = 0; k < kept; k++) emit(w, sym[start + k]);
        start = i;
    }
    return GEMMA_OK;
}

/* The pre-tokenizer: HF's Split with a literal pattern, then BPE per piece. */
static gemma_status pre_tokenize(tk_work *w, const unsigned char *s, size_t n) {
    const gemma_tokenizer *t = w->t;
    if (!t->has_split) return bpe(w, s, n);
    const char *pat = span_str(t, t->split_pattern);
    size_t pl = t->split_pattern.len, k = 0, i = 0;
    const unsigned char *hit;
    while (i < n) {
        if (!grow(&w->reg, &w->reg_cap, k + 2, sizeof *w->reg)) return work_oom(w);
        size_t at = n;
        for (size_t from = i; (hit = memchr(s + from, (unsigned char)pat[0], n - from)); from = (size_t)(hit - s) + 1) {
            if ((size_t)(s + n - hit) >= pl && memcmp(hit, pat, pl) == 0) {
                at = (size_t)(hit - s);
                break;
            }
        }
        if (at > i) w->reg[k++] = (tk_region){i, at, 0};
        if (at == n) break;
        w->reg[k++] = (tk_region){at, at + pl, 1};
        i = at + pl;
    }
    /* The behaviours, as HF's NormalizedString::split folds its matches. */
    tk_region *r = w->reg;
    size_t cur_start = 0, cur_end = 0, carry = SIZE_MAX;
    int have = 0, prev_match = 0;
    gemma_status st = GEMMA_OK;
    for (size_t j = 0; j < k && !st; j++) {
        switch (t->split_behavior) {
        case SPLIT_REMOVED:
            if (!r[j].match) st = bpe(w, s + r[j].start, r[j].end - r[j].start);
            break;
        case SPLIT_ISOLATED: st = bpe(w, s + r[j].start, r[j].end - r[j].start); break;
        case SPLIT_MERGED_NEXT:
            if (r[j].match && j + 1 < k && !r[j + 1].match) {
                carry = r[j].start;
            } else {
                size_t from = carry != SIZE_MAX ? carry : r[j].start;
                st = bpe(w, s + from, r[j].end - from);
                carry = SIZE_MAX;
            }
            break;
        case SPLIT_MERGED_PREVIOUS:
        case SPLIT_CONTIGUOUS: {
            int extend = t->split_behavior == SPLIT_MERGED_PREVIOUS ? r[j].match && !prev_match
                                                                    : r[j].match == prev_match;
            if (extend && have) {
                cur_end = r[j].end;
            } else {
                if (have) st = bpe(w, s + cur_start, cur_end - cur_start);
                cur_start = r[j].start;
                cur_end = r[j].end;
                have = 1;
            }
            prev_match = r[j].match;
            break;
        }
        }
    }
    if (!st && have) st = bpe(w, s + cur_start, cur_end - cur_start);
    return st;
}

typedef gemma_status (*tk_text_fn)(tk_work *w, const unsigned char *s, size_t n);

/* Cut s at added tokens (leftmost, then longest), emit their ids and hand
 * the stretches between them to fn. */
static gemma_status split_added(tk_work *w, const tk_trie *trie, const unsigned char *s, size_t n, tk_text_fn fn) {
    const gemma_tokenizer *t = w->t;
    size_t start = 0, i = 0;
    gemma_status st;
    while (i < n) {
        if (trie->root[s[i]] < 0) {
            i++;
            continue;
        }
        size_t mlen = 0;
        int32_t id = trie_longest(trie, s + i, n - i, &mlen);
        if (id < 0) {
            i++;
            continue;
        }
        if ((w->flags & GEMMA_TOKENIZE_NO_SPECIAL) && (t->flags[id] & TK_SPECIAL)) {
            i += mlen;
            continue;
        }
        if (i > start && (st = fn(w, s + start, i - start))) return st;
        emit(w, id);
        i += mlen;
        start = i;
    }
    return n > start ? fn(w, s + start, n - start) : GEMMA_OK;
}

/* One stretch of raw text between added tokens: normalize, then the rest. */
static gemma_status encode_stretch(tk_work *w, const unsigned char *s, size_t n) {
    const gemma_tokenizer *t = w->t;
    if (!replace_chain(t, t->norm, t->n_norm, &w->norm, &s, &n)) return work_oom(w);
    if (t->has_normalized_added) return split_added(w, &t->normalized, s, n, pre_tokenize);
    return pre_tokenize(w, s, n);
}

gemma_status gemma_tokenize(const gemma_tokenizer *tok, const char *text, size_t len, int flags, int32_t *ids,
                            size_t cap, size_t *n_ids, gemma_error *err) {
    if (n_ids) *n_ids = 0;
    if (!tok || !n_ids || (!text && len) || (!ids && cap))
        return gm_fail(err, GEMMA_ERR_ARG, "tokenize: NULL argument");
    if (flags & ~(GEMMA_TOKENIZE_ADD_BOS | GEMMA_TOKENIZE_NO_SPECIAL))
        return gm_fail(err, GEMMA_ERR_ARG, "tokenize: unknown flags 0x%x", (unsigned)flags);
    const unsigned char *s = (const unsigned char *)text;
    size_t bad = utf8_check(s, len);
    if (bad < len) return gm_fail(err, GEMMA_ERR_ARG, "text: invalid UTF-8 at byte offset %zu (0x%02x)", bad, s[bad]);
    tk_work w = {.t = tok, .flags = flags, .ids = ids, .cap = cap, .err = err};
    if ((flags & GEMMA_TOKENIZE_ADD_BOS) && tok->bos >= 0) emit(&w, tok->bos);
    gemma_status st = len ? split_added(&w, &tok->raw, s, len, encode_stretch) : GEMMA_OK;
    free(w.norm.a);
    free(w.norm.b);
    free(w.sym);
    free(w.prev);
    free(w.next);
    free(w.heap);
    free(w.reg);
    if (st) return st;
    *n_ids = w.n;
    if (w.n > cap)
        return gm_fail(err, GEMMA_ERR_BUFFER, "tokenize: the text has %zu ids, the buffer holds %zu", w.n, cap);
    gm_ok(err);
    return GEMMA_OK;
}

/* =============================================================== decoding */

static const char tk_fffd[3] = {(char)0xef, (char)0xbf, (char)0xbd};

typedef struct {
    char *out;
    size_t cap, len;     /* len counts everything, also what did not fit */
} tk_out;

static inline void put(tk_out *o, const void *s, size_t n) {
    if (o->len < o->cap) {
        size_t room = o->cap - 1 - o->len;
        memcpy(o->out + o->len, s, n < room ? n : room);
    }
    o->len += n;
}

static inline int visible(const gemma_tokenizer *t, int32_t id, int flags) {
    if (id < 0 || id >= t->n_ids || !(t->flags[id] & TK_PRESENT)) return 0;
    return !((flags & GEMMA_DETOKENIZE_SKIP_SPECIAL) && (t->flags[id] & TK_SPECIAL));
}

/* Incremental UTF-8 check of a byte run: lead byte, bytes seen, bytes needed. */
typedef struct {
    unsigned char lead;
    int have, need;
} tk_utf8;

/* Feed one byte: 1 while the run is still valid UTF-8 (maybe incomplete). */
static int utf8_feed(tk_utf8 *u, unsigned b) {
    if (u->have == 0) {
        if (b < 0x80) return 1;
        if (b < 0xc2 || b > 0xf4) return 0;
        u->lead = (unsigned char)b;
        u->have = 1;
        u->need = b < 0xe0 ? 2 : b < 0xf0 ? 3 : 4;
        return 1;
    }
    unsigned lo = 0x80, hi = 0xbf;
    if (u->have == 1) {
        if (u->lead == 0xe0) lo = 0xa0;
        else if (u->lead == 0xed) hi = 0x9f;
        else if (u->lead == 0xf0) lo = 0x90;
        else if (u->lead == 0xf4) hi = 0x8f;
    }
    if (b < lo || b > hi) return 0;
    if (++u->have == u->need) u->have = 0;
    return 1;
}

gemma_status gemma_detokenize(const gemma_tokenizer *tok, const int32_t *ids, size_t n, int flags, char *out,
                              size_t cap, size_t *len, gemma_error *err) {
    if (len) *len = 0;
    if (!tok || !len || (!ids && n) || (!out && cap)) return gm_fail(err, GEMMA_ERR_ARG, "detokenize: NULL argument");
    if (flags & ~GEMMA_DETOKENIZE_SKIP_SPECIAL)
        return gm_fail(err, GEMMA_ERR_ARG, "detokenize: unknown flags 0x%x", (unsigned)flags);
    tk_out o = {out, cap, 0};
    for (size_t i = 0; i < n;) {
        int32_t id = ids[i];
        if (!visible(tok, id, flags)) {
            i++;
            continue;
        }
        if (tok->byte[id] < 0) {
            put(&o, span_str(tok, tok->text[id]), tok->text[id].len);
            i++;
            continue;
        }
        /* A byte run, across dropped ids as HF drops them before decoding. */
        tk_utf8 u = {0, 0, 0};
        size_t j = i, bytes = 0;
        int ok = 1;
        for (; j < n; j++) {
            if (!visible(tok, ids[j], flags)) continue;
            if (tok->byte[ids[j]] < 0) break;
            ok &= utf8_feed(&u, (unsigned)tok->byte[ids[j]]);
            bytes++;
        }
        if (ok && u.have == 0) {
            for (size_t k = i; k < j; k++) {
                if (!visible(tok, ids[k], flags)) continue;
                unsigned char b = (unsigned char)tok->byte[ids[k]];
                put(&o, &b, 1);
            }
        } else {
            for (size_t k = 0; k < bytes; k++) put(&o, tk_fffd, 3);
        }
        i = j;
    }
    if (cap) out[o.len < cap ? o.len : cap - 1] = 0;
    *len = o.len;
    if (o.len >= cap)
        return gm_fail(err, GEMMA_ERR_BUFFER, "detokenize: the text is %zu bytes, the buffer holds %zu with its NUL",
                       o.len, cap);
    gm_ok(err);
    return GEMMA_OK;
}

struct gemma_detokenizer {
    const gemma_tokenizer *tok;
    int flags;
    unsigned char pend[4];   /* the incomplete UTF-8 character of a byte run */
    tk_utf8 u;
};

gemma_detokenizer *gemma_detokenizer_create(const gemma_tokenizer *tok, int flags) {
    if (!tok || (flags & ~GEMMA_DETOKENIZE_SKIP_SPECIAL)) return NULL;
    gemma_detokenizer *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    d->tok = tok;
    d->flags = flags;
    return d;
}

/* The pending bytes of an unfinished character become U+FFFD each. */
static size_t drop_pending(gemma_detokenizer *d, char *out) {
    size_t n = 0;
    for (int k = 0; k < d->u.have; k++, n += 3) memcpy(out + n, tk_fffd, 3);
    d->u.have = 0;
    return n;
}

/* One byte of a byte run: complete characters come out whole. */
static size_t push_byte(gemma_detokenizer *d, unsigned b, char *out) {
    size_t n = 0;
    if (d->u.have) {
        tk_utf8 probe = d->u;
        if (utf8_feed(&probe, b)) {
            if (probe.have) {
                d->pend[d->u.have] = (unsigned char)b;
                d->u = probe;
                return 0;
            }
            n = (size_t)d->u.have;
            memcpy(out, d->pend, n);
            out[n++] = (char)b;
            d->u = probe;
            return n;
        }
        /* What came before cannot be finished: it becomes U+FFFD per byte,
         * and this byte starts afresh (it may begin a new character). */
        n = drop_pending(d, out);
    }
    if (b < 0x80) {
        out[n++] = (char)b;
        return n;
    }
    if (utf8_feed(&d->u, b)) {
        d->pend[0] = (unsigned char)b;
        return n;
    }
    memcpy(out + n, tk_fffd, 3);
    return n + 3;
}

size_t gemma_detokenizer_push(gemma_detokenizer *d, int32_t id, char *out) {
    if (!d || !out) return 0;
    const gemma_tokenizer *t = d->tok;
    size_t n = 0;
    if (visible(t, id, d->flags)) {
        if (t->byte[id] >= 0) {
            n = push_byte(d, (unsigned)t->byte[id], out);
        } else {
            n = drop_pending(d, out);
            memcpy(out + n, span_str(t, t->text[id]), t->text[id].len);
            n += t->text[id].len;
        }
    }
    out[n] = 0;
    return n;
}

size_t gemma_detokenizer_flush(gemma_detokenizer *d, char *out) {
    if (!d || !out) return 0;
    size_t n = drop_pending(d, out);
    out[n] = 0;
    return n;
}

void gemma_detokenizer_free(gemma_detokenizer *d) { free(d); }

/* ============================================================== accessors */

int gemma_tokenizer_vocab_size(const gemma_tokenizer *tok) { return tok ? tok->n_ids : 0; }

int32_t gemma_tokenizer_bos(const gemma_tokenizer *tok) { return tok ? tok->bos : -1; }

const char *gemma_token_piece(const gemma_tokenizer *tok, int32_t id) {
    if (!tok || id < 0 || id >= tok->n_ids || !(tok->flags[id] & TK_PRESENT)) return NULL;
    return span_str(tok, tok->piece[id]);
}

int32_t gemma_token_id(const gemma_tokenizer *tok, const char *piece) {
    if (!tok || !piece) return -1;
    return vocab_find(tok, piece, strlen(piece));
}

int gemma_token_is_special(const gemma_tokenizer *tok, int32_t id) {
    if (!tok || id < 0 || id >= tok->n_ids) return 0;
    return (tok->flags[id] & TK_SPECIAL) != 0;
}

size_t gm_tokenizer_max_piece_len(const gemma_tokenizer *tok) { return tok ? tok->max_text : 0; }

size_t gm_tokenizer_added_count(const gemma_tokenizer *tok) { return tok ? tok->n_added : 0; }

size_t gm_tokenizer_merge_count(const gemma_tokenizer *tok) { return tok ? tok->n_merges : 0; }

int64_t gm_tokenizer_merge_rank(const gemma_tokenizer *tok, int32_t a, int32_t b, int32_t *merged) {
    if (merged) *merged = -1;
    if (!tok || !tok->merges || a < 0 || b < 0 || a >= tok->n_model || b >= tok->n_model) return -1;
    const tk_merge *m = merge_find(tok, a, b);
    if (!m) return -1;
    if (merged) *merged = (int32_t)m->new_id;
    return m->rank;
}

int32_t gm_tokenizer_added_id(const gemma_tokenizer *tok, size_t i) {
    return tok && i < tok->n_added ? tok->added[i] : -1;
}
