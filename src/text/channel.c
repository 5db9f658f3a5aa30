/* channel.c - splits a reply into thought channels and answer, streamed.
 *
 * Gemma 4 models think in "<|channel>thought\n...<channel|>" before they
 * answer, and the chat template's strip_thinking removes that from model turns
 * in the history.  A CLI or server must show the two apart while tokens arrive,
 * and must produce the same answer text the template would keep.  The two
 * markers cannot overlap each other (neither has a proper suffix that begins
 * the other), so one left-to-right scan gives strip_thinking's result: text
 * between "<|channel>" and the next "<channel|>" is thought, a "<channel|>"
 * outside a channel is dropped, the rest is answer.  Bytes at the end of a
 * piece that could begin a marker wait for the next piece. */
#include "text/channel.h"

#include <stdlib.h>
#include <string.h>

static const char open_marker[] = "<|channel>", close_marker[] = "<channel|>";
enum { MARKER_LEN = sizeof open_marker - 1 };
_Static_assert(sizeof close_marker - 1 == MARKER_LEN, "markers of one length");
_Static_assert(MARKER_LEN < GEMMA_CHANNEL_HOLD, "hold buffer fits a marker prefix");

/* Byte k of the stream hold + text. */
static char at(const gm_channel *c, const char *text, size_t k) { return k < c->held ? c->hold[k] : text[k - c->held]; }

/* Does the stream from k (n bytes left) start with marker m, or (partial) with a prefix of it? */
static int starts_with(const gm_channel *c, const char *text, size_t k, size_t n, const char *m, int *partial) {
    size_t cmp = n < MARKER_LEN ? n : MARKER_LEN;
    for (size_t j = 0; j < cmp; j++)
        if (at(c, text, k + j) != m[j]) return 0;
    *partial = n < MARKER_LEN;
    return 1;
}

void gm_channel_push(gm_channel *c, const char *text, size_t len, char *answer, size_t *n_answer, char *thought,
                     size_t *n_thought) {
    size_t total = c->held + len, k = 0, na = 0, nt = 0;
    while (k < total) {
        int partial = 0;
        int is_open = starts_with(c, text, k, total - k, open_marker, &partial);
        int is_close = !is_open && starts_with(c, text, k, total - k, close_marker, &partial);
        if ((is_open || is_close) && partial) break;   /* hold the rest */
        if (is_open || is_close) {
            c->thought = is_open;   /* a "<|channel>" inside a channel keeps it open */
            k += MARKER_LEN;
            continue;
        }
        char ch = at(c, text, k++);
        if (!c->thought) answer[na++] = ch;
        else if (thought) thought[nt++] = ch;
    }
    char rest[GEMMA_CHANNEL_HOLD];
    size_t n_rest = total - k;
    for (size_t j = 0; j < n_rest; j++) rest[j] = at(c, text, k + j);
    memcpy(c->hold, rest, n_rest);
    c->held = n_rest;
    *n_answer = na;
    if (n_thought) *n_thought = nt;
}

void gm_channel_flush(gm_channel *c, char *answer, size_t *n_answer, char *thought, size_t *n_thought) {
    size_t na = 0, nt = 0;
    if (!c->thought) {
        memcpy(answer, c->hold, c->held);
        na = c->held;
    } else if (thought) {
        memcpy(thought, c->hold, c->held);
        nt = c->held;
    }
    memset(c, 0, sizeof *c);
    *n_answer = na;
    if (n_thought) *n_thought = nt;
}

struct gemma_channel_splitter {
    gm_channel c;
};

gemma_channel_splitter *gemma_channel_splitter_create(void) { return calloc(1, sizeof(gemma_channel_splitter)); }
void gemma_channel_splitter_free(gemma_channel_splitter *s) { free(s); }

void gemma_channel_push(gemma_channel_splitter *s, const char *text, size_t len, char *answer, size_t *n_answer,
                        char *thought, size_t *n_thought) {
    gm_channel_push(&s->c, text, len, answer, n_answer, thought, n_thought);
}

void gemma_channel_flush(gemma_channel_splitter *s, char *answer, size_t *n_answer, char *thought,
                         size_t *n_thought) {
    gm_channel_flush(&s->c, answer, n_answer, thought, n_thought);
}

int gemma_channel_in_thought(const gemma_channel_splitter *s) { return s ? s->c.thought : 0; }
