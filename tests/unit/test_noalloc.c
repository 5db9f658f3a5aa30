/* test_noalloc.c - decoding a token allocates nothing.
 * Linked with --wrap=malloc/calloc/realloc: every heap allocation made by the
 * library is counted; after the session exists, evaluating tokens (prefill
 * and decode) must not add to the count. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>

#include "gemma.h"
#include "unit/testutil.h"

static long allocations;
void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n) { allocations++; return __real_malloc(n); }
void *__wrap_calloc(size_t n, size_t m) { allocations++; return __real_calloc(n, m); }
void *__wrap_realloc(void *p, size_t n) { allocations++; return __real_realloc(p, n); }

/* A session on the model; a prefill of n_prompt tokens, then 40 single
 * tokens: none of it may allocate. */
static void eval_without_allocating(const char *path, gemma_numerics numerics, gemma_kv_type kv_type, int n_batch,
                                    int n_prompt) {
    gemma_error err;
    gemma_model *m;
    gemma_model_options mo = {.numerics = numerics};
    assert_int_equal(gemma_model_load(path, &mo, &m, &err), GEMMA_OK);
    assert_int_equal(gemma_model_numerics(m), numerics == GEMMA_NUMERICS_AUTO ? GEMMA_NUMERICS_EXACT : numerics);
    gemma_session *s;
    gemma_session_options o = gemma_session_default_options();
    o.n_ctx = 64;
    o.n_batch = n_batch;
    o.n_threads = 2;
    o.kv_type = kv_type;
    assert_int_equal(gemma_session_create(m, &o, &s, &err), GEMMA_OK);
    assert_true(n_prompt <= 16 && gemma_model_vocab_size(m) <= 512);
    static float logits[16 * 512];
    int32_t ids[16] = {1, 5, 9, 13, 17, 21, 25, 29, 33, 37, 41, 45, 49, 53, 57, 61};
    long before = allocations;
    assert_true(before > 0);   /* the wrapper is live */
    assert_int_equal(gemma_session_eval(s, ids, (size_t)n_prompt, GEMMA_LOGITS_ALL, logits, &err), GEMMA_OK);
    for (int i = 0; i < 40; i++)
        assert_int_equal(gemma_session_eval(s, &ids[i % n_prompt], 1, GEMMA_LOGITS_LAST, logits, &err), GEMMA_OK);
    assert_int_equal(allocations, before);
    gemma_session_free(s);
    gemma_model_free(m);
}

static void test_eval_does_not_allocate(void **state) {
    (void)state;
    tu_model tm;
    tu_model_build(&tm);
    const char *dir = tu_dir("noalloc");
    tu_model_write(&tm, dir, NULL);
    /* and with a half-precision KV cache: its step rows are session buffers too */
    for (int kv = GEMMA_KV_AUTO; kv <= GEMMA_KV_BF16; kv++) eval_without_allocating(dir, GEMMA_NUMERICS_AUTO, kv, 8, 8);
    tu_model_free(&tm);
}

/* GGUF weights in both numerics: llama.cpp's 8-bit input rows, f16-rounded
 * inputs and attention lanes live in the session's scratch too (a 12-token
 * prefill takes the many-rows paths, then single tokens). */
static void test_gguf_eval_does_not_allocate(void **state) {
    (void)state;
    eval_without_allocating(GEMMA_FIXTURES_DIR "/gemma3/gguf-mixed/model.gguf", GEMMA_NUMERICS_EXACT, 0, 16, 12);
    /* llama.cpp numerics: the f16 cache (AUTO) widens rows into the thread's lane scratch */
    for (int kv = GEMMA_KV_AUTO; kv <= GEMMA_KV_BF16; kv++)
        eval_without_allocating(GEMMA_FIXTURES_DIR "/gemma3/gguf-mixed/model.gguf", GEMMA_NUMERICS_LLAMACPP, kv, 16, 12);
}

/* int8 numerics: the quantized input rows and their scales are session
 * buffers (decode and the multi-token prefill path). */
static void test_int8_eval_does_not_allocate(void **state) {
    (void)state;
    eval_without_allocating(GEMMA_FIXTURES_DIR "/gemma3/mlx4-g64-convert", GEMMA_NUMERICS_INT8, GEMMA_KV_AUTO, 16, 12);
    eval_without_allocating(GEMMA_FIXTURES_DIR "/gemma3/mlx8-g32-vlm", GEMMA_NUMERICS_INT8, GEMMA_KV_F32, 16, 12);
}

/* Gemma 4: per-layer inputs, KV-shared layers and the donors' late commits
 * use session buffers too (f32, bf16 and MLX 4-bit tables). */
static void test_gemma4_eval_does_not_allocate(void **state) {
    (void)state;
    static const char *const names[] = {"e2b-f32-text", "e4b-bf16-mm", "e2b-mlx4-vlm"};
    char path[512];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/gemma4/%s", GEMMA_FIXTURES_DIR, names[i]);
        eval_without_allocating(path, GEMMA_NUMERICS_EXACT, GEMMA_KV_AUTO, 16, 12);
        eval_without_allocating(path, GEMMA_NUMERICS_EXACT, GEMMA_KV_F16, 16, 12);
    }
}

/* gemma_session_memory_bytes counts what a Gemma 4 session takes through its
 * allocator: per-layer cache widths, no cache for KV-shared layers, the
 * per-layer-input buffers.  (Empty buffers still take one aligned block.) */
static size_t counted;
static void *count_alloc(size_t size, size_t align, void *user) {
    (void)user;
    counted += size;
    void *p = NULL;
    return posix_memalign(&p, align, size) == 0 ? p : NULL;
}
static void count_free(void *p, void *user) {
    (void)user;
    free(p);
}

static void test_gemma4_memory_estimate(void **state) {
    (void)state;
    gemma_error err;
    gemma_model *m;
    assert_int_equal(gemma_model_load(GEMMA_FIXTURES_DIR "/gemma4/e2b-f32-text", NULL, &m, &err), GEMMA_OK);
    gemma_allocator a = {count_alloc, count_free, NULL};
    gemma_session_options o = gemma_session_default_options();
    o.n_ctx = 64;
    o.n_threads = 2;
    o.allocator = &a;
    for (int kv = GEMMA_KV_AUTO; kv <= GEMMA_KV_BF16; kv++) {   /* a half cache too */
        o.kv_type = kv;
        uint64_t estimate = gemma_session_memory_bytes(m, &o);
        counted = 0;
        gemma_session *s;
        assert_int_equal(gemma_session_create(m, &o, &s, &err), GEMMA_OK);
        if (counted < estimate || counted > estimate + 64 * 64)
            fail_msg("kv %s: allocated %zu bytes, estimated %llu", gemma_kv_type_name(kv), counted,
                     (unsigned long long)estimate);
        gemma_session_free(s);
    }
    gemma_model_free(m);
}

/* Sessions whose matrices never multiply through the f32 GEMM (int8
 * numerics on MLX 4/8-bit, llama.cpp numerics on GGUF) leave out its
 * per-thread blocks (megabytes a thread). */
static uint64_t session_bytes(const char *path, gemma_numerics numerics) {
    gemma_error err;
    gemma_model *m;
    gemma_model_options mo = {.numerics = numerics};
    assert_int_equal(gemma_model_load(path, &mo, &m, &err), GEMMA_OK);
    gemma_session_options o = gemma_session_default_options();
    o.n_ctx = 64;
    o.n_threads = 2;
    o.kv_type = GEMMA_KV_F32;
    uint64_t n = gemma_session_memory_bytes(m, &o);
    gemma_model_free(m);
    return n;
}

static void test_scratch_without_gemm(void **state) {
    (void)state;
    const char *mlx = GEMMA_FIXTURES_DIR "/gemma3/mlx4-g64-convert", *gguf = GEMMA_FIXTURES_DIR "/gemma3/gguf-mixed/model.gguf";
    uint64_t exact = session_bytes(mlx, GEMMA_NUMERICS_EXACT), int8 = session_bytes(mlx, GEMMA_NUMERICS_INT8);
    if (int8 + 2 * (1u << 20) > exact) fail_msg("int8 session %llu bytes, exact %llu", (unsigned long long)int8, (unsigned long long)exact);
    exact = session_bytes(gguf, GEMMA_NUMERICS_EXACT);
    uint64_t ggml = session_bytes(gguf, GEMMA_NUMERICS_LLAMACPP);
    if (ggml + 2 * (1u << 20) > exact) fail_msg("llamacpp session %llu bytes, exact %llu", (unsigned long long)ggml, (unsigned long long)exact);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_eval_does_not_allocate),
                                       cmocka_unit_test(test_gguf_eval_does_not_allocate),
                                       cmocka_unit_test(test_gemma4_eval_does_not_allocate),
        cmocka_unit_test(test_int8_eval_does_not_allocate),
                                       cmocka_unit_test(test_scratch_without_gemm),
                                       cmocka_unit_test(test_gemma4_memory_estimate)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
