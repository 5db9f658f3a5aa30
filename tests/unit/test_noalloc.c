/* test_noalloc.c - decoding a token allocates nothing.
 * Linked with --wrap=malloc/calloc/realloc: every heap allocation made by the
 * library is counted; after the session exists, evaluating tokens (prefill
 * and decode) must not add to the count. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "gemma.h"
#include "unit/testutil.h"

static long allocations;
void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n) { allocations++; return __real_malloc(n); }
void *__wrap_calloc(size_t n, size_t m) { allocations++; return __real_calloc(n, m); }
void *__wrap_realloc(void *p, size_t n) { allocations++; return __real_realloc(p, n); }

static void test_eval_does_not_allocate(void **state) {
    (void)state;
    tu_model tm;
    tu_model_build(&tm);
    const char *dir = tu_dir("noalloc");
    tu_model_write(&tm, dir, NULL);
    gemma_error err;
    gemma_model *m;
    assert_int_equal(gemma_model_load(dir, NULL, &m, &err), GEMMA_OK);
    gemma_session *s;
    gemma_session_options o = gemma_session_default_options();
    o.n_ctx = 64;
    o.n_batch = 8;
    o.n_threads = 2;
    assert_int_equal(gemma_session_create(m, &o, &s, &err), GEMMA_OK);
    static float logits[8 * TU_V];
    int32_t ids[8] = {1, 5, 9, 13, 17, 21, 25, 29};
    long before = allocations;
    assert_true(before > 0);   /* the wrapper is live */
    assert_int_equal(gemma_session_eval(s, ids, 8, GEMMA_LOGITS_ALL, logits, &err), GEMMA_OK);
    for (int i = 0; i < 40; i++)
        assert_int_equal(gemma_session_eval(s, &ids[i % 8], 1, GEMMA_LOGITS_LAST, logits, &err), GEMMA_OK);
    assert_int_equal(allocations, before);
    gemma_session_free(s);
    gemma_model_free(m);
    tu_model_free(&tm);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_eval_does_not_allocate)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
