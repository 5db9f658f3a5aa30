/* test_quantize.c - gemma_quantize() writes, bit for bit, the checkpoint that
 * mlx_lm.convert / mlx.core.quantize write (sha256 of every tensor recorded
 * in tests/fixtures/quantize/golden.json by make_quantize_golden.py, which
 * checked those hashes against the real tools), the output loads here with
 * the config it declares, sharding does not change a byte, and every failure
 * (bad options, corrupt or already-quantized input, an output folder in the
 * way) is one line, leaves the input alone and leaves nothing behind.  Also
 * the pieces: the safetensors writer, float32 -> float16 rounding and the
 * MLX packer on crafted BF16/F16/F32 rows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/dtype.h"
#include "core/json.h"
#include "core/mapfile.h"
#include "gemma.h"
#include "io/modeldir.h"
#include "io/safetensors.h"
#include "io/safetensors_write.h"
#include "quant/mlx_affine.h"
#include "unit/sha256.h"
#include "unit/testutil.h"

#define QFIX GEMMA_FIXTURES_DIR "/quantize"
#define GFIX GEMMA_FIXTURES_DIR "/gemma3"

static gm_json_doc *golden;

static const gm_json *golden_root(void) {
    if (!golden) {
        char *text;
        size_t len;
        gemma_error err;
        if (gm_read_file(QFIX "/golden.json", 16u << 20, &text, &len, &err)) fail_msg("%s", err.message);
        char jerr[160];
        golden = gm_json_parse(text, len, NULL, jerr, sizeof jerr);
        free(text);
        if (!golden) fail_msg("golden.json: %s", jerr);
    }
    return gm_json_root(golden);
}

static void hex_of(const void *p, size_t n, char hex[65]) {
    sha256_ctx c;
    sha256_init(&c);
    sha256_update(&c, p, n);
    sha256_final_hex(&c, hex);
}

/* "DTYPE [shape] sha256", as make_quantize_golden.py describes a tensor */
static void describe(const gm_tensor *t, char *out, size_t n) {
    char hex[65], sb[128];
    hex_of(t->data, t->nbytes, hex);
    snprintf(out, n, "%s %s %s", t->dtype_name, gm_shape_str(t->shape, t->ndim, sb, sizeof sb), hex);
}

static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) n++;
    closedir(d);
    return n;
}

static void sh(const char *fmt, ...) {
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    if (system(cmd) != 0) fail_msg("command failed: %s", cmd);
}

/* The case's input folder: the fixture's files linked, config.json replaced
 * by the case's, or the tensors rewritten under other names. */
static const char *make_input(const gm_json *c) {
    const char *name = gm_json_string(gm_json_get(c, "name"));
    const char *fixture = gm_json_string(gm_json_get(c, "fixture"));
    const char *cfg = gm_json_string(gm_json_get(c, "config"));
    const gm_json *rename = gm_json_get(c, "rename");
    static char dir[1024];
    char sub[300];
    snprintf(sub, sizeof sub, "quantize/in/%s", name);
    snprintf(dir, sizeof dir, "%s", tu_dir(sub));
    if (gm_json_is(rename, GM_JSON_ARRAY)) {
        gm_modeldir md;
        gemma_error err;
        char fdir[600], out[1200];
        snprintf(fdir, sizeof fdir, GFIX "/%s", fixture);
        if (gm_modeldir_open(&md, fdir, &err)) fail_msg("%s", err.message);
        size_t n = md.tensors.n_tensors;
        gm_st_entry *e = calloc(n, sizeof *e);
        char **names = calloc(n, sizeof *names);
        for (size_t i = 0; i < n; i++) {
            const gm_tensor *t = &md.tensors.tensors[i];
            const char *nm = t->name;
            char buf[512];
            snprintf(buf, sizeof buf, "%s", nm);
            for (size_t r = 0; r < gm_json_count(rename); r++) {
                const char *from = gm_json_string(gm_json_at(gm_json_at(rename, r), 0));
                const char *to = gm_json_string(gm_json_at(gm_json_at(rename, r), 1));
                if (!strncmp(nm, from, strlen(from))) snprintf(buf, sizeof buf, "%s%s", to, nm + strlen(from));
            }
            names[i] = strdup(buf);
            e[i].name = names[i];
            e[i].dtype = t->dtype;
            e[i].ndim = t->ndim;
            memcpy(e[i].shape, t->shape, sizeof t->shape);
        }
        gm_st_writer w;
        if (gm_st_create(&w, tu_path(out, sizeof out, dir, "model.safetensors"), e, n, &err)) fail_msg("%s", err.message);
        for (size_t i = 0; i < n; i++)
            if (gm_st_write(&w, i, 0, md.tensors.tensors[i].data, md.tensors.tensors[i].nbytes, &err))
                fail_msg("%s", err.message);
        if (gm_st_finish(&w, &err)) fail_msg("%s", err.message);
        for (size_t i = 0; i < n; i++) free(names[i]);
        free(names);
        free(e);
        gm_modeldir_close(&md);
        sh("cp '%s/config.json' '%s/'", fdir, dir);
        return dir;
    }
    sh("for f in '" GFIX "/%s'/*.safetensors '" GFIX "/%s'/model.safetensors.index.json; do [ -e \"$f\" ] && ln -s \"$f\" '%s/'; done; true",
       fixture, fixture, dir);
    if (cfg)
        sh("cp '" QFIX "/%s' '%s/config.json'", cfg, dir);
    else
        sh("cp '" GFIX "/%s/config.json' '%s/config.json'", fixture, dir);
    return dir;
}

typedef struct {
    size_t calls, last_done, last_total;
    int final_seen, order_ok;
} progress_log;

static void on_progress(const gemma_quantize_progress *p, void *user) {
    progress_log *l = user;
    if (l->final_seen) l->order_ok = 0;   /* nothing after the final report */
    if (p->done < l->last_done) l->order_ok = 0;
    l->calls++;
    l->last_done = p->done;
    l->last_total = p->total;
    if (!p->tensor) l->final_seen = 1;
}

/* Quantize a golden case into out_dir and compare every tensor and the config. */
static void check_case(const gm_json *c, uint64_t shard_bytes, int *n_shards_out) {
    const char *name = gm_json_string(gm_json_get(c, "name"));
    int64_t bits = 0, gs = 0;
    assert_true(gm_json_int(gm_json_get(c, "bits"), &bits) && gm_json_int(gm_json_get(c, "group_size"), &gs));
    const char *in = make_input(c);
    char sub[300], out[1024];
    snprintf(sub, sizeof sub, "quantize/out/%s%s", name, shard_bytes ? ".sharded" : "");
    snprintf(out, sizeof out, "%s", tu_dir(sub));
    rmdir(out);   /* gemma_quantize creates it */
    gemma_quantize_options o = gemma_quantize_default_options();
    o.bits = (int)bits;
    o.group_size = (int)gs;
    o.skip_vision = gm_json_is(gm_json_get(c, "skip_vision"), GM_JSON_TRUE);
    o.max_shard_bytes = shard_bytes;
    progress_log log = {.order_ok = 1};
    o.progress = on_progress;
    o.progress_user = &log;
    gemma_error err;
    if (gemma_quantize(in, out, &o, &err) != GEMMA_OK) fail_msg("%s: %s", name, err.message);
    assert_true(log.final_seen && log.order_ok);
    assert_int_equal(log.calls, log.last_total + 1);

    gm_modeldir md;
    if (gm_modeldir_open(&md, out, &err) != GEMMA_OK) fail_msg("%s: output does not open: %s", name, err.message);
    const gm_json *want = gm_json_get(c, "tensors");
    if (md.tensors.n_tensors != gm_json_count(want))
        fail_msg("%s: %zu tensors written, golden has %zu", name, md.tensors.n_tensors, gm_json_count(want));
    size_t bad = 0;
    for (size_t i = 0; i < gm_json_count(want); i++) {
        const gm_json *w = gm_json_at(want, i);
        const gm_tensor *t = gm_tensors_find(&md.tensors, w->key);
        char got[256];
        if (!t) {
            print_error("%s: tensor '%s' missing\n", name, w->key);
            bad++;
            continue;
        }
        describe(t, got, sizeof got);
        if (strcmp(got, gm_json_string(w)) != 0) {
            if (bad < 5) print_error("%s: %s\n   got  %s\n   want %s\n", name, w->key, got, gm_json_string(w));
            bad++;
        }
    }
    if (bad) fail_msg("%s: %zu of %zu tensors differ from mlx", name, bad, gm_json_count(want));
    /* the config declares what the tensors hold, twice, as mlx-lm writes it */
    assert_true(md.cfg.has_quantization);
    assert_int_equal(md.cfg.quant_default.bits, bits);
    assert_int_equal(md.cfg.quant_default.group_size, gs);
    const gm_json *root = gm_json_root(md.cfg.doc);
    for (int k = 0; k < 2; k++) {
        const gm_json *q = gm_json_get(root, k ? "quantization_config" : "quantization");
        int64_t b = 0, g = 0;
        assert_true(gm_json_int(gm_json_get(q, "bits"), &b) && b == bits);
        assert_true(gm_json_int(gm_json_get(q, "group_size"), &g) && g == gs);
        assert_string_equal(gm_json_string(gm_json_get(q, "mode")), "affine");
        assert_int_equal(gm_json_count(q), 3);
    }
    if (n_shards_out) *n_shards_out = md.tensors.n_files;
    gm_modeldir_close(&md);
}

static void test_golden_cases(void **state) {
    (void)state;
    const gm_json *cases = gm_json_get(golden_root(), "cases");
    assert_true(gm_json_count(cases) >= 10);
    for (size_t i = 0; i < gm_json_count(cases); i++) check_case(gm_json_at(cases, i), 0, NULL);
    print_message("%zu cases bit-identical to mlx (%s)\n", gm_json_count(cases),
                  gm_json_string(gm_json_get(golden_root(), "mlx")));
}

/* Small shards: same bytes, several model-0000i-of-0000N files and an index that agrees. */
static void test_sharded_output(void **state) {
    (void)state;
    const char *names[] = {"text-bf16-t5.b4g64", "mm-f16-hubnames.b4g64"};
    for (size_t i = 0; i < 2; i++) {
        const gm_json *cases = gm_json_get(golden_root(), "cases"), *c = NULL;
        for (size_t k = 0; k < gm_json_count(cases) && !c; k++)
            if (!strcmp(gm_json_string(gm_json_get(gm_json_at(cases, k), "name")), names[i])) c = gm_json_at(cases, k);
        assert_non_null(c);
        int n_shards = 0;
        check_case(c, 40000, &n_shards);
        assert_true(n_shards >= 3);
        char p[1200];
        struct stat st;
        snprintf(p, sizeof p, GEMMA_TEST_TMPDIR "/quantize/out/%s.sharded/model-00001-of-%05d.safetensors", names[i],
                 n_shards);
        assert_int_equal(stat(p, &st), 0);
        snprintf(p, sizeof p, GEMMA_TEST_TMPDIR "/quantize/out/%s.sharded/model.safetensors", names[i]);
        assert_int_not_equal(stat(p, &st), 0);
    }
}

/* The engine runs the quantized checkpoint as mlx-lm does (float32 compute on
 * the same packed weights): only float rounding between them. */
static void test_engine_matches_mlx_lm(void **state) {
    (void)state;
    const gm_json *cases = gm_json_get(golden_root(), "cases");
    int seen = 0;
    for (size_t i = 0; i < gm_json_count(cases); i++) {
        const gm_json *c = gm_json_at(cases, i);
        const gm_json *lg = gm_json_get(c, "mlx_lm_logits");
        if (!gm_json_is(lg, GM_JSON_OBJECT)) continue;
        const char *name = gm_json_string(gm_json_get(c, "name"));
        check_case(c, 0, NULL);
        char out[1200], path[1200], *text;
        size_t len;
        gemma_error err;
        snprintf(out, sizeof out, GEMMA_TEST_TMPDIR "/quantize/out/%s", name);
        snprintf(path, sizeof path, GFIX "/%s/fixture.json", gm_json_string(gm_json_get(c, "fixture")));
        if (gm_read_file(path, 1 << 20, &text, &len, &err)) fail_msg("%s", err.message);
        gm_json_doc *fj = gm_json_parse(text, len, NULL, NULL, 0);
        free(text);
        const gm_json *toks = gm_json_get(gm_json_root(fj), "tokens");
        size_t n = gm_json_count(toks);
        int32_t *ids = malloc(n * sizeof *ids);
        for (size_t k = 0; k < n; k++) {
            int64_t v;
            assert_true(gm_json_int(gm_json_at(toks, k), &v));
            ids[k] = (int32_t)v;
        }
        gm_json_free(fj);
        snprintf(path, sizeof path, QFIX "/%s", gm_json_string(gm_json_get(lg, "file")));
        if (gm_read_file(path, 8u << 20, &text, &len, &err)) fail_msg("%s", err.message);

        gemma_model *m;
        if (gemma_model_load(out, NULL, &m, &err)) fail_msg("%s: %s", name, err.message);
        int vocab = gemma_model_vocab_size(m);
        assert_int_equal(len, n * (size_t)vocab * 2);
        gemma_session_options so = gemma_session_default_options();
        so.n_threads = 1;
        gemma_session *s;
        if (gemma_session_create(m, &so, &s, &err)) fail_msg("%s", err.message);
        float *got = malloc(n * (size_t)vocab * sizeof *got);
        if (gemma_session_eval(s, ids, n, GEMMA_LOGITS_ALL, got, &err)) fail_msg("%s", err.message);
        double maxd = 0, maxr = 0;
        size_t top_agree = 0;
        for (size_t r = 0; r < n; r++) {
            int bg = 0, br = 0;
            float best_g = -INFINITY, best_r = -INFINITY;
            for (int k = 0; k < vocab; k++) {
                uint16_t h;
                memcpy(&h, text + 2 * (r * (size_t)vocab + (size_t)k), 2);
                float ref = gm_f16_to_f32(h), g = got[r * (size_t)vocab + (size_t)k];
                if (fabs(g - ref) > maxd) maxd = fabs(g - ref);
                if (fabs(ref) > maxr) maxr = fabs(ref);
                if (g > best_g) best_g = g, bg = k;
                if (ref > best_r) best_r = ref, br = k;
            }
            top_agree += bg == br;
        }
        print_message("%s: engine vs mlx-lm on the quantized checkpoint: max|d| %.3g = %.2g of max|ref| %.3g, "
                      "top-1 %zu/%zu\n", name, maxd, maxd / maxr, maxr, top_agree, n);
        /* the reference is stored as float16: 2^-11 relative rounding on its own */
        if (maxd > 2e-3 * maxr) fail_msg("%s: logits differ from mlx-lm by %g (max|ref| %g)", name, maxd, maxr);
        free(got);
        free(ids);
        free(text);
        gemma_session_free(s);
        gemma_model_free(m);
        seen++;
    }
    assert_int_equal(seen, 3);   /* LOGIT_CASES: two Gemma 3, one Gemma 4 */
}

/* The packer on crafted rows in each dtype, scales/biases stored in that dtype. */
static void test_rows_match_mlx(void **state) {
    (void)state;
    const gm_json *rows = gm_json_get(golden_root(), "rows");
    int64_t cols;
    assert_true(gm_json_int(gm_json_get(rows, "cols"), &cols));
    gm_tensor_set ts;
    memset(&ts, 0, sizeof ts);
    gemma_error err;
    if (gm_tensors_add_file(&ts, QFIX "/rows.safetensors", &err)) fail_msg("%s", err.message);
    const gm_json *cases = gm_json_get(rows, "cases");
    float *w = malloc((size_t)cols * sizeof *w);
    size_t checked = 0;
    for (size_t i = 0; i < gm_json_count(cases); i++) {
        const gm_json *c = gm_json_at(cases, i);
        char dt[8];
        int bits, gs;
        assert_int_equal(sscanf(c->key, "%7[^.].b%dg%d", dt, &bits, &gs), 3);
        const gm_tensor *t = gm_tensors_find(&ts, dt);
        assert_non_null(t);
        int rows_n = (int)t->shape[0], groups = (int)cols / gs, esz = gm_dtype_size(t->dtype);
        size_t rb = gm_mlx_packed_row_bytes((int)cols, bits);
        uint8_t *packed = calloc((size_t)rows_n, rb), *sb = malloc((size_t)rows_n * groups * esz),
                *bb = malloc((size_t)rows_n * groups * esz);
        float s[16], b[16];
        for (int r = 0; r < rows_n; r++) {
            for (int k = 0; k < cols; k++) w[k] = gm_load_float(t->data, t->dtype, (size_t)r * cols + k);
            gm_mlx_quantize_row(w, (int)cols, bits, gs, packed + r * rb, s, b);
            for (int g = 0; g < groups; g++) {
                uint8_t *ps = sb + ((size_t)r * groups + g) * esz, *pb = bb + ((size_t)r * groups + g) * esz;
                if (t->dtype == GM_DT_F32) {
                    memcpy(ps, &s[g], 4);
                    memcpy(pb, &b[g], 4);
                } else {
                    uint16_t hs = t->dtype == GM_DT_BF16 ? gm_f32_to_bf16(s[g]) : gm_f32_to_f16(s[g]);
                    uint16_t hb = t->dtype == GM_DT_BF16 ? gm_f32_to_bf16(b[g]) : gm_f32_to_f16(b[g]);
                    memcpy(ps, &hs, 2);
                    memcpy(pb, &hb, 2);
                }
            }
        }
        char hex[65], want[3][128];
        const char *part[3] = {"weight", "scales", "biases"};
        const uint8_t *data[3] = {packed, sb, bb};
        size_t len[3] = {(size_t)rows_n * rb, (size_t)rows_n * groups * esz, (size_t)rows_n * groups * esz};
        for (int k = 0; k < 3; k++) {
            const char *g = gm_json_string(gm_json_get(c, part[k]));
            assert_non_null(g);
            snprintf(want[k], sizeof want[k], "%s", strrchr(g, ' ') + 1);
            hex_of(data[k], len[k], hex);
            if (strcmp(hex, want[k])) fail_msg("rows %s: %s differs from mx.quantize", c->key, part[k]);
        }
        free(packed);
        free(sb);
        free(bb);
        checked++;
    }
    free(w);
    gm_tensors_free(&ts);
    assert_int_equal(checked, 3 * 6 * 3);
}

/* float32 -> float16 rounds to nearest even everywhere (subnormals, overflow, ties). */
static void test_f32_to_f16(void **state) {
    (void)state;
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) continue;   /* NaN */
        float f = gm_f16_to_f32((uint16_t)h);
        assert_int_equal(gm_f32_to_f16(f), h);
        /* the midpoint to the next value up (in magnitude) rounds to the even one */
        if ((h & 0x7fff) < 0x7bff) {
            float g = gm_f16_to_f32((uint16_t)(h + 1));
            float mid = (float)(((double)f + (double)g) / 2);
            uint16_t even = (h & 1) ? (uint16_t)(h + 1) : (uint16_t)h;
            assert_int_equal(gm_f32_to_f16(mid), even);
            assert_int_equal(gm_f32_to_f16(nextafterf(mid, 0.0f)), h);
            assert_int_equal(gm_f32_to_f16(nextafterf(mid, f > 0 || h == 0 ? INFINITY : -INFINITY)), h + 1);
        }
    }
    assert_int_equal(gm_f32_to_f16(65519.996f), 0x7bff);
    assert_int_equal(gm_f32_to_f16(65520.0f), 0x7c00);
    assert_int_equal(gm_f32_to_f16(-1e30f), 0xfc00);
    assert_int_equal(gm_f32_to_f16(INFINITY), 0x7c00);
    assert_int_equal(gm_f32_to_f16(1e-30f), 0);
    assert_int_equal(gm_f32_to_f16(-2.98023224e-8f), 0x8000);   /* -2^-25: a tie, to even (zero) */
    assert_true((gm_f32_to_f16(NAN) & 0x7c00) == 0x7c00 && (gm_f32_to_f16(NAN) & 0x3ff));
#ifdef __FLT16_MAX__
    /* and against the compiler's own conversion over a stride of every float */
    for (uint64_t x = 0; x <= 0xffffffffu; x += 65521) {
        uint32_t u = (uint32_t)x;
        float f;
        memcpy(&f, &u, 4);
        if (f != f) continue;
        _Float16 r = (_Float16)f;
        uint16_t rb;
        memcpy(&rb, &r, 2);
        if (rb != gm_f32_to_f16(f)) fail_msg("%08x: %04x vs %04x", u, rb, gm_f32_to_f16(f));
    }
#endif
}

/* The writer: pieces in any order, read back exactly; incomplete files and existing paths fail. */
static void test_safetensors_writer(void **state) {
    (void)state;
    const char *dir = tu_dir("quantize/writer");
    char path[1200];
    tu_path(path, sizeof path, dir, "w.safetensors");
    gm_st_entry e[3] = {
        {.name = "b \"odd\" name", .dtype = GM_DT_BF16, .ndim = 2, .shape = {3, 5}},
        {.name = "a", .dtype = GM_DT_U32, .ndim = 1, .shape = {7}},
        {.name = "empty", .dtype = GM_DT_F32, .ndim = 2, .shape = {0, 4}},
    };
    uint8_t b[30], a[28];
    for (int i = 0; i < 30; i++) b[i] = (uint8_t)(i * 7 + 1);
    for (int i = 0; i < 28; i++) a[i] = (uint8_t)(200 - i);
    gm_st_writer w;
    gemma_error err;
    assert_int_equal(gm_st_create(&w, path, e, 3, &err), GEMMA_OK);
    assert_int_equal(gm_st_write(&w, 1, 20, a + 20, 8, &err), GEMMA_OK);
    assert_int_equal(gm_st_write(&w, 0, 0, b, 30, &err), GEMMA_OK);
    assert_int_equal(gm_st_write(&w, 1, 0, a, 20, &err), GEMMA_OK);
    assert_int_equal(gm_st_write(&w, 1, 27, a, 2, &err), GEMMA_ERR_INTERNAL);   /* past the tensor */
    assert_int_equal(gm_st_finish(&w, &err), GEMMA_OK);

    gm_tensor_set ts;
    memset(&ts, 0, sizeof ts);
    assert_int_equal(gm_tensors_add_file(&ts, path, &err), GEMMA_OK);
    assert_int_equal(ts.n_tensors, 3);
    const gm_tensor *tb = gm_tensors_find(&ts, "b \"odd\" name"), *ta = gm_tensors_find(&ts, "a");
    assert_non_null(tb);
    assert_non_null(ta);
    assert_int_equal(tb->dtype, GM_DT_BF16);
    assert_int_equal(tb->shape[1], 5);
    assert_memory_equal(tb->data, b, 30);
    assert_memory_equal(ta->data, a, 28);
    assert_int_equal(gm_tensors_find(&ts, "empty")->nbytes, 0);
    /* header: 8-byte length, JSON padded to 8 bytes, MLX metadata first */
    const gm_mapfile *mf = &ts.files[0];
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | mf->data[i];
    assert_int_equal(hlen % 8, 0);
    assert_int_equal(memcmp(mf->data + 8, "{\"__metadata__\":{\"format\":\"mlx\"}", 32), 0);
    assert_int_equal(mf->size, 8 + hlen + 58);
    gm_tensors_free(&ts);

    /* an existing file is never overwritten */
    assert_int_equal(gm_st_create(&w, path, e, 3, &err), GEMMA_ERR_IO);
    assert_null(tu_message_problem(err.message, path, "cannot create", NULL));
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    /* a tensor left incomplete fails and removes the file */
    tu_path(path, sizeof path, dir, "incomplete.safetensors");
    assert_int_equal(gm_st_create(&w, path, e, 3, &err), GEMMA_OK);
    assert_int_equal(gm_st_write(&w, 0, 0, b, 30, &err), GEMMA_OK);
    assert_int_equal(gm_st_finish(&w, &err), GEMMA_ERR_INTERNAL);
    assert_int_not_equal(stat(path, &st), 0);
    /* abort removes it too */
    assert_int_equal(gm_st_create(&w, path, e, 3, &err), GEMMA_OK);
    gm_st_abort(&w);
    assert_int_not_equal(stat(path, &st), 0);
    gm_st_abort(&w);   /* twice is harmless */
}

static gemma_status quantize(const char *in, const char *out, int bits, int gs, int force, gemma_error *err) {
    gemma_quantize_options o = gemma_quantize_default_options();
    o.bits = bits;
    o.group_size = gs;
    o.force = force;
    return gemma_quantize(in, out, &o, err);
}

static void expect_error(gemma_status got, gemma_status want, const gemma_error *err, const char *path, const char *s1,
                         const char *s2) {
    if (got != want) fail_msg("status %d, want %d (%s)", got, want, err->message);
    const char *why = tu_message_problem(err->message, path, s1, s2);
    if (why) fail_msg("message '%s' %s", err->message, why);
}

static void test_bad_options_and_inputs(void **state) {
    (void)state;
    gemma_error err;
    const char *text = GFIX "/text-bf16-t5";
    char out[1024];
    snprintf(out, sizeof out, "%s/out", tu_dir("quantize/bad"));
    struct stat st;

    expect_error(quantize(text, out, 7, 64, 0, &err), GEMMA_ERR_ARG, &err, "quantize", "bits 7", NULL);
    expect_error(quantize(text, out, 4, 48, 0, &err), GEMMA_ERR_ARG, &err, "quantize", "group size 48", NULL);
    expect_error(quantize(NULL, out, 4, 64, 0, &err), GEMMA_ERR_ARG, &err, "quantize", "input", NULL);
    expect_error(quantize(text, "", 4, 64, 0, &err), GEMMA_ERR_ARG, &err, "quantize", "output", NULL);
    assert_int_not_equal(stat(out, &st), 0);

    /* no such folder; a folder without config.json */
    char nope[1100];
    snprintf(nope, sizeof nope, "%s/nope", out);
    assert_int_equal(quantize(nope, out, 4, 64, 0, &err), GEMMA_ERR_IO);
    assert_non_null(strstr(err.message, nope));
    char cfg[1100];
    snprintf(cfg, sizeof cfg, "%s/config.json", QFIX);
    expect_error(quantize(QFIX, out, 4, 64, 0, &err), GEMMA_ERR_IO, &err, cfg, "missing", NULL);

    /* already quantized: config and U32 weights */
    expect_error(quantize(GFIX "/mlx4-g64-convert", out, 4, 64, 0, &err), GEMMA_ERR_ARG, &err,
                 GFIX "/mlx4-g64-convert/config.json", "quantization", "already quantized");
    assert_int_not_equal(stat(out, &st), 0);

    /* a truncated shard: the reader names file and tensor; nothing is created */
    const char *cdir = tu_dir("quantize/corrupt");
    sh("cp '%s/config.json' '%s/' && head -c 200000 '%s/model.safetensors' > '%s/model.safetensors'", text, cdir, text,
       cdir);
    char shard[1200];
    tu_path(shard, sizeof shard, cdir, "model.safetensors");
    expect_error(quantize(cdir, out, 4, 64, 0, &err), GEMMA_ERR_FORMAT, &err, shard, "tensor '", "truncated");
    assert_int_not_equal(stat(out, &st), 0);
    /* a NaN in a weight that would be quantized (F32 fixture, one element overwritten) */
    sh("cp '" GFIX "/text-f32-hub/config.json' '%s/' && cp '" GFIX "/text-f32-hub/model.safetensors' '%s/'", cdir, cdir);
    {
        gm_tensor_set ts;
        memset(&ts, 0, sizeof ts);
        assert_int_equal(gm_tensors_add_file(&ts, shard, &err), GEMMA_OK);
        const gm_tensor *t = gm_tensors_find(&ts, "model.layers.3.self_attn.o_proj.weight");
        assert_non_null(t);
        long off = (long)(t->data - ts.files[0].data) + 4 * (2 * 96 + 5);
        gm_tensors_free(&ts);
        FILE *f = fopen(shard, "r+b");
        float nan = NAN;
        assert_true(f && fseek(f, off, SEEK_SET) == 0 && fwrite(&nan, 4, 1, f) == 1);
        fclose(f);
    }
    expect_error(quantize(cdir, out, 8, 32, 0, &err), GEMMA_ERR_FORMAT, &err, shard,
                 "'model.layers.3.self_attn.o_proj.weight': element [2, 5] is nan", NULL);
    assert_int_not_equal(stat(out, &st), 0);
    /* a header that is not JSON */
    sh("printf '\\020\\000\\000\\000\\000\\000\\000\\000{\"a\":nonsense}  ' > '%s'", shard);
    expect_error(quantize(cdir, out, 4, 64, 0, &err), GEMMA_ERR_FORMAT, &err, shard, "JSON", NULL);
    assert_int_not_equal(stat(out, &st), 0);
}

static void test_output_folder_rules(void **state) {
    (void)state;
    gemma_error err;
    const char *base = tu_dir("quantize/rules");
    char in[1100], out[1100], p[1300];
    snprintf(in, sizeof in, "%s/in", base);
    snprintf(out, sizeof out, "%s/deep/er/out", base);
    /* input with the files a loader needs next to the weights, and one it does not */
    sh("mkdir -p '%s' && cp " GFIX "/text-bf16-t5/config.json " GFIX "/text-bf16-t5/model.safetensors '%s/' && "
       "printf '{\"t\":1}' > '%s/tokenizer.json' && printf '{}' > '%s/tokenizer_config.json' && "
       "printf '{{ bos_token }}' > '%s/chat_template.jinja' && printf 'x' > '%s/README.md'",
       in, in, in, in, in, in);
    sh("cd '%s' && sha256sum * > ../in.sha256", in);

    /* the input folder itself, even spelled differently */
    char same[1200];
    snprintf(same, sizeof same, "%s/../in/", in);
    expect_error(quantize(in, same, 4, 64, 1, &err), GEMMA_ERR_ARG, &err, same, "input model directory", NULL);
    /* a file in the way */
    tu_path(p, sizeof p, base, "file");
    tu_write_str(p, "keep");
    expect_error(quantize(in, p, 4, 64, 0, &err), GEMMA_ERR_ARG, &err, p, "not a directory", NULL);

    /* fresh: parents created; only the listed files copied */
    progress_log log = {.order_ok = 1};
    gemma_quantize_options o = gemma_quantize_default_options();
    o.progress = on_progress;
    o.progress_user = &log;
    assert_int_equal(gemma_quantize(in, out, &o, &err), GEMMA_OK);
    assert_int_equal(count_entries(out), 6);   /* config, shard, index, tokenizer x2, chat template */
    sh("cmp '%s/tokenizer.json' '%s/tokenizer.json' && cmp '%s/chat_template.jinja' '%s/chat_template.jinja'", in, out,
       in, out);
    assert_int_not_equal(stat(tu_path(p, sizeof p, out, "README.md"), &(struct stat){0}), 0);

    /* not empty: refused without force, and nothing changes */
    sh("cp '%s/model.safetensors' '%s/first.bin'", out, base);
    expect_error(quantize(in, out, 8, 32, 0, &err), GEMMA_ERR_ARG, &err, out, "not empty", "--force");
    sh("cmp '%s/model.safetensors' '%s/first.bin'", out, base);
    /* force: replaced in place, a file of the user's kept */
    tu_write_str(tu_path(p, sizeof p, out, "notes.txt"), "mine");
    assert_int_equal(quantize(in, out, 8, 32, 1, &err), GEMMA_OK);
    sh("! cmp -s '%s/model.safetensors' '%s/first.bin' && grep -q mine '%s/notes.txt'", out, base, out);
    gm_modeldir md;
    assert_int_equal(gm_modeldir_open(&md, out, &err), GEMMA_OK);
    assert_int_equal(md.cfg.quant_default.bits, 8);
    gm_modeldir_close(&md);
    assert_int_equal(count_entries(out), 7);   /* no temporaries left */
    /* force, but a shard that would be left beside the new ones */
    tu_write_str(tu_path(p, sizeof p, out, "model-00001-of-00002.safetensors"), "old");
    expect_error(quantize(in, out, 4, 64, 1, &err), GEMMA_ERR_ARG, &err, p, "move it away", NULL);
    unlink(p);

    /* force, but a folder where a file goes */
    sh("mkdir '%s/tokenizer.json.d' && mv '%s/tokenizer.json' '%s/tokenizer.json.bak' && mv '%s/tokenizer.json.d' '%s/tokenizer.json'",
       out, out, out, out, out);
    tu_path(p, sizeof p, out, "tokenizer.json");
    expect_error(quantize(in, out, 4, 64, 1, &err), GEMMA_ERR_ARG, &err, p, "is a directory", NULL);
    sh("rmdir '%s/tokenizer.json' && mv '%s/tokenizer.json.bak' '%s/tokenizer.json'", out, out, out);

    /* a failure halfway (a temporary name taken) removes what was written, keeps the rest */
    snprintf(p, sizeof p, "%s/.config.json.tmp.%ld", out, (long)getpid());
    sh("mkdir '%s'", p);
    sh("cp '%s/model.safetensors' '%s/second.bin'", out, base);
    assert_int_equal(quantize(in, out, 4, 64, 1, &err), GEMMA_ERR_IO);
    assert_non_null(strstr(err.message, "config.json.tmp"));
    rmdir(p);
    sh("cmp '%s/model.safetensors' '%s/second.bin'", out, base);
    assert_int_equal(count_entries(out), 7);
    /* the input never changed */
    sh("cd '%s' && sha256sum -c --quiet ../in.sha256 && [ $(ls -A | wc -l) = 6 ]", in);
}

/* config.json is the input byte for byte up to its closing brace, then the
 * two entries, in the file's own indentation (or on one line). */
static void test_config_written(void **state) {
    (void)state;
    const char *base = tu_dir("quantize/config");
    const char *variants[] = {"indented", "oneline"};
    for (int v = 0; v < 2; v++) {
        char in[1100], out[1100], p[1200];
        snprintf(in, sizeof in, "%s/%s", base, variants[v]);
        snprintf(out, sizeof out, "%s/%s-out", base, variants[v]);
        sh("mkdir -p '%s' && ln -s " GFIX "/text-bf16-t5/model.safetensors '%s/'", in, in);
        if (v == 0)
            sh("cp " GFIX "/text-bf16-t5/config.json '%s/'", in);
        else
            sh("tr -d '\n ' < " GFIX "/text-bf16-t5/config.json > '%s/config.json'", in);
        gemma_error err;
        assert_int_equal(quantize(in, out, 3, 32, 0, &err), GEMMA_OK);
        char *a, *b;
        size_t na, nb;
        assert_int_equal(gm_read_file(tu_path(p, sizeof p, in, "config.json"), 1 << 20, &a, &na, &err), GEMMA_OK);
        assert_int_equal(gm_read_file(tu_path(p, sizeof p, out, "config.json"), 1 << 20, &b, &nb, &err), GEMMA_OK);
        size_t keep = strrchr(a, '}') - a;
        while (keep && strchr(" \n", a[keep - 1])) keep--;
        assert_true(nb > na && memcmp(a, b, keep) == 0);
        const char *want = v == 0 ? ",\n  \"quantization\": {\n    \"group_size\": 32,\n    \"bits\": 3,\n"
                                  : ", \"quantization\": {\"group_size\": 32, \"bits\": 3, \"mode\": \"affine\"}";
        if (strncmp(b + keep, want, strlen(want))) fail_msg("%s: config continues with '%.80s'", variants[v], b + keep);
        gm_json_doc *d = gm_json_parse(b, nb, NULL, NULL, 0);
        assert_non_null(d);
        assert_non_null(gm_json_get(gm_json_get(gm_json_root(d), "quantization_config"), "mode"));
        gm_json_free(d);
        free(a);
        free(b);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f32_to_f16),
        cmocka_unit_test(test_safetensors_writer),
        cmocka_unit_test(test_rows_match_mlx),
        cmocka_unit_test(test_golden_cases),
        cmocka_unit_test(test_sharded_output),
        cmocka_unit_test(test_engine_matches_mlx_lm),
        cmocka_unit_test(test_bad_options_and_inputs),
        cmocka_unit_test(test_output_folder_rules),
        cmocka_unit_test(test_config_written),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    gm_json_free(golden);
    return rc;
}
