/* channel.h - the thought-channel splitter's state as a plain struct, so the
 * chat renderer (strip_thinking) can run it on the stack; the public
 * gemma_channel_splitter wraps one. */
#ifndef GM_CHANNEL_H
#define GM_CHANNEL_H

#include "gemma.h"

typedef struct {
    int thought;                     /* inside <|channel> ... <channel|> */
    size_t held;                     /* bytes kept back: they may begin a marker */
    char hold[GEMMA_CHANNEL_HOLD];
} gm_channel;

/* As gemma_channel_push / _flush; thought may be NULL (thought text dropped). */
void gm_channel_push(gm_channel *c, const char *text, size_t len, char *answer, size_t *n_answer, char *thought,
                     size_t *n_thought);
void gm_channel_flush(gm_channel *c, char *answer, size_t *n_answer, char *thought, size_t *n_thought);

#endif
