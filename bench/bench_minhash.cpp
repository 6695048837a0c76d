// MinHash signature throughput (captions/s) on a generated corpus of ~400-byte captions:
// the fast scheme (one 64-bit hash per shingle + 128 multiply-shift permutations, AVX2 clone)
// vs the textbook baseline (128 independent seeded hashes of every shingle) in the same run,
// plus signature + LSH query/insert as the dedup resolve phase does it.
//   ./build/bin/bench_minhash --benchmark_min_time=1
#include <benchmark/benchmark.h>

#include <random>
#include <string>
#include <vector>

#include "core/hash.h"
#include "curate/minhash.h"

using namespace mf::curate;

namespace {

const std::vector<std::string>& corpus() {
    static std::vector<std::string> c = [] {
        std::mt19937_64 rng(2024);
        // A medical-ish vocabulary with a Zipf-like skew.
        std::vector<std::string> vocab;
        const char* stems[] = {"lesion", "axial",   "contrast", "enhanced", "tumor", "biopsy",
                               "cell",   "stain",   "arrow",    "patient",  "image", "ct",
                               "mri",    "showing", "left",     "right",    "mass",  "nodule",
                               "tissue", "figure",  "with",     "of",       "the"};
        for (int i = 0; i < 4000; ++i)
            vocab.push_back(std::string(stems[i % 23]) + std::to_string(i / 23));
        std::vector<std::string> out;
        for (int n = 0; n < 20000; ++n) {
            std::string s = "Figure " + std::to_string(n % 9 + 1) + ".";
            while (s.size() < 400) {
                double u = std::uniform_real_distribution<double>(0, 1)(rng);
                s += ' ' + vocab[static_cast<size_t>(u * u * u * vocab.size())];
                if (rng() % 11 == 0) s += ',';
            }
            out.push_back(s);
        }
        return out;
    }();
    return c;
}

void BM_MinHashFast(benchmark::State& st, ShingleKind kind) {
    const auto& c = corpus();
    MinHashParams p;
    p.shingle = kind;
    MinHasher h(p);
    std::vector<uint32_t> sig(p.num_perm);
    size_t i = 0, bytes = 0;
    for (auto _ : st) {
        const std::string& text = c[i++ % c.size()];
        std::string norm = normalize_caption(text);
        benchmark::DoNotOptimize(h.signature(norm, sig.data()));
        bytes += text.size();
    }
    st.SetItemsProcessed(st.iterations());
    st.SetBytesProcessed(bytes);
}
BENCHMARK_CAPTURE(BM_MinHashFast, word5, ShingleKind::kWord);
BENCHMARK_CAPTURE(BM_MinHashFast, char5, ShingleKind::kChar);

// Textbook baseline: num_perm independent hash functions (xxh64 seeded i) of every shingle.
void BM_MinHashNaive(benchmark::State& st) {
    const auto& c = corpus();
    const int np = 128;
    std::vector<uint64_t> sig(np);
    size_t i = 0;
    for (auto _ : st) {
        std::string norm = normalize_caption(c[i++ % c.size()]);
        std::vector<std::string_view> w;
        size_t a = 0;
        while (a < norm.size()) {
            size_t b = norm.find(' ', a);
            if (b == std::string::npos) b = norm.size();
            w.push_back(std::string_view(norm).substr(a, b - a));
            a = b + 1;
        }
        std::fill(sig.begin(), sig.end(), UINT64_MAX);
        for (size_t s = 0; s + 5 <= w.size(); ++s) {
            std::string_view sh(w[s].data(), w[s + 4].data() + w[s + 4].size() - w[s].data());
            for (int k = 0; k < np; ++k)
                sig[k] = std::min(sig[k], mf::xxh64(sh, k + 1));
        }
        benchmark::DoNotOptimize(sig.data());
    }
    st.SetItemsProcessed(st.iterations());
}
BENCHMARK(BM_MinHashNaive);

// Signature + LSH query + insert (the resolve phase's per-sample work, minus I/O).
void BM_MinHashFastWithLsh(benchmark::State& st) {
    const auto& c = corpus();
    MinHashParams p;
    MinHasher h(p);
    LshIndex lsh(optimal_lsh_shape(0.8, 128, 0.05, 0.95), 128);
    std::vector<uint32_t> sig(128), cand;
    uint32_t i = 0;
    for (auto _ : st) {
        std::string norm = normalize_caption(c[i % c.size()]);
        h.signature(norm, sig.data());
        lsh.query(sig.data(), &cand);
        if (i < c.size()) lsh.insert(sig.data(), i);
        ++i;
        benchmark::DoNotOptimize(cand.data());
    }
    st.SetItemsProcessed(st.iterations());
}
BENCHMARK(BM_MinHashFastWithLsh);

}  // namespace

BENCHMARK_MAIN();
