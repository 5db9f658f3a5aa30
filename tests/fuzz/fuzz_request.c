/* fuzz_request.c - libFuzzer target for the server's request bodies
 * (tools/server/request.c) and replies (tools/server/reply.c).
 *
 * Why: an HTTP body is the most exposed input gemma.c has.  Each input is
 * parsed as a /v1/chat/completions body (first byte even) or a
 * /v1/completions body (odd) with small limits, against the tiny multimodal
 * fixture model and the real Gemma 3 chat template.  An accepted request must
 * have a prompt and sane fields; a refused one must carry a 4xx/5xx status, a
 * type and a message, and its error object must be valid JSON; the reply
 * JSON built around an accepted prompt must parse back.  Leaks of either path
 * are caught by ASan.  Needs GEMMA_FIXTURES_DIR's mm/e2e-f32-hub and the
 * tokenizer folder (models/gemma3-tokenizer, from scripts/setup.sh). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "gemma.h"
#include "reply.h"
#include "request.h"

#include "fuzz_check.h"

static gemma_model *model;
static gemma_chat_format *fmt;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    gemma_error err;
    if (gemma_model_load(GEMMA_FIXTURES_DIR "/mm/e2e-f32-hub", NULL, &model, &err) != GEMMA_OK ||
        gemma_chat_format_load(GEMMA_TOKENIZER_DIR, &fmt, &err) != GEMMA_OK) {
        fprintf(stderr, "fuzz_request: %s\n", err.message);
        abort();
    }
    return 0;
}

static void parses_back(const gm_strbuf *b) {
    CHECK(b->ok);
    char jerr[128];
    gm_json_doc *doc = gm_json_parse(b->data, b->len, NULL, jerr, sizeof jerr);
    CHECK(doc != NULL);
    gm_json_free(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    srv_kind kind = data[0] & 1 ? SRV_COMPLETION : SRV_CHAT;
    srv_limits lim = srv_default_limits();
    lim.max_body_bytes = 1 << 16;
    lim.max_images = 2;
    lim.max_image_bytes = 1 << 14;
    lim.max_image_pixels = 1 << 16;
    lim.max_messages = 16;
    gemma_sampler_params defaults = gemma_sampler_default_params();
    srv_request r;
    srv_error err;
    memset(&err, 0, sizeof err);
    gm_strbuf b;
    gm_strbuf_init(&b);
    if (srv_parse_request((const char *)data + 1, size - 1, kind, &lim, model, fmt, &defaults, 1, &r, &err)) {
        CHECK(r.prompt != NULL);
        CHECK(r.n_stops >= 0 && r.n_stops <= SRV_MAX_STOPS);
        CHECK(r.n_images >= 0 && r.n_images <= lim.max_images);
        CHECK(r.sp.n_logit_bias == 0 || r.sp.logit_bias != NULL);
        for (size_t i = 0; i < r.sp.n_logit_bias; i++)
            CHECK(r.sp.logit_bias[i].token >= 0 && r.sp.logit_bias[i].token < gemma_model_vocab_size(model));
        srv_reply_head h = {.kind = kind, .id = "x", .created = 1, .model = r.model ? r.model : "m"};
        srv_usage u = {1, 2, 0};
        srv_completion_json(&b, &h, r.prompt, strlen(r.prompt), "stop", &u);
        parses_back(&b);
        srv_request_free(&r);
    } else {
        CHECK(err.status >= 400 && err.status < 600 && err.type && err.message[0]);
        srv_error_json(&b, &err);
        parses_back(&b);
    }
    gm_strbuf_free(&b);
    return 0;
}
