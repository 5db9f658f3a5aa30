/* sampler.c - choosing the next token from logits.
 *
 * The usual controls, in HF generate's order: logit bias, penalties
 * (repetition as in CTRL/HF, presence and frequency as in OpenAI's API),
 * temperature, top-k, top-p, min-p, then one draw from a seeded xoshiro256**
 * stream so a run can be replayed.  All buffers are sized by the vocabulary
 * once; sampling itself allocates nothing and costs O(V) plus O(k log V) for
 * the candidates it keeps. */
#include "core/error.h"
#include "gemma.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct gemma_sampler {
    gemma_sampler_params p;
    gemma_logit_bias *bias;
    int vocab;
    uint64_t rng[4];

    /* penalties: occurrence counts over the window, and the distinct tokens seen */
    int32_t *count, *seen, *seen_at;   /* seen_at[t] = index in seen, or -1 */
    int n_seen;
    int32_t *window;                   /* ring of the last penalty_last_n tokens */
    int window_len, window_head;

    /* candidates */
    int32_t *idx;
    float *prob;
};

/* ================================================================ random */

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t next_u64(uint64_t *s) {
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

static double next_unit(uint64_t *s) { return (double)(next_u64(s) >> 11) * (1.0 / 9007199254740992.0); }

static void seed_rng(gemma_sampler *s) {
    uint64_t x = s->p.seed;
    for (int i = 0; i < 4; i++) s->rng[i] = splitmix64(&x);
}

/* ============================================================ life cycle */

gemma_sampler_params gemma_sampler_default_params(void) {
    gemma_sampler_params p;
    memset(&p, 0, sizeof p);
    p.top_p = 1.0f;
    p.repetition_penalty = 1.0f;
    return p;
}

gemma_status gemma_sampler_create(const gemma_sampler_params *params, int vocab, gemma_sampler **out,
                                  gemma_error *err) {
    gm_ok(err);
    if (!out) return gm_fail(err, GEMMA_ERR_ARG, "gemma_sampler_create: out is NULL");
    *out = NULL;
    gemma_sampler_params p = params ? *params : gemma_sampler_default_params();
    if (vocab < 1) return gm_fail(err, GEMMA_ERR_ARG, "sampler: vocab_size must be positive");
    if (!(p.temperature == p.temperature) || p.top_k < 0 || !(p.top_p >= 0 && p.top_p <= 1) ||
        !(p.min_p >= 0 && p.min_p <= 1) || !(p.repetition_penalty >= 0) || p.penalty_last_n < 0 ||
        !isfinite(p.presence_penalty) || !isfinite(p.frequency_penalty))
        return gm_fail(err, GEMMA_ERR_ARG,
                       "sampler: parameters out of range (temperature %g, top_k %d, top_p %g, min_p %g, "
                       "repetition_penalty %g)",
                       p.temperature, p.top_k, p.top_p, p.min_p, p.repetition_penalty);
    for (size_t i = 0; i < p.n_logit_bias; i++)
        if (p.logit_bias[i].token < 0 || p.logit_bias[i].token >= vocab || !(p.logit_bias[i].bias == p.logit_bias[i].bias))
            return gm_fail(err, GEMMA_ERR_ARG, "sampler: logit_bias token %d is outside the vocabulary [0, %d)",
                           p.logit_bias[i].token, vocab);
    gemma_sampler *s = calloc(1, sizeof *s);
    if (!s) return gm_fail(err, GEMMA_ERR_NOMEM, "sampler: out of memory");
    s->p = p;
    s->vocab = vocab;
    size_t v = (size_t)vocab;
    s->count = calloc(v, sizeof *s->count);
    s->seen = calloc(v, sizeof *s->seen);
    s->seen_at = malloc(v * sizeof *s->seen_at);
    s->idx = malloc(v * sizeof *s->idx);
    s->prob = malloc(v * sizeof *s->prob);
    s->window = p.penalty_last_n > 0 ? calloc((size_t)p.penalty_last_n, sizeof *s->window) : NULL;
    if (p.n_logit_bias) {
        s->bias = malloc(p.n_logit_bias * sizeof *s->bias);
        if (s->bias) memcpy(s->bias, p.logit_bias, p.n_logit_bias * sizeof *s->bias);
        s->p.logit_bias = s->bias;
    }
    if (!s->count || !s->seen || !s->seen_at || !s->idx || !s->prob || (p.penalty_last_n > 0 && !s->window) ||
        (p.n_logit_bias && !s->bias)) {
        gemma_sampler_free(s);
        return gm_fail(err, GEMMA_ERR_NOMEM, "sampler: out of memory");
    }
    gemma_sampler_reset(s);
    *out = s;
    return GEMMA_OK;
}

void gemma_sampler_free(gemma_sampler *s) {
    if (!s) return;
    free(s->bias);
    free(s->count);
    free(s->seen);
    free(s->seen_at);
    free(s->window);
    free(s->idx);
    free(s->prob);
    free(s);
}

void gemma_sampler_reset(gemma_sampler *s) {
    if (!s) return;
    memset(s->count, 0, (size_t)s->vocab * sizeof *s->count);
    memset(s->seen_at, 0xff, (size_t)s->vocab * sizeof *s->seen_at);
    s->n_seen = s->window_len = s->window_head = 0;
    seed_rng(s);
}

/* ============================================================= history */

static void count_add(gemma_sampler *s, int32_t t, int delta) {
    int before = s->count[t];
    s->count[t] += delta;
    if (before == 0 && s->count[t] > 0) {
        s->seen_at[t] = s->n_seen;
        s->seen[s->n_seen++] = t;
    } else if (before > 0 && s->count[t] == 0) {
        int at = s->seen_at[t], last = s->seen[--s->n_seen];
        s->seen[at] = last;
        s->seen_at[last] = at;
        s->seen_at[t] = -1;
    }
}

void gemma_sampler_accept(gemma_sampler *s, int32_t t) {
    if (!s || t < 0 || t >= s->vocab) return;
    int n = s->p.penalty_last_n;
    if (n > 0) {
        if (s->window_len == n) count_add(s, s->window[s->window_head], -1);
        else s->window_len++;
        s->window[s->window_head] = t;
        s->window_head = (s->window_head + 1) % n;
    }
    count_add(s, t, +1);
}

/* ============================================================ sampling */

static void apply_bias_and_penalties(gemma_sampler *s, float *logits) {
    for (size_t i = 0; i < s->p.n_logit_bias; i++) logits[s->p.logit_bias[i].token] += s->p.logit_bias[i].bias;
    float rp = s->p.repetition_penalty;
    int use_rp = rp > 0 && rp != 1.0f;
    for (int i = 0; i < s->n_seen; i++) {
        int32_t t = s->seen[i];
        float l = logits[t];
        if (use_rp) l = l < 0 ? l * rp : l / rp;
        l -= s->p.frequency_penalty * (float)s->count[t] + s->p.presence_penalty;
        logits[t] = l;
    }
}

static int32_t argmax(const float *x, int n) {
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best] || (x[best] != x[best] && x[i] == x[i])) best = i;
    return best;
}

/* Max-heap on prob over idx[0..n). */
static void sift_down(int32_t *idx, const float *key, int n, int i) {
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && key[idx[l]] > key[idx[m]]) m = l;
        if (r < n && key[idx[r]] > key[idx[m]]) m = r;
        if (m == i) return;
        int32_t t = idx[i];
        idx[i] = idx[m];
        idx[m] = t;
        i = m;
    }
}

/* Min-heap on key over idx[0..n) (for top-k selection). */
static void sift_down_min(int32_t *idx, const float *key, int n, int i) {
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && key[idx[l]] < key[idx[m]]) m = l;
        if (r < n && key[idx[r]] < key[idx[m]]) m = r;
        if (m == i) return;
        int32_t t = idx[i];
        idx[i] = idx[m];
        idx[m] = t;
        i = m;
    }
}

/* Heap sort of a candidate list into descending key order. */
static void sort_desc(int32_t *idx, const float *key, int n) {
    for (int i = n / 2 - 1; i >= 0; i--) sift_down_min(idx, key, n, i);
    for (int end = n - 1; end > 0; end--) {   /* min to the back -> descending order */
        int32_t t = idx[0];
        idx[0] = idx[end];
        idx[end] = t;
        sift_down_min(idx, key, end, 0);
    }
}

int32_t gemma_sampler_sample(gemma_sampler *s, float *logits) {
    int V = s->vocab;
    for (int i = 0; i < V; i++)
        if (logits[i] != logits[i]) logits[i] = -INFINITY;
    apply_bias_and_penalties(s, logits);
    if (!(s->p.temperature > 0)) return argmax(logits, V);

    float inv_t = 1.0f / s->p.temperature;
    float *p = s->prob;
    int32_t *idx = s->idx;
    int n = V, sorted = 0;

    /* top-k: keep the k largest logits, sorted descending */
    if (s->p.top_k > 0 && s->p.top_k < V) {
        int k = s->p.top_k;
        for (int i = 0; i < k; i++) idx[i] = i;
        for (int i = k / 2 - 1; i >= 0; i--) sift_down_min(idx, logits, k, i);
        for (int i = k; i < V; i++)
            if (logits[i] > logits[idx[0]]) {
                idx[0] = i;
                sift_down_min(idx, logits, k, 0);
            }
        sort_desc(idx, logits, k);
        n = k;
        sorted = 1;
    } else {
        for (int i = 0; i < V; i++) idx[i] = i;
    }

    /* softmax over the candidates (temperature applied) */
    float mx = -INFINITY;
    for (int i = 0; i < n; i++)
        if (logits[idx[i]] > mx) mx = logits[idx[i]];
    if (mx == -INFINITY) return argmax(logits, V);
    double total = 0;
    for (int i = 0; i < n; i++) {
        float e = expf((logits[idx[i]] - mx) * inv_t);
        p[idx[i]] = e;
        total += e;
    }
    for (int i = 0; i < n; i++) p[idx[i]] = (float)(p[idx[i]] / total);

    /* top-p: the smallest most-likely prefix with mass >= top_p */
    float top_p = s->p.top_p;
    if (top_p > 0 && top_p < 1) {
        if (!sorted) {   /* pop from a max-heap until the mass is reached: O(V + m log V) */
            for (int i = n / 2 - 1; i >= 0; i--) sift_down(idx, p, n, i);
            int heap = n, kept = 0;
            double mass = 0;
            while (heap > 0 && mass < top_p) {
                int32_t t = idx[0];
                idx[0] = idx[--heap];
                sift_down(idx, p, heap, 0);
                idx[heap] = t;   /* popped items collect at the back, largest last */
                mass += p[t];
                kept++;
            }
            for (int i = 0; i < kept / 2; i++) {   /* move them to the front, largest first */
                int32_t t = idx[n - 1 - i];
                idx[n - 1 - i] = idx[n - kept + i];
                idx[n - kept + i] = t;
            }
            memmove(idx, idx + n - kept, (size_t)kept * sizeof *idx);
            n = kept;
            sorted = 1;
        } else {
            double mass = 0;
            int kept = 0;
            while (kept < n && mass < top_p) mass += p[idx[kept++]];
            n = kept;
        }
    }

    /* min-p: drop tokens below min_p times the most likely one */
    if (s->p.min_p > 0) {
        float pmax = 0;
        for (int i = 0; i < n; i++)
            if (p[idx[i]] > pmax) pmax = p[idx[i]];
        float floor_p = s->p.min_p * pmax;
        int kept = 0;
        for (int i = 0; i < n; i++)
            if (p[idx[i]] >= floor_p) idx[kept++] = idx[i];
        n = kept;
    }

    double mass = 0;
    for (int i = 0; i < n; i++) mass += p[idx[i]];
    double u = next_unit(s->rng) * mass, acc = 0;
    for (int i = 0; i < n; i++) {
        acc += p[idx[i]];
        if (u < acc) return idx[i];
    }
    return idx[n - 1];
}
