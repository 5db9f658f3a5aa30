/* threadpool.h - a persistent pool of workers for data-parallel kernels.
 *
 * Decode runs hundreds of small parallel steps per token (one per matrix),
 * so workers live for the whole session, spin briefly waiting for the next
 * step and only then sleep; nothing is created per token. */
#ifndef GM_THREADPOOL_H
#define GM_THREADPOOL_H

/* Called once on every thread (the caller is thread 0) for each gm_pool_run;
 * the function splits its own work by (thread, n_threads). */
typedef void (*gm_task_fn)(void *ctx, int thread, int n_threads);

typedef struct gm_pool gm_pool;

gm_pool *gm_pool_create(int n_threads);   /* n_threads >= 1, caller included; NULL on failure */
void gm_pool_free(gm_pool *pool);
int gm_pool_size(const gm_pool *pool);
void gm_pool_run(gm_pool *pool, gm_task_fn fn, void *ctx);

/* The [begin, end) slice of n items that thread t of nt owns, in multiples of `align`. */
void gm_split_range(int n, int align, int t, int nt, int *begin, int *end);

#endif
