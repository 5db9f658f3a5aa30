/* probe.h - what this machine can do: FMA peak and memory read bandwidth.
 *
 * Benchmarks report their speed as a fraction of these two limits (decode is
 * bound by bytes read per token, prefill and vision by multiply-adds), and
 * shared, throttled or virtualized machines differ from their data sheet, so
 * both are measured in the same run as the numbers they judge. */
#ifndef GM_PROBE_H
#define GM_PROBE_H

#include <stddef.h>

#include "core/threadpool.h"

/* Independent FMA chains, `iters` rounds of 12 vector FMAs per chain group:
 * acc = acc * m + c on every lane, lanes of one ISA's widest vector.  The
 * value returned (the sum of lane 0 of every accumulator) is the same for
 * every ISA, so the twins can be checked against the scalar one.  `isa` is a
 * kernel table name ("scalar", "avx2", "avx512", "neon"); lanes per vector go
 * to *lanes (0 if this build or CPU cannot run it). */
float gm_probe_fma_loop(const char *isa, long iters, int *lanes);

/* Sustained f32 FMA rate of the pool's threads with the best ISA (GFLOP/s,
 * 2 flops per multiply-add), over about `seconds`. */
double gm_probe_fma_gflops(gm_pool *pool, double seconds);

/* Read bandwidth (GB/s, 1e9 bytes) of the pool's threads streaming through
 * `bytes` of memory (several times the caches), best of `reps` passes.
 * Returns < 0 if the buffer cannot be allocated. */
double gm_probe_read_gbs(gm_pool *pool, size_t bytes, int reps);

#endif
