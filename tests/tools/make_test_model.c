/* make_test_model.c - writes a small random Gemma 3 model that uses the real
 * Gemma 3 vocabulary (262,144 ids), so `gemma run` and `gemma chat` can be
 * tested end to end with the real tokenizer without a multi-GB download.
 * The embedding / tied head is MLX 4-bit (group 64), written with our packer;
 * the rest is f32.  usage: make_test_model OUT_DIR TOKENIZER_DIR */
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

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: make_test_model OUT_DIR TOKENIZER_DIR\n");
        return 2;
    }
    const char *dir = argv[1];
    mkdir(dir, 0755);
    char p[2048], q[2048];
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
#define ADD(name, r, c) do { int64_t sh[2] = {r, c}; size_t cnt = (size_t)(r) * ((c) ? (size_t)(c) : 1); \
        tu_st_add(&st, name, "F32", sh, (c) ? 2 : 1, w, cnt * 4); w += cnt; } while (0)
    ADD("model.norm.weight", D, 0);
    for (int l = 0; l < L; l++) {
        char n[128];
#define LADD(sub, r, c) do { snprintf(n, sizeof n, "model.layers.%d.%s", l, sub); ADD(n, r, c); } while (0)
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
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    tu_st_write(&st, p);
    snprintf(p, sizeof p, "%s/config.json", dir);
    tu_write_str(p, "{\"model_type\":\"gemma3_text\",\"hidden_size\":64,\"num_attention_heads\":2,"
                    "\"num_key_value_heads\":1,\"head_dim\":32,\"intermediate_size\":128,\"num_hidden_layers\":2,"
                    "\"vocab_size\":262144,\"sliding_window\":16,\"sliding_window_pattern\":2,"
                    "\"query_pre_attn_scalar\":32,\"max_position_embeddings\":8192,\"eos_token_id\":1,"
                    "\"quantization\":{\"group_size\":64,\"bits\":4}}");
    snprintf(p, sizeof p, "%s/generation_config.json", dir);
    tu_write_str(p, "{\"bos_token_id\":2,\"eos_token_id\":[1,106],\"do_sample\":true,\"top_k\":64,\"top_p\":0.95}");
    for (int i = 0; i < 2; i++) {
        const char *f = i ? "tokenizer_config.json" : "tokenizer.json";
        snprintf(p, sizeof p, "%s/%s", argv[2], f);
        snprintf(q, sizeof q, "%s/%s", dir, f);
        copy_file(p, q);
    }
    free(packed);
    free(scales);
    free(biases);
    free(store);
    return 0;
}
