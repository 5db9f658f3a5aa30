/* convert.c - gemma_quantize(): a float Hugging Face Gemma 3 checkpoint to
 * an MLX affine-quantized one that mlx-lm, mlx-vlm and this engine load.
 *
 * What is quantized is what mlx_lm.convert quantizes: every Linear and
 * Embedding weight (in a Gemma 3 checkpoint exactly the 2-D `*.weight`
 * tensors) whose last dimension the group size divides; it becomes
 * `<m>.weight` (U32, packed), `<m>.scales` and `<m>.biases`, bit-identical to
 * mlx.core.quantize (quant/mlx_affine.c; scales and biases are computed in
 * float32 and rounded once to the output dtype, as MLX does).  Before that,
 * float tensors are cast to config.json's torch_dtype (else
 * text_config.dtype) when it names float16, bfloat16 or float32, which is
 * what mlx_lm.convert does without --dtype; otherwise every tensor keeps its
 * own dtype.  Unlike mlx-lm, which drops a multimodal model's vision tower,
 * the tower and projector are kept (quantized like the rest, or in float with
 * skip_vision, which is what mlx-vlm's convert writes), so mlx-vlm still sees
 * the whole model; and a tied multimodal checkpoint in the Hub layout
 * (language_model.model.*) also gets language_model.lm_head.* as a copy of
 * the embedding, which mlx-vlm's Gemma 3 needs and its convert writes.
 *
 * Memory: tensors are read from the mapped shards a few MB at a time, written
 * straight to their final offsets (io/safetensors_write.h), and the pages
 * read are dropped behind us: the resident set stays a few MB over the
 * tensor index however large the checkpoint is.
 *
 * Files: everything is written to temporaries inside out_dir and renamed into
 * place only once the whole conversion succeeded; nothing this call did not
 * create is ever removed. */
#include "core/error.h"
#include "core/strbuf.h"
#include "io/modeldir.h"
#include "io/safetensors_write.h"
#include "quant/mlx_affine.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK_BYTES (4u << 20)                 /* float32 working set of one step */
#define DEFAULT_SHARD_BYTES (UINT64_C(5) << 30) /* mlx-lm's MAX_FILE_SIZE_GB */
#define MAX_SHARDS 999
#define MAX_CONFIG_BYTES (16u << 20)
#define MAX_MADE_DIRS 64
#define LM_HEAD "language_model.lm_head"

/* Files next to the weights that a loader needs, copied when present. */
static const char *const aux_files[] = {
    "tokenizer.json",          "tokenizer_config.json",   "special_tokens_map.json", "tokenizer.model",
    "added_tokens.json",       "generation_config.json",  "chat_template.jinja",     "chat_template.json",
    "preprocessor_config.json", "processor_config.json",
};

typedef struct {
    char *name;
    gm_st_entry e;
    uint64_t bytes;
    int shard;
    size_t slot;               /* index within its shard */
} out_tensor;

typedef struct {
    const gm_tensor *t;
    const char *name;          /* what it is written as: t->name, or the lm_head copy of the embedding */
    gm_dtype dtype;            /* float dtype written (copies, scales, biases); the input's for non-floats */
    int quantize;
    size_t out[3];             /* copy: out[0]; quantized: weight, scales, biases */
} job;

typedef struct {
    char *tmp, *final;         /* temporary inside out_dir, and the name it gets */
    int exists;                /* tmp was created by us */
} out_file;

typedef struct {
    gemma_quantize_options o;
    const char *out_dir;
    gm_modeldir md;
    int md_open;
    job *jobs;
    size_t n_jobs;
    out_tensor *outs;
    size_t n_outs;
    out_tensor **sorted;       /* outs by name */
    int n_shards;
    char (*shard_names)[48];
    gm_st_writer *writers;
    out_file *files;
    size_t n_files;
    char *made_dirs[MAX_MADE_DIRS];
    int n_made_dirs;
    gemma_quantize_progress prog;
    /* working buffers, sized for the largest step */
    float *row, *s32, *b32;
    uint8_t *packed, *sbuf, *bbuf, *cbuf;
} conv;

gemma_quantize_options gemma_quantize_default_options(void) {
    gemma_quantize_options o;
    memset(&o, 0, sizeof o);
    o.bits = 4;
    o.group_size = 64;
    return o;
}

/* ----------------------------------------------------------------- helpers */

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static char *str_printf(const char *a, const char *b, const char *c) {
    size_t n = strlen(a) + strlen(b) + strlen(c) + 1;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s%s%s", a, b, c);
    return s;
}

/* The vision tower and projector, in every Gemma 3 spelling (Hub, mlx-vlm,
 * transformers 4.52+ "model.vision_tower."). */
static int is_vision(const char *name) {
    return strstr(name, "vision_tower.") || strstr(name, "vision_model.") || strstr(name, "multi_modal_projector.");
}

/* torch_dtype, else text_config.dtype, exactly as mlx_lm.convert picks the
 * dtype without --dtype; GM_DT_COUNT = keep each tensor's own. */
static gm_dtype config_dtype(const gm_json *root) {
    const gm_json *d = gm_json_get(root, "torch_dtype");
    if (!d || gm_json_is(d, GM_JSON_NULL)) {
        const gm_json *tc = gm_json_get(root, "text_config");
        d = gm_json_is(tc, GM_JSON_OBJECT) && gm_json_count(tc) ? gm_json_get(tc, "dtype") : NULL;
    }
    const char *s = gm_json_string(d);
    if (!s) return GM_DT_COUNT;
    if (!strcmp(s, "float32")) return GM_DT_F32;
    if (!strcmp(s, "bfloat16")) return GM_DT_BF16;
    if (!strcmp(s, "float16")) return GM_DT_F16;
    return GM_DT_COUNT;
}

/* n elements of dtype `from` at src -> float32, rounded through `to` when `to` is narrower (mlx's astype). */
static void load_floats(const uint8_t *src, gm_dtype from, gm_dtype to, size_t n, float *out) {
    uint16_t h;
    switch (from) {
    case GM_DT_F32: memcpy(out, src, n * 4); break;
    case GM_DT_BF16:
        for (size_t i = 0; i < n; i++) memcpy(&h, src + 2 * i, 2), out[i] = gm_bf16_to_f32(h);
        break;
    default:
        for (size_t i = 0; i < n; i++) memcpy(&h, src + 2 * i, 2), out[i] = gm_f16_to_f32(h);
        break;
    }
    if (to == GM_DT_BF16 && from != GM_DT_BF16)
        for (size_t i = 0; i < n; i++) out[i] = gm_bf16_round(out[i]);
    else if (to == GM_DT_F16 && from != GM_DT_F16)
        for (size_t i = 0; i < n; i++) out[i] = gm_f16_to_f32(gm_f32_to_f16(out[i]));
}

static void store_floats(const float *x, size_t n, gm_dtype to, uint8_t *dst) {
    uint16_t h;
    switch (to) {
    case GM_DT_F32: memcpy(dst, x, n * 4); break;
    case GM_DT_BF16:
        for (size_t i = 0; i < n; i++) h = gm_f32_to_bf16(x[i]), memcpy(dst + 2 * i, &h, 2);
        break;
    default:
        for (size_t i = 0; i < n; i++) h = gm_f32_to_f16(x[i]), memcpy(dst + 2 * i, &h, 2);
        break;
    }
}

static const gm_mapfile *map_of(const conv *c, const gm_tensor *t) {
    return t->file >= 0 && t->file < c->md.tensors.n_files ? &c->md.tensors.files[t->file] : NULL;
}

static void report(conv *c, const char *tensor) {
    c->prog.tensor = tensor;
    if (c->o.progress) c->o.progress(&c->prog, c->o.progress_user);
}

/* ---------------------------------------------------------------- planning */

static int compare_tensors(const void *a, const void *b) {
    return strcmp((*(const gm_tensor *const *)a)->name, (*(const gm_tensor *const *)b)->name);
}

static int compare_outs(const void *a, const void *b) {
    return strcmp((*(out_tensor *const *)a)->name, (*(out_tensor *const *)b)->name);
}

static gemma_status add_out(conv *c, const char *base, const char *suffix, gm_dtype dt, int ndim, const int64_t *shape,
                            size_t *idx, gemma_error *err) {
    out_tensor *o = &c->outs[c->n_outs];
    memset(o, 0, sizeof *o);
    if (!(o->name = str_printf(base, suffix, "")))
        return gm_fail(err, GEMMA_ERR_NOMEM, "%s: out of memory", c->md.dir);
    o->e.name = o->name;
    o->e.dtype = dt;
    o->e.ndim = ndim;
    memcpy(o->e.shape, shape, sizeof(int64_t) * (size_t)ndim);
    o->bytes = gm_st_entry_bytes(&o->e);
    *idx = c->n_outs++;
    return GEMMA_OK;
}

static gemma_status plan(conv *c, gemma_error *err) {
    gm_tensor_set *ts = &c->md.tensors;
    const gm_json *root = gm_json_root(c->md.cfg.doc);
    const char *cfg_path = c->md.cfg.path;
    const gm_json *tc = gm_json_get(root, "text_config");
    static const char *const qkeys[] = {"quantization", "quantization_config"};
    for (int k = 0; k < 2; k++)
        if (gm_json_get(root, qkeys[k]) || gm_json_get(tc, qkeys[k]))
            return gm_fail(err, GEMMA_ERR_ARG,
                           "%s: field %s%s is present: the checkpoint is already quantized (quantize needs a float "
                           "checkpoint)",
                           cfg_path, gm_json_get(root, qkeys[k]) ? "" : "text_config.", qkeys[k]);
    gm_dtype target = config_dtype(root);
    int bits = c->o.bits, gs = c->o.group_size;

    const gm_tensor **src = malloc((ts->n_tensors ? ts->n_tensors : 1) * sizeof *src);
    c->jobs = calloc(ts->n_tensors + 1, sizeof *c->jobs);
    c->outs = calloc(3 * ts->n_tensors + 3, sizeof *c->outs);
    c->sorted = calloc(3 * ts->n_tensors + 3, sizeof *c->sorted);
    if (!src || !c->jobs || !c->outs || !c->sorted) {
        free(src);
        return gm_fail(err, GEMMA_ERR_NOMEM, "%s: out of memory", c->md.dir);
    }
    for (size_t i = 0; i < ts->n_tensors; i++) src[i] = &ts->tensors[i];
    qsort(src, ts->n_tensors, sizeof *src, compare_tensors);
    /* mlx-vlm's Gemma 3 always has a separate lm_head and fills a missing one
     * with the embedding's (packed) tensors when loading, which only works if
     * the checkpoint carries language_model.lm_head.* itself: its convert
     * writes a copy of the embedding there, and so do we. */
    const gm_tensor *tied = NULL;
    const char *model_type = gm_json_string(gm_json_get(root, "model_type"));
    if (model_type && !strcmp(model_type, "gemma3") && !gm_tensors_find(ts, LM_HEAD ".weight"))
        tied = gm_tensors_find(ts, "language_model.model.embed_tokens.weight");

    gemma_status st = GEMMA_OK;
    char sb[96];
    for (size_t i = 0; i < ts->n_tensors + (tied != NULL) && !st; i++) {
        const gm_tensor *t = i < ts->n_tensors ? src[i] : tied;
        const char *file = gm_tensors_file_of(ts, t);
        job *j = &c->jobs[c->n_jobs++];
        j->t = t;
        j->name = i < ts->n_tensors ? t->name : LM_HEAD ".weight";
        if (t->ggml_type >= 0) {
            st = gm_fail(err, GEMMA_ERR_UNSUPPORTED, "%s: tensor '%s' is GGUF-quantized; quantize converts float safetensors",
                         file, t->name);
            break;
        }
        if (t->dtype == GM_DT_UNKNOWN) {
            st = gm_fail(err, GEMMA_ERR_UNSUPPORTED, "%s: tensor '%s' has dtype %s, which quantize cannot write", file,
                         t->name, t->dtype_name);
            break;
        }
        int is_float = gm_dtype_is_float(t->dtype);
        if (!is_float && ends_with(t->name, ".weight") && t->ndim == 2) {
            st = gm_fail(err, GEMMA_ERR_ARG,
                         "%s: tensor '%s' is %s %s: the checkpoint is already quantized (quantize needs float weights)",
                         file, t->name, t->dtype_name, gm_shape_str(t->shape, t->ndim, sb, sizeof sb));
            break;
        }
        j->dtype = is_float && target != GM_DT_COUNT ? target : t->dtype;
        j->quantize = is_float && t->ndim == 2 && ends_with(j->name, ".weight") && t->shape[0] > 0 && t->shape[1] > 0 &&
                      t->shape[1] % gs == 0 && !(c->o.skip_vision && is_vision(j->name));
        if (j->quantize && (t->shape[0] > INT32_MAX || t->shape[1] > INT32_MAX / 8)) {
            st = gm_fail(err, GEMMA_ERR_UNSUPPORTED, "%s: tensor '%s' %s is too large to quantize", file, t->name,
                         gm_shape_str(t->shape, t->ndim, sb, sizeof sb));
            break;
        }
        if (!j->quantize) {
            st = add_out(c, j->name, "", j->dtype, t->ndim, t->shape, &j->out[0], err);
            continue;
        }
        size_t n = strlen(j->name) - strlen(".weight");
        char *base = malloc(n + 1);
        if (!base) {
            st = gm_fail(err, GEMMA_ERR_NOMEM, "%s: out of memory", c->md.dir);
            break;
        }
        memcpy(base, j->name, n);
        base[n] = 0;
        int64_t wshape[2] = {t->shape[0], t->shape[1] * bits / 32}, sshape[2] = {t->shape[0], t->shape[1] / gs};
        if (!(st = add_out(c, base, ".weight", GM_DT_U32, 2, wshape, &j->out[0], err)) &&
            !(st = add_out(c, base, ".scales", j->dtype, 2, sshape, &j->out[1], err)))
            st = add_out(c, base, ".biases", j->dtype, 2, sshape, &j->out[2], err);
        free(base);
    }
    free(src);
    if (st) return st;

    if (!c->n_jobs) return gm_fail(err, GEMMA_ERR_FORMAT, "%s: the checkpoint holds no tensors", c->md.dir);
    for (size_t i = 0; i < c->n_outs; i++) c->sorted[i] = &c->outs[i];
    qsort(c->sorted, c->n_outs, sizeof *c->sorted, compare_outs);
    for (size_t i = 1; i < c->n_outs; i++)
        if (!strcmp(c->sorted[i]->name, c->sorted[i - 1]->name))
            return gm_fail(err, GEMMA_ERR_ARG,
                           "%s: tensor '%s' would be written twice: the checkpoint already holds it next to the "
                           "weight it would be made from (already quantized?)",
                           c->md.dir, c->sorted[i]->name);

    /* shards, like mlx-lm's make_shards: a new file when the next tensor would pass the limit */
    uint64_t limit = c->o.max_shard_bytes ? c->o.max_shard_bytes : DEFAULT_SHARD_BYTES, cur = 0;
    int shard = -1;
    size_t slot = 0;
    for (size_t i = 0; i < c->n_outs; i++) {
        out_tensor *o = c->sorted[i];
        if (shard < 0 || (slot && cur + o->bytes > limit)) {
            shard++;
            cur = 0;
            slot = 0;
        }
        o->shard = shard;
        o->slot = slot++;
        cur += o->bytes;
    }
    c->n_shards = shard + 1;
    if (c->n_shards > MAX_SHARDS)
        return gm_fail(err, GEMMA_ERR_ARG, "%s: the output would need %d shards of at most %" PRIu64
                       " bytes (limit %d); use a larger shard size", c->out_dir, c->n_shards, limit, MAX_SHARDS);
    c->shard_names = calloc((size_t)(c->n_shards ? c->n_shards : 1), sizeof *c->shard_names);
    if (!c->shard_names) return gm_fail(err, GEMMA_ERR_NOMEM, "%s: out of memory", c->md.dir);
    for (int s = 0; s < c->n_shards; s++) {
        if (c->n_shards == 1)
            snprintf(c->shard_names[s], sizeof c->shard_names[s], "model.safetensors");
        else
            snprintf(c->shard_names[s], sizeof c->shard_names[s], "model-%05d-of-%05d.safetensors", s + 1,
                     c->n_shards);
    }
    return GEMMA_OK;
}

/* --------------------------------------------------------- the output dir */

static int is_shard_name(const conv *c, const char *name) {
    for (int s = 0; s < c->n_shards; s++)
        if (!strcmp(name, c->shard_names[s])) return 1;
    return 0;
}

/* A name this call may write into out_dir. */
static int is_ours(const conv *c, const char *name) {
    if (is_shard_name(c, name) || !strcmp(name, "config.json") || !strcmp(name, "model.safetensors.index.json"))
        return 1;
    for (size_t i = 0; i < sizeof aux_files / sizeof aux_files[0]; i++)
        if (!strcmp(name, aux_files[i])) return 1;
    return 0;
}

static gemma_status make_dirs(conv *c, gemma_error *err) {
    char *p = strdup(c->out_dir);
    if (!p) return gm_fail(err, GEMMA_ERR_NOMEM, "%s: out of memory", c->out_dir);
    gemma_status st = GEMMA_OK;
    for (char *q = p + 1;; q++) {
        if (*q != '/' && *q) continue;
        char keep = *q;
        *q = 0;
        struct stat sd;
        if (stat(p, &sd) != 0) {
            if (mkdir(p, 0755) != 0 && errno != EEXIST) {
                st = gm_fail(err, GEMMA_ERR_IO, "%s: cannot create directory: %s", p, strerror(errno));
            } else if (c->n_made_dirs < MAX_MADE_DIRS && !(c->made_dirs[c->n_made_dirs] = strdup(p))) {
                st = gm_fail(err, GEMMA_ERR_NOMEM, "%s: out of memory", p);
            } else if (c->n_made_dirs < MAX_MADE_DIRS) {
                c->n_made_dirs++;
            }
        } else if (!S_ISDIR(sd.st_mode)) {
            st = gm_fail(err, GEMMA_ERR_ARG, "%s: exists and is not a directory", p);
        }
        *q = keep;
        if (st || !keep) break;
    }
    free(p);
    return st;
}

static gemma_status check_out_dir(conv *c, gemma_error *err) {
    struct stat so, si;
    if (stat(c->md.dir, &si) != 0) return gm_fail(err, GEMMA_ERR_IO, "%s: %s", c->md.dir, strerror(errno));
    if (stat(c->out_dir, &so) != 0) {
        if (errno != ENOENT) return gm_fail(err, GEMMA_ERR_IO, "%s: %s", c->out_dir, strerror(errno));
        return make_dirs(c, err);
    }
    if (!S_ISDIR(so.st_mode)) return gm_fail(err, GEMMA_ERR_ARG, "%s: exists and is not a directory", c->out_dir);
    if (so.st_dev == si.st_dev && so.st_ino == si.st_ino)
        return gm_fail(err, GEMMA_ERR_ARG, "%s: is the input model directory; write the quantized model elsewhere",
                       c->out_dir);
    DIR *d = opendir(c->out_dir);
    if (!d) return gm_fail(err, GEMMA_ERR_IO, "%s: cannot read directory: %s", c->out_dir, strerror(errno));
    gemma_status st = GEMMA_OK;
    struct dirent *de;
    while (!st && (de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        if (!c->o.force)
            st = gm_fail(err, GEMMA_ERR_ARG,
                         "%s: directory exists and is not empty (--force writes into it, replacing only the files "
                         "quantize writes)",
                         c->out_dir);
        else if (ends_with(de->d_name, ".safetensors") && !is_shard_name(c, de->d_name))
            st = gm_fail(err, GEMMA_ERR_ARG,
                         "%s/%s: would stay next to the new shards and be loaded with them; move it away first",
                         c->out_dir, de->d_name);
        else if (is_ours(c, de->d_name)) {   /* replaced by a rename at the end: must be a file */
            char *p = str_printf(c->out_dir, "/", de->d_name);
            struct stat se;
            if (!p) st = gm_fail(err, GEMMA_ERR_NOMEM, "%s: out of memory", c->out_dir);
            else if (lstat(p, &se) == 0 && S_ISDIR(se.st_mode))
                st = gm_fail(err, GEMMA_ERR_ARG, "%s: is a directory; quantize would replace it with a file", p);
            free(p);
        }
    }
    closedir(d);
    return st;
}

/* Register an output file; its temporary is created by the caller. */
static gemma_status add_file(conv *c, const char *name, out_file **out, gemma_error *err) {
    out_file *nf = realloc(c->files, (c->n_files + 1) * sizeof *nf);
    if (!nf) return gm_fail(err, GEMMA_ERR_NOMEM, "%s: out of memory", c->out_dir);
    c->files = nf;
    out_file *f = &c->files[c->n_files];
    memset(f, 0, sizeof *f);
    char tmpname[300];
    snprintf(tmpname, sizeof tmpname, "/.%s.tmp.%ld", name, (long)getpid());
    f->final = str_printf(c->out_dir, "/", name);
    f->tmp = str_printf(c->out_dir, tmpname, "");
    c->n_files++;
    if (!f->final || !f->tmp) return gm_fail(err, GEMMA_ERR_NOMEM, "%s: out of memory", c->out_dir);
    *out = f;
    return GEMMA_OK;
}

static gemma_status write_small_file(conv *c, const char *name, const char *data, size_t len, gemma_error *err) {
    out_file *f;
    gemma_status st = add_file(c, name, &f, err);
    if (st) return st;
    int fd = open(f->tmp, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0) return gm_fail(err, GEMMA_ERR_IO, "%s: cannot create: %s", f->tmp, strerror(errno));
    f->exists = 1;
    size_t done = 0;
    while (done < len) {
        ssize_t k = write(fd, data + done, len - done);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            st = gm_fail(err, GEMMA_ERR_IO, "%s: write failed: %s", f->tmp, k < 0 ? strerror(errno) : "no progress");
            break;
        }
        done += (size_t)k;
    }
    if (close(fd) != 0 && !st) st = gm_fail(err, GEMMA_ERR_IO, "%s: close failed: %s", f->tmp, strerror(errno));
    return st;
}

static gemma_status copy_file(conv *c, const char *name, gemma_error *err) {
    char *from = str_printf(c->md.dir, "/", name);
    if (!from) return gm_fail(err, GEMMA_ERR_NOMEM, "%s: out of memory", c->md.dir);
    struct stat sf;
    if (stat(from, &sf) != 0 || !S_ISREG(sf.st_mode)) {
        free(from);
        return GEMMA_OK;   /* not there: nothing to copy */
    }
    out_file *f;
    gemma_status st = add_file(c, name, &f, err);
    int in = -1, out = -1;
    if (!st && (in = open(from, O_RDONLY)) < 0) st = gm_fail(err, GEMMA_ERR_IO, "%s: cannot open: %s", from, strerror(errno));
    if (!st && (out = open(f->tmp, O_WRONLY | O_CREAT | O_EXCL, 0644)) < 0)
        st = gm_fail(err, GEMMA_ERR_IO, "%s: cannot create: %s", f->tmp, strerror(errno));
    if (!st) f->exists = 1;
    while (!st) {
        ssize_t k = read(in, c->cbuf, CHUNK_BYTES);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) st = gm_fail(err, GEMMA_ERR_IO, "%s: read failed: %s", from, strerror(errno));
        if (k <= 0) break;
        for (ssize_t done = 0; done < k && !st;) {
            ssize_t w = write(out, c->cbuf + done, (size_t)(k - done));
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) st = gm_fail(err, GEMMA_ERR_IO, "%s: write failed: %s", f->tmp, w < 0 ? strerror(errno) : "no progress");
            else done += w;
        }
    }
    if (in >= 0) close(in);
    if (out >= 0 && close(out) != 0 && !st) st = gm_fail(err, GEMMA_ERR_IO, "%s: close failed: %s", f->tmp, strerror(errno));
    free(from);
    return st;
}

/* ------------------------------------------------------------ the tensors */

static gemma_status run_quantized(conv *c, const job *j, gemma_error *err) {
    const gm_tensor *t = j->t;
    int rows = (int)t->shape[0], cols = (int)t->shape[1], bits = c->o.bits, gs = c->o.group_size;
    size_t row_bytes = gm_mlx_packed_row_bytes(cols, bits), groups = (size_t)(cols / gs);
    size_t esz_in = (size_t)gm_dtype_size(t->dtype), esz = (size_t)gm_dtype_size(j->dtype);
    size_t step = CHUNK_BYTES / ((size_t)cols * 4);
    if (step < 1) step = 1;
    const out_tensor *ow = &c->outs[j->out[0]], *os = &c->outs[j->out[1]], *ob = &c->outs[j->out[2]];
    gemma_status st = GEMMA_OK;
    for (size_t r0 = 0; r0 < (size_t)rows && !st; r0 += step) {
        size_t n = (size_t)rows - r0 < step ? (size_t)rows - r0 : step;
        for (size_t r = 0; r < n; r++) {
            load_floats(t->data + (r0 + r) * (size_t)cols * esz_in, t->dtype, j->dtype, (size_t)cols, c->row);
            for (int k = 0; k < cols; k++)
                if (!isfinite(c->row[k]))   /* MLX's result is undefined there; the checkpoint is broken */
                    return gm_fail(err, GEMMA_ERR_FORMAT, "%s: tensor '%s': element [%zu, %d] is %g, which cannot be quantized",
                                   gm_tensors_file_of(&c->md.tensors, t), t->name, r0 + r, k, (double)c->row[k]);
            gm_mlx_quantize_row(c->row, cols, bits, gs, c->packed + r * row_bytes, c->s32, c->b32);
            store_floats(c->s32, groups, j->dtype, c->sbuf + r * groups * esz);
            store_floats(c->b32, groups, j->dtype, c->bbuf + r * groups * esz);
        }
        if (!(st = gm_st_write(&c->writers[ow->shard], ow->slot, r0 * row_bytes, c->packed, n * row_bytes, err)) &&
            !(st = gm_st_write(&c->writers[os->shard], os->slot, r0 * groups * esz, c->sbuf, n * groups * esz, err)))
            st = gm_st_write(&c->writers[ob->shard], ob->slot, r0 * groups * esz, c->bbuf, n * groups * esz, err);
        gm_mapfile_drop(map_of(c, t), t->data, (r0 + n) * (size_t)cols * esz_in);
    }
    return st;
}

static gemma_status run_copy(conv *c, const job *j, gemma_error *err) {
    const gm_tensor *t = j->t;
    const out_tensor *o = &c->outs[j->out[0]];
    gemma_status st = GEMMA_OK;
    if (j->dtype == t->dtype) {   /* bytes as they are */
        for (size_t at = 0; at < t->nbytes && !st; at += CHUNK_BYTES) {
            size_t n = t->nbytes - at < CHUNK_BYTES ? t->nbytes - at : CHUNK_BYTES;
            st = gm_st_write(&c->writers[o->shard], o->slot, at, t->data + at, n, err);
            gm_mapfile_drop(map_of(c, t), t->data, at + n);
        }
        return st;
    }
    size_t esz_in = (size_t)gm_dtype_size(t->dtype), esz = (size_t)gm_dtype_size(j->dtype);
    size_t numel = t->nbytes / esz_in, step = CHUNK_BYTES / 4;
    for (size_t i0 = 0; i0 < numel && !st; i0 += step) {
        size_t n = numel - i0 < step ? numel - i0 : step;
        load_floats(t->data + i0 * esz_in, t->dtype, j->dtype, n, c->row);
        store_floats(c->row, n, j->dtype, c->cbuf);
        st = gm_st_write(&c->writers[o->shard], o->slot, i0 * esz, c->cbuf, n * esz, err);
        gm_mapfile_drop(map_of(c, t), t->data, (i0 + n) * esz_in);
    }
    return st;
}

static gemma_status alloc_buffers(conv *c, gemma_error *err) {
    size_t max_cols = CHUNK_BYTES / 4, max_groups = 1, max_packed = 1, max_sb = 1;
    for (size_t i = 0; i < c->n_jobs; i++) {
        const job *j = &c->jobs[i];
        if (!j->quantize) continue;
        size_t cols = (size_t)j->t->shape[1], step = CHUNK_BYTES / (cols * 4);
        if (step < 1) step = 1;
        if (step > (size_t)j->t->shape[0]) step = (size_t)j->t->shape[0];
        size_t groups = cols / (size_t)c->o.group_size;
        if (cols > max_cols) max_cols = cols;
        if (groups > max_groups) max_groups = groups;
        if (step * gm_mlx_packed_row_bytes((int)cols, c->o.bits) > max_packed)
            max_packed = step * gm_mlx_packed_row_bytes((int)cols, c->o.bits);
        if (step * groups * 4 > max_sb) max_sb = step * groups * 4;
    }
    c->row = malloc(max_cols * sizeof *c->row);
    c->s32 = malloc(max_groups * sizeof *c->s32);
    c->b32 = malloc(max_groups * sizeof *c->b32);
    c->packed = malloc(max_packed);
    c->sbuf = malloc(max_sb);
    c->bbuf = malloc(max_sb);
    c->cbuf = malloc(CHUNK_BYTES);
    if (!c->row || !c->s32 || !c->b32 || !c->packed || !c->sbuf || !c->bbuf || !c->cbuf)
        return gm_fail(err, GEMMA_ERR_NOMEM, "%s: out of memory for the working buffers", c->md.dir);
    return GEMMA_OK;
}

static gemma_status write_shards(conv *c, gemma_error *err) {
    gemma_status st = GEMMA_OK;
    c->writers = calloc((size_t)c->n_shards, sizeof *c->writers);
    gm_st_entry *entries = calloc(c->n_outs ? c->n_outs : 1, sizeof *entries);
    if (!c->writers || !entries) {
        free(entries);
        return gm_fail(err, GEMMA_ERR_NOMEM, "%s: out of memory", c->out_dir);
    }
    for (int s = 0; s < c->n_shards; s++) c->writers[s].fd = -1;
    size_t first = 0;
    for (int s = 0; s < c->n_shards && !st; s++) {
        size_t n = 0;
        while (first + n < c->n_outs && c->sorted[first + n]->shard == s) {
            entries[n] = c->sorted[first + n]->e;
            n++;
        }
        out_file *f;
        if (!(st = add_file(c, c->shard_names[s], &f, err)) && !(st = gm_st_create(&c->writers[s], f->tmp, entries, n, err)))
            f->exists = 1;
        first += n;
    }
    free(entries);
    for (size_t i = 0; i < c->n_jobs && !st; i++) {
        const job *j = &c->jobs[i];
        st = j->quantize ? run_quantized(c, j, err) : run_copy(c, j, err);
        if (st) break;
        c->prog.done++;
        c->prog.quantized += (size_t)j->quantize;
        c->prog.bytes_in += j->t->nbytes;
        for (int k = 0; k < (j->quantize ? 3 : 1); k++) c->prog.bytes_out += c->outs[j->out[k]].bytes;
        report(c, j->name);
    }
    for (int s = 0; s < c->n_shards; s++) {
        if (!st) st = gm_st_finish(&c->writers[s], err);
        else gm_st_abort(&c->writers[s]);
    }
    return st;
}

/* ------------------------------------------------------ index and config */

static gemma_status write_index(conv *c, gemma_error *err) {
    uint64_t total = 0, params = 0;
    for (size_t i = 0; i < c->n_outs; i++) total += c->outs[i].bytes;
    for (size_t i = 0; i < c->n_jobs; i++) params += (uint64_t)gm_tensor_numel(c->jobs[i].t);
    gm_strbuf b;
    gm_strbuf_init(&b);
    char num[128];
    snprintf(num, sizeof num, "{\n    \"metadata\": {\n        \"total_size\": %" PRIu64 ",\n        \"total_parameters\": %" PRIu64
             "\n    },\n    \"weight_map\": {", total, params);
    gm_strbuf_puts(&b, num);
    for (size_t i = 0; i < c->n_outs; i++) {
        const out_tensor *o = c->sorted[i];
        gm_strbuf_puts(&b, i ? ",\n        " : "\n        ");
        gm_json_append_string(&b, o->name);
        gm_strbuf_puts(&b, ": ");
        gm_json_append_string(&b, c->shard_names[o->shard]);
    }
    gm_strbuf_puts(&b, "\n    }\n}");
    gemma_status st = b.ok ? write_small_file(c, "model.safetensors.index.json", b.data, b.len, err)
                           : gm_fail(err, GEMMA_ERR_NOMEM, "%s: out of memory", c->out_dir);
    gm_strbuf_free(&b);
    return st;
}

/* The input's config.json byte for byte, plus "quantization" and (as mlx-lm
 * writes both) an identical "quantization_config", before the closing brace
 * and in the file's own indentation. */
static gemma_status write_config(conv *c, gemma_error *err) {
    char *text;
    size_t len;
    gemma_status st = gm_read_file(c->md.cfg.path, MAX_CONFIG_BYTES, &text, &len, err);
    if (st) return st;
    size_t close_at = len;
    while (close_at > 0 && text[close_at - 1] != '}') close_at--;
    if (!close_at) {
        free(text);
        return gm_fail(err, GEMMA_ERR_FORMAT, "%s: no closing brace", c->md.cfg.path);
    }
    close_at--;
    size_t last = close_at;   /* end of the last member */
    while (last > 0 && strchr(" \t\r\n", text[last - 1])) last--;
    int empty = last > 0 && text[last - 1] == '{';
    /* indentation of the first member ("{\n  \"x\"" -> 2); 0 = one line */
    const char *open = memchr(text, '{', len);
    int indent = 0;
    if (open && open[1] == '\n')
        for (const char *p = open + 2; p < text + len && *p == ' '; p++) indent++;
    if (open && open[1] == '\r' && open[2] == '\n')
        for (const char *p = open + 3; p < text + len && *p == ' '; p++) indent++;
    char q[256], pad1[16], pad2[24];
    int i1 = indent < 8 ? indent : 8;
    memset(pad1, ' ', (size_t)i1);
    pad1[i1] = 0;
    memset(pad2, ' ', (size_t)(2 * i1));
    pad2[2 * i1] = 0;
    const char *nl = indent ? "\n" : "";
    if (indent)
        snprintf(q, sizeof q, "{\n%s\"group_size\": %d,\n%s\"bits\": %d,\n%s\"mode\": \"affine\"\n%s}", pad2,
                 c->o.group_size, pad2, c->o.bits, pad2, pad1);
    else
        snprintf(q, sizeof q, "{\"group_size\": %d, \"bits\": %d, \"mode\": \"affine\"}", c->o.group_size, c->o.bits);
    gm_strbuf b;
    gm_strbuf_init(&b);
    gm_strbuf_append(&b, text, last);
    const char *keys[2] = {"quantization", "quantization_config"};
    for (int k = 0; k < 2; k++) {
        gm_strbuf_puts(&b, (empty && k == 0) ? "" : ",");
        gm_strbuf_puts(&b, indent ? nl : " ");
        gm_strbuf_puts(&b, pad1);
        gm_strbuf_puts(&b, "\"");
        gm_strbuf_puts(&b, keys[k]);
        gm_strbuf_puts(&b, "\": ");
        gm_strbuf_puts(&b, q);
    }
    gm_strbuf_puts(&b, nl);
    gm_strbuf_append(&b, text + close_at, len - close_at);
    free(text);
    st = b.ok ? write_small_file(c, "config.json", b.data, b.len, err)
              : gm_fail(err, GEMMA_ERR_NOMEM, "%s: out of memory", c->out_dir);
    gm_strbuf_free(&b);
    return st;
}

/* ------------------------------------------------------------------ main */

static void conv_free(conv *c, int failed) {
    for (size_t i = 0; i < c->n_files; i++) {
        if (failed && c->files[i].exists && c->files[i].tmp) unlink(c->files[i].tmp);
        free(c->files[i].tmp);
        free(c->files[i].final);
    }
    free(c->files);
    for (int i = c->n_made_dirs - 1; i >= 0; i--) {
        if (failed) rmdir(c->made_dirs[i]);   /* only succeeds while empty: never removes anything else */
        free(c->made_dirs[i]);
    }
    for (size_t i = 0; i < c->n_outs; i++) free(c->outs[i].name);
    free(c->outs);
    free(c->sorted);
    free(c->jobs);
    free(c->shard_names);
    free(c->writers);
    free(c->row);
    free(c->s32);
    free(c->b32);
    free(c->packed);
    free(c->sbuf);
    free(c->bbuf);
    free(c->cbuf);
    if (c->md_open) gm_modeldir_close(&c->md);
}

gemma_status gemma_quantize(const char *in_dir, const char *out_dir, const gemma_quantize_options *opts,
                            gemma_error *err) {
    gm_ok(err);
    conv c;
    memset(&c, 0, sizeof c);
    c.o = opts ? *opts : gemma_quantize_default_options();
    c.out_dir = out_dir;
    int b = c.o.bits, g = c.o.group_size;
    if (b != 2 && b != 3 && b != 4 && b != 5 && b != 6 && b != 8)
        return gm_fail(err, GEMMA_ERR_ARG, "quantize: bits %d is not supported (2, 3, 4, 5, 6, 8)", b);
    if (g != 32 && g != 64 && g != 128)
        return gm_fail(err, GEMMA_ERR_ARG, "quantize: group size %d is not supported (32, 64, 128)", g);
    if (!in_dir || !*in_dir) return gm_fail(err, GEMMA_ERR_ARG, "quantize: no input model directory given");
    if (!out_dir || !*out_dir) return gm_fail(err, GEMMA_ERR_ARG, "quantize: no output directory given");
    if (strlen(out_dir) > 900) return gm_fail(err, GEMMA_ERR_ARG, "%s: path too long", out_dir);

    char cfg[1100];
    struct stat sc;
    snprintf(cfg, sizeof cfg, "%s/config.json", in_dir);
    if (stat(in_dir, &sc) == 0 && S_ISDIR(sc.st_mode) && stat(cfg, &sc) != 0)
        return gm_fail(err, GEMMA_ERR_IO, "%s: missing (quantize converts a Hugging Face safetensors folder)", cfg);
    gemma_status st = gm_modeldir_open(&c.md, in_dir, err);
    if (st) return st;
    c.md_open = 1;
    if ((st = plan(&c, err)) || (st = check_out_dir(&c, err)) || (st = alloc_buffers(&c, err))) goto done;
    c.prog.total = c.n_jobs;
    c.prog.n_shards = c.n_shards;
    if ((st = write_shards(&c, err)) || (st = write_index(&c, err)) || (st = write_config(&c, err))) goto done;
    for (size_t i = 0; i < sizeof aux_files / sizeof aux_files[0] && !st; i++) st = copy_file(&c, aux_files[i], err);
    if (st) goto done;
    /* everything is complete: move it into place (shards, index, config, the rest) */
    for (size_t i = 0; i < c.n_files; i++) {
        if (rename(c.files[i].tmp, c.files[i].final) != 0) {
            st = gm_fail(err, GEMMA_ERR_IO, "%s: cannot rename to %s: %s", c.files[i].tmp, c.files[i].final,
                         strerror(errno));
            goto done;
        }
        c.files[i].exists = 0;
    }
    report(&c, NULL);
done:
    conv_free(&c, st != GEMMA_OK);
    return st;
}
