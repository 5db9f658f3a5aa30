/* cmd_tokenize.c - `gemma tokenize`: text or a conversation to token ids.
 *
 *   gemma tokenize -m MODEL [--bos] TEXT          -> [id, ...]
 *   gemma tokenize --tokenizer FILE --jsonl       stdin: one JSON string per line
 *   gemma tokenize -m MODEL --messages conv.json  the chat prompt's ids
 *   gemma tokenize -m MODEL --chat TEXT           ... of one user message
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
    "  --chat TEXT           the chat prompt of one user message TEXT (as `gemma run` builds it)\n"
    "  --system TEXT         with --chat: a system prompt first\n"
    "  --think               with --chat / --messages: the template's thinking mode (Gemma 4)\n"
    "  --render              with --messages / --chat: print the prompt text instead of ids\n"
    "  --no-generation-prompt  with --messages / --chat: leave out the final model-turn opening\n"
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

static int print_prompt(const gemma_tokenizer *tok, const char *text, size_t len, int render_only) {
    if (!render_only) return tokenize_print(tok, text, len, 0);
    fwrite(text, 1, len, stdout);
    return CLI_OK;
}

/* --messages FILE (json NULL) or --chat TEXT: the rendered prompt, its ids or its text. */
static int run_messages(const gemma_tokenizer *tok, const char *tok_dir, const char *path, const char *user,
                        const char *system, int render_only, int flags) {
    gemma_error err;
    gemma_chat_format *fmt;
    if (gemma_chat_format_load(tok_dir, &fmt, &err) != GEMMA_OK) return cli_error("%s", err.message);
    int rc = CLI_FAIL;
    size_t len = 0, out_len = 0;
    char *text = NULL, *json = NULL;
    if (user) {
        text = cli_render_user_prompt(fmt, system, user, 0, flags);
        if (text) rc = print_prompt(tok, text, strlen(text), render_only);
        goto done;
    }
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        cli_error("%s: cannot open", path);
        goto done;
    }
    json = cli_read_stream(f, &len);
    if (f != stdin) fclose(f);
    if (!json) {
        cli_error("%s: cannot read", path);
        goto done;
    }
    gemma_status st = gemma_chat_render_json(fmt, json, len, flags, NULL, 0, &out_len, &err);
    if (st != GEMMA_ERR_BUFFER) {
        cli_error("%s: %s", path, err.message);
        goto done;
    }
    text = malloc(out_len + 1);
    if (!text || gemma_chat_render_json(fmt, json, len, flags, text, out_len + 1, &out_len, &err) != GEMMA_OK) {
        cli_error("%s: %s", path, text ? err.message : "out of memory");
        goto done;
    }
    rc = print_prompt(tok, text, out_len, render_only);
done:
    free(text);
    free(json);
    gemma_chat_format_free(fmt);
    return rc;
}

int cmd_tokenize(int argc, char **argv) {
    const char *model_dir = NULL, *tok_file = NULL, *messages = NULL, *text = NULL, *chat = NULL, *system = NULL;
    int flags = 0, jsonl = 0, render = 0, gen_prompt = 1, think = 0;
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
        } else if (!strcmp(a, "--chat")) {
            if (!(chat = cli_value(argc, argv, &i, "tokenize"))) return CLI_USAGE;
        } else if (!strcmp(a, "--system")) {
            if (!(system = cli_value(argc, argv, &i, "tokenize"))) return CLI_USAGE;
        } else if (!strcmp(a, "--think")) {
            think = 1;
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
    if ((jsonl ? 1 : 0) + (messages ? 1 : 0) + (text ? 1 : 0) + (chat ? 1 : 0) > 1)
        return cli_usage_error("tokenize", "TEXT, --jsonl, --messages and --chat exclude each other");
    if ((render || think || !gen_prompt) && !messages && !chat)
        return cli_usage_error("tokenize", "--render, --think and --no-generation-prompt go with --messages or --chat");
    if (system && !chat) return cli_usage_error("tokenize", "--system goes with --chat");
    int render_flags = (gen_prompt ? GEMMA_CHAT_GENERATION_PROMPT : 0) | (think ? GEMMA_CHAT_THINKING : 0);

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
    } else if (messages || chat) {
        rc = run_messages(tok, dir, messages, chat, system, render, render_flags);
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
