/* cmd_chat.c - `gemma chat`: an interactive multi-turn conversation.
 *
 * The KV cache is kept between turns: each turn renders and tokenizes the
 * whole conversation, keeps the longest prefix of ids already in the cache
 * (rewinding past a reply's tail that the template re-renders differently,
 * e.g. trimmed whitespace), and evaluates only the rest.  ^C stops the current reply, not the program; EOF (^D) or /quit
 * ends it.  Works the same with piped stdin (no prompts are printed then).
 * /image PATH encodes a picture at once and attaches it to the next message;
 * its embeddings stay with the conversation, so an image already in the
 * cache is never encoded or evaluated again.  A Gemma 4 reply's thought
 * channel is shown on stderr (--hide-thinking: not at all) and, as the
 * template does, left out of the history the next turn renders. */
#include "args.h"
#include "common.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const help_head =
    "usage: gemma chat [-m MODEL] [options]\n"
    "\n"
    "Type a message and press Enter.  Commands: /image PATH (show the model a picture with your next\n"
    "message), /reset (forget the conversation), /system TEXT (set the system prompt and start over),\n"
    "/help, /quit.  ^C stops a reply.\n"
    "\n"
    "  -m, --model PATH      a model directory (config.json + safetensors, or one .gguf) or a .gguf file;\n"
    "                        default: $GEMMA_MODEL, else models/gemma3-270m (scripts/setup.sh installs it)\n"
    "  --system TEXT         a system prompt\n"
    "  --mmproj FILE         llama.cpp's vision file for a GGUF text model\n"
    "  --pan-and-scan        also show the model crops of long images\n"
    "  -q, --quiet           no speed statistics after each reply\n";

#define MAX_TURNS 4096

#define MAX_IMAGES 256

typedef struct {
    char *role;
    char *content;
    int n_images;        /* images shown with this message (before its text) */
} turn;

typedef struct {
    turn turns[MAX_TURNS];
    int n;
    char *system;
    int32_t *hist;       /* the ids in the KV cache, in order */
    size_t n_hist, cap_hist;
    /* images of the conversation, in order: their embeddings and crop counts */
    float *embeds;
    size_t n_rows;
    int crops[MAX_IMAGES], n_images, pending;   /* pending: attached to the next message */
} conversation;

static void conv_clear(conversation *c) {
    for (int i = 0; i < c->n; i++) {
        free(c->turns[i].role);
        free(c->turns[i].content);
    }
    c->n = 0;
    c->n_hist = 0;
    free(c->embeds);
    c->embeds = NULL;
    c->n_rows = 0;
    c->n_images = c->pending = 0;
}

/* /image PATH: encode now (errors show at once), attach to the next message. */
static void add_image(conversation *c, gemma_session *s, const gemma_model *m, const char *path, int pan_and_scan) {
    if (c->n_images == MAX_IMAGES) {
        cli_error("at most %d images per conversation; /reset", MAX_IMAGES);
        return;
    }
    float *rows;
    size_t n_rows;
    int crops;
    if (cli_encode_images(s, m, &path, 1, pan_and_scan, &rows, &n_rows, &crops) != CLI_OK) return;
    size_t hidden = (size_t)gemma_model_hidden_size(m);
    float *all = realloc(c->embeds, (c->n_rows + n_rows) * hidden * sizeof(float));
    if (!all) {
        free(rows);
        cli_error("out of memory");
        return;
    }
    memcpy(all + c->n_rows * hidden, rows, n_rows * hidden * sizeof(float));
    free(rows);
    c->embeds = all;
    c->n_rows += n_rows;
    c->crops[c->n_images++] = crops;
    c->pending++;
    fprintf(stdout, "(image %d attached to your next message: %s)\n", c->n_images, path);
}

static int hist_set(conversation *c, const int32_t *a, size_t na, const int32_t *b, size_t nb) {
    if (na + nb > c->cap_hist) {
        int32_t *h = realloc(c->hist, (na + nb) * sizeof *h);
        if (!h) return 0;
        c->hist = h;
        c->cap_hist = na + nb;
    }
    memmove(c->hist, a, na * sizeof *a);
    memcpy(c->hist + na, b, nb * sizeof *b);
    c->n_hist = na + nb;
    return 1;
}

static int conv_add(conversation *c, const char *role, const char *content, int n_images) {
    if (c->n == MAX_TURNS) return 0;
    c->turns[c->n].role = strdup(role);
    c->turns[c->n].content = strdup(content);
    c->turns[c->n].n_images = n_images;
    c->n++;
    return 1;
}

/* The whole conversation as prompt text, image placeholders expanded. */
static char *render(const gemma_chat_format *fmt, const gemma_model *m, const conversation *c, int think) {
    static gemma_chat_message msgs[MAX_TURNS + 1];
    static gemma_chat_part parts[MAX_IMAGES + MAX_TURNS];
    size_t n = 0, np = 0;
    if (c->system) msgs[n++] = (gemma_chat_message){.role = "system", .content = c->system};
    for (int i = 0; i < c->n; i++) {
        const turn *t = &c->turns[i];
        if (!t->n_images) {
            msgs[n++] = (gemma_chat_message){.role = t->role, .content = t->content};
            continue;
        }
        gemma_chat_part *p = parts + np;
        for (int k = 0; k < t->n_images; k++) parts[np++] = (gemma_chat_part){GEMMA_PART_IMAGE, NULL, 0};
        parts[np++] = (gemma_chat_part){GEMMA_PART_TEXT, t->content, 0};
        msgs[n++] = (gemma_chat_message){.role = t->role, .parts = p, .n_parts = (size_t)t->n_images + 1};
    }
    gemma_error err;
    size_t len = 0;
    int flags = GEMMA_CHAT_GENERATION_PROMPT | (think ? GEMMA_CHAT_THINKING : 0);
    gemma_chat_render(fmt, msgs, n, flags, NULL, 0, &len, &err);
    char *s = malloc(len + 1);
    if (s && gemma_chat_render(fmt, msgs, n, flags, s, len + 1, &len, &err) != GEMMA_OK) {
        cli_error("%s", err.message);
        free(s);
        return NULL;
    }
    if (!s || !c->n_images) return s;
    char *expanded = cli_expand_images(m, s, c->crops, c->n_images);
    free(s);
    return expanded;
}

/* One line from stdin without the newline; NULL on EOF.  ^C at the prompt
 * (EINTR) gives an empty line. */
static char *read_line(int *interrupted) {
    size_t cap = 256, n = 0;
    char *buf = malloc(cap);
    *interrupted = 0;
    for (;;) {
        errno = 0;
        int ch = fgetc(stdin);
        if (ch == EOF) {
            if (errno == EINTR || cli_interrupted) {
                clearerr(stdin);
                cli_interrupted = 0;
                *interrupted = 1;
                buf[0] = 0;
                return buf;
            }
            if (n == 0) {
                free(buf);
                return NULL;
            }
            break;
        }
        if (ch == '\n') break;
        if (n + 2 > cap) {
            char *b = realloc(buf, cap *= 2);
            if (!b) {
                free(buf);
                return NULL;
            }
            buf = b;
        }
        buf[n++] = (char)ch;
    }
    if (n && buf[n - 1] == '\r') n--;
    buf[n] = 0;
    return buf;
}

int cmd_chat(int argc, char **argv) {
    const char *model_dir = NULL, *system = NULL, *mmproj = NULL;
    int quiet = 0, pan_and_scan = 0;
    cli_gen_opts go;
    cli_gen_defaults(&go);
    go.cancel = &cli_interrupted;
    cli_ids generated = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(help_head, stdout);
            fputs(cli_gen_help, stdout);
            return CLI_OK;
        }
        int r = cli_parse_gen_flag(argc, argv, &i, "chat", &go);
        if (r < 0) return CLI_USAGE;
        if (r > 0) continue;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!(model_dir = cli_value(argc, argv, &i, "chat"))) return CLI_USAGE;
        } else if (!strcmp(a, "--system")) {
            if (!(system = cli_value(argc, argv, &i, "chat"))) return CLI_USAGE;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            quiet = 1;
        } else if (!strcmp(a, "--mmproj")) {
            if (!(mmproj = cli_value(argc, argv, &i, "chat"))) return CLI_USAGE;
        } else if (!strcmp(a, "--pan-and-scan")) {
            pan_and_scan = 1;
        } else {
            return cli_usage_error("chat", "unknown option '%s'", a);
        }
    }
    if (!(model_dir = cli_model_or_default(model_dir, "chat"))) return CLI_USAGE;

    cli_assets a;
    if (cli_load_assets_mm(model_dir, go.numerics, mmproj, &a, 1) != CLI_OK) return CLI_FAIL;
    cli_gen_model_defaults(&go, a.model);
    if (!cli_check_think(&a, &go)) {
        cli_free_assets(&a);
        return CLI_FAIL;
    }
    go.channels = gemma_chat_format_has_thinking(a.fmt);
    int tty = isatty(STDIN_FILENO);
    int rc = CLI_FAIL;
    gemma_session *s = NULL;
    gemma_sampler *smp = NULL;
    gemma_error err;
    conversation *c = calloc(1, sizeof *c);
    gemma_session_options so = gemma_session_default_options();
    so.n_ctx = go.n_ctx;
    so.n_threads = go.n_threads;
    so.kv_type = go.kv_type;
    if (!c || gemma_session_create(a.model, &so, &s, &err) != GEMMA_OK ||
        gemma_sampler_create(&go.sp, gemma_model_vocab_size(a.model), &smp, &err) != GEMMA_OK) {
        cli_error("%s", c ? err.message : "out of memory");
        goto done;
    }
    c->system = system ? strdup(system) : NULL;
    conv_clear(c);
    cli_install_interrupt();
    if (tty) fprintf(stderr, "gemma chat: %s\n/help for commands, ^D to quit.\n", gemma_model_describe(a.model));

    for (;;) {
        if (tty) {
            fputs("> ", stdout);
            fflush(stdout);
        }
        int intr;
        char *line = read_line(&intr);
        if (!line) break;
        if (intr) {
            if (tty) fputs("\n(^D or /quit to leave)\n", stdout);
            free(line);
            continue;
        }
        if (!line[0]) {
            free(line);
            continue;
        }
        if (line[0] == '/') {
            if (!strcmp(line, "/quit") || !strcmp(line, "/exit")) {
                free(line);
                break;
            } else if (!strcmp(line, "/reset")) {
                conv_clear(c);
                gemma_session_reset(s);
                gemma_sampler_reset(smp);
                fputs("(conversation reset)\n", stdout);
            } else if (!strncmp(line, "/system", 7) && (line[7] == ' ' || !line[7])) {
                free(c->system);
                c->system = line[7] ? strdup(line + 8) : NULL;
                conv_clear(c);
                gemma_session_reset(s);
                gemma_sampler_reset(smp);
                fputs(c->system ? "(system prompt set; conversation reset)\n" : "(system prompt cleared)\n", stdout);
            } else if (!strncmp(line, "/image ", 7) && line[7]) {
                add_image(c, s, a.model, line + 7, pan_and_scan);
            } else if (!strcmp(line, "/help")) {
                fputs(help_head + strlen("usage: gemma chat [-m MODEL] [options]\n\n"), stdout);
            } else {
                fprintf(stdout, "unknown command %s (/help)\n", line);
            }
            fflush(stdout);
            free(line);
            continue;
        }

        if (!conv_add(c, "user", line, c->pending)) {
            cli_error("too many turns; /reset");
            free(line);
            continue;
        }
        free(line);
        int pending = c->pending;
        c->pending = 0;
        char *full = render(a.fmt, a.model, c, go.think);
        if (!full) goto done;
        int32_t *ids = NULL;
        size_t n_ids = 0;
        int tok_ok = cli_tokenize(a.tok, full, strlen(full), 0, &ids, &n_ids) == CLI_OK;
        free(full);
        if (!tok_ok) goto done;
        /* keep what the cache shares with the new prompt; evaluate the rest */
        size_t keep = 0;
        while (keep < c->n_hist && keep < n_ids && c->hist[keep] == ids[keep]) keep++;
        if (keep == n_ids) keep--;   /* evaluate at least one token to get logits */
        int32_t image_token = gemma_model_image_token(a.model);
        while (keep > 0 && ids[keep] == image_token && ids[keep - 1] == image_token) keep--;   /* whole runs only */
        if ((int)keep != gemma_session_position(s) && gemma_session_rewind(s, (int)keep, &err) != GEMMA_OK) {
            gemma_session_reset(s);   /* too far back for the sliding window rings */
            keep = 0;
        }
        if (n_ids >= (size_t)gemma_session_context_size(s)) {
            cli_error("the conversation no longer fits the context (%d tokens); /reset to start over",
                      gemma_session_context_size(s));
            c->n--;   /* drop the turn that did not fit (its images stay attached for the next one) */
            free(c->turns[c->n].role);
            free(c->turns[c->n].content);
            c->pending = pending;
            free(ids);
            continue;
        }
        /* the image rows of what is evaluated: those of the image tokens from keep on */
        size_t skip = 0;
        for (size_t i = 0; i < keep; i++) skip += ids[i] == image_token;
        go.image_embeds = c->n_images ? c->embeds + skip * (size_t)gemma_model_hidden_size(a.model) : NULL;
        go.n_image_embeds = c->n_images ? c->n_rows - skip : 0;
        char *reply = NULL;
        cli_gen_stats st;
        cli_interrupted = 0;
        generated.n = 0;
        int ok = cli_generate(s, smp, a.tok, a.model, ids + keep, n_ids - keep, &go, stdout, &reply, &generated,
                              &st) == CLI_OK;
        fputc('\n', stdout);
        fflush(stdout);
        if (!ok || !hist_set(c, ids, n_ids, generated.ids, generated.n)) {
            free(ids);
            free(reply);
            goto done;
        }
        free(ids);
        if (st.stopped_by == 3) fputs("(stopped)\n", stdout);
        cli_interrupted = 0;
        if (!quiet) cli_print_stats(&st, stderr);
        conv_add(c, "assistant", reply, 0);
        free(reply);
    }
    rc = CLI_OK;
done:
    if (c) {
        conv_clear(c);
        free(c->hist);
        free(c->system);
        free(c);
    }
    cli_ids_free(&generated);
    gemma_sampler_free(smp);
    gemma_session_free(s);
    cli_free_assets(&a);
    cli_gen_free(&go);
    return rc;
}
