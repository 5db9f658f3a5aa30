/* main.c - the `gemma` command: dispatches to one file per subcommand. */
#include "args.h"
#include "gemma.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    cli_command_fn fn;
    const char *help;
} commands[] = {
    {"logits", cmd_logits, "write the logits of every position for given token ids (parity interface)"},
    {"run", cmd_run, "generate a reply to one prompt, streamed"},
    {"chat", cmd_chat, "interactive multi-turn chat"},
    {"serve", cmd_serve, "OpenAI-compatible HTTP server (chat/completions, completions, models, metrics)"},
    {"tokenize", cmd_tokenize, "text or chat messages to token ids"},
    {"info", cmd_info, "describe a model directory"},
    {"quantize", cmd_quantize, "Hugging Face checkpoint -> MLX 4/8-bit checkpoint (mlx-lm / mlx-vlm compatible)"},
    {"bench", cmd_bench, "prefill / decode / vision speed, load time and memory, against this machine's limits"},
    {"eval", cmd_eval, "accuracy on PubMedQA (yes/no/maybe), per-item results as JSONL"},
    {"perplexity", cmd_perplexity, "sliding-window perplexity of a text file"},
    {"compare", cmd_compare, "KL divergence and top-1 agreement of two checkpoints of one model on a text"},
    {"preprocess", cmd_preprocess, "image file -> Gemma 3 pixel values (HF Gemma3ImageProcessor-exact), raw float32"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: gemma <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\n'gemma <command> --help' for a command's options.  gemma.c %s, kernels: %s\n", gemma_version(),
            gemma_cpu_isa());
}

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("gemma.c %s\n", gemma_version());
        return CLI_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "gemma: unknown command '%s' (see 'gemma --help')\n", argv[1]);
    return CLI_USAGE;
}
