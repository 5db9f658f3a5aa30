/* cmd_eval.c - `gemma eval pubmedqa`: accuracy of a model on the 1,000
 * expert-labelled PubMedQA questions (or the official 500-question test
 * split), so that checkpoints and quantizations of one model can be compared
 * on a clinical task with numbers anyone can reproduce.
 *
 * Each question and its abstract's contexts go through the model's chat
 * format; the answer is read off the model's probabilities for the three
 * answers after "<start_of_turn>model\n" (deterministic; see
 * pqa_score_answers for exactly what is scored), or, with --generate, from a
 * short greedy reply.  Every item becomes one JSONL line in the results file,
 * written as soon as it is known, so a run can be stopped and --resume'd. */
#include "args.h"
#include "common.h"
#include "eval_common.h"
#include "core/json.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const help =
    "usage: gemma eval pubmedqa [-m MODEL] [options]\n"
    "\n"
    "  -m, --model PATH     the model (default: as 'gemma run')\n"
    "  --data DIR           ori_pqal.json and test_ground_truth.json (default: data/pubmedqa of the repo)\n"
    "  --split test|all     the official 500-question test set (default) or all 1,000 labelled questions\n"
    "  --limit N            only the first N questions of the split, in ori_pqal.json's order\n"
    "  -o, --output FILE    per-item results, one JSON object per line (JSONL)\n"
    "  --resume             keep FILE's items and evaluate only the others\n"
    "  --force              overwrite FILE\n"
    "  --generate           answer by a greedy reply (first word yes/no/maybe, else 'invalid')\n"
    "                       instead of comparing the three answers' probabilities\n"
    "  --max-new N          tokens a --generate reply may have (default 8)\n"
    "  --json               print the summary as JSON\n"
    "  -t, --threads N      worker threads (default: all CPUs)\n"
    "  --ctx N              context size (default 4096)\n"
    "  --numerics MODE      auto | exact | llamacpp | int8 (see 'gemma run --help')\n"
    "  --kv-type TYPE       auto | f32 | f16 | bf16: KV cache storage (see 'gemma run --help')\n"
    "\n"
    "Scoring: for each answer a in (yes, no, maybe), log P(a) = log(P(\"a\") + P(\"A\")), the probability of\n"
    "the continuation spelled in lower case or capitalised right after the prompt, each the product of its\n"
    "tokens' probabilities (multi-token spellings are evaluated token by token).  The prediction is the\n"
    "answer with the largest; p_yes, p_no, p_maybe are the three renormalised to sum to 1.\n";

enum { N_ANSWERS = 3, INVALID = N_ANSWERS, MAX_ITEMS = 100000 };
static const char *const answer_names[N_ANSWERS + 1] = {"yes", "no", "maybe", "invalid"};

/* ================================================================ dataset */

typedef struct {
    const char *id;
    const gm_json *item;   /* its ori_pqal.json object */
    int gold;
} pqa_item;

typedef struct {
    gm_json_doc *pqal, *truth;
    pqa_item *items;
    size_t n;
} pqa_data;

static int answer_index(const char *s) {
    for (int a = 0; a < N_ANSWERS; a++)
        if (s && strcmp(s, answer_names[a]) == 0) return a;
    return -1;
}

static gm_json_doc *load_json(const char *path) {
    size_t len;
    char *text = cli_read_text_file(path, &len);
    if (!text) return NULL;
    char msg[256];
    gm_json_doc *doc = gm_json_parse(text, len, NULL, msg, sizeof msg);
    free(text);
    if (!doc) cli_error("%s: %s", path, msg);
    return doc;
}

/* Every field the prompt needs, checked once, so that a bad item fails before any work. */
static int check_item(const char *path, const char *id, const gm_json *item) {
    if (!gm_json_is(item, GM_JSON_OBJECT)) return cli_error("%s: item %s is not an object", path, id);
    if (!gm_json_string(gm_json_get(item, "QUESTION")))
        return cli_error("%s: item %s: field QUESTION is missing or not a string", path, id);
    const gm_json *ctx = gm_json_get(item, "CONTEXTS"), *labels = gm_json_get(item, "LABELS");
    if (!gm_json_is(ctx, GM_JSON_ARRAY) || gm_json_count(ctx) == 0)
        return cli_error("%s: item %s: field CONTEXTS is missing or not a non-empty array", path, id);
    for (size_t i = 0; i < gm_json_count(ctx); i++)
        if (!gm_json_string(gm_json_at(ctx, i)))
            return cli_error("%s: item %s: CONTEXTS[%zu] is not a string", path, id, i);
    if (labels && (!gm_json_is(labels, GM_JSON_ARRAY) || gm_json_count(labels) != gm_json_count(ctx)))
        return cli_error("%s: item %s: field LABELS is not an array as long as CONTEXTS", path, id);
    for (size_t i = 0; labels && i < gm_json_count(labels); i++)
        if (!gm_json_string(gm_json_at(labels, i)))
            return cli_error("%s: item %s: LABELS[%zu] is not a string", path, id, i);
    return CLI_OK;
}

static void free_data(pqa_data *d) {
    free(d->items);
    gm_json_free(d->pqal);
    gm_json_free(d->truth);
    memset(d, 0, sizeof *d);
}

/* The split's items in ori_pqal.json's order (test: those test_ground_truth.json labels, with its labels).
 * That order, unlike test_ground_truth.json's (sorted by label), makes a --limit prefix a fair sample. */
static int load_data(const char *dir, int test_split, size_t limit, pqa_data *d) {
    char pqal_path[4096], truth_path[4096];
    memset(d, 0, sizeof *d);
    snprintf(pqal_path, sizeof pqal_path, "%s/ori_pqal.json", dir);
    snprintf(truth_path, sizeof truth_path, "%s/test_ground_truth.json", dir);
    if (!(d->pqal = load_json(pqal_path))) return CLI_FAIL;
    const gm_json *all = gm_json_root(d->pqal), *truth = NULL;
    if (!gm_json_is(all, GM_JSON_OBJECT)) return cli_error("%s: not an object of items by PubMed id", pqal_path);
    if (test_split) {
        if (!(d->truth = load_json(truth_path))) return CLI_FAIL;
        truth = gm_json_root(d->truth);
        if (!gm_json_is(truth, GM_JSON_OBJECT)) return cli_error("%s: not an object of labels by PubMed id", truth_path);
        for (size_t i = 0; i < gm_json_count(truth); i++)
            if (!gm_json_get(all, gm_json_at(truth, i)->key))
                return cli_error("%s: item %s is not in %s", truth_path, gm_json_at(truth, i)->key, pqal_path);
    }
    size_t n = test_split ? gm_json_count(truth) : gm_json_count(all);
    if (limit && limit < n) n = limit;
    if (n == 0) return cli_error("%s: no items", test_split ? truth_path : pqal_path);
    if (!(d->items = calloc(n, sizeof *d->items))) return cli_error("out of memory");
    for (size_t i = 0; i < gm_json_count(all) && d->n < n; i++) {
        const gm_json *entry = gm_json_at(all, i), *label_node = gm_json_get(truth, entry->key);
        if (test_split && !label_node) continue;
        pqa_item *it = &d->items[d->n++];
        it->id = entry->key;
        it->item = entry;
        if (check_item(pqal_path, it->id, it->item) != CLI_OK) return CLI_FAIL;
        const char *label = test_split ? gm_json_string(label_node) : gm_json_string(gm_json_get(entry, "final_decision"));
        if ((it->gold = answer_index(label)) < 0)
            return cli_error("%s: item %s: %s is not yes, no or maybe", test_split ? truth_path : pqal_path, it->id,
                             test_split ? "the label" : "field final_decision");
    }
    return CLI_OK;
}

/* ================================================================= prompt */

typedef struct {
    char *buf;
    size_t len, cap;
} strbuf;

static int sb_add(strbuf *b, const char *s) {
    size_t n = strlen(s);
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1) cap *= 2;
        char *grown = realloc(b->buf, cap);
        if (!grown) return 0;
        b->buf = grown;
        b->cap = cap;
    }
    memcpy(b->buf + b->len, s, n + 1);
    b->len += n;
    return 1;
}

/* The user message: an instruction, the abstract's labelled contexts, the question. */
static char *user_message(const gm_json *item) {
    const gm_json *ctx = gm_json_get(item, "CONTEXTS"), *labels = gm_json_get(item, "LABELS");
    strbuf b = {0};
    int ok = sb_add(&b, "Answer the research question using the context from the abstract. "
                        "Reply with one word: yes, no, or maybe.\n\nContext:\n");
    for (size_t i = 0; ok && i < gm_json_count(ctx); i++) {
        if (labels) ok = sb_add(&b, gm_json_string(gm_json_at(labels, i))) && sb_add(&b, ": ");
        ok = ok && sb_add(&b, gm_json_string(gm_json_at(ctx, i))) && sb_add(&b, "\n");
    }
    ok = ok && sb_add(&b, "\nQuestion: ") && sb_add(&b, gm_json_string(gm_json_get(item, "QUESTION")));
    if (ok) return b.buf;
    free(b.buf);
    return NULL;
}

static char *render_prompt(const cli_assets *a, const gm_json *item) {
    char *user = user_message(item);
    if (!user) return NULL;
    gemma_chat_message msg = {.role = "user", .content = user};
    gemma_error err;
    size_t len = 0;
    gemma_chat_render(a->fmt, &msg, 1, 1, NULL, 0, &len, &err);
    char *text = malloc(len + 1);
    if (text && gemma_chat_render(a->fmt, &msg, 1, 1, text, len + 1, &len, &err) != GEMMA_OK) {
        cli_error("%s", err.message);
        free(text);
        text = NULL;
    }
    free(user);
    return text;
}

/* ================================================================ scoring */

enum { N_SPELLINGS = 2, MAX_ANSWER_TOKENS = 8 };

typedef struct {
    int32_t ids[MAX_ANSWER_TOKENS];
    size_t n;
} spelling;

typedef struct {
    spelling sp[N_ANSWERS][N_SPELLINGS];
} answer_set;

static int tokenize_answers(const gemma_tokenizer *tok, answer_set *as) {
    for (int a = 0; a < N_ANSWERS; a++) {
        char word[16];
        snprintf(word, sizeof word, "%s", answer_names[a]);
        for (int s = 0; s < N_SPELLINGS; s++) {
            if (s == 1) word[0] = (char)toupper((unsigned char)word[0]);
            gemma_error err;
            spelling *sp = &as->sp[a][s];
            if (gemma_tokenize(tok, word, strlen(word), 0, sp->ids, MAX_ANSWER_TOKENS, &sp->n, &err) != GEMMA_OK)
                return cli_error("tokenizing the answer '%s': %s", word, err.message);
            if (sp->n == 0) return cli_error("the answer '%s' tokenizes to nothing", word);
        }
    }
    return CLI_OK;
}

static double log_add(double x, double y) {
    if (x < y) {
        double t = x;
        x = y;
        y = t;
    }
    return isinf(y) ? x : x + log1p(exp(y - x));
}

/* logp[a] = log sum over spellings of P(spelling | prompt).  `last` holds the
 * logits after the prompt (the session sits at the prompt's end); a spelling
 * of k > 1 tokens also evaluates its first k-1 tokens, then rewinds. */
static int pqa_score_answers(gemma_session *s, const answer_set *as, const float *last, size_t vocab, float *rows,
                             double logp[N_ANSWERS]) {
    gemma_error err;
    int at = gemma_session_position(s);
    double lse_last = cli_logsumexp(last, vocab);
    for (int a = 0; a < N_ANSWERS; a++) {
        logp[a] = -INFINITY;
        for (int k = 0; k < N_SPELLINGS; k++) {
            const spelling *sp = &as->sp[a][k];
            double lp = (double)last[sp->ids[0]] - lse_last;
            if (sp->n > 1) {
                if (gemma_session_eval(s, sp->ids, sp->n - 1, GEMMA_LOGITS_ALL, rows, &err) != GEMMA_OK)
                    return cli_error("%s", err.message);
                for (size_t t = 1; t < sp->n; t++) {
                    const float *r = rows + (t - 1) * vocab;
                    lp += (double)r[sp->ids[t]] - cli_logsumexp(r, vocab);
                }
                if (gemma_session_rewind(s, at, &err) != GEMMA_OK) return cli_error("%s", err.message);
            }
            logp[a] = log_add(logp[a], lp);
        }
    }
    return CLI_OK;
}

/* The first word of a reply, if it is yes/no/maybe (any case, after spaces and markup). */
static int parse_reply(const char *reply) {
    const char *p = reply;
    while (*p && !isalpha((unsigned char)*p)) p++;
    char word[8];
    size_t n = 0;
    while (isalpha((unsigned char)p[n]) && n < sizeof word - 1) {
        word[n] = (char)tolower((unsigned char)p[n]);
        n++;
    }
    word[n] = 0;
    if (isalpha((unsigned char)p[n])) return INVALID;
    int a = answer_index(word);
    return a < 0 ? INVALID : a;
}

/* Greedy continuation from the prompt's logits until a stop token or max_new tokens. */
static int generate_reply(gemma_session *s, const cli_assets *a, float *logits, size_t vocab, int max_new,
                          char *reply, size_t cap) {
    int32_t stops[16], ids[64];
    size_t n_stop = gemma_model_stop_tokens(a->model, stops, 16), n = 0;
    gemma_error err;
    for (int step = 0; step < max_new && n < 64; step++) {
        int32_t t = (int32_t)cli_argmax(logits, vocab);
        int is_stop = 0;
        for (size_t k = 0; k < n_stop; k++) is_stop |= stops[k] == t;
        if (is_stop) break;
        ids[n++] = t;
        if (step + 1 == max_new) break;
        if (gemma_session_eval(s, &t, 1, GEMMA_LOGITS_LAST, logits, &err) != GEMMA_OK)
            return cli_error("%s", err.message);
    }
    size_t len;
    if (gemma_detokenize(a->tok, ids, n, GEMMA_DETOKENIZE_SKIP_SPECIAL, reply, cap, &len, &err) != GEMMA_OK)
        return cli_error("%s", err.message);
    return CLI_OK;
}

/* ================================================================ results */

typedef struct {
    int done, gold, pred;
    double ms;
    int n_prompt;
} item_result;

typedef struct {
    const char *method;
    size_t n;
    int confusion[N_ANSWERS][N_ANSWERS + 1];   /* [gold][pred]; the last column counts invalid replies */
    double accuracy, macro_f1, f1[N_ANSWERS];
    double ms_mean, ms_p50, ms_p95, ms_total, prompt_tokens_mean;
} summary;

static void summarize(const item_result *r, size_t n, summary *sm) {
    double *ms = malloc((n ? n : 1) * sizeof *ms);
    size_t m = 0, tokens = 0, correct = 0;
    for (size_t i = 0; i < n; i++) {
        if (!r[i].done) continue;
        sm->confusion[r[i].gold][r[i].pred]++;
        correct += r[i].gold == r[i].pred;
        tokens += (size_t)r[i].n_prompt;
        sm->ms_total += r[i].ms;
        if (ms) ms[m] = r[i].ms;
        m++;
    }
    sm->n = m;
    sm->accuracy = m ? (double)correct / (double)m : 0;
    sm->macro_f1 = 0;
    for (int c = 0; c < N_ANSWERS; c++) {
        int tp = sm->confusion[c][c], gold = 0, pred = 0;
        for (int k = 0; k <= N_ANSWERS; k++) gold += sm->confusion[c][k];
        for (int g = 0; g < N_ANSWERS; g++) pred += sm->confusion[g][c];
        double precision = pred ? (double)tp / pred : 0, recall = gold ? (double)tp / gold : 0;
        sm->f1[c] = precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0;
        sm->macro_f1 += sm->f1[c] / N_ANSWERS;
    }
    sm->prompt_tokens_mean = m ? (double)tokens / (double)m : 0;
    sm->ms_mean = m ? sm->ms_total / (double)m : 0;
    if (ms && m) {
        cli_sort_doubles(ms, m);
        sm->ms_p50 = cli_percentile_sorted(ms, m, 0.5);
        sm->ms_p95 = cli_percentile_sorted(ms, m, 0.95);
    }
    free(ms);
}

static void print_summary(const summary *sm, const char *model, const char *split, int json) {
    int with_invalid = !strcmp(sm->method, "generate");
    if (json) {
        printf("{\"task\":\"pubmedqa\",\"model\":");
        cli_json_string(stdout, model);
        printf(",\"split\":\"%s\",\"method\":\"%s\",\"n\":%zu,\"accuracy\":%.6f,\"macro_f1\":%.6f,", split,
               sm->method, sm->n, sm->accuracy, sm->macro_f1);
        printf("\"f1\":{\"yes\":%.6f,\"no\":%.6f,\"maybe\":%.6f},\"labels\":[\"yes\",\"no\",\"maybe\",\"invalid\"],",
               sm->f1[0], sm->f1[1], sm->f1[2]);
        printf("\"confusion\":[");
        for (int g = 0; g < N_ANSWERS; g++)
            printf("%s[%d,%d,%d,%d]", g ? "," : "", sm->confusion[g][0], sm->confusion[g][1], sm->confusion[g][2],
                   sm->confusion[g][3]);
        printf("],\"latency_ms\":{\"mean\":%.1f,\"p50\":%.1f,\"p95\":%.1f,\"total\":%.1f},\"prompt_tokens_mean\":%.1f}\n",
               sm->ms_mean, sm->ms_p50, sm->ms_p95, sm->ms_total, sm->prompt_tokens_mean);
        return;
    }
    printf("PubMedQA (%s split), %zu items, answers by %s: %s\n", split, sm->n,
           with_invalid ? "greedy reply" : "yes/no/maybe probabilities", model);
    printf("accuracy %.4f   macro-F1 %.4f   (F1 yes %.3f, no %.3f, maybe %.3f)\n", sm->accuracy, sm->macro_f1,
           sm->f1[0], sm->f1[1], sm->f1[2]);
    printf("confusion (rows: gold, columns: predicted)\n        %6s %6s %6s%s\n", "yes", "no", "maybe",
           with_invalid ? " invalid" : "");
    for (int g = 0; g < N_ANSWERS; g++) {
        printf("  %-5s %6d %6d %6d", answer_names[g], sm->confusion[g][0], sm->confusion[g][1], sm->confusion[g][2]);
        if (with_invalid) printf(" %7d", sm->confusion[g][3]);
        putchar('\n');
    }
    printf("latency per item: mean %.0f ms, p50 %.0f ms, p95 %.0f ms; prompt %.0f tokens on average; total %.1f s\n",
           sm->ms_mean, sm->ms_p50, sm->ms_p95, sm->prompt_tokens_mean, sm->ms_total / 1e3);
}

/* An existing results file: its items are taken as done (they must be of this
 * split's items and method).  A last line cut off by a kill is dropped. */
static int load_results(const char *path, const pqa_data *d, const char *method, item_result *r, long *keep_bytes) {
    size_t len;
    char *text = cli_read_text_file(path, &len);
    if (!text) return CLI_FAIL;
    int rc = CLI_OK, line_no = 0;
    *keep_bytes = 0;
    for (char *line = text; rc == CLI_OK && *line;) {
        char *nl = strchr(line, '\n');
        line_no++;
        if (!nl) break;   /* unterminated: the run stopped while writing it */
        char msg[256];
        gm_json_doc *doc = gm_json_parse(line, (size_t)(nl - line), NULL, msg, sizeof msg);
        const gm_json *o = doc ? gm_json_root(doc) : NULL;
        const char *id = gm_json_string(gm_json_get(o, "id")), *m = gm_json_string(gm_json_get(o, "method"));
        const char *pred = gm_json_string(gm_json_get(o, "pred"));
        double ms = 0, n_prompt = 0;
        size_t i = 0;
        while (id && i < d->n && strcmp(d->items[i].id, id) != 0) i++;
        if (!doc) rc = cli_error("%s: line %d: %s", path, line_no, msg);
        else if (!id || !m || !pred || !gm_json_number(gm_json_get(o, "ms"), &ms) ||
                 !gm_json_number(gm_json_get(o, "n_prompt"), &n_prompt))
            rc = cli_error("%s: line %d: not a result (needs id, method, pred, ms, n_prompt)", path, line_no);
        else if (strcmp(m, method) != 0)
            rc = cli_error("%s: line %d: method '%s', but this run's is '%s' (use another -o)", path, line_no, m, method);
        else if (i == d->n)
            rc = cli_error("%s: line %d: item %s is not in this split (or beyond --limit)", path, line_no, id);
        else {
            int p = !strcmp(pred, "invalid") ? INVALID : answer_index(pred);
            if (p < 0) rc = cli_error("%s: line %d: pred '%s' is not yes, no, maybe or invalid", path, line_no, pred);
            else r[i] = (item_result){1, d->items[i].gold, p, ms, (int)n_prompt};
        }
        gm_json_free(doc);
        line = nl + 1;
        *keep_bytes = (long)(line - text);
    }
    free(text);
    return rc;
}

static void write_result(FILE *f, const pqa_item *it, const char *method, const item_result *r,
                         const double logp[N_ANSWERS], const char *reply) {
    double max = fmax(logp[0], fmax(logp[1], logp[2])), z = 0, p[N_ANSWERS];
    for (int a = 0; a < N_ANSWERS; a++) z += exp(logp[a] - max);
    for (int a = 0; a < N_ANSWERS; a++) p[a] = exp(logp[a] - max) / z;
    fprintf(f, "{\"id\":\"%s\",\"gold\":\"%s\",\"pred\":\"%s\",\"method\":\"%s\"", it->id, answer_names[it->gold],
            answer_names[r->pred], method);
    fprintf(f, ",\"p_yes\":%.6g,\"p_no\":%.6g,\"p_maybe\":%.6g,\"logp_yes\":%.6f,\"logp_no\":%.6f,\"logp_maybe\":%.6f",
            p[0], p[1], p[2], logp[0], logp[1], logp[2]);
    if (reply) {
        fputs(",\"reply\":", f);
        cli_json_string(f, reply);
    }
    fprintf(f, ",\"n_prompt\":%d,\"ms\":%.1f}\n", r->n_prompt, r->ms);
    fflush(f);
}

/* ==================================================================== run */

typedef struct {
    const char *model, *data_dir, *out_path;
    int test_split, resume, force, generate, max_new;
    long limit;
    cli_eval_flags f;   /* --ctx, --json, -t, --numerics, --kv-type (-f is not taken) */
} eval_opts;

static int eval_item(gemma_session *s, const cli_assets *a, const answer_set *as, const eval_opts *o,
                     const pqa_item *it, float *logits, float *rows, size_t vocab, item_result *r,
                     double logp[N_ANSWERS], char *reply, size_t reply_cap) {
    double t0 = cli_now();
    char *text = render_prompt(a, it->item);
    int32_t *ids = NULL;
    size_t n = 0;
    gemma_error err;
    int rc = CLI_FAIL;
    if (!text) {
        cli_error("item %s: cannot build the prompt", it->id);
        goto done;
    }
    if (cli_tokenize(a->tok, text, strlen(text), 0, &ids, &n) != CLI_OK) goto done;
    gemma_session_reset(s);
    if (n + MAX_ANSWER_TOKENS + (size_t)o->max_new > (size_t)gemma_session_context_size(s)) {
        cli_error("item %s: the prompt is %zu tokens; the context holds %d (use --ctx)", it->id, n,
                  gemma_session_context_size(s));
        goto done;
    }
    if (gemma_session_eval(s, ids, n, GEMMA_LOGITS_LAST, logits, &err) != GEMMA_OK) {
        cli_error("item %s: %s", it->id, err.message);
        goto done;
    }
    if (pqa_score_answers(s, as, logits, vocab, rows, logp) != CLI_OK) goto done;
    int best = 0;
    for (int k = 1; k < N_ANSWERS; k++)
        if (logp[k] > logp[best]) best = k;
    r->pred = best;
    if (o->generate) {
        if (generate_reply(s, a, logits, vocab, o->max_new, reply, reply_cap) != CLI_OK) goto done;
        r->pred = parse_reply(reply);
    }
    r->done = 1;
    r->gold = it->gold;
    r->n_prompt = (int)n;
    r->ms = (cli_now() - t0) * 1e3;
    rc = CLI_OK;
done:
    free(ids);
    free(text);
    return rc;
}

static int parse_eval_args(int argc, char **argv, eval_opts *o) {
    const char *v;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        int r = strcmp(a, "-f") && strcmp(a, "--file") ? cli_parse_eval_flag(argc, argv, &i, "eval", &o->f) : 0;
        if (r < 0) return CLI_USAGE;
        if (r > 0) continue;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!(o->model = cli_value(argc, argv, &i, "eval"))) return CLI_USAGE;
        } else if (!strcmp(a, "--data")) {
            if (!(o->data_dir = cli_value(argc, argv, &i, "eval"))) return CLI_USAGE;
        } else if (!strcmp(a, "--split")) {
            if (!(v = cli_value(argc, argv, &i, "eval"))) return CLI_USAGE;
            if (strcmp(v, "test") && strcmp(v, "all")) return cli_usage_error("eval", "bad --split '%s' (test or all)", v);
            o->test_split = !strcmp(v, "test");
        } else if (!strcmp(a, "--limit")) {
            if (!(v = cli_value(argc, argv, &i, "eval"))) return CLI_USAGE;
            if (!cli_parse_int(v, 1, MAX_ITEMS, &o->limit)) return cli_usage_error("eval", "bad --limit '%s'", v);
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (!(o->out_path = cli_value(argc, argv, &i, "eval"))) return CLI_USAGE;
        } else if (!strcmp(a, "--resume")) {
            o->resume = 1;
        } else if (!strcmp(a, "--force")) {
            o->force = 1;
        } else if (!strcmp(a, "--generate")) {
            o->generate = 1;
        } else if (!strcmp(a, "--max-new")) {
            long n;
            if (!(v = cli_value(argc, argv, &i, "eval"))) return CLI_USAGE;
            if (!cli_parse_int(v, 1, 64, &n)) return cli_usage_error("eval", "bad --max-new '%s' (1..64)", v);
            o->max_new = (int)n;
        } else {
            return cli_usage_error("eval", "unknown option '%s'", a);
        }
    }
    if (o->f.ctx < 16) return cli_usage_error("eval", "--ctx must be at least 16 (got %ld)", o->f.ctx);
    if (o->resume && !o->out_path) return cli_usage_error("eval", "--resume needs -o FILE");
    if (o->out_path && cli_check_results_path(o->out_path, o->resume, o->force, "eval") != CLI_OK) return CLI_USAGE;
    return CLI_OK;
}

int cmd_eval(int argc, char **argv) {
    if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        fputs(help, stdout);
        return CLI_OK;
    }
    if (argc < 2) return cli_usage_error("eval", "missing the task (pubmedqa)");
    if (strcmp(argv[1], "pubmedqa") != 0) return cli_usage_error("eval", "unknown task '%s' (pubmedqa)", argv[1]);
    for (int i = 2; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(help, stdout);
            return CLI_OK;
        }
    eval_opts o = {.test_split = 1, .max_new = 8, .f = {.ctx = 4096}};
    int prc = parse_eval_args(argc, argv, &o);
    if (prc != CLI_OK) return prc;
    if (!(o.model = cli_model_or_default(o.model, "eval"))) return CLI_USAGE;
    const char *data_dir = o.data_dir ? o.data_dir : cli_repo_path("data/pubmedqa");
    const char *method = o.generate ? "generate" : "score";

    pqa_data d;
    if (load_data(data_dir, o.test_split, (size_t)o.limit, &d) != CLI_OK) {
        free_data(&d);
        return CLI_FAIL;
    }
    int rc = CLI_FAIL;
    cli_assets a = {0};
    gemma_session *s = NULL;
    float *logits = NULL, *rows = NULL;
    FILE *out = NULL;
    item_result *results = calloc(d.n, sizeof *results);
    long keep_bytes = 0;
    answer_set answers;
    char reply[1024] = "";
    if (!results) {
        cli_error("out of memory");
        goto done;
    }
    if (o.resume && access(o.out_path, F_OK) == 0 &&
        load_results(o.out_path, &d, method, results, &keep_bytes) != CLI_OK)
        goto done;
    if (o.out_path) {
        if (o.resume && access(o.out_path, F_OK) == 0 && truncate(o.out_path, keep_bytes) != 0) {
            cli_error("%s: cannot drop its unfinished last line", o.out_path);
            goto done;
        }
        if (!(out = fopen(o.out_path, o.resume ? "ab" : "wb"))) {
            cli_error("%s: cannot open for writing", o.out_path);
            goto done;
        }
    }
    if (cli_load_assets(o.model, o.f.numerics, &a, 1) != CLI_OK) goto done;
    if (tokenize_answers(a.tok, &answers) != CLI_OK) goto done;
    gemma_session_options so = gemma_session_default_options();
    so.n_threads = (int)o.f.threads;
    so.n_ctx = (int)o.f.ctx;
    so.kv_type = o.f.kv_type;
    gemma_error err;
    if (gemma_session_create(a.model, &so, &s, &err) != GEMMA_OK) {
        cli_error("%s", err.message);
        goto done;
    }
    size_t vocab = (size_t)gemma_model_vocab_size(a.model);
    logits = malloc(vocab * sizeof *logits);
    rows = malloc(vocab * MAX_ANSWER_TOKENS * sizeof *rows);
    if (!logits || !rows) {
        cli_error("out of memory");
        goto done;
    }
    size_t todo = 0, done_items = 0;
    for (size_t i = 0; i < d.n; i++) todo += !results[i].done;
    cli_progress bar;
    cli_progress_start(&bar, todo, "item");
    cli_install_interrupt();
    for (size_t i = 0; i < d.n && !cli_interrupted; i++) {
        if (results[i].done) continue;
        double logp[N_ANSWERS];
        if (eval_item(s, &a, &answers, &o, &d.items[i], logits, rows, vocab, &results[i], logp, reply,
                      sizeof reply) != CLI_OK) {
            cli_progress_end(&bar);
            goto done;
        }
        if (out) write_result(out, &d.items[i], method, &results[i], logp, o.generate ? reply : NULL);
        cli_progress_update(&bar, ++done_items);
    }
    cli_progress_end(&bar);
    if (cli_interrupted) fprintf(stderr, "gemma eval: interrupted after %zu items (--resume continues)\n", done_items);
    summary sm = {.method = method};
    summarize(results, d.n, &sm);
    print_summary(&sm, o.model, o.test_split ? "test" : "all", o.f.json);
    rc = cli_interrupted ? CLI_FAIL : CLI_OK;
done:
    if (out && fclose(out) != 0) rc = cli_error("%s: cannot write", o.out_path);
    free(logits);
    free(rows);
    free(results);
    gemma_session_free(s);
    cli_free_assets(&a);
    free_data(&d);
    return rc;
}
