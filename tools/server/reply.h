/* reply.h - the JSON the server sends back, in OpenAI's shapes.
 *
 * Kept apart from the HTTP code so that the exact bytes of a completion, a
 * stream chunk and an error object can be unit-tested, and so that every
 * string that reaches the client goes through one escaping routine. */
#ifndef GEMMA_SERVER_REPLY_H
#define GEMMA_SERVER_REPLY_H

#include <stddef.h>
#include <stdint.h>

#include "core/strbuf.h"
#include "request.h"

typedef struct {
    int prompt_tokens, completion_tokens, cached_tokens;
} srv_usage;

/* Who a response is: "chatcmpl-..." / "cmpl-...", its creation time and the model name. */
typedef struct {
    srv_kind kind;
    char id[48];
    int64_t created;
    const char *model;
} srv_reply_head;

/* Append s[0..len) as a JSON string literal (escapes every control byte). */
void srv_json_string(gm_strbuf *b, const char *s, size_t len);
/* {"error": {"message", "type", "param", "code"}} */
void srv_error_json(gm_strbuf *b, const srv_error *e);
/* The whole non-streamed response. */
void srv_completion_json(gm_strbuf *b, const srv_reply_head *h, const char *text, size_t len, const char *finish,
                         const srv_usage *u);
/* One "data: {...}\n\n" event of a stream.  text NULL: no content (a chat
 * stream's first chunk carries the role; the last one the finish reason).
 * usage not NULL: the include_usage chunk (choices empty). */
void srv_chunk_event(gm_strbuf *b, const srv_reply_head *h, int first, const char *text, size_t len,
                     const char *finish, const srv_usage *usage);

#endif
