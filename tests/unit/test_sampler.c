/* test_sampler.c - the sampler's distributions, not single draws: with fixed
 * seeds, 200k draws per case are compared with the exact distribution each
 * control should produce (within 5 standard deviations), and the kept sets of
 * top-k / top-p / min-p are checked against brute force. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gemma.h"

#define DRAWS 200000

static gemma_sampler *make(gemma_sampler_params p, int vocab) {
    gemma_sampler *s;
    gemma_error err;
    if (gemma_sampler_create(&p, vocab, &s, &err) != GEMMA_OK) fail_msg("%s", err.message);
    return s;
}

/* Draw DRAWS tokens from fixed logits; counts[v]. */
static void histogram(gemma_sampler *s, const float *logits, int v, long *counts) {
    float *tmp = malloc((size_t)v * sizeof *tmp);
    memset(counts, 0, (size_t)v * sizeof *counts);
    for (int i = 0; i < DRAWS; i++) {
        memcpy(tmp, logits, (size_t)v * sizeof *tmp);
        int32_t t = gemma_sampler_sample(s, tmp);
        assert_true(t >= 0 && t < v);
        counts[t]++;
    }
    free(tmp);
}

/* counts must follow expected probabilities (which sum to 1). */
static void expect_distribution(const long *counts, const double *expected, int v) {
    for (int i = 0; i < v; i++) {
        double mean = expected[i] * DRAWS, sd = sqrt(DRAWS * expected[i] * (1 - expected[i]));
        if (expected[i] == 0) {
            if (counts[i] != 0) fail_msg("token %d drawn %ld times, expected never", i, counts[i]);
        } else if (fabs((double)counts[i] - mean) > 5 * sd + 1) {
            fail_msg("token %d drawn %ld times, expected %.0f +- %.0f", i, counts[i], mean, sd);
        }
    }
}

static void softmax(const float *l, double t, double *p, int v, const int *keep) {
    double mx = -INFINITY, sum = 0;
    for (int i = 0; i < v; i++)
        if (keep[i] && l[i] > mx) mx = l[i];
    for (int i = 0; i < v; i++) sum += p[i] = keep[i] ? exp((l[i] - mx) / t) : 0;
    for (int i = 0; i < v; i++) p[i] /= sum;
}

static const float L6[6] = {2.0f, 1.0f, 0.5f, 0.0f, -1.0f, 1.5f};

static void test_greedy(void **state) {
    (void)state;
    gemma_sampler *s = make(gemma_sampler_default_params(), 6);
    float l[6];
    memcpy(l, L6, sizeof l);
    assert_int_equal(gemma_sampler_sample(s, l), 0);
    gemma_sampler_free(s);
    s = make(gemma_sampler_default_params(), 4);
    float ties[4] = {1, 3, 3, NAN};
    assert_int_equal(gemma_sampler_sample(s, ties), 1);   /* first of equal maxima; NaN never wins */
    gemma_sampler_free(s);
}

static void test_temperature_distribution(void **state) {
    (void)state;
    const double temps[] = {1.0, 0.5, 2.0};
    for (int ti = 0; ti < 3; ti++) {
        gemma_sampler_params p = gemma_sampler_default_params();
        p.temperature = (float)temps[ti];
        p.seed = 1234 + ti;
        gemma_sampler *s = make(p, 6);
        long c[6];
        double e[6];
        int keep[6] = {1, 1, 1, 1, 1, 1};
        histogram(s, L6, 6, c);
        softmax(L6, temps[ti], e, 6, keep);
        expect_distribution(c, e, 6);
        gemma_sampler_free(s);
    }
}

static void test_top_k_top_p_min_p(void **state) {
    (void)state;
    /* top-k 3: tokens 0, 5, 1 renormalised */
    gemma_sampler_params p = gemma_sampler_default_params();
    p.temperature = 1;
    p.top_k = 3;
    p.seed = 7;
    gemma_sampler *s = make(p, 6);
    long c[6];
    double e[6];
    int keep_k[6] = {1, 1, 0, 0, 0, 1};
    histogram(s, L6, 6, c);
    softmax(L6, 1, e, 6, keep_k);
    expect_distribution(c, e, 6);
    gemma_sampler_free(s);

    /* top-p on probabilities 0.5, 0.3, 0.15, 0.05: 0.79 keeps two, 0.81 three, 0.3 one */
    float lp[4] = {logf(0.5f), logf(0.3f), logf(0.15f), logf(0.05f)};
    const float ps[] = {0.79f, 0.81f, 0.3f};
    const int kept[] = {2, 3, 1};
    for (int k = 0; k < 3; k++) {
        p = gemma_sampler_default_params();
        p.temperature = 1;
        p.top_p = ps[k];
        p.seed = 99 + k;
        s = make(p, 4);
        long c4[4];
        double e4[4];
        int keep[4];
        for (int i = 0; i < 4; i++) keep[i] = i < kept[k];
        histogram(s, lp, 4, c4);
        softmax(lp, 1, e4, 4, keep);
        expect_distribution(c4, e4, 4);
        gemma_sampler_free(s);
    }

    /* min-p 0.4 of p_max 0.5: keeps 0.5 and 0.3 */
    p = gemma_sampler_default_params();
    p.temperature = 1;
    p.min_p = 0.4f;
    p.seed = 5;
    s = make(p, 4);
    long c4[4];
    double e4[4];
    int keep_m[4] = {1, 1, 0, 0};
    histogram(s, lp, 4, c4);
    softmax(lp, 1, e4, 4, keep_m);
    expect_distribution(c4, e4, 4);
    gemma_sampler_free(s);
}

/* A large vocabulary exercises the heap path of top-p; compare with brute force. */
static int cmp_desc(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

static void test_top_p_large_vocab(void **state) {
    (void)state;
    enum { V = 5000 };
    static float l[V], tmp[V];
    static double pr[V], sorted[V];
    uint32_t r = 42;
    for (int i = 0; i < V; i++) {
        r = r * 1664525u + 1013904223u;
        l[i] = (float)(r >> 8) / 16777216.0f * 12.0f;
    }
    int keep_all[V];
    for (int i = 0; i < V; i++) keep_all[i] = 1;
    softmax(l, 0.7, pr, V, keep_all);
    memcpy(sorted, pr, sizeof sorted);
    qsort(sorted, V, sizeof sorted[0], cmp_desc);
    double mass = 0, threshold = 0;
    for (int i = 0; i < V && mass < 0.9; i++) mass += threshold = sorted[i];
    gemma_sampler_params p = gemma_sampler_default_params();
    p.temperature = 0.7f;
    p.top_p = 0.9f;
    p.seed = 3;
    gemma_sampler *s = make(p, V);
    for (int i = 0; i < 20000; i++) {
        memcpy(tmp, l, sizeof tmp);
        int32_t t = gemma_sampler_sample(s, tmp);
        if (pr[t] < threshold) fail_msg("drew token %d with p %.3g below the nucleus threshold %.3g", t, pr[t], threshold);
    }
    gemma_sampler_free(s);
}

static void test_penalties_and_bias(void **state) {
    (void)state;
    gemma_sampler_params p = gemma_sampler_default_params();
    p.repetition_penalty = 2.0f;
    p.presence_penalty = 0.25f;
    p.frequency_penalty = 0.5f;
    gemma_sampler *s = make(p, 6);
    gemma_sampler_accept(s, 0);
    gemma_sampler_accept(s, 0);
    gemma_sampler_accept(s, 4);
    float l[6];
    memcpy(l, L6, sizeof l);
    int32_t t = gemma_sampler_sample(s, l);
    /* token 0: 2/2 - 2*0.5 - 0.25 = -0.25; token 4: -1*2 - 0.5 - 0.25 = -2.75 */
    assert_float_equal(l[0], -0.25f, 1e-6);
    assert_float_equal(l[4], -2.75f, 1e-6);
    assert_float_equal(l[1], 1.0f, 0);
    assert_int_equal(t, 5);
    gemma_sampler_free(s);

    /* penalty window: after 2 newer tokens, token 0 no longer counts */
    p = gemma_sampler_default_params();
    p.presence_penalty = 10;
    p.penalty_last_n = 2;
    s = make(p, 6);
    gemma_sampler_accept(s, 0);
    gemma_sampler_accept(s, 3);
    memcpy(l, L6, sizeof l);
    assert_int_equal(gemma_sampler_sample(s, l), 5);
    gemma_sampler_accept(s, 2);
    memcpy(l, L6, sizeof l);
    assert_int_equal(gemma_sampler_sample(s, l), 0);
    gemma_sampler_reset(s);
    gemma_sampler_free(s);

    gemma_logit_bias bias[2] = {{3, 100.0f}, {0, -100.0f}};
    p = gemma_sampler_default_params();
    p.logit_bias = bias;
    p.n_logit_bias = 2;
    p.temperature = 1.0f;
    s = make(p, 6);
    for (int i = 0; i < 100; i++) {
        memcpy(l, L6, sizeof l);
        assert_int_equal(gemma_sampler_sample(s, l), 3);
    }
    gemma_sampler_free(s);
}

static void test_seed_reproducible(void **state) {
    (void)state;
    gemma_sampler_params p = gemma_sampler_default_params();
    p.temperature = 1.5f;
    p.seed = 2024;
    int32_t a[200], b[200], c[200];
    gemma_sampler *s1 = make(p, 6), *s2 = make(p, 6);
    p.seed = 2025;
    gemma_sampler *s3 = make(p, 6);
    float l[6];
    for (int i = 0; i < 200; i++) {
        memcpy(l, L6, sizeof l);
        a[i] = gemma_sampler_sample(s1, l);
        memcpy(l, L6, sizeof l);
        b[i] = gemma_sampler_sample(s2, l);
        memcpy(l, L6, sizeof l);
        c[i] = gemma_sampler_sample(s3, l);
    }
    assert_memory_equal(a, b, sizeof a);
    assert_memory_not_equal(a, c, sizeof a);
    gemma_sampler_reset(s1);   /* restarts the stream */
    for (int i = 0; i < 200; i++) {
        memcpy(l, L6, sizeof l);
        assert_int_equal(gemma_sampler_sample(s1, l), a[i]);
    }
    gemma_sampler_free(s1);
    gemma_sampler_free(s2);
    gemma_sampler_free(s3);
}

static void test_bad_params(void **state) {
    (void)state;
    gemma_sampler *s;
    gemma_error err;
    gemma_sampler_params p = gemma_sampler_default_params();
    p.top_p = 1.5f;
    assert_int_equal(gemma_sampler_create(&p, 10, &s, &err), GEMMA_ERR_ARG);
    assert_non_null(strstr(err.message, "top_p"));
    p = gemma_sampler_default_params();
    p.top_k = -1;
    assert_int_equal(gemma_sampler_create(&p, 10, &s, &err), GEMMA_ERR_ARG);
    gemma_logit_bias b = {10, 1};
    p = gemma_sampler_default_params();
    p.logit_bias = &b;
    p.n_logit_bias = 1;
    assert_int_equal(gemma_sampler_create(&p, 10, &s, &err), GEMMA_ERR_ARG);
    assert_non_null(strstr(err.message, "logit_bias"));
    assert_int_equal(gemma_sampler_create(NULL, 0, &s, &err), GEMMA_ERR_ARG);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greedy),           cmocka_unit_test(test_temperature_distribution),
        cmocka_unit_test(test_top_k_top_p_min_p), cmocka_unit_test(test_top_p_large_vocab),
        cmocka_unit_test(test_penalties_and_bias), cmocka_unit_test(test_seed_reproducible),
        cmocka_unit_test(test_bad_params),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
