/* test_threadpool.c - the persistent pool: every thread runs every step, work
 * splits cover each item exactly once, and many short steps in a row work. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <string.h>

#include "core/threadpool.h"

typedef struct {
    atomic_int calls;
    atomic_int seen[8];
    int hits[10007];
} counter;

static void count_task(void *arg, int thread, int n) {
    counter *c = arg;
    atomic_fetch_add(&c->calls, 1);
    atomic_fetch_add(&c->seen[thread], 1);
    int b, e;
    gm_split_range(10007, 8, thread, n, &b, &e);
    for (int i = b; i < e; i++) c->hits[i]++;
}

static void test_split_range_covers_once(void **state) {
    (void)state;
    for (int n = 0; n < 300; n += 7)
        for (int nt = 1; nt <= 9; nt++)
            for (int align = 1; align <= 16; align *= 4) {
                int next = 0;
                for (int t = 0; t < nt; t++) {
                    int b, e;
                    gm_split_range(n, align, t, nt, &b, &e);
                    assert_int_equal(b, next);
                    assert_true(e >= b);
                    if (e < n) assert_int_equal(e % align, 0);
                    next = e;
                }
                assert_int_equal(next, n);
            }
}

static void test_pool_runs_every_thread(void **state) {
    (void)state;
    for (int threads = 1; threads <= 4; threads++) {
        gm_pool *p = gm_pool_create(threads);
        assert_non_null(p);
        assert_int_equal(gm_pool_size(p), threads);
        static counter c;
        memset(&c, 0, sizeof c);
        for (int step = 0; step < 2000; step++) gm_pool_run(p, count_task, &c);
        assert_int_equal(atomic_load(&c.calls), 2000 * threads);
        for (int t = 0; t < threads; t++) assert_int_equal(atomic_load(&c.seen[t]), 2000);
        for (int i = 0; i < 10007; i++) assert_int_equal(c.hits[i], 2000);
        gm_pool_free(p);
    }
    gm_pool_run(NULL, count_task, &(counter){0});   /* no pool: runs inline */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_range_covers_once),
        cmocka_unit_test(test_pool_runs_every_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
