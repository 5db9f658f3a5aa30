/* fuzz_safetensors.c - libFuzzer target: arbitrary bytes as a safetensors file.
 * Every input must either load (and then every tensor's bytes lie inside the
 * buffer) or fail with a message; never crash, leak or read out of bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *copy = malloc(size ? size : 1);   /* exact-size heap copy: ASan sees overreads */
    if (!copy) return 0;
    memcpy(copy, data, size);
    gm_mapfile mf = {.data = copy, .size = size, .path = strdup("fuzz.safetensors"), .is_mapped = 0};
    gm_tensor_set ts = {0};
    gemma_error err;
    if (gm_tensors_add_mapped(&ts, mf, &err) == GEMMA_OK) {
        volatile uint8_t sink = 0;
        for (size_t i = 0; i < ts.n_tensors; i++) {
            const gm_tensor *t = &ts.tensors[i];
            if (t->nbytes) sink ^= t->data[0] ^ t->data[t->nbytes - 1];
            if (gm_tensors_find(&ts, t->name) != t) abort();
        }
        (void)sink;
    }
    gm_tensors_free(&ts);
    free(copy);
    return 0;
}
