/* engine.h - the server's slots: N sessions shared by many HTTP requests.
 *
 * Each slot owns a gemma_session (its KV cache) and remembers which tokens
 * that cache holds.  A request takes the free slot whose cache shares the
 * longest prefix with its prompt, rewinds the cache to that prefix and
 * evaluates only the rest, so the next turn of a conversation costs only its
 * new tokens.  Image tokens are compared by the picture's hash, not by id (all
 * soft tokens share one id).  When every slot is busy a bounded number of
 * requests wait; beyond that a request is refused at once (503). */
#ifndef GEMMA_SERVER_ENGINE_H
#define GEMMA_SERVER_ENGINE_H

#include "common.h"
#include "request.h"

typedef struct srv_engine srv_engine;

typedef struct {
    int n_slots;      /* sessions (--parallel) */
    int n_ctx;        /* tokens per session (0: the library default) */
    gemma_kv_type kv_type;   /* the sessions' KV cache type (0: auto) */
    int n_threads;    /* compute threads per session (0: CPUs / n_slots) */
    int queue_max;    /* requests that may wait for a slot */
} srv_engine_options;

typedef struct {
    int n_slots, slots_busy, waiting;
    uint64_t prompt_tokens, cached_tokens, generated_tokens, rejected_busy, disconnects;
} srv_engine_stats;

srv_engine *srv_engine_create(gemma_model *model, const gemma_tokenizer *tok, const srv_engine_options *opts,
                              gemma_error *err);
void srv_engine_free(srv_engine *e);
int srv_engine_context_size(const srv_engine *e);
void srv_engine_get_stats(srv_engine *e, srv_engine_stats *out);
/* Wake every waiting request (it fails with 503) and refuse new ones: for shutdown. */
void srv_engine_shutdown(srv_engine *e);

typedef struct {
    cli_gen_stats gen;       /* tokens, times, why it stopped (gen.n_cached: prompt tokens reused) */
    int n_prompt_total;      /* all prompt tokens, cached or not */
    int slot;
} srv_result;

/* Who a request is for: reply text is handed to `sink` as it becomes final
 * (NULL: nobody wants it before the end); a sink that returns 0 stops the
 * generation.  `gone` (NULL: never) says whether the client has left; it is
 * asked while the request waits for a slot. */
typedef struct {
    cli_emit_fn sink;
    int (*gone)(void *user);
    void *user;
} srv_client;

/* Run one request: tokenize its prompt, wait for a slot, generate.  On
 * success returns 1 with the whole reply in *reply (malloc'd); else 0 with err
 * (400 prompt too long or bad tokens, 503 busy, 499 left while queued, 500
 * engine failure). */
int srv_engine_run(srv_engine *e, const srv_request *req, const srv_client *client, char **reply, srv_result *res,
                   srv_error *err);

/* The length of the common prefix of two key lists (exposed for tests). */
size_t srv_common_prefix(const uint64_t *a, size_t na, const uint64_t *b, size_t nb);

#endif
