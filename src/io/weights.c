/* weights.c - see weights.h. */
#include "io/weights.h"
#include "core/error.h"
#include "quant/ggml_blocks.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const gm_tensor *find_suffixed(const gm_modeldir *md, const char *module, const char *suffix) {
    char name[512];
    if ((size_t)snprintf(name, sizeof name, "%s.%s", module, suffix) >= sizeof name) return NULL;
    return gm_tensors_find(&md->tensors, name);
}

int gm_has_module(const gm_modeldir *md, const char *module) { return find_suffixed(md, module, "weight") != NULL; }

static const char *file_of(const gm_modeldir *md, const gm_tensor *t) { return gm_tensors_file_of(&md->tensors, t); }

static gemma_status bind_mlx(const gm_modeldir *md, const char *module, const gm_tensor *w, const gm_tensor *s,
                             int rows, int cols, gm_weight *out, gemma_error *err) {
    char sb[96], sb2[96];
    const gm_tensor *b = find_suffixed(md, module, "biases");
    if (!b)
        return gm_fail(err, GEMMA_ERR_FORMAT, "%s: tensor '%s.scales' exists but '%s.biases' is missing",
                       file_of(md, s), module, module);
    if (w->dtype != GM_DT_U32 || w->ndim != 2 || w->shape[0] != rows)
        return gm_fail(err, GEMMA_ERR_FORMAT, "%s: tensor '%s.weight' is %s %s; a quantized weight must be U32 [%d, *]",
                       file_of(md, w), module, w->dtype_name, gm_shape_str(w->shape, w->ndim, sb, sizeof sb), rows);
    if (!gm_dtype_is_float(s->dtype) || s->dtype != b->dtype || s->ndim != 2 || b->ndim != 2 ||
        s->shape[0] != rows || b->shape[0] != rows || s->shape[1] != b->shape[1] || s->shape[1] <= 0)
        return gm_fail(err, GEMMA_ERR_FORMAT, "%s: tensors '%s.scales' %s %s and '%s.biases' %s %s do not match [%d, groups]",
                       file_of(md, s), module, s->dtype_name, gm_shape_str(s->shape, s->ndim, sb, sizeof sb), module,
                       b->dtype_name, gm_shape_str(b->shape, b->ndim, sb2, sizeof sb2), rows);
    int64_t packed_bits = w->shape[1] * 32;
    int64_t groups = s->shape[1];
    if (packed_bits % cols || cols % groups)
        return gm_fail(err, GEMMA_ERR_FORMAT,
                       "%s: tensor '%s.weight' %s cannot hold %d columns in %lld groups", file_of(md, w), module,
                       gm_shape_str(w->shape, w->ndim, sb, sizeof sb), cols, (long long)groups);
    int bits = (int)(packed_bits / cols), gs = (int)(cols / groups);
    if ((bits != 2 && bits != 3 && bits != 4 && bits != 5 && bits != 6 && bits != 8) ||
        (gs != 32 && gs != 64 && gs != 128))
        return gm_fail(err, GEMMA_ERR_UNSUPPORTED,
                       "%s: tensor '%s.weight' implies %d bits, group size %d (supported: bits 2-6, 8; groups 32, 64, 128)",
                       file_of(md, w), module, bits, gs);
    gm_quant_spec spec;
    if (gm_config_module_quant(&md->cfg, module, &spec) && spec.bits && (spec.bits != bits || spec.group_size != gs))
        return gm_fail(err, GEMMA_ERR_FORMAT,
                       "%s: quantization for '%s' says bits %d, group_size %d but the tensors hold bits %d, group_size %d",
                       md->cfg.path, module, spec.bits, spec.group_size, bits, gs);
    out->kind = GM_W_MLX;
    out->rows = rows;
    out->cols = cols;
    out->data = w->data;
    out->row_bytes = (size_t)w->shape[1] * 4;
    out->bits = bits;
    out->group_size = gs;
    out->scales = s->data;
    out->biases = b->data;
    out->qdtype = s->dtype;
    return GEMMA_OK;
}

gemma_status gm_bind_matrix(const gm_modeldir *md, const char *module, int rows, int cols, gm_weight *out,
                            gemma_error *err) {
    memset(out, 0, sizeof *out);
    const gm_tensor *w = find_suffixed(md, module, "weight");
    if (!w) return gm_fail(err, GEMMA_ERR_FORMAT, "%s: missing tensor '%s.weight'", gm_modeldir_source(md), module);
    const gm_tensor *s = find_suffixed(md, module, "scales");
    if (s) return bind_mlx(md, module, w, s, rows, cols, out, err);

    char sb[96];
    if (w->ggml_type > 0) {   /* GGUF blocks (F32/F16/BF16 GGUF tensors are plain dtypes) */
        if (w->ndim != 2 || w->shape[0] != rows || w->shape[1] != cols)
            return gm_fail(err, GEMMA_ERR_FORMAT, "%s: tensor '%s.weight' is %s %s, expected [%d, %d]", file_of(md, w),
                           module, w->dtype_name, gm_shape_str(w->shape, w->ndim, sb, sizeof sb), rows, cols);
        if (!gm_ggml_type_supported((uint32_t)w->ggml_type))
            return gm_fail(err, GEMMA_ERR_UNSUPPORTED, "%s: tensor '%s.weight' has GGML type %s (supported: %s)",
                           file_of(md, w), module, w->dtype_name, gm_ggml_supported_list());
        size_t rb = gm_ggml_row_bytes((uint32_t)w->ggml_type, cols);
        if (!rb || rb * (size_t)rows != w->nbytes)
            return gm_fail(err, GEMMA_ERR_FORMAT, "%s: tensor '%s.weight' (%s) rows of %d values do not fit its %zu bytes",
                           file_of(md, w), module, w->dtype_name, cols, w->nbytes);
        out->kind = GM_W_GGML;
        out->rows = rows;
        out->cols = cols;
        out->data = w->data;
        out->row_bytes = rb;
        out->ggml_type = (uint32_t)w->ggml_type;
        return GEMMA_OK;
    }
    if (!gm_dtype_is_float(w->dtype) || w->ndim != 2 || w->shape[0] != rows || w->shape[1] != cols)
        return gm_fail(err, GEMMA_ERR_FORMAT, "%s: tensor '%s.weight' is %s %s, expected F32/F16/BF16 [%d, %d]",
                       file_of(md, w), module, w->dtype_name, gm_shape_str(w->shape, w->ndim, sb, sizeof sb), rows,
                       cols);
    out->kind = w->dtype == GM_DT_F32 ? GM_W_F32 : w->dtype == GM_DT_BF16 ? GM_W_BF16 : GM_W_F16;
    out->rows = rows;
    out->cols = cols;
    out->data = w->data;
    out->row_bytes = (size_t)cols * (size_t)gm_dtype_size(w->dtype);
    return GEMMA_OK;
}

gemma_status gm_bind_vector(const gm_modeldir *md, const char *name, int n, float add, float *out, gemma_error *err) {
    const gm_tensor *t = gm_tensors_find(&md->tensors, name);
    if (!t) return gm_fail(err, GEMMA_ERR_FORMAT, "%s: missing tensor '%s'", gm_modeldir_source(md), name);
    char sb[96];
    if (!gm_dtype_is_float(t->dtype) || t->ndim != 1 || t->shape[0] != n)
        return gm_fail(err, GEMMA_ERR_FORMAT, "%s: tensor '%s' is %s %s, expected F32/F16/BF16 [%d]", file_of(md, t),
                       name, t->dtype_name, gm_shape_str(t->shape, t->ndim, sb, sizeof sb), n);
    for (int i = 0; i < n; i++) out[i] = gm_load_float(t->data, t->dtype, (size_t)i) + add;
    return GEMMA_OK;
}

gemma_status gm_find_text_prefix(const gm_modeldir *md, const char **prefix, gemma_error *err) {
    static const char *const prefixes[] = {"model.", "language_model.model.", "model.language_model."};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        char name[128];
        snprintf(name, sizeof name, "%sembed_tokens.weight", prefixes[i]);
        if (gm_tensors_find(&md->tensors, name)) {
            *prefix = prefixes[i];
            return GEMMA_OK;
        }
    }
    return gm_fail(err, GEMMA_ERR_FORMAT,
                   "%s: missing tensor 'model.embed_tokens.weight' (also tried language_model.model.* and "
                   "model.language_model.*)",
                   gm_modeldir_source(md));
}

/* ============================================================ row reader */

/* The mapped file holding p (and its offset there), or -1. */
static int file_holding(const gm_modeldir *md, const uint8_t *p, size_t n, uint64_t *off) {
    for (int i = 0; i < md->tensors.n_files; i++) {
        const gm_mapfile *f = &md->tensors.files[i];
        if (f->is_mapped && p >= f->data && n <= f->size && (size_t)(p - f->data) <= f->size - n) {
            *off = (uint64_t)(p - f->data);
            return i;
        }
    }
    return -1;
}

void gm_row_reader_open(gm_row_reader *r, const gm_modeldir *md, const gm_weight *w) {
    memset(r, 0, sizeof *r);
    for (int i = 0; i < 3; i++) r->fd[i] = -1;
    r->opened = 1;
    const uint8_t *part[3] = {w->data, NULL, NULL};
    r->len[0] = w->row_bytes;
    if (w->kind == GM_W_MLX) {
        part[1] = w->scales;
        part[2] = w->biases;
        r->len[1] = r->len[2] = (size_t)(w->cols / w->group_size) * (size_t)gm_dtype_size(w->qdtype);
    }
    for (int i = 0; i < 3; i++) {
        if (!part[i]) continue;
        int f = file_holding(md, part[i], r->len[i] * (size_t)w->rows, &r->off[i]);
        if (f < 0 || (r->fd[i] = gm_mapfile_open_fd(&md->tensors.files[f])) < 0) {
            gm_row_reader_close(r);
            return;
        }
        r->row_bytes += r->len[i];
    }
    r->active = 1;
}

void gm_row_reader_close(gm_row_reader *r) {
    if (!r->opened) return;
    for (int i = 0; i < 3; i++)
        if (r->fd[i] >= 0) close(r->fd[i]);
    memset(r, 0, sizeof *r);
}

void gm_row_reader_row(const gm_row_reader *r, const gm_kernels *k, const gm_weight *w, int row, uint8_t *raw,
                       float *out, float *tmp) {
    uint8_t *at[3] = {raw, raw + r->len[0], raw + r->len[0] + r->len[1]};
    int ok = r->active;
    for (int i = 0; ok && i < 3; i++)
        if (r->len[i]) ok = gm_pread_all(r->fd[i], at[i], r->len[i], r->off[i] + (uint64_t)row * r->len[i]);
    if (!ok) {
        gm_weight_row(k, w, row, out, tmp);
        return;
    }
    gm_weight one = *w;
    one.rows = 1;
    one.data = at[0];
    one.scales = at[1];
    one.biases = at[2];
    gm_weight_row(k, &one, 0, out, tmp);
}
