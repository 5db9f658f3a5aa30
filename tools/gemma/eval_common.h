/* eval_common.h - what the evaluation subcommands (eval, perplexity, compare)
 * share: reading a whole text file, refusing to overwrite a results file, a
 * progress bar that only a terminal sees, summary statistics, log-softmax over
 * a vocabulary, JSON string output, and the chunked all-position evaluation
 * that keeps only a few rows of logits in memory. */
#ifndef GEMMA_CLI_EVAL_COMMON_H
#define GEMMA_CLI_EVAL_COMMON_H

#include <stddef.h>
#include <stdio.h>

#include "gemma.h"

/* The flags eval, perplexity and compare share: -f/--file, --ctx, --json, -t/--threads, --numerics, --kv-type. */
typedef struct {
    const char *file;
    long ctx, threads;   /* ctx as given (the command checks its range) */
    int json;
    gemma_numerics numerics;
    gemma_kv_type kv_type;
} cli_eval_flags;
/* As cli_parse_gen_flag: 1 if argv[*i] was one of them (consumed with its
 * value), 0 if not, -1 on a bad value (usage error printed). */
int cli_parse_eval_flag(int argc, char **argv, int *i, const char *cmd, cli_eval_flags *f);

/* The whole file, NUL-terminated (malloc'd); NULL after a one-line error naming it. */
char *cli_read_text_file(const char *path, size_t *len);
/* <bos> + the tokens of a text file's contents (malloc'd); errors name the file. */
int cli_tokenize_text_file(const gemma_tokenizer *tok, const char *text, size_t len, const char *path, int32_t **ids,
                           size_t *n);

/* A results file the run appends to.  It must not exist unless `resume` (keep
 * it, append) or `force` (start it again); CLI_USAGE with a one-line message
 * otherwise. */
int cli_check_results_path(const char *path, int resume, int force, const char *cmd);

/* "\r[#####.....]  12/500  3.1 s/item  eta 25m" on stderr, only when stderr
 * is a terminal (and at most a few times a second). */
typedef struct {
    int enabled;
    size_t total;
    double t0, last;
    const char *unit;
} cli_progress;
void cli_progress_start(cli_progress *p, size_t total, const char *unit);
void cli_progress_update(cli_progress *p, size_t done);
void cli_progress_end(cli_progress *p);

/* Sorted copy statistics: q in [0, 1], linear interpolation between ranks
 * (numpy's default).  Sorts v in place. */
void cli_sort_doubles(double *v, size_t n);
double cli_percentile_sorted(const double *sorted, size_t n, double q);

/* log(sum(exp(logits))) in double, stable. */
double cli_logsumexp(const float *logits, size_t n);
/* Index of the largest value (the first on ties). */
size_t cli_argmax(const float *v, size_t n);

/* s as a JSON string literal (quotes included). */
void cli_json_string(FILE *f, const char *s);

/* Evaluate ids[0..n) appended to the session, calling row(user, i, logits)
 * with the logits that follow ids[i] for every i >= first_scored, evaluating
 * at most `chunk` positions at a time (ids before first_scored go through
 * without logits).  `buf` holds chunk x vocab floats. */
typedef int (*cli_row_fn)(void *user, size_t i, const float *logits);
int cli_eval_rows(gemma_session *s, const int32_t *ids, size_t n, size_t first_scored, float *buf, size_t chunk,
                  size_t vocab, cli_row_fn row, void *user);

#endif
