/* tokenizer.h - internal entry points of the tokenizer (src/text/tokenizer.c).
 *
 * The public API is the tokenizer section of include/gemma.h.  These extras
 * exist for the other C files of the library and for tests and fuzzers:
 * loading from a buffer (no file needed), loading from a GGUF's metadata
 * (tokenizer_gguf.c) through a SentencePiece-style piece list, and a few
 * facts about the loaded vocabulary that callers sizing buffers or rendering
 * prompts want. */
#ifndef GM_TOKENIZER_H
#define GM_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "gemma.h"
#include "io/gguf.h"

/* Load from `len` bytes of tokenizer.json text; `name` is used in error
 * messages in place of the file name. */
gemma_status gm_tokenizer_load_buffer(const char *json, size_t len, const char *name, gemma_tokenizer **out,
                                      gemma_error *err);

/* ------------------------------------------------ SentencePiece vocabularies */

/* What a piece is to the tokenizer.  NORMAL and BYTE pieces are only reached
 * through BPE; ADDED ones are also matched as whole strings on the raw text
 * before anything else (HF's added tokens), SPECIAL ones too, and they are
 * what GEMMA_TOKENIZE_NO_SPECIAL and GEMMA_DETOKENIZE_SKIP_SPECIAL act on. */
enum { GM_PIECE_NORMAL = 0, GM_PIECE_BYTE = 1, GM_PIECE_ADDED = 2, GM_PIECE_SPECIAL = 3 };

/* A SentencePiece vocabulary: pieces, their scores and kinds.  From it
 * gm_tokenizer_from_pieces builds the tokenizer HF's converter writes into
 * tokenizer.json for such a model (Gemma's): a BPE over ids 0..n_model-1
 * whose merges come from the scores (transformers' SentencePieceExtractor:
 * every split of a piece into two pieces is a merge, ranked by the piece's
 * score, then the longer left part, then the longer right part, then the
 * piece's id), " " normalized to "▁", no dummy prefix, byte fallback to
 * <0xHH> pieces, unknown characters fused into one unk, and a decoder that
 * undoes all that.  Ids n_model..n_ids-1 exist only as added tokens. */
typedef struct {
    int32_t n_ids, n_model;
    const char *const *piece;    /* [n_ids] valid UTF-8, not empty, not NUL-terminated */
    const uint32_t *len;         /* [n_ids] bytes */
    const float *score;          /* [n_model] finite; higher merges first */
    const uint8_t *kind;         /* [n_ids] GM_PIECE_* */
    int32_t unk;                 /* a model id, or -1 */
    int32_t bos;                 /* what GEMMA_TOKENIZE_ADD_BOS prepends, or -1 */
    int byte_fallback;           /* characters outside the vocabulary become <0xHH> pieces (all 256 needed) */
    const char *key;             /* where the pieces come from, for messages ("tokenizer.ggml.tokens") */
} gm_piece_vocab;

/* `name` (the file) starts every error message. */
gemma_status gm_tokenizer_from_pieces(const gm_piece_vocab *v, const char *name, gemma_tokenizer **out,
                                      gemma_error *err);

/* The tokenizer of an open GGUF file (tokenizer.ggml.* metadata), and of the
 * GGUF file at `path` (tokenizer_gguf.c). */
gemma_status gm_tokenizer_from_gguf(const gm_gguf *g, gemma_tokenizer **out, gemma_error *err);
gemma_status gm_tokenizer_load_gguf(const char *path, gemma_tokenizer **out, gemma_error *err);

/* ------------------------------------------------------------------ facts */

/* Longest decoded text of one id in bytes ("▁" already turned into " "):
 * what a single gemma_detokenizer_push can add besides a pending tail. */
size_t gm_tokenizer_max_piece_len(const gemma_tokenizer *tok);

/* The added tokens (tokenizer.json "added_tokens"), in file order:
 * returns how many there are and, for i below that, writes the i-th id. */
size_t gm_tokenizer_added_count(const gemma_tokenizer *tok);
int32_t gm_tokenizer_added_id(const gemma_tokenizer *tok, size_t i);

/* The BPE merges (for tests comparing two sources of one vocabulary): how
 * many distinct pairs there are, and the rank of merging ids a and b (-1 if
 * they do not merge; *merged receives the result). */
size_t gm_tokenizer_merge_count(const gemma_tokenizer *tok);
int64_t gm_tokenizer_merge_rank(const gemma_tokenizer *tok, int32_t a, int32_t b, int32_t *merged);

#endif
