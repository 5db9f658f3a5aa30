/* chat.h - internal entry points of chat.c for callers that already hold
 * parsed JSON (the server, the parity tests). */
#ifndef GM_CHAT_H
#define GM_CHAT_H

#include "core/json.h"
#include "core/strbuf.h"
#include "gemma.h"

/* Render an OpenAI-style message list held as a parsed JSON array. */
gemma_status gm_chat_render_json_value(const gemma_chat_format *fmt, const gm_json *messages, int flags,
                                       gm_strbuf *out, gemma_error *err);

#endif
