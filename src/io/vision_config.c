/* vision_config.c - config.json / mmproj -> gm_vision_config (see vision_config.h).
 *
 * The size fields of vision_config are required: transformers would fill
 * SigLIP-base defaults (768 hidden, 224 px, patch 16) that no Gemma 3
 * checkpoint has, and every real config states them.  layer_norm_eps,
 * num_channels and mm_tokens_per_image take the reference defaults (1e-6,
 * 3, 256) as transformers' Gemma3Config does. */
#include "io/vision_config.h"
#include "core/error.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define MAX_IMAGE 16384
#define MAX_PATCHES (1 << 20)
#define MAX_BUFFER_VALUES ((size_t)1 << 36)   /* one activation buffer: 256 GB of f32 is not a real model */

/* ------------------------------------------------------------- fields */

typedef struct {
    const char *path, *section;
    gemma_error *err;
} field_ctx;

/* An integer in [lo, hi]; `def` < 0 makes it required. */
static gemma_status int_field(const field_ctx *c, const gm_json *obj, const char *key, int def, int lo, int hi,
                              int *out) {
    const gm_json *v = gm_json_get(obj, key);
    int64_t x;
    if (!v || gm_json_is(v, GM_JSON_NULL)) {
        if (def < 0) return gm_fail(c->err, GEMMA_ERR_FORMAT, "%s: missing field %s%s", c->path, c->section, key);
        *out = def;
        return GEMMA_OK;
    }
    if (!gm_json_int(v, &x))
        return gm_fail(c->err, GEMMA_ERR_FORMAT, "%s: field %s%s must be an integer", c->path, c->section, key);
    if (x < lo || x > hi)
        return gm_fail(c->err, GEMMA_ERR_UNSUPPORTED, "%s: field %s%s = %lld is out of the supported range [%d, %d]",
                       c->path, c->section, key, (long long)x, lo, hi);
    *out = (int)x;
    return GEMMA_OK;
}

/* An optional string that, when present, must be one of `allowed` (NULL-terminated). */
static gemma_status enum_field(const field_ctx *c, const gm_json *obj, const char *key, const char *const *allowed,
                               const char *list) {
    const gm_json *v = gm_json_get(obj, key);
    if (!v || gm_json_is(v, GM_JSON_NULL)) return GEMMA_OK;
    const char *s = gm_json_string(v);
    if (!s) return gm_fail(c->err, GEMMA_ERR_FORMAT, "%s: field %s%s must be a string", c->path, c->section, key);
    for (const char *const *a = allowed; *a; a++)
        if (strcmp(s, *a) == 0) return GEMMA_OK;
    return gm_fail(c->err, GEMMA_ERR_UNSUPPORTED, "%s: field %s%s '%.64s' is not supported (%s)", c->path, c->section,
                   key, s, list);
}

/* ------------------------------------------------------------- checks */

gemma_status gm_vision_config_check(gm_vision_config *vc, const char *path, const char *what, gemma_error *err) {
    if (vc->image_size < 1 || vc->image_size > MAX_IMAGE || vc->patch_size < 1 || vc->hidden < 1 || vc->ffn < 1 ||
        vc->layers < 1 || vc->layers > GM_MMPROJ_MAX_LAYERS || vc->heads < 1 || vc->projection_dim < 1 ||
        vc->tokens_per_image < 1 || !(vc->eps > 0.0f && vc->eps < 1.0f))
        return gm_fail(err, GEMMA_ERR_FORMAT,
                       "%s: %ssizes out of range (image_size %d, patch_size %d, hidden %d, ffn %d, layers %d, heads %d, "
                       "projection %d, tokens %d, eps %g)",
                       path, what, vc->image_size, vc->patch_size, vc->hidden, vc->ffn, vc->layers, vc->heads,
                       vc->projection_dim, vc->tokens_per_image, (double)vc->eps);
    if (vc->patch_size > vc->image_size || vc->image_size % vc->patch_size)
        return gm_fail(err, GEMMA_ERR_FORMAT, "%s: %simage_size %d is not a multiple of %spatch_size %d", path, what,
                       vc->image_size, what, vc->patch_size);
    if (vc->hidden % vc->heads)
        return gm_fail(err, GEMMA_ERR_FORMAT, "%s: %shidden_size %d is not a multiple of %snum_attention_heads %d", path,
                       what, vc->hidden, what, vc->heads);
    vc->head_dim = vc->hidden / vc->heads;
    vc->patches_per_side = vc->image_size / vc->patch_size;
    if ((long long)vc->patches_per_side * vc->patches_per_side > MAX_PATCHES)
        return gm_fail(err, GEMMA_ERR_UNSUPPORTED, "%s: %d x %d patches (image_size %d / patch_size %d) exceed %d", path,
                       vc->patches_per_side, vc->patches_per_side, vc->image_size, vc->patch_size, MAX_PATCHES);
    vc->n_patches = vc->patches_per_side * vc->patches_per_side;
    int side = (int)lround(sqrt((double)vc->tokens_per_image));
    if (side * side != vc->tokens_per_image)
        return gm_fail(err, GEMMA_ERR_FORMAT, "%s: mm_tokens_per_image %d is not a square (the projector pools a "
                       "square grid)", path, vc->tokens_per_image);
    if (side > vc->patches_per_side || vc->patches_per_side % side)
        return gm_fail(err, GEMMA_ERR_FORMAT,
                       "%s: mm_tokens_per_image %d (%d per side) does not divide the %d x %d patch grid into equal "
                       "pools", path, vc->tokens_per_image, side, vc->patches_per_side, vc->patches_per_side);
    vc->tokens_per_side = side;
    vc->pool = vc->patches_per_side / side;
    /* the widest per-patch row: fc1's output, the hidden state, or an im2col patch */
    size_t widest = (size_t)vc->ffn > (size_t)vc->hidden ? (size_t)vc->ffn : (size_t)vc->hidden;
    size_t patch_len = 3 * (size_t)vc->patch_size * (size_t)vc->patch_size;
    if (patch_len > widest) widest = patch_len;
    if (widest > MAX_BUFFER_VALUES / (size_t)vc->n_patches || (size_t)vc->projection_dim > MAX_BUFFER_VALUES / (size_t)vc->tokens_per_image)
        return gm_fail(err, GEMMA_ERR_UNSUPPORTED, "%s: %ssizes overflow the activation buffers (%d patches x %zu)", path,
                       what, vc->n_patches, widest);
    return GEMMA_OK;
}

/* ------------------------------------------------------------ config.json */

gemma_status gm_vision_config_from_json(gm_vision_config *vc, const char *path, const gm_json *root,
                                        gemma_error *err) {
    memset(vc, 0, sizeof *vc);
    if (!gm_json_is(root, GM_JSON_OBJECT)) return gm_fail(err, GEMMA_ERR_FORMAT, "%s: not a JSON object", path);
    const char *mt = gm_json_string(gm_json_get(root, "model_type"));
    if (mt && strcmp(mt, "gemma3_text") == 0)
        return gm_fail(err, GEMMA_ERR_UNSUPPORTED, "%s: model_type gemma3_text is a text-only model (no vision_config)",
                       path);
    if (!mt || strcmp(mt, "gemma3") != 0)
        return gm_fail(err, GEMMA_ERR_UNSUPPORTED, "%s: field model_type '%.64s' has no supported vision tower (gemma3)",
                       path, mt ? mt : "(missing)");
    const gm_json *v = gm_json_get(root, "vision_config");
    if (!v || gm_json_is(v, GM_JSON_NULL)) return gm_fail(err, GEMMA_ERR_FORMAT, "%s: missing field vision_config", path);
    if (!gm_json_is(v, GM_JSON_OBJECT))
        return gm_fail(err, GEMMA_ERR_FORMAT, "%s: field vision_config must be an object", path);

    field_ctx c = {path, "vision_config.", err};
    gemma_status st;
    static const char *const types[] = {"siglip_vision_model", "gemma3_vision", NULL};
    static const char *const acts[] = {"gelu_pytorch_tanh", "gelu_tanh", NULL};
    if ((st = enum_field(&c, v, "model_type", types, "siglip_vision_model")) ||
        (st = enum_field(&c, v, "hidden_act", acts, "gelu_pytorch_tanh")) ||
        (st = int_field(&c, v, "hidden_size", -1, 1, 1 << 16, &vc->hidden)) ||
        (st = int_field(&c, v, "intermediate_size", -1, 1, 1 << 20, &vc->ffn)) ||
        (st = int_field(&c, v, "num_hidden_layers", -1, 1, GM_MMPROJ_MAX_LAYERS, &vc->layers)) ||
        (st = int_field(&c, v, "num_attention_heads", -1, 1, 1 << 16, &vc->heads)) ||
        (st = int_field(&c, v, "image_size", -1, 1, MAX_IMAGE, &vc->image_size)) ||
        (st = int_field(&c, v, "patch_size", -1, 1, MAX_IMAGE, &vc->patch_size)))
        return st;
    int channels;
    if ((st = int_field(&c, v, "num_channels", 3, 1, 1 << 16, &channels))) return st;
    if (channels != 3)
        return gm_fail(err, GEMMA_ERR_UNSUPPORTED, "%s: field vision_config.num_channels = %d (only RGB, 3, is supported)",
                       path, channels);
    const gm_json *head = gm_json_get(v, "vision_use_head");
    if (head && !gm_json_is(head, GM_JSON_NULL) && !gm_json_is(head, GM_JSON_FALSE))
        return gm_fail(err, GEMMA_ERR_UNSUPPORTED,
                       "%s: field vision_config.vision_use_head must be false (Gemma 3 has no attention-pool head)", path);
    const gm_json *e = gm_json_get(v, "layer_norm_eps");
    double eps = 1e-6;
    if (e && !gm_json_is(e, GM_JSON_NULL) && (!gm_json_number(e, &eps) || !isfinite(eps) || eps <= 0 || eps >= 1))
        return gm_fail(err, GEMMA_ERR_FORMAT, "%s: field vision_config.layer_norm_eps must be a number in (0, 1)", path);
    vc->eps = (float)eps;

    field_ctx top = {path, "", err};
    if ((st = int_field(&top, root, "mm_tokens_per_image", 256, 1, MAX_PATCHES, &vc->tokens_per_image))) return st;
    const gm_json *t = gm_json_get(root, "text_config");
    field_ctx tc = {path, "text_config.", err};
    if (t && !gm_json_is(t, GM_JSON_OBJECT))
        return gm_fail(err, GEMMA_ERR_FORMAT, "%s: field text_config must be an object", path);
    /* 2304 is transformers' Gemma3TextConfig default, as io/config.c has it */
    if ((st = int_field(&tc, t, "hidden_size", 2304, 1, 1 << 20, &vc->projection_dim))) return st;
    for (int i = 0; i < 3; i++) {
        vc->mean[i] = GM_VISION_DEFAULT_MEAN;
        vc->std[i] = GM_VISION_DEFAULT_STD;
    }
    return gm_vision_config_check(vc, path, "vision_config.", err);
}

gemma_status gm_vision_config_parse(gm_vision_config *vc, const char *path, const char *text, size_t len,
                                    gemma_error *err) {
    char jerr[160];
    gm_json_limits lim = {.max_bytes = 16u << 20, .max_depth = 32};
    gm_json_doc *doc = gm_json_parse(text, len, &lim, jerr, sizeof jerr);
    if (!doc) {
        memset(vc, 0, sizeof *vc);
        return gm_fail(err, GEMMA_ERR_FORMAT, "%s: not valid JSON: %s", path, jerr);
    }
    gemma_status st = gm_vision_config_from_json(vc, path, gm_json_root(doc), err);
    gm_json_free(doc);
    return st;
}

/* ----------------------------------------------------------------- mmproj */

gemma_status gm_vision_config_from_mmproj(gm_vision_config *vc, const gm_mmproj *m, gemma_error *err) {
    *vc = m->cfg;
    return gm_vision_config_check(vc, m->path, "clip.vision.", err);
}
