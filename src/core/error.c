/* error.c - one-line error messages for gemma_error (see error.h). */
#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>

static void flatten_to_one_line(char *s) {
    for (; *s; s++)
        if (*s == '\n' || *s == '\r' || *s == '\t') *s = ' ';
}

gemma_status gm_fail(gemma_error *err, gemma_status code, const char *fmt, ...) {
    if (!err) return code;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    flatten_to_one_line(err->message);
    return code;
}

void gm_ok(gemma_error *err) {
    if (!err) return;
    err->code = GEMMA_OK;
    err->message[0] = 0;
}

const char *gemma_status_name(gemma_status code) {
    switch (code) {
    case GEMMA_OK: return "ok";
    case GEMMA_ERR_ARG: return "invalid argument";
    case GEMMA_ERR_IO: return "i/o error";
    case GEMMA_ERR_FORMAT: return "bad format";
    case GEMMA_ERR_UNSUPPORTED: return "unsupported";
    case GEMMA_ERR_NOMEM: return "out of memory";
    case GEMMA_ERR_CONTEXT_FULL: return "context full";
    case GEMMA_ERR_INTERNAL: return "internal error";
    case GEMMA_ERR_BUFFER: return "buffer too small";
    }
    return "unknown error";
}

const char *gemma_version(void) { return "0.1.0"; }
