// Model engine benchmark (issue 4): a Qwen2-0.5B-shaped decoder (random weights) and CLIP
// ViT-L/14-336, on this machine, with the memory-bandwidth bound measured in the same run.
//
//   build/bin/bench_model [--dtype bf16|f32] [--prefill 512] [--decode 64] [--batch 16]
//                         [--no-vision] [--quick]
//
// Reports: read bandwidth (GB/s, 2 threads over a 2 GiB array), prefill tokens/s, batch-1 decode
// tokens/s against the bound (weight bytes / bandwidth), the same decode through libtorch's own
// linear (the baseline: what a libtorch program gets), a continuous-batching decode step of
// --batch sequences at different lengths (as `medforge serve` runs it), and image encode seconds.
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "model/decoder.h"
#include "model/init.h"
#include "model/kernels.h"
#include "model/llava.h"

using namespace mf::model;
using Clock = std::chrono::steady_clock;

namespace {

double secs(Clock::time_point a) {
    return std::chrono::duration<double>(Clock::now() - a).count();
}

// Sum of a large array on all threads: the machine's read bandwidth, on ordinary 4 KiB pages or
// on transparent huge pages (where the weights live for decoding: model/weights.h). The VM's
// bandwidth moves with its neighbours (36 to 70 GB/s within minutes here), so the decode loop
// samples it again between its rounds.
class BandwidthProbe {
  public:
    explicit BandwidthProbe(bool huge, int64_t floats = int64_t{1} << 28) {  // 1 GiB
        // Random contents: pages of identical bytes could be merged by the kernel (KSM).
        t_ = holder_.register_buffer("t", torch::rand({floats}, torch::kFloat32));
        if (huge && move_to_hugepage_arena(holder_) == 0) ok_ = false;
        t_ = holder_.buffers()[0];
    }
    bool ok() const { return ok_; }
    double sample_gbs(int reps = 3) {
        double best = 0;
        for (int r = 0; r < reps; ++r) {
            auto t0 = Clock::now();
            volatile float s = t_.sum().item<float>();
            (void)s;
            best = std::max(best, t_.numel() * 4.0 / secs(t0) / 1e9);
        }
        return best;
    }

  private:
    torch::nn::Module holder_;
    torch::Tensor t_;
    bool ok_ = true;
};

void random_init(torch::nn::Module& m) {
    torch::NoGradGuard ng;
    for (auto& p : m.parameters())
        p.normal_(0.0, 0.02);
}

}  // namespace

int main(int argc, char** argv) {
    std::string dtype_s = "bf16";
    int prefill = 512, decode = 64, batch = 16;
    bool vision = true, quick = false;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--dtype" && i + 1 < argc)
            dtype_s = argv[++i];
        else if (a == "--prefill" && i + 1 < argc)
            prefill = std::atoi(argv[++i]);
        else if (a == "--decode" && i + 1 < argc)
            decode = std::atoi(argv[++i]);
        else if (a == "--batch" && i + 1 < argc)
            batch = std::atoi(argv[++i]);
        else if (a == "--no-vision")
            vision = false;
        else if (a == "--quick")
            quick = true;
    }
    if (quick) {
        prefill = 64;
        decode = 8;
    }
    init_torch_threads();
    torch::Dtype dt = dtype_s == "f32" ? torch::kFloat32 : torch::kBFloat16;
    fmt::print("threads {}, dtype {}, bf16 kernel available: {}\n", torch::get_num_threads(),
               dtype_s, bf16_gemv_available() ? "yes" : "no");
    const double bw_small = BandwidthProbe(false).sample_gbs(5);
    BandwidthProbe probe(true);
    const double bw_huge = probe.ok() ? probe.sample_gbs(5) : 0;
    fmt::print("read bandwidth: {:.1f} GB/s on 4 KiB pages, {:.1f} GB/s on huge pages\n", bw_small,
               bw_huge);
    auto bandwidth_now = [&] { return probe.ok() ? probe.sample_gbs() : bw_small; };

    {
        // The matrix-vector product alone, on the LM head's shape (151936 x 896 bf16, 272 MB).
        torch::NoGradGuard ng;
        auto x = torch::randn({1, 896}).to(torch::kBFloat16);
        for (int pages = 0; pages < 2; ++pages) {
            torch::nn::Module holder;
            holder.register_buffer("w", (torch::randn({151936, 896}) * 0.02).to(torch::kBFloat16));
            if (pages == 1) move_to_hugepage_arena(holder);
            auto w = holder.buffers()[0];
            double wbytes = w.numel() * 2.0;
            for (int mode = 0; mode < 2; ++mode) {
                set_custom_kernels(mode == 0);
                mf::model::linear(x, w);
                const double bw_before = bandwidth_now();
                double best = 1e9;
                for (int r = 0; r < 5; ++r) {
                    auto t0 = Clock::now();
                    mf::model::linear(x, w);
                    best = std::min(best, secs(t0));
                }
                const double bw_at = (bw_before + bandwidth_now()) / 2;
                fmt::print(
                    "GEMV 151936x896 bf16, {:<10} {:<26}: {:.1f} GB/s of weights = {:.0f}% of "
                    "the read bandwidth sampled around it ({:.1f} GB/s)\n",
                    pages ? "huge pages" : "4 KiB",
                    mode == 0 ? "medforge kernel" : "libtorch linear (baseline)",
                    wbytes / best / 1e9, 100 * wbytes / best / 1e9 / bw_at, bw_at);
            }
        }
        set_custom_kernels(true);
    }
    auto cfg = init_config("qwen2", "0.5b").value();
    cfg.text.vocab_size = 151936;
    CausalLM lm(cfg.text);
    random_init(*lm);
    lm->to(dt);
    lm->eval();
    move_to_hugepage_arena(*lm);  // as Engine::load does
    double bytes = 0;
    for (auto& p : lm->parameters())
        bytes += p.numel() * p.element_size();
    // tied embeddings: the embedding matrix is read once per token by the LM head
    fmt::print("decoder: Qwen2-0.5B shape, {:.0f} M parameters, {:.0f} MB of weights\n",
               bytes / (dt == torch::kFloat32 ? 4 : 2) / 1e6, bytes / 1e6);
    torch::NoGradGuard ng;
    auto ids = torch::randint(0, 150000, {1, prefill}, torch::kInt64);
    for (int mode = 0; mode < 2; ++mode) {
        set_custom_kernels(mode == 0);
        const char* name = mode == 0 ? "medforge" : "libtorch linear (baseline)";
        {  // warm-up (first touch of the weights, allocator)
            KVCache warm = KVCache::create(cfg.text, 1, 16, dt);
            lm->forward_hidden(lm->embed(ids.narrow(1, 0, 8)), &warm);
        }
        KVCache cache = KVCache::create(cfg.text, 1, prefill + decode + 1, dt);
        auto t0 = Clock::now();
        auto h = lm->forward_hidden(lm->embed(ids), &cache);
        auto logits = lm->logits(h.select(1, prefill - 1));
        double tp = secs(t0);
        int64_t next = logits.argmax(-1).item<int64_t>();
        // warm-up step, then timed steps
        auto step = [&](int64_t tok) {
            auto hh = lm->forward_hidden(lm->embed(torch::tensor({{tok}}, torch::kInt64)), &cache);
            return lm->logits(hh.select(1, 0)).argmax(-1).item<int64_t>();
        };
        next = step(next);
        // Rounds of 8 tokens, each with the bandwidth sampled just before it: the bound of a
        // round is the weight bytes at the bandwidth of that moment.
        const int round = 8;
        double td = 0, bound_time = 0;
        std::vector<double> ratios;
        for (int done = 0; done < decode; done += round) {
            const int n = std::min(round, decode - done);
            const double bw_round = bandwidth_now();
            auto t1 = Clock::now();
            for (int i = 0; i < n; ++i)
                next = step(next);
            const double t = secs(t1);
            td += t;
            bound_time += n * bytes / (bw_round * 1e9);
            ratios.push_back(n * bytes / (bw_round * 1e9) / t);
        }
        std::sort(ratios.begin(), ratios.end());
        const double tps = decode / td;
        const double bound = decode / bound_time;
        fmt::print(
            "{:<28} prefill {} tokens: {:.1f} tok/s | decode batch 1: {:.1f} tok/s = {:.0f}% of "
            "the bandwidth bound ({:.1f} tok/s at the bandwidth sampled between rounds; median "
            "round {:.0f}%)\n",
            name, prefill, prefill / tp, tps, 100 * tps / bound, bound,
            100 * ratios[ratios.size() / 2]);
    }
    if (batch > 1 && batch <= kMaxKernelRows) {
        // Continuous batching: `batch` sequences with prompts of 32 + 4b tokens each take one
        // decode step together (forward_step_batched + logits, as the serve scheduler does).
        const int steps = quick ? 4 : 16;
        auto prompts = torch::randint(0, 150000, {1, 32 + 4 * batch}, torch::kInt64);
        double flop = 0;
        for (auto& p : lm->parameters())
            if (p.dim() == 2) flop += 2.0 * p.numel();  // embeddings: the tied LM head
        for (int mode = 0; mode < 2; ++mode) {
            set_custom_kernels(mode == 0);
            std::vector<KVCache> caches;
            std::vector<KVCache*> ptrs;
            caches.reserve(batch);
            std::vector<torch::Tensor> embeds;
            int64_t prompt_tokens = 0;
            for (int b = 0; b < batch; ++b) {
                caches.push_back(KVCache::create(cfg.text, 1, 32 + 4 * b + steps + 2, dt));
                embeds.push_back(lm->embed(prompts.narrow(1, 0, 32 + 4 * b)));
                prompt_tokens += 32 + 4 * b;
            }
            for (auto& c : caches)
                ptrs.push_back(&c);
            // the prompts prefilled together, packed, as the serve scheduler does
            auto tp0 = Clock::now();
            auto hp = lm->forward_prefill_packed(embeds, ptrs);
            const double tprefill = secs(tp0);
            auto toks = torch::randint(0, 150000, {batch, 1}, torch::kInt64);
            double t_layers = 0;
            auto step = [&] {
                auto t0 = Clock::now();
                auto h = lm->forward_step_batched(lm->embed(toks), ptrs);
                t_layers += secs(t0);
                toks = lm->logits(h.squeeze(1)).argmax(-1).view({batch, 1});
            };
            step();  // warm-up
            t_layers = 0;
            std::vector<double> ts;
            for (int i = 0; i < steps; ++i) {
                auto t0 = Clock::now();
                step();
                ts.push_back(secs(t0));
            }
            std::sort(ts.begin(), ts.end());
            const double med = ts[ts.size() / 2];
            fmt::print("{:<28} packed prefill of {} prompts ({} tokens): {:.1f} tok/s\n",
                       mode == 0 ? "medforge" : "libtorch linear (baseline)", batch, prompt_tokens,
                       prompt_tokens / tprefill);
            fmt::print(
                "{:<28} decode step of {} sequences: median {:.1f} ms ({:.1f} tok/s, {:.0f} "
                "GFLOP/s of weight products), best {:.1f} ms; mean {:.1f} ms in the layers, {:.1f} "
                "ms in the LM head and sampling\n",
                mode == 0 ? "medforge" : "libtorch linear (baseline)", batch, med * 1e3,
                batch / med, batch * flop / med / 1e9, ts.front() * 1e3, t_layers / steps * 1e3,
                (std::accumulate(ts.begin(), ts.end(), 0.0) - t_layers) / steps * 1e3);
        }
    }
    set_custom_kernels(false);
    if (vision) {
        auto vc = init_config("llava-qwen2", "0.5b").value();  // CLIP ViT-L/14-336 tower
        vc.text.vocab_size = 1024;
        ClipVision tower(vc.vision);
        random_init(*tower);
        tower->to(dt);
        tower->eval();
        auto px = torch::randn({1, 3, 336, 336}).to(dt);
        tower->hidden_state(px, vc.vision.num_hidden_layers - 1);  // warm-up
        int reps = quick ? 1 : 3;
        double best = 1e9;
        for (int r = 0; r < reps; ++r) {
            auto t0 = Clock::now();
            tower->hidden_state(px, vc.vision.num_hidden_layers - 1);
            best = std::min(best, secs(t0));
        }
        fmt::print("CLIP ViT-L/14-336 image encode (23 of 24 layers, as LLaVA uses it): {:.2f} s\n",
                   best);
    }
    return 0;
}
