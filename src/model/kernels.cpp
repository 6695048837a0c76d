#include "model/kernels.h"

#include <ATen/Parallel.h>
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <vector>

#include "model/simd_internal.h"

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
// bandwidth. x (at most 16 x K bf16) stays in L1, so reusing it across rows buys nothing.
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

// 9..16 x rows: the x rows become the vector lanes. The x block is repacked once per call into a
// panel xp[(k / 2) * 32 + m * 2 + (k & 1)] = x[m][k] (rows >= M and the odd-K tail are zero), so
// one vdpbf16ps multiplies a k-pair of all 16 x rows by the same k-pair of one weight row, read
// as a 4-byte broadcast straight from the weight stream. kPanelRows weight rows run side by side,
// each with its own accumulator holding that output for the 16 x rows. No horizontal reductions
// and one panel load per kPanelRows products: measured on Zen 4 (2 vCPU) over the 24 layers of a
// Qwen2-0.5B shape with 16 rows, 41 ms against 76 ms for gemv_block_wide<16> (one weight row at
// a time, one x load per product), and 8 rows side by side beat 4, 6, 12, 16 and 24.
constexpr int kPanelRows = 8;
constexpr int64_t kPanelMinRows = 9;  // below, gemv_block<M> (bandwidth-bound there anyway)
constexpr int kPanelLanes = 16;

void pack_x_panel(const uint16_t* x, int64_t M, int64_t K, uint16_t* xp) {
    const int64_t K2 = (K + 1) / 2;
    std::fill(xp, xp + K2 * 2 * kPanelLanes, uint16_t{0});
    for (int64_t m = 0; m < M; ++m)
        for (int64_t k = 0; k < K; ++k)
            xp[(k / 2) * 2 * kPanelLanes + m * 2 + (k & 1)] = x[m * K + k];
}

// Weight rows [o0, o1) against the panel; R rows per tile (R = 1 for the tail rows).
template <int R>
MF_TARGET void gemv_panel_rows(const uint16_t* xp, int64_t M, int64_t K, const uint16_t* W,
                               int64_t O, int64_t o, float* y) {
    __m512 a[R];
    for (int r = 0; r < R; ++r)
        a[r] = _mm512_setzero_ps();
    const uint16_t* w = W + o * K;
    const int64_t Ke = K & ~int64_t{1};
    for (int64_t k = 0; k < Ke; k += 2) {
        const __m512bh xv = load_bh(xp + k * kPanelLanes);
#pragma GCC unroll 16
        for (int r = 0; r < R; ++r) {
            uint32_t pair;
            std::memcpy(&pair, w + r * K + k, sizeof pair);
            a[r] = _mm512_dpbf16_ps(a[r], xv, (__m512bh)_mm512_set1_epi32(static_cast<int>(pair)));
        }
    }
    if (K & 1) {  // the last k alone; the panel's upper half of this pair is zero
        const __m512bh xv = load_bh(xp + Ke * kPanelLanes);
        for (int r = 0; r < R; ++r)
            a[r] = _mm512_dpbf16_ps(a[r], xv, (__m512bh)_mm512_set1_epi32(w[r * K + Ke]));
    }
    alignas(64) float t[R][kPanelLanes];
    for (int r = 0; r < R; ++r)
        _mm512_store_ps(t[r], a[r]);
    for (int64_t m = 0; m < M; ++m)
        for (int r = 0; r < R; ++r)
            y[m * O + o + r] = t[r][m];
}

MF_TARGET void gemv_panel(const uint16_t* xp, int64_t M, int64_t K, const uint16_t* W, int64_t O,
                          int64_t o0, int64_t o1, float* y) {
    int64_t o = o0;
    for (; o + kPanelRows <= o1; o += kPanelRows)
        gemv_panel_rows<kPanelRows>(xp, M, K, W, O, o, y);
    for (; o < o1; ++o)
        gemv_panel_rows<1>(xp, M, K, W, O, o, y);
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
        case 8:
            return gemv_block<8>;
        default:
            return nullptr;
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
    GemvJob job{reinterpret_cast<const uint16_t*>(wc.data_ptr<at::BFloat16>()), O,
                y.data_ptr<float>()};
    gemv_bf16_multi(reinterpret_cast<const uint16_t*>(xc.data_ptr<at::BFloat16>()), M, K, &job, 1);
    if (b.defined()) y.add_(b.to(torch::kFloat32));
    return float_out ? y : y.to(torch::kBFloat16);
}

namespace {

#ifdef MF_HAVE_AVX512_HELPERS
using simd::exp512;
using simd::load_bf16x16;
using simd::store_bf16x16;
using simd::tail_mask;

bool cpu_has_avx512() {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl");
}

MF_AVX512_TARGET void softmax_rows_bf16(uint16_t* data, int64_t r0, int64_t r1, int64_t S,
                                        float scale, float* buf) {
    for (int64_t r = r0; r < r1; ++r) {
        uint16_t* row = data + r * S;
        __m512 mx = _mm512_set1_ps(-INFINITY);
        for (int64_t j = 0; j < S; j += 16) {
            const __mmask16 m = tail_mask(S - j);
            __m512 v = _mm512_mul_ps(load_bf16x16(row + j, m), _mm512_set1_ps(scale));
            _mm512_mask_storeu_ps(buf + j, m, v);
            mx = _mm512_mask_max_ps(mx, m, mx, v);
        }
        const __m512 vmax = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
        __m512 sum = _mm512_setzero_ps();
        for (int64_t j = 0; j < S; j += 16) {
            const __mmask16 m = tail_mask(S - j);
            __m512 e = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, buf + j), vmax));
            _mm512_mask_storeu_ps(buf + j, m, e);
            sum = _mm512_mask_add_ps(sum, m, sum, e);
        }
        const __m512 inv = _mm512_set1_ps(1.f / _mm512_reduce_add_ps(sum));
        for (int64_t j = 0; j < S; j += 16) {
            const __mmask16 m = tail_mask(S - j);
            store_bf16x16(row + j, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, buf + j), inv), m);
        }
    }
}

MF_AVX512_TARGET void layer_norm_rows_bf16(const uint16_t* x, uint16_t* y, int64_t r0, int64_t r1,
                                           int64_t n, const float* w, const float* b, float eps,
                                           float* buf) {
    for (int64_t r = r0; r < r1; ++r) {
        const uint16_t* xr = x + r * n;
        __m512 s = _mm512_setzero_ps();
        for (int64_t j = 0; j < n; j += 16) {
            const __mmask16 m = tail_mask(n - j);
            __m512 v = load_bf16x16(xr + j, m);
            _mm512_mask_storeu_ps(buf + j, m, v);
            s = _mm512_add_ps(s, v);
        }
        const float mean = _mm512_reduce_add_ps(s) / static_cast<float>(n);
        const __m512 vm = _mm512_set1_ps(mean);
        __m512 q = _mm512_setzero_ps();
        for (int64_t j = 0; j < n; j += 16) {
            const __mmask16 m = tail_mask(n - j);
            __m512 d = _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, buf + j), vm);
            q = _mm512_fmadd_ps(d, d, q);
        }
        const float rstd = 1.f / std::sqrt(_mm512_reduce_add_ps(q) / static_cast<float>(n) + eps);
        const __m512 vr = _mm512_set1_ps(rstd);
        for (int64_t j = 0; j < n; j += 16) {
            const __mmask16 m = tail_mask(n - j);
            __m512 d = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, buf + j), vm), vr);
            __m512 o = _mm512_fmadd_ps(d, _mm512_maskz_loadu_ps(m, w + j),
                                       _mm512_maskz_loadu_ps(m, b + j));
            store_bf16x16(y + r * n + j, o, m);
        }
    }
}
MF_AVX512_TARGET void silu_mul_bf16(const uint16_t* g, const uint16_t* u, uint16_t* out, int64_t i0,
                                    int64_t i1) {
    for (int64_t i = i0; i < i1; i += 16) {
        const __mmask16 m = tail_mask(i1 - i);
        store_bf16x16(out + i, simd::silu_times(load_bf16x16(g + i, m), load_bf16x16(u + i, m)), m);
    }
}
#else
bool cpu_has_avx512() {
    return false;
}
#endif

bool avx512_available() {
    static const bool ok = cpu_has_avx512();
    return ok;
}

}  // namespace

void softmax_scaled_(torch::Tensor& scores, double scale) {
#ifdef MF_HAVE_AVX512_HELPERS
    if (scores.scalar_type() == torch::kBFloat16 && scores.is_contiguous() && scores.dim() >= 1 &&
        avx512_available() && scores.numel() > 0) {
        const int64_t S = scores.size(-1), R = scores.numel() / S;
        auto* p = reinterpret_cast<uint16_t*>(scores.data_ptr<at::BFloat16>());
        const int64_t grain = std::max<int64_t>(1, 16384 / S);
        at::parallel_for(0, R, grain, [&](int64_t r0, int64_t r1) {
            std::vector<float> buf(S + 16);
            softmax_rows_bf16(p, r0, r1, S, static_cast<float>(scale), buf.data());
        });
        return;
    }
#endif
    const auto acc = scores.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
    scores.copy_(torch::softmax(scores.to(acc).mul_(scale), -1));
}

torch::Tensor silu_mul(const torch::Tensor& gate, const torch::Tensor& up) {
#ifdef MF_HAVE_AVX512_HELPERS
    if (custom_kernels_enabled() && gate.scalar_type() == torch::kBFloat16 &&
        up.scalar_type() == torch::kBFloat16 && gate.sizes() == up.sizes() && avx512_available() &&
        gate.numel() > 0 &&
        !(torch::GradMode::is_enabled() && (gate.requires_grad() || up.requires_grad()))) {
        auto g = gate.contiguous(), u = up.contiguous();
        auto out = torch::empty_like(g);
        const auto* gp = reinterpret_cast<const uint16_t*>(g.data_ptr<at::BFloat16>());
        const auto* up_ = reinterpret_cast<const uint16_t*>(u.data_ptr<at::BFloat16>());
        auto* op = reinterpret_cast<uint16_t*>(out.data_ptr<at::BFloat16>());
        // chunks of whole 16-lane vectors, so only the last chunk has a tail
        const int64_t n = g.numel(), vecs = (n + 15) / 16;
        at::parallel_for(0, vecs, 2048, [&](int64_t v0, int64_t v1) {
            silu_mul_bf16(gp, up_, op, v0 * 16, std::min(n, v1 * 16));
        });
        return out;
    }
#endif
    return torch::silu(gate) * up;
}

torch::Tensor layer_norm(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b,
                         double eps) {
#ifdef MF_HAVE_AVX512_HELPERS
    if (x.scalar_type() == torch::kBFloat16 && avx512_available() && w.defined() && b.defined() &&
        !(torch::GradMode::is_enabled() &&
          (x.requires_grad() || w.requires_grad() || b.requires_grad())) &&
        x.numel() > 0) {
        const int64_t n = x.size(-1), R = x.numel() / n;
        auto xc = x.contiguous();
        auto y = torch::empty_like(xc);
        auto wf = w.to(torch::kFloat32).contiguous();
        auto bf = b.to(torch::kFloat32).contiguous();
        const auto* xp = reinterpret_cast<const uint16_t*>(xc.data_ptr<at::BFloat16>());
        auto* yp = reinterpret_cast<uint16_t*>(y.data_ptr<at::BFloat16>());
        const float* wp = wf.data_ptr<float>();
        const float* bp = bf.data_ptr<float>();
        const int64_t grain = std::max<int64_t>(1, 16384 / n);
        at::parallel_for(0, R, grain, [&](int64_t r0, int64_t r1) {
            std::vector<float> buf(n + 16);
            layer_norm_rows_bf16(xp, yp, r0, r1, n, wp, bp, static_cast<float>(eps), buf.data());
        });
        return y;
    }
#endif
    return torch::layer_norm(x, {x.size(-1)}, w, b, eps);
}

void gemv_bf16_multi(const uint16_t* x, int64_t M, int64_t K, const GemvJob* jobs, int n_jobs) {
    TORCH_CHECK(bf16_gemv_available(), "the AVX512-BF16 kernel is not available on this CPU");
    TORCH_CHECK(M >= 1 && M <= kMaxKernelRows, "gemv_bf16_multi: M must be 1..", kMaxKernelRows);
#ifdef MF_HAVE_BF16_KERNEL
    if (M >= kPanelMinRows) {
        // Work is split in tiles of kPanelRows rows of one job, so tiles never straddle jobs.
        std::vector<uint16_t> xp(static_cast<size_t>((K + 1) / 2 * 2 * kPanelLanes));
        pack_x_panel(x, M, K, xp.data());
        std::vector<int64_t> first_tile(n_jobs + 1, 0);
        for (int j = 0; j < n_jobs; ++j)
            first_tile[j + 1] = first_tile[j] + (jobs[j].rows + kPanelRows - 1) / kPanelRows;
        const int64_t grain = std::max<int64_t>(1, 8192 / std::max<int64_t>(K, 1));
        at::parallel_for(0, first_tile[n_jobs], grain, [&](int64_t a, int64_t b) {
            for (int j = 0; j < n_jobs; ++j) {
                const int64_t lo = std::max(a, first_tile[j]), hi = std::min(b, first_tile[j + 1]);
                if (lo >= hi) continue;
                const int64_t rows = jobs[j].rows;
                gemv_panel(xp.data(), M, K, jobs[j].w, rows, (lo - first_tile[j]) * kPanelRows,
                           std::min(rows, (hi - first_tile[j]) * kPanelRows), jobs[j].y);
            }
        });
        return;
    }
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
