// Engine + generation on tiny checkpoints written by `model init`: template detection, images,
// streaming, stop strings, seeds.
#include <gtest/gtest.h>

#include "io/image.h"
#include "model/engine.h"
#include "model/model_test_util.h"

namespace mf::model {
namespace {

using namespace mf::model::testing;

io::Image test_image(int w, int h) {
    io::Image im;
    im.width = w;
    im.height = h;
    im.pixels.resize(static_cast<size_t>(w) * h * 3);
    for (size_t i = 0; i < im.pixels.size(); ++i)
        im.pixels[i] = static_cast<uint8_t>((i * 7) % 251);
    return im;
}

TEST(Chat, TinyLlavaAnswersWithImagesDeterministically) {
    mf::test::TempDir tmp;
    fs::path dir = make_model(tmp, "llava-qwen2", false);
    auto e = Engine::load(dir);
    ASSERT_TRUE(e.ok()) << e.status().to_string();
    EXPECT_EQ((*e)->chat_template().format(), io::ChatFormat::kHuatuo);
    SamplingParams sp;
    sp.max_tokens = 12;
    sp.ignore_eos = true;
    std::string streamed;
    auto r =
        (*e)->chat({{"user", "What is shown?"}}, {test_image(40, 30)}, sp, [&](std::string_view d) {
            streamed += d;
            return true;
        });
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_EQ(r->tokens.size(), 12u);
    EXPECT_EQ(r->finish_reason, "length");
    EXPECT_EQ(streamed, r->text);
    // 576 image positions + the text of the Huatuo template
    EXPECT_GT(r->prompt_tokens, 576);
    auto ids = (*e)->prompt_ids({{"user", "What is shown?"}}, 1);
    ASSERT_TRUE(ids.ok());
    EXPECT_EQ(std::count(ids->begin(), ids->end(), kImageMarker), 1);
    // greedy twice -> same tokens; sampling with a seed -> reproducible, other seed -> differs
    auto r2 = (*e)->chat({{"user", "What is shown?"}}, {test_image(40, 30)}, sp);
    EXPECT_EQ(r->tokens, r2->tokens);
    sp.temperature = 1.5;
    sp.seed = 7;
    auto s1 = (*e)->chat({{"user", "Describe."}}, {}, sp);
    auto s2 = (*e)->chat({{"user", "Describe."}}, {}, sp);
    sp.seed = 8;
    auto s3 = (*e)->chat({{"user", "Describe."}}, {}, sp);
    ASSERT_TRUE(s1.ok() && s2.ok() && s3.ok()) << s1.status().to_string();
    EXPECT_EQ(s1->tokens, s2->tokens);
    EXPECT_NE(s1->tokens, s3->tokens);
}

TEST(Chat, MarkerCountMustMatchImages) {
    mf::test::TempDir tmp;
    fs::path dir = make_model(tmp, "llava-qwen2", false);
    auto e = Engine::load(dir);
    ASSERT_TRUE(e.ok());
    auto ids = (*e)->prompt_ids({{"user", "<image>\n<image>\ncompare"}}, 1);
    ASSERT_FALSE(ids.ok());
    EXPECT_NE(ids.status().message().find("2 <image> markers but 1 images"), std::string::npos);
    fs::path text = make_model(tmp, "qwen2", false);
    auto t = Engine::load(text);
    ASSERT_TRUE(t.ok()) << t.status().to_string();
    EXPECT_EQ((*t)->chat_template().format(), io::ChatFormat::kChatML);
    auto r = (*t)->chat({{"user", "hi"}}, {test_image(8, 8)}, SamplingParams{});
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("text-only"), std::string::npos);
    fs::path llama = make_model(tmp, "llama", false);
    auto l = Engine::load(llama);
    ASSERT_TRUE(l.ok()) << l.status().to_string();
    EXPECT_EQ((*l)->chat_template().format(), io::ChatFormat::kLlama3);
}

TEST(Chat, StopStringsCutTheTextAndHoldBackPrefixes) {
    EXPECT_EQ(stream_safe_length("hello wor", {"world"}), 6u);
    EXPECT_EQ(stream_safe_length("hello", {"xyz"}), 5u);
    EXPECT_EQ(stream_safe_length("ab\xEF\xBF\xBD", {}), 2u);
    mf::test::TempDir tmp;
    fs::path dir = make_model(tmp, "qwen2", false);
    auto e = Engine::load(dir);
    ASSERT_TRUE(e.ok());
    SamplingParams sp;
    sp.max_tokens = 24;
    sp.ignore_eos = true;
    auto full = (*e)->chat({{"user", "x"}}, {}, sp);
    ASSERT_TRUE(full.ok());
    ASSERT_GE(full->text.size(), 6u);
    // stop at a piece of the greedy text: the output is cut right before it
    std::string stop = full->text.substr(3, 3);
    sp.stop = {stop};
    std::string streamed;
    auto cut = (*e)->chat({{"user", "x"}}, {}, sp, [&](std::string_view d) {
        streamed += d;
        return true;
    });
    ASSERT_TRUE(cut.ok());
    EXPECT_EQ(cut->finish_reason, "stop");
    EXPECT_EQ(cut->text, full->text.substr(0, full->text.find(stop)));
    EXPECT_EQ(streamed, cut->text);
    // context overflow is an error, not a crash
    sp.max_tokens = 100000;
    auto big = (*e)->chat({{"user", "x"}}, {}, sp);
    ASSERT_FALSE(big.ok());
    EXPECT_NE(big.status().message().find("context"), std::string::npos);
}

TEST(Sampler, GreedyTopKTopPAndDistribution) {
    std::vector<float> logits = {0.1f, 2.0f, 1.0f, -1.0f};
    SamplingParams p;
    Sampler g(p);
    EXPECT_EQ(g.sample(logits, {}), 1);
    p.temperature = 1.0;
    p.top_k = 1;
    Sampler k1(p);
    for (int i = 0; i < 20; ++i)
        EXPECT_EQ(k1.sample(logits, {}), 1);
    p.top_k = 0;
    p.top_p = 0.5;  // token 1 alone has ~0.6 of the mass
    Sampler tp(p);
    for (int i = 0; i < 20; ++i)
        EXPECT_EQ(tp.sample(logits, {}), 1);
    // repetition penalty: a seen positive logit is divided -> greedy moves to token 2
    SamplingParams rp;
    rp.repetition_penalty = 3.0;
    Sampler r(rp);
    std::vector<float> l2 = logits;
    std::vector<int64_t> hist = {1};
    EXPECT_EQ(r.sample(l2, hist), 2);
    // temperature 1: empirical frequencies follow the softmax
    SamplingParams t1;
    t1.temperature = 1.0;
    t1.seed = 11;
    Sampler s(t1);
    std::vector<int> counts(4);
    const int N = 40000;
    for (int i = 0; i < N; ++i) {
        std::vector<float> l = logits;
        ++counts[s.sample(l, {})];
    }
    double z = 0;
    for (float x : logits)
        z += std::exp(x);
    for (int i = 0; i < 4; ++i) {
        double p_i = std::exp(logits[i]) / z;
        double sd = std::sqrt(p_i * (1 - p_i) / N);
        EXPECT_NEAR(counts[i] / double(N), p_i, 5 * sd) << i;
    }
}

}  // namespace
}  // namespace mf::model
