/* cmd_run.c - `gemma run`: one prompt in, a streamed reply out.
 * Wraps the prompt in the model's chat format (unless --raw), prints the reply
 * as it is generated, then prompt/generation speed and time to first token
 * on stderr.  A Gemma 4 reply's thought channel goes to stderr (or nowhere
 * with --hide-thinking), so stdout holds the answer alone. */
#include "args.h"
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const help_head =
    "usage: gemma run [-m MODEL] -p PROMPT [options]\n"
    "\n"
    "  -m, --model PATH      a model directory (config.json + safetensors, or one .gguf) or a .gguf file;\n"
    "                        default: $GEMMA_MODEL, else models/gemma3-270m (scripts/setup.sh installs it)\n"
    "  -p, --prompt TEXT     the user message ('-' reads it from stdin)\n"
    "  --system TEXT         a system prompt\n"
    "  --raw                 no chat format: <bos> + PROMPT as plain text\n"
    "  --image FILE          an image for the model to look at, placed before the prompt (may repeat;\n"
    "                        PNG, JPEG, BMP, GIF, ...; needs a multimodal model, a GGUF one with --mmproj)\n"
    "  --mmproj FILE         llama.cpp's vision file for a GGUF text model\n"
    "  --pan-and-scan        also show the model crops of long images (Gemma3Processor's pan and scan)\n";

/* The prompt text: chat-formatted (the images first, then the text), or <bos> + raw text. */
static char *build_prompt(const cli_assets *a, const char *system, const char *user, int raw, int n_images,
                          int think) {
    if (!raw)
        return cli_render_user_prompt(a->fmt, system, user, n_images,
                                      GEMMA_CHAT_GENERATION_PROMPT | (think ? GEMMA_CHAT_THINKING : 0));
    size_t n = strlen(user);
    char *s = malloc(n + 8);
    if (s) snprintf(s, n + 8, "<bos>%s", user);
    return s;
}

int cmd_run(int argc, char **argv) {
    const char *model_dir = NULL, *prompt = NULL, *system = NULL, *mmproj = NULL, *images[CLI_MAX_IMAGES];
    int raw = 0, n_images = 0, pan_and_scan = 0;
    cli_gen_opts go;
    cli_gen_defaults(&go);
    go.cancel = &cli_interrupted;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(help_head, stdout);
            fputs(cli_gen_help, stdout);
            return CLI_OK;
        }
        int r = cli_parse_gen_flag(argc, argv, &i, "run", &go);
        if (r < 0) return CLI_USAGE;
        if (r > 0) continue;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!(model_dir = cli_value(argc, argv, &i, "run"))) return CLI_USAGE;
        } else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) {
            if (!(prompt = cli_value(argc, argv, &i, "run"))) return CLI_USAGE;
        } else if (!strcmp(a, "--system")) {
            if (!(system = cli_value(argc, argv, &i, "run"))) return CLI_USAGE;
        } else if (!strcmp(a, "--raw")) {
            raw = 1;
        } else if (!strcmp(a, "--image")) {
            if (n_images == CLI_MAX_IMAGES) return cli_usage_error("run", "at most %d --image files", CLI_MAX_IMAGES);
            if (!(images[n_images++] = cli_value(argc, argv, &i, "run"))) return CLI_USAGE;
        } else if (!strcmp(a, "--mmproj")) {
            if (!(mmproj = cli_value(argc, argv, &i, "run"))) return CLI_USAGE;
        } else if (!strcmp(a, "--pan-and-scan")) {
            pan_and_scan = 1;
        } else {
            return cli_usage_error("run", "unknown option '%s'", a);
        }
    }
    if (!(model_dir = cli_model_or_default(model_dir, "run"))) return CLI_USAGE;
    if (!prompt) return cli_usage_error("run", "missing -p PROMPT");
    if (raw && system) return cli_usage_error("run", "--system needs the chat format (drop --raw)");
    if (raw && n_images) return cli_usage_error("run", "--image needs the chat format (drop --raw)");
    if (raw && go.think) return cli_usage_error("run", "--think needs the chat format (drop --raw)");

    cli_assets a;
    if (cli_load_assets_mm(model_dir, go.numerics, mmproj, &a, !raw) != CLI_OK) return CLI_FAIL;
    cli_gen_model_defaults(&go, a.model);
    if (!cli_check_think(&a, &go)) {
        cli_free_assets(&a);
        return CLI_FAIL;
    }
    go.channels = !raw && gemma_chat_format_has_thinking(a.fmt);

    int rc = CLI_FAIL, crops[CLI_MAX_IMAGES];
    char *stdin_text = NULL, *text = NULL, *expanded = NULL, *reply = NULL;
    float *embeds = NULL;
    size_t n_rows = 0;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    gemma_session *s = NULL;
    gemma_sampler *smp = NULL;
    gemma_error err;
    if (strcmp(prompt, "-") == 0) {
        if (!(stdin_text = cli_read_stream(stdin, NULL))) {
            cli_error("cannot read the prompt from stdin");
            goto done;
        }
        prompt = stdin_text;
    }
    gemma_session_options so = gemma_session_default_options();
    so.n_ctx = go.n_ctx;
    so.n_threads = go.n_threads;
    so.kv_type = go.kv_type;
    if (gemma_session_create(a.model, &so, &s, &err) != GEMMA_OK) {
        cli_error("%s", err.message);
        goto done;
    }
    if (cli_encode_images(s, a.model, images, n_images, pan_and_scan, &embeds, &n_rows, crops) != CLI_OK) goto done;
    if (!(text = build_prompt(&a, system, prompt, raw, n_images, go.think))) goto done;
    if (n_images && !(expanded = cli_expand_images(a.model, text, crops, n_images))) goto done;
    go.image_embeds = embeds;
    go.n_image_embeds = n_rows;
    if (cli_tokenize(a.tok, expanded ? expanded : text, strlen(expanded ? expanded : text), 0, &ids, &n_ids) != CLI_OK)
        goto done;
    if (n_ids >= (size_t)gemma_session_context_size(s)) {
        cli_error("the prompt is %zu tokens; the context holds %d (use --ctx)", n_ids, gemma_session_context_size(s));
        goto done;
    }
    if (gemma_sampler_create(&go.sp, gemma_model_vocab_size(a.model), &smp, &err) != GEMMA_OK) {
        cli_error("%s", err.message);
        goto done;
    }
    cli_install_interrupt();
    cli_gen_stats st;
    if (cli_generate(s, smp, a.tok, a.model, ids, n_ids, &go, stdout, &reply, NULL, &st) != CLI_OK) goto done;
    fputc('\n', stdout);
    fflush(stdout);
    cli_print_stats(&st, stderr);
    fprintf(stderr, "[seed %llu]\n", (unsigned long long)go.sp.seed);
    rc = CLI_OK;
done:
    free(reply);
    free(ids);
    free(text);
    free(expanded);
    free(embeds);
    free(stdin_text);
    gemma_sampler_free(smp);
    gemma_session_free(s);
    cli_free_assets(&a);
    cli_gen_free(&go);
    return rc;
}
