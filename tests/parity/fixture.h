/* fixture.h - reference fixtures made by tools/reference/ (see its README):
 * a tiny model directory plus the logits the reference computed for its tokens. */
#ifndef GEMMA_TEST_FIXTURE_H
#define GEMMA_TEST_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/kernels.h"

typedef struct {
    char name[128];
    char dir[1024];
    int32_t *tokens;
    int n_tokens;
    int vocab;
    int quantized;
    int sliding_window;
    float *ref_hf;      /* [n_tokens, vocab] transformers */
    float *ref_mlx;     /* [n_tokens, vocab] mlx-lm, or NULL */
    /* GGUF fixtures: llama.cpp's own logits (make_gguf_llamacpp_refs.py), or NULL:
     * all tokens in one batch, and llamacpp_prefix tokens then one at a time */
    float *ref_llamacpp_batch, *ref_llamacpp_stream;
    int llamacpp_prefix;
} fixture;

/* Names listed in <root>/MANIFEST, one per line; returns count (0 on error). */
int fixture_list(const char *root, char names[][128], int max);
int fixture_load(const char *root, const char *name, fixture *f);
void fixture_free(fixture *f);
float *fixture_read_f32(const char *path, size_t expect);

typedef struct {
    double max_abs_diff, max_abs_ref, rel;
    int top1_checked, top1_mismatch;
} logit_cmp;

/* Compare [n, vocab] logits; top-1 is checked where the reference's top-2
 * margin exceeds `clear_margin`. */
logit_cmp compare_logits(const float *got, const float *ref, int n, int vocab, double clear_margin);

/* The kernel table `name` ("scalar", "avx2", "avx512", "neon") if this CPU
 * runs it and GEMMA_PARITY_ISAS (a list, for slow emulators: "neon") does not
 * leave it out, else NULL. */
const gm_kernels *fixture_kernels(const char *name);
/* GEMMA_PARITY_THREADS if set, else dflt (qemu-user hangs in pthread_create: 1 there). */
int fixture_threads(int dflt);

#endif
