/* cmd_tokenize.c - `gemma tokenize`: text or a conversation to token ids.
 *
 *   gemma tokenize -m MODEL [--bos] TEXT          -> [id, ...]
 *   gemma tokenize --tokenizer FILE --jsonl       stdin: one JSON string per line
 *   gemma tokenize -m MODEL --messages conv.json  the chat prompt's ids
 *   ... --messages conv.json --render             the chat prompt's text
 * Used by people checking prompts and by the parity tests. */
#include "args.h"
#include "common.h"
#include "core/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const help =
    "usage: gemma tokenize (-m MODEL_DIR | --tokenizer tokenizer.json) [options] [TEXT | -]\n"
    "\n"
    "Prints the token ids of TEXT ('-' or nothing: stdin) as a JSON array.\n"
    "  --bos                 prepend <bos> (off by default: chat prompts carry their own)\n"
    "  --no-special          treat special-token text such as <bos> as plain text\n"
    "  --jsonl               read one JSON string per stdin line, print one JSON array per line\n"
    "  --messages FILE       a JSON list of chat messages (OpenAI style; '-' = stdin): print the ids\n"
    "                        of the prompt the chat format renders, with the generation prompt\n"
    "  --render              with --messages: print the prompt text instead of ids\n"
    "  --no-generation-prompt  with --messages: leave out the final '<start_of_turn>model'\n"
    "The chat format comes from tokenizer_config.json beside the tokenizer (or in MODEL_DIR).\n";

static void print_ids(const int32_t *ids, size_t n) {
    putchar('[');
    for (size_t i = 0; i < n; i++) printf(i ? ",%d" : "%d", ids[i]);
    puts("]");
}

static int tokenize_print(const gemma_tokenizer *tok, const char *text, size_t len, int flags) {
    int32_t *ids;
    size_t n;
    if (cli_tokenize(tok, text, len, flags, &ids, &n) != CLI_OK) return CLI_FAIL;
    print_ids(ids, n);
    free(ids);
    return CLI_OK;
}

static int run_jsonl(const gemma_tokenizer *tok, int flags) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    long lineno = 0;
    int rc = CLI_OK;
    while ((got = getline(&line, &cap, stdin)) >= 0) {
        lineno++;
        char jerr[160];
        gm_json_doc *doc = gm_json_parse(line, (size_t)got, NULL, jerr, sizeof jerr);
        const gm_json *v = doc ? gm_json_root(doc) : NULL;
        if (!gm_json_is(v, GM_JSON_STRING)) {
            rc = cli_error("stdin line %ld: expected one JSON string%s%s", lineno, doc ? "" : ": ", doc ? "" : jerr);
            gm_json_free(doc);
            break;
        }
        rc = tokenize_print(tok, v->u.str, v->len, flags);
        gm_json_free(doc);
        if (rc != CLI_OK) {
            fprintf(stderr, "gemma: (at stdin line %ld)\n", lineno);
            break;
        }
    }
    free(line);
    return rc;
}

static int run_messages(const gemma_tokenizer *tok, const char *tok_dir, const char *path, int render_only,
                        int gen_prompt) {
    gemma_error err;
    gemma_chat_format *fmt;
    if (gemma_chat_format_load(tok_dir, &fmt, &err) != GEMMA_OK) return cli_error("%s", err.message);
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        gemma_chat_format_free(fmt);
        return cli_error("%s: cannot open", path);
    }
    size_t len;
    char *json = cli_read_stream(f, &len);
    if (f != stdin) fclose(f);
    int rc = CLI_FAIL;
    size_t out_len = 0;
    char *text = NULL;
    if (!json) {
        cli_error("%s: cannot read", path);
        goto done;
    }
    gemma_status st = gemma_chat_render_json(fmt, json, len, gen_prompt, NULL, 0, &out_len, &err);
    if (st != GEMMA_ERR_BUFFER) {
        cli_error("%s: %s", path, err.message);
        goto done;
    }
    text = malloc(out_len + 1);
    if (!text || gemma_chat_render_json(fmt, json, len, gen_prompt, text, out_len + 1, &out_len, &err) != GEMMA_OK) {
        cli_error("%s: %s", path, text ? err.message : "out of memory");
        goto done;
    }
    if (render_only) {
        fwrite(text, 1, out_len, stdout);
        rc = CLI_OK;
    } else {
        rc = tokenize_print(tok, text, out_len, 0);
    }
done:
    free(text);
    free(json);
    gemma_chat_format_free(fmt);
    return rc;
}

int cmd_tokenize(int argc, char **argv) {
    const char *model_dir = NULL, *tok_file = NULL, *messages = NULL, *text = NULL;
    int flags = 0, jsonl = 0, render = 0, gen_prompt = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(help, stdout);
            return CLI_OK;
        }
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!(model_dir = cli_value(argc, argv, &i, "tokenize"))) return CLI_USAGE;
        } else if (!strcmp(a, "--tokenizer")) {
            if (!(tok_file = cli_value(argc, argv, &i, "tokenize"))) return CLI_USAGE;
        } else if (!strcmp(a, "--messages")) {
            if (!(messages = cli_value(argc, argv, &i, "tokenize"))) return CLI_USAGE;
        } else if (!strcmp(a, "--bos")) {
            flags |= GEMMA_TOKENIZE_ADD_BOS;
        } else if (!strcmp(a, "--no-special")) {
            flags |= GEMMA_TOKENIZE_NO_SPECIAL;
        } else if (!strcmp(a, "--jsonl")) {
            jsonl = 1;
        } else if (!strcmp(a, "--render")) {
            render = 1;
        } else if (!strcmp(a, "--no-generation-prompt")) {
            gen_prompt = 0;
        } else if (a[0] == '-' && a[1]) {
            return cli_usage_error("tokenize", "unknown option '%s'", a);
        } else if (!text) {
            text = a;
        } else {
            return cli_usage_error("tokenize", "give the text as one argument (quote it)");
        }
    }
    if (!model_dir == !tok_file) return cli_usage_error("tokenize", "give exactly one of -m MODEL_DIR, --tokenizer FILE");
    if ((jsonl ? 1 : 0) + (messages ? 1 : 0) + (text ? 1 : 0) > 1)
        return cli_usage_error("tokenize", "TEXT, --jsonl and --messages exclude each other");
    if (render && !messages) return cli_usage_error("tokenize", "--render goes with --messages");

    /* the chat template lives beside tokenizer.json */
    char dir[1024];
    const char *src = model_dir ? model_dir : tok_file;
    snprintf(dir, sizeof dir, "%s", src);
    if (tok_file) {
        char *slash = strrchr(dir, '/');
        if (slash) *slash = 0;
        else snprintf(dir, sizeof dir, ".");
    }
    gemma_error err;
    gemma_tokenizer *tok;
    if (gemma_tokenizer_load(src, &tok, &err) != GEMMA_OK) return cli_error("%s", err.message);
    int rc;
    if (jsonl) {
        rc = run_jsonl(tok, flags);
    } else if (messages) {
        rc = run_messages(tok, dir, messages, render, gen_prompt);
    } else if (text && strcmp(text, "-") != 0) {
        rc = tokenize_print(tok, text, strlen(text), flags);
    } else {
        size_t len;
        char *in = cli_read_stream(stdin, &len);
        rc = in ? tokenize_print(tok, in, len, flags) : cli_error("cannot read stdin");
        free(in);
    }
    gemma_tokenizer_free(tok);
    return rc;
}
