/* common.h - what several subcommands share: loading a model with its
 * tokenizer and chat format, the sampling flags, and the generation loop
 * that streams a reply. */
#ifndef GEMMA_CLI_COMMON_H
#define GEMMA_CLI_COMMON_H

#include <signal.h>
#include <stdio.h>

#include "gemma.h"

typedef struct {
    gemma_model *model;
    gemma_tokenizer *tok;
    gemma_chat_format *fmt;   /* NULL when the model has no chat template */
} cli_assets;

/* Load model_dir with its tokenizer.json and chat template; prints the error. */
/* The model used when -m is not given: $GEMMA_MODEL, else the one
 * scripts/setup.sh installs (models/gemma3-270m beside the build folder, or
 * under the current directory).  NULL when there is none. */
const char *cli_default_model(void);
/* A folder of the repository the binary was built in (or of the current
 * directory), such as data/pubmedqa; rel itself when neither has it. */
const char *cli_repo_path(const char *rel);
/* model_dir if given, else the default; NULL (after a usage message) if neither. */
const char *cli_model_or_default(const char *model_dir, const char *cmd);

int cli_load_assets(const char *model_dir, gemma_numerics numerics, cli_assets *a, int need_chat);
/* The same with an mmproj file for a GGUF text model (NULL: none or the folder's). */
int cli_load_assets_mm(const char *model_dir, gemma_numerics numerics, const char *mmproj, cli_assets *a,
                       int need_chat);
#define CLI_MAX_IMAGES 16
/* --numerics NAME -> *out; 0 (usage error printed) for an unknown name. */
int cli_parse_numerics(const char *v, const char *cmd, gemma_numerics *out);
/* --kv-type NAME -> *out, the same way. */
int cli_parse_kv_type(const char *v, const char *cmd, gemma_kv_type *out);
/* The --kv-type line of the help texts. */
#define CLI_KV_TYPE_HELP \
    "  --kv-type TYPE        KV cache storage: auto (default: f16 with llamacpp or int8 numerics, else\n" \
    "                        f32), f32, f16 or bf16 (half the cache memory; keys and values rounded)\n"
void cli_free_assets(cli_assets *a);

/* Sampling and generation flags shared by run and chat. */
typedef struct {
    gemma_sampler_params sp;
    unsigned set;             /* which sampling fields the flags gave (CLI_SET_*) */
    int have_seed;
    int n_predict;            /* max new tokens; -1 = until a stop token or the context ends */
    const char *stops[16];    /* stop strings */
    int n_stops;
    int n_ctx, n_threads;
    gemma_numerics numerics;  /* --numerics (0 = auto) */
    gemma_kv_type kv_type;    /* --kv-type (0 = auto) */
    const float *image_embeds;/* rows for the prompt's image tokens (gemma_session_eval_mm), or NULL */
    size_t n_image_embeds;
    const volatile sig_atomic_t *cancel;   /* generation stops when *cancel becomes non-zero (NULL: never) */
    int penalize_reply_only;  /* the penalties see only generated tokens, not the prompt (OpenAI's) */
    int think;                /* --think: render with the template's thinking mode */
    int hide_thinking;        /* --hide-thinking: thought channels are not shown */
    int channels;             /* the format has thought channels: split them from the answer (set by the caller) */
    int32_t *forced;          /* --force-reply: the reply's first ids, taken instead of sampled ones (malloc'd) */
    size_t n_forced;
} cli_gen_opts;

enum { CLI_SET_TEMP = 1, CLI_SET_TOP_K = 2, CLI_SET_TOP_P = 4, CLI_SET_MIN_P = 8 };
void cli_gen_defaults(cli_gen_opts *o);
void cli_gen_free(cli_gen_opts *o);
/* Fill the sampling fields the flags did not set from the model's defaults. */
void cli_gen_model_defaults(cli_gen_opts *o, const gemma_model *m);
/* If argv[*i] is a sampling/generation flag, consume it (and its value) and
 * return 1; return 0 if it is not one; -1 on a bad value (error printed). */
int cli_parse_gen_flag(int argc, char **argv, int *i, const char *cmd, cli_gen_opts *o);
extern const char *const cli_gen_help;

/* Ctrl-C handling: the first ^C during a reply stops that reply. */
void cli_install_interrupt(void);
extern volatile sig_atomic_t cli_interrupted;

typedef struct {
    int n_prompt, n_cached;          /* tokens evaluated for the prompt, tokens reused from the cache */
    int n_generated;
    double prompt_seconds, gen_seconds, first_token_ms;
    int stopped_by;                  /* 0 limit, 1 stop token, 2 stop string, 3 interrupted, 4 context full */
} cli_gen_stats;

/* A growable list of token ids. */
typedef struct {
    int32_t *ids;
    size_t n, cap;
} cli_ids;
int cli_ids_push(cli_ids *ids, int32_t t);   /* 0 when out of memory */
void cli_ids_free(cli_ids *ids);

/* Receives reply text as it becomes final (never half a UTF-8 character, never
 * a possible beginning of a stop string); returns 0 to stop generating. */
typedef int (*cli_emit_fn)(void *user, const char *text, size_t len);

/* Evaluate `prompt` (appended to what the session holds), then sample and
 * hand the reply to `sink` until a stop token/string, n_predict, the context
 * end, *o->cancel or a sink that wants no more.  The reply text (all that was
 * handed out) goes to *reply (malloc'd); the ids sampled and evaluated into
 * the cache are appended to *generated (if not NULL).  Reentrant: one call per
 * session at a time, any number of sessions at once. */
int cli_generate_to(gemma_session *s, gemma_sampler *smp, const gemma_tokenizer *tok, const gemma_model *m,
                    const int32_t *prompt, size_t n_prompt, const cli_gen_opts *o, cli_emit_fn sink, void *user,
                    char **reply, cli_ids *generated, cli_gen_stats *stats, gemma_error *err);
/* The same, streaming to `out`; errors are printed.  Returns CLI_OK / CLI_FAIL.
 * With o->channels, thought channels ("<|channel>thought\n...<channel|>") go
 * to stderr instead (dimmed on a terminal; not at all with o->hide_thinking),
 * and *reply is the answer alone, as the template keeps it in the history. */
int cli_generate(gemma_session *s, gemma_sampler *smp, const gemma_tokenizer *tok, const gemma_model *m,
                 const int32_t *prompt, size_t n_prompt, const cli_gen_opts *o, FILE *out, char **reply,
                 cli_ids *generated, cli_gen_stats *stats);
/* Stop strings in a growing text: the earliest match starting at or after
 * `from` (-1: none), and how many bytes at the end could begin one. */
long cli_find_stop(const char *text, size_t len, size_t from, const char *const *stops, int n_stops);
size_t cli_stop_prefix_tail(const char *text, size_t len, const char *const *stops, int n_stops);
void cli_print_stats(const cli_gen_stats *st, FILE *f);

/* Images of a prompt.  cli_encode_images decodes each file, preprocesses it
 * for the model (pan-and-scan crops if asked) and runs the vision tower with
 * the session's threads: *embeds (malloc'd) gets n_rows rows of hidden floats,
 * crops[i] how many images file i became.  cli_expand_images then turns the
 * rendered prompt's i-th <start_of_image> into that image's token sequence
 * (with the processor's pan-and-scan sentence when it has crops); malloc'd. */
int cli_encode_images(gemma_session *s, const gemma_model *m, const char *const *paths, int n, int pan_and_scan,
                      float **embeds, size_t *n_rows, int *crops);
char *cli_expand_images(const gemma_model *m, const char *text, const int *crops, int n_images);

/* The chat prompt of one user message (after n_images images) with an
 * optional system prompt; flags as gemma_chat_render's.  malloc'd, NULL after
 * printing the error. */
char *cli_render_user_prompt(const gemma_chat_format *fmt, const char *system, const char *user, int n_images,
                             int flags);
/* --think needs a format with a thinking mode: 1 if fine, else 0 after the error. */
int cli_check_think(const cli_assets *a, const cli_gen_opts *o);

/* Tokenize text (no BOS added) into a malloc'd array. */
int cli_tokenize(const gemma_tokenizer *tok, const char *text, size_t len, int flags, int32_t **ids, size_t *n);
double cli_now(void);
/* Read a stream to its end (NUL-terminated, malloc'd; *len without the NUL if len); NULL when out of memory. */
char *cli_read_stream(FILE *f, size_t *len);

#endif
