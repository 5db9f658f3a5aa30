/* fuzz_check.h - the fuzz targets' assertion: a failed invariant prints
 * where it failed and aborts, which libFuzzer reports as a crash with the input. */
#ifndef GEMMA_FUZZ_CHECK_H
#define GEMMA_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                             \
        }                                                                        \
    } while (0)

#endif
