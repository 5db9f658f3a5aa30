/* cmd_logits.c - `gemma logits`: the parity interface.
 *
 * Runs the first K tokens as one batched prefill, then feeds the rest one at
 * a time through the KV cache, and writes float32 little-endian logits for
 * every position ([n_tokens, vocab], row-major).  Reference scripts and tests
 * compare this file with transformers / mlx-lm output, so keep it stable. */
#include "args.h"
#include "common.h"
#include "gemma.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const help =
    "usage: gemma logits -m MODEL_DIR --tokens ID,ID,... -o OUT.f32 [options]\n"
    "\n"
    "  -m, --model DIR      model directory (config.json + safetensors)\n"
    "  --tokens LIST        token ids, comma or space separated\n"
    "  --tokens-file FILE   read the token ids from a file instead\n"
    "  --prefill K          first K tokens in one batched prefill, the rest one by one\n"
    "                       (default: all tokens in one prefill)\n"
    "  -o, --output FILE    where to write float32 logits [n_tokens, vocab]\n"
    "  --last               write only the last position's logits [1, vocab] (long contexts)\n"
    "  --batch N            tokens per internal prefill step (default: K, the whole prefill)\n"
    "  -t, --threads N      worker threads (default: all CPUs)\n"
    "  --ctx N              context size (default: number of tokens)\n"
    "  --numerics MODE      auto | exact | llamacpp | int8 (see 'gemma run --help')\n"
    "  --kv-type TYPE       auto | f32 | f16 | bf16: KV cache storage (see 'gemma run --help')\n"
    "  --image FILE         the image whose embeddings replace the next run of image tokens (262144) in\n"
    "                       the ids, one --image per run, in order (then the prompt goes in batches of K)\n"
    "  --mmproj FILE        llama.cpp's vision file for a GGUF text model\n";

static int read_tokens_file(const char *path, int32_t **ids, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return cli_error("%s: cannot open", path);
    char *buf = malloc(1 << 24);
    size_t len = buf ? fread(buf, 1, (1 << 24) - 1, f) : 0;
    fclose(f);
    if (!buf) return cli_error("out of memory");
    buf[len] = 0;
    int ok = cli_parse_tokens(buf, ids, n);
    free(buf);
    return ok ? CLI_OK : cli_error("%s: not a list of token ids", path);
}

int cmd_logits(int argc, char **argv) {
    const char *model_dir = NULL, *out_path = NULL, *tokens_arg = NULL, *tokens_file = NULL;
    long prefill = -1, threads = 0, ctx = 0, batch = 0;
    int last_only = 0;
    gemma_numerics numerics = GEMMA_NUMERICS_AUTO;
    gemma_kv_type kv_type = GEMMA_KV_AUTO;
    const char *images[CLI_MAX_IMAGES], *mmproj = NULL;
    int n_images = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(help, stdout);
            return CLI_OK;
        }
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!(model_dir = cli_value(argc, argv, &i, "logits"))) return CLI_USAGE;
        } else if (!strcmp(a, "--tokens")) {
            if (!(tokens_arg = cli_value(argc, argv, &i, "logits"))) return CLI_USAGE;
        } else if (!strcmp(a, "--tokens-file")) {
            if (!(tokens_file = cli_value(argc, argv, &i, "logits"))) return CLI_USAGE;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (!(out_path = cli_value(argc, argv, &i, "logits"))) return CLI_USAGE;
        } else if (!strcmp(a, "--prefill")) {
            if (!(v = cli_value(argc, argv, &i, "logits"))) return CLI_USAGE;
            if (!cli_parse_int(v, 0, 1 << 30, &prefill)) return cli_usage_error("logits", "bad --prefill '%s'", v);
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (!(v = cli_value(argc, argv, &i, "logits"))) return CLI_USAGE;
            if (!cli_parse_int(v, 1, 256, &threads)) return cli_usage_error("logits", "bad --threads '%s'", v);
        } else if (!strcmp(a, "--image")) {
            if (n_images == CLI_MAX_IMAGES) return cli_usage_error("logits", "at most %d --image files", CLI_MAX_IMAGES);
            if (!(images[n_images++] = cli_value(argc, argv, &i, "logits"))) return CLI_USAGE;
        } else if (!strcmp(a, "--mmproj")) {
            if (!(mmproj = cli_value(argc, argv, &i, "logits"))) return CLI_USAGE;
        } else if (!strcmp(a, "--numerics")) {
            if (!(v = cli_value(argc, argv, &i, "logits"))) return CLI_USAGE;
            if (!cli_parse_numerics(v, "logits", &numerics)) return CLI_USAGE;
        } else if (!strcmp(a, "--kv-type")) {
            if (!(v = cli_value(argc, argv, &i, "logits"))) return CLI_USAGE;
            if (!cli_parse_kv_type(v, "logits", &kv_type)) return CLI_USAGE;
        } else if (!strcmp(a, "--last")) {
            last_only = 1;
        } else if (!strcmp(a, "--batch")) {
            if (!(v = cli_value(argc, argv, &i, "logits"))) return CLI_USAGE;
            if (!cli_parse_int(v, 1, 1 << 20, &batch)) return cli_usage_error("logits", "bad --batch '%s'", v);
        } else if (!strcmp(a, "--ctx")) {
            if (!(v = cli_value(argc, argv, &i, "logits"))) return CLI_USAGE;
            if (!cli_parse_int(v, 1, 1 << 30, &ctx)) return cli_usage_error("logits", "bad --ctx '%s'", v);
        } else {
            return cli_usage_error("logits", "unknown option '%s'", a);
        }
    }
    if (!model_dir) return cli_usage_error("logits", "missing -m MODEL_DIR");
    if (!out_path) return cli_usage_error("logits", "missing -o OUT.f32");
    if (!tokens_arg == !tokens_file) return cli_usage_error("logits", "give exactly one of --tokens, --tokens-file");

    int32_t *ids = NULL;
    size_t n = 0;
    if (tokens_arg && !cli_parse_tokens(tokens_arg, &ids, &n))
        return cli_usage_error("logits", "--tokens must be non-negative integers separated by commas");
    if (tokens_file && read_tokens_file(tokens_file, &ids, &n) != CLI_OK) return CLI_FAIL;
    if (n == 0) {
        free(ids);
        return cli_usage_error("logits", "no tokens given");
    }
    size_t k = prefill < 0 || (size_t)prefill > n ? n : (size_t)prefill;

    int rc = CLI_FAIL;
    gemma_error err;
    gemma_model *model = NULL;
    gemma_session *session = NULL;
    float *logits = NULL, *embeds = NULL;
    size_t n_rows = 0;
    int crops[CLI_MAX_IMAGES];
    gemma_model_options mo = {.numerics = numerics, .mmproj = mmproj};
    if (gemma_model_load(model_dir, &mo, &model, &err) != GEMMA_OK) {
        cli_error("%s", err.message);
        goto done;
    }
    gemma_session_options so = gemma_session_default_options();
    so.n_threads = (int)threads;
    so.n_ctx = ctx ? (int)ctx : (int)n;
    so.kv_type = kv_type;
    so.n_batch = batch ? (int)batch : k > 0 ? (int)k : 1;
    if (gemma_session_create(model, &so, &session, &err) != GEMMA_OK) {
        cli_error("%s", err.message);
        goto done;
    }
    size_t vocab = (size_t)gemma_model_vocab_size(model);
    /* --last: one row, overwritten by every call; the last call's stays */
    size_t rows = last_only ? 1 : n;
    gemma_logits_mode mode = last_only ? GEMMA_LOGITS_LAST : GEMMA_LOGITS_ALL;
    logits = malloc(rows * vocab * sizeof(float));
    if (!logits) {
        cli_error("out of memory for %zu x %zu logits", n, vocab);
        goto done;
    }
    if (n_images) {   /* images: the whole prompt through eval_mm, in batches of K (image runs never split) */
        if (cli_encode_images(session, model, images, n_images, 0, &embeds, &n_rows, crops) != CLI_OK) goto done;
        if (gemma_session_eval_mm(session, ids, n, embeds, n_rows, mode, logits, &err) != GEMMA_OK) {
            cli_error("%s", err.message);
            goto done;
        }
        k = n;
    } else if (k > 0 && gemma_session_eval(session, ids, k, mode, logits, &err) != GEMMA_OK) {
        cli_error("%s", err.message);
        goto done;
    }
    for (size_t i = k; i < n; i++) {
        float *row = last_only ? logits : logits + i * vocab;
        if (gemma_session_eval(session, ids + i, 1, mode, row, &err) != GEMMA_OK) {
            cli_error("%s", err.message);
            goto done;
        }
    }
    if (!cli_write_file(out_path, logits, rows * vocab * sizeof(float))) {
        cli_error("%s: cannot write", out_path);
        goto done;
    }
    rc = CLI_OK;
done:
    free(logits);
    free(embeds);
    free(ids);
    gemma_session_free(session);
    gemma_model_free(model);
    return rc;
}
