// ask.cpp: the C API from C++17 through a small RAII wrapper.
//
//   ask_cpp MODELS_DIR DB_PATH FILE "question"
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>

#include <pith.h>

namespace pith {

// Turns a failed status into an exception carrying pith's message.
struct error : std::runtime_error {
    pith_status status;
    error(pith_status s, const char *what)
        : std::runtime_error(std::string(pith_status_name(s)) + ": " +
                             (pith_last_error() ? pith_last_error() : what)),
          status(s) {}
};

inline void check(pith_status s, const char *what) {
    if (s != PITH_OK) throw error(s, what);
}

// Each handle frees itself once, through the matching _free.
template <typename T, void (*Free)(T *)>
struct deleter {
    void operator()(T *p) const { Free(p); }
};
using answer_ptr = std::unique_ptr<pith_answer, deleter<pith_answer, pith_answer_free>>;
using hits_ptr = std::unique_ptr<pith_hits, deleter<pith_hits, pith_hits_free>>;

class engine {
  public:
    engine(const std::string &models, const std::string &db) {
        pith_engine_options o = pith_engine_options_default();
        o.models_dir = models.c_str();
        o.db_path = db.c_str();
        o.device = "cpu";
        pith_engine *e = nullptr;
        check(pith_engine_open(&o, &e), "open");
        handle_.reset(e);
    }

    int64_t ingest_file(const std::string &path) {
        pith_ingest_result r{};
        check(pith_ingest_file(handle_.get(), path.c_str(), nullptr, nullptr, nullptr, &r),
              "ingest");
        return r.document_id;
    }

    hits_ptr search(const std::string &query, size_t k) {
        pith_hits *h = nullptr;
        check(pith_search(handle_.get(), query.c_str(), k, nullptr, &h), "search");
        return hits_ptr(h);
    }

    // Streams the answer to `on_text`; a callable returning false cancels.
    template <typename F>
    answer_ptr ask(const std::string &question, F on_text) {
        pith_ask_options o = pith_ask_options_default();
        o.max_tokens = 64;
        pith_answer *a = nullptr;
        check(pith_ask(handle_.get(), question.c_str(), &o, &trampoline<F>, &on_text, nullptr, &a),
              "ask");
        return answer_ptr(a);
    }

  private:
    template <typename F>
    static int32_t trampoline(void *user_data, const char *text) {
        return (*static_cast<F *>(user_data))(text) ? 0 : 1;
    }
    std::unique_ptr<pith_engine, deleter<pith_engine, pith_engine_free>> handle_;
};

}  // namespace pith

int main(int argc, char **argv) {
    if (argc != 5) {
        std::cerr << "usage: " << argv[0] << " MODELS_DIR DB_PATH FILE \"question\"\n";
        return 2;
    }
    try {
        pith::engine engine(argv[1], argv[2]);
        engine.ingest_file(argv[3]);
        auto hits = engine.search(argv[4], 3);
        std::cout << "Top passage: " << pith_hits_get(hits.get(), 0)->source << "\n";
        std::cout << "A: ";
        auto answer = engine.ask(argv[4], [](const char *text) {
            std::cout << text << std::flush;
            return true;
        });
        std::cout << "\n";
        for (size_t i = 0; i < pith_answer_citations_len(answer.get()); i++) {
            const pith_citation *c = pith_answer_citation(answer.get(), i);
            std::cout << "  [" << i + 1 << "] " << c->source << " " << c->start_char << "-"
                      << c->end_char << "\n";
        }
    } catch (const pith::error &e) {
        std::cerr << e.what() << "\n";
        return 1;
    }
    return 0;
}
