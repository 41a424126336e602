/*
 * ask: ingest a folder of .txt/.md files, ask a question, stream the answer and print
 * its citations.
 *
 *   ask MODELS_DIR DB_PATH FOLDER "question"
 */
#include <dirent.h>
#include <stdio.h>
#include <string.h>

#include <pith.h>

static int fail(const char *what, pith_status status) {
    fprintf(stderr, "%s: %s: %s\n", what, pith_status_name(status), pith_last_error());
    return 1;
}

static int has_suffix(const char *name, const char *suffix) {
    size_t n = strlen(name), s = strlen(suffix);
    return n >= s && strcmp(name + n - s, suffix) == 0;
}

static int32_t on_progress(void *user_data, const pith_ingest_progress *p) {
    (void)user_data;
    fprintf(stderr, "\r  %zu/%zu files, %zu passages, %.1f passages/s", p->documents_done,
            p->documents_total, p->passages_done, p->passages_per_s);
    return 0; /* non-zero would cancel */
}

static void on_document(void *user_data, const char *path, pith_status status,
                        const pith_ingest_result *result, const char *error) {
    (void)user_data;
    if (status == PITH_OK)
        fprintf(stderr, "\n%s: document %lld, %s", path, (long long)result->document_id,
                result->duplicate ? "already stored" : "stored");
    else
        fprintf(stderr, "\n%s: skipped: %s", path, error);
}

static int32_t on_text(void *user_data, const char *text) {
    (void)user_data;
    fputs(text, stdout);
    fflush(stdout);
    return 0; /* non-zero would cancel */
}

/* Ingests the folder's .txt and .md files in one call: pith reads and chunks them
 * while the embedder runs, and stores each file in its own transaction. */
static int ingest_folder(const pith_engine *engine, const char *folder) {
    DIR *dir = opendir(folder);
    if (!dir) {
        perror(folder);
        return 1;
    }
    static char names[256][4096];
    const char *paths[256];
    size_t count = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL && count < 256) {
        if (!has_suffix(entry->d_name, ".txt") && !has_suffix(entry->d_name, ".md"))
            continue;
        snprintf(names[count], sizeof names[count], "%s/%s", folder, entry->d_name);
        paths[count] = names[count];
        count++;
    }
    closedir(dir);
    pith_ingest_summary summary;
    pith_status status = pith_ingest_files(engine, paths, count, "{\"kind\": \"sample\"}",
                                           on_progress, on_document, NULL, NULL, &summary);
    if (status != PITH_OK)
        return fail(folder, status);
    fprintf(stderr, "\n%zu stored, %zu already stored, %zu skipped\n", summary.added,
            summary.duplicates, summary.failed);
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s MODELS_DIR DB_PATH FOLDER \"question\"\n", argv[0]);
        return 2;
    }
    pith_engine_options options = pith_engine_options_default();
    options.models_dir = argv[1];
    options.db_path = argv[2];
    options.device = "cpu";

    pith_engine *engine = NULL;
    pith_status status = pith_engine_open(&options, &engine);
    if (status != PITH_OK)
        return fail("open", status);
    if (ingest_folder(engine, argv[3]) != 0) {
        pith_engine_free(engine);
        return 1;
    }

    pith_ask_options ask = pith_ask_options_default();
    ask.prune_ratio = 4.0;
    ask.max_tokens = 64;
    pith_answer *answer = NULL;
    printf("Q: %s\nA: ", argv[4]);
    status = pith_ask(engine, argv[4], &ask, on_text, NULL, NULL, &answer);
    if (status != PITH_OK) {
        pith_engine_free(engine);
        return fail("ask", status);
    }
    printf("\n\nSources:\n");
    for (size_t i = 0; i < pith_answer_citations_len(answer); i++) {
        const pith_citation *c = pith_answer_citation(answer, i);
        printf("  [%zu] %s", i + 1, c->source);
        if (c->page > 0) printf(", p. %u", c->page);
        if (c->heading) printf(", § %s", c->heading);
        printf(", characters %zu-%zu: %.70s\n", c->start_char, c->end_char, c->snippet);
    }
    pith_answer_stats stats;
    pith_answer_stats_get(answer, &stats);
    printf("\ncontext %zu -> %zu tokens, first token after %.0f ms\n",
           stats.context_tokens_before, stats.context_tokens_after, stats.first_token_ms);

    pith_answer_free(answer);
    pith_engine_free(engine);
    return 0;
}
