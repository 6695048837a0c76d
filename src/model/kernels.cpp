#include "model/kernels.h"

#include <ATen/Parallel.h>
#include <immintrin.h>

#include <atomic>
#include <cstdlib>
#include <string_view>

namespace mf::model {

namespace {
// On by default: with weights on huge pages the kernel streams at the machine's read bandwidth,
// about 3.5x libtorch 1.13's bf16 GEMV on this Zen 4 machine (bench_model).
std::atomic<bool> g_enabled{true};

#if defined(__x86_64__) && defined(__GNUC__) && (__GNUC__ >= 11 || defined(__clang__))
#define MF_HAVE_BF16_KERNEL 1

#define MF_TARGET __attribute__((target("avx512f,avx512bw,avx512bf16")))

MF_TARGET inline __m512bh load_bh(const uint16_t* p) {
    return (__m512bh)_mm512_loadu_si512(p);
}
MF_TARGET inline __m512bh load_bh_tail(const uint16_t* p, int n) {
    __mmask32 m = (n >= 32) ? 0xffffffffu : ((1u << n) - 1u);
    return (__m512bh)_mm512_maskz_loadu_epi16(m, p);
}

// Rows [o0, o1) of y[M, O] = x[M, K] . W[O, K]^T, one weight row at a time, so the weights are
// read as one sequential stream. Measured on Zen 4 (2 vCPU): walking 2 or 4 rows side by side
// (the textbook register tiling) halves the read rate to ~12 GB/s, because the hardware prefetcher
// then sees several short streams per row block; one row at a time streams at the machine's read
// bandwidth. x (at most 8 x K bf16) stays in L1, so reusing it across rows buys nothing.
template <int M>
MF_TARGET void gemv_block(const uint16_t* x, int64_t K, const uint16_t* W, int64_t O, int64_t o0,
                          int64_t o1, float* y) {
    const int64_t K64 = K / 64 * 64;
    for (int64_t o = o0; o < o1; ++o) {
        const uint16_t* w = W + o * K;
        // Two accumulators per x row break the dependency chain of vdpbf16ps.
        __m512 a0[M], a1[M];
        for (int m = 0; m < M; ++m)
            a0[m] = a1[m] = _mm512_setzero_ps();
        int64_t k = 0;
        for (; k < K64; k += 64) {
            __m512bh v0 = load_bh(w + k), v1 = load_bh(w + k + 32);
            for (int m = 0; m < M; ++m) {
                a0[m] = _mm512_dpbf16_ps(a0[m], load_bh(x + m * K + k), v0);
                a1[m] = _mm512_dpbf16_ps(a1[m], load_bh(x + m * K + k + 32), v1);
            }
        }
        for (; k < K; k += 32) {
            const int n = static_cast<int>(std::min<int64_t>(32, K - k));
            __m512bh v0 = load_bh_tail(w + k, n);
            for (int m = 0; m < M; ++m)
                a0[m] = _mm512_dpbf16_ps(a0[m], load_bh_tail(x + m * K + k, n), v0);
        }
        for (int m = 0; m < M; ++m)
            y[m * O + o] = _mm512_reduce_add_ps(_mm512_add_ps(a0[m], a1[m]));
    }
}

using BlockFn = void (*)(const uint16_t*, int64_t, const uint16_t*, int64_t, int64_t, int64_t,
                         float*);
BlockFn block_for(int64_t m) {
    switch (m) {
        case 1:
            return gemv_block<1>;
        case 2:
            return gemv_block<2>;
        case 3:
            return gemv_block<3>;
        case 4:
            return gemv_block<4>;
        case 5:
            return gemv_block<5>;
        case 6:
            return gemv_block<6>;
        case 7:
            return gemv_block<7>;
        default:
            return gemv_block<8>;
    }
}
#endif

bool cpu_has_bf16() {
#ifdef MF_HAVE_BF16_KERNEL
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw");
#else
    return false;
#endif
}
}  // namespace

bool bf16_gemv_available() {
    static const bool ok = cpu_has_bf16();
    return ok;
}
void set_custom_kernels(bool on) {
    g_enabled.store(on);
}
bool custom_kernels_enabled() {
    static const bool env_on = [] {
        const char* e = std::getenv("MF_BF16_KERNEL");
        if (e && std::string_view(e) == "0") g_enabled.store(false);
        return true;
    }();
    (void)env_on;
    return g_enabled.load();
}

torch::Tensor linear_bf16_small(const torch::Tensor& x, const torch::Tensor& w,
                                const torch::Tensor& b, bool float_out) {
    TORCH_CHECK(bf16_gemv_available(), "the AVX512-BF16 kernel is not available on this CPU");
    TORCH_CHECK(x.dim() == 2 && x.size(0) <= kMaxKernelRows && x.scalar_type() == torch::kBFloat16);
    TORCH_CHECK(w.dim() == 2 && w.scalar_type() == torch::kBFloat16 && w.size(1) == x.size(1));
    auto xc = x.contiguous();
    auto wc = w.contiguous();
    const int64_t M = x.size(0), K = x.size(1), O = w.size(0);
    auto y = torch::empty({M, O}, torch::kFloat32);
#ifdef MF_HAVE_BF16_KERNEL
    const auto* xp = reinterpret_cast<const uint16_t*>(xc.data_ptr<at::BFloat16>());
    const auto* wp = reinterpret_cast<const uint16_t*>(wc.data_ptr<at::BFloat16>());
    float* yp = y.data_ptr<float>();
    BlockFn fn = block_for(M);
    // ~64 KB of weights per task at least: enough work per thread, good balance.
    int64_t grain = std::max<int64_t>(2, (32768 / std::max<int64_t>(K, 1)) & ~int64_t{1});
    at::parallel_for(0, O, grain, [&](int64_t o0, int64_t o1) { fn(xp, K, wp, O, o0, o1, yp); });
#endif
    if (b.defined()) y.add_(b.to(torch::kFloat32));
    return float_out ? y : y.to(torch::kBFloat16);
}

void gemv_bf16_multi(const uint16_t* x, int64_t M, int64_t K, const GemvJob* jobs, int n_jobs) {
    TORCH_CHECK(bf16_gemv_available(), "the AVX512-BF16 kernel is not available on this CPU");
    TORCH_CHECK(M >= 1 && M <= kMaxKernelRows, "gemv_bf16_multi: M must be 1..", kMaxKernelRows);
#ifdef MF_HAVE_BF16_KERNEL
    int64_t total = 0;
    for (int j = 0; j < n_jobs; ++j)
        total += jobs[j].rows;
    BlockFn fn = block_for(M);
    const int64_t grain = std::max<int64_t>(2, 32768 / std::max<int64_t>(K, 1));
    at::parallel_for(0, total, grain, [&](int64_t a, int64_t b) {
        int64_t base = 0;
        for (int j = 0; j < n_jobs && base < b; ++j) {
            const int64_t lo = std::max(a, base), hi = std::min(b, base + jobs[j].rows);
            if (lo < hi) fn(x, K, jobs[j].w, jobs[j].rows, lo - base, hi - base, jobs[j].y);
            base += jobs[j].rows;
        }
    });
#else
    (void)x, (void)K, (void)jobs, (void)n_jobs;
#endif
}

torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b,
                     bool float_out) {
    if (custom_kernels_enabled() && x.scalar_type() == torch::kBFloat16 &&
        w.scalar_type() == torch::kBFloat16 && !torch::GradMode::is_enabled() && x.dim() >= 1 &&
        bf16_gemv_available()) {
        const int64_t K = x.size(-1);
        const int64_t rows = x.numel() / std::max<int64_t>(K, 1);
        if (rows >= 1 && rows <= kMaxKernelRows && w.is_contiguous()) {
            auto y = linear_bf16_small(x.reshape({rows, K}), w, b, float_out);
            std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
            shape.back() = w.size(0);
            return y.view(shape);
        }
    }
    auto y = torch::linear(x, w, b.defined() ? b : torch::Tensor());
    return float_out ? y.to(torch::kFloat32) : y;
}

}  // namespace mf::model
