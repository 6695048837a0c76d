// CausalLM::forward_step_batched (continuous batching's decode step) and
// CausalLM::forward_prefill_packed (the batched prefill of newcomers) against one forward_hidden
// call per sequence, with prompts and caches of different lengths.
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

TEST(PackedPrefill, EqualsSeparatePrefillsForPromptsOfDifferentLengths) {
    torch::NoGradGuard ng;
    mf::test::TempDir tmp;
    for (const char* arch : {"qwen2", "llama"}) {
        fs::path dir = make_model(tmp, arch);
        auto m = load_multimodal_lm(dir, LoadOptions{torch::kFloat32});
        ASSERT_TRUE(m.ok()) << m.status().to_string();
        auto& lm = (*m)->lm;
        const int64_t V = lm->config().vocab_size;
        // sequence 2 already holds 6 positions (a continuation): its prefill starts at 6
        const std::vector<int> lens = {5, 17, 1, 9};
        const int64_t B = static_cast<int64_t>(lens.size());
        std::vector<KVCache> a, b;
        std::vector<torch::Tensor> embeds, single;
        for (int64_t i = 0; i < B; ++i) {
            for (auto* caches : {&a, &b}) {
                caches->push_back(KVCache::create(lm->config(), 1, 64, torch::kFloat32));
                if (i == 2) {
                    auto pre = torch::tensor(random_ids(6, V, 50), torch::kInt64).view({1, -1});
                    lm->forward_hidden(lm->embed(pre), &caches->back());
                }
            }
            auto ids = torch::tensor(random_ids(lens[i], V, 300 + i), torch::kInt64).view({1, -1});
            embeds.push_back(lm->embed(ids));
            single.push_back(lm->forward_hidden(embeds.back(), &a[i]));
        }
        std::vector<KVCache*> ptrs;
        for (auto& c : b)
            ptrs.push_back(&c);
        auto got = lm->forward_prefill_packed(embeds, ptrs);
        auto ref = torch::cat(single, 1);  // [1, N, H]
        ASSERT_EQ(got.sizes(), ref.sizes());
        EXPECT_LT(max_abs_diff(got, ref), 1e-5) << arch;
        EXPECT_LT(max_abs_diff(lm->logits(got), lm->logits(ref)), 1e-4) << arch;
        for (int64_t i = 0; i < B; ++i) {
            ASSERT_EQ(b[i].length, a[i].length);
            EXPECT_LT(max_abs_diff(b[i].k[0].narrow(2, 0, b[i].length),
                                   a[i].k[0].narrow(2, 0, a[i].length)),
                      1e-5);
            EXPECT_LT(max_abs_diff(b[i].v[1].narrow(2, 0, b[i].length),
                                   a[i].v[1].narrow(2, 0, a[i].length)),
                      1e-5);
        }
        // greedy continuations from both sets of caches are the same tokens
        int64_t row = 0;
        for (int64_t i = 0; i < B; ++i) {
            row += lens[i];
            auto next_a = lm->logits(ref.select(1, row - 1)).argmax(-1).item<int64_t>();
            auto next_b = lm->logits(got.select(1, row - 1)).argmax(-1).item<int64_t>();
            for (int step = 0; step < 4; ++step) {
                ASSERT_EQ(next_a, next_b) << arch << " sequence " << i << " step " << step;
                auto ha = lm->forward_hidden(lm->embed(torch::tensor({{next_a}})), &a[i]);
                auto hb = lm->forward_hidden(lm->embed(torch::tensor({{next_b}})), &b[i]);
                next_a = lm->logits(ha.select(1, 0)).argmax(-1).item<int64_t>();
                next_b = lm->logits(hb.select(1, 0)).argmax(-1).item<int64_t>();
            }
        }
        // a single sequence through the packed path is forward_hidden
        auto c1 = KVCache::create(lm->config(), 1, 64, torch::kFloat32);
        auto c2 = KVCache::create(lm->config(), 1, 64, torch::kFloat32);
        auto one = lm->forward_prefill_packed({embeds[1]}, {&c1});
        EXPECT_LT(max_abs_diff(one, lm->forward_hidden(embeds[1], &c2)), 1e-5);
        // bad input is a torch error, not a crash
        auto full = KVCache::create(lm->config(), 1, 4, torch::kFloat32);
        EXPECT_THROW(lm->forward_prefill_packed({embeds[1]}, {&full}), c10::Error);
        EXPECT_THROW(lm->forward_prefill_packed({embeds[1]}, {}), c10::Error);
    }
}

}  // namespace
}  // namespace mf::model
