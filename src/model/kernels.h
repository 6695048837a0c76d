// CPU kernels where libtorch is slow: the matrix-vector products of batch-1 (and small-batch)
// decoding. libtorch 1.13's bf16 GEMV reads weights at ~16 GB/s on this machine (Zen 4), a third of
// the memory bandwidth; decode speed is bounded by weight bytes / bandwidth, so a dedicated
// AVX512-BF16 kernel (vdpbf16ps, fp32 accumulation) streams the weights instead.
//
// On by default where the CPU has AVX512-BF16 (MF_BF16_KERNEL=0 or set_custom_kernels(false)
// turns it off); bench_model compares it with libtorch. Batch-1 decoding also has a fused path
// (model/fast_decode.h) built on gemv_bf16_multi.
//
// linear() dispatches: the kernel for bf16 inputs with at most kMaxKernelRows rows, without
// autograd, on CPUs with AVX512-BF16; torch::linear otherwise (training, prefill, f32, other CPUs).
#pragma once

#include <torch/torch.h>

namespace mf::model {

constexpr int64_t kMaxKernelRows = 16;

bool bf16_gemv_available();        // compiled in and the CPU has avx512_bf16
void set_custom_kernels(bool on);  // process-wide switch (benchmarks compare both paths)
// Default: on where available, unless the environment sets MF_BF16_KERNEL=0.
bool custom_kernels_enabled();

// y = x W^T (+ b); x [..., K], W [O, K], b [O] or undefined. Output dtype = x's, or float32 when
// `float_out` (logits).
torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b = {},
                     bool float_out = false);

// The kernel itself (no dispatch): x [M, K] bf16 contiguous with M <= kMaxKernelRows, W [O, K] bf16
// contiguous. Returns [M, O] (bf16, or float32 when float_out).
torch::Tensor linear_bf16_small(const torch::Tensor& x, const torch::Tensor& w,
                                const torch::Tensor& b, bool float_out);

// In place: every row (last dim) of the contiguous bf16 tensor `scores` becomes
// softmax(scale * row), computed in fp32 (AVX-512 exp, ~1e-7 relative) and rounded to bf16. Rows
// run in parallel. This replaces scale + to(float) + softmax + to(bf16) (four passes, two float
// copies) in the vision tower's attention. Other dtypes: the same through torch ops.
void softmax_scaled_(torch::Tensor& scores, double scale);

// LayerNorm over the last dim: fp32 statistics and affine, result in x's dtype. bf16 rows run in
// one fused pass each (torch 1.13's bf16 layer_norm is several times slower here); other dtypes
// go through torch::layer_norm.
torch::Tensor layer_norm(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b,
                         double eps);

// SwiGLU's elementwise part, silu(gate) * up. bf16 without autograd on AVX-512 CPUs (custom
// kernels on): one fused parallel pass, silu in fp32 rounded to bf16, then the product rounded to
// bf16 (the fused decode step's definition; torch 1.13's bf16 silu rounds more intermediates).
// Otherwise torch ops.
torch::Tensor silu_mul(const torch::Tensor& gate, const torch::Tensor& up);

// Several products with the same input in one parallel pass (e.g. q/k/v, or gate/up): for each
// job, y[m * rows + o] = sum_k x[m * K + k] * w[o * K + k] (bf16 inputs, fp32 results), m < M.
// Rows of all jobs are split across threads together. Requires bf16_gemv_available().
struct GemvJob {
    const uint16_t* w;  // [rows, K] bf16, contiguous
    int64_t rows;
    float* y;  // [M, rows]
};
void gemv_bf16_multi(const uint16_t* x, int64_t M, int64_t K, const GemvJob* jobs, int n_jobs);

}  // namespace mf::model
