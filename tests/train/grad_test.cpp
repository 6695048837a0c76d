// Gradients of every module type the trainer back-propagates through (decoder layer with
// attention + RoPE + SwiGLU, RMSNorm, CLIP layer, projector, and the whole LLaVA loss) against
// central finite differences, in float64 on a tiny random model.
#include <gtest/gtest.h>

#include <functional>
#include <random>

#include "model/init.h"
#include "model/llava.h"
#include "train/data.h"
#include "train/trainer.h"

namespace mf::train {
namespace {

model::ModelConfig tiny_config(int64_t image_size = 28) {
    auto c = model::init_config("llava-qwen2", "tiny");
    EXPECT_TRUE(c.ok());
    c->text.vocab_size = 50;
    c->vision.image_size = image_size;  // 4 patches of 14
    return *c;
}

// Randomises every parameter (biases and norms too, so each takes part).
void randomise(torch::nn::Module& m, uint64_t seed) {
    torch::manual_seed(seed);
    torch::NoGradGuard ng;
    for (auto& p : m.parameters())
        p.normal_(0, 0.3);
}

#define ASSERT_TRUE_OR(x) \
    if (!(x)) return 1e9

// Max relative error between autograd and central differences of f over `n` random entries of
// each tensor in `wrt` (eps 1e-5, float64; truncation error ~1e-10, rounding ~1e-11).
double check(const std::function<torch::Tensor()>& f, const std::vector<torch::Tensor>& wrt,
             int n = 12) {
    for (auto t : wrt)
        if (t.grad().defined()) t.mutable_grad().zero_();
    f().backward();
    std::mt19937 rng(7);
    double worst = 0;
    for (auto t : wrt) {
        if (!t.grad().defined()) return 1e9;
        auto g = t.grad().reshape({-1});
        auto flat = t.detach().reshape({-1});
        for (int k = 0; k < n; ++k) {
            int64_t i = rng() % flat.numel();
            double orig = flat[i].item<double>();
            const double eps = 1e-5;
            double fp, fm;
            {
                torch::NoGradGuard ng;
                flat[i] = orig + eps;
                fp = f().item<double>();
                flat[i] = orig - eps;
                fm = f().item<double>();
                flat[i] = orig;
            }
            double fd = (fp - fm) / (2 * eps);
            double ag = g[i].item<double>();
            double err = std::abs(fd - ag) / std::max(1e-3, std::abs(fd) + std::abs(ag));
            worst = std::max(worst, err);
        }
    }
    return worst;
}
TEST(TrainGrad, DecoderLayerWithAttentionAndRope) {
    auto c = tiny_config();
    model::DecoderLayer layer(c.text);
    layer->to(torch::kFloat64);
    randomise(*layer, 1);
    auto x = torch::randn({2, 7, c.text.hidden_size}, torch::kFloat64).requires_grad_(true);
    auto R = torch::randn({2, 7, c.text.hidden_size}, torch::kFloat64);
    auto pos = torch::arange(0, 7, torch::kInt64);
    auto [cos, sin] = model::rope_tables(pos, c.text.head_dim, c.text.rope_theta);
    cos = cos.to(torch::kFloat64);
    sin = sin.to(torch::kFloat64);
    auto f = [&] { return (layer->forward(x, cos, sin, nullptr, 0, {}) * R).sum(); };
    std::vector<torch::Tensor> wrt{x};
    for (auto& p : layer->parameters())
        wrt.push_back(p);
    EXPECT_LT(check(f, wrt), 1e-5);
}

TEST(TrainGrad, RMSNorm) {
    model::RMSNorm n(16, 1e-6);
    n->to(torch::kFloat64);
    randomise(*n, 2);
    auto x = torch::randn({3, 16}, torch::kFloat64).requires_grad_(true);
    auto R = torch::randn({3, 16}, torch::kFloat64);
    EXPECT_LT(check([&] { return (n(x) * R).sum(); }, {x, n->weight}), 1e-5);
}

TEST(TrainGrad, ClipLayerAndProjector) {
    auto c = tiny_config();
    model::ClipLayer layer(c.vision);
    layer->to(torch::kFloat64);
    randomise(*layer, 3);
    auto x = torch::randn({2, 5, c.vision.hidden_size}, torch::kFloat64).requires_grad_(true);
    auto R = torch::randn({2, 5, c.vision.hidden_size}, torch::kFloat64);
    std::vector<torch::Tensor> wrt{x};
    for (auto& p : layer->parameters())
        wrt.push_back(p);
    EXPECT_LT(check([&] { return (layer(x) * R).sum(); }, wrt), 1e-5);

    model::Projector proj("mlp2x_gelu", c.vision.hidden_size, c.text.hidden_size);
    proj->to(torch::kFloat64);
    randomise(*proj, 4);
    auto R2 = torch::randn({2, 5, c.text.hidden_size}, torch::kFloat64);
    std::vector<torch::Tensor> wrt2{x};
    for (auto& p : proj->parameters())
        wrt2.push_back(p);
    EXPECT_LT(check([&] { return (proj(x) * R2).sum(); }, wrt2), 1e-5);
}

TEST(TrainGrad, WholeLlavaLossThroughEveryPart) {
    auto c = tiny_config();
    model::MultimodalLM m(c);
    m->set_dtype(torch::kFloat64);
    randomise(*m, 5);
    // Two samples of different lengths (right padding), one with two images, one with none.
    Sample a, b;
    a.ids = {3, model::kImageMarker, 5, model::kImageMarker, 7, 8, 9, 10};
    a.labels = {kIgnore, kIgnore, kIgnore, kIgnore, kIgnore, 8, 9, 10};
    a.images = {"x", "y"};
    b.ids = {11, 12, 13, 14};
    b.labels = {kIgnore, 12, kIgnore, 14};
    std::vector<const Sample*> batch{&a, &b};
    auto px = torch::randn({2, 3, 28, 28}, torch::kFloat64);
    int64_t tokens = 0;
    auto f = [&] { return micro_batch_loss_sum(m, batch, px, &tokens); };
    auto all = set_trainable(m, true, true, true);
    f().backward();
    // The vision tower's last layer and post_layernorm are not used (features of layer -2).
    std::vector<torch::Tensor> params;
    for (auto& p : all)
        if (p.grad().defined()) params.push_back(p);
    EXPECT_GT(params.size(), all.size() - 20);
    EXPECT_LT(check(f, params, 3), 1e-5);
    EXPECT_EQ(tokens, 5);
    // The same with activation checkpointing gives the same gradients.
    for (auto& p : params)
        p.mutable_grad().zero_();
    f().backward();
    std::vector<torch::Tensor> g1;
    for (auto& p : params)
        g1.push_back(p.grad().clone());
    for (auto& p : params)
        p.mutable_grad().zero_();
    micro_batch_loss_sum(m, batch, px, &tokens, nullptr, true).backward();
    for (size_t i = 0; i < params.size(); ++i)
        EXPECT_LT((params[i].grad() - g1[i]).abs().max().item<double>(), 1e-12) << i;
}

TEST(TrainGrad, CosineScheduleMatchesHuggingFace) {
    // get_cosine_schedule_with_warmup(num_warmup_steps=3, num_training_steps=100)
    EXPECT_DOUBLE_EQ(cosine_lr(1.0, 0, 3, 100), 0.0);
    EXPECT_DOUBLE_EQ(cosine_lr(1.0, 1, 3, 100), 1.0 / 3);
    EXPECT_DOUBLE_EQ(cosine_lr(1.0, 3, 3, 100), 1.0);
    EXPECT_NEAR(cosine_lr(1.0, 51, 3, 100), 0.5 * (1 + std::cos(M_PI * 48.0 / 97.0)), 1e-15);
    EXPECT_NEAR(cosine_lr(2e-5, 99, 3, 100), 2e-5 * 0.5 * (1 + std::cos(M_PI * 96.0 / 97.0)),
                1e-20);
}

}  // namespace
}  // namespace mf::train
