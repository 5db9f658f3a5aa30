/* gemma.h - the public C API of gemma.c.
 *
 * One header, opaque handles, plain C types: usable from C, C++, Swift
 * (module map), Kotlin/JNI and any FFI.  There is no global state: every
 * error is reported through a gemma_error the caller owns, and a model or
 * session carries everything it needs.
 *
 * Typical use:
 *
 *     gemma_error err;
 *     gemma_model *m;
 *     if (gemma_model_load("models/gemma-3-270m", NULL, &m, &err) != GEMMA_OK) {
 *         fprintf(stderr, "%s\n", err.message);
 *         return 1;
 *     }
 *     gemma_session *s;
 *     gemma_session_options so = gemma_session_default_options();
 *     gemma_session_create(m, &so, &s, &err);
 *     float *logits = malloc(gemma_model_vocab_size(m) * sizeof(float));
 *     gemma_session_eval(s, tokens, n, GEMMA_LOGITS_LAST, logits, &err);
 *     ...
 *     gemma_session_free(s);
 *     gemma_model_free(m);
 */
#ifndef GEMMA_H
#define GEMMA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32) && defined(GEMMA_SHARED_BUILD)
#define GEMMA_API __declspec(dllexport)
#elif defined(__GNUC__)
#define GEMMA_API __attribute__((visibility("default")))
#else
#define GEMMA_API
#endif

#define GEMMA_VERSION_MAJOR 0
#define GEMMA_VERSION_MINOR 1
#define GEMMA_VERSION_PATCH 0

/* ---------------------------------------------------------------- errors */

typedef enum {
    GEMMA_OK = 0,
    GEMMA_ERR_ARG = 1,          /* invalid argument from the caller */
    GEMMA_ERR_IO = 2,           /* file missing, unreadable, mmap failed */
    GEMMA_ERR_FORMAT = 3,       /* corrupt or inconsistent file contents */
    GEMMA_ERR_UNSUPPORTED = 4,  /* valid input we do not implement (architecture, option) */
    GEMMA_ERR_NOMEM = 5,        /* allocation failed */
    GEMMA_ERR_CONTEXT_FULL = 6, /* the session has no room for more tokens */
    GEMMA_ERR_INTERNAL = 7,
    GEMMA_ERR_BUFFER = 8        /* the caller's output buffer is too small; the needed size was reported */
} gemma_status;

#define GEMMA_ERROR_MESSAGE_MAX 512

/* A one-line, human-readable description naming the file and field at fault. */
typedef struct {
    gemma_status code;
    char message[GEMMA_ERROR_MESSAGE_MAX];
} gemma_error;

GEMMA_API const char *gemma_status_name(gemma_status code);
GEMMA_API const char *gemma_version(void);

/* ------------------------------------------------------------ allocators */

/* Optional allocator hooks for the large, long-lived buffers (KV cache,
 * activations).  NULL fields fall back to malloc/free. */
typedef struct {
    void *(*alloc)(size_t size, size_t alignment, void *user);
    void (*free)(void *ptr, void *user);
    void *user;
} gemma_allocator;

/* ----------------------------------------------------------------- model */

typedef struct gemma_model gemma_model;

/* How the arithmetic is rounded.
 *   EXACT     f32 math on the weights as stored (dequantized exactly): what
 *             transformers and mlx-lm compute, and what every parity fixture checks.
 *   LLAMACPP  GGUF files only: llama.cpp's CPU arithmetic step for step (8-bit
 *             activations and integer dots for block-quantized weights, f16 K/V,
 *             queries and attention weights, its f16 GELU table, RoPE angles and
 *             summation orders, as its AVX-512 x86 build computes them), so that
 *             greedy output equals llama.cpp's on the same file.
 *   INT8      EXACT, except that MLX 4- and 8-bit matrices multiply inputs
 *             quantized to int8 per 8 values (4 for 8-bit weights) with the
 *             CPU's integer dot instructions (VNNI, AVX2, NEON), as llama.cpp
 *             does per 32 for its block formats: faster decode and prefill,
 *             inputs rounded to about 2-3 significant digits instead of 7.
 *   AUTO      LLAMACPP for GGUF files, EXACT for everything else. */
typedef enum {
    GEMMA_NUMERICS_AUTO = 0,
    GEMMA_NUMERICS_EXACT = 1,
    GEMMA_NUMERICS_LLAMACPP = 2,
    GEMMA_NUMERICS_INT8 = 3
} gemma_numerics;

typedef struct {
    const gemma_allocator *allocator;  /* NULL = malloc */
    gemma_numerics numerics;           /* 0 = AUTO */
    /* Images.  A multimodal checkpoint folder (config.json with vision_config)
     * brings its vision tower; a GGUF text model takes llama.cpp's separate
     * mmproj file: `mmproj` names it, or a folder holding the model .gguf and
     * one mmproj*.gguf pairs them.  text_only = 1 skips the vision tower. */
    const char *mmproj;
    int text_only;
} gemma_model_options;

/* Load a model directory: config.json plus model.safetensors or shards listed
 * in model.safetensors.index.json.  Weights are memory-mapped, never copied.
 * On failure *out is NULL and err (if not NULL) says why. */
GEMMA_API gemma_status gemma_model_load(const char *path, const gemma_model_options *opts,
                                        gemma_model **out, gemma_error *err);
GEMMA_API void gemma_model_free(gemma_model *model);

GEMMA_API int gemma_model_vocab_size(const gemma_model *model);   /* logits per position */
GEMMA_API int gemma_model_n_layers(const gemma_model *model);
GEMMA_API int gemma_model_hidden_size(const gemma_model *model);
GEMMA_API int gemma_model_max_context(const gemma_model *model);  /* max_position_embeddings */
GEMMA_API const char *gemma_model_arch(const gemma_model *model);  /* e.g. "gemma3" */
/* A short description: architecture, sizes, weight formats. */
GEMMA_API const char *gemma_model_describe(const gemma_model *model);
/* Bytes of weights that stay mapped (what a decode step may read). */
GEMMA_API uint64_t gemma_model_weight_bytes(const gemma_model *model);
/* Number of weights (parameters) of the loaded text model. */
GEMMA_API uint64_t gemma_model_param_count(const gemma_model *model);
/* Weight bytes one decode step reads (every matrix of the text decoder, the
 * LM head, one embedding row): divided by memory bandwidth, the decode
 * speed limit.  The vision tower is not counted. */
GEMMA_API uint64_t gemma_model_token_bytes(const gemma_model *model);
/* The directory the model was loaded from (tokenizer and chat template live there). */
GEMMA_API const char *gemma_model_path(const gemma_model *model);
/* Ids that end a reply: eos_token_id of config.json and generation_config.json
 * (Gemma 3: 1 and 106).  Writes up to cap ids, returns how many there are. */
GEMMA_API size_t gemma_model_stop_tokens(const gemma_model *model, int32_t *ids, size_t cap);
/* The numerics the model runs with (AUTO resolved at load). */
GEMMA_API gemma_numerics gemma_model_numerics(const gemma_model *model);
/* "exact" / "llamacpp" / "int8" (and "auto"); gemma_numerics_parse returns -1 for other names. */
GEMMA_API const char *gemma_numerics_name(gemma_numerics numerics);
GEMMA_API int gemma_numerics_parse(const char *name);

/* --------------------------------------------------------------- session */

typedef struct gemma_session gemma_session;

/* How the KV cache stores keys and values.
 *   F32   as computed: what every parity fixture checks.
 *   F16   half the memory; keys and values rounded to nearest-even f16, the
 *         step's own tokens too, so a token's result does not depend on the
 *         batch it was evaluated in.  llama.cpp's default cache type.
 *   BF16  half the memory, f32's range with 8 bits of mantissa.
 *   AUTO  F16 for GEMMA_NUMERICS_LLAMACPP (llama.cpp rounds K/V to f16
 *         anyway, so the logits are the same bits) and GEMMA_NUMERICS_INT8
 *         (the speed and memory option), F32 otherwise. */
typedef enum {
    GEMMA_KV_AUTO = 0,
    GEMMA_KV_F32 = 1,
    GEMMA_KV_F16 = 2,
    GEMMA_KV_BF16 = 3
} gemma_kv_type;

/* "auto" / "f32" / "f16" / "bf16"; gemma_kv_type_parse returns -1 for other names. */
GEMMA_API const char *gemma_kv_type_name(gemma_kv_type type);
GEMMA_API int gemma_kv_type_parse(const char *name);

typedef struct {
    int n_ctx;       /* max tokens in the session; 0 = min(model max, 4096) */
    int n_batch;     /* max tokens per internal prefill step; 0 = 512 */
    int n_threads;   /* worker threads; 0 = number of online CPUs */
    int n_rewind;    /* how far gemma_session_rewind may go back; 0 = 256 (-1 = none) */
    const gemma_allocator *allocator;  /* NULL = malloc */
    gemma_kv_type kv_type;             /* 0 = AUTO */
} gemma_session_options;

GEMMA_API gemma_session_options gemma_session_default_options(void);
/* The cache type a session stores (AUTO resolved at creation). */
GEMMA_API gemma_kv_type gemma_session_kv_type(const gemma_session *session);
/* Heap bytes a session with these options will allocate (KV cache + activations). */
GEMMA_API uint64_t gemma_session_memory_bytes(const gemma_model *model, const gemma_session_options *opts);

GEMMA_API gemma_status gemma_session_create(gemma_model *model, const gemma_session_options *opts,
                                            gemma_session **out, gemma_error *err);
GEMMA_API void gemma_session_free(gemma_session *session);

typedef enum {
    GEMMA_LOGITS_NONE = 0,  /* only extend the cache */
    GEMMA_LOGITS_LAST = 1,  /* logits of the last token: vocab floats */
    GEMMA_LOGITS_ALL = 2    /* logits of every token: n * vocab floats, row-major */
} gemma_logits_mode;

/* Append n tokens at the current position, updating the KV cache.  Tokens
 * beyond n_batch are processed in several batched steps.  Writes logits as
 * requested into `logits` (caller-allocated).  Fails without changing the
 * session if a token id is out of range or the context would overflow. */
GEMMA_API gemma_status gemma_session_eval(gemma_session *session, const int32_t *tokens, size_t n,
                                          gemma_logits_mode mode, float *logits, gemma_error *err);

/* Multimodal evaluation: as gemma_session_eval, except that every token equal
 * to gemma_model_image_token(model) takes the next row of `embeds` ([n_embeds,
 * hidden] floats, an image's embeddings in order) in place of its embedding,
 * unscaled, as the reference splices image features.  Each run of such tokens
 * is one image: its tokens also see each other (bidirectional attention, as
 * transformers' Gemma 3); everything else stays causal.  A run is never split
 * across batches, so it must fit in n_batch.  n_embeds must equal the number
 * of image tokens. */
GEMMA_API gemma_status gemma_session_eval_mm(gemma_session *session, const int32_t *tokens, size_t n,
                                             const float *embeds, size_t n_embeds, gemma_logits_mode mode,
                                             float *logits, gemma_error *err);
/* The placeholder id of image embeddings (262144 for Gemma 3), -1 for a text-only model. */
GEMMA_API int32_t gemma_model_image_token(const gemma_model *model);
/* Whether the model has a vision tower (then the three below are > 0). */
GEMMA_API int gemma_model_has_vision(const gemma_model *model);
GEMMA_API int gemma_model_image_size(const gemma_model *model);      /* pixels per side the tower takes (896) */
GEMMA_API int gemma_model_image_tokens(const gemma_model *model);    /* soft tokens per image (256) */
/* The pixel normalization the tower was trained with: (v/255 - mean) / std per RGB channel. */
GEMMA_API void gemma_model_image_norm(const gemma_model *model, float mean[3], float std[3]);
/* Run the vision tower and projector on n_images pixel tensors ([n, 3, S, S]
 * floats, CHW, normalized; S = gemma_model_image_size) with the session's
 * threads: out receives n x gemma_model_image_tokens rows of hidden floats,
 * ready for gemma_session_eval_mm.  The first call allocates the encoder's
 * scratch (kept with the session); later calls allocate nothing. */
GEMMA_API gemma_status gemma_session_encode_images(gemma_session *session, const float *pixels, int n_images,
                                                   float *out, gemma_error *err);
GEMMA_API int gemma_session_position(const gemma_session *session);  /* tokens in the cache */
GEMMA_API int gemma_session_context_size(const gemma_session *session);
GEMMA_API void gemma_session_reset(gemma_session *session);         /* empty the cache */
/* Keep only the first n_keep tokens of the cache, to continue differently
 * from there (a chat turn whose prompt shares a prefix with the cache).
 * Sliding-window layers keep n_rewind extra entries so this works for up to
 * n_rewind tokens back; further back fails with GEMMA_ERR_ARG (reset instead). */
GEMMA_API gemma_status gemma_session_rewind(gemma_session *session, int n_keep, gemma_error *err);
GEMMA_API gemma_status gemma_session_set_threads(gemma_session *session, int n_threads, gemma_error *err);
GEMMA_API int gemma_session_threads(const gemma_session *session);

/* ------------------------------------------------------------- tokenizer */

/* The model's tokenizer, from Hugging Face tokenizer.json (Gemma 3: BPE with
 * byte fallback) or from a GGUF file's tokenizer.ggml.* metadata (the same
 * vocabulary as SentencePiece pieces and scores; the merges are rebuilt from
 * the scores).  Ids and text are exactly what HF tokenizers produces. */
typedef struct gemma_tokenizer gemma_tokenizer;

/* `path` is a tokenizer.json file, a GGUF file (known by its magic, whatever
 * its name), or a directory holding tokenizer.json or else one .gguf model
 * file (mmproj* files are ignored). */
GEMMA_API gemma_status gemma_tokenizer_load(const char *path, gemma_tokenizer **out, gemma_error *err);
GEMMA_API void gemma_tokenizer_free(gemma_tokenizer *tok);
GEMMA_API int gemma_tokenizer_vocab_size(const gemma_tokenizer *tok);   /* ids are 0 .. size-1 */
GEMMA_API int32_t gemma_tokenizer_bos(const gemma_tokenizer *tok);      /* -1 if none */

enum {
    GEMMA_TOKENIZE_ADD_BOS = 1,        /* prepend <bos> (the post-processor's template) */
    GEMMA_TOKENIZE_NO_SPECIAL = 2      /* do not match special tokens written in the text */
};

/* Encode `len` bytes of UTF-8.  Added and special tokens written in the text
 * become their ids.  *n_ids receives the number of ids; if it exceeds `cap`
 * the call returns GEMMA_ERR_BUFFER and `ids` holds the first `cap` (ids may
 * be NULL with cap 0 to count).  len + 1 ids always suffice.  Invalid UTF-8
 * is rejected with GEMMA_ERR_ARG naming the byte offset. */
GEMMA_API gemma_status gemma_tokenize(const gemma_tokenizer *tok, const char *text, size_t len, int flags,
                                      int32_t *ids, size_t cap, size_t *n_ids, gemma_error *err);

/* The vocabulary entry of an id as stored (e.g. "▁patient", "<0x0A>"), NUL-terminated; NULL if out of range. */
GEMMA_API const char *gemma_token_piece(const gemma_tokenizer *tok, int32_t id);
/* The id of a vocabulary entry or added token, -1 if there is none. */
GEMMA_API int32_t gemma_token_id(const gemma_tokenizer *tok, const char *piece);
GEMMA_API int gemma_token_is_special(const gemma_tokenizer *tok, int32_t id);

enum { GEMMA_DETOKENIZE_SKIP_SPECIAL = 1 };

/* Decode ids to UTF-8 exactly as HF tokenizers' decode does ("▁" -> " ",
 * <0xHH> runs reassembled, an invalid run becomes one U+FFFD per byte).
 * Writes a NUL-terminated string; *len receives its length (without NUL);
 * returns GEMMA_ERR_BUFFER if cap <= *len. */
GEMMA_API gemma_status gemma_detokenize(const gemma_tokenizer *tok, const int32_t *ids, size_t n, int flags,
                                        char *out, size_t cap, size_t *len, gemma_error *err);

/* Streaming decoding for printing tokens as they are generated: never emits
 * half a UTF-8 character.  push() writes the bytes that became complete into
 * `out`, which must hold GEMMA_DETOKENIZER_MAX_OUT bytes (at most MAX_OUT - 1
 * are written, NUL-terminated), and returns their count.  The stream equals
 * gemma_detokenize when byte-fallback runs are valid UTF-8; in an invalid run
 * only the bad bytes become U+FFFD (HF replaces the whole run afterwards,
 * which a stream cannot wait for).  Ids outside the vocabulary are dropped,
 * as HF drops them (models have more logit rows than the tokenizer has ids). */
#define GEMMA_DETOKENIZER_MAX_OUT 4096
typedef struct gemma_detokenizer gemma_detokenizer;
GEMMA_API gemma_detokenizer *gemma_detokenizer_create(const gemma_tokenizer *tok, int flags);
GEMMA_API size_t gemma_detokenizer_push(gemma_detokenizer *d, int32_t id, char *out);
/* Emit whatever is pending (an incomplete UTF-8 tail becomes U+FFFD per byte). */
GEMMA_API size_t gemma_detokenizer_flush(gemma_detokenizer *d, char *out);
GEMMA_API void gemma_detokenizer_free(gemma_detokenizer *d);

/* ------------------------------------------------------------------ chat */

/* A model's chat format: the semantics of the Jinja chat template shipped in
 * its tokenizer_config.json (or chat_template.jinja / chat_template.json),
 * implemented natively and tested byte-for-byte against jinja2. */
typedef struct gemma_chat_format gemma_chat_format;

typedef enum { GEMMA_PART_TEXT = 0, GEMMA_PART_IMAGE = 1, GEMMA_PART_OTHER = 2 } gemma_part_type;

typedef struct {
    gemma_part_type type;
    const char *text;            /* the part's text (NULL: none); a system message uses its first part's */
    size_t text_len;             /* 0: NUL-terminated */
} gemma_chat_part;

typedef struct {
    const char *role;            /* "system", "user", "assistant" (or "model"), ... */
    const char *content;         /* string content, or NULL to use parts */
    size_t content_len;          /* 0: NUL-terminated */
    const gemma_chat_part *parts;/* list content (used when content is NULL and parts is not NULL) */
    size_t n_parts;
} gemma_chat_message;

/* From a directory (tokenizer_config.json, chat_template.jinja or
 * chat_template.json inside), or one of those files; or from a GGUF file (or
 * a directory holding none of those and one .gguf model file): its
 * tokenizer.chat_template, else the built-in format of its
 * general.architecture ("gemma3": the Gemma 3 format). */
GEMMA_API gemma_status gemma_chat_format_load(const char *path, gemma_chat_format **out, gemma_error *err);
/* From the template text itself; fails with GEMMA_ERR_UNSUPPORTED for templates we do not implement. */
GEMMA_API gemma_status gemma_chat_format_from_template(const char *jinja, gemma_chat_format **out, gemma_error *err);
GEMMA_API void gemma_chat_format_free(gemma_chat_format *fmt);
GEMMA_API const char *gemma_chat_format_name(const gemma_chat_format *fmt);   /* e.g. "gemma3" */
/* Whether the format has a thinking mode (GEMMA_CHAT_THINKING) and thought
 * channels in replies (Gemma 4: "<|channel>thought\n...<channel|>"). */
GEMMA_API int gemma_chat_format_has_thinking(const gemma_chat_format *fmt);

/* Render flags.  GEMMA_CHAT_GENERATION_PROMPT (1, so the old boolean still
 * works) ends the prompt with the model's turn opening; GEMMA_CHAT_THINKING is
 * the template's enable_thinking (Gemma 4: a system turn starting "<|think|>\n";
 * the E models get no empty thought block when it is off).  A format without
 * a thinking mode rejects GEMMA_CHAT_THINKING with GEMMA_ERR_UNSUPPORTED. */
enum { GEMMA_CHAT_GENERATION_PROMPT = 1, GEMMA_CHAT_THINKING = 2 };

/* Render messages to the prompt text (NUL-terminated into out; *len without the
 * NUL; GEMMA_ERR_BUFFER if cap <= *len).  Conversations the template rejects
 * (roles not alternating, content of a wrong type) fail with GEMMA_ERR_ARG. */
GEMMA_API gemma_status gemma_chat_render(const gemma_chat_format *fmt, const gemma_chat_message *messages, size_t n,
                                         int flags, char *out, size_t cap, size_t *len, gemma_error *err);

/* The same from an OpenAI-style JSON message list: [{"role": ..., "content":
 * "text" | [{"type": "text", "text": ...}, {"type": "image"}, ...]}, ...]. */
GEMMA_API gemma_status gemma_chat_render_json(const gemma_chat_format *fmt, const char *messages_json, size_t json_len,
                                              int flags, char *out, size_t cap, size_t *len, gemma_error *err);

/* Splitting a streamed reply into its thought channels and its answer, as the
 * Gemma 4 template's strip_thinking reads a model turn: text from "<|channel>"
 * to the next "<channel|>" is thought (the markers themselves are dropped; a
 * thought channel begins with its name, "thought\n"); everything else, a stray
 * "<channel|>" removed, is the answer, which is what a later turn's history
 * holds.  Text arrives in pieces of any size (a marker may be cut anywhere):
 * bytes that could begin a marker are held back until the next push or the
 * flush.  answer and thought must each hold len + GEMMA_CHANNEL_HOLD bytes
 * (thought may be NULL, with n_thought: thought text is dropped); the counts
 * written go to *n_answer / *n_thought (no NUL).  No allocation after create. */
#define GEMMA_CHANNEL_HOLD 16
typedef struct gemma_channel_splitter gemma_channel_splitter;
GEMMA_API gemma_channel_splitter *gemma_channel_splitter_create(void);
GEMMA_API void gemma_channel_splitter_free(gemma_channel_splitter *s);
GEMMA_API void gemma_channel_push(gemma_channel_splitter *s, const char *text, size_t len, char *answer,
                                  size_t *n_answer, char *thought, size_t *n_thought);
/* The held-back bytes, as text of the channel the stream is in; then the splitter starts over. */
GEMMA_API void gemma_channel_flush(gemma_channel_splitter *s, char *answer, size_t *n_answer, char *thought,
                                   size_t *n_thought);
GEMMA_API int gemma_channel_in_thought(const gemma_channel_splitter *s);   /* 1 inside a thought channel */

/* The processor's step after rendering: each <start_of_image> becomes
 * "\n\n<start_of_image>" + tokens_per_image x "<image_soft_token>" +
 * "<end_of_image>\n\n" (Gemma3Processor; 256 tokens for Gemma 3 / MedGemma).
 * Output as gemma_chat_render's; *n_images (if not NULL) = images found.  An
 * already expanded prompt is returned unchanged. */
GEMMA_API gemma_status gemma_chat_expand_images(const char *text, size_t text_len, int tokens_per_image, char *out,
                                                size_t cap, size_t *len, int *n_images, gemma_error *err);

/* -------------------------------------------------------------- sampling */

typedef struct {
    int32_t token;
    float bias;                  /* added to the token's logit */
} gemma_logit_bias;

/* Zero values mean "off" except where noted; gemma_sampler_default_params()
 * gives greedy decoding. */
typedef struct {
    float temperature;           /* <= 0: greedy (argmax) */
    int top_k;                   /* keep the k most likely; 0 = off */
    float top_p;                 /* nucleus: smallest set with mass >= top_p; 1 (or 0) = off */
    float min_p;                 /* keep tokens with p >= min_p * p_max; 0 = off */
    float repetition_penalty;    /* HF/CTRL style, applied to tokens seen; 1 (or 0) = off */
    float presence_penalty;      /* OpenAI style: -= presence * (count > 0) */
    float frequency_penalty;     /* OpenAI style: -= frequency * count */
    int penalty_last_n;          /* how many recent tokens the penalties look at; 0 = all */
    uint64_t seed;               /* same seed, same logits -> same tokens */
    const gemma_logit_bias *logit_bias;
    size_t n_logit_bias;
} gemma_sampler_params;

typedef struct gemma_sampler gemma_sampler;

GEMMA_API gemma_sampler_params gemma_sampler_default_params(void);
/* The model's own defaults: generation_config.json's do_sample / temperature /
 * top_k / top_p / min_p when present, else Gemma's published defaults
 * (temperature 1, top_k 64, top_p 0.95).  The seed is left 0. */
GEMMA_API gemma_sampler_params gemma_model_sampler_params(const gemma_model *model);
/* Order of operations (as HF generate): logit bias, repetition/presence/frequency
 * penalties, temperature, top-k, top-p, min-p, then a draw.  Allocates its
 * buffers once; sampling allocates nothing. */
GEMMA_API gemma_status gemma_sampler_create(const gemma_sampler_params *params, int vocab_size, gemma_sampler **out,
                                            gemma_error *err);
GEMMA_API void gemma_sampler_free(gemma_sampler *s);
/* Record a token of the context (prompt or generated) for the penalties. */
GEMMA_API void gemma_sampler_accept(gemma_sampler *s, int32_t token);
GEMMA_API void gemma_sampler_reset(gemma_sampler *s);   /* forget history, restart the random stream */
/* Pick the next token from `logits` (vocab_size floats; modified in place). */
GEMMA_API int32_t gemma_sampler_sample(gemma_sampler *s, float *logits);

/* -------------------------------------------------------------- quantize */

/* Progress of gemma_quantize: reported after each input tensor is written,
 * and once more (tensor NULL, done == total) when every file is in place. */
typedef struct {
    const char *tensor;          /* input tensor just written; NULL on the final report */
    size_t done, total;          /* input tensors written so far / in all */
    size_t quantized;            /* of those, how many became packed weight + scales + biases */
    uint64_t bytes_in, bytes_out;/* tensor bytes read / written so far */
    int n_shards;                /* weight files written */
} gemma_quantize_progress;

typedef struct {
    int bits;                    /* 2, 3, 4, 5, 6 or 8 (default 4) */
    int group_size;              /* 32, 64 or 128 (default 64) */
    int skip_vision;             /* keep vision_tower / vision_model / multi_modal_projector tensors in float */
    int force;                   /* write into a non-empty out_dir, replacing only the files written */
    uint64_t max_shard_bytes;    /* a new model-0000i-of-0000N.safetensors past this; 0 = 5 GiB (mlx-lm) */
    void (*progress)(const gemma_quantize_progress *p, void *user);   /* NULL = none */
    void *progress_user;
} gemma_quantize_options;

GEMMA_API gemma_quantize_options gemma_quantize_default_options(void);

/* Convert a Hugging Face Gemma 3 checkpoint (config.json + BF16/F16/F32
 * safetensors, one file or sharded; gemma3_text or multimodal gemma3) into an
 * MLX affine-quantized one in out_dir, as mlx_lm.convert -q writes it: the
 * same tensor names; every Linear/Embedding weight (2-D `*.weight`) whose
 * last dimension group_size divides becomes `.weight` (U32, packed), `.scales`
 * and `.biases`, bit-identical to mlx.core.quantize; float tensors are cast to
 * config.json's torch_dtype (else text_config.dtype) when it names a float
 * type, else keep theirs; scales and biases take that same dtype.  A tied
 * multimodal checkpoint named language_model.model.* also gets
 * language_model.lm_head.* (a copy of the embedding), as mlx-vlm writes and
 * needs.  config.json
 * gains "quantization" and "quantization_config"; shards, the index and the
 * tokenizer / chat-template / processor files are written next to it.
 * Tensors are streamed a few MB at a time (memory does not grow with the
 * model).  in_dir is never written; out_dir is created if missing, must be
 * empty unless opts->force, and only receives complete files (written as
 * temporaries, renamed at the end; on failure nothing is left behind). */
GEMMA_API gemma_status gemma_quantize(const char *in_dir, const char *out_dir, const gemma_quantize_options *opts,
                                      gemma_error *err);

/* ------------------------------------------------------------------- cpu */

/* The SIMD path picked at run time ("avx512", "avx2", "neon", "scalar").
 * Setting the environment variable GEMMA_ISA to one of these before the first
 * call forces a lower path (for testing). */
GEMMA_API const char *gemma_cpu_isa(void);

/* ---------------------------------------------------------------- images */

/* A decoded picture: 8-bit RGB, row-major, byte for byte what PIL's
 * ImageOps.exif_transpose(Image.open(f)).convert("RGB") gives (the loading
 * step of Hugging Face's load_image and of mlx-vlm).  PNG (1-16 bit grey,
 * grey + alpha, RGB, RGBA, palette, interlaced), JPEG (baseline and
 * progressive, grey or YCbCr, any chroma subsampling; decoded with
 * libjpeg-turbo's rounding, as PIL does), BMP, GIF (first frame), binary
 * PNM and TGA.  As in PIL: alpha is dropped, not composited; PNM samples are
 * rescaled from their maxval; 16-bit PNG samples keep their high byte, except
 * 16-bit grey PNG, which PIL clips to 255 (a 12- or 16-bit radiograph comes
 * out nearly white, as it does in HF: window it to 8 bits first if that is
 * not what you want); the EXIF orientation of JPEG and PNG files is
 * applied.  CMYK/YCCK JPEGs, WebP, TIFF, PSD and others are refused
 * (GEMMA_ERR_UNSUPPORTED); truncated files are errors, never partial images. */
typedef struct gemma_image gemma_image;

/* What the loader refuses before decoding, read from the file's header.  The
 * defaults are PIL's DecompressionBombError threshold (2 x MAX_IMAGE_PIXELS),
 * so every image Hugging Face opens opens here; they are also the maximum. */
#define GEMMA_IMAGE_MAX_SIDE 65535
#define GEMMA_IMAGE_MAX_PIXELS 178956970ull
#define GEMMA_IMAGE_MAX_FILE_BYTES (1ull << 30)

typedef struct {
    uint32_t max_side;      /* width or height above this is refused; 0 = GEMMA_IMAGE_MAX_SIDE */
    uint64_t max_pixels;    /* width * height above this is refused; 0 = GEMMA_IMAGE_MAX_PIXELS */
} gemma_image_load_options;

/* Decode a file (opts NULL: defaults).  Errors name the file and what is wrong. */
GEMMA_API gemma_status gemma_image_load(const char *path, const gemma_image_load_options *opts, gemma_image **out,
                                        gemma_error *err);
/* Decode size bytes in memory; `name` (NULL: "image") is used in error
 * messages, and its extension is what lets a TGA file (which has no magic
 * number) be recognised. */
GEMMA_API gemma_status gemma_image_load_memory(const void *data, size_t size, const char *name,
                                               const gemma_image_load_options *opts, gemma_image **out,
                                               gemma_error *err);
/* Wrap pixels decoded elsewhere: width * height RGB triplets, `stride` bytes
 * from one row to the next (0: width * 3).  The pixels are copied. */
GEMMA_API gemma_status gemma_image_from_rgb(const uint8_t *rgb, int width, int height, size_t stride,
                                            gemma_image **out, gemma_error *err);
GEMMA_API void gemma_image_free(gemma_image *img);
GEMMA_API int gemma_image_width(const gemma_image *img);    /* after the EXIF orientation */
GEMMA_API int gemma_image_height(const gemma_image *img);
/* The pixels: height rows of width * 3 bytes, no padding. */
GEMMA_API const uint8_t *gemma_image_rgb(const gemma_image *img);
/* "png", "jpeg", "bmp", "gif", "pnm", "tga" or "rgb" (gemma_image_from_rgb). */
GEMMA_API const char *gemma_image_format(const gemma_image *img);

typedef enum {
    GEMMA_LAYOUT_CHW = 0,   /* [crop][channel][y][x]: Hugging Face pixel_values */
    GEMMA_LAYOUT_HWC = 1    /* [crop][y][x][channel]: MLX / NHWC convolutions */
} gemma_pixel_layout;

/* Hugging Face Gemma3ImageProcessor (the PIL one; mlx-vlm's use_fast=False):
 * resize to size x size ignoring the aspect ratio with PIL's antialiased
 * BILINEAR (bit-exact, uint8 after each pass), v / 255 in float64 rounded
 * to float32, then (v - mean) / std in float32.  Pan and scan, when on,
 * cuts a long image into 2..max crops along its long side and processes each
 * like the whole; the output is the whole image first, then the crops, left
 * to right or top to bottom (HF's order). */
typedef struct {
    int size;                         /* output side (896 for Gemma 3 / MedGemma) */
    float mean[3], std[3];            /* per channel, RGB order (0.5, 0.5, 0.5) */
    int pan_and_scan;                 /* 0 = off (the Gemma 3 default) */
    int pan_and_scan_min_crop_size;   /* 256: no crop side below this */
    int pan_and_scan_max_num_crops;   /* 4 */
    double pan_and_scan_min_ratio_to_activate;  /* 1.2: long/short side ratio that turns it on */
    gemma_pixel_layout layout;        /* GEMMA_LAYOUT_CHW */
    int pillow_version;               /* whose resize pass order to match, as major * 100 + minor: 0 = Pillow
                                         13.0 and later (default); 1202 = 12.2 .. 12.x; 1201 = 12.1 and
                                         earlier.  Pillow changed when it resizes vertically first, which moves
                                         some pixels of tall images by one level */
} gemma_preprocess_options;

GEMMA_API gemma_preprocess_options gemma_preprocess_default_options(void);
/* How many images (1 + pan-and-scan crops) preprocessing produces; 0 if the options are invalid. */
GEMMA_API int gemma_image_n_crops(const gemma_image *img, const gemma_preprocess_options *opts);
/* How many floats the output needs: n_crops * 3 * size * size (0 if invalid). */
GEMMA_API size_t gemma_image_preprocess_floats(const gemma_image *img, const gemma_preprocess_options *opts);
/* Write the model's pixel values (opts NULL: defaults) into out.  *n_floats
 * (if not NULL) receives the count needed and *n_crops the number of images;
 * if cap is smaller the call returns GEMMA_ERR_BUFFER and writes nothing (out
 * may be NULL with cap 0 to ask).  Invalid options fail with GEMMA_ERR_ARG. */
GEMMA_API gemma_status gemma_image_preprocess(const gemma_image *img, const gemma_preprocess_options *opts,
                                              float *out, size_t cap, size_t *n_floats, int *n_crops,
                                              gemma_error *err);

#ifdef __cplusplus
}
#endif
#endif /* GEMMA_H */
