/* config.c - config.json -> gm_config (see config.h).
 *
 * Defaults are those of transformers' Gemma3TextConfig, the reference the
 * Hub's abbreviated configs rely on (google/gemma-3-4b-it omits heads,
 * head_dim, query_pre_attn_scalar and the rope bases). */
#include "io/config.h"
#include "core/error.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CONFIG_LAYERS 4096

typedef struct {
    const char *path;     /* config.json path */
    const char *section;  /* "" or "text_config." */
    gemma_error *err;
} ctx;

/* ---------------------------------------------------------------- getters */

static gemma_status get_int(const ctx *c, const gm_json *obj, const char *key, int def, int lo, int hi, int *out) {
    const gm_json *v = gm_json_get(obj, key);
    if (!v || gm_json_is(v, GM_JSON_NULL)) {
        *out = def;
        return GEMMA_OK;
    }
    int64_t x;
    if (!gm_json_int(v, &x))
        return gm_fail(c->err, GEMMA_ERR_FORMAT, "%s: field %s%s must be an integer", c->path, c->section, key);
    if (x < lo || x > hi)
        return gm_fail(c->err, GEMMA_ERR_UNSUPPORTED, "%s: field %s%s = %lld is out of the supported range [%d, %d]",
                       c->path, c->section, key, (long long)x, lo, hi);
    *out = (int)x;
    return GEMMA_OK;
}

/* A positive finite number, or `def` when absent/null.  `allow_zero` for softcaps. */
static gemma_status get_num(const ctx *c, const gm_json *obj, const char *key, double def, double *out) {
    const gm_json *v = gm_json_get(obj, key);
    if (!v || gm_json_is(v, GM_JSON_NULL)) {
        *out = def;
        return GEMMA_OK;
    }
    double x;
    if (!gm_json_number(v, &x) || !isfinite(x) || x <= 0)
        return gm_fail(c->err, GEMMA_ERR_FORMAT, "%s: field %s%s must be a positive number", c->path, c->section, key);
    *out = x;
    return GEMMA_OK;
}

static gemma_status get_bool(const ctx *c, const gm_json *obj, const char *key, int def, int *out) {
    const gm_json *v = gm_json_get(obj, key);
    if (!v || gm_json_is(v, GM_JSON_NULL)) {
        *out = def;
        return GEMMA_OK;
    }
    if (!gm_json_is_bool(v))
        return gm_fail(c->err, GEMMA_ERR_FORMAT, "%s: field %s%s must be true or false", c->path, c->section, key);
    *out = gm_json_is(v, GM_JSON_TRUE);
    return GEMMA_OK;
}

/* ------------------------------------------------------------------- rope */

/* One rope description {rope_type|type, rope_theta, factor}. */
static gemma_status parse_rope(const ctx *c, const gm_json *r, const char *field, double def_theta,
                               double *theta, double *factor) {
    *theta = def_theta;
    *factor = 1.0;
    if (!r || gm_json_is(r, GM_JSON_NULL)) return GEMMA_OK;
    if (!gm_json_is(r, GM_JSON_OBJECT))
        return gm_fail(c->err, GEMMA_ERR_FORMAT, "%s: field %s%s must be an object", c->path, c->section, field);
    const char *type = gm_json_string(gm_json_get(r, "rope_type"));
    if (!type) type = gm_json_string(gm_json_get(r, "type"));
    if (!type) type = "default";
    const gm_json *th = gm_json_get(r, "rope_theta");
    if (th && !gm_json_is(th, GM_JSON_NULL)) {
        if (!gm_json_number(th, theta) || !isfinite(*theta) || *theta <= 1.0)
            return gm_fail(c->err, GEMMA_ERR_FORMAT, "%s: field %s%s.rope_theta must be a number > 1", c->path,
                           c->section, field);
    }
    if (strcmp(type, "default") == 0) return GEMMA_OK;
    if (strcmp(type, "linear") == 0) {
        const gm_json *f = gm_json_get(r, "factor");
        if (!gm_json_number(f, factor) || !isfinite(*factor) || *factor <= 0)
            return gm_fail(c->err, GEMMA_ERR_FORMAT, "%s: field %s%s.factor must be a positive number", c->path,
                           c->section, field);
        return GEMMA_OK;
    }
    return gm_fail(c->err, GEMMA_ERR_UNSUPPORTED,
                   "%s: field %s%s.rope_type '%s' is not supported (supported: default, linear)", c->path, c->section,
                   field, type);
}

static gemma_status parse_rope_all(const ctx *c, const gm_json *t, gm_config *cfg) {
    double g_theta, g_factor, l_theta, l_factor;
    gemma_status st;
    const gm_json *rp = gm_json_get(t, "rope_parameters");
    if (rp && !gm_json_is(rp, GM_JSON_NULL)) {
        /* transformers 5: one entry per layer type, or one flat entry for the global layers */
        if (!gm_json_is(rp, GM_JSON_OBJECT))
            return gm_fail(c->err, GEMMA_ERR_FORMAT, "%s: field %srope_parameters must be an object", c->path,
                           c->section);
        const gm_json *full = gm_json_get(rp, "full_attention"), *slide = gm_json_get(rp, "sliding_attention");
        if (full || slide) {
            if ((st = parse_rope(c, full, "rope_parameters.full_attention", 1e6, &g_theta, &g_factor))) return st;
            if ((st = parse_rope(c, slide, "rope_parameters.sliding_attention", 1e4, &l_theta, &l_factor))) return st;
        } else {
            if ((st = parse_rope(c, rp, "rope_parameters", 1e6, &g_theta, &g_factor))) return st;
            if ((st = get_num(c, t, "rope_local_base_freq", 1e4, &l_theta))) return st;
            l_factor = 1.0;
        }
    } else {
        /* Hub spelling: rope_scaling applies to the global layers only */
        if ((st = parse_rope(c, gm_json_get(t, "rope_scaling"), "rope_scaling", 1e6, &g_theta, &g_factor))) return st;
        if ((st = get_num(c, t, "rope_theta", 1e6, &g_theta))) return st;
        if ((st = get_num(c, t, "rope_local_base_freq", 1e4, &l_theta))) return st;
        l_factor = 1.0;
    }
    for (int i = 0; i < cfg->n_layers; i++) {
        gm_layer_config *L = &cfg->layers[i];
        L->rope_theta = L->sliding ? l_theta : g_theta;
        L->rope_factor = L->sliding ? l_factor : g_factor;
    }
    return GEMMA_OK;
}

/* ------------------------------------------------------------ layer types */

static gemma_status parse_layer_types(const ctx *c, const gm_json *t, gm_config *cfg) {
    const gm_json *lt = gm_json_get(t, "layer_types");
    if (lt && !gm_json_is(lt, GM_JSON_NULL)) {
        if (!gm_json_is(lt, GM_JSON_ARRAY) || gm_json_count(lt) != (size_t)cfg->n_layers)
            return gm_fail(c->err, GEMMA_ERR_FORMAT, "%s: field %slayer_types must be an array of %d strings", c->path,
                           c->section, cfg->n_layers);
        for (int i = 0; i < cfg->n_layers; i++) {
            const char *s = gm_json_string(gm_json_at(lt, (size_t)i));
            if (s && strcmp(s, "sliding_attention") == 0) cfg->layers[i].sliding = 1;
            else if (s && strcmp(s, "full_attention") == 0) cfg->layers[i].sliding = 0;
            else
                return gm_fail(c->err, GEMMA_ERR_UNSUPPORTED,
                               "%s: field %slayer_types[%d] must be \"sliding_attention\" or \"full_attention\"",
                               c->path, c->section, i);
        }
        return GEMMA_OK;
    }
    int pattern;
    gemma_status st;
    const char *key = gm_json_get(t, "sliding_window_pattern") ? "sliding_window_pattern" : "_sliding_window_pattern";
    if ((st = get_int(c, t, key, 6, 1, 1 << 20, &pattern))) return st;
    for (int i = 0; i < cfg->n_layers; i++) cfg->layers[i].sliding = ((i + 1) % pattern) != 0;
    return GEMMA_OK;
}

/* ------------------------------------------------------------ quantization */

static gemma_status parse_quant_spec(const ctx *c, const gm_json *q, const char *field, gm_quant_spec *out) {
    int bits = 0, gs = 0;
    gemma_status st;
    ctx cq = *c;
    cq.section = field;
    if ((st = get_int(&cq, q, "bits", 0, 1, 8, &bits))) return st;
    if ((st = get_int(&cq, q, "group_size", 0, 1, 1 << 16, &gs))) return st;
    if (bits != 2 && bits != 3 && bits != 4 && bits != 5 && bits != 6 && bits != 8)
        return gm_fail(c->err, GEMMA_ERR_UNSUPPORTED, "%s: field %sbits = %d is not supported (2, 3, 4, 5, 6, 8)",
                       c->path, field, bits);
    if (gs != 32 && gs != 64 && gs != 128)
        return gm_fail(c->err, GEMMA_ERR_UNSUPPORTED,
                       "%s: field %sgroup_size = %d is not supported (32, 64, 128)", c->path, field, gs);
    const char *mode = gm_json_string(gm_json_get(q, "mode"));
    if (mode && strcmp(mode, "affine") != 0)
        return gm_fail(c->err, GEMMA_ERR_UNSUPPORTED, "%s: field %smode '%s' is not supported (affine)", c->path,
                       field, mode);
    out->bits = bits;
    out->group_size = gs;
    return GEMMA_OK;
}

static gemma_status parse_quantization(const ctx *c, const gm_json *root, gm_config *cfg) {
    const char *field = "quantization.";
    const gm_json *q = gm_json_get(root, "quantization");
    if (!q || gm_json_is(q, GM_JSON_NULL)) {
        q = gm_json_get(root, "quantization_config");
        field = "quantization_config.";
    }
    if (!q || gm_json_is(q, GM_JSON_NULL)) return GEMMA_OK;
    if (!gm_json_is(q, GM_JSON_OBJECT))
        return gm_fail(c->err, GEMMA_ERR_FORMAT, "%s: field %.*s must be an object", c->path,
                       (int)strlen(field) - 1, field);
    gemma_status st = parse_quant_spec(c, q, field, &cfg->quant_default);
    if (st) return st;
    /* validate every override now so a bad one is reported at load time */
    for (size_t i = 0; i < gm_json_count(q); i++) {
        const gm_json *m = gm_json_at(q, i);
        if (!gm_json_is(m, GM_JSON_OBJECT)) continue;
        char sub[300];
        snprintf(sub, sizeof sub, "%s%s.", field, m->key);
        gm_quant_spec spec;
        if ((st = parse_quant_spec(c, m, sub, &spec))) return st;
    }
    cfg->has_quantization = 1;
    cfg->quant_section = q;
    return GEMMA_OK;
}

int gm_config_module_quant(const gm_config *cfg, const char *module, gm_quant_spec *out) {
    if (!cfg->has_quantization) return 0;
    const gm_json *m = gm_json_get(cfg->quant_section, module);
    if (gm_json_is(m, GM_JSON_FALSE)) {
        out->bits = 0;
        out->group_size = 0;
        return 1;
    }
    if (gm_json_is(m, GM_JSON_OBJECT)) {
        int64_t b = 0, g = 0;
        gm_json_int(gm_json_get(m, "bits"), &b);
        gm_json_int(gm_json_get(m, "group_size"), &g);
        out->bits = (int)b;
        out->group_size = (int)g;
        return 1;
    }
    *out = cfg->quant_default;
    return 1;
}

/* ------------------------------------------------------------------- main */

static gemma_status parse_token_ids(const ctx *c, const gm_json *t, const gm_json *root, gm_config *cfg) {
    int64_t v;
    const gm_json *bos = gm_json_get(t, "bos_token_id");
    if (!bos) bos = gm_json_get(root, "bos_token_id");
    cfg->bos_token_id = gm_json_int(bos, &v) ? (int)v : 2;
    const gm_json *eos = gm_json_get(root, "eos_token_id");
    if (!eos || gm_json_is(eos, GM_JSON_NULL)) eos = gm_json_get(t, "eos_token_id");
    cfg->n_eos = 0;
    if (gm_json_is(eos, GM_JSON_ARRAY)) {
        for (size_t i = 0; i < gm_json_count(eos) && cfg->n_eos < GM_MAX_EOS; i++)
            if (gm_json_int(gm_json_at(eos, i), &v)) cfg->eos_token_ids[cfg->n_eos++] = (int)v;
    } else if (gm_json_int(eos, &v)) {
        cfg->eos_token_ids[cfg->n_eos++] = (int)v;
    } else {
        cfg->eos_token_ids[cfg->n_eos++] = 1;
    }
    (void)c;
    return GEMMA_OK;
}

/* The size fields both generations share, with each one's reference defaults. */
typedef struct {
    int vocab, hidden, inter, layers, kv_heads, window;
} size_defaults;

static gemma_status parse_sizes(const ctx *c, const gm_json *t, const size_defaults *d, gm_config *cfg) {
    gemma_status st;
    if ((st = get_int(c, t, "vocab_size", d->vocab, 1, 1 << 24, &cfg->vocab_size))) return st;
    if ((st = get_int(c, t, "hidden_size", d->hidden, 2, 1 << 16, &cfg->hidden_size))) return st;
    if ((st = get_int(c, t, "intermediate_size", d->inter, 1, 1 << 20, &cfg->intermediate_size))) return st;
    if ((st = get_int(c, t, "num_hidden_layers", d->layers, 1, MAX_CONFIG_LAYERS, &cfg->n_layers))) return st;
    if ((st = get_int(c, t, "num_attention_heads", 8, 1, 1024, &cfg->n_heads))) return st;
    if ((st = get_int(c, t, "num_key_value_heads", d->kv_heads, 1, 1024, &cfg->n_kv_heads))) return st;
    if ((st = get_int(c, t, "head_dim", 256, 2, 4096, &cfg->head_dim))) return st;
    if ((st = get_num(c, t, "rms_norm_eps", 1e-6, &cfg->rms_norm_eps))) return st;
    if ((st = get_int(c, t, "sliding_window", d->window, 1, 1 << 30, &cfg->sliding_window))) return st;
    return get_int(c, t, "max_position_embeddings", 131072, 1, 1 << 30, &cfg->max_position_embeddings);
}

static gemma_status check_heads_and_activation(const ctx *c, const gm_json *t, const gm_config *cfg) {
    if (cfg->n_heads % cfg->n_kv_heads != 0)
        return gm_fail(c->err, GEMMA_ERR_FORMAT,
                       "%s: field %snum_attention_heads (%d) is not a multiple of num_key_value_heads (%d)", c->path,
                       c->section, cfg->n_heads, cfg->n_kv_heads);
    const char *act = gm_json_string(gm_json_get(t, "hidden_activation"));
    if (!act) act = gm_json_string(gm_json_get(t, "hidden_act"));
    if (act && strcmp(act, "gelu_pytorch_tanh") != 0 && strcmp(act, "gelu_tanh") != 0)
        return gm_fail(c->err, GEMMA_ERR_UNSUPPORTED,
                       "%s: field %shidden_activation '%s' is not supported (gelu_pytorch_tanh)", c->path, c->section,
                       act);
    return GEMMA_OK;
}

static gemma_status parse_gemma3_text(const ctx *c, const gm_json *t, const gm_json *root, gm_config *cfg) {
    gemma_status st;
    if (!gm_json_is(t, GM_JSON_OBJECT))
        return gm_fail(c->err, GEMMA_ERR_FORMAT, "%s: field text_config must be an object", c->path);
    static const size_defaults g3 = {262208, 2304, 9216, 26, 4, 4096};
    if ((st = parse_sizes(c, t, &g3, cfg))) return st;
    if ((st = get_num(c, t, "query_pre_attn_scalar", 256, &cfg->query_pre_attn_scalar))) return st;
    /* The reference (transformers' Gemma3Attention, JAX Gemma 3, mlx-lm) has no
     * attention soft-cap: attn_logit_softcapping is accepted and ignored, as there.
     * The final soft-cap is applied by Gemma3ForCausalLM but never read by
     * Gemma3ForConditionalGeneration, so a multimodal config does not get one. */
    if ((st = get_num(c, t, "final_logit_softcapping", 0, &cfg->final_softcap))) return st;
    if (t != root) cfg->final_softcap = 0;
    /* Tying: a multimodal config decides at its top level (transformers writes a
     * text_config.tie_word_embeddings that it does not read). */
    if ((st = get_bool(c, root, "tie_word_embeddings", 1, &cfg->tie_word_embeddings))) return st;

    if ((st = check_heads_and_activation(c, t, cfg))) return st;
    if (cfg->head_dim % 2)
        return gm_fail(c->err, GEMMA_ERR_FORMAT, "%s: field %shead_dim must be even for RoPE", c->path, c->section);
    int flag = 0;
    if ((st = get_bool(c, t, "attention_bias", 0, &flag))) return st;
    if (flag)
        return gm_fail(c->err, GEMMA_ERR_UNSUPPORTED, "%s: field %sattention_bias = true is not supported", c->path,
                       c->section);
    if ((st = get_bool(c, t, "use_bidirectional_attention", 0, &flag))) return st;
    if (flag)
        return gm_fail(c->err, GEMMA_ERR_UNSUPPORTED,
                       "%s: field %suse_bidirectional_attention = true is not supported", c->path, c->section);

    cfg->layers = calloc((size_t)cfg->n_layers, sizeof *cfg->layers);
    if (!cfg->layers) return gm_fail(c->err, GEMMA_ERR_NOMEM, "%s: out of memory", c->path);
    if ((st = parse_layer_types(c, t, cfg))) return st;
    if ((st = parse_rope_all(c, t, cfg))) return st;
    gm_config_uniform_layers(cfg);
    return parse_token_ids(c, t, root, cfg);
}

/* Gemma 3's layers are uniform; record that per layer so both forward passes read the same table. */
void gm_config_uniform_layers(gm_config *cfg) {
    for (int i = 0; i < cfg->n_layers; i++) {
        gm_layer_config *L = &cfg->layers[i];
        L->head_dim = cfg->head_dim;
        L->rope_pairs = cfg->head_dim / 2;
        L->kv_source = i;
        L->ffn = cfg->intermediate_size;
    }
    cfg->max_head_dim = cfg->head_dim;
    cfg->max_ffn = cfg->intermediate_size;
    cfg->max_kv_dim = cfg->n_kv_heads * cfg->head_dim;
}

/* ------------------------------------------------------------------ Gemma 4 */

/* One Gemma 4 rope entry: "default" (every pair rotates) or "proportional"
 * (only partial_rotary_factor of the pairs rotate; the frequency exponent
 * still divides by the whole head width). */
static gemma_status parse_rope4(const ctx *c, const gm_json *rp, const char *type_key, double def_theta,
                                int proportional_default, double *theta, double *factor, double *partial,
                                int *proportional) {
    char field[96];
    snprintf(field, sizeof field, "rope_parameters.%s", type_key);
    const gm_json *r = rp ? gm_json_get(rp, type_key) : NULL;
    *theta = def_theta;
    *factor = 1.0;
    *partial = proportional_default ? 0.25 : 1.0;
    *proportional = proportional_default;
    if (!r || gm_json_is(r, GM_JSON_NULL)) return GEMMA_OK;
    if (!gm_json_is(r, GM_JSON_OBJECT))
        return gm_fail(c->err, GEMMA_ERR_FORMAT, "%s: field %s%s must be an object", c->path, c->section, field);
    const char *type = gm_json_string(gm_json_get(r, "rope_type"));
    if (!type) type = gm_json_string(gm_json_get(r, "type"));
    if (!type) type = "default";
    if (strcmp(type, "default") != 0 && strcmp(type, "proportional") != 0)
        return gm_fail(c->err, GEMMA_ERR_UNSUPPORTED,
                       "%s: field %s%s.rope_type '%s' is not supported (supported: default, proportional)", c->path,
                       c->section, field, type);
    *proportional = strcmp(type, "proportional") == 0;
    ctx cr = *c;
    char sub[112];
    snprintf(sub, sizeof sub, "%s%s.", c->section, field);
    cr.section = sub;
    gemma_status st;
    if ((st = get_num(&cr, r, "rope_theta", def_theta, theta))) return st;
    if ((st = get_num(&cr, r, "factor", 1.0, factor))) return st;
    if ((st = get_num(&cr, r, "partial_rotary_factor", *proportional ? 0.25 : 1.0, partial))) return st;
    if (*partial > 1.0)
        return gm_fail(c->err, GEMMA_ERR_FORMAT, "%s: field %s%s.partial_rotary_factor must be in (0, 1]", c->path,
                       c->section, field);
    if (!*proportional && (*partial != 1.0 || *factor != 1.0))
        return gm_fail(c->err, GEMMA_ERR_UNSUPPORTED,
                       "%s: field %s%s: rope_type default with partial_rotary_factor or factor is not supported",
                       c->path, c->section, field);
    return GEMMA_OK;
}

/* per_layer_config (transformers' re-saved spelling of global_head_dim):
 * {"<layer>": {"head_dim": n, "num_key_value_heads": n}}. */
static gemma_status parse_per_layer_config(const ctx *c, const gm_json *plc, gm_config *cfg) {
    if (!gm_json_is(plc, GM_JSON_OBJECT))
        return gm_fail(c->err, GEMMA_ERR_FORMAT, "%s: field %sper_layer_config must be an object", c->path,
                       c->section);
    for (size_t i = 0; i < gm_json_count(plc); i++) {
        const gm_json *e = gm_json_at(plc, i);
        char *end;
        long l = strtol(e->key, &end, 10);
        if (*e->key == 0 || *end || l < 0 || l >= cfg->n_layers || !gm_json_is(e, GM_JSON_OBJECT))
            return gm_fail(c->err, GEMMA_ERR_FORMAT,
                           "%s: field %sper_layer_config.%.32s must be a layer index below %d holding an object",
                           c->path, c->section, e->key, cfg->n_layers);
        char sub[96];
        snprintf(sub, sizeof sub, "%sper_layer_config.%ld.", c->section, l);
        ctx cl = *c;
        cl.section = sub;
        int hd, kvh;
        gemma_status st;
        if ((st = get_int(&cl, e, "head_dim", cfg->layers[l].head_dim, 2, 4096, &hd))) return st;
        if ((st = get_int(&cl, e, "num_key_value_heads", cfg->n_kv_heads, 1, 1024, &kvh))) return st;
        if (kvh != cfg->n_kv_heads)
            return gm_fail(c->err, GEMMA_ERR_UNSUPPORTED,
                           "%s: field %snum_key_value_heads = %d differs from num_key_value_heads (not supported)",
                           c->path, sub, kvh);
        cfg->layers[l].head_dim = hd;
    }
    return GEMMA_OK;
}

/* Fields of the larger Gemma 4 models (26B/31B) this decoder does not implement. */
static gemma_status reject_gemma4_extras(const ctx *c, const gm_json *t) {
    int flag;
    gemma_status st;
    static const char *const flags[] = {"attention_k_eq_v", "enable_moe_block", "attention_bias"};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        if ((st = get_bool(c, t, flags[i], 0, &flag))) return st;
        if (flag)
            return gm_fail(c->err, GEMMA_ERR_UNSUPPORTED, "%s: field %s%s = true is not supported (Gemma 4 E2B/E4B only)",
                           c->path, c->section, flags[i]);
    }
    static const char *const moe[] = {"num_experts", "top_k_experts", "moe_intermediate_size"};
    for (size_t i = 0; i < sizeof moe / sizeof moe[0]; i++) {
        const gm_json *v = gm_json_get(t, moe[i]);
        int64_t n;
        if (v && !gm_json_is(v, GM_JSON_NULL) && !(gm_json_int(v, &n) && n == 0))
            return gm_fail(c->err, GEMMA_ERR_UNSUPPORTED,
                           "%s: field %s%s: mixture-of-experts models are not supported (Gemma 4 E2B/E4B only)",
                           c->path, c->section, moe[i]);
    }
    const gm_json *bi = gm_json_get(t, "use_bidirectional_attention");
    if (bi && !gm_json_is(bi, GM_JSON_NULL) && !gm_json_is(bi, GM_JSON_FALSE))
        return gm_fail(c->err, GEMMA_ERR_UNSUPPORTED, "%s: field %suse_bidirectional_attention is not supported",
                       c->path, c->section);
    return GEMMA_OK;
}

/* The donor of every KV-shared layer: the last unshared layer of its type
 * (transformers' kv_sharing_modes, mlx-lm's previous_kvs). */
static gemma_status assign_kv_sources(const ctx *c, gm_config *cfg) {
    int first_shared = cfg->n_layers - cfg->n_kv_shared;
    int last_of[2] = {-1, -1};
    for (int i = 0; i < cfg->n_layers; i++) {
        gm_layer_config *L = &cfg->layers[i];
        if (i < first_shared) {
            last_of[L->sliding] = i;
            L->kv_source = i;
            continue;
        }
        if (last_of[L->sliding] < 0)
            return gm_fail(c->err, GEMMA_ERR_FORMAT,
                           "%s: field %snum_kv_shared_layers = %d leaves no unshared %s layer for layer %d to reuse",
                           c->path, c->section, cfg->n_kv_shared, L->sliding ? "sliding" : "full", i);
        L->kv_source = last_of[L->sliding];
        if (L->head_dim != cfg->layers[L->kv_source].head_dim)
            return gm_fail(c->err, GEMMA_ERR_FORMAT, "%s: field %shead_dim: layer %d (%d) and its KV donor %d (%d) differ",
                           c->path, c->section, i, L->head_dim, L->kv_source, cfg->layers[L->kv_source].head_dim);
    }
    return GEMMA_OK;
}

static gemma_status parse_gemma4_text(const ctx *c, const gm_json *t, const gm_json *root, gm_config *cfg) {
    gemma_status st;
    if (!gm_json_is(t, GM_JSON_OBJECT))
        return gm_fail(c->err, GEMMA_ERR_FORMAT, "%s: field text_config must be an object", c->path);
    static const size_defaults g4 = {262144, 2304, 9216, 30, 4, 512};
    if ((st = parse_sizes(c, t, &g4, cfg))) return st;
    int global_hd = 512;
    if ((st = get_int(c, t, "global_head_dim", 512, 2, 4096, &global_hd))) return st;
    /* Applied by both Gemma4ForCausalLM and Gemma4ForConditionalGeneration (from text_config). */
    if ((st = get_num(c, t, "final_logit_softcapping", 0, &cfg->final_softcap))) return st;
    if ((st = get_bool(c, root, "tie_word_embeddings", 1, &cfg->tie_word_embeddings))) return st;
    if ((st = get_int(c, t, "hidden_size_per_layer_input", 256, 0, 1 << 16, &cfg->ple_dim))) return st;
    if ((st = get_int(c, t, "vocab_size_per_layer_input", cfg->vocab_size, 1, 1 << 24, &cfg->ple_vocab))) return st;
    if ((st = get_int(c, t, "num_kv_shared_layers", 0, 0, cfg->n_layers - 1, &cfg->n_kv_shared))) return st;
    int double_wide = 0;
    if ((st = get_bool(c, t, "use_double_wide_mlp", 0, &double_wide))) return st;
    if ((st = reject_gemma4_extras(c, t))) return st;
    /* scale 1.0: query_pre_attn_scalar (copied into some configs from Gemma 3n) is not read */
    cfg->query_pre_attn_scalar = 1.0;
    if ((st = check_heads_and_activation(c, t, cfg))) return st;

    cfg->layers = calloc((size_t)cfg->n_layers, sizeof *cfg->layers);
    if (!cfg->layers) return gm_fail(c->err, GEMMA_ERR_NOMEM, "%s: out of memory", c->path);
    if ((st = parse_layer_types(c, t, cfg))) return st;
    /* transformers forces the last layer to full attention (with a warning) */
    cfg->layers[cfg->n_layers - 1].sliding = 0;
    gm_config_uniform_layers(cfg);
    for (int i = 0; i < cfg->n_layers; i++)
        if (!cfg->layers[i].sliding) cfg->layers[i].head_dim = global_hd;
    const gm_json *plc = gm_json_get(t, "per_layer_config");
    if (plc && !gm_json_is(plc, GM_JSON_NULL) && (st = parse_per_layer_config(c, plc, cfg))) return st;

    const gm_json *rp = gm_json_get(t, "rope_parameters");
    if (rp && !gm_json_is(rp, GM_JSON_NULL) && !gm_json_is(rp, GM_JSON_OBJECT))
        return gm_fail(c->err, GEMMA_ERR_FORMAT, "%s: field %srope_parameters must be an object", c->path, c->section);
    double theta[2], factor[2], partial[2];
    int prop[2];
    if ((st = parse_rope4(c, rp, "full_attention", 1e6, 1, &theta[0], &factor[0], &partial[0], &prop[0]))) return st;
    if ((st = parse_rope4(c, rp, "sliding_attention", 1e4, 0, &theta[1], &factor[1], &partial[1], &prop[1])))
        return st;
    for (int i = 0; i < cfg->n_layers; i++) {
        gm_layer_config *L = &cfg->layers[i];
        int s = L->sliding;
        if (L->head_dim % 2)
            return gm_fail(c->err, GEMMA_ERR_FORMAT, "%s: field %shead_dim of layer %d (%d) must be even for RoPE",
                           c->path, c->section, i, L->head_dim);
        L->rope_theta = theta[s];
        L->rope_factor = factor[s];
        /* transformers: int(partial_rotary_factor * head_dim // 2) */
        L->rope_pairs = prop[s] ? (int)floor(partial[s] * L->head_dim / 2.0) : L->head_dim / 2;
    }
    if ((st = assign_kv_sources(c, cfg))) return st;
    cfg->max_head_dim = cfg->max_ffn = 0;
    for (int i = 0; i < cfg->n_layers; i++) {
        gm_layer_config *L = &cfg->layers[i];
        L->ffn = cfg->intermediate_size * (double_wide && L->kv_source != i ? 2 : 1);
        if (L->head_dim > cfg->max_head_dim) cfg->max_head_dim = L->head_dim;
        if (L->ffn > cfg->max_ffn) cfg->max_ffn = L->ffn;
    }
    cfg->head_dim = cfg->max_head_dim;
    cfg->max_kv_dim = cfg->n_kv_heads * cfg->max_head_dim;
    cfg->norm_shift = 0.0f;   /* Gemma 4 norms are x * w, not x * (1 + w) */
    return parse_token_ids(c, t, root, cfg);
}

gemma_status gm_config_parse(gm_config *cfg, const char *path, const char *text, size_t len, gemma_error *err) {
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->path, sizeof cfg->path, "%s", path);
    cfg->norm_shift = 1.0f;
    cfg->image_token_id = -1;
    char jerr[160];
    gm_json_limits lim = {.max_bytes = 16u << 20, .max_depth = 32};
    cfg->doc = gm_json_parse(text, len, &lim, jerr, sizeof jerr);
    if (!cfg->doc) return gm_fail(err, GEMMA_ERR_FORMAT, "%s: not valid JSON: %s", path, jerr);
    const gm_json *root = gm_json_root(cfg->doc);
    ctx c = {.path = path, .section = "", .err = err};
    if (!gm_json_is(root, GM_JSON_OBJECT)) return gm_fail(err, GEMMA_ERR_FORMAT, "%s: not a JSON object", path);

    const char *mt = gm_json_string(gm_json_get(root, "model_type"));
    if (!mt) return gm_fail(err, GEMMA_ERR_FORMAT, "%s: missing field model_type", path);
    snprintf(cfg->model_type, sizeof cfg->model_type, "%s", mt);
    gemma_status st;
    if (strcmp(mt, "gemma3_text") == 0) {
        cfg->arch = GM_ARCH_GEMMA3;
        st = parse_gemma3_text(&c, root, root, cfg);
    } else if (strcmp(mt, "gemma3") == 0) {
        cfg->arch = GM_ARCH_GEMMA3;
        c.section = "text_config.";
        const gm_json *t = gm_json_get(root, "text_config");
        if (!t) return gm_fail(err, GEMMA_ERR_FORMAT, "%s: model_type gemma3 needs a text_config object", path);
        st = parse_gemma3_text(&c, t, root, cfg);
        c.section = "";
        if (!st) st = get_int(&c, root, "image_token_index", 262144, 0, 1 << 30, &cfg->image_token_id);
    } else if (strcmp(mt, "gemma4_text") == 0) {
        cfg->arch = GM_ARCH_GEMMA4;
        st = parse_gemma4_text(&c, root, root, cfg);
    } else if (strcmp(mt, "gemma4") == 0) {
        cfg->arch = GM_ARCH_GEMMA4;
        c.section = "text_config.";
        const gm_json *t = gm_json_get(root, "text_config");
        if (!t) return gm_fail(err, GEMMA_ERR_FORMAT, "%s: model_type gemma4 needs a text_config object", path);
        st = parse_gemma4_text(&c, t, root, cfg);
    } else {
        return gm_fail(err, GEMMA_ERR_UNSUPPORTED,
                       "%s: field model_type '%s' is not a supported architecture (gemma3, gemma3_text, gemma4, gemma4_text)",
                       path, mt);
    }
    if (st) return st;
    c.section = "";
    return parse_quantization(&c, root, cfg);
}

static void add_eos(gm_config *cfg, int id) {
    for (int i = 0; i < cfg->n_eos; i++)
        if (cfg->eos_token_ids[i] == id) return;
    if (cfg->n_eos < GM_MAX_EOS) cfg->eos_token_ids[cfg->n_eos++] = id;
}

gemma_status gm_config_parse_generation(gm_config *cfg, const char *path, const char *text, size_t len,
                                        gemma_error *err) {
    char jerr[160];
    gm_json_limits lim = {.max_bytes = 1u << 20, .max_depth = 16};
    gm_json_doc *doc = gm_json_parse(text, len, &lim, jerr, sizeof jerr);
    if (!doc) return gm_fail(err, GEMMA_ERR_FORMAT, "%s: not valid JSON: %s", path, jerr);
    const gm_json *r = gm_json_root(doc), *eos = gm_json_get(r, "eos_token_id");
    ctx c = {.path = path, .section = "", .err = err};
    int64_t v;
    gemma_status st = GEMMA_OK;
    if (!gm_json_is(r, GM_JSON_OBJECT)) {
        st = gm_fail(err, GEMMA_ERR_FORMAT, "%s: not a JSON object", path);
        goto done;
    }
    if (gm_json_is(eos, GM_JSON_ARRAY)) {
        for (size_t i = 0; i < gm_json_count(eos); i++)
            if (gm_json_int(gm_json_at(eos, i), &v) && v >= 0 && v < cfg->vocab_size) add_eos(cfg, (int)v);
    } else if (gm_json_int(eos, &v) && v >= 0 && v < cfg->vocab_size) {
        add_eos(cfg, (int)v);
    }
    cfg->has_generation_config = 1;
    if ((st = get_bool(&c, r, "do_sample", 0, &cfg->gen_do_sample))) goto done;
    if ((st = get_num(&c, r, "temperature", 1.0, &cfg->gen_temperature))) goto done;
    if ((st = get_int(&c, r, "top_k", 0, 0, 1 << 30, &cfg->gen_top_k))) goto done;
    if ((st = get_num(&c, r, "top_p", 1.0, &cfg->gen_top_p))) goto done;
    if (gm_json_number(gm_json_get(r, "min_p"), &cfg->gen_min_p) == 0) cfg->gen_min_p = 0;
done:
    gm_json_free(doc);
    return st;
}

void gm_config_free(gm_config *cfg) {
    if (!cfg) return;
    free(cfg->layers);
    gm_json_free(cfg->doc);
    memset(cfg, 0, sizeof *cfg);
}
