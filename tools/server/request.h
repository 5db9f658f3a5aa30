/* request.h - an OpenAI request body turned into what the engine runs.
 *
 * The body of POST /v1/chat/completions or /v1/completions is hostile input:
 * it is parsed with the library's bounded JSON reader, every field the
 * server uses is type- and range-checked, and every failure becomes an
 * OpenAI error (HTTP status, message, type, param, code) instead of a crash
 * or a silent truncation.  Unknown fields are ignored, as OpenAI's own
 * clients expect.  Messages are rendered with the model's chat format;
 * images come only as base64 `data:` URLs (nothing is ever fetched) and are
 * decoded here, so a bad picture is refused before a slot is taken. */
#ifndef GEMMA_SERVER_REQUEST_H
#define GEMMA_SERVER_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "gemma.h"

#define SRV_MAX_STOPS 16

/* What a request may ask for at most (the server's --limits). */
typedef struct {
    size_t max_body_bytes;       /* request body */
    int max_json_depth;          /* nesting of the body */
    int max_images;              /* images in one request */
    size_t max_image_bytes;      /* one image file, after base64 decoding */
    uint64_t max_image_pixels;   /* width x height of one image */
    int max_messages;            /* messages of one conversation */
    int max_stop_len;            /* bytes of one stop string */
    int max_logit_bias;          /* entries of logit_bias */
} srv_limits;

srv_limits srv_default_limits(void);

/* An OpenAI error: {"error": {"message", "type", "param", "code"}} with an HTTP status. */
typedef struct {
    int status;                  /* 400, 401, 404, 413, 429, 500, 503 */
    const char *type;            /* "invalid_request_error", "authentication_error", "server_error", ... */
    const char *code;            /* NULL or e.g. "context_length_exceeded" */
    char param[64];              /* the offending field ("" = none) */
    char message[512];
} srv_error;

/* Fills err and returns 0 (for `return srv_fail(...)`). */
int srv_fail(srv_error *err, int status, const char *type, const char *code, const char *param, const char *fmt,
             ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 6, 7)))
#endif
    ;

typedef enum { SRV_CHAT = 0, SRV_COMPLETION = 1 } srv_kind;

typedef struct {
    gemma_image *image;          /* decoded */
    uint64_t hash;               /* of the file bytes: which cached image runs can be reused */
} srv_image;

typedef struct {
    srv_kind kind;
    int stream, include_usage;
    int max_tokens;              /* -1: until a stop or the end of the context */
    gemma_sampler_params sp;
    gemma_logit_bias *bias;      /* sp.logit_bias points here */
    char *stops[SRV_MAX_STOPS];
    int n_stops;
    char *model;                 /* the "model" field, echoed back (NULL: absent) */
    char *prompt;                /* the prompt text: rendered, image placeholders expanded */
    int add_bos;                 /* completions: <bos> goes before the raw text */
    srv_image *images;
    int n_images;
} srv_request;

/* Parse a request body.  `fmt` may be NULL for a model without a chat
 * template (chat requests then fail with 400).  `defaults` are the model's
 * sampling defaults; the seed, when the request has none, is `seed`.
 * Returns 1, or 0 with err filled (the request is then freed). */
int srv_parse_request(const char *body, size_t len, srv_kind kind, const srv_limits *lim, const gemma_model *model,
                      const gemma_chat_format *fmt, const gemma_sampler_params *defaults, uint64_t seed,
                      srv_request *out, srv_error *err);
void srv_request_free(srv_request *r);

/* Decode standard base64 (padding optional, no whitespace) into a malloc'd
 * buffer; NULL if the text is not base64 or would decode past max_bytes. */
unsigned char *srv_base64_decode(const char *text, size_t len, size_t max_bytes, size_t *out_len);

#endif
