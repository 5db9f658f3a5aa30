/* http.c - see http.h. */
#include "http.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gemma_civetweb.h"
#include "reply.h"

enum { ROUTE_CHAT, ROUTE_COMPLETIONS, ROUTE_MODELS, ROUTE_HEALTH, ROUTE_METRICS, ROUTE_OTHER, N_ROUTES };
static const char *const route_names[N_ROUTES] = {"chat_completions", "completions", "models", "health", "metrics",
                                                  "other"};

/* One counter per (route, status) pair seen; a handful exist in practice. */
#define MAX_COUNTERS 64
typedef struct {
    int route, status;
    uint64_t count;
} status_counter;

typedef struct {
    struct srv_http *h;
    int route;
} route_ctx;

struct srv_http {
    struct mg_context *ctx;
    srv_engine *engine;
    const gemma_model *model;
    const gemma_chat_format *fmt;
    srv_http_options opts;
    char *bearer;                /* "Bearer KEY", or NULL */
    gemma_sampler_params defaults;
    int64_t started;
    route_ctx routes[N_ROUTES];
    pthread_mutex_t lock;        /* the counters below and the id sequence */
    uint64_t next_id;
    status_counter counters[MAX_COUNTERS];
    int n_counters;
    double seconds_sum, ttft_sum;
    uint64_t seconds_count, ttft_count;
};

/* ================================================================ output */

static void count_status(srv_http *h, int route, int status) {
    pthread_mutex_lock(&h->lock);
    int i = 0;
    while (i < h->n_counters && (h->counters[i].route != route || h->counters[i].status != status)) i++;
    if (i == h->n_counters && i < MAX_COUNTERS) h->counters[h->n_counters++] = (status_counter){route, status, 0};
    if (i < MAX_COUNTERS) h->counters[i].count++;
    pthread_mutex_unlock(&h->lock);
}

static int send_body(struct mg_connection *c, int status, const char *type, const char *body, size_t len) {
    char cl[32];
    snprintf(cl, sizeof cl, "%zu", len);
    mg_response_header_start(c, status);
    mg_response_header_add(c, "Content-Type", type, -1);
    mg_response_header_add(c, "Content-Length", cl, -1);
    if (status == 503) mg_response_header_add(c, "Retry-After", "1", -1);
    if (status == 401) mg_response_header_add(c, "WWW-Authenticate", "Bearer", -1);
    mg_response_header_send(c);
    mg_write(c, body, len);
    return status;
}

static int send_error(srv_http *h, struct mg_connection *c, int route, const srv_error *e) {
    gm_strbuf b;
    gm_strbuf_init(&b);
    srv_error_json(&b, e);
    count_status(h, route, e->status);
    int st = send_body(c, e->status, "application/json", b.ok ? b.data : "{}", b.ok ? b.len : 2);
    gm_strbuf_free(&b);
    return st;
}

static int send_json(srv_http *h, struct mg_connection *c, int route, gm_strbuf *b) {
    if (!b->ok) {
        srv_error e;
        srv_fail(&e, 500, "server_error", NULL, NULL, "out of memory");
        return send_error(h, c, route, &e);
    }
    count_status(h, route, 200);
    return send_body(c, 200, "application/json", b->data, b->len);
}

/* ================================================================= input */

/* Constant-time comparison, so the key cannot be guessed byte by byte from timings. */
static int same_secret(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    unsigned diff = la != lb;
    for (size_t i = 0; i < lb; i++) diff |= (unsigned char)(i < la ? a[i] : 0) ^ (unsigned char)b[i];
    return diff == 0;
}

static int authorized(const srv_http *h, struct mg_connection *c, srv_error *err) {
    if (!h->bearer) return 1;
    const char *got = mg_get_header(c, "Authorization");
    if (got && same_secret(got, h->bearer)) return 1;
    return srv_fail(err, 401, "invalid_request_error", "invalid_api_key", NULL,
                    got ? "Incorrect API key provided" : "Missing API key: send 'Authorization: Bearer KEY'");
}

static char *read_body(struct mg_connection *c, size_t max, size_t *len, srv_error *err) {
    const struct mg_request_info *ri = mg_get_request_info(c);
    if (ri->content_length > (long long)max) {
        srv_fail(err, 413, "invalid_request_error", "request_too_large", NULL, "the body is %lld bytes; at most %zu",
                 ri->content_length, max);
        return NULL;
    }
    size_t cap = ri->content_length >= 0 ? (size_t)ri->content_length + 1 : 65536, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) {
            srv_fail(err, 500, "server_error", NULL, NULL, "out of memory");
            return NULL;
        }
        if (n == cap) {
            char *bigger = cap > max ? NULL : realloc(buf, cap * 2);
            if (!bigger) {
                free(buf);
                if (cap > max)
                    srv_fail(err, 413, "invalid_request_error", "request_too_large", NULL, "the body is over %zu bytes",
                             max);
                else
                    srv_fail(err, 500, "server_error", NULL, NULL, "out of memory");
                return NULL;
            }
            buf = bigger;
            cap *= 2;
        }
        int got = mg_read(c, buf + n, cap - n);
        if (got == 0) break;
        if (got < 0) {
            free(buf);
            srv_fail(err, 400, "invalid_request_error", NULL, NULL, "the body could not be read (timeout or broken)");
            return NULL;
        }
        n += (size_t)got;
    }
    if (n > max) {
        free(buf);
        srv_fail(err, 413, "invalid_request_error", "request_too_large", NULL, "the body is over %zu bytes", max);
        return NULL;
    }
    *len = n;
    return buf;
}

static int method_is(struct mg_connection *c, const char *m) { return strcmp(mg_get_request_info(c)->request_method, m) == 0; }

static int wrong_method(srv_http *h, struct mg_connection *c, int route, const char *allowed) {
    srv_error e;
    srv_fail(&e, 405, "invalid_request_error", "method_not_allowed", NULL, "%s %s: use %s",
             mg_get_request_info(c)->request_method, mg_get_request_info(c)->local_uri, allowed);
    return send_error(h, c, route, &e);
}

/* ============================================================ generation */

typedef struct {
    struct mg_connection *c;
    const srv_reply_head *head;
    int started, gone;
    gm_strbuf event;
} stream;

static int stream_send(stream *s) {
    if (s->gone || !s->event.ok) return 0;
    if (mg_send_chunk(s->c, s->event.data, (unsigned)s->event.len) < 0) s->gone = 1;
    s->event.len = 0;
    return !s->gone;
}

static int stream_start(stream *s) {
    if (s->started) return !s->gone;
    s->started = 1;
    mg_response_header_start(s->c, 200);
    mg_response_header_add(s->c, "Content-Type", "text/event-stream", -1);
    mg_response_header_add(s->c, "Cache-Control", "no-cache", -1);
    mg_response_header_add(s->c, "Transfer-Encoding", "chunked", -1);
    mg_response_header_send(s->c);
    if (s->head->kind != SRV_CHAT) return 1;
    srv_chunk_event(&s->event, s->head, 1, s->head->kind == SRV_CHAT ? "" : NULL, 0, NULL, NULL);
    return stream_send(s);
}

static int client_gone(void *user) {
    stream *s = user;
    if (!s->gone && mg_gemma_client_gone(s->c)) s->gone = 1;
    return s->gone;
}

/* The engine's sink for a reply sent whole at the end: nothing to send yet, but
 * a client that has gone away stops the generation. */
static int watch_client(void *user, const char *text, size_t len) {
    (void)text;
    (void)len;
    return !client_gone(user);
}

/* The engine's sink: each piece of final text becomes one SSE event. */
static int stream_text(void *user, const char *text, size_t len) {
    stream *s = user;
    if (!stream_start(s)) return 0;
    srv_chunk_event(&s->event, s->head, 0, text, len, NULL, NULL);
    return stream_send(s);
}

static const char *finish_reason(int stopped_by) { return stopped_by == 1 || stopped_by == 2 ? "stop" : "length"; }

static void log_request(const srv_http *h, int route, int status, const srv_result *r, double seconds) {
    if (h->opts.quiet) return;
    fprintf(stderr,
            "gemma serve: %s %d slot %d | prompt %d tokens (%d cached) | %d generated | first token %.1f ms | "
            "%.1f ms%s\n",
            route_names[route], status, r->slot, r->n_prompt_total, r->gen.n_cached, r->gen.n_generated,
            r->gen.first_token_ms, seconds * 1e3, r->gen.stopped_by == 3 ? " | client gone" : "");
}

/* The end of a stream: the finish reason, the usage chunk if asked, [DONE];
 * or (res NULL) the error that stopped it.  Counted before the last bytes go
 * out, so a client that saw [DONE] finds its request in /metrics. */
static void end_stream(srv_http *h, struct mg_connection *c, int route, stream *s, const srv_request *req,
                       const srv_result *res, const srv_error *err) {
    if (!res || !stream_start(s)) {
        count_status(h, route, s->gone ? 499 : err->status);
        if (s->gone) return;
        gm_strbuf_puts(&s->event, "data: ");
        srv_error_json(&s->event, err);
        gm_strbuf_puts(&s->event, "\n\n");
        if (stream_send(s)) mg_send_chunk(c, "", 0);
        return;
    }
    count_status(h, route, 200);
    srv_chunk_event(&s->event, s->head, 0, NULL, 0, finish_reason(res->gen.stopped_by), NULL);
    stream_send(s);
    if (req->include_usage) {
        srv_usage u = {res->n_prompt_total, res->gen.n_generated, res->gen.n_cached};
        srv_chunk_event(&s->event, s->head, 0, NULL, 0, NULL, &u);
        stream_send(s);
    }
    gm_strbuf_puts(&s->event, "data: [DONE]\n\n");
    if (stream_send(s)) mg_send_chunk(c, "", 0);
}

static int handle_generate(struct mg_connection *c, void *cbdata) {
    const route_ctx *rc = cbdata;
    srv_http *h = rc->h;
    srv_kind kind = rc->route == ROUTE_CHAT ? SRV_CHAT : SRV_COMPLETION;
    if (!method_is(c, "POST")) return wrong_method(h, c, rc->route, "POST");
    double t0 = cli_now();
    srv_error err;
    size_t len = 0;
    char *body = NULL;
    srv_request req;
    memset(&req, 0, sizeof req);
    pthread_mutex_lock(&h->lock);
    uint64_t seq = ++h->next_id;
    pthread_mutex_unlock(&h->lock);
    uint64_t seed = (uint64_t)time(NULL) * 1000003u ^ seq * 0x9e3779b97f4a7c15ull;
    if (!authorized(h, c, &err) || !(body = read_body(c, h->opts.limits.max_body_bytes, &len, &err)) ||
        !srv_parse_request(body, len, kind, &h->opts.limits, h->model, h->fmt, &h->defaults, seed, &req, &err)) {
        free(body);
        return send_error(h, c, rc->route, &err);
    }
    free(body);
    srv_reply_head head = {.kind = kind, .created = (int64_t)time(NULL), .model = h->opts.model_name};
    snprintf(head.id, sizeof head.id, "%s-%llx%06llx", kind == SRV_CHAT ? "chatcmpl" : "cmpl",
             (unsigned long long)h->started, (unsigned long long)seq);
    stream s = {.c = c, .head = &head};
    gm_strbuf_init(&s.event);
    char *reply = NULL;
    srv_result res;
    srv_client client = {req.stream ? stream_text : watch_client, client_gone, &s};
    int ok = srv_engine_run(h->engine, &req, &client, &reply, &res, &err);
    int status = ok ? 200 : err.status;
    if (!ok && !s.started) {
        send_error(h, c, rc->route, &err);
    } else if (!req.stream && s.gone) {
        count_status(h, rc->route, 499);   /* nobody to answer */
    } else if (!req.stream) {
        gm_strbuf b;
        gm_strbuf_init(&b);
        srv_usage u = {res.n_prompt_total, res.gen.n_generated, res.gen.n_cached};
        srv_completion_json(&b, &head, reply, strlen(reply), finish_reason(res.gen.stopped_by), &u);
        send_json(h, c, rc->route, &b);
        gm_strbuf_free(&b);
    } else {
        end_stream(h, c, rc->route, &s, &req, ok ? &res : NULL, &err);
    }
    double seconds = cli_now() - t0;
    pthread_mutex_lock(&h->lock);
    h->seconds_sum += seconds;
    h->seconds_count++;
    if (ok && res.gen.n_generated > 0) {
        h->ttft_sum += res.gen.first_token_ms * 1e-3;
        h->ttft_count++;
    }
    pthread_mutex_unlock(&h->lock);
    if (ok || s.started) log_request(h, rc->route, s.gone ? 499 : status, &res, seconds);
    gm_strbuf_free(&s.event);
    free(reply);
    srv_request_free(&req);
    return status;
}

/* ================================================================ others */

static int handle_models(struct mg_connection *c, void *cbdata) {
    srv_http *h = ((const route_ctx *)cbdata)->h;
    srv_error err;
    if (!method_is(c, "GET")) return wrong_method(h, c, ROUTE_MODELS, "GET");
    if (!authorized(h, c, &err)) return send_error(h, c, ROUTE_MODELS, &err);
    const char *uri = mg_get_request_info(c)->local_uri;
    const char *id = strncmp(uri, "/v1/models/", 11) == 0 ? uri + 11 : NULL;
    if (id && strcmp(id, h->opts.model_name) != 0) {
        srv_fail(&err, 404, "invalid_request_error", "model_not_found", "model", "The model '%.200s' does not exist",
                 id);
        return send_error(h, c, ROUTE_MODELS, &err);
    }
    char created[32];
    snprintf(created, sizeof created, "%lld", (long long)h->started);
    gm_strbuf b;
    gm_strbuf_init(&b);
    if (!id) gm_strbuf_puts(&b, "{\"object\":\"list\",\"data\":[");
    gm_strbuf_puts(&b, "{\"id\":");
    srv_json_string(&b, h->opts.model_name, strlen(h->opts.model_name));
    gm_strbuf_puts(&b, ",\"object\":\"model\",\"created\":");
    gm_strbuf_puts(&b, created);
    gm_strbuf_puts(&b, ",\"owned_by\":\"gemma.c\"}");
    if (!id) gm_strbuf_puts(&b, "]}");
    int st = send_json(h, c, ROUTE_MODELS, &b);
    gm_strbuf_free(&b);
    return st;
}

static int handle_health(struct mg_connection *c, void *cbdata) {
    srv_http *h = ((const route_ctx *)cbdata)->h;
    static const char ok[] = "{\"status\":\"ok\"}";
    count_status(h, ROUTE_HEALTH, 200);
    return send_body(c, 200, "application/json", ok, sizeof ok - 1);
}

static void metric(gm_strbuf *b, const char *name, const char *type, const char *help, double value) {
    char line[256];
    snprintf(line, sizeof line, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name, type, name, value);
    gm_strbuf_puts(b, line);
}

static void summary(gm_strbuf *b, const char *name, const char *help, double sum, uint64_t count) {
    char line[384];
    snprintf(line, sizeof line, "# HELP %s %s\n# TYPE %s summary\n%s_sum %.9g\n%s_count %llu\n", name, help, name,
             name, sum, name, (unsigned long long)count);
    gm_strbuf_puts(b, line);
}

static double resident_bytes(void) {
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0;
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    fclose(f);
    return (double)resident * (double)sysconf(_SC_PAGESIZE);
}

static int handle_metrics(struct mg_connection *c, void *cbdata) {
    srv_http *h = ((const route_ctx *)cbdata)->h;
    srv_error err;
    if (!authorized(h, c, &err)) return send_error(h, c, ROUTE_METRICS, &err);
    srv_engine_stats es;
    srv_engine_get_stats(h->engine, &es);
    count_status(h, ROUTE_METRICS, 200);
    gm_strbuf b;
    gm_strbuf_init(&b);
    char line[256];
    gm_strbuf_puts(&b, "# HELP gemma_requests_total HTTP requests answered, by route and status.\n"
                       "# TYPE gemma_requests_total counter\n");
    pthread_mutex_lock(&h->lock);
    for (int i = 0; i < h->n_counters; i++) {
        snprintf(line, sizeof line, "gemma_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
                 route_names[h->counters[i].route], h->counters[i].status, (unsigned long long)h->counters[i].count);
        gm_strbuf_puts(&b, line);
    }
    summary(&b, "gemma_request_duration_seconds", "Time to answer a completion request.", h->seconds_sum,
            h->seconds_count);
    summary(&b, "gemma_time_to_first_token_seconds", "From a slot's start on a request to its first token.",
            h->ttft_sum, h->ttft_count);
    pthread_mutex_unlock(&h->lock);
    metric(&b, "gemma_prompt_tokens_total", "counter", "Prompt tokens of finished requests.", (double)es.prompt_tokens);
    metric(&b, "gemma_prompt_tokens_cached_total", "counter", "Prompt tokens reused from a slot's KV cache.",
           (double)es.cached_tokens);
    metric(&b, "gemma_generated_tokens_total", "counter", "Tokens generated.", (double)es.generated_tokens);
    metric(&b, "gemma_requests_rejected_total", "counter", "Requests refused because every slot and queue place was taken.",
           (double)es.rejected_busy);
    metric(&b, "gemma_client_disconnects_total", "counter", "Generations stopped because the client went away.",
           (double)es.disconnects);
    metric(&b, "gemma_slots", "gauge", "Sessions (--parallel).", es.n_slots);
    metric(&b, "gemma_slots_busy", "gauge", "Sessions generating now.", es.slots_busy);
    metric(&b, "gemma_queue_waiting", "gauge", "Requests waiting for a slot.", es.waiting);
    metric(&b, "process_resident_memory_bytes", "gauge", "Resident memory of the server process.", resident_bytes());
    int st = b.ok ? send_body(c, 200, "text/plain; version=0.0.4", b.data, b.len) : 500;
    gm_strbuf_free(&b);
    return st;
}

static int handle_other(struct mg_connection *c, void *cbdata) {
    srv_http *h = ((const route_ctx *)cbdata)->h;
    srv_error err;
    srv_fail(&err, 404, "invalid_request_error", "not_found", NULL, "no route %s %.200s",
             mg_get_request_info(c)->request_method, mg_get_request_info(c)->local_uri);
    return send_error(h, c, ROUTE_OTHER, &err);
}

/* ============================================================ life cycle */

static int quiet_log(const struct mg_connection *c, const char *message) {
    const struct mg_context *ctx = mg_get_context(c);
    const srv_http *h = ctx ? mg_get_user_data(ctx) : NULL;
    if (!h || !h->opts.quiet) fprintf(stderr, "gemma serve: civetweb: %s\n", message);
    return 1;
}

/* Errors civetweb finds itself (a malformed or timed-out request, headers too
 * large) also answer an OpenAI error object; 1 leaves it to civetweb. */
static int http_error_json(struct mg_connection *c, int status, const char *msg) {
    srv_error e;
    srv_fail(&e, status, status >= 500 ? "server_error" : "invalid_request_error", NULL, NULL, "%s",
             msg && *msg ? msg : "bad request");
    gm_strbuf b;
    gm_strbuf_init(&b);
    srv_error_json(&b, &e);
    char cl[32];
    snprintf(cl, sizeof cl, "%zu", b.len);
    int ok = b.ok && mg_response_header_start(c, status) == 0;
    if (ok) {
        mg_response_header_add(c, "Content-Type", "application/json", -1);
        mg_response_header_add(c, "Content-Length", cl, -1);
        mg_response_header_add(c, "Connection", "close", -1);
        mg_response_header_send(c);
        mg_write(c, b.data, b.len);
    }
    gm_strbuf_free(&b);
    return ok ? 0 : 1;
}

srv_http *srv_http_start(srv_engine *engine, const gemma_model *model, const gemma_chat_format *fmt,
                         const srv_http_options *opts, int *bound_port, char *errbuf, size_t errlen) {
    srv_http *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(errbuf, errlen, "out of memory");
        return NULL;
    }
    h->engine = engine;
    h->model = model;
    h->fmt = fmt;
    h->opts = *opts;
    h->defaults = gemma_model_sampler_params(model);
    h->started = (int64_t)time(NULL);
    pthread_mutex_init(&h->lock, NULL);
    if (opts->api_key && *opts->api_key) {
        size_t n = strlen(opts->api_key) + 8;
        if ((h->bearer = malloc(n))) snprintf(h->bearer, n, "Bearer %s", opts->api_key);
    }
    char ports[300], threads[16], timeout[16];
    int v6 = strchr(opts->host, ':') != NULL;
    snprintf(ports, sizeof ports, v6 ? "[%s]:%d" : "%s:%d", opts->host, opts->port);
    snprintf(threads, sizeof threads, "%d", opts->n_http_threads);
    snprintf(timeout, sizeof timeout, "%d", opts->timeout_ms);
    const char *options[] = {"listening_ports", ports, "num_threads", threads, "request_timeout_ms", timeout,
                             "enable_keep_alive", "yes", "keep_alive_timeout_ms", "15000", "tcp_nodelay", "1",
                             "max_request_size", "65536", "access_control_allow_origin", "", NULL};
    struct mg_callbacks cb;
    memset(&cb, 0, sizeof cb);
    cb.log_message = quiet_log;
    cb.http_error = http_error_json;
    mg_init_library(0);
    h->ctx = mg_start(&cb, h, options);
    if (!h->ctx) {
        snprintf(errbuf, errlen, "cannot listen on %s (in use, or not an address of this machine?)", ports);
        srv_http_stop(h);
        return NULL;
    }
    static const char *const uris[N_ROUTES] = {"/v1/chat/completions", "/v1/completions", "/v1/models", "/health",
                                               "/metrics", "/"};
    mg_request_handler handlers[N_ROUTES] = {handle_generate, handle_generate, handle_models,
                                             handle_health,   handle_metrics,  handle_other};
    for (int r = 0; r < N_ROUTES; r++) {
        h->routes[r] = (route_ctx){h, r};
        mg_set_request_handler(h->ctx, uris[r], handlers[r], &h->routes[r]);
    }
    struct mg_server_port sp[4];
    int n = mg_get_server_ports(h->ctx, 4, sp);
    *bound_port = n > 0 ? sp[0].port : opts->port;
    return h;
}

void srv_http_stop(srv_http *h) {
    if (!h) return;
    if (h->ctx) mg_stop(h->ctx);
    mg_exit_library();
    pthread_mutex_destroy(&h->lock);
    free(h->bearer);
    free(h);
}
