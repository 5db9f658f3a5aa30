/* reply.c - see reply.h. */
#include "reply.h"

#include <inttypes.h>
#include <stdio.h>

void srv_json_string(gm_strbuf *b, const char *s, size_t len) {
    static const char hex[] = "0123456789abcdef";
    gm_strbuf_append(b, "\"", 1);
    size_t plain = 0;   /* start of the run of bytes that need no escape */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7f) continue;
        gm_strbuf_append(b, s + plain, i - plain);
        plain = i + 1;
        char esc[7] = {'\\', (char)c, 0};
        if (c == '"' || c == '\\') {
            gm_strbuf_append(b, esc, 2);
        } else if (c == '\n') {
            gm_strbuf_append(b, "\\n", 2);
        } else {
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            gm_strbuf_append(b, esc, 6);
        }
    }
    gm_strbuf_append(b, s + plain, len - plain);
    gm_strbuf_append(b, "\"", 1);
}

static void put_string(gm_strbuf *b, const char *s) { srv_json_string(b, s, strlen(s)); }

void srv_error_json(gm_strbuf *b, const srv_error *e) {
    gm_strbuf_puts(b, "{\"error\":{\"message\":");
    put_string(b, e->message);
    gm_strbuf_puts(b, ",\"type\":");
    put_string(b, e->type ? e->type : "server_error");
    gm_strbuf_puts(b, ",\"param\":");
    if (e->param[0])
        put_string(b, e->param);
    else
        gm_strbuf_puts(b, "null");
    gm_strbuf_puts(b, ",\"code\":");
    if (e->code)
        put_string(b, e->code);
    else
        gm_strbuf_puts(b, "null");
    gm_strbuf_puts(b, "}}");
}

static void put_head(gm_strbuf *b, const srv_reply_head *h, int chunk) {
    static const char *const objects[2][2] = {{"chat.completion", "chat.completion.chunk"},
                                              {"text_completion", "text_completion"}};
    char num[32];
    gm_strbuf_puts(b, "{\"id\":");
    put_string(b, h->id);
    gm_strbuf_puts(b, ",\"object\":");
    put_string(b, objects[h->kind][chunk]);
    snprintf(num, sizeof num, ",\"created\":%" PRId64 ",\"model\":", h->created);
    gm_strbuf_puts(b, num);
    put_string(b, h->model);
    gm_strbuf_puts(b, ",\"system_fingerprint\":null,\"choices\":[");
}

static void put_usage(gm_strbuf *b, const srv_usage *u) {
    char num[192];
    snprintf(num, sizeof num,
             "\"usage\":{\"prompt_tokens\":%d,\"completion_tokens\":%d,\"total_tokens\":%d,"
             "\"prompt_tokens_details\":{\"cached_tokens\":%d}}",
             u->prompt_tokens, u->completion_tokens, u->prompt_tokens + u->completion_tokens, u->cached_tokens);
    gm_strbuf_puts(b, num);
}

static void put_finish(gm_strbuf *b, const char *finish) {
    gm_strbuf_puts(b, ",\"finish_reason\":");
    if (finish)
        put_string(b, finish);
    else
        gm_strbuf_puts(b, "null");
}

void srv_completion_json(gm_strbuf *b, const srv_reply_head *h, const char *text, size_t len, const char *finish,
                         const srv_usage *u) {
    put_head(b, h, 0);
    if (h->kind == SRV_CHAT) {
        gm_strbuf_puts(b, "{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":");
        srv_json_string(b, text, len);
        gm_strbuf_puts(b, ",\"refusal\":null},\"logprobs\":null");
    } else {
        gm_strbuf_puts(b, "{\"index\":0,\"text\":");
        srv_json_string(b, text, len);
        gm_strbuf_puts(b, ",\"logprobs\":null");
    }
    put_finish(b, finish);
    gm_strbuf_puts(b, "}],");
    put_usage(b, u);
    gm_strbuf_puts(b, "}");
}

void srv_chunk_event(gm_strbuf *b, const srv_reply_head *h, int first, const char *text, size_t len,
                     const char *finish, const srv_usage *usage) {
    gm_strbuf_puts(b, "data: ");
    put_head(b, h, 1);
    if (!usage) {
        gm_strbuf_puts(b, "{\"index\":0,");
        if (h->kind == SRV_CHAT) {
            gm_strbuf_puts(b, "\"delta\":{");
            if (first) gm_strbuf_puts(b, "\"role\":\"assistant\"");
            if (first && text) gm_strbuf_puts(b, ",");
            if (text) {
                gm_strbuf_puts(b, "\"content\":");
                srv_json_string(b, text, len);
            }
            gm_strbuf_puts(b, "}");
        } else {
            gm_strbuf_puts(b, "\"text\":");
            srv_json_string(b, text ? text : "", text ? len : 0);
        }
        gm_strbuf_puts(b, ",\"logprobs\":null");
        put_finish(b, finish);
        gm_strbuf_puts(b, "}");
    }
    gm_strbuf_puts(b, "]");
    if (usage) {
        gm_strbuf_puts(b, ",");
        put_usage(b, usage);
    }
    gm_strbuf_puts(b, "}\n\n");
}
