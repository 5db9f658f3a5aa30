/* common.c - see common.h. */
#include "common.h"
#include "args.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

volatile sig_atomic_t cli_interrupted;

/* ids of the last reply (the CLI runs one generation at a time) */
static int32_t *generated;
static size_t n_generated_ids, cap_generated;

const int32_t *cli_generated_ids(size_t *n) {
    *n = n_generated_ids;
    return generated;
}

static int remember_generated(int32_t t) {
    if (n_generated_ids == cap_generated) {
        size_t cap = cap_generated ? cap_generated * 2 : 256;
        int32_t *g = realloc(generated, cap * sizeof *g);
        if (!g) return 0;
        generated = g;
        cap_generated = cap;
    }
    generated[n_generated_ids++] = t;
    return 1;
}

char *cli_read_stream(FILE *f, size_t *len) {
    size_t cap = 1 << 16, n = 0, got;
    char *buf = malloc(cap);
    while (buf && (got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (n + 1 < cap) continue;
        char *grown = realloc(buf, cap *= 2);
        if (!grown) {
            free(buf);
            return NULL;
        }
        buf = grown;
    }
    if (buf) buf[n] = 0;
    if (len) *len = n;
    return buf;
}

double cli_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ================================================================= assets */

#define DEFAULT_MODEL "models/gemma3-270m"

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* rel under the repository the binary was built in (<repo>/build/gemma -> <repo>/rel), else under the current
 * directory; static storage. */
static const char *find_in_repo(const char *rel, int (*exists)(const char *)) {
    static char path[4096];
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        for (int up = 0; up < 2; up++) {
            char *slash = strrchr(exe, '/');
            if (!slash) break;
            *slash = 0;
            if ((size_t)snprintf(path, sizeof path, "%s/%s", exe, rel) < sizeof path && exists(path)) return path;
        }
    }
    return exists(rel) ? rel : NULL;
}

const char *cli_default_model(void) {
    const char *env = getenv("GEMMA_MODEL");
    if (env && *env) return env;
    return find_in_repo(DEFAULT_MODEL, is_dir);
}

const char *cli_repo_path(const char *rel) {
    const char *found = find_in_repo(rel, is_dir);
    return found ? found : rel;
}

const char *cli_model_or_default(const char *model_dir, const char *cmd) {
    if (model_dir) return model_dir;
    const char *d = cli_default_model();
    if (!d) cli_usage_error(cmd, "missing -m MODEL (no default model: bash scripts/setup.sh installs one)");
    return d;
}

int cli_parse_numerics(const char *v, const char *cmd, gemma_numerics *out) {
    int n = gemma_numerics_parse(v);
    if (n < 0) {
        cli_usage_error(cmd, "bad --numerics '%s' (auto, exact or llamacpp)", v);
        return 0;
    }
    *out = (gemma_numerics)n;
    return 1;
}

int cli_load_assets(const char *model_dir, gemma_numerics numerics, cli_assets *a, int need_chat) {
    return cli_load_assets_mm(model_dir, numerics, NULL, a, need_chat);
}

int cli_load_assets_mm(const char *model_dir, gemma_numerics numerics, const char *mmproj, cli_assets *a,
                       int need_chat) {
    memset(a, 0, sizeof *a);
    gemma_error err;
    gemma_model_options mo = {.numerics = numerics, .mmproj = mmproj};
    if (gemma_model_load(model_dir, &mo, &a->model, &err) != GEMMA_OK) return cli_error("%s", err.message);
    if (gemma_tokenizer_load(model_dir, &a->tok, &err) != GEMMA_OK) {
        cli_free_assets(a);
        return cli_error("%s", err.message);
    }
    if (gemma_chat_format_load(model_dir, &a->fmt, &err) != GEMMA_OK) {
        a->fmt = NULL;
        if (need_chat) {
            cli_free_assets(a);
            return cli_error("%s (use --raw to skip the chat format)", err.message);
        }
    }
    return CLI_OK;
}

void cli_free_assets(cli_assets *a) {
    gemma_chat_format_free(a->fmt);
    gemma_tokenizer_free(a->tok);
    gemma_model_free(a->model);
    memset(a, 0, sizeof *a);
}

int cli_tokenize(const gemma_tokenizer *tok, const char *text, size_t len, int flags, int32_t **ids, size_t *n) {
    gemma_error err;
    *ids = malloc((len + 2) * sizeof **ids);
    if (!*ids) return cli_error("out of memory");
    if (gemma_tokenize(tok, text, len, flags, *ids, len + 2, n, &err) != GEMMA_OK) {
        free(*ids);
        *ids = NULL;
        return cli_error("%s", err.message);
    }
    return CLI_OK;
}

/* =========================================================== gen options */

const char *const cli_gen_help =
    "  -n, --n-predict N     at most N new tokens (default: until a stop token)\n"
    "  --temp T              temperature; 0 = greedy (default: the model's generation_config.json,\n"
    "                        else temperature 1, top-k 64, top-p 0.95)\n"
    "  --top-k K             keep the K most likely tokens (0 = off)\n"
    "  --top-p P             nucleus sampling (1 = off)\n"
    "  --min-p P             drop tokens below P x the most likely one (0 = off)\n"
    "  --repeat-penalty R    repetition penalty on tokens already seen (1 = off)\n"
    "  --presence-penalty X  OpenAI-style presence penalty\n"
    "  --frequency-penalty X OpenAI-style frequency penalty\n"
    "  --repeat-last-n N     how many recent tokens the penalties look at (0 = all)\n"
    "  --seed S              random seed (default: from the clock; printed with the stats)\n"
    "  --stop TEXT           stop when TEXT appears (may repeat)\n"
    "  --ctx N               context size (default 4096)\n"
    "  -t, --threads N       worker threads (default: all CPUs)\n"
    "  --numerics MODE       auto (default: llamacpp for GGUF files, else exact), exact (f32 math on the\n"
    "                        weights as stored, like transformers / mlx-lm) or llamacpp (GGUF only: llama.cpp's\n"
    "                        rounding step for step, so greedy output equals llama.cpp's)\n";

void cli_gen_defaults(cli_gen_opts *o) {
    memset(o, 0, sizeof *o);
    o->sp = gemma_sampler_default_params();
    o->n_predict = -1;
}

void cli_gen_model_defaults(cli_gen_opts *o, const gemma_model *m) {
    gemma_sampler_params d = gemma_model_sampler_params(m);
    if (!(o->set & CLI_SET_TEMP)) o->sp.temperature = d.temperature;
    if (!(o->set & CLI_SET_TOP_K)) o->sp.top_k = d.top_k;
    if (!(o->set & CLI_SET_TOP_P)) o->sp.top_p = d.top_p;
    if (!(o->set & CLI_SET_MIN_P)) o->sp.min_p = d.min_p;
    if (!o->have_seed) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        o->sp.seed = (uint64_t)ts.tv_sec * 1000000007ull ^ (uint64_t)ts.tv_nsec;
    }
}

static int float_value(const char *v, float lo, float hi, float *out) {
    if (!v) return 0;
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || end == v || *end || !(d >= lo && d <= hi)) return 0;
    *out = (float)d;
    return 1;
}

int cli_parse_gen_flag(int argc, char **argv, int *i, const char *cmd, cli_gen_opts *o) {
    const char *a = argv[*i], *v;
    long n;
    float f;
#define VALUE() do { if (!(v = cli_value(argc, argv, i, cmd))) return -1; } while (0)
#define BAD() do { cli_usage_error(cmd, "bad value '%s' for %s", v, a); return -1; } while (0)
    if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) {
        VALUE();
        if (!cli_parse_int(v, -1, 1 << 30, &n)) BAD();
        o->n_predict = (int)n;
    } else if (!strcmp(a, "--temp") || !strcmp(a, "--temperature")) {
        VALUE();
        if (!float_value(v, 0, 100, &f)) BAD();
        o->sp.temperature = f;
        o->set |= CLI_SET_TEMP;
    } else if (!strcmp(a, "--top-k")) {
        VALUE();
        if (!cli_parse_int(v, 0, 1 << 30, &n)) BAD();
        o->sp.top_k = (int)n;
        o->set |= CLI_SET_TOP_K;
    } else if (!strcmp(a, "--top-p")) {
        VALUE();
        if (!float_value(v, 0, 1, &f)) BAD();
        o->sp.top_p = f;
        o->set |= CLI_SET_TOP_P;
    } else if (!strcmp(a, "--min-p")) {
        VALUE();
        if (!float_value(v, 0, 1, &f)) BAD();
        o->sp.min_p = f;
        o->set |= CLI_SET_MIN_P;
    } else if (!strcmp(a, "--repeat-penalty")) {
        VALUE();
        if (!float_value(v, 0, 100, &f)) BAD();
        o->sp.repetition_penalty = f;
    } else if (!strcmp(a, "--presence-penalty")) {
        VALUE();
        if (!float_value(v, -100, 100, &f)) BAD();
        o->sp.presence_penalty = f;
    } else if (!strcmp(a, "--frequency-penalty")) {
        VALUE();
        if (!float_value(v, -100, 100, &f)) BAD();
        o->sp.frequency_penalty = f;
    } else if (!strcmp(a, "--repeat-last-n")) {
        VALUE();
        if (!cli_parse_int(v, 0, 1 << 30, &n)) BAD();
        o->sp.penalty_last_n = (int)n;
    } else if (!strcmp(a, "--seed")) {
        VALUE();
        char *end;
        errno = 0;
        unsigned long long s = strtoull(v, &end, 10);
        if (errno || end == v || *end || v[0] == '-') BAD();
        o->sp.seed = s;
        o->have_seed = 1;
    } else if (!strcmp(a, "--stop")) {
        VALUE();
        if (!*v) BAD();
        if (o->n_stops == 16) {
            cli_usage_error(cmd, "at most 16 --stop strings");
            return -1;
        }
        o->stops[o->n_stops++] = v;
    } else if (!strcmp(a, "--ctx")) {
        VALUE();
        if (!cli_parse_int(v, 1, 1 << 30, &n)) BAD();
        o->n_ctx = (int)n;
    } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
        VALUE();
        if (!cli_parse_int(v, 1, 256, &n)) BAD();
        o->n_threads = (int)n;
    } else if (!strcmp(a, "--numerics")) {
        VALUE();
        if (!cli_parse_numerics(v, cmd, &o->numerics)) return -1;
    } else {
        return 0;
    }
#undef VALUE
#undef BAD
    return 1;
}

/* ============================================================ interrupts */

static void on_sigint(int sig) {
    (void)sig;
    cli_interrupted = 1;
}

void cli_install_interrupt(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;   /* no SA_RESTART: a blocking read returns EINTR */
    sigaction(SIGINT, &sa, NULL);
}

/* ============================================================ generation */

/* Bytes at the end of text[0..len) that could begin one of the stop strings. */
static size_t stop_prefix_tail(const char *text, size_t len, const cli_gen_opts *o) {
    size_t hold = 0;
    for (int s = 0; s < o->n_stops; s++) {
        size_t sl = strlen(o->stops[s]);
        for (size_t k = sl - 1; k > hold; k--)
            if (k <= len && memcmp(text + len - k, o->stops[s], k) == 0) {
                hold = k;
                break;
            }
    }
    return hold;
}

/* Earliest occurrence of a stop string at or after `from`, or -1. */
static long find_stop(const char *text, size_t len, size_t from, const cli_gen_opts *o) {
    long best = -1;
    for (int s = 0; s < o->n_stops; s++) {
        size_t sl = strlen(o->stops[s]);
        for (size_t at = from; at + sl <= len; at++)
            if (memcmp(text + at, o->stops[s], sl) == 0) {
                if (best < 0 || (long)at < best) best = (long)at;
                break;
            }
    }
    return best;
}

typedef struct {
    char *buf;
    size_t len, cap, emitted;
} text_acc;

static int acc_append(text_acc *t, const char *s, size_t n) {
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 1024;
        while (cap < t->len + n + 1) cap *= 2;
        char *b = realloc(t->buf, cap);
        if (!b) return 0;
        t->buf = b;
        t->cap = cap;
    }
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = 0;
    return 1;
}

static void emit(text_acc *t, size_t upto, FILE *out) {
    if (upto > t->emitted) {
        fwrite(t->buf + t->emitted, 1, upto - t->emitted, out);
        fflush(out);
        t->emitted = upto;
    }
}

int cli_generate(gemma_session *s, gemma_sampler *smp, const gemma_tokenizer *tok, const gemma_model *m,
                 const int32_t *prompt, size_t n_prompt, const cli_gen_opts *o, FILE *out, char **reply,
                 cli_gen_stats *st) {
    gemma_error err;
    memset(st, 0, sizeof *st);
    *reply = NULL;
    int vocab = gemma_model_vocab_size(m);
    float *logits = malloc((size_t)vocab * sizeof *logits);
    gemma_detokenizer *dt = gemma_detokenizer_create(tok, GEMMA_DETOKENIZE_SKIP_SPECIAL);
    int32_t stops[16];
    size_t n_stop = gemma_model_stop_tokens(m, stops, 16);
    text_acc acc = {0};
    int rc = CLI_FAIL;
    char piece[GEMMA_DETOKENIZER_MAX_OUT + 8];
    if (!logits || !dt || !acc_append(&acc, "", 0)) {
        cli_error("out of memory");
        goto done;
    }
    n_generated_ids = 0;
    st->n_cached = gemma_session_position(s);
    st->n_prompt = (int)n_prompt;
    for (size_t i = 0; i < n_prompt; i++) gemma_sampler_accept(smp, prompt[i]);
    double t0 = cli_now();
    gemma_status est = o->image_embeds ? gemma_session_eval_mm(s, prompt, n_prompt, o->image_embeds,
                                                               o->n_image_embeds, GEMMA_LOGITS_LAST, logits, &err)
                                       : gemma_session_eval(s, prompt, n_prompt, GEMMA_LOGITS_LAST, logits, &err);
    if (est != GEMMA_OK) {
        cli_error("%s", err.message);
        goto done;
    }
    double t1 = cli_now();
    st->prompt_seconds = t1 - t0;

    for (;;) {
        if (cli_interrupted) {
            st->stopped_by = 3;
            break;
        }
        if (o->n_predict >= 0 && st->n_generated >= o->n_predict) break;
        int32_t t = gemma_sampler_sample(smp, logits);
        int is_stop = 0;
        for (size_t k = 0; k < n_stop; k++) is_stop |= stops[k] == t;
        if (is_stop) {
            st->stopped_by = 1;
            break;
        }
        st->n_generated++;
        if (st->n_generated == 1) st->first_token_ms = (cli_now() - t0) * 1e3;
        gemma_sampler_accept(smp, t);
        size_t n = gemma_detokenizer_push(dt, t, piece);
        if (!acc_append(&acc, piece, n)) {
            cli_error("out of memory");
            goto done;
        }
        size_t search_from = acc.emitted;
        long hit = o->n_stops ? find_stop(acc.buf, acc.len, search_from, o) : -1;
        if (hit >= 0) {
            emit(&acc, (size_t)hit, out);
            acc.len = (size_t)hit;
            acc.buf[acc.len] = 0;
            st->stopped_by = 2;
            break;
        }
        emit(&acc, acc.len - stop_prefix_tail(acc.buf, acc.len, o), out);
        if (gemma_session_position(s) >= gemma_session_context_size(s)) {
            st->stopped_by = 4;
            break;
        }
        if (gemma_session_eval(s, &t, 1, GEMMA_LOGITS_LAST, logits, &err) != GEMMA_OK) {
            cli_error("%s", err.message);
            goto done;
        }
        if (!remember_generated(t)) {
            cli_error("out of memory");
            goto done;
        }
    }
    if (st->stopped_by != 2) {
        size_t n = gemma_detokenizer_flush(dt, piece);
        acc_append(&acc, piece, n);
        emit(&acc, acc.len, out);
    }
    st->gen_seconds = cli_now() - t1;
    *reply = acc.buf;
    acc.buf = NULL;
    rc = CLI_OK;
done:
    free(acc.buf);
    gemma_detokenizer_free(dt);
    free(logits);
    return rc;
}

void cli_print_stats(const cli_gen_stats *st, FILE *f) {
    static const char *const why[] = {"length limit", "stop token", "stop string", "interrupted", "context full"};
    double ptps = st->prompt_seconds > 0 ? st->n_prompt / st->prompt_seconds : 0;
    double gtps = st->gen_seconds > 0 ? st->n_generated / st->gen_seconds : 0;
    fprintf(f, "[prompt: %d tokens (%d reused from cache), %.1f tok/s | generation: %d tokens, %.1f tok/s | "
               "time to first token: %.0f ms | stopped: %s]\n",
            st->n_prompt, st->n_cached, ptps, st->n_generated, gtps, st->first_token_ms, why[st->stopped_by]);
}

/* ================================================================ images */

int cli_encode_images(gemma_session *s, const gemma_model *m, const char *const *paths, int n, int pan_and_scan,
                      float **embeds, size_t *n_rows, int *crops) {
    *embeds = NULL;
    *n_rows = 0;
    if (n == 0) return CLI_OK;
    if (!gemma_model_has_vision(m))
        return cli_error("%s takes no images (a multimodal checkpoint has a vision tower; a GGUF needs --mmproj)",
                         gemma_model_path(m));
    gemma_preprocess_options po = gemma_preprocess_default_options();
    po.size = gemma_model_image_size(m);
    gemma_model_image_norm(m, po.mean, po.std);
    po.pan_and_scan = pan_and_scan;
    size_t per_image = (size_t)gemma_model_image_tokens(m) * (size_t)gemma_model_hidden_size(m);
    gemma_error err;
    for (int i = 0; i < n; i++) {
        gemma_image *img;
        if (gemma_image_load(paths[i], NULL, &img, &err) != GEMMA_OK) {
            free(*embeds);
            *embeds = NULL;
            return cli_error("%s", err.message);
        }
        size_t need = gemma_image_preprocess_floats(img, &po);
        int nc = gemma_image_n_crops(img, &po);
        float *pixels = malloc(need * sizeof(float));
        float *grown = realloc(*embeds, (*n_rows * (size_t)gemma_model_hidden_size(m) + (size_t)nc * per_image) *
                                            sizeof(float));
        int ok = pixels && grown && nc > 0;
        if (grown) *embeds = grown;
        if (ok && gemma_image_preprocess(img, &po, pixels, need, NULL, &nc, &err) != GEMMA_OK) ok = 0;
        if (ok && gemma_session_encode_images(s, pixels, nc, *embeds + *n_rows * (size_t)gemma_model_hidden_size(m),
                                              &err) != GEMMA_OK)
            ok = 0;
        gemma_image_free(img);
        free(pixels);
        if (!ok) {
            free(*embeds);
            *embeds = NULL;
            return cli_error("%s: %s", paths[i], pixels && grown ? err.message : "out of memory");
        }
        crops[i] = nc;
        *n_rows += (size_t)nc * (size_t)gemma_model_image_tokens(m);
    }
    return CLI_OK;
}

char *cli_expand_images(const gemma_model *m, const char *text, const int *crops, int n_images) {
    static const char boi[] = "<start_of_image>";
    /* pan-and-scan first: the i-th marker of an image with crops becomes Gemma3Processor's sentence */
    size_t cap = strlen(text) + 1;
    for (int i = 0; i < n_images; i++) cap += crops[i] > 1 ? 120 + (size_t)crops[i] * (sizeof boi) : 0;
    char *with_crops = malloc(cap), *w = with_crops;
    if (!with_crops) return NULL;
    const char *r = text;
    for (int i = 0; i < n_images; i++) {
        const char *hit = strstr(r, boi);
        if (!hit) break;
        memcpy(w, r, (size_t)(hit - r));
        w += hit - r;
        r = hit + sizeof boi - 1;
        if (crops[i] <= 1) {
            w += sprintf(w, "%s", boi);
            continue;
        }
        w += sprintf(w, "Here is the original image %s and here are some crops to help you see better", boi);
        for (int c = 1; c < crops[i]; c++) w += sprintf(w, " %s", boi);
    }
    strcpy(w, r);
    gemma_error err;
    size_t len = 0;
    int tokens = gemma_model_image_tokens(m), found = 0;
    gemma_chat_expand_images(with_crops, 0, tokens, NULL, 0, &len, &found, &err);
    char *out = malloc(len + 1);
    if (out && gemma_chat_expand_images(with_crops, 0, tokens, out, len + 1, &len, &found, &err) != GEMMA_OK) {
        cli_error("%s", err.message);
        free(out);
        out = NULL;
    }
    free(with_crops);
    return out;
}
