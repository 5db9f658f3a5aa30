/* test_parity.c - all-position logits against the reference, on every fixture.
 *
 * For each fixture in tests/fixtures/gemma3/MANIFEST, every kernel table this
 * CPU runs, one and two threads, and many prefill splits (everything in one
 * batch, chunked batches, token by token, splits around the sliding window),
 * the logits must match transformers' (and mlx-lm's where present).  The
 * Gemma 4 fixtures (tests/fixtures/gemma4, ctest test_parity_gemma4) run the
 * same way:
 *   max|Δ| <= tol * max|ref|  (tol 2e-3 float weights, 2e-2 quantized)
 * and the same top-1 token wherever the reference's top-2 margin is clear.
 * GGUF fixtures run like that in GEMMA_NUMERICS_EXACT (the reference is the
 * float64 math on the dequantized weights), and again in
 * GEMMA_NUMERICS_LLAMACPP against llama.cpp's own logits for the same file,
 * in the two schedules it was run with: there every float must be equal.
 * MLX fixtures also run in GEMMA_NUMERICS_INT8 (int8 inputs for the 4- and
 * 8-bit matrices): within INT8_TOL of transformers, the same clear top-1,
 * and measurably different from the exact run (the integer path ran).  Int8
 * runs of different kernel tables or splits are not closer to each other
 * than that: a last-bit difference in an input can move its rounding by a
 * whole step (measured: 5e-2 between the scalar and AVX2 tables). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "gemma.h"
#include "kernels/kernels.h"
#include "runtime/session.h"

#define MAX_FIXTURES 64

/* GEMMA_PARITY_DIR points the test at another fixture set (fresh seeds, say). */
static const char *root;
static char names[MAX_FIXTURES][128];

typedef struct {
    int prefill, n_batch;
    int n_rewind;   /* session option: 0 = default room; -1 = sliding rings exactly one window */
} split;

static int run_split(gemma_model *m, const fixture *f, const gm_kernels *k, int threads, split sp, float *out) {
    gemma_error err;
    gemma_session *s;
    gemma_session_options o = gemma_session_default_options();
    o.n_ctx = f->n_tokens;
    o.n_batch = sp.n_batch;
    o.n_threads = threads;
    o.n_rewind = sp.n_rewind;
    if (gemma_session_create(m, &o, &s, &err) != GEMMA_OK) {
        print_error("session: %s\n", err.message);
        return 0;
    }
    s->k = k;   /* test hook: force this kernel table */
    int ok = gemma_session_eval(s, f->tokens, (size_t)sp.prefill, GEMMA_LOGITS_ALL, out, &err) == GEMMA_OK;
    for (int i = sp.prefill; ok && i < f->n_tokens; i++)
        ok = gemma_session_eval(s, f->tokens + i, 1, GEMMA_LOGITS_ALL, out + (size_t)i * f->vocab, &err) == GEMMA_OK;
    if (!ok) print_error("eval: %s\n", err.message);
    ok = ok && gemma_session_position(s) == f->n_tokens;
    gemma_session_free(s);
    return ok;
}

static double f_max_abs(const float *x, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++)
        if (x[i] > m || -x[i] > m) m = x[i] > 0 ? x[i] : -x[i];
    return m;
}

static int make_splits(const fixture *f, split *sp) {
    int n = f->n_tokens, W = f->sliding_window, c = 0;
    int ks[] = {n, 1, W - 1, W, W + 1, 2 * W + 1, n / 2, n - 1};
    sp[c++] = (split){n, n, 0};
    sp[c++] = (split){n, 3, 0};        /* chunked prefill through the ring buffer */
    /* rings of exactly one window: a step wraps them, and readers of a KV
     * donor (Gemma 4's shared layers) must still see the entries it overwrites */
    sp[c++] = (split){n, 3, -1};
    sp[c++] = (split){n, n, -1};
    for (size_t i = 1; i < sizeof ks / sizeof ks[0]; i++) {
        int k = ks[i], dup = 0;
        if (k < 1 || k > n) continue;
        for (int j = 0; j < c; j++) dup |= sp[j].prefill == k && sp[j].n_batch == k;
        if (!dup) sp[c++] = (split){k, k, 0};
    }
    return c;
}

static const char *const all_isas[] = {"scalar", "avx2", "avx512", "neon"};

/* The kernel tables to run: those this CPU has, narrowed by GEMMA_PARITY_ISAS
 * ("neon" for slow emulators); threads 1..GEMMA_PARITY_THREADS (default 2). */
static const gm_kernels *parity_isa(size_t i) { return fixture_kernels(all_isas[i]); }
static int parity_max_threads(void) { return fixture_threads(2); }

static void test_fixture(void **state) {
    const char *name = *state;
    fixture f;
    assert_true(fixture_load(root, name, &f));
    gemma_error err;
    gemma_model *m;
    gemma_model_options mo = {.numerics = GEMMA_NUMERICS_EXACT};
    if (gemma_model_load(f.dir, &mo, &m, &err) != GEMMA_OK) fail_msg("load %s: %s", f.dir, err.message);
    assert_int_equal(gemma_model_vocab_size(m), f.vocab);

    double tol = f.quantized ? 2e-2 : 2e-3;
    size_t count = (size_t)f.n_tokens * (size_t)f.vocab;
    float *out = malloc(count * sizeof(float));
    assert_non_null(out);
    split sp[20];
    int n_splits = make_splits(&f, sp);
    double worst_hf = 0, worst_mlx = 0;
    int runs = 0, top1_checked = 0;
    for (size_t ii = 0; ii < sizeof all_isas / sizeof all_isas[0]; ii++) {
        const gm_kernels *k = parity_isa(ii);
        if (!k) continue;
        for (int threads = 1; threads <= parity_max_threads(); threads++) {
            for (int si = 0; si < n_splits; si++) {
                for (size_t i = 0; i < count; i++) out[i] = -12345.0f;   /* poison */
                if (!run_split(m, &f, k, threads, sp[si], out)) fail_msg("%s: run failed", name);
                /* "clear" top-2 margin: larger than the error the tolerance allows */
                double clear = tol * f_max_abs(f.ref_hf, count);
                logit_cmp c = compare_logits(out, f.ref_hf, f.n_tokens, f.vocab, clear);
                if (c.rel > worst_hf) worst_hf = c.rel;
                top1_checked += c.top1_checked;
                if (c.rel > tol || c.top1_mismatch)
                    fail_msg("%s [%s, %d threads, prefill %d, batch %d, rewind %d]: max|d| %.3g = %.3g of max|ref| %.3g "
                             "(tol %.0e), top-1 mismatches %d/%d",
                             name, all_isas[ii], threads, sp[si].prefill, sp[si].n_batch, sp[si].n_rewind,
                             c.max_abs_diff, c.rel,
                             c.max_abs_ref, tol, c.top1_mismatch, c.top1_checked);
                if (f.ref_mlx) {
                    logit_cmp cm = compare_logits(out, f.ref_mlx, f.n_tokens, f.vocab,
                                                  2e-2 * f_max_abs(f.ref_mlx, count));
                    if (cm.rel > worst_mlx) worst_mlx = cm.rel;
                    if (cm.rel > 2e-2 || cm.top1_mismatch)
                        fail_msg("%s vs mlx-lm [%s, prefill %d]: rel %.3g, top-1 mismatches %d/%d", name, all_isas[ii],
                                 sp[si].prefill, cm.rel, cm.top1_mismatch, cm.top1_checked);
                }
                runs++;
            }
        }
    }
    printf("PARITY %-22s %3d runs  max rel err vs transformers %.2e (tol %.0e)", name, runs, worst_hf, tol);
    if (f.ref_mlx) printf("  vs mlx-lm %.2e", worst_mlx);
    printf("  top-1 checked %d\n", top1_checked);
    free(out);
    gemma_model_free(m);
    fixture_free(&f);
}

/* The int8 inputs round each product's input to 2-3 digits, and these tiny
 * random-weight models amplify it: measured 6.7e-2 (mlx4-g64-convert) and
 * 4.9e-2 (mlx8-g32-vlm) of max|ref|, where the exact path is within 5e-6.
 * (On the real Gemma 3 270M the cost is 1.4 % perplexity: README.) */
#define INT8_TOL 1e-1

static void test_fixture_int8(void **state) {
    const char *name = *state;
    fixture f;
    assert_true(fixture_load(root, name, &f));
    gemma_error err;
    gemma_model *m, *exact;
    gemma_model_options mo = {.numerics = GEMMA_NUMERICS_INT8}, me = {.numerics = GEMMA_NUMERICS_EXACT};
    if (gemma_model_load(f.dir, &mo, &m, &err) != GEMMA_OK) fail_msg("load %s: %s", f.dir, err.message);
    if (gemma_model_load(f.dir, &me, &exact, &err) != GEMMA_OK) fail_msg("load %s: %s", f.dir, err.message);
    assert_int_equal(gemma_model_numerics(m), GEMMA_NUMERICS_INT8);
    size_t count = (size_t)f.n_tokens * (size_t)f.vocab;
    float *out = malloc(count * sizeof(float)), *ref = malloc(count * sizeof(float));
    float *first = malloc(count * sizeof(float));
    assert_non_null(out);
    assert_non_null(ref);
    assert_non_null(first);
    split sp[20];
    int n_splits = make_splits(&f, sp);
    if (!run_split(exact, &f, &gm_kernels_ref, 1, sp[0], ref)) fail_msg("%s: exact run failed", name);
    double worst = 0, off_exact = 0, spread = 0;
    int runs = 0;
    if (!run_split(m, &f, &gm_kernels_ref, 1, sp[0], first)) fail_msg("%s: int8 run failed", name);
    for (size_t ii = 0; ii < sizeof all_isas / sizeof all_isas[0]; ii++) {
        const gm_kernels *k = parity_isa(ii);
        if (!k) continue;
        for (int threads = 1; threads <= parity_max_threads(); threads++)
            for (int si = 0; si < n_splits && si < 4; si++) {
                for (size_t i = 0; i < count; i++) out[i] = -12345.0f;
                if (!run_split(m, &f, k, threads, sp[si], out)) fail_msg("%s: run failed", name);
                logit_cmp c = compare_logits(out, f.ref_hf, f.n_tokens, f.vocab, INT8_TOL * f_max_abs(f.ref_hf, count));
                logit_cmp e = compare_logits(out, ref, f.n_tokens, f.vocab, 1e9);
                logit_cmp o = compare_logits(out, first, f.n_tokens, f.vocab, 1e9);
                if (c.rel > worst) worst = c.rel;
                if (e.rel > off_exact) off_exact = e.rel;
                if (o.rel > spread) spread = o.rel;
                if (c.rel > INT8_TOL || c.top1_mismatch)
                    fail_msg("%s int8 [%s, %d threads, prefill %d, batch %d]: rel %.3g (tol %.0e), top-1 mismatches %d/%d",
                             name, all_isas[ii], threads, sp[si].prefill, sp[si].n_batch, c.rel, INT8_TOL,
                             c.top1_mismatch, c.top1_checked);
                runs++;
            }
    }
    printf("PARITY %-22s %3d runs  numerics int8: max rel err vs transformers %.2e (tol %.0e), vs exact %.2e, "
           "between int8 runs %.2e\n", name, runs, worst, INT8_TOL, off_exact, spread);
    if (!(off_exact > 1e-6)) fail_msg("%s: int8 logits equal the exact ones: the integer path did not run", name);
    free(out);
    free(ref);
    free(first);
    gemma_model_free(m);
    gemma_model_free(exact);
    fixture_free(&f);
}

/* llama.cpp numerics on a GGUF fixture: llama.cpp's logits, float for float. */
static void test_fixture_llamacpp(void **state) {
    const char *name = *state;
    fixture f;
    assert_true(fixture_load(root, name, &f));
    gemma_error err;
    gemma_model *m;
    gemma_model_options mo = {.numerics = GEMMA_NUMERICS_LLAMACPP};
    if (gemma_model_load(f.dir, &mo, &m, &err) != GEMMA_OK) fail_msg("load %s: %s", f.dir, err.message);
    size_t count = (size_t)f.n_tokens * (size_t)f.vocab;
    float *out = malloc(count * sizeof(float));
    assert_non_null(out);
    struct { const char *what; split sp; const float *ref; } schedules[] = {
        {"one batch", {f.n_tokens, f.n_tokens, 0}, f.ref_llamacpp_batch},
        {"prefix, then one by one", {f.llamacpp_prefix, f.llamacpp_prefix, 0}, f.ref_llamacpp_stream},
    };
    int runs = 0;
    for (size_t ii = 0; ii < sizeof all_isas / sizeof all_isas[0]; ii++) {
        const gm_kernels *k = parity_isa(ii);
        for (int threads = 1; k && threads <= parity_max_threads(); threads++)
            for (size_t si = 0; si < sizeof schedules / sizeof schedules[0]; si++) {
                if (!run_split(m, &f, k, threads, schedules[si].sp, out)) fail_msg("%s: run failed", name);
                size_t differ = 0;
                for (size_t i = 0; i < count; i++) differ += memcmp(&out[i], &schedules[si].ref[i], sizeof(float)) != 0;
                logit_cmp c = compare_logits(out, schedules[si].ref, f.n_tokens, f.vocab, 0);
                if (differ)
                    fail_msg("%s vs llama.cpp [%s, %d threads, %s]: %zu of %zu logits differ, max|d| %.3g "
                             "(max|ref| %.3g)", name, all_isas[ii], threads, schedules[si].what, differ, count,
                             c.max_abs_diff, c.max_abs_ref);
                runs++;
            }
    }
    printf("PARITY %-22s %3d runs  numerics llamacpp: every logit equal to llama.cpp's (2 schedules)\n", name, runs);
    free(out);
    gemma_model_free(m);
    fixture_free(&f);
}

/* Rewinding the cache and continuing matches the reference for the tokens
 * evaluated after the rewind, also across sliding-window rings; going back
 * further than the ring allows is refused. */
static void test_rewind(void **state) {
    (void)state;
    fixture f;
    assert_true(fixture_load(root, names[0], &f));
    gemma_error err;
    gemma_model *m;
    assert_int_equal(gemma_model_load(f.dir, NULL, &m, &err), GEMMA_OK);
    size_t count = (size_t)f.n_tokens * (size_t)f.vocab;
    float *out = malloc(count * sizeof(float));
    gemma_session *s;
    gemma_session_options o = gemma_session_default_options();
    o.n_ctx = f.n_tokens;
    o.n_threads = 1;
    o.n_rewind = 8;
    assert_int_equal(gemma_session_create(m, &o, &s, &err), GEMMA_OK);
    int32_t junk[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    int k = f.n_tokens - 8;
    assert_int_equal(gemma_session_eval(s, f.tokens, (size_t)k, GEMMA_LOGITS_NONE, NULL, &err), GEMMA_OK);
    assert_int_equal(gemma_session_eval(s, junk, 8, GEMMA_LOGITS_NONE, NULL, &err), GEMMA_OK);   /* a wrong turn */
    assert_int_equal(gemma_session_rewind(s, k, &err), GEMMA_OK);
    assert_int_equal(gemma_session_eval(s, f.tokens + k, 8, GEMMA_LOGITS_ALL, out, &err), GEMMA_OK);
    logit_cmp c = compare_logits(out, f.ref_hf + (size_t)k * f.vocab, 8, f.vocab, 1e9);
    if (c.rel > 2e-3) fail_msg("after rewind: rel err %.3g", c.rel);
    gemma_session_reset(s);
    assert_int_equal(gemma_session_eval(s, f.tokens, (size_t)f.n_tokens, GEMMA_LOGITS_NONE, NULL, &err), GEMMA_OK);
    if (f.sliding_window + 8 < f.n_tokens) {   /* the rings hold window + 8: 9 back is too far */
        assert_int_equal(gemma_session_rewind(s, f.n_tokens - 9, &err), GEMMA_ERR_ARG);
        assert_non_null(strstr(err.message, "cannot go back"));
    }
    assert_int_equal(gemma_session_rewind(s, f.n_tokens + 1, &err), GEMMA_ERR_ARG);
    gemma_session_free(s);
    free(out);
    gemma_model_free(m);
    fixture_free(&f);
}

int main(void) {
    root = getenv("GEMMA_PARITY_DIR");
    if (!root || !*root) root = GEMMA_FIXTURES_DIR "/gemma3";
    int n = fixture_list(root, names, MAX_FIXTURES);
    if (n == 0) {
        fprintf(stderr, "no fixtures found in %s/MANIFEST\n", root);
        return 1;
    }
    struct CMUnitTest *tests = calloc((size_t)n, sizeof *tests);
    for (int i = 0; i < n; i++) {
        tests[i] = (struct CMUnitTest)cmocka_unit_test_prestate(test_fixture, names[i]);
        tests[i].name = names[i];
    }
    int rc = _cmocka_run_group_tests("parity", tests, (size_t)n, NULL, NULL);
    /* llama.cpp numerics: the fixtures that carry llama.cpp's logits */
    int n_lc = 0;
    for (int i = 0; i < n; i++) {
        fixture f;
        if (!fixture_load(root, names[i], &f)) continue;
        if (f.ref_llamacpp_batch && f.ref_llamacpp_stream) {
            tests[n_lc] = (struct CMUnitTest)cmocka_unit_test_prestate(test_fixture_llamacpp, names[i]);
            tests[n_lc++].name = names[i];
        }
        fixture_free(&f);
    }
    if (n_lc) rc |= _cmocka_run_group_tests("parity-llamacpp", tests, (size_t)n_lc, NULL, NULL);
    /* int8 numerics: the MLX fixtures whose matrices have an int8 path (the
     * Gemma 4 one is 64 wide: no whole 128-value chunks) */
    int n_i8 = 0;
    for (int i = 0; i < n; i++)
        if (!strncmp(names[i], "mlx4", 4) || !strncmp(names[i], "mlx8", 4)) {
            tests[n_i8] = (struct CMUnitTest)cmocka_unit_test_prestate(test_fixture_int8, names[i]);
            tests[n_i8++].name = names[i];
        }
    if (n_i8) rc |= _cmocka_run_group_tests("parity-int8", tests, (size_t)n_i8, NULL, NULL);
    const struct CMUnitTest more[] = {cmocka_unit_test(test_rewind)};
    rc |= cmocka_run_group_tests(more, NULL, NULL);
    free(tests);
    return rc;
}
