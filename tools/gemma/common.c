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

int cli_ids_push(cli_ids *ids, int32_t t) {
    if (ids->n == ids->cap) {
        size_t cap = ids->cap ? ids->cap * 2 : 256;
        int32_t *g = realloc(ids->ids, cap * sizeof *g);
        if (!g) return 0;
        ids->ids = g;
        ids->cap = cap;
    }
    ids->ids[ids->n++] = t;
    return 1;
}

void cli_ids_free(cli_ids *ids) {
    free(ids->ids);
    memset(ids, 0, sizeof *ids);
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
        cli_usage_error(cmd, "bad --numerics '%s' (auto, exact, llamacpp or int8)", v);
        return 0;
    }
    *out = (gemma_numerics)n;
    return 1;
}

int cli_parse_kv_type(const char *v, const char *cmd, gemma_kv_type *out) {
    int t = gemma_kv_type_parse(v);
    if (t < 0) {
        cli_usage_error(cmd, "bad --kv-type '%s' (auto, f32, f16 or bf16)", v);
        return 0;
    }
    *out = (gemma_kv_type)t;
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

char *cli_render_user_prompt(const gemma_chat_format *fmt, const char *system, const char *user, int n_images,
                             int flags) {
    gemma_chat_message msgs[2];
    gemma_chat_part parts[CLI_MAX_IMAGES + 1];
    if (n_images > CLI_MAX_IMAGES) n_images = CLI_MAX_IMAGES;
    for (int i = 0; i < n_images; i++) parts[i] = (gemma_chat_part){GEMMA_PART_IMAGE, NULL, 0};
    parts[n_images] = (gemma_chat_part){GEMMA_PART_TEXT, user, 0};
    size_t n = 0;
    if (system) msgs[n++] = (gemma_chat_message){.role = "system", .content = system};
    msgs[n++] = n_images ? (gemma_chat_message){.role = "user", .parts = parts, .n_parts = (size_t)n_images + 1}
                         : (gemma_chat_message){.role = "user", .content = user};
    gemma_error err;
    size_t len = 0;
    if (gemma_chat_render(fmt, msgs, n, flags, NULL, 0, &len, &err) != GEMMA_ERR_BUFFER) {
        cli_error("%s", err.message);
        return NULL;
    }
    char *s = malloc(len + 1);
    if (!s) {
        cli_error("out of memory");
        return NULL;
    }
    if (gemma_chat_render(fmt, msgs, n, flags, s, len + 1, &len, &err) != GEMMA_OK) {
        cli_error("%s", err.message);
        free(s);
        return NULL;
    }
    return s;
}

int cli_check_think(const cli_assets *a, const cli_gen_opts *o) {
    if (!o->think || (a->fmt && gemma_chat_format_has_thinking(a->fmt))) return 1;
    cli_error("--think: the chat format '%s' of %s has no thinking mode", a->fmt ? gemma_chat_format_name(a->fmt) : "none",
              gemma_model_path(a->model));
    return 0;
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
    "  --force-reply IDS     begin each reply with these token ids (comma-separated) instead of sampled\n"
    "                        ones; a stop id among them ends it (for tests, or to steer a reply's start)\n"
    "  --think               thinking mode of the chat template (Gemma 4: <|think|> in the system turn)\n"
    "  --hide-thinking       do not show the model's thought channels (default: on stderr, dimmed on a\n"
    "                        terminal; stdout gets the answer only); history never keeps them\n"
    "  --numerics MODE       auto (default: llamacpp for GGUF files, else exact), exact (f32 math on the\n"
    "                        weights as stored, like transformers / mlx-lm), llamacpp (GGUF only: llama.cpp's\n"
    "                        rounding step for step, so greedy output equals llama.cpp's) or int8 (MLX 4/8-bit\n"
    "                        matrices take int8 inputs and integer dots: faster, about 1.4 % higher perplexity)\n"
    CLI_KV_TYPE_HELP;

void cli_gen_defaults(cli_gen_opts *o) {
    memset(o, 0, sizeof *o);
    o->sp = gemma_sampler_default_params();
    o->n_predict = -1;
}

void cli_gen_free(cli_gen_opts *o) {
    free(o->forced);
    o->forced = NULL;
    o->n_forced = 0;
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
    } else if (!strcmp(a, "--kv-type")) {
        VALUE();
        if (!cli_parse_kv_type(v, cmd, &o->kv_type)) return -1;
    } else if (!strcmp(a, "--force-reply")) {
        VALUE();
        free(o->forced);
        o->forced = NULL;
        if (!cli_parse_tokens(v, &o->forced, &o->n_forced) || !o->n_forced) BAD();
    } else if (!strcmp(a, "--think")) {
        o->think = 1;
    } else if (!strcmp(a, "--hide-thinking")) {
        o->hide_thinking = 1;
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

size_t cli_stop_prefix_tail(const char *text, size_t len, const char *const *stops, int n_stops) {
    size_t hold = 0;
    for (int s = 0; s < n_stops; s++) {
        size_t sl = strlen(stops[s]);
        for (size_t k = sl - 1; k > hold; k--)
            if (k <= len && memcmp(text + len - k, stops[s], k) == 0) {
                hold = k;
                break;
            }
    }
    return hold;
}

long cli_find_stop(const char *text, size_t len, size_t from, const char *const *stops, int n_stops) {
    long best = -1;
    for (int s = 0; s < n_stops; s++) {
        size_t sl = strlen(stops[s]);
        for (size_t at = from; at + sl <= len; at++)
            if (memcmp(text + at, stops[s], sl) == 0) {
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

/* Hands the text up to `upto` that was not handed out yet to the sink; 0 if it wants no more. */
static int emit(text_acc *t, size_t upto, cli_emit_fn sink, void *user) {
    if (upto <= t->emitted) return 1;
    size_t from = t->emitted;
    t->emitted = upto;
    return sink ? sink(user, t->buf + from, upto - from) : 1;
}

/* Where cli_generate's text goes: all of it to out, or (split) the answer to
 * out and the thought channels to thought_out (NULL: hidden). */
typedef struct {
    FILE *out, *thought_out;
    gemma_channel_splitter *split;
    int dim, thought_line_open;   /* ANSI dim for thoughts; the last thought byte was not a newline */
    text_acc answer;              /* the answer text, when split */
} reply_sink;

static int sink_write(reply_sink *k, const char *answer, size_t na, const char *thought, size_t nt) {
    if (nt && k->thought_out) {
        if (k->dim) fputs("\033[2m", k->thought_out);
        fwrite(thought, 1, nt, k->thought_out);
        if (k->dim) fputs("\033[0m", k->thought_out);
        fflush(k->thought_out);
        k->thought_line_open = thought[nt - 1] != '\n';
    }
    if (na && k->thought_line_open && k->thought_out) {   /* the answer starts on a line of its own */
        fputc('\n', k->thought_out);
        k->thought_line_open = 0;
    }
    fwrite(answer, 1, na, k->out);
    fflush(k->out);
    return acc_append(&k->answer, answer, na);
}

/* a cli_emit_fn: the text through the channel splitter */
static int emit_split(void *user, const char *text, size_t len) {
    enum { CHUNK = 1024 };
    reply_sink *k = user;
    char answer[CHUNK + GEMMA_CHANNEL_HOLD], thought[CHUNK + GEMMA_CHANNEL_HOLD];
    int ok = 1;
    for (size_t at = 0; at < len; at += CHUNK) {
        size_t n = len - at < CHUNK ? len - at : CHUNK, na, nt = 0;
        gemma_channel_push(k->split, text + at, n, answer, &na, thought, &nt);
        ok &= sink_write(k, answer, na, thought, nt);
    }
    return ok;
}

static int sink_flush(reply_sink *k) {
    char answer[GEMMA_CHANNEL_HOLD], thought[GEMMA_CHANNEL_HOLD];
    size_t na, nt;
    gemma_channel_flush(k->split, answer, &na, thought, &nt);
    int ok = sink_write(k, answer, na, thought, nt);
    if (k->thought_line_open && k->thought_out) fputc('\n', k->thought_out);
    return ok;
}

static int emit_to_file(void *user, const char *text, size_t len) {
    FILE *out = user;
    fwrite(text, 1, len, out);
    fflush(out);
    return 1;
}

int cli_generate_to(gemma_session *s, gemma_sampler *smp, const gemma_tokenizer *tok, const gemma_model *m,
                    const int32_t *prompt, size_t n_prompt, const cli_gen_opts *o, cli_emit_fn sink, void *user,
                    char **reply, cli_ids *generated, cli_gen_stats *st, gemma_error *err) {
    memset(st, 0, sizeof *st);
    *reply = NULL;
    int vocab = gemma_model_vocab_size(m);
    float *logits = malloc((size_t)vocab * sizeof *logits);
    gemma_detokenizer *dt = gemma_detokenizer_create(tok, GEMMA_DETOKENIZE_SKIP_SPECIAL);
    int32_t stops[16];
    size_t n_stop = gemma_model_stop_tokens(m, stops, 16);
    text_acc acc = {0};
    gemma_status rc = GEMMA_ERR_NOMEM;
    char piece[GEMMA_DETOKENIZER_MAX_OUT + 16];   /* + a channel marker put back as text */
    /* thought channels: their marker tokens are special (not printed), so they are put back as text */
    int32_t ch_open = o->channels ? gemma_token_id(tok, "<|channel>") : -1;
    int32_t ch_close = o->channels ? gemma_token_id(tok, "<channel|>") : -1;
    if (!logits || !dt || !acc_append(&acc, "", 0)) goto oom;
    st->n_cached = gemma_session_position(s);
    st->n_prompt = (int)n_prompt;
    for (size_t i = 0; i < n_prompt && !o->penalize_reply_only; i++) gemma_sampler_accept(smp, prompt[i]);
    double t0 = cli_now();
    rc = o->image_embeds ? gemma_session_eval_mm(s, prompt, n_prompt, o->image_embeds, o->n_image_embeds,
                                                 GEMMA_LOGITS_LAST, logits, err)
                         : gemma_session_eval(s, prompt, n_prompt, GEMMA_LOGITS_LAST, logits, err);
    if (rc != GEMMA_OK) goto done;
    double t1 = cli_now();
    st->prompt_seconds = t1 - t0;

    for (;;) {
        if (o->cancel && *o->cancel) {
            st->stopped_by = 3;
            break;
        }
        if (o->n_predict >= 0 && st->n_generated >= o->n_predict) break;
        size_t step = (size_t)st->n_generated;
        int32_t t = step < o->n_forced ? o->forced[step] : gemma_sampler_sample(smp, logits);
        if (t < 0 || t >= vocab) {
            rc = GEMMA_ERR_ARG;
            if (err) {
                err->code = rc;
                snprintf(err->message, sizeof err->message, "--force-reply: id %d is outside the vocabulary [0, %d)",
                         (int)t, vocab);
            }
            goto done;
        }
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
        const char *marker = t == ch_open ? "<|channel>" : t == ch_close ? "<channel|>" : NULL;
        if (marker) n += (size_t)snprintf(piece + n, sizeof piece - n, "%s", marker);
        rc = GEMMA_ERR_NOMEM;
        if (!acc_append(&acc, piece, n)) goto oom;
        long hit = o->n_stops ? cli_find_stop(acc.buf, acc.len, acc.emitted, o->stops, o->n_stops) : -1;
        if (hit >= 0) {
            emit(&acc, (size_t)hit, sink, user);
            acc.len = (size_t)hit;
            acc.buf[acc.len] = 0;
            st->stopped_by = 2;
            break;
        }
        if (!emit(&acc, acc.len - cli_stop_prefix_tail(acc.buf, acc.len, o->stops, o->n_stops), sink, user)) {
            st->stopped_by = 3;
            break;
        }
        if (gemma_session_position(s) >= gemma_session_context_size(s)) {
            st->stopped_by = 4;
            break;
        }
        rc = gemma_session_eval(s, &t, 1, GEMMA_LOGITS_LAST, logits, err);
        if (rc != GEMMA_OK) goto done;
        rc = GEMMA_ERR_NOMEM;
        if (generated && !cli_ids_push(generated, t)) goto oom;
    }
    if (st->stopped_by != 2) {
        size_t n = gemma_detokenizer_flush(dt, piece);
        acc_append(&acc, piece, n);
        emit(&acc, acc.len, sink, user);
    }
    st->gen_seconds = cli_now() - t1;
    *reply = acc.buf;
    acc.buf = NULL;
    rc = GEMMA_OK;
    goto done;
oom:
    if (err) {
        err->code = GEMMA_ERR_NOMEM;
        snprintf(err->message, sizeof err->message, "out of memory");
    }
done:
    free(acc.buf);
    gemma_detokenizer_free(dt);
    free(logits);
    return rc;
}

int cli_generate(gemma_session *s, gemma_sampler *smp, const gemma_tokenizer *tok, const gemma_model *m,
                 const int32_t *prompt, size_t n_prompt, const cli_gen_opts *o, FILE *out, char **reply,
                 cli_ids *generated, cli_gen_stats *st) {
    gemma_error err;
    if (!o->channels) {
        if (cli_generate_to(s, smp, tok, m, prompt, n_prompt, o, emit_to_file, out, reply, generated, st, &err) !=
            GEMMA_OK)
            return cli_error("%s", err.message);
        return CLI_OK;
    }
    /* thought channels go to stderr (dimmed on a terminal) or nowhere; *reply is the answer alone,
     * as the template keeps it in the history */
    reply_sink k = {.out = out, .thought_out = o->hide_thinking ? NULL : stderr};
    k.split = gemma_channel_splitter_create();
    k.dim = k.thought_out && isatty(fileno(stderr));
    char *full = NULL;
    int rc = CLI_FAIL;
    if (!k.split || !acc_append(&k.answer, "", 0)) {
        cli_error("out of memory");
    } else if (cli_generate_to(s, smp, tok, m, prompt, n_prompt, o, emit_split, &k, &full, generated, st, &err) !=
               GEMMA_OK) {
        cli_error("%s", err.message);
    } else if (!sink_flush(&k)) {
        cli_error("out of memory");
    } else {
        *reply = k.answer.buf;
        k.answer.buf = NULL;
        rc = CLI_OK;
    }
    free(full);
    free(k.answer.buf);
    gemma_channel_splitter_free(k.split);
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
