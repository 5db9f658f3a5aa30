/* test_channel.c - the thought-channel splitter (gemma_channel_*): fed a
 * Gemma 4 reply one byte, one token or any cut at a time -- markers split
 * across pieces included -- it must give the same thought and answer text as
 * a naive whole-string strip_thinking written here from the template's
 * definition (split at "<channel|>", keep what precedes "<|channel>"). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemma.h"

typedef struct {
    char answer[4096], thought[4096];
    size_t na, nt;
} split_out;

/* Feed text in pieces ending at the given cut offsets (ascending, last = len), then flush. */
static void feed(const char *text, const size_t *cuts, size_t n_cuts, split_out *o) {
    gemma_channel_splitter *s = gemma_channel_splitter_create();
    assert_non_null(s);
    char a[512], t[512];
    size_t from = 0, na, nt;
    o->na = o->nt = 0;
    for (size_t i = 0; i < n_cuts; i++) {
        size_t len = cuts[i] - from;
        assert_true(len + GEMMA_CHANNEL_HOLD <= sizeof a);
        gemma_channel_push(s, text + from, len, a, &na, t, &nt);
        assert_true(na <= len + GEMMA_CHANNEL_HOLD && nt <= len + GEMMA_CHANNEL_HOLD);
        memcpy(o->answer + o->na, a, na);
        memcpy(o->thought + o->nt, t, nt);
        o->na += na;
        o->nt += nt;
        from = cuts[i];
    }
    gemma_channel_flush(s, a, &na, t, &nt);
    memcpy(o->answer + o->na, a, na);
    memcpy(o->thought + o->nt, t, nt);
    o->na += na;
    o->nt += nt;
    o->answer[o->na] = o->thought[o->nt] = 0;
    assert_int_equal(gemma_channel_in_thought(s), 0);   /* flush starts over */
    gemma_channel_splitter_free(s);
}

static void feed_bytes(const char *text, split_out *o) {
    size_t n = strlen(text), cuts[2048];
    for (size_t i = 0; i < n; i++) cuts[i] = i + 1;
    feed(text, cuts, n, o);
}

/* The template's strip_thinking before its trim, the obvious way. */
static void strip_thinking(const char *s, char *out) {
    static const char open[] = "<|channel>", close[] = "<channel|>";
    size_t n = 0;
    for (const char *p = s;;) {
        const char *end = strstr(p, close);
        size_t part = end ? (size_t)(end - p) : strlen(p);
        char piece[4096];
        memcpy(piece, p, part);
        piece[part] = 0;
        char *cut = strstr(piece, open);
        size_t keep = cut ? (size_t)(cut - piece) : part;
        memcpy(out + n, piece, keep);
        n += keep;
        if (!end) break;
        p = end + sizeof close - 1;
    }
    out[n] = 0;
}

static void test_reply_split(void **state) {
    (void)state;
    const char *reply = "<|channel>thought\nThe user greets me.<channel|>Hello! How can I help?";
    split_out o;
    feed_bytes(reply, &o);
    assert_string_equal(o.thought, "thought\nThe user greets me.");
    assert_string_equal(o.answer, "Hello! How can I help?");
    size_t whole = strlen(reply);
    feed(reply, &whole, 1, &o);
    assert_string_equal(o.answer, "Hello! How can I help?");
    /* the markers cut inside, as pieces of a text stream may be */
    size_t cuts[] = {3, 6, 14, 40, 44, 47, strlen(reply)};
    feed(reply, cuts, sizeof cuts / sizeof cuts[0], &o);
    assert_string_equal(o.thought, "thought\nThe user greets me.");
    assert_string_equal(o.answer, "Hello! How can I help?");
}

static void test_every_cut(void **state) {
    (void)state;
    const char *reply = "a<|channel>t1<channel|>b<channel|>c<|channel>x<|channel>y<channel|><|chan";
    char want[256];
    strip_thinking(reply, want);
    size_t n = strlen(reply);
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j < n; j++) {
            size_t cuts[3] = {i, j, n};
            split_out o;
            feed(reply, cuts, 3, &o);
            if (strcmp(o.answer, want) != 0) fail_msg("cuts %zu,%zu: answer '%s', want '%s'", i, j, o.answer, want);
            assert_string_equal(o.thought, "t1xy");
        }
}

static void test_partial_markers_held_then_flushed(void **state) {
    (void)state;
    gemma_channel_splitter *s = gemma_channel_splitter_create();
    char a[64], t[64];
    size_t na, nt;
    gemma_channel_push(s, "ok <|chan", 9, a, &na, t, &nt);
    assert_int_equal(na, 3);   /* "ok " out, "<|chan" held */
    assert_memory_equal(a, "ok ", 3);
    assert_int_equal(nt, 0);
    gemma_channel_push(s, "nel>", 4, a, &na, t, &nt);
    assert_int_equal(na + nt, 0);
    assert_int_equal(gemma_channel_in_thought(s), 1);
    gemma_channel_push(s, "thinking <chan", 14, a, &na, t, &nt);
    assert_int_equal(nt, 9);
    assert_memory_equal(t, "thinking ", 9);
    /* not a marker after all: the held bytes go on as thought text */
    gemma_channel_push(s, "ge", 2, a, &na, t, &nt);
    assert_int_equal(nt, 7);
    assert_memory_equal(t, "<change", 7);
    /* a stream ending inside a thought with a marker prefix: flushed as thought */
    gemma_channel_push(s, " <chann", 7, a, &na, t, &nt);
    gemma_channel_flush(s, a, &na, t, &nt);
    assert_int_equal(na, 0);
    assert_int_equal(nt, 6);
    assert_memory_equal(t, "<chann", 6);
    /* thought may be NULL: dropped */
    gemma_channel_push(s, "<|channel>secret<channel|>kept", 30, a, &na, NULL, NULL);
    assert_int_equal(na, 4);
    assert_memory_equal(a, "kept", 4);
    gemma_channel_splitter_free(s);
}

/* Random streams over marker fragments: the answer always equals strip_thinking's. */
static void test_random_against_strip_thinking(void **state) {
    (void)state;
    static const char *const frags[] = {"<|channel>", "<channel|>", "<|chan", "nel>", "<chan", "nel|>", "<", "|",
                                        ">", "a", " ", "\n", "thought\n", "<<|channel>", "é"};
    uint32_t seed = 6;
    for (int round = 0; round < 3000; round++) {
        char text[1024] = "";
        int k = (int)(seed % 12);
        for (int i = 0; i < k; i++) {
            seed = seed * 1664525u + 1013904223u;
            strcat(text, frags[(seed >> 8) % (sizeof frags / sizeof frags[0])]);
        }
        size_t n = strlen(text), cuts[1024], m = 0;
        for (size_t i = 1; i <= n; i++) {
            seed = seed * 1664525u + 1013904223u;
            if (i == n || (seed >> 16) % 3 == 0) cuts[m++] = i;
        }
        char want[1024];
        strip_thinking(text, want);
        split_out o;
        feed(text, cuts, m, &o);
        if (strcmp(o.answer, want) != 0) fail_msg("round %d '%s': answer '%s', want '%s'", round, text, o.answer, want);
        assert_true(o.na + o.nt <= n);   /* only markers are dropped */
        seed = seed * 1664525u + 1013904223u;
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reply_split),
        cmocka_unit_test(test_every_cut),
        cmocka_unit_test(test_partial_markers_held_then_flushed),
        cmocka_unit_test(test_random_against_strip_thinking),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
