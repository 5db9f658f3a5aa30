/* engine.c - see engine.h. */
#include "engine.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define IMAGE_KEY (1ull << 63)   /* text keys are token ids (< 2^31); image keys have this bit */

typedef struct {
    gemma_session *session;
    uint64_t *keys;          /* what the cache holds, one key per position */
    size_t n_keys, cap_keys;
    int busy;
    uint64_t last_used;
} slot;

struct srv_engine {
    gemma_model *model;
    const gemma_tokenizer *tok;
    slot *slots;
    int n_slots, queue_max, waiting, shutting_down;
    volatile sig_atomic_t cancel_all;   /* set at shutdown: generations in flight stop */
    uint64_t clock;          /* ticks at each acquire: least recently used slot */
    pthread_mutex_t lock;
    pthread_cond_t freed;
    srv_engine_stats stats;
};

srv_engine *srv_engine_create(gemma_model *model, const gemma_tokenizer *tok, const srv_engine_options *opts,
                              gemma_error *err) {
    srv_engine *e = calloc(1, sizeof *e);
    if (!e || !(e->slots = calloc((size_t)opts->n_slots, sizeof *e->slots))) {
        free(e);
        snprintf(err->message, sizeof err->message, "out of memory");
        return NULL;
    }
    e->model = model;
    e->tok = tok;
    e->n_slots = opts->n_slots;
    e->queue_max = opts->queue_max;
    pthread_mutex_init(&e->lock, NULL);
    pthread_cond_init(&e->freed, NULL);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = opts->n_threads > 0 ? opts->n_threads : (int)(cpus > opts->n_slots ? cpus / opts->n_slots : 1);
    gemma_session_options so = gemma_session_default_options();
    so.n_ctx = opts->n_ctx;
    so.n_threads = threads;
    so.kv_type = opts->kv_type;
    for (int i = 0; i < e->n_slots; i++)
        if (gemma_session_create(model, &so, &e->slots[i].session, err) != GEMMA_OK) {
            srv_engine_free(e);
            return NULL;
        }
    e->stats.n_slots = e->n_slots;
    return e;
}

void srv_engine_free(srv_engine *e) {
    if (!e) return;
    for (int i = 0; i < e->n_slots; i++) {
        gemma_session_free(e->slots[i].session);
        free(e->slots[i].keys);
    }
    free(e->slots);
    pthread_cond_destroy(&e->freed);
    pthread_mutex_destroy(&e->lock);
    free(e);
}

int srv_engine_context_size(const srv_engine *e) { return gemma_session_context_size(e->slots[0].session); }

void srv_engine_get_stats(srv_engine *e, srv_engine_stats *out) {
    pthread_mutex_lock(&e->lock);
    *out = e->stats;
    out->waiting = e->waiting;
    pthread_mutex_unlock(&e->lock);
}

void srv_engine_shutdown(srv_engine *e) {
    pthread_mutex_lock(&e->lock);
    e->shutting_down = 1;
    e->cancel_all = 1;
    pthread_cond_broadcast(&e->freed);
    pthread_mutex_unlock(&e->lock);
}

size_t srv_common_prefix(const uint64_t *a, size_t na, const uint64_t *b, size_t nb) {
    size_t n = 0;
    while (n < na && n < nb && a[n] == b[n]) n++;
    return n;
}

/* The free slot for a prompt (-1 if none is free): the one whose cache covers
 * the longest prefix if that is at least half the prompt (a conversation's
 * next turn), else the least recently used one (a new conversation goes to
 * an empty or stale slot and leaves the others' caches alone). */
static int best_free_slot(const srv_engine *e, const uint64_t *keys, size_t n) {
    int longest = -1, oldest = -1;
    size_t longest_len = 0;
    for (int i = 0; i < e->n_slots; i++) {
        const slot *s = &e->slots[i];
        if (s->busy) continue;
        size_t len = srv_common_prefix(s->keys, s->n_keys, keys, n);
        if (longest < 0 || len > longest_len) {
            longest = i;
            longest_len = len;
        }
        if (oldest < 0 || s->last_used < e->slots[oldest].last_used) oldest = i;
    }
    return longest >= 0 && 2 * longest_len >= n ? longest : oldest;
}

/* How often a queued request asks whether its client is still there. */
#define QUEUE_POLL_NS 200000000L

static int acquire(srv_engine *e, const uint64_t *keys, size_t n, const srv_client *client, srv_error *err) {
    pthread_mutex_lock(&e->lock);
    int i = best_free_slot(e, keys, n);
    if (i < 0 && e->waiting >= e->queue_max) {
        e->stats.rejected_busy++;
        int waiting = e->waiting;
        pthread_mutex_unlock(&e->lock);
        srv_fail(err, 503, "server_error", "server_busy", NULL,
                 "all %d slots are busy and %d requests are waiting; retry later", e->n_slots, waiting);
        return -1;
    }
    e->waiting++;
    int left = 0;
    while ((i = best_free_slot(e, keys, n)) < 0 && !e->shutting_down && !left) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += QUEUE_POLL_NS;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        if (pthread_cond_timedwait(&e->freed, &e->lock, &until) != 0 && client->gone)
            left = client->gone(client->user);
    }
    e->waiting--;
    if (left && i < 0) {
        e->stats.disconnects++;
        pthread_mutex_unlock(&e->lock);
        srv_fail(err, 499, "invalid_request_error", "client_closed", NULL, "the client left while queued");
        return -1;
    }
    if (e->shutting_down) {
        pthread_mutex_unlock(&e->lock);
        srv_fail(err, 503, "server_error", "server_shutting_down", NULL, "the server is shutting down");
        return -1;
    }
    e->slots[i].busy = 1;
    e->slots[i].last_used = ++e->clock;
    e->stats.slots_busy++;
    pthread_mutex_unlock(&e->lock);
    return i;
}

static void release(srv_engine *e, int i, const srv_result *res) {
    pthread_mutex_lock(&e->lock);
    e->slots[i].busy = 0;
    e->stats.slots_busy--;
    e->stats.prompt_tokens += (uint64_t)res->n_prompt_total;
    e->stats.cached_tokens += (uint64_t)res->gen.n_cached;
    e->stats.generated_tokens += (uint64_t)res->gen.n_generated;
    e->stats.disconnects += res->gen.stopped_by == 3;
    pthread_cond_signal(&e->freed);
    pthread_mutex_unlock(&e->lock);
}

static int set_keys(slot *s, const uint64_t *keys, size_t n, const int32_t *more, size_t n_more) {
    if (n + n_more > s->cap_keys) {
        uint64_t *k = realloc(s->keys, (n + n_more) * sizeof *k);
        if (!k) return 0;
        s->keys = k;
        s->cap_keys = n + n_more;
    }
    memmove(s->keys, keys, n * sizeof *keys);
    for (size_t i = 0; i < n_more; i++) s->keys[n + i] = (uint64_t)(uint32_t)more[i];
    s->n_keys = n + n_more;
    return 1;
}

/* The prompt's ids and one key per id: the id itself, or the hash of the image a soft token belongs to. */
static int tokenize_prompt(const srv_engine *e, const srv_request *req, int32_t **ids, uint64_t **keys, size_t *n,
                           srv_error *err) {
    size_t len = strlen(req->prompt);
    gemma_error gerr;
    int flags = req->add_bos ? GEMMA_TOKENIZE_ADD_BOS : 0;
    *keys = NULL;
    *ids = malloc((len + 2) * sizeof **ids);
    if (!*ids) return srv_fail(err, 500, "server_error", NULL, NULL, "out of memory");
    if (gemma_tokenize(e->tok, req->prompt, len, flags, *ids, len + 2, n, &gerr) != GEMMA_OK)
        return srv_fail(err, 400, "invalid_request_error", NULL, "messages", "%s", gerr.message);
    int vocab = gemma_model_vocab_size(e->model), ctx = srv_engine_context_size(e);
    int32_t image_token = gemma_model_image_token(e->model);
    if (*n + 1 > (size_t)ctx)
        return srv_fail(err, 400, "invalid_request_error", "context_length_exceeded", "messages",
                        "this model's context is %d tokens; the prompt is %zu tokens (room for at least one reply "
                        "token is needed)",
                        ctx, *n);
    if (!(*keys = malloc((*n + 1) * sizeof **keys))) return srv_fail(err, 500, "server_error", NULL, NULL, "out of memory");
    int run = -1;
    for (size_t i = 0; i < *n; i++) {
        int32_t t = (*ids)[i];
        int is_image = image_token >= 0 && t == image_token;
        if (t < 0 || (t >= vocab && !is_image) || (is_image && req->n_images == 0))
            return srv_fail(err, 400, "invalid_request_error", NULL, "messages",
                            "the prompt has token %d, which this model cannot take", t);
        if (!is_image) {
            (*keys)[i] = (uint64_t)(uint32_t)t;
            continue;
        }
        if (i == 0 || (*ids)[i - 1] != image_token) run++;
        if (run >= req->n_images)
            return srv_fail(err, 400, "invalid_request_error", NULL, "messages", "more image runs than images");
        (*keys)[i] = IMAGE_KEY | req->images[run].hash;
    }
    return 1;
}

/* Preprocess and encode the images whose soft tokens start at or after `from`; rows for eval_mm. */
static int encode_images(srv_engine *e, gemma_session *s, const srv_request *req, const int32_t *ids, size_t n,
                         size_t from, float **embeds, size_t *n_rows, srv_error *err) {
    int32_t image_token = gemma_model_image_token(e->model);
    int run = -1, first = -1;
    for (size_t i = 0; i < n && first < 0; i++) {
        if (ids[i] != image_token || (i > 0 && ids[i - 1] == image_token)) continue;
        run++;
        if (i >= from) first = run;
    }
    *embeds = NULL;
    *n_rows = 0;
    if (first < 0 || image_token < 0) return 1;
    size_t hidden = (size_t)gemma_model_hidden_size(e->model), per = (size_t)gemma_model_image_tokens(e->model);
    gemma_preprocess_options po = gemma_preprocess_default_options();
    po.size = gemma_model_image_size(e->model);
    gemma_model_image_norm(e->model, po.mean, po.std);
    size_t n_img = (size_t)(req->n_images - first);
    *embeds = malloc(n_img * per * hidden * sizeof(float));
    float *pixels = malloc((size_t)3 * (size_t)po.size * (size_t)po.size * sizeof(float));
    gemma_error gerr;
    int ok = *embeds && pixels;
    if (!ok) srv_fail(err, 500, "server_error", NULL, NULL, "out of memory");
    for (int i = first; ok && i < req->n_images; i++) {
        size_t cap = (size_t)3 * (size_t)po.size * (size_t)po.size;
        int crops = 0;
        ok = gemma_image_preprocess(req->images[i].image, &po, pixels, cap, NULL, &crops, &gerr) == GEMMA_OK &&
             crops == 1 &&
             gemma_session_encode_images(s, pixels, 1, *embeds + (size_t)(i - first) * per * hidden, &gerr) ==
                 GEMMA_OK;
        if (!ok) srv_fail(err, 400, "invalid_request_error", NULL, "messages", "image %d: %s", i + 1, gerr.message);
    }
    free(pixels);
    if (!ok) {
        free(*embeds);
        *embeds = NULL;
        return 0;
    }
    *n_rows = n_img * per;
    return 1;
}

/* How much of the slot's cache to keep for this prompt, rewound to; 0 after a reset. */
static size_t reuse_prefix(srv_engine *e, slot *s, const int32_t *ids, const uint64_t *keys, size_t n) {
    size_t keep = srv_common_prefix(s->keys, s->n_keys, keys, n);
    if (keep == n) keep--;   /* evaluate at least one token to get logits */
    int32_t image_token = gemma_model_image_token(e->model);
    while (keep > 0 && image_token >= 0 && ids[keep] == image_token && ids[keep - 1] == image_token)
        keep--;   /* an image's tokens are evaluated together or not at all */
    gemma_error gerr;
    if ((int)keep != gemma_session_position(s->session) && gemma_session_rewind(s->session, (int)keep, &gerr) != GEMMA_OK) {
        gemma_session_reset(s->session);   /* further back than the sliding-window rings keep */
        keep = 0;
    }
    s->n_keys = keep;
    return keep;
}

static void fill_gen_opts(const srv_engine *e, const srv_request *req, cli_gen_opts *go) {
    cli_gen_defaults(go);
    go->cancel = &e->cancel_all;
    go->sp = req->sp;
    go->n_predict = req->max_tokens;
    for (int i = 0; i < req->n_stops; i++) go->stops[i] = req->stops[i];
    go->n_stops = req->n_stops;
    go->penalize_reply_only = 1;
}

int srv_engine_run(srv_engine *e, const srv_request *req, const srv_client *client, char **reply, srv_result *res,
                   srv_error *err) {
    memset(res, 0, sizeof *res);
    *reply = NULL;
    int32_t *ids = NULL;
    uint64_t *keys = NULL;
    size_t n = 0;
    if (!tokenize_prompt(e, req, &ids, &keys, &n, err)) {
        free(ids);
        free(keys);
        return 0;
    }
    res->n_prompt_total = (int)n;
    int i = acquire(e, keys, n, client, err);
    if (i < 0) {
        free(ids);
        free(keys);
        return 0;
    }
    slot *s = &e->slots[i];
    res->slot = i;
    size_t keep = reuse_prefix(e, s, ids, keys, n);
    float *embeds = NULL;
    size_t n_rows = 0;
    gemma_sampler *smp = NULL;
    cli_ids generated = {0};
    cli_gen_opts go;
    fill_gen_opts(e, req, &go);
    gemma_error gerr;
    int ok = encode_images(e, s->session, req, ids, n, keep, &embeds, &n_rows, err);
    if (ok && gemma_sampler_create(&go.sp, gemma_model_vocab_size(e->model), &smp, &gerr) != GEMMA_OK)
        ok = srv_fail(err, 400, "invalid_request_error", NULL, NULL, "%s", gerr.message);
    go.image_embeds = embeds;
    go.n_image_embeds = n_rows;
    if (ok && cli_generate_to(s->session, smp, e->tok, e->model, ids + keep, n - keep, &go, client->sink, client->user, reply,
                              &generated, &res->gen, &gerr) != GEMMA_OK)
        ok = srv_fail(err, gerr.code == GEMMA_ERR_ARG ? 400 : 500,
                      gerr.code == GEMMA_ERR_ARG ? "invalid_request_error" : "server_error", NULL, NULL, "%s",
                      gerr.message);
    /* what the cache holds now: the prompt, then the generated ids evaluated after it */
    if (!ok || !set_keys(s, keys, n, generated.ids, generated.n) ||
        (size_t)gemma_session_position(s->session) != s->n_keys) {
        gemma_session_reset(s->session);
        s->n_keys = 0;
    }
    res->gen.n_cached = (int)keep;
    release(e, i, res);
    cli_ids_free(&generated);
    gemma_sampler_free(smp);
    free(embeds);
    free(ids);
    free(keys);
    if (!ok) {
        free(*reply);
        *reply = NULL;
    }
    return ok;
}
