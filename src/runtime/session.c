/* session.c - sessions of the public API: creation (all memory up front),
 * evaluation in batched steps, reset and thread control. */
#include "runtime/session.h"
#include "core/alloc.h"
#include "core/cpu.h"
#include "core/error.h"

#include <stdlib.h>
#include <string.h>

#define DEFAULT_CTX 4096
#define DEFAULT_BATCH 512
#define DEFAULT_REWIND 256
#define MAX_THREADS 256

gemma_session_options gemma_session_default_options(void) {
    gemma_session_options o = {0};
    return o;
}

static gemma_status make_pool(gemma_session *s, int n_threads, gemma_error *err) {
    gm_pool *pool = gm_pool_create(n_threads);
    if (!pool) return gm_fail(err, GEMMA_ERR_NOMEM, "cannot start %d threads", n_threads);
    gm_pool_free(s->pool);
    s->pool = pool;
    s->n_threads = n_threads;
    return GEMMA_OK;
}

/* The activation buffers of a session, in one table used both to allocate
 * them and to estimate memory before creating a session. */
typedef struct {
    float **p;
    size_t n;
} buffer_spec;

enum { N_BUFFERS = 22 };

static void buffer_table(gemma_session *s, const gemma_model *model, int n_ctx, int n_batch, int max_threads,
                         gemma_kv_type kv_type, buffer_spec *b) {
    const gm_config *c = model->cfg;
    size_t nb = (size_t)n_batch;
    size_t D = (size_t)c->hidden_size, qdim = (size_t)c->n_heads * c->max_head_dim;
    size_t kvdim = (size_t)c->max_kv_dim, F = (size_t)c->max_ffn;
    /* Gemma 4 keeps one step buffer per layer type: a KV-shared layer reads
     * the step's keys of the last unshared layer of its type */
    if (c->arch == GM_ARCH_GEMMA4) kvdim *= 2;
    size_t ple = (size_t)c->n_layers * (size_t)c->ple_dim;
    size_t per_thread = gm_matmul_scratch_floats(model->max_cols, gm_model_uses_gemm(model));
    int ggml = model->numerics == GEMMA_NUMERICS_LLAMACPP, int8 = model->numerics == GEMMA_NUMERICS_INT8;
    size_t half = kv_type == GEMMA_KV_F16 || kv_type == GEMMA_KV_BF16 ? (nb * kvdim + 1) / 2 : 0;
    buffer_spec t[N_BUFFERS] = {
        {&s->x, nb * D},       {&s->xb, nb * D},      {&s->q, nb * qdim},
        {&s->kn, nb * kvdim},  {&s->vn, nb * kvdim},  {&s->att, nb * qdim},
        {&s->gate, nb * F},    {&s->up, nb * F},
        {&s->scores, (size_t)max_threads * (size_t)n_ctx},
        {&s->mm_buffers, (size_t)max_threads * per_thread},
        {&s->mm.xsum, gm_matmul_xsum_floats(n_batch, model->max_cols)},
        {&s->mm.xq, ggml ? gm_matmul_xq_floats(n_batch, model->max_cols) : 0},
        {&s->mm.xf, model->f16_inputs ? nb * (size_t)model->max_cols : 0},
        {&s->att_lanes, ggml ? (size_t)max_threads * GM_ATT_LANE_ROWS * (size_t)c->head_dim : 0},
        {&s->ple, nb * ple + ple},   /* + one widened row of the per-layer table */
        {&s->ple_gate, nb * (size_t)c->ple_dim},
        {&s->mm.xp, (size_t)model->max_cols},
        {&s->mm.x8, int8 ? gm_matmul_x8_floats(n_batch, model->max_cols) : 0},
        {&s->mm.x8d, int8 ? gm_matmul_x8_floats(n_batch, model->max_cols) : 0},
        {&s->ple_raw, (model->ple_rows.row_bytes + sizeof(float) - 1) / sizeof(float)},
        {&s->kh_buf, half},    {&s->vh_buf, half},
    };
    memcpy(b, t, sizeof t);
}

static gemma_status alloc_buffers(gemma_session *s, int max_threads, gemma_error *err) {
    buffer_spec bufs[N_BUFFERS];
    buffer_table(s, s->model, s->n_ctx, s->n_batch, max_threads, s->kv_type, bufs);
    size_t per_thread = gm_matmul_scratch_floats(s->model->max_cols, gm_model_uses_gemm(s->model));
    for (size_t i = 0; i < N_BUFFERS; i++) {
        size_t bytes;
        if (!gm_mul_size(bufs[i].n, sizeof(float), &bytes) || !(*bufs[i].p = gm_alloc(&s->allocator, bytes)))
            return gm_fail(err, GEMMA_ERR_NOMEM, "session: out of memory (n_ctx %d, n_batch %d)", s->n_ctx,
                           s->n_batch);
    }
    s->mm.per_thread = calloc((size_t)max_threads, sizeof(float *));
    if (!s->mm.per_thread) return gm_fail(err, GEMMA_ERR_NOMEM, "session: out of memory");
    for (int t = 0; t < max_threads; t++) s->mm.per_thread[t] = s->mm_buffers + (size_t)t * per_thread;
    s->mm.n_threads = max_threads;
    s->mm.int8 = s->model->numerics == GEMMA_NUMERICS_INT8;
    return GEMMA_OK;
}

/* Fill defaults and check ranges; the worker count the buffers are sized for. */
static gemma_status resolve_options(const gemma_model *model, const gemma_session_options *opts,
                                    gemma_session_options *o, int *max_threads, gemma_error *err) {
    *o = opts ? *opts : gemma_session_default_options();
    const gm_config *c = model->cfg;
    if (o->n_ctx < 0 || o->n_batch < 0 || o->n_threads < 0 || o->n_threads > MAX_THREADS)
        return gm_fail(err, GEMMA_ERR_ARG, "session options out of range (n_ctx %d, n_batch %d, n_threads %d)",
                       o->n_ctx, o->n_batch, o->n_threads);
    if (o->n_ctx == 0) o->n_ctx = c->max_position_embeddings < DEFAULT_CTX ? c->max_position_embeddings : DEFAULT_CTX;
    if (o->n_ctx > c->max_position_embeddings)
        return gm_fail(err, GEMMA_ERR_ARG, "n_ctx %d exceeds the model's max_position_embeddings %d", o->n_ctx,
                       c->max_position_embeddings);
    if (o->n_batch == 0) o->n_batch = DEFAULT_BATCH;
    if (o->n_batch > o->n_ctx) o->n_batch = o->n_ctx;
    if (o->n_threads == 0) o->n_threads = gm_cpu_count();
    if (o->n_rewind < -1) return gm_fail(err, GEMMA_ERR_ARG, "session option n_rewind %d out of range", o->n_rewind);
    if (o->n_rewind == 0) o->n_rewind = DEFAULT_REWIND;
    if (o->n_rewind < 0) o->n_rewind = 0;
    if ((unsigned)o->kv_type > GEMMA_KV_BF16)
        return gm_fail(err, GEMMA_ERR_ARG, "session option kv_type %d out of range", (int)o->kv_type);
    /* llama.cpp's numerics round K and V to f16 anyway: storing them so changes no bit;
     * int8 numerics already trade digits for speed and memory */
    if (o->kv_type == GEMMA_KV_AUTO)
        o->kv_type = model->numerics == GEMMA_NUMERICS_LLAMACPP || model->numerics == GEMMA_NUMERICS_INT8
                         ? GEMMA_KV_F16
                         : GEMMA_KV_F32;
    /* room for set_threads to double the pool later */
    *max_threads = MAX_THREADS < o->n_threads * 2 ? MAX_THREADS : o->n_threads * 2;
    return GEMMA_OK;
}

/* Ring size per layer: 0 = global (full context); sliding layers keep their
 * window plus the rewind room. */
static void kv_windows(const gm_config *c, int n_rewind, int *window_of, int *kv_dim_of) {
    for (int l = 0; l < c->n_layers; l++) {
        const gm_layer_config *L = &c->layers[l];
        window_of[l] = L->sliding ? c->sliding_window + n_rewind : 0;
        kv_dim_of[l] = L->kv_source == l ? c->n_kv_heads * L->head_dim : 0;
    }
}

uint64_t gemma_session_memory_bytes(const gemma_model *model, const gemma_session_options *opts) {
    gemma_session_options o;
    int max_threads;
    if (!model || resolve_options(model, opts, &o, &max_threads, NULL)) return 0;
    const gm_config *c = model->cfg;
    uint64_t total = 0;
    for (int l = 0; l < c->n_layers; l++) {
        if (c->layers[l].kv_source != l) continue;
        uint64_t kv_dim = (uint64_t)c->n_kv_heads * (uint64_t)c->layers[l].head_dim;
        int ring = c->sliding_window + o.n_rewind;
        int cap = c->layers[l].sliding && ring < o.n_ctx ? ring : o.n_ctx;
        total += 2 * (uint64_t)cap * kv_dim * (uint64_t)gm_dtype_size(gm_kv_dtype(o.kv_type));
    }
    gemma_session dummy;
    buffer_spec bufs[N_BUFFERS];
    buffer_table(&dummy, model, o.n_ctx, o.n_batch, max_threads, o.kv_type, bufs);
    for (size_t i = 0; i < N_BUFFERS; i++) total += bufs[i].n * sizeof(float);
    return total;
}

gemma_status gemma_session_create(gemma_model *model, const gemma_session_options *opts, gemma_session **out,
                                  gemma_error *err) {
    gm_ok(err);
    if (!out) return gm_fail(err, GEMMA_ERR_ARG, "gemma_session_create: out is NULL");
    *out = NULL;
    if (!model) return gm_fail(err, GEMMA_ERR_ARG, "gemma_session_create: model is NULL");
    gemma_session_options o;
    int max_threads;
    gemma_status st = resolve_options(model, opts, &o, &max_threads, err);
    if (st) return st;
    const gm_config *c = model->cfg;

    gemma_session *s = calloc(1, sizeof *s);
    if (!s) return gm_fail(err, GEMMA_ERR_NOMEM, "out of memory");
    s->model = model;
    s->k = gm_kernels_get();
    s->n_ctx = o.n_ctx;
    s->n_batch = o.n_batch;
    s->n_rewind = o.n_rewind;
    s->kv_type = o.kv_type;
    s->allocator = o.allocator ? *o.allocator : model->allocator;

    int *window_of = calloc(2 * (size_t)c->n_layers, sizeof(int));
    st = window_of ? GEMMA_OK : gm_fail(err, GEMMA_ERR_NOMEM, "out of memory");
    if (!st) {
        kv_windows(c, o.n_rewind, window_of, window_of + c->n_layers);
        st = gm_kvcache_init(&s->kv, c->n_layers, window_of, window_of + c->n_layers, s->n_ctx,
                             gm_kv_dtype(s->kv_type), &s->allocator, err);
    }
    free(window_of);
    if (!st) st = alloc_buffers(s, max_threads, err);
    if (!st) {
        s->att_first = calloc((size_t)s->n_batch, sizeof(int));
        s->att_last = calloc((size_t)s->n_batch, sizeof(int));
        if (!s->att_first || !s->att_last) st = gm_fail(err, GEMMA_ERR_NOMEM, "session: out of memory");
    }
    if (!st) st = make_pool(s, o.n_threads, err);
    if (st) {
        gemma_session_free(s);
        return st;
    }
    *out = s;
    return GEMMA_OK;
}

void gemma_session_free(gemma_session *s) {
    if (!s) return;
    gm_pool_free(s->pool);
    gm_kvcache_free(&s->kv);
    buffer_spec bufs[N_BUFFERS];
    buffer_table(s, s->model, s->n_ctx, s->n_batch, 1, s->kv_type, bufs);
    for (size_t i = 0; i < N_BUFFERS; i++) gm_free(&s->allocator, *bufs[i].p);
    free(s->mm.per_thread);
    if (s->vision.mem) gm_vision_scratch_free(&s->vision);
    free(s->att_first);
    free(s->att_last);
    free(s);
}

/* Checks shared by both entry points (which have checked s); image tokens are allowed (and counted)
 * when image_token >= 0. */
static gemma_status check_eval(gemma_session *s, const int32_t *tokens, size_t n, int image_token, size_t *n_image,
                               gemma_logits_mode mode, float *logits, gemma_error *err) {
    if (!tokens) return gm_fail(err, GEMMA_ERR_ARG, "gemma_session_eval: tokens is NULL");
    if (mode != GEMMA_LOGITS_NONE && !logits) return gm_fail(err, GEMMA_ERR_ARG, "gemma_session_eval: logits is NULL");
    if (mode != GEMMA_LOGITS_NONE && mode != GEMMA_LOGITS_LAST && mode != GEMMA_LOGITS_ALL)
        return gm_fail(err, GEMMA_ERR_ARG, "gemma_session_eval: unknown logits mode %d", (int)mode);
    int vocab = s->model->cfg->vocab_size;
    *n_image = 0;
    for (size_t i = 0; i < n; i++) {
        if (image_token >= 0 && tokens[i] == image_token) {
            (*n_image)++;
            continue;
        }
        if (tokens[i] < 0 || tokens[i] >= vocab)
            return gm_fail(err, GEMMA_ERR_ARG, "token %zu has id %d, outside the vocabulary [0, %d)", i,
                           (int)tokens[i], vocab);
    }
    if (n > (size_t)(s->n_ctx - s->pos))
        return gm_fail(err, GEMMA_ERR_CONTEXT_FULL, "%zu more tokens do not fit: %d of %d context positions used", n,
                       s->pos, s->n_ctx);
    return GEMMA_OK;
}

/* The end (exclusive) of the run of image tokens starting at i. */
static size_t run_end(const int32_t *tokens, size_t n, size_t i, int image_token) {
    while (i < n && tokens[i] == image_token) i++;
    return i;
}

static gemma_status eval_steps(gemma_session *s, const int32_t *tokens, size_t n, const float *embeds,
                               int image_token, gemma_logits_mode mode, float *logits, gemma_error *err) {
    int vocab = s->model->cfg->vocab_size, D = s->model->cfg->hidden_size;
    for (size_t done = 0; done < n;) {
        size_t step = (n - done) < (size_t)s->n_batch ? n - done : (size_t)s->n_batch;
        s->step_mm = 0;
        if (embeds) {
            /* an image run is never split: end the step before one that would not fit */
            for (size_t i = done; i < done + step; i++) {
                if (tokens[i] != image_token) continue;
                size_t end = run_end(tokens, n, i, image_token);
                if (end > done + step) {
                    if (i == done)
                        return gm_fail(err, GEMMA_ERR_ARG,
                                       "an image of %zu tokens does not fit in one batch (n_batch %d)", end - i,
                                       s->n_batch);
                    step = i - done;
                    break;
                }
                i = end - 1;
            }
            s->step_mm = 1;
            s->step_embeds = embeds;
            for (size_t i = 0; i < step; i++) {
                int pos = s->pos + (int)i;
                s->att_first[i] = s->att_last[i] = pos;
                if (tokens[done + i] != image_token) continue;
                size_t first = i, end = run_end(tokens + done, step, i, image_token);
                for (; i < end; i++) {
                    s->att_first[i] = s->pos + (int)first;
                    s->att_last[i] = s->pos + (int)end - 1;
                }
                embeds += (end - first) * (size_t)D;
                i = end - 1;
            }
        }
        int last_step = done + step == n;
        gemma_logits_mode m = mode == GEMMA_LOGITS_ALL ? mode : (last_step ? mode : GEMMA_LOGITS_NONE);
        float *out = mode == GEMMA_LOGITS_ALL ? logits + done * (size_t)vocab : logits;
        if (s->model->cfg->arch == GM_ARCH_GEMMA4)
            gm_gemma4_forward(s, tokens + done, (int)step, m, out);
        else
            gm_gemma3_forward(s, tokens + done, (int)step, m, out);
        done += step;
    }
    s->step_mm = 0;
    return GEMMA_OK;
}

gemma_status gemma_session_eval(gemma_session *s, const int32_t *tokens, size_t n, gemma_logits_mode mode,
                                float *logits, gemma_error *err) {
    gm_ok(err);
    if (!s) return gm_fail(err, GEMMA_ERR_ARG, "gemma_session_eval: session is NULL");
    if (n == 0) return GEMMA_OK;
    size_t n_image = 0;
    gemma_status st = check_eval(s, tokens, n, -1, &n_image, mode, logits, err);
    return st ? st : eval_steps(s, tokens, n, NULL, -1, mode, logits, err);
}

gemma_status gemma_session_eval_mm(gemma_session *s, const int32_t *tokens, size_t n, const float *embeds,
                                   size_t n_embeds, gemma_logits_mode mode, float *logits, gemma_error *err) {
    gm_ok(err);
    if (!s) return gm_fail(err, GEMMA_ERR_ARG, "gemma_session_eval_mm: session is NULL");
    if (n == 0) return GEMMA_OK;
    int image_token = s->model->cfg->image_token_id;
    if (image_token < 0)
        return gm_fail(err, GEMMA_ERR_UNSUPPORTED, "%s: this model takes no images (no image token)",
                       gm_modeldir_source(&s->model->md));
    size_t n_image = 0;
    gemma_status st = check_eval(s, tokens, n, image_token, &n_image, mode, logits, err);
    if (st) return st;
    if (n_image != n_embeds)
        return gm_fail(err, GEMMA_ERR_ARG, "%zu image tokens but %zu image embeddings", n_image, n_embeds);
    if (n_embeds && !embeds) return gm_fail(err, GEMMA_ERR_ARG, "gemma_session_eval_mm: embeds is NULL");
    return eval_steps(s, tokens, n, n_embeds ? embeds : NULL, image_token, mode, logits, err);
}

int32_t gemma_model_image_token(const gemma_model *m) { return m ? m->cfg->image_token_id : -1; }

gemma_status gemma_session_encode_images(gemma_session *s, const float *pixels, int n_images, float *out,
                                         gemma_error *err) {
    gm_ok(err);
    if (!s) return gm_fail(err, GEMMA_ERR_ARG, "gemma_session_encode_images: session is NULL");
    const gm_vision *v = s->model->vision;
    if (!v)
        return gm_fail(err, GEMMA_ERR_UNSUPPORTED, "%s: this model has no vision tower (a GGUF needs its mmproj file)",
                       gm_modeldir_source(&s->model->md));
    if (n_images < 1 || !pixels || !out)
        return gm_fail(err, GEMMA_ERR_ARG, "gemma_session_encode_images: %d images, pixels %p, out %p", n_images,
                       (const void *)pixels, (void *)out);
    if (!s->vision.mem) {
        gemma_status st = gm_vision_scratch_alloc(&s->vision, v, s->mm.n_threads, &s->allocator, err);
        if (st) return st;
    }
    return gm_vision_encode(v, s->pool, s->k, pixels, n_images, out, &s->vision, err);
}

static const char *const kv_type_names[] = {"auto", "f32", "f16", "bf16"};

const char *gemma_kv_type_name(gemma_kv_type t) {
    return (unsigned)t < sizeof kv_type_names / sizeof kv_type_names[0] ? kv_type_names[t] : "?";
}

int gemma_kv_type_parse(const char *name) {
    for (size_t i = 0; name && i < sizeof kv_type_names / sizeof kv_type_names[0]; i++)
        if (strcmp(name, kv_type_names[i]) == 0) return (int)i;
    return -1;
}

gemma_kv_type gemma_session_kv_type(const gemma_session *s) { return s ? s->kv_type : GEMMA_KV_AUTO; }

int gemma_session_position(const gemma_session *s) { return s ? s->pos : 0; }
int gemma_session_context_size(const gemma_session *s) { return s ? s->n_ctx : 0; }
void gemma_session_reset(gemma_session *s) {
    if (s) s->pos = 0;
}
gemma_status gemma_session_rewind(gemma_session *s, int n_keep, gemma_error *err) {
    gm_ok(err);
    if (!s) return gm_fail(err, GEMMA_ERR_ARG, "gemma_session_rewind: session is NULL");
    if (n_keep < 0 || n_keep > s->pos)
        return gm_fail(err, GEMMA_ERR_ARG, "cannot keep %d tokens: the session holds %d", n_keep, s->pos);
    /* a sliding ring of cap entries still holds the window before n_keep if
     * no position written since overwrote it: pos - n_keep <= cap - window */
    const gm_config *c = s->model->cfg;
    for (int l = 0; l < c->n_layers; l++) {
        int cap = s->kv.layers[l].cap;
        if (cap == 0) continue;   /* KV-shared: its donor is checked */
        if (c->layers[l].sliding && cap < s->n_ctx && s->pos - n_keep > cap - c->sliding_window)
            return gm_fail(err, GEMMA_ERR_ARG, "cannot go back %d tokens (at most %d with n_rewind %d)",
                           s->pos - n_keep, cap - c->sliding_window, s->n_rewind);
    }
    s->pos = n_keep;
    return GEMMA_OK;
}

int gemma_session_threads(const gemma_session *s) { return s ? s->n_threads : 0; }

gemma_status gemma_session_set_threads(gemma_session *s, int n_threads, gemma_error *err) {
    gm_ok(err);
    if (!s) return gm_fail(err, GEMMA_ERR_ARG, "gemma_session_set_threads: session is NULL");
    if (n_threads == 0) n_threads = gm_cpu_count();
    if (n_threads < 1 || n_threads > s->mm.n_threads)
        return gm_fail(err, GEMMA_ERR_ARG, "n_threads %d out of range [1, %d] for this session", n_threads,
                       s->mm.n_threads);
    if (n_threads == s->n_threads) return GEMMA_OK;
    return make_pool(s, n_threads, err);
}
