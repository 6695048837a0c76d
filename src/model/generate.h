// Autoregressive generation with a KV cache: prefill the prompt (text + image embeddings), then
// one token at a time. Streams text deltas; honours EOS ids, stop strings and max_tokens.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "model/llava.h"
#include "model/sampler.h"

namespace mf::model {

struct GenerationResult {
    std::vector<int32_t> tokens;  // generated ids (EOS not included)
    std::string text;             // decoded, cut before a stop string
    std::string finish_reason;    // "stop" (EOS or stop string) | "length" | "cancelled"
    int64_t prompt_tokens = 0;    // positions after image expansion
    double prefill_seconds = 0, decode_seconds = 0;
};

using DecodeFn = std::function<std::string(const std::vector<int32_t>&)>;
// Receives each new piece of text; return false to stop generating.
using DeltaFn = std::function<bool(std::string_view delta)>;

struct GenerateRequest {
    std::vector<int64_t> prompt_ids;  // with kImageMarker entries, one per image
    torch::Tensor pixels;             // [N, 3, S, S] float32 (preprocessed), or undefined
    SamplingParams sampling;
    std::vector<int64_t> eos_ids;
};

GenerationResult generate(MultimodalLM& m, const GenerateRequest& req, const DecodeFn& decode,
                          const DeltaFn& on_delta = {});

// Logits [T, V] (float32) at every position of the prompt, without a cache (for tests and
// scoring).
torch::Tensor prompt_logits(MultimodalLM& m, const std::vector<int64_t>& ids,
                            const torch::Tensor& pixels);

// Text that is safe to show while generating: `text` minus an incomplete UTF-8 tail (decoded as
// U+FFFD) and minus a suffix that could still grow into a stop string.
size_t stream_safe_length(std::string_view text, const std::vector<std::string>& stop);

}  // namespace mf::model
