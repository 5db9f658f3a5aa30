/* cmd_serve.c - `gemma serve`: an OpenAI-compatible HTTP server.
 *
 * Loads the model once, makes --parallel sessions (tools/server/engine.c)
 * and serves OpenAI's chat/completions, completions, models, health and
 * metrics routes (tools/server/http.c) until SIGINT or SIGTERM.  Loopback
 * only unless --host says otherwise; with --api-key every route but
 * /health needs "Authorization: Bearer KEY". */
#include "args.h"
#include "common.h"
#include "engine.h"
#include "http.h"

#include <pthread.h>
#include <signal.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const help =
    "usage: gemma serve [-m MODEL] [options]\n"
    "\n"
    "OpenAI-compatible server: POST /v1/chat/completions, POST /v1/completions (both with \"stream\": true\n"
    "for server-sent events), GET /v1/models, GET /health, GET /metrics (Prometheus).  Point an OpenAI\n"
    "client at base_url http://HOST:PORT/v1.\n"
    "\n"
    "  -m, --model PATH      a model directory or .gguf file (default: $GEMMA_MODEL, else models/gemma3-270m)\n"
    "  --mmproj FILE         llama.cpp's vision file for a GGUF text model (images in messages)\n"
    "  --host ADDR           address to listen on (default 127.0.0.1; 0.0.0.0 exposes it to the network)\n"
    "  --port N              TCP port (default 8080; 0 = any free one, printed at start)\n"
    "  --parallel N          requests generated at once, one session (KV cache) each (default 1)\n"
    "  --queue N             requests that may wait for a session; more get 503 (default 16)\n"
    "  --ctx N               context tokens per session (default: min(model, 4096)); longer prompts get 400\n"
    "  -t, --threads N       compute threads per session (default: CPUs / --parallel)\n"
    "  --api-key KEY         require 'Authorization: Bearer KEY' (default: $GEMMA_API_KEY; none if unset)\n"
    "  --alias NAME          the model id clients see (default: the model file or folder name)\n"
    "  --timeout S           seconds a client may take to send a request or accept a write (default 30)\n"
    "  --max-body BYTES      largest request body (default 33554432; images come base64 inside it)\n"
    "  --max-images N        images per request (default 8)\n"
    "  --numerics MODE       auto, exact, llamacpp or int8 (as in gemma run)\n"
    CLI_KV_TYPE_HELP
    "  -q, --quiet           no line per request on stderr\n";

/* The id clients see: the last path component, without a trailing slash. */
static const char *model_basename(const char *path, char *buf, size_t cap) {
    snprintf(buf, cap, "%s", path);
    size_t n = strlen(buf);
    while (n > 1 && buf[n - 1] == '/') buf[--n] = 0;
    const char *slash = strrchr(buf, '/');
    return slash ? slash + 1 : buf;
}

static int parse_serve_flag(int argc, char **argv, int *i, srv_engine_options *eo, srv_http_options *ho,
                            gemma_numerics *numerics) {
    const char *a = argv[*i], *v;
    long n;
#define VALUE() do { if (!(v = cli_value(argc, argv, i, "serve"))) return -1; } while (0)
#define INT(lo, hi) do { VALUE(); if (!cli_parse_int(v, lo, hi, &n)) { cli_usage_error("serve", "bad value '%s' for %s", v, a); return -1; } } while (0)
    if (!strcmp(a, "--host")) {
        VALUE();
        ho->host = v;
    } else if (!strcmp(a, "--port")) {
        INT(0, 65535);
        ho->port = (int)n;
    } else if (!strcmp(a, "--parallel") || !strcmp(a, "-np")) {
        INT(1, 256);
        eo->n_slots = (int)n;
    } else if (!strcmp(a, "--queue")) {
        INT(0, 4096);
        eo->queue_max = (int)n;
    } else if (!strcmp(a, "--ctx") || !strcmp(a, "-c")) {
        INT(16, 1 << 20);
        eo->n_ctx = (int)n;
    } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
        INT(1, 256);
        eo->n_threads = (int)n;
    } else if (!strcmp(a, "--api-key")) {
        VALUE();
        ho->api_key = v;
    } else if (!strcmp(a, "--alias")) {
        VALUE();
        ho->model_name = v;
    } else if (!strcmp(a, "--timeout")) {
        INT(1, 3600);
        ho->timeout_ms = (int)n * 1000;
    } else if (!strcmp(a, "--max-body")) {
        INT(1024, 1l << 30);
        ho->limits.max_body_bytes = (size_t)n;
    } else if (!strcmp(a, "--max-images")) {
        INT(0, 64);
        ho->limits.max_images = (int)n;
    } else if (!strcmp(a, "--numerics")) {
        VALUE();
        if (!cli_parse_numerics(v, "serve", numerics)) return -1;
    } else if (!strcmp(a, "--kv-type")) {
        VALUE();
        if (!cli_parse_kv_type(v, "serve", &eo->kv_type)) return -1;
    } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
        ho->quiet = 1;
    } else {
        return 0;
    }
#undef INT
#undef VALUE
    return 1;
}

int cmd_serve(int argc, char **argv) {
    const char *model_dir = NULL, *mmproj = NULL;
    gemma_numerics numerics = GEMMA_NUMERICS_AUTO;
    srv_engine_options eo = {.n_slots = 1, .queue_max = 16};
    srv_http_options ho = {.host = "127.0.0.1", .port = 8080, .timeout_ms = 30000, .limits = srv_default_limits(),
                           .api_key = getenv("GEMMA_API_KEY")};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(help, stdout);
            return CLI_OK;
        }
        int r = parse_serve_flag(argc, argv, &i, &eo, &ho, &numerics);
        if (r < 0) return CLI_USAGE;
        if (r > 0) continue;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!(model_dir = cli_value(argc, argv, &i, "serve"))) return CLI_USAGE;
        } else if (!strcmp(a, "--mmproj")) {
            if (!(mmproj = cli_value(argc, argv, &i, "serve"))) return CLI_USAGE;
        } else {
            return cli_usage_error("serve", "unknown option '%s'", a);
        }
    }
    if (!(model_dir = cli_model_or_default(model_dir, "serve"))) return CLI_USAGE;

    /* signals: block them in every thread (civetweb's inherit the mask); this one waits for them */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN);
#if defined(__GLIBC__)
    /* Each request allocates a few MB (sampler, logits, images) on one of many
     * HTTP threads.  A fixed mmap threshold hands such blocks back to the system
     * when freed, instead of leaving them in per-thread arenas that glibc grows
     * and never shrinks, so resident memory stays flat under load. */
    mallopt(M_MMAP_THRESHOLD, 256 * 1024);
    mallopt(M_ARENA_MAX, 4);
#endif

    cli_assets a;
    if (cli_load_assets_mm(model_dir, numerics, mmproj, &a, 0) != CLI_OK) return CLI_FAIL;
    char name[256];
    if (!ho.model_name) ho.model_name = model_basename(model_dir, name, sizeof name);
    /* keep-alive connections hold an HTTP thread each: room for them beside the slots and the queue */
    ho.n_http_threads = eo.n_slots + eo.queue_max + 32;
    gemma_error err;
    srv_engine *engine = srv_engine_create(a.model, a.tok, &eo, &err);
    if (!engine) {
        cli_free_assets(&a);
        return cli_error("%s", err.message);
    }
    char why[512];
    int port = 0;
    srv_http *http = srv_http_start(engine, a.model, a.fmt, &ho, &port, why, sizeof why);
    if (!http) {
        srv_engine_free(engine);
        cli_free_assets(&a);
        return cli_error("%s", why);
    }
    fprintf(stderr, "gemma serve: %s | %d slot%s x %d tokens | chat format: %s\n", gemma_model_describe(a.model),
            eo.n_slots, eo.n_slots == 1 ? "" : "s", srv_engine_context_size(engine),
            a.fmt ? gemma_chat_format_name(a.fmt) : "none (only /v1/completions)");
    int v6 = strchr(ho.host, ':') != NULL;
    fprintf(stderr, "gemma serve: listening on http://%s%s%s:%d (model id '%s'%s)\n", v6 ? "[" : "", ho.host,
            v6 ? "]" : "", port, ho.model_name, ho.api_key && *ho.api_key ? ", API key required" : "");
    fflush(stderr);
    int sig = 0;
    sigwait(&stop_signals, &sig);
    fprintf(stderr, "gemma serve: %s, stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    srv_engine_shutdown(engine);
    srv_http_stop(http);
    srv_engine_free(engine);
    cli_free_assets(&a);
    return CLI_OK;
}
