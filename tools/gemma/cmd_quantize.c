/* cmd_quantize.c - `gemma quantize`: a Hugging Face Gemma 3 / MedGemma
 * checkpoint to an MLX affine-quantized one.  Only parses flags and reports
 * progress; the conversion is gemma_quantize() in the library. */
#include "args.h"
#include "gemma.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *usage_text =
    "usage: gemma quantize -m HF_DIR -o OUT_DIR [--bits 4|8] [--group-size 32|64|128] [--skip-vision]\n"
    "                      [--force] [--shard-size SIZE] [-q]\n"
    "\n"
    "Turns a Hugging Face Gemma 3 checkpoint (BF16/F16/F32 safetensors, model.safetensors or shards with\n"
    "model.safetensors.index.json; gemma3_text, or multimodal gemma3 such as google/medgemma-4b-it) into\n"
    "an MLX affine-quantized checkpoint that mlx-lm, mlx-vlm and gemma.c load, as\n"
    "`mlx_lm.convert -q --q-bits B --q-group-size G` writes it.\n"
    "\n"
    "  -m, --model HF_DIR   the Hugging Face model folder (only read, never written)\n"
    "  -o, --output OUT_DIR where the MLX checkpoint goes; created if missing\n"
    "  --bits B             bits per weight: 4 (default) or 8; 2, 3, 5 and 6 work too\n"
    "  --group-size G       weights sharing one scale and bias: 32, 64 (default) or 128\n"
    "  --skip-vision        keep the vision tower and projector (vision_tower.*, vision_model.*,\n"
    "                       multi_modal_projector.*) in float, as mlx-vlm's convert does; without it\n"
    "                       their Linear/Embedding weights are quantized like the language model's\n"
    "                       (smaller; mlx-vlm loads both).  Vision tensors are never dropped (mlx-lm\n"
    "                       drops them); a tied multimodal checkpoint named language_model.model.*\n"
    "                       also gets language_model.lm_head.*, a copy of the embedding mlx-vlm needs.\n"
    "  --force              write into an existing non-empty OUT_DIR: replaces only the files quantize\n"
    "                       writes, deletes nothing, and refuses if OUT_DIR holds other *.safetensors\n"
    "  --shard-size SIZE    largest weight file before a new shard starts, e.g. 5G (default, as mlx-lm),\n"
    "                       500M, 2000K or plain bytes\n"
    "  -q, --quiet          no progress on stderr\n"
    "\n"
    "What it writes: the same tensor names.  Every Linear/Embedding weight (a 2-D *.weight) whose last\n"
    "dimension G divides becomes <m>.weight (U32, packed), <m>.scales and <m>.biases, bit-identical to\n"
    "mlx.core.quantize; the rest (norms, weights G does not divide, conv) is copied.  Float tensors are\n"
    "cast to config.json's torch_dtype (else text_config.dtype) when it names float16/bfloat16/float32,\n"
    "else keep their dtype; scales and biases take that dtype (BF16 in, BF16 scales), like mlx_lm.convert.\n"
    "config.json is copied with \"quantization\" and \"quantization_config\" ({group_size, bits, mode})\n"
    "added; model.safetensors (or model-0000i-of-0000N.safetensors past the shard size) and\n"
    "model.safetensors.index.json are written; tokenizer.json, tokenizer_config.json,\n"
    "special_tokens_map.json, tokenizer.model, added_tokens.json, generation_config.json,\n"
    "chat_template.jinja/.json, preprocessor_config.json and processor_config.json are copied if present.\n"
    "Tensors are streamed a few MB at a time, so memory stays small whatever the model size.  Files are\n"
    "written as temporaries and renamed when everything succeeded.\n"
    "\n"
    "Exit codes: 0 ok, 1 runtime error (bad or unreadable input, OUT_DIR not empty), 2 usage error.";

static int parse_size(const char *s, uint64_t *out) {
    if (!s || !*s) return 0;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *s == '-') return 0;
    uint64_t mul = 1;
    if (*end) {
        switch (*end) {
        case 'k': case 'K': mul = UINT64_C(1) << 10; break;
        case 'm': case 'M': mul = UINT64_C(1) << 20; break;
        case 'g': case 'G': mul = UINT64_C(1) << 30; break;
        default: return 0;
        }
        if (end[1] && !((end[1] == 'B' || end[1] == 'b') && !end[2])) return 0;
    }
    if (!v || v > UINT64_MAX / mul) return 0;
    *out = (uint64_t)v * mul;
    return 1;
}

typedef struct {
    int live;                    /* stderr is a terminal and not --quiet: a progress line */
    int shown;                   /* the progress line is on screen */
    gemma_quantize_progress last;
} progress_state;

static void on_progress(const gemma_quantize_progress *p, void *user) {
    progress_state *ps = user;
    ps->last = *p;
    if (!ps->live) return;
    if (p->tensor) {
        fprintf(stderr, "\rquantize: %zu/%zu tensors, %.1f MB written", p->done, p->total, (double)p->bytes_out / 1e6);
        ps->shown = 1;
    } else if (ps->shown) {
        fputc('\n', stderr);
        ps->shown = 0;
    }
}

int cmd_quantize(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *v;
    int quiet = 0;
    gemma_quantize_options o = gemma_quantize_default_options();
    for (int i = 1; i < argc; i++) {
        long n;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            puts(usage_text);
            return CLI_OK;
        }
        if (!strcmp(argv[i], "-m") || !strcmp(argv[i], "--model")) {
            if (!(in = cli_value(argc, argv, &i, "quantize"))) return CLI_USAGE;
        } else if (!strcmp(argv[i], "-o") || !strcmp(argv[i], "--output")) {
            if (!(out = cli_value(argc, argv, &i, "quantize"))) return CLI_USAGE;
        } else if (!strcmp(argv[i], "--bits")) {
            if (!(v = cli_value(argc, argv, &i, "quantize"))) return CLI_USAGE;
            if (!cli_parse_int(v, 2, 8, &n) || n == 7)
                return cli_usage_error("quantize", "bad --bits '%s' (4 or 8; also 2, 3, 5, 6)", v);
            o.bits = (int)n;
        } else if (!strcmp(argv[i], "--group-size")) {
            if (!(v = cli_value(argc, argv, &i, "quantize"))) return CLI_USAGE;
            if (!cli_parse_int(v, 32, 128, &n) || (n != 32 && n != 64 && n != 128))
                return cli_usage_error("quantize", "bad --group-size '%s' (32, 64 or 128)", v);
            o.group_size = (int)n;
        } else if (!strcmp(argv[i], "--shard-size")) {
            if (!(v = cli_value(argc, argv, &i, "quantize"))) return CLI_USAGE;
            if (!parse_size(v, &o.max_shard_bytes))
                return cli_usage_error("quantize", "bad --shard-size '%s' (bytes, or with K, M, G)", v);
        } else if (!strcmp(argv[i], "--skip-vision")) {
            o.skip_vision = 1;
        } else if (!strcmp(argv[i], "--force")) {
            o.force = 1;
        } else if (!strcmp(argv[i], "-q") || !strcmp(argv[i], "--quiet")) {
            quiet = 1;
        } else {
            return cli_usage_error("quantize", "unknown option '%s'", argv[i]);
        }
    }
    if (!in) return cli_usage_error("quantize", "missing -m HF_DIR");
    if (!out) return cli_usage_error("quantize", "missing -o OUT_DIR");
    progress_state ps = {.live = !quiet && isatty(2)};
    o.progress = on_progress;
    o.progress_user = &ps;
    gemma_error err;
    if (gemma_quantize(in, out, &o, &err) != GEMMA_OK) {
        if (ps.shown) fputc('\n', stderr);
        return cli_error("%s", err.message);
    }
    if (!quiet)
        fprintf(stderr, "quantize: wrote %s: %zu tensors, %zu quantized (%d-bit, group size %d%s), %.1f MB -> %.1f MB in %d %s\n",
                out, ps.last.total, ps.last.quantized, o.bits, o.group_size, o.skip_vision ? ", vision in float" : "",
                (double)ps.last.bytes_in / 1e6, (double)ps.last.bytes_out / 1e6, ps.last.n_shards,
                ps.last.n_shards == 1 ? "shard" : "shards");
    return CLI_OK;
}
