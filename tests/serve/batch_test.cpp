// CausalLM::forward_step_batched (continuous batching's decode step) against one
// forward_hidden step per sequence, with caches of different lengths.
#include <gtest/gtest.h>

#include "model/model_test_util.h"

namespace mf::model {
namespace {

using namespace mf::model::testing;

TEST(BatchedStep, EqualsSeparateSingleSequenceSteps) {
    torch::NoGradGuard ng;
    mf::test::TempDir tmp;
    for (const char* arch : {"qwen2", "llama"}) {
        fs::path dir = make_model(tmp, arch);
        auto m = load_multimodal_lm(dir, LoadOptions{torch::kFloat32});
        ASSERT_TRUE(m.ok()) << m.status().to_string();
        auto& lm = (*m)->lm;
        const int64_t V = lm->config().vocab_size;
        const std::vector<int> lens = {3, 11, 1, 7};
        const int64_t B = static_cast<int64_t>(lens.size());
        std::vector<KVCache> a, b;
        std::vector<int64_t> next;
        for (int64_t i = 0; i < B; ++i) {
            auto ids = random_ids(lens[i], V, 100 + i);
            auto t = torch::tensor(ids, torch::kInt64).view({1, -1});
            for (auto* caches : {&a, &b}) {
                caches->push_back(KVCache::create(lm->config(), 1, 32, torch::kFloat32));
                lm->forward_hidden(lm->embed(t), &caches->back());
            }
            next.push_back(random_ids(1, V, 900 + i)[0]);
        }
        // two steps, so the second one runs on caches the batched step itself wrote
        for (int step = 0; step < 2; ++step) {
            std::vector<torch::Tensor> single;
            for (int64_t i = 0; i < B; ++i) {
                auto x = lm->embed(torch::tensor({{next[i]}}, torch::kInt64));
                single.push_back(lm->forward_hidden(x, &a[i]));
            }
            auto ref = torch::cat(single, 0);  // [B, 1, H]
            std::vector<KVCache*> ptrs;
            for (auto& c : b)
                ptrs.push_back(&c);
            auto x = lm->embed(torch::tensor(next, torch::kInt64).view({B, 1}));
            auto got = lm->forward_step_batched(x, ptrs);
            ASSERT_EQ(got.sizes(), ref.sizes());
            EXPECT_LT(max_abs_diff(got, ref), 1e-5) << arch << " step " << step;
            EXPECT_LT(max_abs_diff(lm->logits(got), lm->logits(ref)), 1e-4) << arch;
            for (int64_t i = 0; i < B; ++i) {
                EXPECT_EQ(b[i].length, a[i].length);
                EXPECT_LT(max_abs_diff(b[i].k[1].narrow(2, 0, b[i].length),
                                       a[i].k[1].narrow(2, 0, a[i].length)),
                          1e-5);
                next[i] = (next[i] * 31 + 7) % V;
            }
        }
    }
}

}  // namespace
}  // namespace mf::model
