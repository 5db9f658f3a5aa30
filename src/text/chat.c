/* chat.c - chat formats: the model's Jinja chat template, implemented natively.
 *
 * We do not ship a Jinja engine.  A template is recognised by what it
 * renders, and its semantics are implemented here exactly, down to Jinja's
 * `trim` (Python's str.strip(): Unicode whitespace) and the errors it raises;
 * tests/fixtures/chat/ holds jinja2's renderings that prove it byte for byte.
 *
 * Gemma 3 (tokenizer_config.json of gemma-3-*-it and MedGemma):
 *   <bos>, a system message folded into the first user turn followed by a
 *   separator ("\n\n"; some conversions use "\n"), strict user/model
 *   alternation, "assistant" -> "model", contents trimmed, list contents
 *   concatenated with image parts as <start_of_image>, then
 *   "<start_of_turn>model\n" as the generation prompt.
 * A GGUF file brings its template as tokenizer.chat_template; without one
 * (Gemma 3 270M's has none) general.architecture "gemma3" gets the format
 * that Gemma 3's tokenizer_config.json template maps to.
 *
 * Gemma 4 (gemma-4-E2B-it's chat_template): <bos>, a leading system or
 * developer message as its own "<|turn>system\n...<turn|>\n", roles as given
 * ("assistant" -> "model", no alternation rule), user text trimmed, model
 * text with its thought channels removed, consecutive assistant messages
 * merged into one model turn, image parts as <|image|>, then
 * "<|turn>model\n" (no empty thought block: that is the 26B/31B template).
 * GEMMA_CHAT_THINKING is enable_thinking: a system turn is opened even
 * without a system message and starts with "<|think|>\n".  Tool calls and
 * responses are not expressible through gemma_chat_message and not rendered. */
#include "text/chat.h"
#include "core/error.h"
#include "core/json.h"
#include "core/mapfile.h"
#include "core/strbuf.h"
#include "gemma.h"
#include "io/gguf.h"
#include "io/modeldir.h"
#include "text/channel.h"
#include "text/tokenizer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef enum { CHAT_GEMMA3 = 1, CHAT_GEMMA4 = 2 } chat_kind;

struct gemma_chat_format {
    chat_kind kind;
    char name[16];
    char bos[64];               /* {{ bos_token }} */
    char system_separator[16];  /* what follows the system text in the first user turn */
};

/* ============================================================== utilities */

/* Python's str.isspace() for one code point: what Jinja's trim strips. */
static int py_isspace(unsigned cp) {
    return (cp >= 0x09 && cp <= 0x0d) || (cp >= 0x1c && cp <= 0x20) || cp == 0x85 || cp == 0xa0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 || cp == 0x202f || cp == 0x205f ||
           cp == 0x3000;
}

/* Decode the code point starting at s[i] (n bytes total); returns its length, 0 if invalid. */
static size_t utf8_next(const unsigned char *s, size_t n, size_t i, unsigned *cp) {
    unsigned c = s[i];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
    if (!len || i + len > n) return 0;
    unsigned v = c & (0x3f >> (len - 1));
    for (size_t k = 1; k < len; k++) {
        if ((s[i + k] & 0xc0) != 0x80) return 0;
        v = (v << 6) | (s[i + k] & 0x3f);
    }
    *cp = v;
    return len;
}

/* [*begin, *end) of s[0..n) without leading/trailing Python whitespace. */
static void py_strip(const char *str, size_t n, size_t *begin, size_t *end) {
    const unsigned char *s = (const unsigned char *)str;
    size_t b = 0, e = n;
    unsigned cp;
    size_t l;
    while (b < n && (l = utf8_next(s, n, b, &cp)) && py_isspace(cp)) b += l;
    while (e > b) {
        size_t start = e - 1;
        while (start > b && (s[start] & 0xc0) == 0x80 && e - start < 4) start--;
        l = utf8_next(s, n, start, &cp);
        if (!l || start + l != e || !py_isspace(cp)) break;
        e = start;
    }
    *begin = b;
    *end = e;
}

static size_t len_of(const char *s, size_t len) { return len ? len : (s ? strlen(s) : 0); }

static void append_trimmed(gm_strbuf *b, const char *s, size_t len) {
    if (!s) return;
    size_t lo, hi;
    py_strip(s, len_of(s, len), &lo, &hi);
    gm_strbuf_append(b, s + lo, hi - lo);
}

/* ================================================================ gemma 3 */

static gemma_status render_gemma3(const gemma_chat_format *f, const gemma_chat_message *m, size_t n, int flags,
                                  gm_strbuf *out, gemma_error *err) {
    if (n == 0 || !m[0].role) return gm_fail(err, GEMMA_ERR_ARG, "chat: no messages");
    gm_strbuf_puts(out, f->bos);
    const char *system = NULL;
    size_t system_len = 0, first = 0;
    if (strcmp(m[0].role, "system") == 0) {
        if (m[0].content) {
            system = m[0].content;
            system_len = len_of(system, m[0].content_len);
        } else if (m[0].parts && m[0].n_parts > 0 && m[0].parts[0].text) {   /* content[0]['text'], any type */
            system = m[0].parts[0].text;
            system_len = len_of(system, m[0].parts[0].text_len);
        } else {
            return gm_fail(err, GEMMA_ERR_ARG, "chat: the system message needs text content");
        }
        first = 1;
    }
    for (size_t i = first; i < n; i++) {
        const gemma_chat_message *msg = &m[i];
        size_t idx = i - first;
        if (!msg->role) return gm_fail(err, GEMMA_ERR_ARG, "chat: message %zu has no role", i);
        if ((strcmp(msg->role, "user") == 0) != (idx % 2 == 0))
            return gm_fail(err, GEMMA_ERR_ARG,
                           "chat: Conversation roles must alternate user/assistant/user/assistant/... "
                           "(message %zu is '%s')",
                           i, msg->role);
        const char *role = strcmp(msg->role, "assistant") == 0 ? "model" : msg->role;
        gm_strbuf_puts(out, "<start_of_turn>");
        gm_strbuf_puts(out, role);
        gm_strbuf_puts(out, "\n");
        if (idx == 0 && system) {
            gm_strbuf_append(out, system, system_len);
            gm_strbuf_puts(out, f->system_separator);
        }
        if (msg->content) {
            append_trimmed(out, msg->content, msg->content_len);
        } else if (msg->parts) {
            for (size_t k = 0; k < msg->n_parts; k++) {
                const gemma_chat_part *part = &msg->parts[k];
                if (part->type == GEMMA_PART_IMAGE) gm_strbuf_puts(out, "<start_of_image>");
                else if (part->type == GEMMA_PART_TEXT) append_trimmed(out, part->text, part->text_len);
            }
        } else {
            return gm_fail(err, GEMMA_ERR_ARG, "chat: Invalid content type (message %zu)", i);
        }
        gm_strbuf_puts(out, "<end_of_turn>\n");
    }
    if (flags & GEMMA_CHAT_GENERATION_PROMPT) gm_strbuf_puts(out, "<start_of_turn>model\n");
    return GEMMA_OK;
}

/* ================================================================ gemma 4 */

/* The template's strip_thinking: of each piece split at "<channel|>", what
 * precedes "<|channel>" (all of it if there is none), joined, then trimmed;
 * the streaming splitter's answer is exactly that before the trim. */
static void append_without_thinking(gm_strbuf *out, const char *s, size_t len) {
    gm_channel c = {0};
    char *kept = malloc(len + GEMMA_CHANNEL_HOLD + 1);
    if (!kept) {
        out->ok = 0;
        return;
    }
    size_t n, tail;
    gm_channel_push(&c, s, len, kept, &n, NULL, NULL);
    gm_channel_flush(&c, kept + n, &tail, NULL, NULL);
    kept[n + tail] = 0;   /* append_trimmed reads length 0 as NUL-terminated */
    append_trimmed(out, kept, n + tail);
    free(kept);
}

static void append_gemma4_text(gm_strbuf *out, int model, const char *s, size_t len) {
    if (!s) return;
    if (model) append_without_thinking(out, s, len_of(s, len));
    else append_trimmed(out, s, len);
}

static gemma_status render_gemma4(const gemma_chat_format *f, const gemma_chat_message *m, size_t n, int flags,
                                  gm_strbuf *out, gemma_error *err) {
    for (size_t i = 0; i < n; i++)
        if (!m[i].role) return gm_fail(err, GEMMA_ERR_ARG, "chat: message %zu has no role", i);
    gm_strbuf_puts(out, f->bos);
    size_t first = 0;
    int system = n && (strcmp(m[0].role, "system") == 0 || strcmp(m[0].role, "developer") == 0);
    int think = (flags & GEMMA_CHAT_THINKING) != 0;
    if (system || think) {
        gm_strbuf_puts(out, "<|turn>system\n");
        if (think) gm_strbuf_puts(out, "<|think|>\n");
    }
    if (system) {
        if (m[0].content) {
            append_trimmed(out, m[0].content, m[0].content_len);
        } else {
            for (size_t k = 0; m[0].parts && k < m[0].n_parts; k++) {
                append_trimmed(out, m[0].parts[k].text, m[0].parts[k].text_len);
                gm_strbuf_puts(out, " ");
            }
        }
        first = 1;
    }
    if (system || think) gm_strbuf_puts(out, "<turn|>\n");
    const char *prev_role = NULL;   /* the template's prev_non_tool_role */
    for (size_t i = first; i < n; i++) {
        const gemma_chat_message *msg = &m[i];
        if (strcmp(msg->role, "tool") == 0) continue;   /* only read through tool calls */
        int model = strcmp(msg->role, "assistant") == 0 || strcmp(msg->role, "model") == 0;
        const char *role = strcmp(msg->role, "assistant") == 0 ? "model" : msg->role;
        if (!(model && prev_role && strcmp(prev_role, "assistant") == 0)) {
            gm_strbuf_puts(out, "<|turn>");
            gm_strbuf_puts(out, role);
            gm_strbuf_puts(out, "\n");
        }
        if (msg->content) {
            append_gemma4_text(out, model, msg->content, msg->content_len);
        } else {
            for (size_t k = 0; msg->parts && k < msg->n_parts; k++) {
                const gemma_chat_part *part = &msg->parts[k];
                if (part->type == GEMMA_PART_IMAGE) gm_strbuf_puts(out, "<|image|>");
                else if (part->type == GEMMA_PART_TEXT) append_gemma4_text(out, model, part->text, part->text_len);
            }
        }
        /* a model turn stays open when the next (non-tool) message is an assistant one */
        const char *next = NULL;
        for (size_t j = i + 1; j < n && !next; j++)
            if (strcmp(m[j].role, "tool") != 0) next = m[j].role;
        if (!(model && next && strcmp(next, "assistant") == 0)) gm_strbuf_puts(out, "<turn|>\n");
        prev_role = msg->role;
    }
    if (flags & GEMMA_CHAT_GENERATION_PROMPT) gm_strbuf_puts(out, "<|turn>model\n");
    return GEMMA_OK;
}

/* ============================================================ recognition */

/* The literal Jinja string that follows `marker` in the template ('...' or "..."),
 * with \n escapes and raw newlines, into out. */
static int template_literal_after(const char *tmpl, const char *marker, char *out, size_t cap) {
    const char *p = strstr(tmpl, marker);
    if (!p) return 0;
    p += strlen(marker);
    while (*p == ' ' || *p == '+') p++;
    char q = *p;
    if (q != '\'' && q != '"') return 0;
    size_t n = 0;
    for (p++; *p && *p != q; p++) {
        char c = *p;
        if (c == '\\' && p[1] == 'n') {
            c = '\n';
            p++;
        }
        if (n + 1 >= cap) return 0;
        out[n++] = c;
    }
    out[n] = 0;
    return *p == q;
}

/* The Gemma 3 format with its defaults: bos "<bos>", system separator "\n\n". */
static gemma_chat_format *gemma3_format(void) {
    gemma_chat_format *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    f->kind = CHAT_GEMMA3;
    snprintf(f->name, sizeof f->name, "gemma3");
    snprintf(f->bos, sizeof f->bos, "<bos>");
    snprintf(f->system_separator, sizeof f->system_separator, "\n\n");
    return f;
}

gemma_status gemma_chat_format_from_template(const char *jinja, gemma_chat_format **out, gemma_error *err) {
    if (!out) return gm_fail(err, GEMMA_ERR_ARG, "gemma_chat_format_from_template: out is NULL");
    *out = NULL;
    if (!jinja) return gm_fail(err, GEMMA_ERR_ARG, "no chat template");
    if (strstr(jinja, "<start_of_turn>") && strstr(jinja, "first_user_prefix") &&
        strstr(jinja, "Conversation roles must alternate")) {
        gemma_chat_format *f = gemma3_format();
        if (!f) return gm_fail(err, GEMMA_ERR_NOMEM, "out of memory");
        char sep[sizeof f->system_separator];
        if (template_literal_after(jinja, "messages[0]['content'] +", sep, sizeof sep))
            memcpy(f->system_separator, sep, sizeof sep);
        *out = f;
        return GEMMA_OK;
    }
    if (strstr(jinja, "<|turn>") && strstr(jinja, "<turn|>") && strstr(jinja, "strip_thinking") &&
        strstr(jinja, "prev_non_tool_role")) {
        gemma_chat_format *f = calloc(1, sizeof *f);
        if (!f) return gm_fail(err, GEMMA_ERR_NOMEM, "out of memory");
        f->kind = CHAT_GEMMA4;
        snprintf(f->name, sizeof f->name, "gemma4");
        snprintf(f->bos, sizeof f->bos, "<bos>");
        *out = f;
        return GEMMA_OK;
    }
    if (strstr(jinja, "<|turn>"))
        return gm_fail(err, GEMMA_ERR_UNSUPPORTED,
                       "chat template: this <|turn> template is not the Gemma 4 one recognised (gemma-4-E2B-it's)");
    return gm_fail(err, GEMMA_ERR_UNSUPPORTED,
                   "chat template not recognised (supported: Gemma 3's <start_of_turn> template, Gemma 4's <|turn>)");
}

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* bos_token in tokenizer_config.json: a string or {"content": ...}. */
static void read_bos(const gm_json *cfg, gemma_chat_format *f) {
    const gm_json *b = gm_json_get(cfg, "bos_token");
    const char *s = gm_json_string(b);
    if (!s) s = gm_json_string(gm_json_get(b, "content"));
    if (s && strlen(s) < sizeof f->bos) snprintf(f->bos, sizeof f->bos, "%s", s);
}

/* A GGUF's tokenizer.chat_template, else the built-in format of its
 * general.architecture (llama.cpp's converter leaves the template out when
 * the source folder had none, as Gemma 3 270M's). */
static gemma_status load_gguf(const char *file, gemma_chat_format **out, gemma_error *err) {
    gm_gguf g;
    gemma_status st = gm_gguf_open(&g, file, err);
    if (st) return st;
    const char *tmpl = NULL, *arch = NULL;
    if (gm_gguf_find_kv(&g, "tokenizer.chat_template")) {
        if ((st = gm_gguf_get_str(&g, "tokenizer.chat_template", &tmpl, NULL, err))) goto done;
        if ((st = gemma_chat_format_from_template(tmpl, out, err))) {
            char why[GEMMA_ERROR_MESSAGE_MAX];
            snprintf(why, sizeof why, "%s", err ? err->message : "");
            st = gm_fail(err, st, "%s: key 'tokenizer.chat_template': %s", file, why);
            goto done;
        }
    } else {
        if ((st = gm_gguf_get_str(&g, "general.architecture", &arch, NULL, err))) goto done;
        if (strcmp(arch, "gemma3") != 0) {
            st = gm_fail(err, GEMMA_ERR_UNSUPPORTED,
                         "%s: key 'tokenizer.chat_template' is missing and general.architecture '%.40s' has no "
                         "built-in chat format (built in: gemma3)", file, arch);
            goto done;
        }
        if (!(*out = gemma3_format())) {
            st = gm_fail(err, GEMMA_ERR_NOMEM, "%s: out of memory", file);
            goto done;
        }
    }
    /* {{ bos_token }} is the piece of tokenizer.ggml.bos_token_id. */
    const gm_gguf_kv *kv = gm_gguf_find_kv(&g, "tokenizer.ggml.bos_token_id");
    const gm_gguf_value *tokens = NULL;
    uint64_t bos;
    size_t len;
    if (kv && gm_gguf_value_u64(&kv->value, &bos) &&
        gm_gguf_get_arr(&g, "tokenizer.ggml.tokens", GM_GGUF_STRING, &tokens, NULL) == GEMMA_OK && bos < tokens->count) {
        const char *piece = gm_gguf_arr_str(tokens, bos, &len);
        if (len < sizeof (*out)->bos && !memchr(piece, 0, len)) {
            memcpy((*out)->bos, piece, len);
            (*out)->bos[len] = 0;
        }
    }
    gm_ok(err);
done:
    gm_gguf_close(&g);
    return st;
}

gemma_status gemma_chat_format_load(const char *path, gemma_chat_format **out, gemma_error *err) {
    if (!out) return gm_fail(err, GEMMA_ERR_ARG, "gemma_chat_format_load: out is NULL");
    *out = NULL;
    if (!path) return gm_fail(err, GEMMA_ERR_ARG, "gemma_chat_format_load: path is NULL");
    char cfg_path[1200] = "", jinja_path[1200] = "", json_path[1200] = "";
    if (is_dir(path)) {
        snprintf(cfg_path, sizeof cfg_path, "%s/tokenizer_config.json", path);
        snprintf(jinja_path, sizeof jinja_path, "%s/chat_template.jinja", path);
        snprintf(json_path, sizeof json_path, "%s/chat_template.json", path);
        char gguf[1400];
        if (!exists(cfg_path) && !exists(jinja_path) && !exists(json_path)) {
            int n_gguf = gm_find_gguf_in_dir(path, gguf, sizeof gguf);
            if (n_gguf == 1) return load_gguf(gguf, out, err);
            if (n_gguf > 1)
                return gm_fail(err, GEMMA_ERR_IO,
                               "%s: no tokenizer_config.json and more than one .gguf model file: name the file", path);
        }
    } else if (gm_gguf_file_has_magic(path)) {
        return load_gguf(path, out, err);
    } else {
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        if (strcmp(base, "chat_template.jinja") == 0) snprintf(jinja_path, sizeof jinja_path, "%s", path);
        else if (strcmp(base, "chat_template.json") == 0) snprintf(json_path, sizeof json_path, "%s", path);
        else snprintf(cfg_path, sizeof cfg_path, "%s", path);
    }

    char *text = NULL, *tmpl = NULL;
    size_t len = 0;
    gm_json_doc *doc = NULL;
    gemma_status st = GEMMA_OK;
    const gm_json *cfg = NULL;
    char jerr[160];
    if (cfg_path[0] && exists(cfg_path)) {
        if ((st = gm_read_file(cfg_path, 64u << 20, &text, &len, err))) return st;
        doc = gm_json_parse(text, len, NULL, jerr, sizeof jerr);
        free(text);
        text = NULL;
        if (!doc) return gm_fail(err, GEMMA_ERR_FORMAT, "%s: not valid JSON: %s", cfg_path, jerr);
        cfg = gm_json_root(doc);
        const gm_json *ct = gm_json_get(cfg, "chat_template");
        if (gm_json_string(ct)) {
            tmpl = strdup(gm_json_string(ct));
        } else if (gm_json_is(ct, GM_JSON_ARRAY)) {   /* named templates: take "default" */
            for (size_t i = 0; i < gm_json_count(ct) && !tmpl; i++) {
                const gm_json *e = gm_json_at(ct, i);
                const char *nm = gm_json_string(gm_json_get(e, "name"));
                if (nm && strcmp(nm, "default") == 0 && gm_json_string(gm_json_get(e, "template")))
                    tmpl = strdup(gm_json_string(gm_json_get(e, "template")));
            }
        }
    }
    if (!tmpl && jinja_path[0] && exists(jinja_path)) {
        if ((st = gm_read_file(jinja_path, 16u << 20, &tmpl, &len, err))) goto done;
    }
    if (!tmpl && json_path[0] && exists(json_path)) {
        if ((st = gm_read_file(json_path, 16u << 20, &text, &len, err))) goto done;
        gm_json_doc *d2 = gm_json_parse(text, len, NULL, jerr, sizeof jerr);
        if (!d2) {
            st = gm_fail(err, GEMMA_ERR_FORMAT, "%s: not valid JSON: %s", json_path, jerr);
            goto done;
        }
        const char *t = gm_json_string(gm_json_get(gm_json_root(d2), "chat_template"));
        if (t) tmpl = strdup(t);
        gm_json_free(d2);
    }
    if (!tmpl) {
        st = gm_fail(err, GEMMA_ERR_IO, "%s: no chat template (looked for tokenizer_config.json chat_template, "
                                        "chat_template.jinja, chat_template.json)", path);
        goto done;
    }
    if ((st = gemma_chat_format_from_template(tmpl, out, err))) {
        char why[GEMMA_ERROR_MESSAGE_MAX];
        snprintf(why, sizeof why, "%s", err ? err->message : "");
        st = gm_fail(err, st, "%s: %s", cfg_path[0] ? cfg_path : path, why);
        goto done;
    }
    if (cfg) read_bos(cfg, *out);
done:
    free(text);
    free(tmpl);
    gm_json_free(doc);
    return st;
}

void gemma_chat_format_free(gemma_chat_format *f) { free(f); }
const char *gemma_chat_format_name(const gemma_chat_format *f) { return f ? f->name : ""; }
int gemma_chat_format_has_thinking(const gemma_chat_format *f) { return f && f->kind == CHAT_GEMMA4; }

/* ================================================================ render */

static gemma_status copy_out(const gm_strbuf *b, char *out, size_t cap, size_t *len, gemma_error *err) {
    if (!b->ok) return gm_fail(err, GEMMA_ERR_NOMEM, "chat: out of memory");
    if (len) *len = b->len;
    if (!out || cap <= b->len) return gm_fail(err, GEMMA_ERR_BUFFER, "chat: rendered prompt needs %zu bytes", b->len + 1);
    memcpy(out, b->data ? b->data : "", b->len + 1);
    return GEMMA_OK;
}

static gemma_status chat_render_buf(const gemma_chat_format *f, const gemma_chat_message *m, size_t n, int flags,
                                gm_strbuf *out, gemma_error *err) {
    if (!f) return gm_fail(err, GEMMA_ERR_ARG, "chat: no format");
    if (n && !m) return gm_fail(err, GEMMA_ERR_ARG, "chat: messages is NULL");
    if (flags & ~(GEMMA_CHAT_GENERATION_PROMPT | GEMMA_CHAT_THINKING))
        return gm_fail(err, GEMMA_ERR_ARG, "chat: unknown render flags 0x%x", (unsigned)flags);
    if ((flags & GEMMA_CHAT_THINKING) && !gemma_chat_format_has_thinking(f))
        return gm_fail(err, GEMMA_ERR_UNSUPPORTED, "chat: the %s format has no thinking mode", f->name);
    switch (f->kind) {
    case CHAT_GEMMA3: return render_gemma3(f, m, n, flags, out, err);
    case CHAT_GEMMA4: return render_gemma4(f, m, n, flags, out, err);
    }
    return gm_fail(err, GEMMA_ERR_INTERNAL, "chat: unknown format");
}

gemma_status gemma_chat_render(const gemma_chat_format *f, const gemma_chat_message *m, size_t n, int flags,
                               char *out, size_t cap, size_t *len, gemma_error *err) {
    gm_ok(err);
    gm_strbuf b;
    gm_strbuf_init(&b);
    gemma_status st = chat_render_buf(f, m, n, flags, &b, err);
    if (!st) st = copy_out(&b, out, cap, len, err);
    gm_strbuf_free(&b);
    return st;
}

/* ----------------------------------------------------------- JSON input */

/* Python's str() of a JSON value, as Jinja prints a non-string: None, True,
 * 42, 1.5, ['a', 1, None], {'k': 'v'}.  (JSON 42.0 prints as 42: our reader
 * keeps numbers as doubles.) */
static void py_str(gm_strbuf *b, const gm_json *v, int quoted);

static void py_float(gm_strbuf *b, double d) {
    char buf[40];
    int64_t i;
    if (d == (double)(int64_t)d && fabs(d) < 9007199254740992.0) {
        i = (int64_t)d;
        snprintf(buf, sizeof buf, "%lld", (long long)i);
        gm_strbuf_puts(b, buf);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {   /* shortest round-trip, like repr() */
        snprintf(buf, sizeof buf, "%.*g", prec, d);
        if (strtod(buf, NULL) == d) break;
    }
    gm_strbuf_puts(b, buf);   /* C's %g exponent ("1e-05", "1e+16") is Python's */
}

static void py_quote(gm_strbuf *b, const char *s, size_t n) {
    char q = memchr(s, '\'', n) && !memchr(s, '"', n) ? '"' : '\'';
    gm_strbuf_append(b, &q, 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '\\' || c == (unsigned char)q) snprintf(esc, sizeof esc, "\\%c", c);
        else if (c == '\n') snprintf(esc, sizeof esc, "\\n");
        else if (c == '\r') snprintf(esc, sizeof esc, "\\r");
        else if (c == '\t') snprintf(esc, sizeof esc, "\\t");
        else if (c < 0x20 || c == 0x7f) snprintf(esc, sizeof esc, "\\x%02x", c);
        else {
            gm_strbuf_append(b, (const char *)&c, 1);
            continue;
        }
        gm_strbuf_puts(b, esc);
    }
    gm_strbuf_append(b, &q, 1);
}

static void py_str(gm_strbuf *b, const gm_json *v, int quoted) {
    switch (v ? v->type : GM_JSON_NULL) {
    case GM_JSON_NULL: gm_strbuf_puts(b, "None"); break;
    case GM_JSON_TRUE: gm_strbuf_puts(b, "True"); break;
    case GM_JSON_FALSE: gm_strbuf_puts(b, "False"); break;
    case GM_JSON_NUMBER: py_float(b, v->u.num); break;
    case GM_JSON_STRING:
        if (quoted) py_quote(b, v->u.str, v->len);
        else gm_strbuf_append(b, v->u.str, v->len);
        break;
    case GM_JSON_ARRAY:
        gm_strbuf_puts(b, "[");
        for (size_t i = 0; i < v->len; i++) {
            if (i) gm_strbuf_puts(b, ", ");
            py_str(b, &v->u.kids[i], 1);
        }
        gm_strbuf_puts(b, "]");
        break;
    case GM_JSON_OBJECT:
        gm_strbuf_puts(b, "{");
        for (size_t i = 0; i < v->len; i++) {
            if (i) gm_strbuf_puts(b, ", ");
            py_quote(b, v->u.kids[i].key, v->u.kids[i].key_len);
            gm_strbuf_puts(b, ": ");
            py_str(b, &v->u.kids[i], 1);
        }
        gm_strbuf_puts(b, "}");
        break;
    }
}

typedef struct {
    gemma_chat_message *msgs;
    gemma_chat_part *parts;
    gm_strbuf *texts;     /* Python str() renderings of non-string text values */
    size_t n_texts;
    size_t n;
} json_messages;

static void json_messages_free(json_messages *j) {
    for (size_t i = 0; i < j->n_texts; i++) gm_strbuf_free(&j->texts[i]);
    free(j->texts);
    free(j->msgs);
    free(j->parts);
    memset(j, 0, sizeof *j);
}

/* OpenAI-style messages -> gemma_chat_message, with Jinja's view of odd values:
 * string content is text; a list is parts (dicts with type "text"/"image";
 * anything else renders nothing; a non-string text prints as Python's str());
 * a dict or a missing content renders nothing; null, a number or a bool is an
 * invalid content type.  A system message's first part must carry string text. */
static gemma_status messages_from_json(const gm_json *arr, json_messages *j, gemma_error *err) {
    memset(j, 0, sizeof *j);
    if (!gm_json_is(arr, GM_JSON_ARRAY)) return gm_fail(err, GEMMA_ERR_ARG, "messages: expected a JSON array");
    size_t count = gm_json_count(arr), n_parts = 0;
    for (size_t i = 0; i < count; i++) {
        const gm_json *c = gm_json_get(gm_json_at(arr, i), "content");
        if (gm_json_is(c, GM_JSON_ARRAY)) n_parts += gm_json_count(c);
    }
    j->msgs = calloc(count ? count : 1, sizeof *j->msgs);
    j->parts = calloc(n_parts ? n_parts : 1, sizeof *j->parts);
    j->texts = calloc(n_parts ? n_parts : 1, sizeof *j->texts);
    if (!j->msgs || !j->parts || !j->texts) return gm_fail(err, GEMMA_ERR_NOMEM, "messages: out of memory");
    static const gemma_chat_part no_parts[1];
    gemma_chat_part *p = j->parts;
    for (size_t i = 0; i < count; i++) {
        const gm_json *m = gm_json_at(arr, i);
        gemma_chat_message *out = &j->msgs[i];
        if (!gm_json_is(m, GM_JSON_OBJECT)) return gm_fail(err, GEMMA_ERR_ARG, "messages[%zu]: expected an object", i);
        const gm_json *role = gm_json_get(m, "role");
        if (!gm_json_string(role)) return gm_fail(err, GEMMA_ERR_ARG, "messages[%zu]: missing string field role", i);
        out->role = role->u.str;
        int system_first = i == 0 && strcmp(out->role, "system") == 0;
        const gm_json *c = gm_json_get(m, "content");
        if (!c || gm_json_is(c, GM_JSON_OBJECT)) {
            if (system_first) return gm_fail(err, GEMMA_ERR_ARG, "messages[0]: the system message needs text content");
            out->parts = no_parts;   /* iterates to nothing */
        } else if (gm_json_is(c, GM_JSON_STRING)) {
            out->content = c->u.str;
            out->content_len = c->len;
            if (!c->len) out->content = "";
        } else if (gm_json_is(c, GM_JSON_ARRAY)) {
            out->parts = p;
            out->n_parts = c->len;
            for (size_t k = 0; k < c->len; k++, p++) {
                const gm_json *item = &c->u.kids[k];
                const char *type = gm_json_string(gm_json_get(item, "type"));
                p->type = !type ? GEMMA_PART_OTHER
                          : strcmp(type, "text") == 0  ? GEMMA_PART_TEXT
                          : strcmp(type, "image") == 0 ? GEMMA_PART_IMAGE
                                                       : GEMMA_PART_OTHER;
                const gm_json *text = gm_json_get(item, "text");
                if (gm_json_is(text, GM_JSON_STRING)) {
                    p->text = text->len ? text->u.str : "";
                    p->text_len = text->len;
                } else if (text && !(system_first && k == 0)) {
                    gm_strbuf *tb = &j->texts[j->n_texts++];
                    gm_strbuf_init(tb);
                    py_str(tb, text, 0);
                    if (!tb->ok) return gm_fail(err, GEMMA_ERR_NOMEM, "messages: out of memory");
                    p->text = tb->data ? tb->data : "";
                    p->text_len = tb->len;
                }
            }
            if (system_first && (c->len == 0 || !j->parts[0].text))
                return gm_fail(err, GEMMA_ERR_ARG, "messages[0]: the system message's first part needs string text");
        } else {
            if (system_first) return gm_fail(err, GEMMA_ERR_ARG, "messages[0]: the system content must be text");
            /* null, number, bool: content and parts stay NULL -> "Invalid content type" */
        }
    }
    j->n = count;
    return GEMMA_OK;
}

gemma_status gm_chat_render_json_value(const gemma_chat_format *f, const gm_json *messages, int flags, gm_strbuf *out,
                                       gemma_error *err) {
    json_messages j;
    gemma_status st = messages_from_json(messages, &j, err);
    if (!st) st = chat_render_buf(f, j.msgs, j.n, flags, out, err);
    json_messages_free(&j);
    return st;
}

gemma_status gemma_chat_render_json(const gemma_chat_format *f, const char *json, size_t json_len, int flags,
                                    char *out, size_t cap, size_t *len, gemma_error *err) {
    gm_ok(err);
    if (!json) return gm_fail(err, GEMMA_ERR_ARG, "messages: no JSON given");
    char jerr[160];
    gm_json_limits lim = {.max_bytes = 64u << 20, .max_depth = 64};
    gm_json_doc *doc = gm_json_parse(json, json_len, &lim, jerr, sizeof jerr);
    if (!doc) return gm_fail(err, GEMMA_ERR_ARG, "messages: not valid JSON: %s", jerr);
    gm_strbuf b;
    gm_strbuf_init(&b);
    gemma_status st = gm_chat_render_json_value(f, gm_json_root(doc), flags, &b, err);
    if (!st) st = copy_out(&b, out, cap, len, err);
    gm_strbuf_free(&b);
    gm_json_free(doc);
    return st;
}

/* ====================================================== image placeholders */

/* Gemma3Processor: every <start_of_image> the template wrote becomes the
 * image's full sequence, "\n\n<start_of_image>" + n x "<image_soft_token>" +
 * "<end_of_image>\n\n" (spec 4.3); the soft tokens are what image embeddings
 * replace.  A <start_of_image> already followed by soft tokens (an expanded
 * prompt) is left alone, so expanding twice changes nothing. */
gemma_status gemma_chat_expand_images(const char *text, size_t text_len, int tokens_per_image, char *out, size_t cap,
                                      size_t *len, int *n_images, gemma_error *err) {
    gm_ok(err);
    static const char boi[] = "<start_of_image>", soft[] = "<image_soft_token>", eoi[] = "<end_of_image>";
    if (!text) return gm_fail(err, GEMMA_ERR_ARG, "gemma_chat_expand_images: text is NULL");
    if (tokens_per_image < 1 || tokens_per_image > 1 << 16)
        return gm_fail(err, GEMMA_ERR_ARG, "gemma_chat_expand_images: tokens_per_image %d out of range",
                       tokens_per_image);
    if (!text_len) text_len = strlen(text);
    gm_strbuf b;
    gm_strbuf_init(&b);
    int images = 0;
    size_t i = 0, nb = sizeof boi - 1, ns = sizeof soft - 1;
    while (i < text_len) {
        const char *hit = NULL;
        for (size_t j = i; j + nb <= text_len; j++)
            if (memcmp(text + j, boi, nb) == 0) {
                hit = text + j;
                break;
            }
        if (!hit) break;
        size_t at = (size_t)(hit - text);
        gm_strbuf_append(&b, text + i, at - i);
        i = at + nb;
        images++;
        if (i + ns <= text_len && memcmp(text + i, soft, ns) == 0) {   /* already expanded */
            gm_strbuf_append(&b, boi, nb);
            continue;
        }
        gm_strbuf_puts(&b, "\n\n");
        gm_strbuf_puts(&b, boi);
        for (int t = 0; t < tokens_per_image; t++) gm_strbuf_append(&b, soft, ns);
        gm_strbuf_puts(&b, eoi);
        gm_strbuf_puts(&b, "\n\n");
    }
    gm_strbuf_append(&b, text + i, text_len - i);
    if (n_images) *n_images = images;
    gemma_status st = b.ok ? copy_out(&b, out, cap, len, err) : gm_fail(err, GEMMA_ERR_NOMEM, "out of memory");
    gm_strbuf_free(&b);
    return st;
}
