/* modeldir.c - see modeldir.h. */
#include "io/modeldir.h"
#include "core/error.h"
#include "io/gguf_model.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_CONFIG_BYTES (16u << 20)
#define MAX_INDEX_BYTES (64u << 20)
#define MAX_SHARDS 1024

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static gemma_status join(char *out, size_t n, const char *dir, const char *name, gemma_error *err) {
    if ((size_t)snprintf(out, n, "%s/%s", dir, name) >= n)
        return gm_fail(err, GEMMA_ERR_ARG, "%s/%s: path too long", dir, name);
    return GEMMA_OK;
}

/* A shard name from an index must stay inside the model directory. */
static int safe_shard_name(const char *s) {
    if (!*s || strchr(s, '/') || strchr(s, '\\') || strcmp(s, ".") == 0 || strcmp(s, "..") == 0) return 0;
    size_t n = strlen(s);
    return n > 12 && strcmp(s + n - 12, ".safetensors") == 0;
}

static gemma_status load_index(gm_modeldir *md, const char *index_path, gemma_error *err) {
    char *text;
    size_t len;
    gemma_status st = gm_read_file(index_path, MAX_INDEX_BYTES, &text, &len, err);
    if (st) return st;
    char jerr[160];
    gm_json_limits lim = {.max_bytes = MAX_INDEX_BYTES, .max_depth = 16};
    gm_json_doc *doc = gm_json_parse(text, len, &lim, jerr, sizeof jerr);
    free(text);
    if (!doc) return gm_fail(err, GEMMA_ERR_FORMAT, "%s: not valid JSON: %s", index_path, jerr);
    const gm_json *map = gm_json_get(gm_json_root(doc), "weight_map");
    const char **shards = NULL;
    int n_shards = 0;
    if (!gm_json_is(map, GM_JSON_OBJECT)) {
        st = gm_fail(err, GEMMA_ERR_FORMAT, "%s: field weight_map missing or not an object", index_path);
        goto done;
    }
    shards = calloc(MAX_SHARDS, sizeof *shards);
    if (!shards) {
        st = gm_fail(err, GEMMA_ERR_NOMEM, "%s: out of memory", index_path);
        goto done;
    }
    for (size_t i = 0; i < gm_json_count(map); i++) {
        const gm_json *e = gm_json_at(map, i);
        const char *f = gm_json_string(e);
        if (!f || !safe_shard_name(f)) {
            st = gm_fail(err, GEMMA_ERR_FORMAT, "%s: weight_map['%s'] is not a .safetensors file name in this folder",
                         index_path, e->key);
            goto done;
        }
        int seen = 0;
        for (int j = 0; j < n_shards && !seen; j++) seen = strcmp(shards[j], f) == 0;
        if (seen) continue;
        if (n_shards == MAX_SHARDS) {
            st = gm_fail(err, GEMMA_ERR_UNSUPPORTED, "%s: more than %d shards", index_path, MAX_SHARDS);
            goto done;
        }
        shards[n_shards++] = f;
    }
    for (int j = 0; j < n_shards; j++) {
        char p[1400];
        if ((st = join(p, sizeof p, md->dir, shards[j], err))) goto done;
        if ((st = gm_tensors_add_file(&md->tensors, p, err))) goto done;
    }
    /* every tensor the index names must be in the shard it names */
    for (size_t i = 0; i < gm_json_count(map); i++) {
        const gm_json *e = gm_json_at(map, i);
        const gm_tensor *t = gm_tensors_find(&md->tensors, e->key);
        const char *where = t ? gm_tensors_file_of(&md->tensors, t) : NULL;
        const char *base = where ? strrchr(where, '/') : NULL;
        base = base ? base + 1 : where;
        if (!t || strcmp(base, gm_json_string(e)) != 0) {
            st = gm_fail(err, GEMMA_ERR_FORMAT, "%s: tensor '%s' is listed in %s but not found there", index_path,
                         e->key, gm_json_string(e));
            goto done;
        }
    }
done:
    free(shards);
    gm_json_free(doc);
    return st;
}

static int compare_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* No index and no model.safetensors: take every *.safetensors file, sorted. */
static gemma_status load_all_safetensors(gm_modeldir *md, gemma_error *err) {
    DIR *d = opendir(md->dir);
    if (!d) return gm_fail(err, GEMMA_ERR_IO, "%s: cannot read directory: %s", md->dir, strerror(errno));
    char *names[MAX_SHARDS];
    int n = 0;
    struct dirent *de;
    gemma_status st = GEMMA_OK;
    while ((de = readdir(d)) && n < MAX_SHARDS)
        if (safe_shard_name(de->d_name) && (names[n] = strdup(de->d_name))) n++;
    closedir(d);
    if (n == 0)
        return gm_fail(err, GEMMA_ERR_IO, "%s: no model.safetensors, model.safetensors.index.json or *.safetensors",
                       md->dir);
    qsort(names, (size_t)n, sizeof names[0], compare_names);
    for (int i = 0; i < n && !st; i++) {
        char p[1400];
        st = join(p, sizeof p, md->dir, names[i], err);
        if (!st) st = gm_tensors_add_file(&md->tensors, p, err);
    }
    for (int i = 0; i < n; i++) free(names[i]);
    return st;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

int gm_find_gguf_in_dir(const char *dir, char *out, size_t n) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int found = 0;
    struct dirent *de;
    while ((de = readdir(d)) && found < 2) {
        if (!ends_with(de->d_name, ".gguf") || strncmp(de->d_name, "mmproj", 6) == 0) continue;
        char p[1400];
        if ((size_t)snprintf(p, sizeof p, "%s/%s", dir, de->d_name) >= sizeof p || !gm_gguf_file_has_magic(p)) continue;
        if (found++ == 0 && (size_t)snprintf(out, n, "%s", p) >= n) found = 0;
    }
    closedir(d);
    return found;
}

static gemma_status open_gguf(gm_modeldir *md, const char *file, gemma_error *err) {
    if ((size_t)snprintf(md->gguf_path, sizeof md->gguf_path, "%s", file) >= sizeof md->gguf_path)
        return gm_fail(err, GEMMA_ERR_ARG, "%s: path too long", file);
    const char *slash = strrchr(file, '/');
    if (!slash) snprintf(md->dir, sizeof md->dir, ".");
    else snprintf(md->dir, sizeof md->dir, "%.*s", (int)(slash == file ? 1 : slash - file), file);
    gemma_status st = gm_gguf_model_open(&md->gguf, &md->cfg, &md->tensors, file, err);
    if (st) gm_modeldir_close(md);
    return st;
}

gemma_status gm_modeldir_open(gm_modeldir *md, const char *path, gemma_error *err) {
    memset(md, 0, sizeof *md);
    if (!path || !*path) return gm_fail(err, GEMMA_ERR_ARG, "no model path given");
    struct stat st_dir;
    if (stat(path, &st_dir) != 0) return gm_fail(err, GEMMA_ERR_IO, "%s: %s", path, strerror(errno));
    if (!S_ISDIR(st_dir.st_mode)) {
        if (gm_gguf_file_has_magic(path)) return open_gguf(md, path, err);
        return gm_fail(err, GEMMA_ERR_ARG,
                       "%s: expected a model directory (config.json + *.safetensors) or a GGUF file", path);
    }
    if ((size_t)snprintf(md->dir, sizeof md->dir, "%s", path) >= sizeof md->dir)
        return gm_fail(err, GEMMA_ERR_ARG, "%s: path too long", path);
    size_t dl = strlen(md->dir);
    while (dl > 1 && md->dir[dl - 1] == '/') md->dir[--dl] = 0;

    char p[1400];
    gemma_status st;
    if ((st = join(p, sizeof p, md->dir, "config.json", err))) return st;
    char gguf[1400];
    if (!file_exists(p)) {
        int n = gm_find_gguf_in_dir(md->dir, gguf, sizeof gguf);
        if (n == 1) return open_gguf(md, gguf, err);
        if (n > 1)
            return gm_fail(err, GEMMA_ERR_ARG, "%s: no config.json and more than one .gguf model file: name the file",
                           md->dir);
    }
    char *text;
    size_t len;
    if ((st = gm_read_file(p, MAX_CONFIG_BYTES, &text, &len, err))) return st;
    st = gm_config_parse(&md->cfg, p, text, len, err);
    free(text);
    if (st) goto fail;
    if ((st = join(p, sizeof p, md->dir, "generation_config.json", err))) goto fail;
    if (file_exists(p)) {
        if ((st = gm_read_file(p, 1u << 20, &text, &len, err))) goto fail;
        st = gm_config_parse_generation(&md->cfg, p, text, len, err);
        free(text);
        if (st) goto fail;
    }

    if ((st = join(p, sizeof p, md->dir, "model.safetensors.index.json", err))) goto fail;
    if (file_exists(p)) {
        st = load_index(md, p, err);
    } else {
        if ((st = join(p, sizeof p, md->dir, "model.safetensors", err))) goto fail;
        st = file_exists(p) ? gm_tensors_add_file(&md->tensors, p, err) : load_all_safetensors(md, err);
    }
    if (st) goto fail;
    return GEMMA_OK;
fail:
    gm_modeldir_close(md);
    return st;
}

void gm_modeldir_close(gm_modeldir *md) {
    gm_config_free(&md->cfg);
    gm_tensors_free(&md->tensors);
    gm_gguf_model_close(md->gguf);
    md->gguf = NULL;
}
