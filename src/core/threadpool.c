/* threadpool.c - see threadpool.h.
 *
 * Synchronisation: the caller publishes (fn, ctx) and bumps `generation`;
 * workers spin on it for a short while, then block on a condition variable.
 * Completion is an atomic counter the caller spins on (steps are short). */
#include "core/threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield")
#else
#define cpu_relax() ((void)0)
#endif

enum { SPIN_ITERATIONS = 1 << 15 };

typedef struct {
    gm_pool *pool;
    int index;
    pthread_t thread;
} worker;

struct gm_pool {
    int n_threads;
    worker *workers;           /* n_threads - 1 of them */
    gm_task_fn fn;
    void *ctx;
    atomic_uint generation;
    atomic_int done;
    atomic_int stop;
    pthread_mutex_t lock;
    pthread_cond_t wake;
};

static unsigned wait_for_next_generation(gm_pool *pool, unsigned seen) {
    for (int i = 0; i < SPIN_ITERATIONS; i++) {
        unsigned g = atomic_load_explicit(&pool->generation, memory_order_acquire);
        if (g != seen) return g;
        cpu_relax();
    }
    pthread_mutex_lock(&pool->lock);
    unsigned g;
    while ((g = atomic_load_explicit(&pool->generation, memory_order_acquire)) == seen)
        pthread_cond_wait(&pool->wake, &pool->lock);
    pthread_mutex_unlock(&pool->lock);
    return g;
}

static void *worker_main(void *arg) {
    worker *w = arg;
    gm_pool *pool = w->pool;
    unsigned seen = 0;
    for (;;) {
        seen = wait_for_next_generation(pool, seen);
        if (atomic_load_explicit(&pool->stop, memory_order_acquire)) return NULL;
        pool->fn(pool->ctx, w->index, pool->n_threads);
        atomic_fetch_add_explicit(&pool->done, 1, memory_order_release);
    }
}

static void publish(gm_pool *pool) {
    pthread_mutex_lock(&pool->lock);
    atomic_fetch_add_explicit(&pool->generation, 1, memory_order_release);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->lock);
}

gm_pool *gm_pool_create(int n_threads) {
    if (n_threads < 1) n_threads = 1;
    gm_pool *pool = calloc(1, sizeof *pool);
    if (!pool) return NULL;
    pool->n_threads = n_threads;
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->wake, NULL);
    if (n_threads == 1) return pool;
    pool->workers = calloc((size_t)n_threads - 1, sizeof *pool->workers);
    if (!pool->workers) {
        gm_pool_free(pool);
        return NULL;
    }
    for (int i = 1; i < n_threads; i++) {
        worker *w = &pool->workers[i - 1];
        w->pool = pool;
        w->index = i;
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            pool->n_threads = i;   /* only join the ones that started */
            gm_pool_free(pool);
            return NULL;
        }
    }
    return pool;
}

void gm_pool_free(gm_pool *pool) {
    if (!pool) return;
    if (pool->workers) {
        atomic_store_explicit(&pool->stop, 1, memory_order_release);
        publish(pool);
        for (int i = 1; i < pool->n_threads; i++) pthread_join(pool->workers[i - 1].thread, NULL);
        free(pool->workers);
    }
    pthread_mutex_destroy(&pool->lock);
    pthread_cond_destroy(&pool->wake);
    free(pool);
}

int gm_pool_size(const gm_pool *pool) { return pool ? pool->n_threads : 1; }

void gm_pool_run(gm_pool *pool, gm_task_fn fn, void *ctx) {
    if (!pool || pool->n_threads == 1) {
        fn(ctx, 0, 1);
        return;
    }
    pool->fn = fn;
    pool->ctx = ctx;
    atomic_store_explicit(&pool->done, 0, memory_order_relaxed);
    publish(pool);
    fn(ctx, 0, pool->n_threads);
    int others = pool->n_threads - 1;
    for (unsigned spins = 0; atomic_load_explicit(&pool->done, memory_order_acquire) < others; spins++) {
        if (spins < SPIN_ITERATIONS) cpu_relax();
        else sched_yield();
    }
}

void gm_split_range(int n, int align, int t, int nt, int *begin, int *end) {
    if (align < 1) align = 1;
    int blocks = (n + align - 1) / align;
    int per = blocks / nt, extra = blocks % nt;
    int b0 = t * per + (t < extra ? t : extra);
    int b1 = b0 + per + (t < extra ? 1 : 0);
    int lo = b0 * align, hi = b1 * align;
    *begin = lo < n ? lo : n;
    *end = hi < n ? hi : n;
}
