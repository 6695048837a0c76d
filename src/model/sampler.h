// Next-token selection: greedy, temperature, top-k, top-p (nucleus), repetition penalty; seeded.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

namespace mf::model {

struct SamplingParams {
    int max_tokens = 256;
    double temperature = 0.0;         // 0 = greedy
    int top_k = 0;                    // 0 = off
    double top_p = 1.0;               // 1 = off
    double repetition_penalty = 1.0;  // CTRL-style: logit / p if > 0 else * p, on seen tokens
    uint64_t seed = 0;
    std::vector<std::string> stop;  // stop strings (not included in the output)
    bool ignore_eos = false;
};

class Sampler {
  public:
    explicit Sampler(const SamplingParams& p) : p_(p), rng_(p.seed) {}
    // logits over the vocabulary (modified in place by the penalty); `history` = ids seen so far
    // (prompt + generated) for the repetition penalty.
    int32_t sample(std::span<float> logits, std::span<const int64_t> history);

  private:
    SamplingParams p_;
    std::mt19937_64 rng_;
    std::vector<std::pair<float, int32_t>> cand_;
};

}  // namespace mf::model
