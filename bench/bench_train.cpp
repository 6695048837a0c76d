// Training throughput of `medforge train` on a ~100M-parameter LLaVA-shaped model (`model init
// --size small`: Qwen2-style 8 x 768 decoder + 4 x 256 CLIP tower at 336 px + MLP projector),
// stage instruct (projector + LLM trained, vision frozen), against the FLOP bound measured in the
// same run: model FLOPs = 6 x trained params x positions + 2 x vision params x vision tokens
// (forward only), at the GEMM rate of a plain torch::matmul of the model's shapes (f32 and bf16).
//
//   build/bin/bench_train [--steps 3] [--batch 2] [--text 128] [--threads 0]
#include <ATen/autocast_mode.h>
#include <fmt/core.h>

#include <chrono>
#include <cstring>
#include <string>

#include "model/init.h"
#include "model/llava.h"
#include "train/data.h"
#include "train/trainer.h"

using namespace mf;
using Clock = std::chrono::steady_clock;

static double seconds_since(Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
}

// Best-of-3 GEMM rate (FLOP/s) for [M, K] x [K, N] in `dt`.
static double gemm_rate(int64_t M, int64_t K, int64_t N, torch::Dtype dt) {
    auto a = torch::randn({M, K}).to(dt), b = torch::randn({K, N}).to(dt);
    torch::matmul(a, b);
    double best = 1e30;
    for (int r = 0; r < 3; ++r) {
        auto t = Clock::now();
        auto c = torch::matmul(a, b);
        best = std::min(best, seconds_since(t));
    }
    return 2.0 * M * K * N / best;
}

int main(int argc, char** argv) {
    int steps = 3, batch = 2, text = 128, threads = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string k = argv[i];
        int v = std::atoi(argv[i + 1]);
        if (k == "--steps")
            steps = v;
        else if (k == "--batch")
            batch = v;
        else if (k == "--text")
            text = v;
        else if (k == "--threads")
            threads = v;
    }
    model::init_torch_threads(threads);
    auto cfg = model::init_config("llava-qwen2", "small");
    if (!cfg.ok()) {
        fmt::print(stderr, "{}\n", cfg.status().to_string());
        return 1;
    }
    cfg->text.vocab_size = 32000;
    model::MultimodalLM m(*cfg);
    m->train();
    auto params = train::set_trainable(m, false, true, true);
    auto pc = model::count_params(m);
    int64_t trained = 0;
    for (auto& p : params)
        trained += p.numel();
    const int64_t P = m->image_tokens();
    fmt::print(
        "model: {:.1f}M params (lm {:.1f}M, vision {:.1f}M, projector {:.1f}M); trained {:.1f}M; "
        "{} threads\n",
        pc.total() / 1e6, pc.lm / 1e6, pc.vision / 1e6, pc.projector / 1e6, trained / 1e6,
        torch::get_num_threads());
    // Synthetic batch: one image + `text` text tokens per sample, all text trained.
    std::vector<train::Sample> samples(batch);
    for (int b = 0; b < batch; ++b) {
        auto& s = samples[b];
        s.ids.push_back(model::kImageMarker);
        s.labels.push_back(train::kIgnore);
        for (int t = 0; t < text; ++t) {
            s.ids.push_back((t * 131 + b * 7) % 32000);
            s.labels.push_back(s.ids.back());
        }
        s.images = {"synthetic"};
    }
    std::vector<const train::Sample*> ptrs;
    for (auto& s : samples)
        ptrs.push_back(&s);
    const int64_t S = cfg->vision.image_size;
    auto pixels = torch::randn({batch, 3, S, S});
    const int64_t positions = batch * (P + text);
    const double vis_tokens = batch * (cfg->vision.num_patches() + 1.0);
    const double flops = 6.0 * trained * positions + 2.0 * pc.vision * vis_tokens;

    // GEMM rate at the decoder's MLP shape.
    const int64_t M = positions, K = cfg->text.hidden_size, N = cfg->text.intermediate_size;
    double r32 = gemm_rate(M, K, N, torch::kFloat32);
    double r16 = gemm_rate(M, K, N, torch::kBFloat16);
    fmt::print("GEMM [{}x{}]x[{}x{}]: f32 {:.1f} GFLOP/s, bf16 {:.1f} GFLOP/s\n", M, K, K, N,
               r32 / 1e9, r16 / 1e9);

    torch::optim::AdamW opt(params, torch::optim::AdamWOptions(2e-5).weight_decay(0));
    for (bool bf16 : {false, true}) {
        double best = 1e30;
        for (int s = 0; s <= steps; ++s) {  // step 0 warms up
            auto t = Clock::now();
            opt.zero_grad();
            int64_t ntok = 0;
            torch::Tensor loss;
            {
                if (bf16) {
                    at::autocast::set_cpu_enabled(true);
                    at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
                }
                loss = train::micro_batch_loss_sum(m, ptrs, pixels, &ntok);
                if (bf16) at::autocast::set_cpu_enabled(false);
            }
            (loss / static_cast<double>(ntok)).backward();
            if (bf16) at::autocast::clear_cache();
            torch::nn::utils::clip_grad_norm_(params, 1.0);
            opt.step();
            double dt = seconds_since(t);
            if (s > 0) best = std::min(best, dt);
        }
        double rate = bf16 ? r16 : r32;
        double bound = flops / rate;
        fmt::print(
            "train step {}: {:.3f} s for {} positions = {:.0f} tokens/s; FLOP bound {:.3f} s "
            "({:.0f} tokens/s) -> {:.0f}% of the bound\n",
            bf16 ? "bf16 autocast" : "f32          ", best, positions, positions / best, bound,
            positions / bound, 100.0 * bound / best);
    }
    return 0;
}
