/* fuzz_gguf.c - libFuzzer target: arbitrary bytes as a GGUF file.
 * Every input must either open (and then every value, string and tensor the
 * index hands out lies inside the buffer, lookups find what iteration sees,
 * and the first row of each tensor we can compute with dequantizes) or fail
 * with a one-line message; never crash, leak or read out of bounds.  The same
 * bytes then go through the mmproj loader (io/mmproj.h), with the same rule:
 * a config and tensor views inside the buffer, or one line. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/gguf.h"
#include "io/mmproj.h"
#include "quant/ggml_blocks.h"

static const uint8_t *lo, *hi;   /* the input buffer, for bounds checks (per call) */

static void in_buffer(const void *p, uint64_t n) {
    const uint8_t *b = p;
    if (b < lo || b > hi || n > (uint64_t)(hi - b)) abort();
}

static uint8_t touch_value(const gm_gguf_value *v) {
    uint8_t sink = 0;
    if (v->type == GM_GGUF_STRING) {
        in_buffer(v->data, v->count);
        if (!v->str || memcmp(v->str, v->data, (size_t)v->count) != 0 || v->str[v->count] != 0) abort();
        return v->count ? v->data[v->count - 1] : 0;
    }
    if (v->type != GM_GGUF_ARRAY) {
        int64_t i;
        uint64_t u;
        double d;
        gm_gguf_value_int(v, &i);
        gm_gguf_value_u64(v, &u);
        gm_gguf_value_f64(v, &d);
        in_buffer(v->data, 1);
        return v->data[0];
    }
    for (uint64_t i = 0; i < v->count; i++) {
        size_t len;
        int64_t iv;
        uint64_t uv;
        double d;
        switch (v->elem_type) {
        case GM_GGUF_STRING: {
            const char *s = gm_gguf_arr_str(v, i, &len);
            if (!s) abort();
            in_buffer(s, len);
            if (len) sink ^= (uint8_t)s[len - 1];
            break;
        }
        case GM_GGUF_ARRAY: sink ^= touch_value(gm_gguf_arr_sub(v, i)); break;
        default:
            gm_gguf_arr_int(v, i, &iv);
            gm_gguf_arr_u64(v, i, &uv);
            if (gm_gguf_arr_f64(v, i, &d)) sink ^= (uint8_t)(d != d);
            break;
        }
    }
    return sink;
}

static int one_line_error(const gemma_error *err) {
    return !strchr(err->message, '\n') && strncmp(err->message, "fuzz.gguf: ", 11) == 0;
}

static void fuzz_mmproj(uint8_t *copy, size_t size) {
    gm_mapfile mf = {.data = copy, .size = size, .path = strdup("fuzz.gguf"), .is_mapped = 0};
    gm_mmproj m;
    gemma_error err;
    if (gm_mmproj_open_mapped(&m, mf, &err) != GEMMA_OK) {
        if (!one_line_error(&err)) abort();
        return;
    }
    const gm_vision_config *c = &m.cfg;
    if (c->tokens_per_side * c->pool != c->patches_per_side || c->patches_per_side * c->patch_size != c->image_size ||
        c->head_dim * c->heads != c->hidden)
        abort();
    volatile uint8_t sink = 0;
    for (size_t i = 0; i < m.ts.n_tensors; i++) {
        const gm_tensor *t = &m.ts.tensors[i];
        if (gm_tensors_find(&m.ts, t->name) != t) abort();
        in_buffer(t->data, t->nbytes);
        if (t->nbytes) sink ^= t->data[t->nbytes - 1];
    }
    (void)sink;
    gm_mmproj_close(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *copy = malloc(size ? size : 1);   /* exact-size heap copy: ASan sees overreads */
    if (!copy) return 0;
    memcpy(copy, data, size);
    lo = copy;
    hi = copy + size;
    gm_mapfile mf = {.data = copy, .size = size, .path = strdup("fuzz.gguf"), .is_mapped = 0};
    gm_gguf g;
    gemma_error err;
    if (gm_gguf_open_mapped(&g, mf, &err) == GEMMA_OK) {
        volatile uint8_t sink = 0;
        for (size_t i = 0; i < g.n_kvs; i++) {
            if (gm_gguf_find_kv(&g, g.kvs[i].key) != &g.kvs[i]) abort();
            sink ^= touch_value(&g.kvs[i].value);
            uint32_t u;
            float f;
            const char *s;
            gm_gguf_get_u32(&g, g.kvs[i].key, &u, &err);
            gm_gguf_get_f32(&g, g.kvs[i].key, &f, &err);
            gm_gguf_get_str(&g, g.kvs[i].key, &s, NULL, &err);
        }
        float row[4096];
        for (size_t i = 0; i < g.n_tensors; i++) {
            const gm_gguf_tensor *t = &g.tensors[i];
            if (gm_gguf_find_tensor(&g, t->name) != t) abort();
            if (!t->known) {
                in_buffer(t->data, 1);
                continue;
            }
            in_buffer(t->data, t->nbytes);
            if (gm_gguf_tensor_check(&g, t, &err) != GEMMA_OK || t->ne[0] > 4096) continue;
            int n = (int)t->ne[0];
            size_t rb = gm_ggml_row_bytes(t->type, n);
            if (rb == 0 || rb > t->nbytes) abort();
            if (gm_ggml_dequant_row(t->type, t->data, row, n) != 0) abort();
            sink ^= (uint8_t)(gm_ggml_dot_row(t->type, t->data, row, n) != 0.0f);
        }
        (void)sink;
        gm_gguf_close(&g);
    } else if (!one_line_error(&err)) {
        abort();
    }
    fuzz_mmproj(copy, size);
    free(copy);
    return 0;
}
