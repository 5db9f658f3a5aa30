/* make_test_model.c - writes a small random Gemma 3 model that uses the real
 * Gemma 3 vocabulary (262,144 ids), so `gemma run` and `gemma chat` can be
 * tested end to end with the real tokenizer without a multi-GB download.
 * The embedding / tied head is MLX 4-bit (group 64), written with our packer;
 * the rest is f32.  usage: make_test_model OUT_DIR TOKENIZER_DIR [--vision]
 * --vision makes it a Gemma 3 multimodal checkpoint: a tiny random SigLIP
 * tower (28 px, patch 14, one layer) and projector, one soft token per image.
 * --gemma4 makes a tiny Gemma 4 (gemma4_text, E2B-like: sliding and global
 * layers with different head widths, proportional RoPE, per-layer inputs,
 * KV sharing, double-wide MLP on the shared layers, layer scalars, soft-cap)
 * for the Gemma 4 tokenizer given (tools/reference/make_gemma4_tokenizer.py's
 * stand-in); its embedding and per-layer table are MLX 4-bit (group 32). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "quant/mlx_affine.h"
#include "unit/testutil.h"

enum { V = 262144, D = 64, H = 2, KV = 1, DH = 32, F = 128, L = 2, GS = 64 };

static void copy_file(const char *from, const char *to) {
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    if (!a || !b) {
        fprintf(stderr, "make_test_model: cannot copy %s to %s\n", from, to);
        exit(1);
    }
    char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, a)) > 0) fwrite(buf, 1, n, b);
    fclose(a);
    fclose(b);
}

static void copy_tokenizer(const char *tokdir, const char *dir) {
    char p[2048], q[2048];
    for (int i = 0; i < 2; i++) {
        const char *f = i ? "tokenizer_config.json" : "tokenizer.json";
        snprintf(p, sizeof p, "%s/%s", tokdir, f);
        snprintf(q, sizeof q, "%s/%s", dir, f);
        copy_file(p, q);
    }
}

/* f32 tensors from the store w of the caller (a tu_st st); LADD names layer l's */
#define ADD(name, r, c) do { int64_t sh[2] = {r, c}; size_t cnt = (size_t)(r) * ((c) ? (size_t)(c) : 1); \
        tu_st_add(&st, name, "F32", sh, (c) ? 2 : 1, w, cnt * 4); w += cnt; } while (0)
#define LADD(sub, r, c) do { snprintf(n, sizeof n, "model.layers.%d.%s", l, sub); ADD(n, r, c); } while (0)

/* rows x cols random values quantized like mlx.core.quantize (4 bits), F32 scales/biases */
static void add_quantized(tu_st *st, const char *base, int rows, int cols, int group, float amp, uint32_t *seed,
                          void **keep) {
    size_t row_bytes = gm_mlx_packed_row_bytes(cols, 4), ng = (size_t)(cols / group);
    uint8_t *packed = calloc((size_t)rows, row_bytes);
    float *scales = malloc((size_t)rows * ng * sizeof(float)), *biases = malloc((size_t)rows * ng * sizeof(float));
    float *row = malloc((size_t)cols * sizeof(float));
    for (int r = 0; r < rows; r++) {
        for (int k = 0; k < cols; k++) row[k] = tu_rand(seed) * amp;
        gm_mlx_quantize_row(row, cols, 4, group, packed + (size_t)r * row_bytes, scales + (size_t)r * ng,
                            biases + (size_t)r * ng);
    }
    char n[256];
    int64_t se[2] = {rows, (int64_t)(row_bytes / 4)}, ss[2] = {rows, (int64_t)ng};
    snprintf(n, sizeof n, "%s.weight", base);
    tu_st_add(st, n, "U32", se, 2, packed, (size_t)rows * row_bytes);
    snprintf(n, sizeof n, "%s.scales", base);
    tu_st_add(st, n, "F32", ss, 2, scales, (size_t)rows * ng * 4);
    snprintf(n, sizeof n, "%s.biases", base);
    tu_st_add(st, n, "F32", ss, 2, biases, (size_t)rows * ng * 4);
    free(row);
    keep[0] = packed;
    keep[1] = scales;
    keep[2] = biases;
}

/* Gemma 4: 6 layers S S F S S F, the last two KV-shared (donors 3 and 2). */
static int write_gemma4(const char *dir, const char *tokdir) {
    enum { G4D = 64, G4H = 2, G4HD = 32, G4GHD = 64, G4F = 96, G4L = 6, G4P = 16, G4SHARED = 2, G4GS = 32 };
    static const int full[G4L] = {0, 0, 1, 0, 0, 1};
    uint32_t seed = 4044;
    tu_st st = {0};
    void *keep[6];
    add_quantized(&st, "model.embed_tokens", V, G4D, G4GS, 1.0f, &seed, keep);
    add_quantized(&st, "model.embed_tokens_per_layer", V, G4L * G4P, G4GS, 1.0f, &seed, keep + 3);
    size_t total = (size_t)G4L * G4P * G4D + G4D + G4P +
                   (size_t)G4L * (2 * G4H * G4GHD * G4D + 2 * G4GHD * G4D + 3 * 2 * G4F * G4D + 2 * G4P * G4D +
                                  5 * G4D + 2 * G4GHD + 1);
    float *store = malloc(total * sizeof(float)), *w = store;
    for (size_t i = 0; i < total; i++) store[i] = tu_rand(&seed) * 0.5f;
    ADD("model.per_layer_model_projection.weight", G4L * G4P, G4D);
    ADD("model.norm.weight", G4D, 0);
    ADD("model.per_layer_projection_norm.weight", G4P, 0);
    for (int l = 0; l < G4L; l++) {
        char n[128];
        int hd = full[l] ? G4GHD : G4HD, ffn = l >= G4L - G4SHARED ? 2 * G4F : G4F;
        int own = l < G4L - G4SHARED;   /* KV-shared layers carry no k/v projections or k_norm */
        const struct {
            const char *sub;
            int rows, cols;
        } t[] = {{"self_attn.q_proj.weight", G4H * hd, G4D}, {"self_attn.k_proj.weight", own ? hd : 0, G4D},
                 {"self_attn.v_proj.weight", own ? hd : 0, G4D}, {"self_attn.k_norm.weight", own ? hd : 0, 0},
                 {"self_attn.o_proj.weight", G4D, G4H * hd}, {"self_attn.q_norm.weight", hd, 0},
                 {"mlp.gate_proj.weight", ffn, G4D}, {"mlp.up_proj.weight", ffn, G4D},
                 {"mlp.down_proj.weight", G4D, ffn}, {"per_layer_input_gate.weight", G4P, G4D},
                 {"per_layer_projection.weight", G4D, G4P}, {"input_layernorm.weight", G4D, 0},
                 {"post_attention_layernorm.weight", G4D, 0}, {"pre_feedforward_layernorm.weight", G4D, 0},
                 {"post_feedforward_layernorm.weight", G4D, 0}, {"post_per_layer_input_norm.weight", G4D, 0}};
        for (size_t k = 0; k < sizeof t / sizeof t[0]; k++) {
            int r = t[k].rows, c = t[k].cols;
            if (r) LADD(t[k].sub, r, c);
        }
        snprintf(n, sizeof n, "model.layers.%d.layer_scalar", l);
        *w = 1.0f;
        ADD(n, 1, 0);
    }
    if ((size_t)(w - store) > total) {
        fprintf(stderr, "make_test_model: gemma4 store overflow\n");
        return 1;
    }
    char p[2048];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    tu_st_write(&st, p);
    snprintf(p, sizeof p, "%s/config.json", dir);
    tu_write_str(p,
                 "{\"model_type\":\"gemma4_text\",\"vocab_size\":262144,\"hidden_size\":64,\"intermediate_size\":96,"
                 "\"num_hidden_layers\":6,\"num_attention_heads\":2,\"num_key_value_heads\":1,\"head_dim\":32,"
                 "\"global_head_dim\":64,\"layer_types\":[\"sliding_attention\",\"sliding_attention\","
                 "\"full_attention\",\"sliding_attention\",\"sliding_attention\",\"full_attention\"],"
                 "\"sliding_window\":16,\"rms_norm_eps\":1e-06,\"hidden_size_per_layer_input\":16,"
                 "\"vocab_size_per_layer_input\":262144,\"num_kv_shared_layers\":2,\"use_double_wide_mlp\":true,"
                 "\"final_logit_softcapping\":30.0,\"attention_k_eq_v\":false,\"enable_moe_block\":false,"
                 "\"hidden_activation\":\"gelu_pytorch_tanh\",\"max_position_embeddings\":8192,"
                 "\"tie_word_embeddings\":true,\"pad_token_id\":0,\"bos_token_id\":2,\"eos_token_id\":[1,106],"
                 "\"rope_parameters\":{\"sliding_attention\":{\"rope_type\":\"default\",\"rope_theta\":10000.0},"
                 "\"full_attention\":{\"rope_type\":\"proportional\",\"partial_rotary_factor\":0.25,"
                 "\"rope_theta\":1000000.0}},\"quantization\":{\"group_size\":32,\"bits\":4}}");
    snprintf(p, sizeof p, "%s/generation_config.json", dir);
    tu_write_str(p, "{\"bos_token_id\":2,\"eos_token_id\":[1,106,50],\"do_sample\":true,\"temperature\":1.0,"
                    "\"top_k\":64,\"top_p\":0.95}");
    copy_tokenizer(tokdir, dir);
    for (int i = 0; i < 6; i++) free(keep[i]);
    free(store);
    return 0;
}

int main(int argc, char **argv) {
    int vision = argc == 4 && strcmp(argv[3], "--vision") == 0;
    int gemma4 = argc == 4 && strcmp(argv[3], "--gemma4") == 0;
    if (argc != 3 && !vision && !gemma4) {
        fprintf(stderr, "usage: make_test_model OUT_DIR TOKENIZER_DIR [--vision | --gemma4]\n");
        return 2;
    }
    const char *dir = argv[1];
    mkdir(dir, 0755);
    if (gemma4) return write_gemma4(dir, argv[2]);
    char p[2048];
    uint32_t seed = 2025;

    /* embedding: random rows, quantized like mlx.core.quantize */
    size_t row_bytes = gm_mlx_packed_row_bytes(D, 4);
    uint8_t *packed = calloc((size_t)V, row_bytes);
    float *scales = malloc((size_t)V * (D / GS) * sizeof(float)), *biases = malloc((size_t)V * (D / GS) * sizeof(float));
    float row[D];
    for (int r = 0; r < V; r++) {
        for (int k = 0; k < D; k++) row[k] = tu_rand(&seed);
        gm_mlx_quantize_row(row, D, 4, GS, packed + (size_t)r * row_bytes, scales + (size_t)r * (D / GS),
                            biases + (size_t)r * (D / GS));
    }
    tu_st st = {0};
    int64_t se[2] = {V, (int64_t)(row_bytes / 4)}, ss[2] = {V, D / GS};
    tu_st_add(&st, "model.embed_tokens.weight", "U32", se, 2, packed, (size_t)V * row_bytes);
    tu_st_add(&st, "model.embed_tokens.scales", "F32", ss, 2, scales, (size_t)V * (D / GS) * 4);
    tu_st_add(&st, "model.embed_tokens.biases", "F32", ss, 2, biases, (size_t)V * (D / GS) * 4);

    size_t total = D + (size_t)L * (4 * D * D * 2 + 3 * F * D + 4 * D + 2 * DH);
    float *store = malloc(total * sizeof(float)), *w = store;
    for (size_t i = 0; i < total; i++) store[i] = tu_rand(&seed) * 0.5f;
    ADD("model.norm.weight", D, 0);
    for (int l = 0; l < L; l++) {
        char n[128];
        LADD("self_attn.q_proj.weight", H * DH, D);
        LADD("self_attn.k_proj.weight", KV * DH, D);
        LADD("self_attn.v_proj.weight", KV * DH, D);
        LADD("self_attn.o_proj.weight", D, H * DH);
        LADD("mlp.gate_proj.weight", F, D);
        LADD("mlp.up_proj.weight", F, D);
        LADD("mlp.down_proj.weight", D, F);
        LADD("input_layernorm.weight", D, 0);
        LADD("post_attention_layernorm.weight", D, 0);
        LADD("pre_feedforward_layernorm.weight", D, 0);
        LADD("post_feedforward_layernorm.weight", D, 0);
        LADD("self_attn.q_norm.weight", DH, 0);
        LADD("self_attn.k_norm.weight", DH, 0);
    }
    /* vision tower (Hub names), small random values */
    enum { VH = 32, VF = 64, VP = 14, VN = 4 };
    size_t vtotal = (size_t)VH * 3 * VP * VP + VH + VN * VH + 4 * (VH * VH + VH) + 2 * VF * VH + VF + VH + 6 * VH +
                    (size_t)VH * D + VH;
    float *vstore = malloc(vtotal * sizeof(float));
    if (vision) {
        w = vstore;
        for (size_t i = 0; i < vtotal; i++) vstore[i] = tu_rand(&seed) * 0.2f;
        const char *vp = "vision_tower.vision_model.";
        char n[128];
#define VADD(sub, r, c) do { snprintf(n, sizeof n, "%s%s", vp, sub); ADD(n, r, c); } while (0)
        int64_t conv[4] = {VH, 3, VP, VP};
        tu_st_add(&st, "vision_tower.vision_model.embeddings.patch_embedding.weight", "F32", conv, 4, w,
                  (size_t)VH * 3 * VP * VP * 4);
        w += (size_t)VH * 3 * VP * VP;
        VADD("embeddings.patch_embedding.bias", VH, 0);
        VADD("embeddings.position_embedding.weight", VN, VH);
        const char *subs[] = {"q_proj", "k_proj", "v_proj", "out_proj"};
        char sub[96];
        for (int i = 0; i < 4; i++) {
            snprintf(sub, sizeof sub, "encoder.layers.0.self_attn.%s.weight", subs[i]);
            VADD(sub, VH, VH);
            snprintf(sub, sizeof sub, "encoder.layers.0.self_attn.%s.bias", subs[i]);
            VADD(sub, VH, 0);
        }
        VADD("encoder.layers.0.mlp.fc1.weight", VF, VH);
        VADD("encoder.layers.0.mlp.fc1.bias", VF, 0);
        VADD("encoder.layers.0.mlp.fc2.weight", VH, VF);
        VADD("encoder.layers.0.mlp.fc2.bias", VH, 0);
        VADD("encoder.layers.0.layer_norm1.weight", VH, 0);
        VADD("encoder.layers.0.layer_norm1.bias", VH, 0);
        VADD("encoder.layers.0.layer_norm2.weight", VH, 0);
        VADD("encoder.layers.0.layer_norm2.bias", VH, 0);
        VADD("post_layernorm.weight", VH, 0);
        VADD("post_layernorm.bias", VH, 0);
        ADD("multi_modal_projector.mm_input_projection_weight", VH, D);
        ADD("multi_modal_projector.mm_soft_emb_norm.weight", VH, 0);
    }
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    tu_st_write(&st, p);
    snprintf(p, sizeof p, "%s/config.json", dir);
    const char *text_cfg =
        "\"hidden_size\":64,\"num_attention_heads\":2,"
        "\"num_key_value_heads\":1,\"head_dim\":32,\"intermediate_size\":128,\"num_hidden_layers\":2,"
        "\"vocab_size\":262144,\"sliding_window\":16,\"sliding_window_pattern\":2,"
        "\"query_pre_attn_scalar\":32,\"max_position_embeddings\":8192";
    char cfg[2048];
    if (vision)
        snprintf(cfg, sizeof cfg,
                 "{\"model_type\":\"gemma3\",\"text_config\":{\"model_type\":\"gemma3_text\",%s},"
                 "\"vision_config\":{\"model_type\":\"siglip_vision_model\",\"hidden_size\":32,"
                 "\"intermediate_size\":64,\"num_hidden_layers\":1,\"num_attention_heads\":2,\"image_size\":28,"
                 "\"patch_size\":14,\"vision_use_head\":false},\"mm_tokens_per_image\":1,"
                 "\"image_token_index\":262144,\"eos_token_id\":1,\"quantization\":{\"group_size\":64,\"bits\":4}}",
                 text_cfg);
    else
        snprintf(cfg, sizeof cfg,
                 "{\"model_type\":\"gemma3_text\",%s,\"eos_token_id\":1,\"quantization\":{\"group_size\":64,"
                 "\"bits\":4}}", text_cfg);
    tu_write_str(p, cfg);
    snprintf(p, sizeof p, "%s/generation_config.json", dir);
    tu_write_str(p, "{\"bos_token_id\":2,\"eos_token_id\":[1,106],\"do_sample\":true,\"top_k\":64,\"top_p\":0.95}");
    copy_tokenizer(argv[2], dir);
    free(packed);
    free(scales);
    free(biases);
    free(store);
    free(vstore);
    return 0;
}
