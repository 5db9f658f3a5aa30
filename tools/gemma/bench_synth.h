/* bench_synth.h - random-weight checkpoints with the exact shapes of real
 * Gemma models, for `gemma bench --synthetic`.
 *
 * Speed depends on shapes and bits per weight, not on the values, so a
 * benchmark needs no multi-GB download: this writes a model directory
 * (config.json + model.safetensors, laid out as the Hub / mlx-community
 * uploads are) filled with random bits at memory speed.  The engine then
 * loads it through the normal path (mmap), so load time and resident memory
 * are measured honestly too. */
#ifndef GEMMA_CLI_BENCH_SYNTH_H
#define GEMMA_CLI_BENCH_SYNTH_H

#include <stdint.h>

typedef struct {
    const char *name;          /* "gemma3-270m", ... */
    int gemma4;                /* Gemma 4 E-model decoder */
    int hidden, layers, ffn, heads, kv_heads, head_dim, vocab, window;
    int sliding_pattern;       /* every Nth layer is global (Gemma 3: 6, E2B: 5, E4B: 6) */
    double rope_factor;        /* linear RoPE scaling of the global layers (Gemma 3 4B: 8) */
    /* Gemma 4 */
    int global_head_dim, kv_shared, per_layer, double_wide;
    /* SigLIP tower (0 = text only) */
    int v_hidden, v_ffn, v_layers, v_heads, v_image, v_patch, v_tokens;
} bench_arch;

/* The architecture called `name`, or NULL. */
const bench_arch *bench_arch_find(const char *name);
/* "gemma3-270m, gemma3-1b, ..." for messages. */
const char *bench_arch_names(void);

/* Weight formats --synthetic can write. */
typedef enum { SYNTH_MLX4, SYNTH_MLX8, SYNTH_BF16 } synth_quant;
int synth_quant_parse(const char *s, synth_quant *out);   /* 0 unknown */
const char *synth_quant_name(synth_quant q);

/* Write the model into dir (which must not exist, or be a folder this
 * function wrote earlier for the same arch and quant: then it is reused).
 * An arch with a vision tower gets it (as the real checkpoint has it).
 * Returns 0 or prints an error and returns -1. */
int bench_synth_write(const char *dir, const bench_arch *a, synth_quant q, uint64_t *bytes_written);

/* Multiply-adds x2 of one image through the arch's vision tower + projector. */
double bench_vision_flops(const bench_arch *a);

#endif
