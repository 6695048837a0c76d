// Open-question metrics, bootstrap CIs, prompts, shards.
#include <gtest/gtest.h>

#include <cmath>

#include "eval/eval.h"

namespace mf::eval {
namespace {

TEST(Normalize, LowerPunctuationArticles) {
    EXPECT_EQ(normalize_answer("The Left Lung."), "left lung");
    EXPECT_EQ(normalize_answer("  An MRI,  (T2) "), "mri t2");
    EXPECT_EQ(normalize_answer("a"), "");
}

TEST(OpenMetrics, HandComputed) {
    // ref "left lung" (2 tokens), pred "the left upper lung" -> tokens left upper lung (3).
    OpenScores s = score_open("the left upper lung", "Left lung");
    EXPECT_DOUBLE_EQ(s.exact, 0.0);
    EXPECT_DOUBLE_EQ(s.recall, 1.0);                                // 2/2
    EXPECT_DOUBLE_EQ(s.f1, 2 * (2.0 / 3) * 1.0 / (2.0 / 3 + 1.0));  // P=2/3, R=1 -> 0.8
    EXPECT_NEAR(s.f1, 0.8, 1e-12);
    EXPECT_DOUBLE_EQ(s.bleu1, 2.0 / 3);  // c=3 > r=2: BP = 1
    // Short prediction: BP = exp(1 - r/c) = exp(1 - 3/1).
    OpenScores t = score_open("liver", "the liver and spleen");
    EXPECT_DOUBLE_EQ(t.recall, 1.0 / 3);
    EXPECT_NEAR(t.bleu1, 1.0 * std::exp(1.0 - 3.0), 1e-12);
    EXPECT_NEAR(t.f1, 2 * 1.0 * (1.0 / 3) / (1.0 + 1.0 / 3), 1e-12);  // 0.5
    OpenScores e = score_open("The MRI.", "mri");
    EXPECT_DOUBLE_EQ(e.exact, 1.0);
    EXPECT_DOUBLE_EQ(e.f1, 1.0);
    EXPECT_DOUBLE_EQ(e.bleu1, 1.0);
    OpenScores z = score_open("", "mri");
    EXPECT_DOUBLE_EQ(z.f1, 0.0);
    EXPECT_DOUBLE_EQ(z.bleu1, 0.0);
    // Clipped counts: "lung lung lung" vs "lung" -> precision 1/3.
    OpenScores c = score_open("lung lung lung", "lung");
    EXPECT_DOUBLE_EQ(c.bleu1, 1.0 / 3);
    EXPECT_DOUBLE_EQ(c.recall, 1.0);
}

TEST(Bootstrap, ContainsPointEstimateAndNarrowsWithN) {
    auto make = [](int n) {
        std::vector<double> v;
        for (int i = 0; i < n; ++i)
            v.push_back(i % 10 < 7 ? 1.0 : 0.0);  // 70%
        return v;
    };
    Interval small = bootstrap_mean_ci(make(50), 1000, 7);
    Interval large = bootstrap_mean_ci(make(2000), 1000, 7);
    EXPECT_LE(small.lo, 0.7);
    EXPECT_GE(small.hi, 0.7);
    EXPECT_LE(large.lo, 0.7);
    EXPECT_GE(large.hi, 0.7);
    EXPECT_LT(large.hi - large.lo, (small.hi - small.lo) / 3);
    // Seeded: identical twice.
    Interval again = bootstrap_mean_ci(make(50), 1000, 7);
    EXPECT_EQ(small.lo, again.lo);
    EXPECT_EQ(small.hi, again.hi);
    // Degenerate: all correct.
    Interval one = bootstrap_mean_ci(std::vector<double>(30, 1.0), 200, 1);
    EXPECT_DOUBLE_EQ(one.lo, 1.0);
    EXPECT_DOUBLE_EQ(one.hi, 1.0);
}

TEST(Bootstrap, MacroContainsMacroMean) {
    std::vector<double> v;
    std::vector<int> g;
    for (int i = 0; i < 300; ++i) {
        g.push_back(i % 3);
        v.push_back((i % 3 == 0) ? 1.0 : (i % 2 ? 1.0 : 0.0));
    }
    double m[3] = {0, 0, 0}, n[3] = {0, 0, 0};
    for (size_t i = 0; i < v.size(); ++i) {
        m[g[i]] += v[i];
        n[g[i]] += 1;
    }
    double macro = (m[0] / n[0] + m[1] / n[1] + m[2] / n[2]) / 3;
    Interval ci = bootstrap_macro_ci(v, g, 500, 3);
    EXPECT_LE(ci.lo, macro);
    EXPECT_GE(ci.hi, macro);
}

TEST(Prompt, PaperTemplate) {
    EvalItem it;
    it.question = "Is there a fracture?";
    it.options = {"yes", "no"};
    EXPECT_EQ(build_prompt(it),
              "Is there a fracture?\nA. yes\nB. no\nAnswer with the option's letter from the "
              "given choices directly.");
    it.closed = false;
    EXPECT_EQ(build_prompt(it), "Is there a fracture?");
}

TEST(Shard, PartitionsIds) {
    std::vector<Shard> shards;
    for (uint32_t i = 0; i < 3; ++i)
        shards.push_back(*parse_shard_spec(std::to_string(i) + "/3"));
    for (int k = 0; k < 200; ++k) {
        std::string id = "qid:" + std::to_string(k);
        int owners = 0;
        for (auto& s : shards)
            owners += s.owns(id);
        EXPECT_EQ(owners, 1);
    }
    EXPECT_FALSE(parse_shard_spec("3/3").ok());
    EXPECT_FALSE(parse_shard_spec("x").ok());
}

}  // namespace
}  // namespace mf::eval
