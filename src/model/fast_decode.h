// Fused batch-1 decode step for bf16 decoders on CPUs with AVX512-BF16.
//
// Decoding one token reads every weight once; the matrix-vector products are memory-bound and the
// rest (norms, RoPE, attention over the cache, SwiGLU) is tiny. Through libtorch the step is ~90
// operator calls per layer, each with dispatch, allocation and thread wake-up costs that add up to
// a large share of a token's time on 2 cores. This path does one layer in 4 parallel passes (q/k/v
// together, o, gate/up together, down) with plain loops in between, reading the same parameters
// and writing the same KV cache as CausalLM::forward_hidden, so the two can be mixed freely (torch
// prefill, fused decode).
//
// Numerics follow the torch bf16 path step by step: every intermediate that torch stores in bf16 is
// rounded to bf16 here at the same point (norm outputs, projections, RoPE products, attention
// scores and probabilities, SwiGLU, residual sums); reductions run in fp32. Only the summation
// order of dot products differs (tests bound the difference).
#pragma once

#include <torch/torch.h>

#include "model/decoder.h"

namespace mf::model {

// True when `fast_decode_step` can run: custom kernels on and available, bf16 parameters, no
// gradient mode, one sequence, one new position, a bf16 cache with room, no padding mask.
bool fast_decode_eligible(const CausalLMImpl& lm, const torch::Tensor& embeds, const KVCache* cache,
                          const torch::Tensor& pad_mask);

// One position through all layers: embeds [1, 1, H] bf16 at position cache.length; writes the
// layer keys/values into the cache and advances it. Returns the final-normed hidden state
// [1, 1, H] (bf16), as forward_hidden does.
torch::Tensor fast_decode_step(CausalLMImpl& lm, const torch::Tensor& embeds, KVCache& cache);

// The same for B independent sequences (continuous batching, as CausalLM::forward_step_batched):
// embeds [B, 1, H], caches[b] = sequence b's own batch-1 cache at any length. Weights are read
// once for all B (the kernel takes up to kMaxKernelRows rows); attention runs per (sequence,
// head). Advances every cache by one; returns [B, 1, H].
bool fast_decode_batch_eligible(const CausalLMImpl& lm, const torch::Tensor& embeds,
                                const std::vector<KVCache*>& caches);
torch::Tensor fast_decode_step_batched(CausalLMImpl& lm, const torch::Tensor& embeds,
                                       const std::vector<KVCache*>& caches);

namespace detail {
// SwiGLU's elementwise part as the step computes it: act = bf16(bf16(silu(bf16(gate))) *
// bf16(up)) over n values; `vectorized` picks the AVX-512 loop (polynomial exp) or the scalar
// one (std::exp), which tests use as the reference.
void silu_mul(const float* gate, const float* up, uint16_t* act, int64_t n, bool vectorized);
}  // namespace detail

}  // namespace mf::model
