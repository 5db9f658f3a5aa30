/* gguf_model.c - a llama.cpp GGUF checkpoint seen as a model directory.
 *
 * Most on-device Gemma users hold GGUF files (llama.cpp, Ollama, LM Studio).
 * Rather than a second loader, the GGUF's metadata becomes the same gm_config
 * a config.json gives, and its tensors join the same gm_tensor_set under the
 * Hugging Face names, still pointing into the map.  Block-quantized tensors
 * keep their ggml type (gm_tensor.ggml_type) and are bound as GGML weights;
 * F32/F16/BF16 tensors are plain arrays in the same layout as safetensors.
 *
 * What llama.cpp's converter (convert_hf_to_gguf.py, Gemma3Model) changes and
 * its loader (llama-model.cpp, LLM_ARCH_GEMMA3) assumes, and we mirror:
 *   - every RMSNorm weight is stored as 1+w (norm_shift 0 here, 1 for HF);
 *   - the sliding-window layer pattern is 6 (every 6th layer global) and
 *     sliding layers use RoPE base 10000 unscaled, unless the file says else;
 *   - the attention scale is 1/sqrt(head_dim), except for the 27B shape
 *     (1/sqrt(hidden/heads)), which is the HF query_pre_attn_scalar;
 *   - linear RoPE scaling (rope.scaling.*) applies to the global layers only;
 *   - the LM head is tied unless an output.weight tensor exists. */
#include "io/gguf_model.h"
#include "core/error.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_GGUF_LAYERS 1024

/* ============================================================== metadata */

static int has_key(const gm_gguf *g, const char *arch, const char *key) {
    char k[160];
    snprintf(k, sizeof k, "%s.%s", arch, key);
    return gm_gguf_find_kv(g, k) != NULL;
}

/* "<arch>.<key>" as a u32 in [lo, hi]; `fallback` when absent (fallback < 0: required). */
static gemma_status arch_u32(const gm_gguf *g, const char *arch, const char *key, int64_t fallback, uint32_t lo,
                             uint32_t hi, int *out, gemma_error *err) {
    char k[160];
    snprintf(k, sizeof k, "%s.%s", arch, key);
    if (!gm_gguf_find_kv(g, k)) {
        if (fallback < 0) return gm_fail(err, GEMMA_ERR_FORMAT, "%s: missing metadata key %s", gm_gguf_path(g), k);
        *out = (int)fallback;
        return GEMMA_OK;
    }
    uint32_t v;
    gemma_status st = gm_gguf_get_u32(g, k, &v, err);
    if (st) return st;
    if (v < lo || v > hi)
        return gm_fail(err, GEMMA_ERR_FORMAT, "%s: metadata %s = %u is outside [%u, %u]", gm_gguf_path(g), k, v, lo,
                       hi);
    *out = (int)v;
    return GEMMA_OK;
}

static gemma_status arch_f32(const gm_gguf *g, const char *arch, const char *key, double fallback, double *out,
                             gemma_error *err) {
    char k[160];
    snprintf(k, sizeof k, "%s.%s", arch, key);
    if (!gm_gguf_find_kv(g, k)) {
        *out = fallback;
        return GEMMA_OK;
    }
    float v;
    gemma_status st = gm_gguf_get_f32(g, k, &v, err);
    if (st) return st;
    if (!isfinite(v) || v < 0)
        return gm_fail(err, GEMMA_ERR_FORMAT, "%s: metadata %s = %g is not a finite non-negative number",
                       gm_gguf_path(g), k, (double)v);
    *out = v;
    return GEMMA_OK;
}

/* A vocabulary id by its piece ("<end_of_turn>"), -1 if absent. */
static int token_id_of(const gm_gguf *g, const char *piece) {
    const gm_gguf_kv *kv = gm_gguf_find_kv(g, "tokenizer.ggml.tokens");
    if (!kv || kv->value.type != GM_GGUF_ARRAY || kv->value.elem_type != GM_GGUF_STRING) return -1;
    size_t want = strlen(piece);
    for (uint64_t i = 0; i < kv->value.count && i < INT32_MAX; i++) {
        size_t len;
        const char *s = gm_gguf_arr_str(&kv->value, i, &len);
        if (s && len == want && memcmp(s, piece, len) == 0) return (int)i;
    }
    return -1;
}

static void add_stop(gm_config *cfg, int id) {
    if (id < 0 || id >= cfg->vocab_size) return;
    for (int i = 0; i < cfg->n_eos; i++)
        if (cfg->eos_token_ids[i] == id) return;
    if (cfg->n_eos < GM_MAX_EOS) cfg->eos_token_ids[cfg->n_eos++] = id;
}

static gemma_status token_ids(const gm_gguf *g, gm_config *cfg, gemma_error *err) {
    uint32_t v;
    gemma_status st;
    cfg->bos_token_id = 2;
    if (gm_gguf_find_kv(g, "tokenizer.ggml.bos_token_id")) {
        if ((st = gm_gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &v, err))) return st;
        cfg->bos_token_id = (int)v;
    }
    cfg->n_eos = 0;
    static const char *const stop_keys[] = {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id"};
    for (size_t i = 0; i < sizeof stop_keys / sizeof stop_keys[0]; i++) {
        if (!gm_gguf_find_kv(g, stop_keys[i])) continue;
        if ((st = gm_gguf_get_u32(g, stop_keys[i], &v, err))) return st;
        add_stop(cfg, (int)v);
    }
    /* Gemma's chat turns end with <end_of_turn>; llama.cpp finds it by its text too. */
    add_stop(cfg, token_id_of(g, "<end_of_turn>"));
    if (cfg->n_eos == 0) add_stop(cfg, 1);
    return GEMMA_OK;
}

/* Which layers slide: an explicit per-layer array if the file has one, else llama.cpp's pattern of 6. */
static gemma_status sliding_layers(const gm_gguf *g, const char *arch, gm_config *cfg, gemma_error *err) {
    char k[160];
    snprintf(k, sizeof k, "%s.attention.sliding_window_pattern", arch);
    const gm_gguf_kv *kv = gm_gguf_find_kv(g, k);
    if (!kv) {
        for (int i = 0; i < cfg->n_layers; i++) cfg->layers[i].sliding = ((i + 1) % 6) != 0;
        return GEMMA_OK;
    }
    int64_t v;
    if (kv->value.type == GM_GGUF_ARRAY) {
        if (kv->value.count != (uint64_t)cfg->n_layers)
            return gm_fail(err, GEMMA_ERR_FORMAT, "%s: metadata %s has %llu entries, expected %d (one per layer)",
                           gm_gguf_path(g), k, (unsigned long long)kv->value.count, cfg->n_layers);
        for (int i = 0; i < cfg->n_layers; i++) {
            if (!gm_gguf_arr_int(&kv->value, (uint64_t)i, &v))
                return gm_fail(err, GEMMA_ERR_FORMAT, "%s: metadata %s[%d] is not a bool or integer", gm_gguf_path(g),
                               k, i);
            cfg->layers[i].sliding = v != 0;
        }
        return GEMMA_OK;
    }
    if (!gm_gguf_value_int(&kv->value, &v) || v < 1 || v > MAX_GGUF_LAYERS)
        return gm_fail(err, GEMMA_ERR_FORMAT, "%s: metadata %s is not a layer period in [1, %d]", gm_gguf_path(g), k,
                       MAX_GGUF_LAYERS);
    for (int i = 0; i < cfg->n_layers; i++) cfg->layers[i].sliding = ((i + 1) % (int)v) != 0;
    return GEMMA_OK;
}

static gemma_status rope(const gm_gguf *g, const char *arch, gm_config *cfg, gemma_error *err) {
    double base = 0, base_swa = 0, factor = 1.0;
    gemma_status st;
    if ((st = arch_f32(g, arch, "rope.freq_base", 1e6, &base, err))) return st;
    if ((st = arch_f32(g, arch, "rope.freq_base_swa", 1e4, &base_swa, err))) return st;
    char k[160];
    snprintf(k, sizeof k, "%s.rope.scaling.type", arch);
    if (gm_gguf_find_kv(g, k)) {
        const char *type;
        if ((st = gm_gguf_get_str(g, k, &type, NULL, err))) return st;
        if (strcmp(type, "linear") == 0) {
            if ((st = arch_f32(g, arch, "rope.scaling.factor", 1.0, &factor, err))) return st;
        } else if (strcmp(type, "none") != 0) {
            return gm_fail(err, GEMMA_ERR_UNSUPPORTED, "%s: metadata %s '%s' is not supported (supported: none, linear)",
                           gm_gguf_path(g), k, type);
        }
    } else if (has_key(g, arch, "rope.scaling.factor")) {
        if ((st = arch_f32(g, arch, "rope.scaling.factor", 1.0, &factor, err))) return st;
    }
    if (base <= 0 || base_swa <= 0 || factor <= 0)
        return gm_fail(err, GEMMA_ERR_FORMAT, "%s: metadata %s.rope.* must be positive", gm_gguf_path(g), arch);
    for (int i = 0; i < cfg->n_layers; i++) {
        gm_layer_config *L = &cfg->layers[i];
        L->rope_theta = L->sliding ? base_swa : base;
        L->rope_factor = L->sliding ? 1.0 : factor;
    }
    return GEMMA_OK;
}

static gemma_status config_from_gguf(const gm_gguf *g, gm_config *cfg, gemma_error *err) {
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->path, sizeof cfg->path, "%s", gm_gguf_path(g));
    const char *path = gm_gguf_path(g), *arch;
    size_t arch_len;
    gemma_status st = gm_gguf_get_str(g, "general.architecture", &arch, &arch_len, err);
    if (st) return st;
    if (strlen(arch) != arch_len)
        return gm_fail(err, GEMMA_ERR_FORMAT, "%s: metadata general.architecture contains a NUL byte", path);
    if (strcmp(arch, "clip") == 0)
        return gm_fail(err, GEMMA_ERR_ARG,
                       "%s: general.architecture is 'clip': this is a multimodal projector (mmproj) file, not a "
                       "language model",
                       path);
    if (strcmp(arch, "gemma3") != 0)
        return gm_fail(err, GEMMA_ERR_UNSUPPORTED, "%s: general.architecture '%s' is not supported (supported: gemma3)",
                       path, arch);
    cfg->arch = GM_ARCH_GEMMA3;
    snprintf(cfg->model_type, sizeof cfg->model_type, "gemma3_text");
    cfg->norm_shift = 0.0f;
    cfg->image_token_id = -1;   /* set when an mmproj file joins the model */

    const gm_gguf_tensor *emb = gm_gguf_find_tensor(g, "token_embd.weight");
    if (!emb || emb->n_dims != 2)
        return gm_fail(err, GEMMA_ERR_FORMAT, "%s: missing 2-D tensor 'token_embd.weight'", path);
    if (emb->ne[1] < 1 || emb->ne[1] > (1 << 24))
        return gm_fail(err, GEMMA_ERR_FORMAT, "%s: tensor 'token_embd.weight' has %lld rows", path,
                       (long long)emb->ne[1]);
    cfg->vocab_size = (int)emb->ne[1];

    if ((st = arch_u32(g, arch, "embedding_length", -1, 2, 1 << 16, &cfg->hidden_size, err))) return st;
    if ((st = arch_u32(g, arch, "feed_forward_length", -1, 1, 1 << 20, &cfg->intermediate_size, err))) return st;
    if ((st = arch_u32(g, arch, "block_count", -1, 1, MAX_GGUF_LAYERS, &cfg->n_layers, err))) return st;
    if ((st = arch_u32(g, arch, "attention.head_count", -1, 1, 1024, &cfg->n_heads, err))) return st;
    if ((st = arch_u32(g, arch, "attention.head_count_kv", cfg->n_heads, 1, 1024, &cfg->n_kv_heads, err))) return st;
    if ((st = arch_u32(g, arch, "attention.key_length", cfg->hidden_size / cfg->n_heads, 2, 4096, &cfg->head_dim,
                       err)))
        return st;
    int vlen;
    if ((st = arch_u32(g, arch, "attention.value_length", cfg->head_dim, 2, 4096, &vlen, err))) return st;
    if (vlen != cfg->head_dim)
        return gm_fail(err, GEMMA_ERR_UNSUPPORTED, "%s: %s.attention.value_length %d differs from key_length %d", path,
                       arch, vlen, cfg->head_dim);
    if (cfg->n_heads % cfg->n_kv_heads)
        return gm_fail(err, GEMMA_ERR_FORMAT, "%s: %s.attention.head_count %d is not a multiple of head_count_kv %d",
                       path, arch, cfg->n_heads, cfg->n_kv_heads);
    if (cfg->head_dim % 2) return gm_fail(err, GEMMA_ERR_FORMAT, "%s: %s.attention.key_length must be even", path, arch);
    if ((st = arch_f32(g, arch, "attention.layer_norm_rms_epsilon", 1e-6, &cfg->rms_norm_eps, err))) return st;
    if ((st = arch_u32(g, arch, "attention.sliding_window", 4096, 1, 1u << 30, &cfg->sliding_window, err))) return st;
    if ((st = arch_u32(g, arch, "context_length", 131072, 1, 1u << 30, &cfg->max_position_embeddings, err))) return st;
    if ((st = arch_f32(g, arch, "final_logit_softcapping", 0, &cfg->final_softcap, err))) return st;

    /* llama.cpp: 1/sqrt(head_dim), but 1/sqrt(hidden/heads) for the 27B shape (62 layers). */
    double scale = 0;
    if ((st = arch_f32(g, arch, "attention.scale", 0, &scale, err))) return st;
    if (scale > 0) cfg->query_pre_attn_scalar = 1.0 / (scale * scale);
    else if (cfg->n_layers == 62) cfg->query_pre_attn_scalar = (double)(cfg->hidden_size / cfg->n_heads);
    else cfg->query_pre_attn_scalar = cfg->head_dim;

    cfg->tie_word_embeddings = gm_gguf_find_tensor(g, "output.weight") == NULL;
    cfg->layers = calloc((size_t)cfg->n_layers, sizeof *cfg->layers);
    if (!cfg->layers) return gm_fail(err, GEMMA_ERR_NOMEM, "%s: out of memory", path);
    if ((st = sliding_layers(g, arch, cfg, err))) return st;
    if ((st = rope(g, arch, cfg, err))) return st;
    gm_config_uniform_layers(cfg);
    return token_ids(g, cfg, err);
}

/* ================================================================ tensors */

/* GGUF -> Hugging Face names (gguf-py tensor_mapping.py, MODEL_ARCH.GEMMA3). */
static const struct { const char *gguf, *hf; } layer_names[] = {
    {"attn_q", "self_attn.q_proj"},
    {"attn_k", "self_attn.k_proj"},
    {"attn_v", "self_attn.v_proj"},
    {"attn_output", "self_attn.o_proj"},
    {"attn_q_norm", "self_attn.q_norm"},
    {"attn_k_norm", "self_attn.k_norm"},
    {"attn_norm", "input_layernorm"},
    {"post_attention_norm", "post_attention_layernorm"},
    {"ffn_norm", "pre_feedforward_layernorm"},
    {"post_ffw_norm", "post_feedforward_layernorm"},
    {"ffn_gate", "mlp.gate_proj"},
    {"ffn_up", "mlp.up_proj"},
    {"ffn_down", "mlp.down_proj"},
};

/* The HF name of a GGUF tensor, or the GGUF name itself when it has no counterpart. */
static void hf_name(const char *gguf, char *out, size_t n) {
    static const struct { const char *gguf, *hf; } globals[] = {
        {"token_embd.", "model.embed_tokens."},
        {"output_norm.", "model.norm."},
        {"output.", "lm_head."},
    };
    for (size_t i = 0; i < sizeof globals / sizeof globals[0]; i++) {
        size_t l = strlen(globals[i].gguf);
        if (strncmp(gguf, globals[i].gguf, l) == 0) {
            snprintf(out, n, "%s%s", globals[i].hf, gguf + l);
            return;
        }
    }
    int layer, used = 0;
    if (sscanf(gguf, "blk.%d.%n", &layer, &used) == 1 && used > 0 && layer >= 0) {
        const char *rest = gguf + used, *dot = strchr(rest, '.');
        size_t base = dot ? (size_t)(dot - rest) : strlen(rest);
        for (size_t i = 0; i < sizeof layer_names / sizeof layer_names[0]; i++)
            if (strlen(layer_names[i].gguf) == base && strncmp(rest, layer_names[i].gguf, base) == 0) {
                snprintf(out, n, "model.layers.%d.%s%s", layer, layer_names[i].hf, dot ? dot : "");
                return;
            }
    }
    snprintf(out, n, "%s", gguf);
}

static gemma_status add_tensors(const gm_gguf *g, gm_tensor_set *ts, gemma_error *err) {
    gm_mapfile borrowed = {.data = g->mf.data, .size = g->mf.size, .path = strdup(gm_gguf_path(g)), .is_mapped = 0};
    if (!borrowed.path) return gm_fail(err, GEMMA_ERR_NOMEM, "%s: out of memory", gm_gguf_path(g));
    int file = gm_tensors_add_source(ts, borrowed);
    if (file < 0) return gm_fail(err, GEMMA_ERR_NOMEM, "%s: out of memory", gm_gguf_path(g));
    for (size_t i = 0; i < g->n_tensors; i++) {
        const gm_gguf_tensor *gt = &g->tensors[i];
        char name[512];
        hf_name(gt->name, name, sizeof name);
        gm_tensor t = gm_gguf_tensor_view(gt, name, file);
        gemma_status st = gm_tensors_add(ts, &t, err);
        if (st) return st;
    }
    return GEMMA_OK;
}

/* ================================================================== open */

gemma_status gm_gguf_model_open(gm_gguf **gguf, gm_config *cfg, gm_tensor_set *ts, const char *path,
                                gemma_error *err) {
    gm_gguf *g = calloc(1, sizeof *g);
    if (!g) return gm_fail(err, GEMMA_ERR_NOMEM, "%s: out of memory", path);
    *gguf = g;
    gemma_status st = gm_gguf_open(g, path, err);
    if (!st) st = config_from_gguf(g, cfg, err);
    if (!st) st = add_tensors(g, ts, err);
    return st;
}

void gm_gguf_model_close(gm_gguf *g) {
    if (!g) return;
    gm_gguf_close(g);
    free(g);
}
