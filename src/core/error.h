/* error.h - filling a caller's gemma_error with one readable line.
 *
 * Every failure in the library ends in gm_fail(), which formats the message,
 * keeps it on one line (file and field names included) and returns the code,
 * so call sites read `return gm_fail(err, GEMMA_ERR_FORMAT, "...")`. */
#ifndef GM_ERROR_H
#define GM_ERROR_H

#include "gemma.h"

#if defined(__GNUC__)
#define GM_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define GM_PRINTF(a, b)
#endif

gemma_status gm_fail(gemma_error *err, gemma_status code, const char *fmt, ...) GM_PRINTF(3, 4);
void gm_ok(gemma_error *err);

#endif
