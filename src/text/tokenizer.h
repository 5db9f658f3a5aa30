/* tokenizer.h - internal entry points of the tokenizer (src/text/tokenizer.c).
 *
 * The public API is the tokenizer section of include/gemma.h.  These extras
 * exist for the other C files of the library and for tests and fuzzers:
 * loading from a buffer (no file needed), and a few facts about the loaded
 * vocabulary that callers sizing buffers or rendering prompts want. */
#ifndef GM_TOKENIZER_H
#define GM_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "gemma.h"

/* Load from `len` bytes of tokenizer.json text; `name` is used in error
 * messages in place of the file name. */
gemma_status gm_tokenizer_load_buffer(const char *json, size_t len, const char *name, gemma_tokenizer **out,
                                      gemma_error *err);

/* Longest decoded text of one id in bytes ("▁" already turned into " "):
 * what a single gemma_detokenizer_push can add besides a pending tail. */
size_t gm_tokenizer_max_piece_len(const gemma_tokenizer *tok);

/* The added tokens (tokenizer.json "added_tokens"), in file order:
 * returns how many there are and, for i below that, writes the i-th id. */
size_t gm_tokenizer_added_count(const gemma_tokenizer *tok);
int32_t gm_tokenizer_added_id(const gemma_tokenizer *tok, size_t i);

#endif
