/* args.h - tiny option parsing shared by the gemma subcommands. */
#ifndef GEMMA_CLI_ARGS_H
#define GEMMA_CLI_ARGS_H

#include <stddef.h>
#include <stdint.h>

/* Exit codes: 0 ok, 1 runtime error, 2 usage error. */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

int cli_error(const char *fmt, ...);   /* prints "gemma: error: ..." and returns CLI_FAIL */
int cli_usage_error(const char *cmd, const char *fmt, ...);   /* returns CLI_USAGE */

/* argv[*i] is `name`: consume it and its value. Returns the value or NULL (and prints an error). */
const char *cli_value(int argc, char **argv, int *i, const char *cmd);
int cli_parse_int(const char *s, long lo, long hi, long *out);
/* "2,818,6213" or whitespace-separated; returns a malloc'd array. */
int cli_parse_tokens(const char *s, int32_t **out, size_t *n);
/* Atomically write a file: a temporary next to it, then rename. */
int cli_write_file(const char *path, const void *data, size_t n);

typedef int (*cli_command_fn)(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_preprocess(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_perplexity(int argc, char **argv);
int cmd_compare(int argc, char **argv);

#endif
