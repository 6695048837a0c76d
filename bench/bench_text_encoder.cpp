// Sentence-encoder throughput (sentences/s) for semantic dedup: random models in the shapes of
// all-MiniLM-L6-v2 (BERT, 6 layers, hidden 384) and all-mpnet-base-v2 (MPNet, 12 layers, 768)
// on generated medical captions of 8..60 words.
//   medforge   TextEncoder::embed: tokenise, sort by length, batches of 32 padded per batch
//   indep      batch_independent mode (what dedup uses): padded to length rounded up to 8,
//              one length per batch, always `batch` rows; rows do not depend on the batch
//   baseline   the same model one sentence at a time (no padding, no batching), same run
//   ./build/bin/bench_text_encoder [--n 256] [--threads 0] [--batch 32]
#include <fmt/core.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "model/text_encoder.h"

using namespace mf;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> captions(size_t n) {
    const char* words[] = {
        "ct",        "scan",     "of",      "the",      "chest",         "shows",      "a",
        "small",     "nodule",   "in",      "right",    "upper",         "lobe",       "axial",
        "contrast",  "enhanced", "mri",     "lesion",   "with",          "biopsy",     "histology",
        "malignant", "cells",    "liver",   "kidney",   "arrow",         "patient",    "year",
        "old",       "man",      "pleural", "effusion", "consolidation", "hypoechoic", "thyroid",
        "mass",      "12",       "mm",      "after",    "follow-up",     "metastases", "both",
        "lungs",     "and"};
    std::mt19937_64 rng(42);
    std::uniform_int_distribution<int> len(8, 60);
    std::uniform_int_distribution<size_t> w(0, sizeof(words) / sizeof(words[0]) - 1);
    std::vector<std::string> out;
    for (size_t i = 0; i < n; ++i) {
        std::string s;
        int L = len(rng);
        for (int k = 0; k < L; ++k) {
            if (k) s += ' ';
            s += words[w(rng)];
        }
        out.push_back(s + ".");
    }
    return out;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
    size_t n = 256;
    int threads = 0;
    int64_t batch = 32;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string a = argv[i];
        if (a == "--n")
            n = std::stoul(argv[i + 1]);
        else if (a == "--threads")
            threads = std::stoi(argv[i + 1]);
        else if (a == "--batch")
            batch = std::stol(argv[i + 1]);
    }
    int nt = threads > 0 ? threads : static_cast<int>(std::thread::hardware_concurrency());
    torch::set_num_threads(nt);
    auto texts = captions(n);
    fs::path tmp = fs::temp_directory_path() / fmt::format("mf_bench_text_encoder_{}", getpid());
    fmt::print("sentences: {}, torch threads: {}, batch: {}\n", n, nt, batch);
    fmt::print("{:<34} {:>12} {:>13} {:>14} {:>7} {:>10}\n", "model", "padded s/s", "indep s/s",
               "one-by-one s/s", "ratio", "avg tokens");
    struct Case {
        model::Arch arch;
        const char* size;
        const char* label;
    };
    for (const Case& c : {Case{model::Arch::kBert, "minilm", "all-MiniLM-L6-v2 shape (bert)"},
                          Case{model::Arch::kMpnet, "base", "all-mpnet-base-v2 shape (mpnet)"}}) {
        fs::path dir = tmp / c.size;
        if (Status st = model::init_text_encoder(c.arch, c.size, dir, 1); !st.ok()) {
            fmt::print(stderr, "init: {}\n", st.to_string());
            return 1;
        }
        model::TextEncoderOptions o;
        o.batch_size = batch;
        auto enc = model::TextEncoder::load(dir, o);
        if (!enc.ok()) {
            fmt::print(stderr, "load: {}\n", enc.status().to_string());
            return 1;
        }
        size_t tokens = 0;
        for (const auto& t : texts)
            tokens += (*enc)->tokenize(t).size();
        // warm-up
        (void)(*enc)->embed(std::span<const std::string>(texts.data(), std::min<size_t>(8, n)));
        auto t0 = std::chrono::steady_clock::now();
        auto all = (*enc)->embed(texts);
        double tb = seconds_since(t0);
        if (!all.ok()) return 1;
        o.batch_independent = true;
        auto same = model::TextEncoder::load(dir, o);
        if (!same.ok()) return 1;
        t0 = std::chrono::steady_clock::now();
        auto all2 = (*same)->embed(texts);
        double ts = seconds_since(t0);
        if (!all2.ok()) return 1;
        t0 = std::chrono::steady_clock::now();
        for (const auto& t : texts) {
            auto one = (*enc)->embed(std::span<const std::string>(&t, 1));
            if (!one.ok()) return 1;
        }
        double t1 = seconds_since(t0);
        fmt::print("{:<34} {:>12.1f} {:>13.1f} {:>14.1f} {:>7.2f} {:>10.1f}\n", c.label, n / tb,
                   n / ts, n / t1, t1 / tb, static_cast<double>(tokens) / n);
        std::fflush(stdout);
    }
    std::error_code ec;
    fs::remove_all(tmp, ec);
    return 0;
}
