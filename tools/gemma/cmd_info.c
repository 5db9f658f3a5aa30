/* cmd_info.c - `gemma info`: what a model directory holds, as we understand it. */
#include "args.h"
#include "gemma.h"

#include <stdio.h>
#include <string.h>

int cmd_info(int argc, char **argv) {
    const char *model_dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            puts("usage: gemma info -m MODEL_DIR");
            return CLI_OK;
        }
        if (!strcmp(argv[i], "-m") || !strcmp(argv[i], "--model")) {
            if (!(model_dir = cli_value(argc, argv, &i, "info"))) return CLI_USAGE;
        } else {
            return cli_usage_error("info", "unknown option '%s'", argv[i]);
        }
    }
    if (!model_dir) return cli_usage_error("info", "missing -m MODEL_DIR");
    gemma_error err;
    gemma_model *m;
    if (gemma_model_load(model_dir, NULL, &m, &err) != GEMMA_OK) return cli_error("%s", err.message);
    printf("%s\n", gemma_model_describe(m));
    printf("kernels: %s\n", gemma_cpu_isa());
    gemma_model_free(m);
    return CLI_OK;
}
