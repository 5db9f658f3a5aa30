/* request.c - see request.h. */
#include "request.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"

srv_limits srv_default_limits(void) {
    srv_limits l = {
        .max_body_bytes = 32u << 20,
        .max_json_depth = 32,
        .max_images = 8,
        .max_image_bytes = 16u << 20,
        .max_image_pixels = 50000000ull,
        .max_messages = 1024,
        .max_stop_len = 256,
        .max_logit_bias = 1024,
    };
    return l;
}

int srv_fail(srv_error *err, int status, const char *type, const char *code, const char *param, const char *fmt,
             ...) {
    err->status = status;
    err->type = type;
    err->code = code;
    snprintf(err->param, sizeof err->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return 0;
}

#define BAD_REQUEST(param, ...) srv_fail(err, 400, "invalid_request_error", NULL, param, __VA_ARGS__)

/* ================================================================ base64 */

static int b64_value(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
}

unsigned char *srv_base64_decode(const char *text, size_t len, size_t max_bytes, size_t *out_len) {
    while (len > 0 && text[len - 1] == '=') len--;
    if (len % 4 == 1) return NULL;
    size_t n = len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0);
    if (n > max_bytes) return NULL;
    unsigned char *out = malloc(n ? n : 1);
    if (!out) return NULL;
    uint32_t acc = 0;
    size_t w = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value((unsigned char)text[i]);
        if (v < 0) {
            free(out);
            return NULL;
        }
        acc = acc << 6 | (uint32_t)v;
        if (i % 4 == 3) {
            out[w++] = (unsigned char)(acc >> 16);
            out[w++] = (unsigned char)(acc >> 8);
            out[w++] = (unsigned char)acc;
            acc = 0;
        }
    }
    if (len % 4 == 2) out[w++] = (unsigned char)(acc >> 4);
    if (len % 4 == 3) {
        out[w++] = (unsigned char)(acc >> 10);
        out[w++] = (unsigned char)(acc >> 2);
    }
    *out_len = w;
    return out;
}

/* ================================================================ fields */

static int is_absent(const gm_json *v) { return !v || v->type == GM_JSON_NULL; }

/* A number field in [lo, hi]; absent or null leaves *out alone. */
static int get_float(const gm_json *root, const char *key, double lo, double hi, float *out, srv_error *err) {
    const gm_json *v = gm_json_get(root, key);
    if (is_absent(v)) return 1;
    double d;
    if (!gm_json_number(v, &d)) return BAD_REQUEST(key, "'%s' must be a number", key);
    if (!(d >= lo && d <= hi)) return BAD_REQUEST(key, "'%s' is %g; it must be between %g and %g", key, d, lo, hi);
    *out = (float)d;
    return 1;
}

static int get_int(const gm_json *root, const char *key, int64_t lo, int64_t hi, int64_t *out, srv_error *err) {
    const gm_json *v = gm_json_get(root, key);
    if (is_absent(v)) return 1;
    int64_t i;
    if (!gm_json_int(v, &i)) return BAD_REQUEST(key, "'%s' must be an integer", key);
    if (i < lo || i > hi)
        return BAD_REQUEST(key, "'%s' is %lld; it must be between %lld and %lld", key, (long long)i, (long long)lo,
                           (long long)hi);
    *out = i;
    return 1;
}

static int get_bool(const gm_json *root, const char *key, int *out, srv_error *err) {
    const gm_json *v = gm_json_get(root, key);
    if (is_absent(v)) return 1;
    if (!gm_json_is_bool(v)) return BAD_REQUEST(key, "'%s' must be true or false", key);
    *out = v->type == GM_JSON_TRUE;
    return 1;
}

static char *dup_n(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

static int add_stop(srv_request *r, const gm_json *v, const srv_limits *lim, srv_error *err) {
    if (!gm_json_is(v, GM_JSON_STRING)) return BAD_REQUEST("stop", "'stop' must be a string or an array of strings");
    if (v->len == 0) return 1;   /* an empty stop string stops nothing */
    if (v->len > (uint32_t)lim->max_stop_len || memchr(v->u.str, 0, v->len))
        return BAD_REQUEST("stop", "a stop string is longer than %d bytes or holds a NUL", lim->max_stop_len);
    if (r->n_stops == SRV_MAX_STOPS) return BAD_REQUEST("stop", "at most %d stop strings", SRV_MAX_STOPS);
    if (!(r->stops[r->n_stops] = dup_n(v->u.str, v->len)))
        return srv_fail(err, 500, "server_error", NULL, NULL, "out of memory");
    r->n_stops++;
    return 1;
}

static int parse_stops(srv_request *r, const gm_json *root, const srv_limits *lim, srv_error *err) {
    const gm_json *stop = gm_json_get(root, "stop");
    if (is_absent(stop)) return 1;
    if (!gm_json_is(stop, GM_JSON_ARRAY)) return add_stop(r, stop, lim, err);
    for (size_t i = 0; i < gm_json_count(stop); i++)
        if (!add_stop(r, gm_json_at(stop, i), lim, err)) return 0;
    return 1;
}

static int parse_logit_bias(srv_request *r, const gm_json *root, const srv_limits *lim, int vocab, srv_error *err) {
    const gm_json *lb = gm_json_get(root, "logit_bias");
    if (is_absent(lb)) return 1;
    if (!gm_json_is(lb, GM_JSON_OBJECT))
        return BAD_REQUEST("logit_bias", "'logit_bias' must be an object of token id -> bias");
    size_t n = gm_json_count(lb);
    if (n > (size_t)lim->max_logit_bias)
        return BAD_REQUEST("logit_bias", "'logit_bias' has %zu entries; at most %d", n, lim->max_logit_bias);
    if (n == 0) return 1;
    if (!(r->bias = calloc(n, sizeof *r->bias))) return srv_fail(err, 500, "server_error", NULL, NULL, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const gm_json *e = gm_json_at(lb, i);
        char *end;
        long id = strtol(e->key, &end, 10);
        double bias;
        if (!*e->key || *end || id < 0 || id >= vocab)
            return BAD_REQUEST("logit_bias", "logit_bias key '%.40s' is not a token id (0 .. %d)", e->key, vocab - 1);
        if (!gm_json_number(e, &bias) || !(bias >= -100 && bias <= 100))
            return BAD_REQUEST("logit_bias", "logit_bias values must be numbers between -100 and 100");
        r->bias[i] = (gemma_logit_bias){(int32_t)id, (float)bias};
    }
    r->sp.logit_bias = r->bias;
    r->sp.n_logit_bias = n;
    return 1;
}

/* Everything but the prompt: sampling, limits, stops, streaming. */
static int parse_generation(srv_request *r, const gm_json *root, const srv_limits *lim, const gemma_model *model,
                            srv_error *err) {
    const gm_json *name = gm_json_get(root, "model");
    if (!is_absent(name)) {
        if (!gm_json_is(name, GM_JSON_STRING)) return BAD_REQUEST("model", "'model' must be a string");
        if (!(r->model = dup_n(name->u.str, name->len)))
            return srv_fail(err, 500, "server_error", NULL, NULL, "out of memory");
    }
    int64_t v = -1;
    if (!get_int(root, "max_tokens", 1, 1 << 30, &v, err)) return 0;
    if (!get_int(root, "max_completion_tokens", 1, 1 << 30, &v, err)) return 0;
    r->max_tokens = (int)v;
    int64_t n = 1;
    if (!get_int(root, "n", 1, 1, &n, err)) return 0;
    if (!get_float(root, "temperature", 0, 2, &r->sp.temperature, err)) return 0;
    if (!get_float(root, "top_p", 0, 1, &r->sp.top_p, err)) return 0;
    if (!get_float(root, "min_p", 0, 1, &r->sp.min_p, err)) return 0;
    if (!get_float(root, "presence_penalty", -2, 2, &r->sp.presence_penalty, err)) return 0;
    if (!get_float(root, "frequency_penalty", -2, 2, &r->sp.frequency_penalty, err)) return 0;
    if (!get_float(root, "repetition_penalty", 0, 10, &r->sp.repetition_penalty, err)) return 0;
    int64_t top_k = r->sp.top_k;
    if (!get_int(root, "top_k", 0, 1 << 30, &top_k, err)) return 0;
    r->sp.top_k = (int)top_k;
    const gm_json *seed = gm_json_get(root, "seed");
    if (!is_absent(seed)) {
        int64_t s;
        if (!gm_json_int(seed, &s)) return BAD_REQUEST("seed", "'seed' must be an integer");
        r->sp.seed = (uint64_t)s;
    }
    if (!get_bool(root, "stream", &r->stream, err)) return 0;
    const gm_json *so = gm_json_get(root, "stream_options");
    if (!is_absent(so)) {
        if (!gm_json_is(so, GM_JSON_OBJECT)) return BAD_REQUEST("stream_options", "'stream_options' must be an object");
        if (!get_bool(so, "include_usage", &r->include_usage, err)) return 0;
    }
    if (!parse_stops(r, root, lim, err)) return 0;
    return parse_logit_bias(r, root, lim, gemma_model_vocab_size(model), err);
}

/* ================================================================ images */

static uint64_t fnv1a(const unsigned char *p, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

/* A content part {"type": "image_url", "image_url": {"url": "data:image/png;base64,..."}} (or a bare url string). */
static int add_image(srv_request *r, const gm_json *part, const srv_limits *lim, const gemma_model *model,
                     srv_error *err) {
    if (!gemma_model_has_vision(model))
        return BAD_REQUEST("messages", "this model takes no images (it has no vision tower)");
    if (r->n_images == lim->max_images)
        return BAD_REQUEST("messages", "at most %d images in one request", lim->max_images);
    const gm_json *iu = gm_json_get(part, "image_url");
    const gm_json *url = gm_json_is(iu, GM_JSON_OBJECT) ? gm_json_get(iu, "url") : iu;
    const char *u = gm_json_string(url);
    if (!u) return BAD_REQUEST("messages", "an image_url part needs image_url.url");
    if (strncmp(u, "data:", 5) != 0)
        return BAD_REQUEST("messages", "only base64 data: URLs are accepted for images (no remote fetching)");
    const char *comma = memchr(u, ',', url->len);
    if (!comma || comma - u < 12 || memcmp(comma - 7, ";base64", 7) != 0)
        return BAD_REQUEST("messages", "an image data: URL must be base64 (data:image/png;base64,...)");
    const char *b64 = comma + 1;
    size_t b64_len = url->len - (size_t)(b64 - u), n = 0;
    unsigned char *bytes = srv_base64_decode(b64, b64_len, lim->max_image_bytes, &n);
    if (!bytes)
        return BAD_REQUEST("messages", "image %d is not valid base64 or is over %zu bytes", r->n_images + 1,
                           lim->max_image_bytes);
    gemma_image_load_options lo = {.max_pixels = lim->max_image_pixels};
    gemma_image *img;
    gemma_error gerr;
    char name[32];
    snprintf(name, sizeof name, "image %d", r->n_images + 1);
    gemma_status st = gemma_image_load_memory(bytes, n, name, &lo, &img, &gerr);
    uint64_t hash = fnv1a(bytes, n);
    free(bytes);
    if (st != GEMMA_OK) return BAD_REQUEST("messages", "%s", gerr.message);
    r->images[r->n_images++] = (srv_image){img, hash};
    return 1;
}

/* ============================================================== messages */

static int render(srv_request *r, const gemma_chat_format *fmt, const gemma_chat_message *msgs, size_t n,
                  srv_error *err) {
    gemma_error gerr;
    size_t len = 0;
    gemma_status st = gemma_chat_render(fmt, msgs, n, 1, NULL, 0, &len, &gerr);
    if (st != GEMMA_OK && st != GEMMA_ERR_BUFFER) return BAD_REQUEST("messages", "%s", gerr.message);
    if (!(r->prompt = malloc(len + 1))) return srv_fail(err, 500, "server_error", NULL, NULL, "out of memory");
    if (gemma_chat_render(fmt, msgs, n, 1, r->prompt, len + 1, &len, &gerr) != GEMMA_OK)
        return BAD_REQUEST("messages", "%s", gerr.message);
    return 1;
}

static int expand_images(srv_request *r, const gemma_model *model, srv_error *err) {
    gemma_error gerr;
    size_t len = 0;
    int found = 0, tokens = gemma_model_image_tokens(model);
    gemma_chat_expand_images(r->prompt, 0, tokens, NULL, 0, &len, &found, &gerr);
    char *out = malloc(len + 1);
    if (!out) return srv_fail(err, 500, "server_error", NULL, NULL, "out of memory");
    if (gemma_chat_expand_images(r->prompt, 0, tokens, out, len + 1, &len, &found, &gerr) != GEMMA_OK) {
        free(out);
        return BAD_REQUEST("messages", "%s", gerr.message);
    }
    free(r->prompt);
    r->prompt = out;
    if (found != r->n_images)
        return BAD_REQUEST("messages", "the prompt has %d image markers for %d images (is <start_of_image> written "
                                       "in a message's text?)",
                           found, r->n_images);
    return 1;
}

/* One message's content: a string, null (an assistant turn with none), or a list of parts. */
static int message_content(srv_request *r, const gm_json *m, size_t index, const srv_limits *lim,
                           const gemma_model *model, gemma_chat_message *msg, gemma_chat_part **parts_next,
                           srv_error *err) {
    const gm_json *content = gm_json_get(m, "content");
    if (is_absent(content)) {
        msg->content = "";
        return 1;
    }
    if (gm_json_is(content, GM_JSON_STRING)) {
        msg->content = content->u.str;
        msg->content_len = content->len;
        return 1;
    }
    if (!gm_json_is(content, GM_JSON_ARRAY))
        return BAD_REQUEST("messages", "messages[%zu].content must be a string or an array of parts", index);
    msg->parts = *parts_next;
    msg->n_parts = gm_json_count(content);
    for (size_t k = 0; k < msg->n_parts; k++) {
        const gm_json *part = gm_json_at(content, k);
        const char *type = gm_json_string(gm_json_get(part, "type"));
        gemma_chat_part *p = &(*parts_next)[k];
        if (!type) return BAD_REQUEST("messages", "messages[%zu].content[%zu] needs a string 'type'", index, k);
        if (!strcmp(type, "text")) {
            const gm_json *text = gm_json_get(part, "text");
            if (!gm_json_is(text, GM_JSON_STRING))
                return BAD_REQUEST("messages", "messages[%zu].content[%zu].text must be a string", index, k);
            *p = (gemma_chat_part){GEMMA_PART_TEXT, text->u.str, text->len};
        } else if (!strcmp(type, "image_url")) {
            if (!add_image(r, part, lim, model, err)) return 0;
            *p = (gemma_chat_part){GEMMA_PART_IMAGE, NULL, 0};
        } else {
            return BAD_REQUEST("messages", "messages[%zu].content[%zu]: part type '%.32s' is not supported (text, "
                                           "image_url)",
                               index, k, type);
        }
        if (p->text && p->text_len == 0) p->text = "";
    }
    *parts_next += msg->n_parts;
    return 1;
}

static int parse_messages(srv_request *r, const gm_json *root, const srv_limits *lim, const gemma_model *model,
                          const gemma_chat_format *fmt, srv_error *err) {
    const gm_json *msgs = gm_json_get(root, "messages");
    if (!msgs) return BAD_REQUEST("messages", "'messages' is required");
    if (!gm_json_is(msgs, GM_JSON_ARRAY) || gm_json_count(msgs) == 0)
        return BAD_REQUEST("messages", "'messages' must be a non-empty array");
    size_t n = gm_json_count(msgs), n_parts = 0;
    if (n > (size_t)lim->max_messages)
        return BAD_REQUEST("messages", "%zu messages; at most %d", n, lim->max_messages);
    if (!fmt) return BAD_REQUEST("messages", "this model has no chat template: use /v1/completions");
    for (size_t i = 0; i < n; i++) n_parts += gm_json_count(gm_json_get(gm_json_at(msgs, i), "content"));
    gemma_chat_message *cm = calloc(n, sizeof *cm);
    gemma_chat_part *parts = calloc(n_parts + 1, sizeof *parts), *next = parts;
    r->images = calloc((size_t)lim->max_images + 1, sizeof *r->images);
    int ok = cm && parts && r->images;
    if (!ok) srv_fail(err, 500, "server_error", NULL, NULL, "out of memory");
    for (size_t i = 0; ok && i < n; i++) {
        const gm_json *m = gm_json_at(msgs, i);
        const char *role = gm_json_string(gm_json_get(m, "role"));
        if (!gm_json_is(m, GM_JSON_OBJECT) || !role) {
            ok = BAD_REQUEST("messages", "messages[%zu] must be an object with a string 'role'", i);
            break;
        }
        cm[i].role = strcmp(role, "developer") == 0 ? "system" : role;
        ok = message_content(r, m, i, lim, model, &cm[i], &next, err);
    }
    if (ok) ok = render(r, fmt, cm, n, err);
    if (ok && r->n_images) ok = expand_images(r, model, err);
    free(cm);
    free(parts);
    return ok;
}

/* /v1/completions: "prompt" is a string (or an array holding one string). */
static int parse_prompt(srv_request *r, const gm_json *root, srv_error *err) {
    const gm_json *p = gm_json_get(root, "prompt");
    if (gm_json_is(p, GM_JSON_ARRAY) && gm_json_count(p) == 1) p = gm_json_at(p, 0);
    if (!p) return BAD_REQUEST("prompt", "'prompt' is required");
    if (!gm_json_is(p, GM_JSON_STRING)) return BAD_REQUEST("prompt", "'prompt' must be a string");
    if (!(r->prompt = dup_n(p->u.str, p->len))) return srv_fail(err, 500, "server_error", NULL, NULL, "out of memory");
    r->add_bos = 1;
    return 1;
}

int srv_parse_request(const char *body, size_t len, srv_kind kind, const srv_limits *lim, const gemma_model *model,
                      const gemma_chat_format *fmt, const gemma_sampler_params *defaults, uint64_t seed,
                      srv_request *out, srv_error *err) {
    memset(out, 0, sizeof *out);
    out->kind = kind;
    out->sp = *defaults;
    out->sp.seed = seed;
    out->max_tokens = -1;
    char jerr[160];
    gm_json_limits jl = {.max_bytes = lim->max_body_bytes, .max_depth = lim->max_json_depth};
    gm_json_doc *doc = gm_json_parse(body, len, &jl, jerr, sizeof jerr);
    if (!doc) return BAD_REQUEST(NULL, "the body is not valid JSON: %s", jerr);
    const gm_json *root = gm_json_root(doc);
    int ok = gm_json_is(root, GM_JSON_OBJECT) ? 1 : BAD_REQUEST(NULL, "the body must be a JSON object");
    if (ok) ok = parse_generation(out, root, lim, model, err);
    if (ok) ok = kind == SRV_CHAT ? parse_messages(out, root, lim, model, fmt, err) : parse_prompt(out, root, err);
    gm_json_free(doc);
    if (!ok) srv_request_free(out);
    return ok;
}

void srv_request_free(srv_request *r) {
    for (int i = 0; i < r->n_stops; i++) free(r->stops[i]);
    for (int i = 0; i < r->n_images; i++) gemma_image_free(r->images[i].image);
    free(r->images);
    free(r->bias);
    free(r->model);
    free(r->prompt);
    memset(r, 0, sizeof *r);
}
