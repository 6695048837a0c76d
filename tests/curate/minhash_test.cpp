// MinHash and LSH: normalisation, shingles, estimate vs exact Jaccard (against a textbook
// reference with independent hash functions), LSH recall, shape choice, determinism.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/hash.h"
#include "curate/minhash.h"

namespace mf::curate {
namespace {

std::string random_text(std::mt19937_64& rng, int words, int vocab) {
    std::string s;
    std::uniform_int_distribution<int> d(0, vocab - 1);
    for (int i = 0; i < words; ++i) {
        if (i) s += ' ';
        s += std::string("t").append(std::to_string(d(rng)));
    }
    return s;
}

// Replaces `edits` random words of a normalised text.
std::string edit_words(std::mt19937_64& rng, const std::string& text, int edits) {
    std::vector<std::string> w;
    size_t i = 0;
    while (i <= text.size()) {
        size_t j = text.find(' ', i);
        if (j == std::string::npos) j = text.size();
        w.push_back(text.substr(i, j - i));
        i = j + 1;
    }
    for (int e = 0; e < edits; ++e)
        w[std::uniform_int_distribution<size_t>(0, w.size() - 1)(rng)] =
            std::string("edit").append(std::to_string(rng() % 100000));
    std::string s;
    for (size_t k = 0; k < w.size(); ++k) {
        if (k) s += ' ';
        s += w[k];
    }
    return s;
}

TEST(NormalizeCaption, LowerCasesStripsPunctuationCollapsesSpace) {
    EXPECT_EQ(normalize_caption("  Figure 2: CT-scan of the\tCHEST (axial).  "),
              "figure 2 ct scan of the chest axial");
    EXPECT_EQ(normalize_caption("..."), "");
    EXPECT_EQ(normalize_caption(""), "");
    EXPECT_EQ(normalize_caption("Ärzte\u00a0X"), "Ärzte\u00a0x");  // non-ASCII bytes kept
    EXPECT_EQ(normalize_caption("A,B"), normalize_caption("a b"));
}

TEST(Shingles, WordAndCharCounts) {
    EXPECT_EQ(shingle_hashes("a b c d e f g", ShingleKind::kWord, 5).size(), 3u);
    EXPECT_EQ(shingle_hashes("a b c", ShingleKind::kWord, 5).size(), 1u);  // short: whole text
    EXPECT_EQ(shingle_hashes("", ShingleKind::kWord, 5).size(), 0u);
    EXPECT_EQ(shingle_hashes("abcdefg", ShingleKind::kChar, 5).size(), 3u);
    EXPECT_EQ(shingle_hashes("a a a a a a a a", ShingleKind::kWord, 5).size(), 1u);  // set
    // Order matters inside a shingle.
    EXPECT_NE(shingle_hashes("a b c d e", ShingleKind::kWord, 5),
              shingle_hashes("e d c b a", ShingleKind::kWord, 5));
}

TEST(MinHasher, EmptyTextHasNoSignatureAndIdenticalTextsMatch) {
    MinHasher h(MinHashParams{});
    std::vector<uint32_t> a(128), b(128);
    EXPECT_FALSE(h.signature("", a.data()));
    ASSERT_TRUE(h.signature("the left lung shows a mass", a.data()));
    ASSERT_TRUE(h.signature("the left lung shows a mass", b.data()));
    EXPECT_EQ(a, b);
    EXPECT_DOUBLE_EQ(jaccard_estimate(a.data(), b.data(), 128), 1.0);
    // Same seed -> same permutations across instances; another seed differs.
    MinHasher h2(MinHashParams{});
    MinHashParams p3;
    p3.seed = 99;
    MinHasher h3(p3);
    std::vector<uint32_t> c(128), d(128);
    h2.signature("the left lung shows a mass", c.data());
    h3.signature("the left lung shows a mass", d.data());
    EXPECT_EQ(a, c);
    EXPECT_NE(a, d);
}

// Textbook MinHash: num_perm independent hash functions (xxh64 with seed i) per shingle.
double naive_minhash_estimate(const std::vector<uint64_t>& a, const std::vector<uint64_t>& b,
                              int np) {
    int eq = 0;
    for (int i = 0; i < np; ++i) {
        uint64_t ma = UINT64_MAX, mb = UINT64_MAX;
        for (uint64_t x : a)
            ma = std::min(ma, xxh64(&x, 8, i + 1));
        for (uint64_t x : b)
            mb = std::min(mb, xxh64(&x, 8, i + 1));
        eq += ma == mb;
    }
    return double(eq) / np;
}

TEST(MinHasher, EstimateWithinBinomialBoundOfExactJaccard) {
    std::mt19937_64 rng(7);
    MinHasher h(MinHashParams{});
    const int np = 128;
    double sum_err = 0, sum_err_naive = 0;
    int n = 0;
    for (int t = 0; t < 300; ++t) {
        std::string a = random_text(rng, 40 + rng() % 60, 400);
        std::string b = edit_words(rng, a, rng() % 25);
        auto sa = shingle_hashes(a, ShingleKind::kWord, 5),
             sb = shingle_hashes(b, ShingleKind::kWord, 5);
        double j = exact_jaccard(sa, sb);
        std::vector<uint32_t> ga(np), gb(np);
        ASSERT_TRUE(h.signature(a, ga.data()));
        ASSERT_TRUE(h.signature(b, gb.data()));
        double est = jaccard_estimate(ga.data(), gb.data(), np);
        // The number of equal positions is ~Binomial(np, J): 5 sigma + one position.
        double tol = 5 * std::sqrt(j * (1 - j) / np) + 1.0 / np;
        EXPECT_NEAR(est, j, tol) << "pair " << t;
        sum_err += est - j;
        if (t < 60) sum_err_naive += naive_minhash_estimate(sa, sb, np) - j;
        ++n;
    }
    // Unbiased: the mean error over 300 pairs is small (sd of the mean < 0.003).
    EXPECT_LT(std::abs(sum_err / n), 0.012);
    EXPECT_LT(std::abs(sum_err_naive / 60), 0.02);
}

TEST(MinHasher, CharShinglesEstimateToo) {
    std::mt19937_64 rng(11);
    MinHashParams p;
    p.shingle = ShingleKind::kChar;
    MinHasher h(p);
    for (int t = 0; t < 50; ++t) {
        std::string a = random_text(rng, 60, 300), b = edit_words(rng, a, rng() % 10);
        auto sa = shingle_hashes(a, ShingleKind::kChar, 5),
             sb = shingle_hashes(b, ShingleKind::kChar, 5);
        double j = exact_jaccard(sa, sb);
        std::vector<uint32_t> ga(128), gb(128);
        h.signature(a, ga.data());
        h.signature(b, gb.data());
        EXPECT_NEAR(jaccard_estimate(ga.data(), gb.data(), 128), j,
                    5 * std::sqrt(j * (1 - j) / 128) + 1.0 / 128);
    }
}

TEST(Lsh, ShapeFitsAndFavoursRecall) {
    LshShape s = optimal_lsh_shape(0.8, 128, 0.05, 0.95);
    EXPECT_LE(s.bands * s.rows, 128);
    EXPECT_GT(lsh_candidate_probability(0.8, s), 0.9);
    EXPECT_LT(lsh_candidate_probability(0.4, s), 0.02);
    LshShape eq = optimal_lsh_shape(0.8, 128);
    EXPECT_EQ(eq.bands, 9);  // datasketch's optimum for (0.8, 128) with equal weights
    EXPECT_EQ(eq.rows, 13);
}

TEST(Lsh, CandidateRecallForPairsAboveThreshold) {
    std::mt19937_64 rng(3);
    MinHasher h(MinHashParams{});
    LshShape shape = optimal_lsh_shape(0.8, 128, 0.05, 0.95);
    LshIndex ix(shape, 128);
    const int n = 400;
    std::vector<std::vector<uint32_t>> base(n, std::vector<uint32_t>(128));
    std::vector<std::string> texts;
    for (int i = 0; i < n; ++i) {
        texts.push_back(random_text(rng, 80, 5000));
        h.signature(texts[i], base[i].data());
        ix.insert(base[i].data(), i);
    }
    int above = 0, found = 0, unrelated_hits = 0;
    std::vector<uint32_t> cand;
    for (int i = 0; i < n; ++i) {
        std::string q = edit_words(rng, texts[i], 1);  // J ~ 0.88
        double j = exact_jaccard(shingle_hashes(q, ShingleKind::kWord, 5),
                                 shingle_hashes(texts[i], ShingleKind::kWord, 5));
        std::vector<uint32_t> sig(128);
        h.signature(q, sig.data());
        ix.query(sig.data(), &cand);
        for (uint32_t c : cand)
            unrelated_hits += c != uint32_t(i);
        if (j < 0.85) continue;
        ++above;
        found += std::binary_search(cand.begin(), cand.end(), uint32_t(i));
    }
    ASSERT_GT(above, 300);
    // Predicted recall at J = 0.85 is >= 0.97; allow sampling noise.
    EXPECT_GE(double(found) / above, 0.95);
    EXPECT_LT(unrelated_hits, 5);  // random texts share no bands
}

}  // namespace
}  // namespace mf::curate
