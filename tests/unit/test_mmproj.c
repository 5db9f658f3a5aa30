/* test_mmproj.c - llama.cpp mmproj GGUFs (Gemma 3 vision tower + projector).
 *
 * The fixtures (tools/reference/make_mmproj_fixture.py) repeat what llama.cpp's
 * converters write: the current one at F16 and Q8_0, and the first one, whose
 * files name fc1/fc2 swapped.  Every tensor must come out under its HF name
 * and PyTorch shape, as a view into the map, and dequantize to exactly what
 * gguf.quants.dequantize gives for the stored data (sha256).  Then each
 * fixture is corrupted one field at a time (architecture, projector, keys,
 * shapes, types, truncation), and a text GGUF is given as mmproj: each must
 * be a one-line error naming the file and the key or tensor. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>

#include "core/json.h"
#include "io/gguf.h"
#include "io/mmproj.h"
#include "quant/ggml_blocks.h"
#include "unit/sha256.h"
#include "unit/testutil.h"

#define FIX GEMMA_FIXTURES_DIR "/mmproj"

static gm_json_doc *expected_doc(void) {
    char *text;
    size_t n;
    gemma_error err;
    if (gm_read_file(FIX "/expected.json", (size_t)1 << 24, &text, &n, &err)) fail_msg("%s", err.message);
    char jerr[160];
    gm_json_doc *doc = gm_json_parse(text, n, NULL, jerr, sizeof jerr);
    free(text);
    if (!doc) fail_msg("expected.json: %s", jerr);
    return doc;
}

static int64_t jint(const gm_json *obj, const char *key) {
    int64_t v;
    if (!gm_json_int(gm_json_get(obj, key), &v)) fail_msg("expected.json: '%s' is not an integer", key);
    return v;
}

static double jnum(const gm_json *v) {
    double d;
    if (!gm_json_number(v, &d)) fail_msg("expected.json: not a number");
    return d;
}

/* ------------------------------------------------------- valid files */

static void check_config(const gm_mmproj *m, const gm_json *c) {
    const gm_vision_config *v = &m->cfg;
    assert_int_equal(v->image_size, jint(c, "image_size"));
    assert_int_equal(v->patch_size, jint(c, "patch_size"));
    assert_int_equal(v->hidden, jint(c, "hidden"));
    assert_int_equal(v->ffn, jint(c, "ffn"));
    assert_int_equal(v->layers, jint(c, "layers"));
    assert_int_equal(v->heads, jint(c, "heads"));
    assert_int_equal(v->head_dim, v->hidden / v->heads);
    assert_int_equal(v->projection_dim, jint(c, "projection_dim"));
    assert_int_equal(v->patches_per_side, jint(c, "patches_per_side"));
    assert_int_equal(v->n_patches, v->patches_per_side * v->patches_per_side);
    assert_int_equal(v->pool, jint(c, "pool"));
    assert_int_equal(v->tokens_per_side * v->pool, v->patches_per_side);
    assert_int_equal(v->tokens_per_image, jint(c, "tokens_per_image"));
    assert_true(v->eps == (float)jnum(gm_json_get(c, "eps")));
    for (int i = 0; i < 3; i++) {
        assert_true(v->mean[i] == (float)jnum(gm_json_at(gm_json_get(c, "mean"), (size_t)i)));
        assert_true(v->std[i] == (float)jnum(gm_json_at(gm_json_get(c, "std"), (size_t)i)));
    }
    /* what every GGUF from these converters holds */
    assert_int_equal(m->layout.patch, GM_PATCH_OIHW);
    assert_int_equal(m->layout.proj_transposed, 0);
    assert_true(m->layout.soft_emb_norm_add == 0.0f);
}

/* Dequantize t row by row (from an odd address: weights are never assumed aligned) into a fresh buffer. */
static float *dequant_all(const gm_tensor *t, uint32_t type) {
    int64_t numel = gm_tensor_numel(t), n = t->shape[t->ndim - 1], rows = numel / n;
    size_t row_bytes = gm_ggml_row_bytes(type, n);
    assert_true(row_bytes > 0);
    assert_int_equal(row_bytes * (size_t)rows, t->nbytes);
    float *out = malloc((size_t)numel * sizeof *out);
    uint8_t *odd = malloc(row_bytes + 1);
    for (int64_t r = 0; r < rows; r++) {
        memcpy(odd + 1, t->data + (size_t)r * row_bytes, row_bytes);
        assert_int_equal(gm_ggml_dequant_row(type, odd + 1, out + r * n, (int)n), 0);
    }
    free(odd);
    return out;
}

static void check_tensor(const gm_mmproj *m, const gm_json *e, const char *file) {
    const char *name = gm_json_string(gm_json_get(e, "name"));
    const char *type = gm_json_string(gm_json_get(e, "type"));
    const gm_tensor *t = gm_tensors_find(&m->ts, name);
    if (!t) fail_msg("%s: no tensor '%s'", file, name);
    const gm_json *shape = gm_json_get(e, "shape");
    assert_int_equal(t->ndim, gm_json_count(shape));
    for (int d = 0; d < t->ndim; d++) assert_int_equal(t->shape[d], jnum(gm_json_at(shape, (size_t)d)));
    /* types: floats as dtypes, blocks as ggml ids; the stored name either way */
    uint32_t id = (uint32_t)jint(e, "type_id");
    assert_string_equal(t->dtype_name, type);
    if (id == GM_GGML_F32 || id == GM_GGML_F16 || id == GM_GGML_BF16) {
        assert_int_equal(t->ggml_type, -1);
        assert_int_equal(t->dtype, id == GM_GGML_F32 ? GM_DT_F32 : id == GM_GGML_F16 ? GM_DT_F16 : GM_DT_BF16);
    } else {
        assert_int_equal(t->ggml_type, id);
        assert_int_equal(t->dtype, GM_DT_UNKNOWN);
    }
    /* a view into the map the set owns, not a copy */
    const gm_mapfile *mf = &m->ts.files[t->file];
    assert_true(t->data >= mf->data && t->data + t->nbytes <= mf->data + mf->size);
    assert_string_equal(gm_tensors_file_of(&m->ts, t), m->path);

    float *got = dequant_all(t, id);
    int64_t numel = gm_tensor_numel(t);
    char hex[65];
    sha256_ctx c;
    sha256_init(&c);
    sha256_update(&c, got, (size_t)numel * sizeof *got);
    sha256_final_hex(&c, hex);
    if (strcmp(hex, gm_json_string(gm_json_get(e, "sha256"))) != 0)
        fail_msg("%s tensor '%s' (%s): values differ from gguf.quants.dequantize (first %.9g)", file, name, type,
                 (double)got[0]);
    const gm_json *first = gm_json_get(e, "first");
    for (size_t i = 0; i < gm_json_count(first); i++) assert_true(got[i] == (float)jnum(gm_json_at(first, i)));
    /* the file holds Gemma's 1 + w for the projector norm (the converter adds 1) */
    const gm_json *hf = gm_json_get(e, "hf_values");
    if (hf) {
        assert_int_equal(gm_json_count(hf), numel);
        for (int64_t i = 0; i < numel; i++) assert_true(got[i] == (float)jnum(gm_json_at(hf, (size_t)i)) + 1.0f);
    }
    free(got);
}

static void test_fixtures(void **state) {
    (void)state;
    gm_json_doc *doc = expected_doc();
    const gm_json *files = gm_json_get(gm_json_root(doc), "files");
    assert_int_equal(gm_json_count(files), 3);
    for (size_t f = 0; f < gm_json_count(files); f++) {
        const gm_json *fx = gm_json_at(files, f);
        const char *file = gm_json_string(gm_json_get(fx, "file"));
        char path[1200];
        snprintf(path, sizeof path, "%s/%s", FIX, file);
        gm_mmproj m;
        gemma_error err;
        if (gm_mmproj_open(&m, path, &err) != GEMMA_OK) fail_msg("%s", err.message);
        assert_string_equal(m.path, path);
        check_config(&m, gm_json_get(fx, "config"));
        assert_int_equal(m.layout.ffn_swapped, gm_json_is(gm_json_get(fx, "ffn_swapped"), GM_JSON_TRUE));
        const char *conv = gm_json_string(gm_json_get(fx, "converter"));
        assert_int_equal(m.file_type, strcmp(conv, "legacy") == 0 ? -1 : jint(fx, "file_type"));
        const gm_json *tensors = gm_json_get(fx, "tensors");
        assert_int_equal(m.ts.n_tensors, gm_json_count(tensors));
        assert_int_equal(m.ts.n_tensors, 7 + 16 * (size_t)m.cfg.layers);
        for (size_t i = 0; i < gm_json_count(tensors); i++) check_tensor(&m, gm_json_at(tensors, i), file);
        gm_mmproj_close(&m);
        gm_mmproj_close(&m);   /* idempotent */
    }
    gm_json_free(doc);
}

/* The names the vision code binds, the ggml layouts behind them, and the offsets of the views. */
static void test_names_and_views(void **state) {
    (void)state;
    gm_mmproj m;
    gm_gguf g;
    gemma_error err;
    const char *path = FIX "/mmproj-q8_0.gguf";
    if (gm_mmproj_open(&m, path, &err) != GEMMA_OK) fail_msg("%s", err.message);
    if (gm_gguf_open(&g, path, &err) != GEMMA_OK) fail_msg("%s", err.message);
    static const struct { const char *hf, *gguf; } pairs[] = {
        {"vision_tower.vision_model.embeddings.patch_embedding.weight", "v.patch_embd.weight"},
        {"vision_tower.vision_model.embeddings.position_embedding.weight", "v.position_embd.weight"},
        {"vision_tower.vision_model.encoder.layers.1.self_attn.out_proj.bias", "v.blk.1.attn_out.bias"},
        {"vision_tower.vision_model.encoder.layers.0.layer_norm2.weight", "v.blk.0.ln2.weight"},
        {"vision_tower.vision_model.encoder.layers.1.mlp.fc1.weight", "v.blk.1.ffn_up.weight"},
        {"vision_tower.vision_model.encoder.layers.1.mlp.fc2.weight", "v.blk.1.ffn_down.weight"},
        {"vision_tower.vision_model.post_layernorm.bias", "v.post_ln.bias"},
        {"multi_modal_projector.mm_input_projection_weight", "mm.input_projection.weight"},
        {"multi_modal_projector.mm_soft_emb_norm.weight", "mm.soft_emb_norm.weight"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        const gm_tensor *t = gm_tensors_find(&m.ts, pairs[i].hf);
        const gm_gguf_tensor *gt = gm_gguf_find_tensor(&g, pairs[i].gguf);
        assert_non_null(t);
        assert_non_null(gt);
        assert_int_equal(t->data - m.ts.files[t->file].data, gt->data - g.mf.data);
        assert_int_equal(t->nbytes, gt->nbytes);
        for (int d = 0; d < t->ndim; d++) assert_int_equal(t->shape[d], gt->ne[t->ndim - 1 - d]);
    }
    /* PyTorch order: OIHW conv, [hidden, text hidden] projection, [out, in] linears */
    const gm_tensor *t = gm_tensors_find(&m.ts, "vision_tower.vision_model.embeddings.patch_embedding.weight");
    assert_int_equal(t->ndim, 4);
    assert_true(t->shape[0] == 32 && t->shape[1] == 3 && t->shape[2] == 2 && t->shape[3] == 2);
    t = gm_tensors_find(&m.ts, "multi_modal_projector.mm_input_projection_weight");
    assert_true(t->ndim == 2 && t->shape[0] == 32 && t->shape[1] == 24 && t->dtype == GM_DT_F16);
    t = gm_tensors_find(&m.ts, "vision_tower.vision_model.encoder.layers.0.mlp.fc1.weight");
    assert_true(t->shape[0] == 40 && t->shape[1] == 32 && t->ggml_type == GM_GGML_Q8_0);
    t = gm_tensors_find(&m.ts, "vision_tower.vision_model.encoder.layers.0.mlp.fc2.weight");
    assert_true(t->shape[0] == 32 && t->shape[1] == 40 && t->dtype == GM_DT_F16);   /* 40 is no Q8_0 row: F16 */
    assert_null(gm_tensors_find(&m.ts, "v.blk.0.attn_q.weight"));
    assert_null(gm_tensors_find(&m.ts, "vision_tower.vision_model.encoder.layers.2.mlp.fc1.weight"));
    gm_gguf_close(&g);
    gm_mmproj_close(&m);

    /* the legacy file's ffn_down holds fc1 */
    path = FIX "/mmproj-legacy.gguf";
    if (gm_mmproj_open(&m, path, &err) != GEMMA_OK) fail_msg("%s", err.message);
    if (gm_gguf_open(&g, path, &err) != GEMMA_OK) fail_msg("%s", err.message);
    assert_int_equal(m.layout.ffn_swapped, 1);
    t = gm_tensors_find(&m.ts, "vision_tower.vision_model.encoder.layers.0.mlp.fc1.weight");
    assert_ptr_equal(t->data - m.ts.files[0].data + g.mf.data, gm_gguf_find_tensor(&g, "v.blk.0.ffn_down.weight")->data);
    t = gm_tensors_find(&m.ts, "vision_tower.vision_model.encoder.layers.0.mlp.fc2.bias");
    assert_ptr_equal(t->data - m.ts.files[0].data + g.mf.data, gm_gguf_find_tensor(&g, "v.blk.0.ffn_up.bias")->data);
    gm_gguf_close(&g);
    gm_mmproj_close(&m);
}

/* ------------------------------------------------------------ bad files */

typedef struct {
    uint8_t *p;
    size_t n;
} bytes;

static bytes load(const char *file) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", FIX, file);
    bytes b;
    gemma_error err;
    if (gm_read_file(path, (size_t)1 << 24, (char **)&b.p, &b.n, &err)) fail_msg("%s", err.message);
    return b;
}

/* Offset just past a length-prefixed string (a key or tensor name) in the header. */
static size_t after_string(const bytes *b, const char *s) {
    size_t len = strlen(s);
    for (size_t i = 0; i + 8 + len <= b->n; i++) {
        uint64_t l = 0;
        for (int k = 7; k >= 0; k--) l = (l << 8) | b->p[i + (size_t)k];
        if (l == len && memcmp(b->p + i + 8, s, len) == 0) return i + 8 + len;
    }
    fail_msg("'%s' not found in the fixture", s);
    return 0;
}

static void put_le(bytes *b, size_t at, uint64_t v, int n) {
    for (int i = 0; i < n; i++) b->p[at + (size_t)i] = (uint8_t)(v >> (8 * i));
}

static const char *bad_dir(void) {
    static char dir[1024];
    if (!dir[0]) snprintf(dir, sizeof dir, "%s", tu_dir("mmproj_bad"));
    return dir;
}

/* Opening `path` fails with code, one line "path: ..." containing s1 and s2 (if given), out left empty. */
static void expect_error(const char *path, gemma_status code, const char *s1, const char *s2) {
    gm_mmproj m;
    gemma_error err;
    gemma_status st = gm_mmproj_open(&m, path, &err);
    if (st == GEMMA_OK) {
        gm_mmproj_close(&m);
        fail_msg("%s: opened, expected an error containing '%s'", path, s1 ? s1 : "");
    }
    const char *why = tu_message_problem(err.message, path, s1, s2);
    if (why) fail_msg("message '%s' %s", err.message, why);
    if (code) assert_int_equal(st, code);
    assert_int_equal(err.code, st);
    assert_null(m.path);
    assert_int_equal(m.ts.n_tensors, 0);
    assert_int_equal(m.ts.n_files, 0);
}

static void expect_bytes_error(const bytes *b, const char *name, gemma_status code, const char *s1, const char *s2) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s.gguf", bad_dir(), name);
    tu_write(path, b->p, b->n);
    expect_error(path, code, s1, s2);
}

/* Load `file`, overwrite n bytes at `key`'s position + skip with v, expect an error. */
static void expect_patch(const char *file, const char *key, size_t skip, uint64_t v, int n, const char *name,
                         gemma_status code, const char *s1, const char *s2) {
    bytes b = load(file);
    put_le(&b, after_string(&b, key) + skip, v, n);
    expect_bytes_error(&b, name, code, s1, s2);
    free(b.p);
}

static void patch_str(bytes *b, const char *key, const char *value) {
    size_t at = after_string(b, key) + 4 + 8;   /* type, string length */
    memcpy(b->p + at, value, strlen(value));
}

static void test_wrong_kind(void **state) {
    (void)state;
    bytes b = load("mmproj-f16.gguf");
    patch_str(&b, "general.architecture", "clap");
    expect_bytes_error(&b, "arch", GEMMA_ERR_FORMAT, "general.architecture is 'clap', expected 'clip'", "mmproj");
    free(b.p);
    b = load("mmproj-f16.gguf");
    patch_str(&b, "clip.projector_type", "qwen2a");
    expect_bytes_error(&b, "projector", GEMMA_ERR_UNSUPPORTED,
                       "mmproj_bad/projector.gguf: clip.projector_type 'qwen2a' is not supported (supported: gemma3)",
                       NULL);
    free(b.p);
    b = load("mmproj-legacy.gguf");
    b.p[after_string(&b, "clip.projector_type") - 1] = 'X';   /* key renamed away */
    expect_bytes_error(&b, "no_projector", GEMMA_ERR_FORMAT, "clip.projector_type is missing (supported: gemma3)", NULL);
    free(b.p);
    /* a text model given as --mmproj */
    expect_error(FIX "/text-gemma3.gguf", GEMMA_ERR_FORMAT,
                 "general.architecture is 'gemma3', expected 'clip': not a multimodal projector (mmproj) file",
                 "(a text model GGUF?)");
    expect_error(GEMMA_FIXTURES_DIR "/gguf/metadata.gguf", GEMMA_ERR_FORMAT, "general.architecture is 'mdtest'", NULL);
    expect_error(FIX "/missing.gguf", GEMMA_ERR_IO, NULL, NULL);
    expect_error(FIX "/expected.json", GEMMA_ERR_FORMAT, "not a GGUF file", NULL);
    /* flags that rule the file out */
    expect_patch("mmproj-f16.gguf", "clip.has_vision_encoder", 4, 0, 1, "no_vision", GEMMA_ERR_UNSUPPORTED,
                 "clip.has_vision_encoder is false", NULL);
    expect_patch("mmproj-q8_0.gguf", "clip.use_gelu", 4, 0, 1, "no_gelu", GEMMA_ERR_UNSUPPORTED, "clip.use_gelu is false",
                 NULL);
}

static void test_bad_config(void **state) {
    (void)state;
    bytes b = load("mmproj-q8_0.gguf");
    memcpy(b.p + after_string(&b, "clip.vision.patch_size") - 1, "x", 1);
    expect_bytes_error(&b, "no_patch", GEMMA_ERR_FORMAT, "key 'clip.vision.patch_size' is missing", NULL);
    free(b.p);
    expect_patch("mmproj-q8_0.gguf", "clip.vision.block_count", 4, 0, 4, "zero_layers", GEMMA_ERR_FORMAT,
                 "clip.vision.block_count = 0 is out of range (1..256)", NULL);
    expect_patch("mmproj-q8_0.gguf", "clip.vision.block_count", 4, 100000, 4, "many_layers", GEMMA_ERR_FORMAT,
                 "clip.vision.block_count = 100000 is out of range", NULL);
    expect_patch("mmproj-q8_0.gguf", "clip.vision.patch_size", 4, 3, 4, "patch3", GEMMA_ERR_FORMAT,
                 "clip.vision.image_size 8 is not a multiple of clip.vision.patch_size 3", NULL);
    expect_patch("mmproj-q8_0.gguf", "clip.vision.attention.head_count", 4, 5, 4, "heads5", GEMMA_ERR_FORMAT,
                 "clip.vision.embedding_length 32 is not a multiple of clip.vision.attention.head_count 5", NULL);
    expect_patch("mmproj-q8_0.gguf", "clip.vision.image_size", 4, 0, 4, "image0", GEMMA_ERR_FORMAT,
                 "clip.vision.image_size = 0 is out of range", NULL);
    expect_patch("mmproj-q8_0.gguf", "clip.vision.image_size", 0, GM_GGUF_F32, 4, "image_f32", GEMMA_ERR_FORMAT,
                 "key 'clip.vision.image_size' has type FLOAT32, expected an integer", NULL);
    expect_patch("mmproj-q8_0.gguf", "clip.vision.attention.layer_norm_epsilon", 4, 0xbf800000u, 4, "eps_neg",
                 GEMMA_ERR_FORMAT, "clip.vision.attention.layer_norm_epsilon = -1 is not in (0, 1)", NULL);
    expect_patch("mmproj-q8_0.gguf", "clip.vision.attention.layer_norm_epsilon", 4, 0x7fc00000u, 4, "eps_nan",
                 GEMMA_ERR_FORMAT, "layer_norm_epsilon = nan is not in (0, 1)", NULL);
    /* arrays: type, element type, count, then the f32 values */
    expect_patch("mmproj-q8_0.gguf", "clip.vision.image_std", 4 + 4 + 8 + 4, 0, 4, "std0", GEMMA_ERR_FORMAT,
                 "clip.vision.image_std[1] is not a positive number", NULL);
    expect_patch("mmproj-q8_0.gguf", "clip.vision.image_mean", 4 + 4 + 8, 0x7f800000u, 4, "mean_inf", GEMMA_ERR_FORMAT,
                 "clip.vision.image_mean[0] is not a finite number", NULL);
    /* pooling: the f16 file pools its 4x4 patches by 2 (key written); 3 does not divide, 0 is out of range */
    expect_patch("mmproj-f16.gguf", "clip.vision.projector.scale_factor", 4, 3, 4, "pool3", GEMMA_ERR_FORMAT,
                 "4 patches per side (image 16 / patch 4) do not pool by 3", NULL);
    expect_patch("mmproj-f16.gguf", "clip.vision.projector.scale_factor", 4, 0, 4, "pool0", GEMMA_ERR_FORMAT,
                 "clip.vision.projector.scale_factor = 0 is out of range (1..4)", NULL);
    /* without the key the Gemma 3 default 4 applies, which 4 patches per side allow: 1 token */
    b = load("mmproj-f16.gguf");
    memcpy(b.p + after_string(&b, "clip.vision.projector.scale_factor") - 1, "x", 1);
    char path[1200];
    snprintf(path, sizeof path, "%s/pool_default.gguf", bad_dir());
    tu_write(path, b.p, b.n);
    free(b.p);
    gm_mmproj m;
    gemma_error err;
    if (gm_mmproj_open(&m, path, &err) != GEMMA_OK) fail_msg("%s", err.message);
    assert_int_equal(m.cfg.pool, 4);
    assert_int_equal(m.cfg.tokens_per_image, 1);
    gm_mmproj_close(&m);
}

static void test_bad_tensors(void **state) {
    (void)state;
    bytes b = load("mmproj-f16.gguf");
    size_t at = after_string(&b, "mm.soft_emb_norm.weight");
    b.p[at - 1] = 'X';
    expect_bytes_error(&b, "no_norm", GEMMA_ERR_FORMAT,
                       "tensor 'mm.soft_emb_norm.weight' (multi_modal_projector.mm_soft_emb_norm.weight) is missing", NULL);
    free(b.p);
    b = load("mmproj-q8_0.gguf");
    b.p[after_string(&b, "v.blk.1.ln2.bias") - 1] = 'X';
    expect_bytes_error(&b, "no_ln2", GEMMA_ERR_FORMAT,
                       "tensor 'v.blk.1.ln2.bias' (vision_tower.vision_model.encoder.layers.1.layer_norm2.bias) is missing",
                       NULL);
    free(b.p);
    /* a tensor info: n_dims (u32), ne[n_dims] (u64 each), type (u32), offset (u64).
     * patch_embd ne [kw, kh, c, o] = [4, 4, 3, 16]: swapping c and o keeps the size */
    b = load("mmproj-f16.gguf");
    at = after_string(&b, "v.patch_embd.weight") + 4;
    put_le(&b, at + 16, 16, 8);
    put_le(&b, at + 24, 3, 8);
    expect_bytes_error(&b, "patch_order", GEMMA_ERR_FORMAT,
                       "tensor 'v.patch_embd.weight' (vision_tower.vision_model.embeddings.patch_embedding.weight) has "
                       "shape [3, 16, 4, 4], expected [16, 3, 4, 4]", NULL);
    free(b.p);
    /* the projection written transposed ([text hidden, hidden] in PyTorch order) */
    b = load("mmproj-f16.gguf");
    at = after_string(&b, "mm.input_projection.weight") + 4;
    put_le(&b, at, 16, 8);
    put_le(&b, at + 8, 40, 8);
    expect_bytes_error(&b, "proj_transposed", GEMMA_ERR_FORMAT, "has shape [40, 16], expected [16, 40]", NULL);
    free(b.p);
    /* fewer position rows than patches (a smaller tensor still fits the file) */
    expect_patch("mmproj-q8_0.gguf", "v.position_embd.weight", 4 + 8, 15, 8, "pos15", GEMMA_ERR_FORMAT,
                 "tensor 'v.position_embd.weight' (vision_tower.vision_model.embeddings.position_embedding.weight) has "
                 "shape [15, 32], expected [16, 32]", NULL);
    /* the config disagrees with every tensor */
    expect_patch("mmproj-q8_0.gguf", "clip.vision.feed_forward_length", 4, 64, 4, "ffn64", GEMMA_ERR_FORMAT,
                 "tensor 'v.blk.0.ffn_up.weight' (vision_tower.vision_model.encoder.layers.0.mlp.fc1.weight) has "
                 "shape [40, 32], expected [64, 32]", NULL);
    expect_patch("mmproj-q8_0.gguf", "clip.vision.projection_dim", 4, 2560, 4, "proj2560", GEMMA_ERR_FORMAT,
                 "(multi_modal_projector.mm_input_projection_weight) has shape [32, 24], expected [32, 2560]", NULL);
    /* types: I16 has F16's size but no arithmetic; a 1-D norm may not be quantized */
    expect_patch("mmproj-q8_0.gguf", "v.blk.1.ffn_down.weight", 4 + 16, GM_GGML_I16, 4, "i16", GEMMA_ERR_UNSUPPORTED,
                 "tensor 'v.blk.1.ffn_down.weight': ggml type I16 is not supported", NULL);
    expect_patch("mmproj-q8_0.gguf", "v.post_ln.weight", 4 + 8, GM_GGML_Q8_0, 4, "norm_q8", GEMMA_ERR_UNSUPPORTED,
                 "tensor 'v.post_ln.weight' (vision_tower.vision_model.post_layernorm.weight): a 1-D tensor in Q8_0; "
                 "expected F32, F16 or BF16", NULL);
}

/* Every truncation of a valid file fails cleanly (the GGUF reader's checks, seen through this loader). */
static void test_truncated(void **state) {
    (void)state;
    bytes b = load("mmproj-legacy.gguf");
    char path[1200];
    snprintf(path, sizeof path, "%s/cut.gguf", bad_dir());
    for (size_t n = 0; n < b.n; n += (n < 1024 ? 1 : 61)) {
        tu_write(path, b.p, n);
        expect_error(path, 0, NULL, NULL);
    }
    free(b.p);
}

/* In memory, as the fuzz target calls it. */
static void test_mapped(void **state) {
    (void)state;
    bytes b = load("mmproj-f16.gguf");
    gm_mapfile mf = {.data = b.p, .size = b.n, .path = strdup("mem.gguf"), .is_mapped = 0};
    gm_mmproj m;
    gemma_error err;
    if (gm_mmproj_open_mapped(&m, mf, &err) != GEMMA_OK) fail_msg("%s", err.message);
    assert_string_equal(m.path, "mem.gguf");
    assert_int_equal(m.cfg.tokens_per_image, 4);
    const gm_tensor *t = gm_tensors_find(&m.ts, "vision_tower.vision_model.embeddings.position_embedding.weight");
    assert_true(t->data > b.p && t->data + t->nbytes <= b.p + b.n);
    gm_mmproj_close(&m);
    b.p[0] = 'X';
    mf = (gm_mapfile){.data = b.p, .size = b.n, .path = strdup("mem.gguf"), .is_mapped = 0};
    assert_int_equal(gm_mmproj_open_mapped(&m, mf, &err), GEMMA_ERR_FORMAT);
    assert_true(strncmp(err.message, "mem.gguf: ", 10) == 0);
    free(b.p);
}

/* A real MedGemma / Gemma 3 4B mmproj, when GEMMA_MMPROJ names one: the So400m shapes of the spec (§1.2). */
static void test_real(void **state) {
    (void)state;
    const char *path = getenv("GEMMA_MMPROJ");
    if (!path || !*path) {
        print_message("GEMMA_MMPROJ not set: real mmproj check skipped\n");
        skip();
    }
    gm_mmproj m;
    gemma_error err;
    if (gm_mmproj_open(&m, path, &err) != GEMMA_OK) fail_msg("%s", err.message);
    const gm_vision_config *c = &m.cfg;
    assert_true(c->image_size == 896 && c->patch_size == 14 && c->hidden == 1152 && c->ffn == 4304);
    assert_true(c->layers == 27 && c->heads == 16 && c->head_dim == 72 && c->n_patches == 4096);
    assert_true(c->pool == 4 && c->tokens_per_image == 256 && c->projection_dim > 0);
    assert_int_equal(m.ts.n_tensors, 7 + 16 * 27);
    print_message("%s: file type %d, eps %g, projection %d, ffn swapped %d\n", path, m.file_type, (double)c->eps,
                  c->projection_dim, m.layout.ffn_swapped);
    gm_mmproj_close(&m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures),
        cmocka_unit_test(test_names_and_views),
        cmocka_unit_test(test_wrong_kind),
        cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_bad_tensors),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_mapped),
        cmocka_unit_test(test_real),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
