/*
 * test_pith: calls every function of pith.h, each error path included, on the real
 * models. Run under valgrind or AddressSanitizer by scripts/test-c.
 *
 *   test_pith MODELS_DIR WORK_DIR
 */
#define _XOPEN_SOURCE 700
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <pith.h>

static int failures = 0;

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            const char *last = pith_last_error();                                     \
            fprintf(stderr, "%s:%d: CHECK failed: %s (last error: %s)\n", __FILE__,     \
                    __LINE__, #cond, last ? last : "none");                           \
            failures++;                                                               \
        }                                                                             \
    } while (0)

/* The call fails with `expected`, and leaves a message for this thread. */
#define CHECK_STATUS(call, expected)                                                  \
    do {                                                                              \
        pith_status s_ = (call);                                                      \
        if (s_ != (expected)) {                                                       \
            const char *last = pith_last_error();                                     \
            fprintf(stderr, "%s:%d: %s gave %s, expected %s (last error: %s)\n",        \
                    __FILE__, __LINE__, #call, pith_status_name(s_),                  \
                    pith_status_name(expected), last ? last : "none");                \
            failures++;                                                               \
        } else if ((expected) != PITH_OK) {                                           \
            CHECK(pith_last_error() != NULL && strlen(pith_last_error()) > 0);        \
        }                                                                             \
    } while (0)

static const char *models_dir;
static char db_path[4096];
static char work_dir[2048];

static void path_in_work(char *out, const char *name) {
    snprintf(out, 4096, "%s/%s", work_dir, name);
}

static void write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len) {
        perror(path);
        exit(2);
    }
    fclose(f);
}

/* A copy of the embedder's directory named `name`: every file linked, except that the
 * weights are cut to `weight_bytes` when that is non-zero. */
static void embedder_copy(char *out, const char *name, size_t weight_bytes) {
    static const char *files[] = {"config.json", "tokenizer.json", "model.safetensors",
                                  "tokenizer_config.json", "special_tokens_map.json",
                                  "vocab.txt", "modules.json", "sentence_bert_config.json"};
    path_in_work(out, name);
    mkdir(out, 0755);
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        char from[4096], to[4096];
        snprintf(from, sizeof from, "%s/minilm/%s", models_dir, files[i]);
        snprintf(to, sizeof to, "%s/%s", out, files[i]);
        unlink(to);
        if (weight_bytes && strcmp(files[i], "model.safetensors") == 0) {
            FILE *f = fopen(from, "rb");
            char *buf = malloc(weight_bytes);
            size_t n = f ? fread(buf, 1, weight_bytes, f) : 0;
            if (f) fclose(f);
            write_file(to, buf, n);
            free(buf);
        } else {
            char *abs = realpath(from, NULL);
            if (!abs || symlink(abs, to) != 0) perror(to);
            free(abs);
        }
    }
}

static void test_static_functions(void) {
    CHECK(pith_last_error() == NULL);
    CHECK(strncmp(pith_version(), "0.", 2) == 0);
    CHECK(strcmp(pith_status_name(PITH_OK), "ok") == 0);
    for (int s = PITH_INVALID_ARGUMENT; s <= PITH_PANIC; s++)
        CHECK(strlen(pith_status_name((pith_status)s)) > 0);
    pith_engine_options o = pith_engine_options_default();
    CHECK(o.db_path == NULL && o.threads == 0 && o.models_dir != NULL);
    pith_ask_options a = pith_ask_options_default();
    CHECK(a.k == 5 && a.prune_ratio == 2.0 && a.max_tokens > 0);
    CHECK(a.abstain_below > 0 && a.abstain_below < 1);
    /* Every _free accepts NULL. */
    pith_engine_free(NULL);
    pith_documents_free(NULL);
    pith_hits_free(NULL);
    pith_answer_free(NULL);
    pith_cancel_free(NULL);
    pith_cancel_trigger(NULL);
    pith_cancel_reset(NULL);
    /* Accessors answer NULL or 0 for NULL. */
    CHECK(pith_documents_len(NULL) == 0 && pith_documents_get(NULL, 0) == NULL);
    CHECK(pith_hits_len(NULL) == 0 && pith_hits_get(NULL, 0) == NULL);
    CHECK(pith_answer_text(NULL) == NULL && pith_answer_citations_len(NULL) == 0);
    CHECK(pith_answer_citation(NULL, 0) == NULL && pith_engine_device(NULL) == NULL);
    CHECK(pith_answer_attributions_len(NULL) == 0 && pith_answer_attribution(NULL, 0) == NULL);
    CHECK(!pith_answer_abstained(NULL) && isnan(pith_answer_grounding(NULL)));
    pith_answer_stats stats;
    CHECK_STATUS(pith_answer_stats_get(NULL, &stats), PITH_INVALID_ARGUMENT);
}

static void test_open_errors(void) {
    pith_engine *engine = (pith_engine *)1;
    pith_engine_options o = pith_engine_options_default();
    o.models_dir = models_dir;
    o.device = "cpu";

    CHECK_STATUS(pith_engine_open(NULL, &engine), PITH_INVALID_ARGUMENT);
    CHECK(engine == NULL);
    CHECK_STATUS(pith_engine_open(&o, NULL), PITH_INVALID_ARGUMENT);
    CHECK_STATUS(pith_engine_open(&o, &engine), PITH_INVALID_ARGUMENT); /* no db_path */
    o.db_path = "\xff\xfe.db";
    CHECK_STATUS(pith_engine_open(&o, &engine), PITH_INVALID_ARGUMENT);
    o.db_path = db_path;
    o.device = "tpu";
    CHECK_STATUS(pith_engine_open(&o, &engine), PITH_INVALID_ARGUMENT);
    o.device = "cpu";
    o.precision = "f8";
    CHECK_STATUS(pith_engine_open(&o, &engine), PITH_INVALID_ARGUMENT);
    CHECK(strstr(pith_last_error(), "f8") != NULL);
    o.precision = NULL;

    char missing[4096];
    path_in_work(missing, "no-such-models");
    o.models_dir = missing;
    CHECK_STATUS(pith_engine_open(&o, &engine), PITH_IO);
    o.models_dir = models_dir;

    char broken[4096];
    embedder_copy(broken, "truncated-embedder", 4096);
    o.embedder_dir = broken;
    CHECK_STATUS(pith_engine_open(&o, &engine), PITH_MODEL);
    CHECK(strstr(pith_last_error(), "model.safetensors") != NULL);
    o.embedder_dir = NULL;

    char garbage[4096];
    path_in_work(garbage, "not-a-database.db");
    const char text[] = "this is not an SQLite database, just some text that is long enough"
                        " to fill a header and more, more, more, more, more, more, more.";
    write_file(garbage, text, sizeof text);
    o.db_path = garbage;
    CHECK_STATUS(pith_engine_open(&o, &engine), PITH_DATABASE);
    CHECK(engine == NULL);
}

static void count_progress(void *user_data, size_t done, size_t total) {
    size_t *calls = user_data;
    CHECK(done <= total && total > 0);
    (*calls)++;
}

static const char *BEES =
    "Honeybees live in colonies of up to sixty thousand workers. The queen lays up to two "
    "thousand eggs a day. Worker bees communicate the direction of flowers through the "
    "waggle dance, whose angle gives the direction relative to the sun. Drones do not "
    "sting, and their only task is to mate with a queen.";

static int64_t test_ingest(const pith_engine *engine) {
    pith_ingest_result r;
    size_t calls = 0;
    CHECK_STATUS(pith_ingest_text(NULL, "x", "y", NULL, NULL, NULL, &r), PITH_INVALID_ARGUMENT);
    CHECK_STATUS(pith_ingest_text(engine, NULL, "y", NULL, NULL, NULL, &r), PITH_INVALID_ARGUMENT);
    CHECK_STATUS(pith_ingest_text(engine, "x", NULL, NULL, NULL, NULL, &r), PITH_INVALID_ARGUMENT);
    CHECK_STATUS(pith_ingest_text(engine, "bad", "caf\xc3(", NULL, NULL, NULL, &r),
                 PITH_INVALID_ARGUMENT);
    CHECK_STATUS(pith_ingest_text(engine, "empty", "  \n ", NULL, NULL, NULL, &r),
                 PITH_INVALID_ARGUMENT);
    CHECK_STATUS(pith_ingest_text(engine, "bees", BEES, "[1, 2]", NULL, NULL, &r),
                 PITH_INVALID_ARGUMENT);

    CHECK_STATUS(pith_ingest_text(engine, "bees", BEES, "{\"topic\": \"bees\"}", count_progress,
                                  &calls, &r),
                 PITH_OK);
    CHECK(r.document_id > 0 && r.passages > 0 && !r.duplicate && calls > 0);
    int64_t bees = r.document_id;
    CHECK_STATUS(pith_ingest_text(engine, "bees again", BEES, NULL, NULL, NULL, &r), PITH_OK);
    CHECK(r.duplicate && r.document_id == bees);
    CHECK_STATUS(pith_ingest_text(engine, "no result", "Lighthouses guide ships at night.",
                                  NULL, NULL, NULL, NULL),
                 PITH_OK);

    char path[4096];
    path_in_work(path, "sourdough.md");
    const char bread[] = "# Sourdough\n\nA sourdough starter is flour and water fermented by "
                         "wild yeast and lactic acid bacteria. Feed it daily.\n";
    write_file(path, bread, sizeof bread - 1);
    CHECK_STATUS(pith_ingest_file(engine, path, NULL, count_progress, &calls, &r), PITH_OK);
    CHECK(r.document_id > bees && !r.duplicate);

    path_in_work(path, "missing.txt");
    CHECK_STATUS(pith_ingest_file(engine, path, NULL, NULL, NULL, &r), PITH_IO);
    path_in_work(path, "binary.txt");
    const char binary[] = {'P', 'K', 3, 4, 0, 0, 1, 2};
    write_file(path, binary, sizeof binary);
    CHECK_STATUS(pith_ingest_file(engine, path, NULL, NULL, NULL, &r), PITH_INVALID_ARGUMENT);
    path_in_work(path, "latin1.txt");
    write_file(path, "caf\xe9", 4);
    CHECK_STATUS(pith_ingest_file(engine, path, NULL, NULL, NULL, &r), PITH_INVALID_ARGUMENT);
    CHECK_STATUS(pith_ingest_file(engine, NULL, NULL, NULL, NULL, &r), PITH_INVALID_ARGUMENT);
    return bees;
}

/* What the pith_ingest_files callbacks saw. */
struct files_seen {
    int cancel_after_first_batch;
    size_t progress_calls, documents, failed;
    pith_ingest_progress last;
};

static int32_t on_files_progress(void *user_data, const pith_ingest_progress *p) {
    struct files_seen *s = user_data;
    CHECK(p->documents_done <= p->documents_total && p->bytes_done <= p->bytes_total);
    CHECK(p->passages_done >= s->last.passages_done && p->passages_done <= p->passages_known);
    s->last = *p;
    s->progress_calls++;
    return s->cancel_after_first_batch && p->passages_done > 0;
}

static void on_file_done(void *user_data, const char *path, pith_status status,
                         const pith_ingest_result *result, const char *error) {
    struct files_seen *s = user_data;
    CHECK(path != NULL && strlen(path) > 0);
    if (status == PITH_OK) {
        CHECK(result != NULL && error == NULL);
    } else {
        CHECK(result == NULL && error != NULL && strlen(error) > 0);
        s->failed++;
    }
    s->documents++;
}

#define FILES 24

/* What the pith_sync callback saw, by change. */
struct changes_seen {
    size_t count[5];
};

static void on_change(void *user_data, const char *path, pith_change change, const char *error) {
    struct changes_seen *s = user_data;
    CHECK(path != NULL && strlen(path) > 0 && change <= PITH_CHANGE_FAILED);
    CHECK((change == PITH_CHANGE_FAILED) == (error != NULL));
    s->count[change]++;
}

/* pith_sync over the folder pith_ingest_files filled (paths[0..FILES], then a binary
 * file): what ingest stored is unchanged; then one file changes and one goes. */
static void test_sync(const pith_engine *engine, const char **paths) {
    char folder[4096];
    path_in_work(folder, "files");
    const char *roots[] = {folder};
    pith_sync_summary summary = {0};
    CHECK_STATUS(pith_sync(NULL, roots, 1, NULL, NULL, NULL, NULL, NULL, &summary),
                 PITH_INVALID_ARGUMENT);
    char missing[4096];
    path_in_work(missing, "no-such-folder");
    const char *missing_roots[] = {missing};
    CHECK_STATUS(pith_sync(engine, missing_roots, 1, NULL, NULL, NULL, NULL, NULL, &summary),
                 PITH_IO);

    struct changes_seen seen = {{0}};
    CHECK_STATUS(pith_sync(engine, roots, 1, NULL, NULL, on_change, &seen, NULL, &summary),
                 PITH_OK);
    CHECK(summary.unchanged == FILES && summary.failed == 1 && summary.added == 0);
    CHECK(seen.count[PITH_CHANGE_FAILED] == 1 && seen.count[PITH_CHANGE_ADDED] == 0);

    const char revised[] = "The keeper rewrote this log: the lantern failed in the storm.";
    write_file(paths[0], revised, sizeof revised - 1);
    unlink(paths[1]);
    struct changes_seen changed = {{0}};
    CHECK_STATUS(pith_sync(engine, roots, 1, "{\"kind\": \"log\"}", NULL, on_change, &changed,
                           NULL, &summary),
                 PITH_OK);
    CHECK(summary.updated == 1 && summary.removed == 1 && summary.unchanged == FILES - 2);
    CHECK(summary.passages > 0);
    CHECK(changed.count[PITH_CHANGE_UPDATED] == 1 && changed.count[PITH_CHANGE_REMOVED] == 1);
    pith_documents *docs = NULL;
    CHECK_STATUS(pith_documents_list(engine, &docs), PITH_OK);
    CHECK(pith_documents_len(docs) == FILES - 1);
    pith_documents_free(docs);
}

/* Many files through the pipeline on an engine of their own: bad arguments, a cancel
 * from the progress callback and one from a pith_cancel, then a run that finishes. */
static void test_ingest_files(void) {
    static const char *words[] = {"harbour", "lantern", "granite", "tide",   "keeper", "signal",
                                  "fog",     "reef",    "beacon",  "storm",  "coast",  "vessel",
                                  "mirror",  "lens",    "island",  "night",  "cliff",  "rope"};
    const size_t nwords = sizeof words / sizeof *words;
    static char names[FILES + 1][4096];
    const char *paths[FILES + 1];
    for (size_t d = 0; d < FILES; d++) {
        char text[8192] = "";
        for (size_t k = 0; k < 40; k++) {
            char sentence[256];
            snprintf(sentence, sizeof sentence,
                     "On day %zu of log %zu the %s saw the %s near the %s. ", k, d,
                     words[(d * 7 + k * 3) % nwords], words[(d + k * 5) % nwords],
                     words[(d * 3 + k) % nwords]);
            strcat(text, sentence);
        }
        char name[64];
        snprintf(name, sizeof name, "files/log-%02zu.txt", d);
        path_in_work(names[d], name);
        write_file(names[d], text, strlen(text));
        paths[d] = names[d];
    }
    path_in_work(names[FILES], "files/binary.txt");
    write_file(names[FILES], "PK\3\4\0\0", 6);
    paths[FILES] = names[FILES];
    const size_t count = FILES + 1;

    char db[4096];
    path_in_work(db, "files.db");
    unlink(db);
    pith_engine_options o = pith_engine_options_default();
    o.models_dir = models_dir;
    o.db_path = db;
    o.device = "cpu";
    pith_engine *engine = NULL;
    CHECK_STATUS(pith_engine_open(&o, &engine), PITH_OK);
    if (!engine) return;

    pith_ingest_summary summary = {0};
    CHECK_STATUS(pith_ingest_files(NULL, paths, count, NULL, NULL, NULL, NULL, NULL, &summary),
                 PITH_INVALID_ARGUMENT);
    CHECK_STATUS(pith_ingest_files(engine, NULL, count, NULL, NULL, NULL, NULL, NULL, &summary),
                 PITH_INVALID_ARGUMENT);
    const char *with_null[] = {paths[0], NULL};
    CHECK_STATUS(pith_ingest_files(engine, with_null, 2, NULL, NULL, NULL, NULL, NULL, &summary),
                 PITH_INVALID_ARGUMENT);
    CHECK_STATUS(pith_ingest_files(engine, paths, count, "[]", NULL, NULL, NULL, NULL, &summary),
                 PITH_INVALID_ARGUMENT);
    CHECK_STATUS(pith_ingest_files(engine, NULL, 0, NULL, NULL, NULL, NULL, NULL, &summary),
                 PITH_OK);
    CHECK(summary.added == 0 && summary.passages == 0);

    /* Cancelled by the callback after the first batch: whole documents only. */
    struct files_seen seen = {.cancel_after_first_batch = 1};
    CHECK_STATUS(pith_ingest_files(engine, paths, count, NULL, on_files_progress, on_file_done,
                                   &seen, NULL, &summary),
                 PITH_CANCELLED);
    pith_documents *docs = NULL;
    CHECK_STATUS(pith_documents_list(engine, &docs), PITH_OK);
    size_t stored = pith_documents_len(docs);
    CHECK(stored < FILES && seen.documents >= stored);
    for (size_t i = 0; i < stored; i++) CHECK(pith_documents_get(docs, i)->passages > 0);
    pith_documents_free(docs);

    /* A pith_cancel set before the call stops it at its first report. */
    pith_cancel *cancel = pith_cancel_new();
    pith_cancel_trigger(cancel);
    CHECK_STATUS(pith_ingest_files(engine, paths, count, NULL, NULL, NULL, NULL, cancel, &summary),
                 PITH_CANCELLED);
    pith_cancel_reset(cancel);

    /* The rest, with the stored ones skipped by content. */
    CHECK_STATUS(pith_documents_list(engine, &docs), PITH_OK);
    stored = pith_documents_len(docs);
    pith_documents_free(docs);
    struct files_seen done = {0};
    CHECK_STATUS(pith_ingest_files(engine, paths, count, "{\"kind\": \"log\"}", on_files_progress,
                                   on_file_done, &done, cancel, &summary),
                 PITH_OK);
    CHECK(summary.added == FILES - stored && summary.duplicates == stored && summary.failed == 1);
    CHECK(summary.passages > 0 && done.documents == count && done.failed == 1);
    CHECK(done.last.documents_done == count && done.last.documents_total == count);
    CHECK(done.last.bytes_done == done.last.bytes_total && done.last.eta_s == 0.0);
    CHECK(done.last.passages_per_s > 0.0 && done.last.elapsed_s > 0.0);
    CHECK_STATUS(pith_documents_list(engine, &docs), PITH_OK);
    CHECK(pith_documents_len(docs) == FILES);
    pith_documents_free(docs);
    pith_cancel_free(cancel);
    test_sync(engine, paths);
    pith_engine_free(engine);
}

static void test_documents(const pith_engine *engine, int64_t bees) {
    pith_documents *docs = (pith_documents *)1;
    CHECK_STATUS(pith_documents_list(NULL, &docs), PITH_INVALID_ARGUMENT);
    CHECK(docs == NULL);
    CHECK_STATUS(pith_documents_list(engine, NULL), PITH_INVALID_ARGUMENT);
    CHECK_STATUS(pith_documents_list(engine, &docs), PITH_OK);
    CHECK(pith_documents_len(docs) == 3);
    const pith_document *d = pith_documents_get(docs, 0);
    CHECK(d != NULL && d->id == bees && strcmp(d->source, "bees") == 0);
    CHECK(d != NULL && strstr(d->metadata_json, "\"topic\"") != NULL);
    CHECK(d != NULL && d->chars == strlen(BEES) && d->passages > 0 && d->created_at > 0);
    CHECK(pith_documents_get(docs, 3) == NULL);
    pith_documents_free(docs);
}

static void test_search(const pith_engine *engine) {
    pith_hits *hits = (pith_hits *)1;
    CHECK_STATUS(pith_search(NULL, "queen", 3, NULL, &hits), PITH_INVALID_ARGUMENT);
    CHECK(hits == NULL);
    CHECK_STATUS(pith_search(engine, NULL, 3, NULL, &hits), PITH_INVALID_ARGUMENT);
    CHECK_STATUS(pith_search(engine, "", 3, NULL, &hits), PITH_INVALID_ARGUMENT);
    CHECK_STATUS(pith_search(engine, "queen", 3, "magic", &hits), PITH_INVALID_ARGUMENT);
    CHECK_STATUS(pith_search(engine, "queen", 3, NULL, NULL), PITH_INVALID_ARGUMENT);
    const char *methods[] = {NULL, "hybrid", "vector", "bm25"};
    for (size_t m = 0; m < 4; m++) {
        CHECK_STATUS(pith_search(engine, "How many eggs does the queen lay?", 2, methods[m], &hits),
                     PITH_OK);
        CHECK(pith_hits_len(hits) >= 1 && pith_hits_len(hits) <= 2);
        const pith_hit *top = pith_hits_get(hits, 0);
        CHECK(top != NULL && strcmp(top->source, "bees") == 0);
        CHECK(top != NULL && strstr(top->text, "eggs") != NULL && top->end_char > top->start_char);
        CHECK(pith_hits_get(hits, 2) == NULL);
        pith_hits_free(hits);
    }
}

struct stream {
    char text[4096];
    size_t pieces;
    int cancel_after; /* cancel through the return value after this many pieces; 0 never */
    pith_cancel *flag; /* when set, triggered from another thread after the first piece */
    pthread_t thread;
    int started;
};

static void *trigger(void *flag) {
    pith_cancel_trigger(flag);
    return NULL;
}

static int32_t on_text(void *user_data, const char *text) {
    struct stream *s = user_data;
    strncat(s->text, text, sizeof s->text - strlen(s->text) - 1);
    s->pieces++;
    if (s->flag && !s->started) {
        s->started = pthread_create(&s->thread, NULL, trigger, s->flag) == 0;
    }
    return s->cancel_after && (int)s->pieces >= s->cancel_after;
}

/* Every answer sentence lies in the text, in order; every support names a citation
 * and lies inside it. */
static void check_attributions(const pith_answer *answer, const char *text) {
    size_t n = pith_answer_attributions_len(answer);
    size_t chars = 0;
    for (const char *p = text; p && *p; p++) {
        chars += ((unsigned char)*p & 0xC0) != 0x80;
    }
    CHECK(n >= 1);
    CHECK(pith_answer_attribution(answer, n) == NULL);
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        const pith_attribution *a = pith_answer_attribution(answer, i);
        CHECK(a != NULL && at <= a->start_char && a->start_char < a->end_char);
        CHECK(a != NULL && a->end_char <= chars && a->supports_len <= 3);
        if (a == NULL) {
            return;
        }
        at = a->end_char;
        for (size_t j = 0; j < a->supports_len; j++) {
            const pith_support *s = &a->supports[j];
            const pith_citation *c = pith_answer_citation(answer, s->citation_index);
            CHECK(c != NULL && c->start_char <= s->start_char && s->end_char <= c->end_char);
            CHECK(strlen(s->text) > 0 && s->score > 0 && s->score <= 1);
        }
    }
}

static void test_ask(const pith_engine *engine) {
    pith_answer *answer = (pith_answer *)1;
    pith_ask_options o = pith_ask_options_default();
    o.k = 2;
    o.max_tokens = 24;
    CHECK_STATUS(pith_ask(NULL, "q?", &o, NULL, NULL, NULL, &answer), PITH_INVALID_ARGUMENT);
    CHECK(answer == NULL);
    CHECK_STATUS(pith_ask(engine, NULL, &o, NULL, NULL, NULL, &answer), PITH_INVALID_ARGUMENT);
    CHECK_STATUS(pith_ask(engine, "q?", &o, NULL, NULL, NULL, NULL), PITH_INVALID_ARGUMENT);
    CHECK_STATUS(pith_ask(engine, "\xc0\xaf?", &o, NULL, NULL, NULL, &answer),
                 PITH_INVALID_ARGUMENT);
    o.prune_ratio = 0.5;
    CHECK_STATUS(pith_ask(engine, "How many eggs does the queen lay?", &o, NULL, NULL, NULL,
                          &answer),
                 PITH_INVALID_ARGUMENT);
    o.prune_ratio = 2.0;

    struct stream s = {0};
    CHECK_STATUS(pith_ask(engine, "How many eggs does the queen lay a day?", &o, on_text, &s,
                          NULL, &answer),
                 PITH_OK);
    const char *text = pith_answer_text(answer);
    CHECK(text != NULL && strlen(text) > 0 && s.pieces > 0);
    CHECK(text != NULL && strstr(s.text, text) != NULL); /* the text is what streamed, trimmed */
    CHECK(pith_answer_citations_len(answer) >= 1);
    const pith_citation *c = pith_answer_citation(answer, 0);
    CHECK(c != NULL && c->document_id > 0 && c->passage_id > 0 && strlen(c->snippet) > 0);
    CHECK(c != NULL && c->end_char > c->start_char && strlen(c->source) > 0);
    CHECK(pith_answer_citation(answer, 99) == NULL);
    check_attributions(answer, text);
    CHECK(!pith_answer_abstained(answer) && pith_answer_grounding(answer) >= o.abstain_below);
    pith_answer_stats stats;
    CHECK_STATUS(pith_answer_stats_get(answer, NULL), PITH_INVALID_ARGUMENT);
    CHECK_STATUS(pith_answer_stats_get(answer, &stats), PITH_OK);
    CHECK(stats.context_tokens_after <= stats.context_tokens_before);
    CHECK(stats.context_tokens_after > 0 && stats.generated_tokens > 0);
    CHECK(stats.prompt_tokens > stats.context_tokens_after && stats.first_token_ms > 0);
    CHECK(stats.generated_tokens <= 24 && stats.retrieve_ms >= 0 && stats.prefill_ms > 0);
    pith_answer_free(answer);

    /* A question the documents do not answer: the notice, no generation, no citations;
       with abstain_below at -1 it is answered anyway. */
    const char *off_topic = "Who won the 1998 FIFA World Cup?";
    CHECK_STATUS(pith_ask(engine, off_topic, &o, NULL, NULL, NULL, &answer), PITH_OK);
    CHECK(pith_answer_abstained(answer) && pith_answer_grounding(answer) < o.abstain_below);
    CHECK(strstr(pith_answer_text(answer), "do not contain") != NULL);
    CHECK(pith_answer_citations_len(answer) == 0);
    CHECK_STATUS(pith_answer_stats_get(answer, &stats), PITH_OK);
    CHECK(stats.generated_tokens == 0);
    pith_answer_free(answer);
    o.abstain_below = -1;
    CHECK_STATUS(pith_ask(engine, off_topic, &o, NULL, NULL, NULL, &answer), PITH_OK);
    CHECK(!pith_answer_abstained(answer));
    CHECK_STATUS(pith_answer_stats_get(answer, &stats), PITH_OK);
    CHECK(stats.generated_tokens > 0);
    pith_answer_free(answer);

    /* No pruning, no callback, default options but for the length. */
    o.prune_ratio = 0;
    CHECK_STATUS(pith_ask(engine, "What do drones do?", &o, NULL, NULL, NULL, &answer), PITH_OK);
    CHECK_STATUS(pith_answer_stats_get(answer, &stats), PITH_OK);
    CHECK(stats.context_tokens_after == stats.context_tokens_before);
    pith_answer_free(answer);

    /* Cancelled by the callback. */
    struct stream c1 = {.cancel_after = 2};
    CHECK_STATUS(pith_ask(engine, "What is the waggle dance?", &o, on_text, &c1, NULL, &answer),
                 PITH_CANCELLED);
    CHECK(answer == NULL && c1.pieces == 2);

    /* Cancelled from another thread, and by a flag set before the call. */
    pith_cancel *flag = pith_cancel_new();
    CHECK(flag != NULL);
    struct stream c2 = {.flag = flag};
    o.max_tokens = 200;
    CHECK_STATUS(pith_ask(engine, "What is the waggle dance?", &o, on_text, &c2, flag, &answer),
                 PITH_CANCELLED);
    if (c2.started) pthread_join(c2.thread, NULL);
    CHECK(answer == NULL && c2.pieces < 200);
    CHECK_STATUS(pith_ask(engine, "What is the waggle dance?", &o, NULL, NULL, flag, &answer),
                 PITH_CANCELLED);
    pith_cancel_reset(flag);
    o.max_tokens = 4;
    CHECK_STATUS(pith_ask(engine, "What is the waggle dance?", &o, NULL, NULL, flag, &answer),
                 PITH_OK);
    pith_answer_free(answer);
    pith_cancel_free(flag);
}

/* A conversation: a follow-up that leans on the question before it is answered from the
   same document; NULL arguments are refused, reset and free accept NULL. */
static void test_chat(const pith_engine *engine) {
    pith_conversation *c = pith_conversation_new();
    CHECK(c != NULL);
    pith_answer *answer = (pith_answer *)1;
    pith_ask_options o = pith_ask_options_default();
    o.k = 1;
    o.max_tokens = 8;
    CHECK_STATUS(pith_chat(engine, NULL, "q?", &o, NULL, NULL, NULL, &answer),
                 PITH_INVALID_ARGUMENT);
    CHECK(answer == NULL);
    CHECK_STATUS(pith_chat(engine, c, "What does a honeybee queen do?", &o, NULL, NULL, NULL,
                           &answer),
                 PITH_OK);
    pith_answer_free(answer);
    CHECK_STATUS(pith_chat(engine, c, "How many eggs does she lay a day?", &o, NULL, NULL, NULL,
                           &answer),
                 PITH_OK);
    CHECK(!pith_answer_abstained(answer) && pith_answer_citations_len(answer) == 1);
    const pith_citation *cited = pith_answer_citation(answer, 0);
    CHECK(cited != NULL && strstr(cited->snippet, "eggs") != NULL);
    /* The same passage as the first turn's: its cache is reused, not run again. */
    pith_answer_stats stats;
    CHECK_STATUS(pith_answer_stats_get(answer, &stats), PITH_OK);
    CHECK(stats.context_tokens_reused > 0 &&
          stats.context_tokens_reused <= stats.context_tokens_before);
    pith_answer_free(answer);
    pith_conversation_reset(c);
    pith_conversation_reset(NULL);
    pith_conversation_free(c);
    pith_conversation_free(NULL);
}

/* Eight threads on one engine at once: four search, two ask, two ingest. Every search
   and every (greedy) answer is what one thread alone gets. */
enum work { SEARCH, ASK, INGEST };

struct worker {
    const pith_engine *engine;
    enum work kind;
    int n;
    int64_t top;          /* SEARCH: the top passage alone */
    const char *expected; /* ASK: the answer alone */
    int ok;
};

static const char *ASKED = "What does a sourdough starter need?";

/* The greedy answer to ASKED, to be freed; NULL on failure. */
static char *answer_alone(const pith_engine *engine) {
    pith_ask_options o = pith_ask_options_default();
    o.k = 2;
    o.max_tokens = 12;
    pith_answer *a = NULL;
    if (pith_ask(engine, ASKED, &o, NULL, NULL, NULL, &a) != PITH_OK) return NULL;
    char *text = strdup(pith_answer_text(a));
    pith_answer_free(a);
    return text;
}

static int search_agrees(const struct worker *w) {
    int ok = 1;
    for (int i = 0; i < 3; i++) {
        pith_hits *hits = NULL;
        if (pith_search(w->engine, "sourdough starter", 1, NULL, &hits) != PITH_OK ||
            pith_hits_len(hits) != 1 || pith_hits_get(hits, 0)->passage_id != w->top)
            ok = 0;
        pith_hits_free(hits);
    }
    return ok;
}

static int ingest_one(const struct worker *w) {
    char source[32], text[160];
    snprintf(source, sizeof source, "log-%d", w->n);
    snprintf(text, sizeof text,
             "Lighthouse log %d. The keeper lit the lamp at dusk and sounded the fog horn twice.",
             w->n);
    pith_ingest_result r;
    return pith_ingest_text(w->engine, source, text, "{}", NULL, NULL, &r) == PITH_OK &&
           r.passages == 1 && !r.duplicate;
}

static void *work_thread(void *arg) {
    struct worker *w = arg;
    if (w->kind == SEARCH) {
        w->ok = search_agrees(w);
    } else if (w->kind == ASK) {
        char *text = answer_alone(w->engine);
        w->ok = text != NULL && strcmp(text, w->expected) == 0;
        free(text);
    } else {
        w->ok = ingest_one(w);
    }
    return NULL;
}

static void test_threads(const pith_engine *engine) {
    pith_hits *hits = NULL;
    CHECK_STATUS(pith_search(engine, "sourdough starter", 1, NULL, &hits), PITH_OK);
    char *alone = answer_alone(engine);
    CHECK(alone != NULL && strlen(alone) > 0);
    if (!hits || !alone) return;
    size_t docs_before = 0;
    pith_documents *docs = NULL;
    CHECK_STATUS(pith_documents_list(engine, &docs), PITH_OK);
    docs_before = pith_documents_len(docs);
    pith_documents_free(docs);

    const enum work kinds[8] = {SEARCH, ASK, INGEST, SEARCH, ASK, SEARCH, INGEST, SEARCH};
    struct worker workers[8];
    pthread_t threads[8];
    for (int i = 0; i < 8; i++) {
        workers[i] = (struct worker){engine, kinds[i], i, pith_hits_get(hits, 0)->passage_id,
                                     alone, 0};
        CHECK(pthread_create(&threads[i], NULL, work_thread, &workers[i]) == 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(threads[i], NULL);
        if (!workers[i].ok) fprintf(stderr, "thread %d (kind %d) failed\n", i, workers[i].kind);
        CHECK(workers[i].ok);
    }
    CHECK_STATUS(pith_documents_list(engine, &docs), PITH_OK);
    CHECK(pith_documents_len(docs) == docs_before + 2);
    pith_documents_free(docs);
    free(alone);
    pith_hits_free(hits);
}

static void test_delete(const pith_engine *engine, int64_t bees) {
    CHECK_STATUS(pith_delete_document(NULL, bees), PITH_INVALID_ARGUMENT);
    CHECK_STATUS(pith_delete_document(engine, bees), PITH_OK);
    CHECK_STATUS(pith_delete_document(engine, bees), PITH_NOT_FOUND);
    pith_hits *hits = NULL;
    CHECK_STATUS(pith_search(engine, "queen eggs", 5, NULL, &hits), PITH_OK);
    for (size_t i = 0; i < pith_hits_len(hits); i++)
        CHECK(pith_hits_get(hits, i)->document_id != bees);
    pith_hits_free(hits);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODELS_DIR WORK_DIR\n", argv[0]);
        return 2;
    }
    models_dir = argv[1];
    snprintf(work_dir, sizeof work_dir, "%s", argv[2]);
    mkdir(work_dir, 0755);
    path_in_work(db_path, "test.db");
    unlink(db_path);
    char files_dir[4096];
    path_in_work(files_dir, "files");
    mkdir(files_dir, 0755);

    test_static_functions();
    test_open_errors();

    pith_engine_options o = pith_engine_options_default();
    o.models_dir = models_dir;
    o.db_path = db_path;
    o.device = "cpu";
    o.threads = 2;
    pith_engine *engine = NULL;
    CHECK_STATUS(pith_engine_open(&o, &engine), PITH_OK);
    if (!engine) return 1;
    CHECK(strcmp(pith_engine_device(engine), "cpu") == 0);

    /* The thread pool is the process's: a second engine cannot resize it. */
    pith_engine *second = NULL;
    o.threads = 3;
    CHECK_STATUS(pith_engine_open(&o, &second), PITH_INVALID_ARGUMENT);
    /* A database built by another embedder is refused. */
    char other[4096];
    embedder_copy(other, "other-embedder", 0);
    o.threads = 0;
    o.embedder_dir = other;
    CHECK_STATUS(pith_engine_open(&o, &second), PITH_INCOMPATIBLE_DATABASE);
    CHECK(second == NULL);

    int64_t bees = test_ingest(engine);
    test_documents(engine, bees);
    test_search(engine);
    test_threads(engine);
    test_ask(engine);
    test_chat(engine);
    test_delete(engine, bees);
    pith_engine_free(engine);
    test_ingest_files();

    if (failures) {
        fprintf(stderr, "test_pith: %d checks failed\n", failures);
        return 1;
    }
    printf("test_pith: all checks passed\n");
    return 0;
}
