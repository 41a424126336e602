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

static void on_progress(void *user_data, size_t done, size_t total) {
    if (done == total)
        fprintf(stderr, "  %s: %zu passages embedded\n", (const char *)user_data, total);
}

static int32_t on_text(void *user_data, const char *text) {
    (void)user_data;
    fputs(text, stdout);
    fflush(stdout);
    return 0; /* non-zero would cancel */
}

static int ingest_folder(const pith_engine *engine, const char *folder) {
    DIR *dir = opendir(folder);
    if (!dir) {
        perror(folder);
        return 1;
    }
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        if (!has_suffix(entry->d_name, ".txt") && !has_suffix(entry->d_name, ".md"))
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", folder, entry->d_name);
        pith_ingest_result result;
        pith_status status = pith_ingest_file(engine, path, "{\"kind\": \"sample\"}",
                                              on_progress, entry->d_name, &result);
        if (status != PITH_OK) {
            closedir(dir);
            return fail(path, status);
        }
        fprintf(stderr, "%s: document %lld, %s\n", path, (long long)result.document_id,
                result.duplicate ? "already stored" : "stored");
    }
    closedir(dir);
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
        printf("  [%zu] %s, characters %zu-%zu: %.70s\n", i + 1, c->source, c->start_char,
               c->end_char, c->snippet);
    }
    pith_answer_stats stats;
    pith_answer_stats_get(answer, &stats);
    printf("\ncontext %zu -> %zu tokens, first token after %.0f ms\n",
           stats.context_tokens_before, stats.context_tokens_after, stats.first_token_ms);

    pith_answer_free(answer);
    pith_engine_free(engine);
    return 0;
}
