/* mmproj.c - llama.cpp mmproj GGUF -> vision config + HF-named tensor views (see mmproj.h).
 *
 * Three steps: the metadata (checked before anything else, so a text GGUF or
 * another projector gets a clear message), then every expected tensor looked
 * up and checked against the config while the GGUF reader still owns the map,
 * then the map handed to the tensor set and the views added under HF names. */
#include "io/mmproj.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/gguf.h"
#include "quant/ggml_blocks.h"

#define VT "vision_tower.vision_model."

/* Expected shapes, in PyTorch order. */
enum { SH_D, SH_F, SH_DD, SH_FD, SH_DF, SH_PATCH, SH_POS, SH_PROJ };

typedef struct {
    const char *gguf, *hf;
    int shape;
} name_map;

/* Names from gguf-py constants.py TENSOR_NAMES (MODEL_ARCH.MMPROJ) / clip-impl.h TN_*,
 * mapped back through tensor_mapping.py to the transformers Gemma3 names. */
static const name_map GLOBALS[] = {
    {"v.patch_embd.weight", VT "embeddings.patch_embedding.weight", SH_PATCH},
    {"v.patch_embd.bias", VT "embeddings.patch_embedding.bias", SH_D},
    {"v.position_embd.weight", VT "embeddings.position_embedding.weight", SH_POS},
    {"v.post_ln.weight", VT "post_layernorm.weight", SH_D},
    {"v.post_ln.bias", VT "post_layernorm.bias", SH_D},
    /* the converter renames mm_input_projection_weight -> mm_input_projection.weight (its "_weight" -> ".weight") */
    {"mm.input_projection.weight", "multi_modal_projector.mm_input_projection_weight", SH_PROJ},
    {"mm.soft_emb_norm.weight", "multi_modal_projector.mm_soft_emb_norm.weight", SH_D},
};

/* Per layer: "v.blk.N." + gguf, VT "encoder.layers.N." + hf.  ffn_up is fc1 and
 * ffn_down fc2 (tensor_mapping.py); legacy files swap the two stems. */
static const name_map LAYER[] = {
    {"attn_q.weight", "self_attn.q_proj.weight", SH_DD},     {"attn_q.bias", "self_attn.q_proj.bias", SH_D},
    {"attn_k.weight", "self_attn.k_proj.weight", SH_DD},     {"attn_k.bias", "self_attn.k_proj.bias", SH_D},
    {"attn_v.weight", "self_attn.v_proj.weight", SH_DD},     {"attn_v.bias", "self_attn.v_proj.bias", SH_D},
    {"attn_out.weight", "self_attn.out_proj.weight", SH_DD}, {"attn_out.bias", "self_attn.out_proj.bias", SH_D},
    {"ln1.weight", "layer_norm1.weight", SH_D},              {"ln1.bias", "layer_norm1.bias", SH_D},
    {"ln2.weight", "layer_norm2.weight", SH_D},              {"ln2.bias", "layer_norm2.bias", SH_D},
    {"ffn_up.weight", "mlp.fc1.weight", SH_FD},              {"ffn_up.bias", "mlp.fc1.bias", SH_F},
    {"ffn_down.weight", "mlp.fc2.weight", SH_DF},            {"ffn_down.bias", "mlp.fc2.bias", SH_D},
};

#define N_GLOBALS (sizeof GLOBALS / sizeof GLOBALS[0])
#define N_LAYER (sizeof LAYER / sizeof LAYER[0])

/* --------------------------------------------------------------- metadata */

static gemma_status get_dim(const gm_gguf *g, const char *key, int hi, int *out, gemma_error *err) {
    uint32_t v;
    gemma_status st = gm_gguf_get_u32(g, key, &v, err);
    if (st) return st;
    if (v < 1 || v > (uint32_t)hi)
        return gm_fail(err, GEMMA_ERR_FORMAT, "%s: %s = %u is out of range (1..%d)", gm_gguf_path(g), key, v, hi);
    *out = (int)v;
    return GEMMA_OK;
}

static gemma_status get_rgb(const gm_gguf *g, const char *key, int positive, float out[3], gemma_error *err) {
    const gm_gguf_value *a;
    gemma_status st = gm_gguf_get_arr(g, key, GM_GGUF_TYPE_COUNT, &a, err);
    if (st) return st;
    if (a->count != 3)
        return gm_fail(err, GEMMA_ERR_FORMAT, "%s: %s has %llu values, expected 3 (R, G, B)", gm_gguf_path(g), key,
                       (unsigned long long)a->count);
    for (int i = 0; i < 3; i++) {
        double d;
        if (!gm_gguf_arr_f64(a, (uint64_t)i, &d) || !isfinite(d) || (positive && !(d > 0)) || fabs(d) > 1e6)
            return gm_fail(err, GEMMA_ERR_FORMAT, "%s: %s[%d] is not a %snumber", gm_gguf_path(g), key, i,
                           positive ? "positive " : "finite ");
        out[i] = (float)d;
    }
    return GEMMA_OK;
}

/* An optional bool that, when present, must be true. */
static gemma_status want_true(const gm_gguf *g, const char *key, const char *why, gemma_error *err) {
    if (!gm_gguf_find_kv(g, key)) return GEMMA_OK;
    int b;
    gemma_status st = gm_gguf_get_bool(g, key, &b, err);
    if (st) return st;
    if (!b) return gm_fail(err, GEMMA_ERR_UNSUPPORTED, "%s: %s is false: %s", gm_gguf_path(g), key, why);
    return GEMMA_OK;
}

static gemma_status check_kind(const gm_gguf *g, gemma_error *err) {
    const char *path = gm_gguf_path(g), *s;
    size_t len;
    if (!gm_gguf_find_kv(g, "general.architecture"))
        return gm_fail(err, GEMMA_ERR_FORMAT, "%s: general.architecture is missing; not a llama.cpp mmproj file", path);
    gemma_status st = gm_gguf_get_str(g, "general.architecture", &s, &len, err);
    if (st) return st;
    if (strcmp(s, "clip") != 0 || len != 4)
        return gm_fail(err, GEMMA_ERR_FORMAT,
                       "%s: general.architecture is '%.64s', expected 'clip': not a multimodal projector (mmproj) "
                       "file%s", path, s, gm_gguf_find_kv(g, "clip.projector_type") ? "" : " (a text model GGUF?)");
    /* clip.cpp load_hparams: KEY_PROJ_TYPE, then KEY_VISION_PROJ_TYPE (files with several modalities) */
    const char *key = "clip.projector_type";
    if (!gm_gguf_find_kv(g, key) && gm_gguf_find_kv(g, "clip.vision.projector_type")) key = "clip.vision.projector_type";
    if (!gm_gguf_find_kv(g, key))
        return gm_fail(err, GEMMA_ERR_FORMAT, "%s: clip.projector_type is missing (supported: gemma3)", path);
    if ((st = gm_gguf_get_str(g, key, &s, &len, err))) return st;
    if (strcmp(s, "gemma3") != 0 || len != 6)
        return gm_fail(err, GEMMA_ERR_UNSUPPORTED, "%s: %s '%.64s' is not supported (supported: gemma3)", path, key, s);
    if ((st = want_true(g, "clip.has_vision_encoder", "the file holds no vision encoder", err))) return st;
    return want_true(g, "clip.use_gelu", "Gemma 3's SigLIP tower uses GELU (tanh)", err);
}

static gemma_status read_config(const gm_gguf *g, gm_vision_config *c, int *file_type, gemma_error *err) {
    const char *path = gm_gguf_path(g);
    gemma_status st;
    memset(c, 0, sizeof *c);
    if ((st = get_dim(g, "clip.vision.image_size", 1 << 14, &c->image_size, err)) ||
        (st = get_dim(g, "clip.vision.patch_size", c->image_size, &c->patch_size, err)) ||
        (st = get_dim(g, "clip.vision.embedding_length", 1 << 16, &c->hidden, err)) ||
        (st = get_dim(g, "clip.vision.feed_forward_length", 1 << 20, &c->ffn, err)) ||
        (st = get_dim(g, "clip.vision.block_count", GM_MMPROJ_MAX_LAYERS, &c->layers, err)) ||
        (st = get_dim(g, "clip.vision.attention.head_count", c->hidden, &c->heads, err)) ||
        (st = get_dim(g, "clip.vision.projection_dim", 1 << 20, &c->projection_dim, err)))
        return st;
    if (c->image_size % c->patch_size)
        return gm_fail(err, GEMMA_ERR_FORMAT, "%s: clip.vision.image_size %d is not a multiple of clip.vision.patch_size %d",
                       path, c->image_size, c->patch_size);
    if (c->hidden % c->heads)
        return gm_fail(err, GEMMA_ERR_FORMAT,
                       "%s: clip.vision.embedding_length %d is not a multiple of clip.vision.attention.head_count %d", path,
                       c->hidden, c->heads);
    c->head_dim = c->hidden / c->heads;
    c->patches_per_side = c->image_size / c->patch_size;
    c->n_patches = c->patches_per_side * c->patches_per_side;
    const char *eps_key = "clip.vision.attention.layer_norm_epsilon";
    if ((st = gm_gguf_get_f32(g, eps_key, &c->eps, err))) return st;
    if (!(c->eps > 0.0f && c->eps < 1.0f))
        return gm_fail(err, GEMMA_ERR_FORMAT, "%s: %s = %g is not in (0, 1)", path, eps_key, (double)c->eps);
    if ((st = get_rgb(g, "clip.vision.image_mean", 0, c->mean, err)) ||
        (st = get_rgb(g, "clip.vision.image_std", 1, c->std, err)))
        return st;
    c->pool = GM_MMPROJ_DEFAULT_POOL;
    const char *pool_key = "clip.vision.projector.scale_factor";
    if (gm_gguf_find_kv(g, pool_key) && (st = get_dim(g, pool_key, c->patches_per_side, &c->pool, err))) return st;
    if (c->patches_per_side % c->pool)
        return gm_fail(err, GEMMA_ERR_FORMAT, "%s: %d patches per side (image %d / patch %d) do not pool by %d%s", path,
                       c->patches_per_side, c->image_size, c->patch_size, c->pool,
                       gm_gguf_find_kv(g, pool_key) ? "" : " (the Gemma 3 default; clip.vision.projector.scale_factor is absent)");
    c->tokens_per_side = c->patches_per_side / c->pool;
    c->tokens_per_image = c->tokens_per_side * c->tokens_per_side;
    *file_type = -1;
    uint32_t ft;
    if (gm_gguf_find_kv(g, "general.file_type")) {
        if ((st = gm_gguf_get_u32(g, "general.file_type", &ft, err))) return st;
        *file_type = ft > 1024 ? -1 : (int)ft;
    }
    return GEMMA_OK;
}

/* ---------------------------------------------------------------- tensors */

static int expected_shape(int kind, const gm_vision_config *c, int64_t *s) {
    int64_t d = c->hidden, f = c->ffn;
    switch (kind) {
    case SH_D: s[0] = d; return 1;
    case SH_F: s[0] = f; return 1;
    case SH_DD: s[0] = d; s[1] = d; return 2;
    case SH_FD: s[0] = f; s[1] = d; return 2;
    case SH_DF: s[0] = d; s[1] = f; return 2;
    case SH_PATCH: s[0] = d; s[1] = 3; s[2] = c->patch_size; s[3] = c->patch_size; return 4;
    case SH_POS: s[0] = c->n_patches; s[1] = d; return 2;
    default: s[0] = d; s[1] = c->projection_dim; return 2;   /* SH_PROJ */
    }
}

/* Entry i of the expected tensors: global ones first, then 16 per layer. */
static const name_map *entry(size_t i, int swapped, char *gname, char *hname, size_t n) {
    if (i < N_GLOBALS) {
        snprintf(gname, n, "%s", GLOBALS[i].gguf);
        snprintf(hname, n, "%s", GLOBALS[i].hf);
        return &GLOBALS[i];
    }
    size_t layer = (i - N_GLOBALS) / N_LAYER;
    const name_map *m = &LAYER[(i - N_GLOBALS) % N_LAYER];
    if (swapped && strncmp(m->gguf, "ffn_", 4) == 0)   /* "ffn_up.weight" <-> "ffn_down.weight", same suffix */
        snprintf(gname, n, "v.blk.%zu.%s%s", layer, strncmp(m->gguf, "ffn_up", 6) == 0 ? "ffn_down" : "ffn_up",
                 strchr(m->gguf, '.'));
    else
        snprintf(gname, n, "v.blk.%zu.%s", layer, m->gguf);
    snprintf(hname, n, VT "encoder.layers.%zu.%s", layer, m->hf);
    return m;
}

/* Legacy files (gemma3_convert_encoder_to_gguf.py) named fc1 ffn_down; clip.cpp detects
 * them by ffn_down's ne[0] == n_embd (the fc1 shape [ffn, hidden]). */
static int ffn_swapped(const gm_gguf *g, const gm_vision_config *c) {
    const gm_gguf_tensor *t = gm_gguf_find_tensor(g, "v.blk.0.ffn_down.weight");
    return t && c->ffn != c->hidden && t->n_dims == 2 && t->ne[0] == c->hidden && t->ne[1] == c->ffn;
}

static gemma_status check_tensor(const gm_gguf *g, const gm_gguf_tensor *t, const char *gname, const char *hname,
                                 const gm_vision_config *c, int kind, gemma_error *err) {
    const char *path = gm_gguf_path(g);
    gemma_status st = gm_gguf_tensor_check(g, t, err);
    if (st) return st;
    int64_t want[4], got[GM_GGUF_MAX_DIMS];
    int nd = expected_shape(kind, c, want);
    for (int k = 0; k < t->n_dims; k++) got[k] = t->ne[t->n_dims - 1 - k];
    int same = t->n_dims == nd;
    for (int k = 0; same && k < nd; k++) same = got[k] == want[k];
    if (!same) {
        char a[96], b[96];
        return gm_fail(err, GEMMA_ERR_FORMAT, "%s: tensor '%s' (%s) has shape %s, expected %s from the clip.vision.* keys",
                       path, gname, hname, gm_shape_str(got, t->n_dims, a, sizeof a), gm_shape_str(want, nd, b, sizeof b));
    }
    if (nd == 1 && t->type != GM_GGML_F32 && t->type != GM_GGML_F16 && t->type != GM_GGML_BF16)
        return gm_fail(err, GEMMA_ERR_UNSUPPORTED, "%s: tensor '%s' (%s): a 1-D tensor in %s; expected F32, F16 or BF16",
                       path, gname, hname, gm_ggml_type_name(t->type));
    return GEMMA_OK;
}

/* ------------------------------------------------------------------ open */

gemma_status gm_mmproj_open(gm_mmproj *out, const char *path, gemma_error *err) {
    memset(out, 0, sizeof *out);
    gm_mapfile mf;
    gemma_status st = gm_mapfile_open(&mf, path, err);
    if (st) return st;
    return gm_mmproj_open_mapped(out, mf, err);
}

gemma_status gm_mmproj_open_mapped(gm_mmproj *out, gm_mapfile mf, gemma_error *err) {
    memset(out, 0, sizeof *out);
    gm_gguf g;
    gemma_status st = gm_gguf_open_mapped(&g, mf, err);
    if (st) return st;
    const gm_gguf_tensor **found = NULL;
    size_t n = 0;
    char gname[128], hname[128];
    if (!(out->path = strdup(gm_gguf_path(&g)))) {
        st = gm_fail(err, GEMMA_ERR_NOMEM, "%s: out of memory", gm_gguf_path(&g));
        goto fail;
    }
    if ((st = check_kind(&g, err)) || (st = read_config(&g, &out->cfg, &out->file_type, err))) goto fail;
    out->layout = (gm_vision_layout){.patch = GM_PATCH_OIHW, .proj_transposed = 0, .soft_emb_norm_add = 0.0f,
                                     .ffn_swapped = ffn_swapped(&g, &out->cfg)};
    n = N_GLOBALS + N_LAYER * (size_t)out->cfg.layers;
    if (!(found = calloc(n, sizeof *found))) {
        st = gm_fail(err, GEMMA_ERR_NOMEM, "%s: out of memory", out->path);
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        const name_map *m = entry(i, out->layout.ffn_swapped, gname, hname, sizeof gname);
        if (!(found[i] = gm_gguf_find_tensor(&g, gname))) {
            st = gm_fail(err, GEMMA_ERR_FORMAT, "%s: tensor '%s' (%s) is missing", out->path, gname, hname);
            goto fail;
        }
        if ((st = check_tensor(&g, found[i], gname, hname, &out->cfg, m->shape, err))) goto fail;
    }
    /* hand the map to the tensor set; g keeps only its (now borrowed) index */
    int file = gm_tensors_add_source(&out->ts, g.mf);
    memset(&g.mf, 0, sizeof g.mf);
    if (file < 0) {
        st = gm_fail(err, GEMMA_ERR_NOMEM, "%s: out of memory", out->path);
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        entry(i, out->layout.ffn_swapped, gname, hname, sizeof gname);
        gm_tensor v = gm_gguf_tensor_view(found[i], hname, file);
        if ((st = gm_tensors_add(&out->ts, &v, err))) goto fail;
    }
    free(found);
    gm_gguf_close(&g);
    return GEMMA_OK;
fail:
    free(found);
    gm_gguf_close(&g);
    gm_mmproj_close(out);
    return st;
}

void gm_mmproj_close(gm_mmproj *m) {
    if (!m) return;
    gm_tensors_free(&m->ts);
    free(m->path);
    memset(m, 0, sizeof *m);
}
