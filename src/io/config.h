/* config.h - a model's hyper-parameters as data.
 *
 * config.json comes in several spellings (the Hub's rope_theta /
 * rope_local_base_freq / rope_scaling / sliding_window_pattern, and
 * transformers 5's rope_parameters / layer_types), top level or under
 * text_config.  gm_config_parse turns all of them into this one struct,
 * filling missing keys with the reference defaults and rejecting values we
 * do not implement with an error naming the field. */
#ifndef GM_CONFIG_H
#define GM_CONFIG_H

#include "core/json.h"
#include "gemma.h"

typedef enum { GM_ARCH_GEMMA3 = 1, GM_ARCH_GEMMA4 = 2 } gm_arch;

/* Per-layer shape as data: Gemma 3 layers are uniform, Gemma 4's differ by
 * type (head width, partial RoPE) and by position (KV sharing, MLP width). */
typedef struct {
    int sliding;           /* 1 = sliding-window attention, 0 = global */
    double rope_theta;
    double rope_factor;    /* linear position scaling: positions are divided by this */
    int head_dim;
    int rope_pairs;        /* rotated (i, i + head_dim/2) pairs: head_dim/2, fewer for proportional RoPE */
    int kv_source;         /* the layer whose K/V cache this layer attends over: itself unless KV-shared */
    int ffn;               /* MLP width */
} gm_layer_config;

typedef struct {
    int bits;              /* 0 = not quantized */
    int group_size;
} gm_quant_spec;

#define GM_MAX_EOS 8

typedef struct {
    gm_arch arch;
    char model_type[32];
    int vocab_size, hidden_size, intermediate_size;
    int n_layers, n_heads, n_kv_heads, head_dim;
    double rms_norm_eps;
    double query_pre_attn_scalar;
    int sliding_window;
    int max_position_embeddings;
    double final_softcap;                /* 0 = none */
    int tie_word_embeddings;
    /* Gemma 4 (0 elsewhere) */
    int ple_dim;                         /* hidden_size_per_layer_input: per-layer embedding width */
    int ple_vocab;                       /* vocab_size_per_layer_input */
    int n_kv_shared;                     /* num_kv_shared_layers: the last layers reuse earlier K/V */
    int max_head_dim, max_ffn, max_kv_dim;   /* widest layer, for buffer sizing */
    float norm_shift;                    /* added to stored RMSNorm weights: 1 for HF/MLX (w), 0 for GGUF (1+w stored) */
    gm_layer_config *layers;             /* n_layers entries */
    int bos_token_id;
    int image_token_id;                  /* multimodal: the placeholder image embeddings replace; -1 if none */
    int eos_token_ids[GM_MAX_EOS];
    int n_eos;

    /* generation_config.json (optional): stop ids join eos_token_ids; sampling defaults */
    int has_generation_config;
    int gen_do_sample;
    double gen_temperature, gen_top_p, gen_min_p;
    int gen_top_k;

    /* MLX quantization: the global entry, and the object holding per-module
     * overrides (a pointer into `doc`, which the config owns). */
    int has_quantization;
    gm_quant_spec quant_default;
    const gm_json *quant_section;
    gm_json_doc *doc;
    char path[512];                      /* config.json (or .gguf) path, for messages */
} gm_config;

/* Parse config.json text.  `path` is used in messages only. */
gemma_status gm_config_parse(gm_config *cfg, const char *path, const char *text, size_t len, gemma_error *err);
void gm_config_free(gm_config *cfg);

/* Fill the per-layer shape of a uniform (Gemma 3) model from the global fields. */
void gm_config_uniform_layers(gm_config *cfg);

/* Merge generation_config.json: its eos_token_id(s) are added to the stop ids,
 * its sampling fields become the defaults. */
gemma_status gm_config_parse_generation(gm_config *cfg, const char *path, const char *text, size_t len,
                                        gemma_error *err);

/* The quantization that config.json declares for a module ("model.layers.0.mlp.down_proj"):
 * the per-module override if present, else the global default; bits = 0 if the
 * module is declared unquantized. Returns 0 if the config says nothing (no
 * quantization section). */
int gm_config_module_quant(const gm_config *cfg, const char *module, gm_quant_spec *out);

#endif
