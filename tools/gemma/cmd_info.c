/* cmd_info.c - `gemma info`: what a model directory holds, as we understand it:
 * architecture and shapes, parameter count, weight formats, context, stop
 * tokens, tokenizer and chat format, and the memory a session will need. */
#include "args.h"
#include "common.h"
#include "core/json.h"
#include "core/mapfile.h"
#include "gemma.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* tools/reference/make_gemma4_tokenizer.py marks its stand-in tokenizer in tokenizer_config.json: say so. */
static int tokenizer_is_stand_in(const char *dir) {
    char path[4096], *text = NULL, jerr[160];
    size_t len = 0;
    if ((size_t)snprintf(path, sizeof path, "%s/tokenizer_config.json", dir) >= sizeof path) return 0;
    if (gm_read_file(path, 64u << 20, &text, &len, NULL) != GEMMA_OK) return 0;
    gm_json_doc *doc = gm_json_parse(text, len, NULL, jerr, sizeof jerr);
    int yes = doc && gm_json_get(gm_json_root(doc), "gemma_c_stand_in") != NULL;
    gm_json_free(doc);
    free(text);
    return yes;
}

int cmd_info(int argc, char **argv) {
    const char *model_dir = NULL;
    long ctx = 0;
    gemma_kv_type kv_type = GEMMA_KV_AUTO;
    for (int i = 1; i < argc; i++) {
        const char *v;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            puts("usage: gemma info [-m MODEL] [--ctx N] [--kv-type TYPE]\n\n"
                 "  -m MODEL        model directory or .gguf file (default: as for gemma run)\n"
                 "  --ctx N         context size for the memory estimate (default 4096)\n"
                 "  --kv-type TYPE  KV cache type for the estimate: auto | f32 | f16 | bf16 (default auto)");
            return CLI_OK;
        }
        if (!strcmp(argv[i], "-m") || !strcmp(argv[i], "--model")) {
            if (!(model_dir = cli_value(argc, argv, &i, "info"))) return CLI_USAGE;
        } else if (!strcmp(argv[i], "--ctx")) {
            if (!(v = cli_value(argc, argv, &i, "info"))) return CLI_USAGE;
            if (!cli_parse_int(v, 1, 1 << 30, &ctx)) return cli_usage_error("info", "bad --ctx '%s'", v);
        } else if (!strcmp(argv[i], "--kv-type")) {
            if (!(v = cli_value(argc, argv, &i, "info"))) return CLI_USAGE;
            if (!cli_parse_kv_type(v, "info", &kv_type)) return CLI_USAGE;
        } else {
            return cli_usage_error("info", "unknown option '%s'", argv[i]);
        }
    }
    if (!(model_dir = cli_model_or_default(model_dir, "info"))) return CLI_USAGE;
    gemma_error err;
    gemma_model *m;
    if (gemma_model_load(model_dir, NULL, &m, &err) != GEMMA_OK) return cli_error("%s", err.message);
    printf("model:       %s\n", gemma_model_path(m));
    printf("arch:        %s\n", gemma_model_describe(m));
    printf("parameters:  %.3f M\n", (double)gemma_model_param_count(m) / 1e6);
    printf("weights:     %.1f MB mapped\n", (double)gemma_model_weight_bytes(m) / 1e6);
    printf("max context: %d\n", gemma_model_max_context(m));
    int32_t stops[16];
    size_t ns = gemma_model_stop_tokens(m, stops, 16);
    printf("stop ids:   ");
    for (size_t i = 0; i < ns && i < 16; i++) printf(" %d", stops[i]);
    printf("\n");
    gemma_sampler_params sp = gemma_model_sampler_params(m);
    if (sp.temperature > 0)
        printf("sampling:    temperature %g, top-k %d, top-p %g, min-p %g\n", sp.temperature, sp.top_k, sp.top_p, sp.min_p);
    else
        printf("sampling:    greedy\n");
    gemma_session_options so = gemma_session_default_options();
    so.n_ctx = (int)ctx;
    so.kv_type = kv_type;
    uint64_t sess = gemma_session_memory_bytes(m, &so);
    printf("memory:      %.1f MB for a session of %ld tokens (KV cache %s + activations) + %.1f MB of weights\n",
           (double)sess / 1e6, ctx ? ctx : (long)(gemma_model_max_context(m) < 4096 ? gemma_model_max_context(m) : 4096),
           gemma_kv_type_name(kv_type),
           (double)gemma_model_weight_bytes(m) / 1e6);
    gemma_tokenizer *tok;
    if (gemma_tokenizer_load(model_dir, &tok, &err) == GEMMA_OK) {
        printf("tokenizer:   %d ids%s\n", gemma_tokenizer_vocab_size(tok),
               tokenizer_is_stand_in(gemma_model_path(m))
                   ? " (STAND-IN derived from Gemma 3's: only the special tokens are Gemma 4's)"
                   : "");
        gemma_tokenizer_free(tok);
    } else {
        printf("tokenizer:   none (%s)\n", err.message);
    }
    gemma_chat_format *fmt;
    if (gemma_chat_format_load(model_dir, &fmt, &err) == GEMMA_OK) {
        printf("chat format: %s%s\n", gemma_chat_format_name(fmt),
               gemma_chat_format_has_thinking(fmt) ? " (thinking mode: --think)" : "");
        gemma_chat_format_free(fmt);
    } else {
        printf("chat format: none (%s)\n", err.message);
    }
    printf("kernels:     %s\n", gemma_cpu_isa());
    gemma_model_free(m);
    return CLI_OK;
}
