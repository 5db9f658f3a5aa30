/* http.h - the HTTP side of `gemma serve`: OpenAI's routes on civetweb.
 *
 *   POST /v1/chat/completions   messages -> reply (JSON, or SSE with stream: true)
 *   POST /v1/completions        prompt -> continuation (the same two ways)
 *   GET  /v1/models             the one model served
 *   GET  /health                {"status": "ok"} (never needs the API key)
 *   GET  /metrics               Prometheus text format
 *
 * Everything else answers an OpenAI error object.  civetweb owns sockets,
 * parsing of the request line and headers, keep-alive and timeouts; this file
 * owns authentication, body limits, routing and the response bytes. */
#ifndef GEMMA_SERVER_HTTP_H
#define GEMMA_SERVER_HTTP_H

#include "engine.h"
#include "request.h"

typedef struct {
    const char *host;        /* "127.0.0.1" */
    int port;                /* 0: any free port (the one taken is reported) */
    const char *api_key;     /* NULL: no authentication */
    const char *model_name;  /* the id /v1/models reports and responses carry */
    int timeout_ms;          /* reading a request, and each write to a slow client */
    int n_http_threads;      /* connections served at once (keep-alive ones included) */
    int quiet;               /* no line per request on stderr */
    srv_limits limits;
} srv_http_options;

typedef struct srv_http srv_http;

/* Start listening.  *bound_port receives the port.  NULL on failure, with why in errbuf. */
srv_http *srv_http_start(srv_engine *engine, const gemma_model *model, const gemma_chat_format *fmt,
                         const srv_http_options *opts, int *bound_port, char *errbuf, size_t errlen);
/* Stop accepting, finish the requests in flight, free everything. */
void srv_http_stop(srv_http *h);

#endif
