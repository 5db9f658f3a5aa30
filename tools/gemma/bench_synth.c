/* bench_synth.c - see bench_synth.h.
 *
 * Values: every matrix gets random levels (MLX) or random bf16 values with
 * the spread of a trained layer (std 1/sqrt(fan-in)), norms are identity, so
 * activations stay finite and no denormals distort the timings. */
#include "bench_synth.h"

#include "args.h"
#include "core/dtype.h"
#include "core/strbuf.h"
#include "io/safetensors_write.h"

#include <errno.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------- architectures */

#define GEMMA3(n, d, l, f, h, kv, v, w, rope) \
    {.name = n, .hidden = d, .layers = l, .ffn = f, .heads = h, .kv_heads = kv, .head_dim = 256, .vocab = v, \
     .window = w, .sliding_pattern = 6, .rope_factor = rope}
#define GEMMA4(n, d, l, f, kv, pattern, shared, wide) \
    {.name = n, .gemma4 = 1, .hidden = d, .layers = l, .ffn = f, .heads = 8, .kv_heads = kv, .head_dim = 256, \
     .vocab = 262144, .window = 512, .sliding_pattern = pattern, .rope_factor = 1.0, .global_head_dim = 512, \
     .kv_shared = shared, .per_layer = 256, .double_wide = wide}

/* The real models' config.json values (Hub), spec-gemma3-medgemma.md / spec-gemma4.md. */
static const bench_arch archs[] = {
    GEMMA3("gemma3-270m", 640, 18, 2048, 4, 1, 262144, 512, 1.0),
    GEMMA3("gemma3-1b", 1152, 26, 6912, 4, 1, 262144, 512, 1.0),
    {.name = "medgemma-4b", .hidden = 2560, .layers = 34, .ffn = 10240, .heads = 8, .kv_heads = 4, .head_dim = 256,
     .vocab = 262208, .window = 1024, .sliding_pattern = 6, .rope_factor = 8.0, .v_hidden = 1152, .v_ffn = 4304,
     .v_layers = 27, .v_heads = 16, .v_image = 896, .v_patch = 14, .v_tokens = 256},
    GEMMA4("gemma4-e2b", 1536, 35, 6144, 1, 5, 20, 1),
    GEMMA4("gemma4-e4b", 2560, 42, 10240, 2, 6, 18, 0),
};

const bench_arch *bench_arch_find(const char *name) {
    for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++)
        if (!strcmp(archs[i].name, name)) return &archs[i];
    return NULL;
}

const char *bench_arch_names(void) { return "gemma3-270m, gemma3-1b, medgemma-4b, gemma4-e2b, gemma4-e4b"; }

static const char *const quant_names[] = {"mlx4", "mlx8", "bf16"};

int synth_quant_parse(const char *s, synth_quant *out) {
    for (int i = 0; i < 3; i++)
        if (!strcmp(s, quant_names[i])) {
            *out = (synth_quant)i;
            return 1;
        }
    return 0;
}

const char *synth_quant_name(synth_quant q) { return quant_names[q]; }

static int is_global(const bench_arch *a, int layer) { return layer % a->sliding_pattern == a->sliding_pattern - 1; }
static int layer_head_dim(const bench_arch *a, int l) {
    return a->gemma4 && is_global(a, l) ? a->global_head_dim : a->head_dim;
}
static int layer_ffn(const bench_arch *a, int l) {
    return a->gemma4 && a->double_wide && l >= a->layers - a->kv_shared ? 2 * a->ffn : a->ffn;
}

double bench_vision_flops(const bench_arch *a) {
    if (!a->v_layers) return 0;
    double n = (double)(a->v_image / a->v_patch) * (a->v_image / a->v_patch), d = a->v_hidden, f = a->v_ffn;
    double per_layer = 4 * n * d * d + 2 * n * d * f + 2 * n * n * d;   /* projections, MLP, QK^T + PV */
    double patch = n * d * 3.0 * a->v_patch * a->v_patch;
    return 2 * (a->v_layers * per_layer + patch + (double)a->v_tokens * d * a->hidden);
}

/* ----------------------------------------------------------- tensor plan */

typedef enum { FILL_LEVELS, FILL_SCALE, FILL_BIAS, FILL_RANDOM, FILL_CONST } fill_kind;

typedef struct {
    gm_st_entry e;
    fill_kind fill;
    float value;       /* FILL_CONST value; FILL_SCALE/BIAS/RANDOM: the spread */
} planned;

typedef struct {
    planned *t;
    size_t n, cap;
    char *names;       /* one pool for every name */
    size_t names_used, names_cap;
    synth_quant q;
    int fail;
} plan;

static void add(plan *p, const char *name, gm_dtype dt, int ndim, const int64_t *shape, fill_kind fill, float value) {
    size_t len = strlen(name) + 1;
    if (p->n == p->cap || p->names_used + len > p->names_cap) {
        p->fail = 1;
        return;
    }
    planned *t = &p->t[p->n++];
    memset(t, 0, sizeof *t);
    memcpy(p->names + p->names_used, name, len);
    t->e.name = p->names + p->names_used;   /* pool is fixed-size: pointers stay valid */
    p->names_used += len;
    t->e.dtype = dt;
    t->e.ndim = ndim;
    memcpy(t->e.shape, shape, (size_t)ndim * sizeof(int64_t));
    t->fill = fill;
    t->value = value;
}

static void vec(plan *p, const char *prefix, const char *name, int64_t n, float value) {
    char full[512];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    add(p, full, GM_DT_BF16, 1, &n, FILL_CONST, value);
}

/* A linear layer's weight [rows, cols]: MLX-quantized text matrices, bf16 otherwise. */
static void matrix(plan *p, const char *prefix, const char *module, int64_t rows, int64_t cols, int quantize) {
    char full[512];
    float sigma = 1.0f / sqrtf((float)cols);
    if (!quantize || p->q == SYNTH_BF16 || cols % 64) {
        int64_t s[2] = {rows, cols};
        snprintf(full, sizeof full, "%s%s.weight", prefix, module);
        add(p, full, GM_DT_BF16, 2, s, FILL_RANDOM, sigma * sqrtf(3.0f));
        return;
    }
    int bits = p->q == SYNTH_MLX4 ? 4 : 8, levels = (1 << bits) - 1;
    float scale = sigma * sqrtf(12.0f) / (float)(levels + 1);
    int64_t w[2] = {rows, cols * bits / 32}, g[2] = {rows, cols / 64};
    snprintf(full, sizeof full, "%s%s.weight", prefix, module);
    add(p, full, GM_DT_U32, 2, w, FILL_LEVELS, 0);
    snprintf(full, sizeof full, "%s%s.scales", prefix, module);
    add(p, full, GM_DT_BF16, 2, g, FILL_SCALE, scale);
    snprintf(full, sizeof full, "%s%s.biases", prefix, module);
    add(p, full, GM_DT_BF16, 2, g, FILL_BIAS, -0.5f * (float)levels * scale);
}

static void plan_text(plan *p, const bench_arch *a, const char *prefix) {
    char lp[384];
    float norm_identity = a->gemma4 ? 1.0f : 0.0f;   /* Gemma 4 scales by w, Gemma 3 by 1 + w */
    matrix(p, prefix, "embed_tokens", a->vocab, a->hidden, 1);
    vec(p, prefix, "norm.weight", a->hidden, norm_identity);
    int P = a->per_layer, first_shared = a->layers - a->kv_shared;
    if (a->gemma4) {
        matrix(p, prefix, "embed_tokens_per_layer", a->vocab, (int64_t)a->layers * P, 1);
        matrix(p, prefix, "per_layer_model_projection", (int64_t)a->layers * P, a->hidden, 1);
        vec(p, prefix, "per_layer_projection_norm.weight", P, 1.0f);
    }
    for (int l = 0; l < a->layers; l++) {
        snprintf(lp, sizeof lp, "%slayers.%d.", prefix, l);
        int hd = layer_head_dim(a, l), F = layer_ffn(a, l);
        matrix(p, lp, "self_attn.q_proj", (int64_t)a->heads * hd, a->hidden, 1);
        if (!a->gemma4 || l < first_shared) {
            matrix(p, lp, "self_attn.k_proj", (int64_t)a->kv_heads * hd, a->hidden, 1);
            matrix(p, lp, "self_attn.v_proj", (int64_t)a->kv_heads * hd, a->hidden, 1);
        }
        matrix(p, lp, "self_attn.o_proj", a->hidden, (int64_t)a->heads * hd, 1);
        matrix(p, lp, "mlp.gate_proj", F, a->hidden, 1);
        matrix(p, lp, "mlp.up_proj", F, a->hidden, 1);
        matrix(p, lp, "mlp.down_proj", a->hidden, F, 1);
        static const char *const norms[] = {"input_layernorm.weight", "post_attention_layernorm.weight",
                                            "pre_feedforward_layernorm.weight", "post_feedforward_layernorm.weight"};
        for (int i = 0; i < 4; i++) vec(p, lp, norms[i], a->hidden, norm_identity);
        vec(p, lp, "self_attn.q_norm.weight", hd, norm_identity);
        vec(p, lp, "self_attn.k_norm.weight", hd, norm_identity);
        if (a->gemma4) {
            matrix(p, lp, "per_layer_input_gate", P, a->hidden, 1);
            matrix(p, lp, "per_layer_projection", a->hidden, P, 1);
            vec(p, lp, "post_per_layer_input_norm.weight", a->hidden, 1.0f);
            vec(p, lp, "layer_scalar", 1, 1.0f);
        }
    }
}

static void plan_vision(plan *p, const bench_arch *a) {
    const char *vp = "vision_tower.vision_model.";
    char lp[384];
    int64_t side = a->v_image / a->v_patch, d = a->v_hidden;
    int64_t conv[4] = {d, 3, a->v_patch, a->v_patch}, pos[2] = {side * side, d};
    snprintf(lp, sizeof lp, "%sembeddings.patch_embedding.weight", vp);
    add(p, lp, GM_DT_BF16, 4, conv, FILL_RANDOM, sqrtf(3.0f / (3.0f * (float)(a->v_patch * a->v_patch))));
    vec(p, vp, "embeddings.patch_embedding.bias", d, 0.0f);
    snprintf(lp, sizeof lp, "%sembeddings.position_embedding.weight", vp);
    add(p, lp, GM_DT_BF16, 2, pos, FILL_RANDOM, 0.02f);
    for (int l = 0; l < a->v_layers; l++) {
        snprintf(lp, sizeof lp, "%sencoder.layers.%d.", vp, l);
        static const char *const attn[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                           "self_attn.out_proj"};
        char b[128];
        for (int i = 0; i < 4; i++) {
            matrix(p, lp, attn[i], d, d, 0);
            snprintf(b, sizeof b, "%s.bias", attn[i]);
            vec(p, lp, b, d, 0.0f);
        }
        matrix(p, lp, "mlp.fc1", a->v_ffn, d, 0);
        vec(p, lp, "mlp.fc1.bias", a->v_ffn, 0.0f);
        matrix(p, lp, "mlp.fc2", d, a->v_ffn, 0);
        vec(p, lp, "mlp.fc2.bias", d, 0.0f);
        vec(p, lp, "layer_norm1.weight", d, 1.0f);
        vec(p, lp, "layer_norm1.bias", d, 0.0f);
        vec(p, lp, "layer_norm2.weight", d, 1.0f);
        vec(p, lp, "layer_norm2.bias", d, 0.0f);
    }
    vec(p, vp, "post_layernorm.weight", d, 1.0f);
    vec(p, vp, "post_layernorm.bias", d, 0.0f);
    int64_t proj[2] = {d, a->hidden};
    add(p, "multi_modal_projector.mm_input_projection_weight", GM_DT_BF16, 2, proj, FILL_RANDOM,
        sqrtf(3.0f / (float)d));
    vec(p, "multi_modal_projector.", "mm_soft_emb_norm.weight", d, 0.0f);
}

/* ----------------------------------------------------------------- config */

static void sb_printf(gm_strbuf *b, const char *fmt, ...) {
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || n >= (int)sizeof tmp) b->ok = 0;
    else gm_strbuf_append(b, tmp, (size_t)n);
}

static void layer_types_json(gm_strbuf *b, const bench_arch *a) {
    gm_strbuf_puts(b, "\"layer_types\": [");
    for (int l = 0; l < a->layers; l++)
        sb_printf(b, "%s\"%s\"", l ? ", " : "", is_global(a, l) ? "full_attention" : "sliding_attention");
    gm_strbuf_puts(b, "]");
}

static void text_config_json(gm_strbuf *b, const bench_arch *a) {
    sb_printf(b,
                      "\"model_type\": \"%s\", \"hidden_size\": %d, \"intermediate_size\": %d, "
                      "\"num_hidden_layers\": %d, \"num_attention_heads\": %d, \"num_key_value_heads\": %d, "
                      "\"head_dim\": %d, \"vocab_size\": %d, \"sliding_window\": %d, \"rms_norm_eps\": 1e-06, "
                      "\"hidden_activation\": \"gelu_pytorch_tanh\", \"max_position_embeddings\": 131072, "
                      "\"tie_word_embeddings\": true, ",
                      a->gemma4 ? "gemma4_text" : "gemma3_text", a->hidden, a->ffn, a->layers, a->heads, a->kv_heads,
                      a->head_dim, a->vocab, a->window);
    layer_types_json(b, a);
    if (a->gemma4) {
        sb_printf(b,
                          ", \"global_head_dim\": %d, \"hidden_size_per_layer_input\": %d, "
                          "\"vocab_size_per_layer_input\": %d, \"num_kv_shared_layers\": %d, "
                          "\"use_double_wide_mlp\": %s, \"final_logit_softcapping\": 30.0, "
                          "\"attention_k_eq_v\": false, \"enable_moe_block\": false, \"rope_parameters\": "
                          "{\"sliding_attention\": {\"rope_type\": \"default\", \"rope_theta\": 10000.0}, "
                          "\"full_attention\": {\"rope_type\": \"proportional\", \"partial_rotary_factor\": 0.25, "
                          "\"rope_theta\": 1000000.0}}",
                          a->global_head_dim, a->per_layer, a->vocab, a->kv_shared, a->double_wide ? "true" : "false");
        return;
    }
    gm_strbuf_puts(b, ", \"query_pre_attn_scalar\": 256, \"rope_theta\": 1000000.0, \"rope_local_base_freq\": 10000.0");
    if (a->rope_factor != 1.0)
        sb_printf(b, ", \"rope_scaling\": {\"rope_type\": \"linear\", \"factor\": %.1f}", a->rope_factor);
}

static char *config_json(const bench_arch *a, synth_quant q) {
    gm_strbuf b;
    gm_strbuf_init(&b);
    gm_strbuf_puts(&b, "{");
    if (a->v_layers) {
        gm_strbuf_puts(&b, "\"architectures\": [\"Gemma3ForConditionalGeneration\"], \"model_type\": \"gemma3\", "
                             "\"text_config\": {");
        text_config_json(&b, a);
        sb_printf(&b,
                          "}, \"vision_config\": {\"model_type\": \"siglip_vision_model\", \"hidden_size\": %d, "
                          "\"intermediate_size\": %d, \"num_hidden_layers\": %d, \"num_attention_heads\": %d, "
                          "\"image_size\": %d, \"patch_size\": %d, \"layer_norm_eps\": 1e-06, "
                          "\"vision_use_head\": false, \"hidden_act\": \"gelu_pytorch_tanh\", \"num_channels\": 3}, "
                          "\"mm_tokens_per_image\": %d, \"image_token_index\": 262144, \"boi_token_index\": 255999, "
                          "\"eoi_token_index\": 256000, \"tie_word_embeddings\": true",
                          a->v_hidden, a->v_ffn, a->v_layers, a->v_heads, a->v_image, a->v_patch, a->v_tokens);
    } else {
        text_config_json(&b, a);
    }
    if (q != SYNTH_BF16) sb_printf(&b, ", \"quantization\": {\"group_size\": 64, \"bits\": %d}", q == SYNTH_MLX4 ? 4 : 8);
    gm_strbuf_puts(&b, "}\n");
    if (b.ok) return b.data;
    gm_strbuf_free(&b);
    return NULL;
}

/* ------------------------------------------------------------------ write */

static uint64_t next_random(uint64_t *s) {   /* xorshift64* */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

static void fill_chunk(const planned *t, uint8_t *buf, size_t len, uint64_t *rng) {
    if (t->fill == FILL_LEVELS) {
        for (size_t i = 0; i + 8 <= len; i += 8) {
            uint64_t r = next_random(rng);
            memcpy(buf + i, &r, 8);
        }
        return;
    }
    uint16_t *v = (uint16_t *)(void *)buf;
    size_t n = len / 2;
    if (t->fill != FILL_RANDOM) {
        uint16_t c = gm_f32_to_bf16(t->value);
        for (size_t i = 0; i < n; i++) v[i] = c;
        return;
    }
    for (size_t i = 0; i + 4 <= n; i += 4) {
        uint64_t r = next_random(rng);
        for (int j = 0; j < 4; j++) {
            float u = (float)((r >> (16 * j)) & 0xffff) * (1.0f / 32768.0f) - 1.0f;   /* [-1, 1) */
            v[i + j] = gm_f32_to_bf16(u * t->value);
        }
    }
}

static int read_small(const char *path, char *buf, size_t cap) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = 0;
    return 0;
}

int bench_synth_write(const char *dir, const bench_arch *a, synth_quant q, uint64_t *bytes_written) {
    char path[1200], stamp[256], have[256];
    snprintf(stamp, sizeof stamp, "{\"synthetic\": \"%s\", \"quant\": \"%s\", \"version\": 1}\n", a->name,
             synth_quant_name(q));
    snprintf(path, sizeof path, "%s/bench-synthetic.json", dir);
    *bytes_written = 0;
    struct stat st;
    if (stat(dir, &st) == 0) {
        if (read_small(path, have, sizeof have) == 0 && !strcmp(have, stamp)) return 0;   /* made by us: reuse */
        fprintf(stderr, "gemma: error: %s exists and is not a synthetic %s %s model this command made; "
                "give a new directory\n", dir, a->name, synth_quant_name(q));
        return -1;
    }
    if (mkdir(dir, 0755) != 0) {
        fprintf(stderr, "gemma: error: %s: cannot create: %s\n", dir, strerror(errno));
        return -1;
    }
    enum { MAX_TENSORS = 4096, NAMES = 1 << 18, CHUNK = 1 << 22 };
    plan p = {calloc(MAX_TENSORS, sizeof(planned)), 0, MAX_TENSORS, malloc(NAMES), 0, NAMES, q, 0};
    gm_st_entry *entries = calloc(MAX_TENSORS, sizeof *entries);
    uint8_t *buf = malloc(CHUNK);
    char *cfg = config_json(a, q);
    int rc = -1;
    gm_st_writer w = {0};
    gemma_error err = {0};
    if (!p.t || !p.names || !entries || !buf || !cfg) {
        fprintf(stderr, "gemma: error: out of memory\n");
        goto done;
    }
    plan_text(&p, a, a->v_layers ? "language_model.model." : "model.");
    if (a->v_layers) plan_vision(&p, a);
    if (p.fail) {
        fprintf(stderr, "gemma: error: synthetic %s: too many tensors\n", a->name);
        goto done;
    }
    for (size_t i = 0; i < p.n; i++) entries[i] = p.t[i].e;
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (gm_st_create(&w, path, entries, p.n, &err) != GEMMA_OK) {
        fprintf(stderr, "gemma: error: %s\n", err.message);
        goto done;
    }
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < p.n; i++) {
        uint64_t size = gm_st_entry_bytes(&entries[i]);
        for (uint64_t at = 0; at < size; at += CHUNK) {
            size_t len = size - at < CHUNK ? (size_t)(size - at) : CHUNK;
            fill_chunk(&p.t[i], buf, (len + 7) & ~(size_t)7, &rng);
            if (gm_st_write(&w, i, at, buf, len, &err) != GEMMA_OK) {
                fprintf(stderr, "gemma: error: %s\n", err.message);
                gm_st_abort(&w);
                goto done;
            }
        }
        *bytes_written += size;
    }
    if (gm_st_finish(&w, &err) != GEMMA_OK) {
        fprintf(stderr, "gemma: error: %s\n", err.message);
        goto done;
    }
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (!cli_write_file(path, cfg, strlen(cfg))) {
        fprintf(stderr, "gemma: error: %s: cannot write: %s\n", path, strerror(errno));
        goto done;
    }
    snprintf(path, sizeof path, "%s/bench-synthetic.json", dir);   /* last: marks the folder complete */
    if (!cli_write_file(path, stamp, strlen(stamp))) {
        fprintf(stderr, "gemma: error: %s: cannot write: %s\n", path, strerror(errno));
        goto done;
    }
    rc = 0;
done:
    free(p.t);
    free(p.names);
    free(entries);
    free(buf);
    free(cfg);
    return rc;
}
