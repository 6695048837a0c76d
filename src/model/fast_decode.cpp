#include "model/fast_decode.h"

#include <ATen/Parallel.h>

#include <cmath>
#include <vector>

#include "model/kernels.h"
#include "model/simd_internal.h"

namespace mf::model {

namespace {

using BF = c10::BFloat16;
constexpr int64_t kMaxHeadDim = 512;  // per-head output buffer of the attention loop

// Rounds to the nearest bf16 value (as torch does whenever it stores a bf16 result).
inline float rb(float v) {
    return static_cast<float>(BF(v));
}
inline uint16_t bits(float v) {
    return BF(v).x;
}
inline float fl(uint16_t b) {
    return static_cast<float>(BF(b, BF::from_bits()));
}
const uint16_t* u16(const torch::Tensor& t) {
    return reinterpret_cast<const uint16_t*>(t.data_ptr<at::BFloat16>());
}
uint16_t* u16m(torch::Tensor& t) {
    return reinterpret_cast<uint16_t*>(t.data_ptr<at::BFloat16>());
}

// The elementwise passes, 16 lanes at a time (this path only runs where AVX512-BF16, hence
// AVX512F/BW/VL, is available: fast_decode_eligible checks).
using simd::load_bf16x16;
using simd::round_bf16;
using simd::tail_mask;

// RMSNormImpl::forward: bf16(w * bf16(x * rsqrt(mean(x^2) + eps))), statistics in fp32.
MF_AVX512_TARGET void rms_norm(const float* x, int64_t n, const torch::Tensor& weight, double eps,
                               uint16_t* out) {
    const uint16_t* w = u16(weight);
    __m512 ss = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
        const __m512 v = _mm512_maskz_loadu_ps(tail_mask(n - i), x + i);
        ss = _mm512_fmadd_ps(v, v, ss);
    }
    const float inv =
        1.f / std::sqrt(_mm512_reduce_add_ps(ss) / static_cast<float>(n) + static_cast<float>(eps));
    const __m512 vi = _mm512_set1_ps(inv);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = tail_mask(n - i);
        const __m512 xn = round_bf16(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), vi));
        simd::store_bf16x16(out + i, _mm512_mul_ps(load_bf16x16(w + i, m), xn), m);
    }
}

// y = bf16(y + bias) (bias optional): the kernel path of model::linear.
MF_AVX512_TARGET void finish_linear(float* y, int64_t n, const torch::Tensor& bias) {
    const uint16_t* b = bias.defined() ? u16(bias) : nullptr;
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = tail_mask(n - i);
        __m512 v = _mm512_maskz_loadu_ps(m, y + i);
        if (b) v = _mm512_add_ps(v, load_bf16x16(b + i, m));
        _mm512_mask_storeu_ps(y + i, m, round_bf16(v));
    }
}

// h = bf16(h + p): the residual sums.
MF_AVX512_TARGET void add_residual(float* h, const float* p, int64_t n) {
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = tail_mask(n - i);
        const __m512 v =
            _mm512_add_ps(_mm512_maskz_loadu_ps(m, h + i), _mm512_maskz_loadu_ps(m, p + i));
        _mm512_mask_storeu_ps(h + i, m, round_bf16(v));
    }
}

// x * cos + rotate_half(x) * sin over `heads` heads of D, each product and the sum rounded.
void rope(float* x, int64_t heads, int64_t D, const float* c, const float* s) {
    const int64_t h2 = D / 2;
    for (int64_t h = 0; h < heads; ++h) {
        float* v = x + h * D;
        for (int64_t d = 0; d < h2; ++d) {
            const float x1 = v[d], x2 = v[d + h2];
            v[d] = rb(rb(x1 * c[d]) + rb(-x2 * s[d]));
            v[d + h2] = rb(rb(x2 * c[d + h2]) + rb(x1 * s[d + h2]));
        }
    }
}

// The attention inner loops.
// sum_d q[d] * k[d]
MF_AVX512_TARGET float dot_bf16(const float* q, const uint16_t* k, int64_t D) {
    __m512 acc = _mm512_setzero_ps();
    for (int64_t d = 0; d < D; d += 16) {
        const __mmask16 m = tail_mask(D - d);
        acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + d), load_bf16x16(k + d, m), acc);
    }
    return _mm512_reduce_add_ps(acc);
}
// out[d] += a * v[d]
MF_AVX512_TARGET void axpy_bf16(float a, const uint16_t* v, float* out, int64_t D) {
    const __m512 va = _mm512_set1_ps(a);
    for (int64_t d = 0; d < D; d += 16) {
        const __mmask16 m = tail_mask(D - d);
        _mm512_mask_storeu_ps(
            out + d, m,
            _mm512_fmadd_ps(va, load_bf16x16(v + d, m), _mm512_maskz_loadu_ps(m, out + d)));
    }
}

// act = bf16(bf16(silu(bf16(gate))) * bf16(up)), silu in fp32.
void silu_mul_scalar(const float* gate, const float* up, uint16_t* act, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
        const float g = rb(gate[i]), u = rb(up[i]);
        act[i] = bits(rb(g / (1.f + std::exp(-g))) * u);
    }
}

#ifdef MF_HAVE_AVX512_HELPERS
// The same, 16 lanes at a time with the polynomial exp (relative error ~2e-7 against std::exp, so
// a product can land one bf16 step away where it sits on a rounding boundary).
MF_AVX512_TARGET void silu_mul_avx512(const float* gate, const float* up, uint16_t* act,
                                      int64_t n) {
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = simd::tail_mask(n - i);
        const __m512 g = simd::round_bf16(_mm512_maskz_loadu_ps(m, gate + i));
        const __m512 u = simd::round_bf16(_mm512_maskz_loadu_ps(m, up + i));
        simd::store_bf16x16(act + i, simd::silu_times(g, u), m);
    }
}
#endif

bool weight_ok(const torch::Tensor& t) {
    return t.defined() && t.scalar_type() == torch::kBFloat16 && t.is_contiguous();
}

}  // namespace

namespace {
bool cache_ok(const KVCache* cache) {
    if (!cache || cache->length + 1 > cache->capacity || cache->k.empty()) return false;
    const auto& k0 = cache->k[0];
    return k0.scalar_type() == torch::kBFloat16 && k0.size(0) == 1 && k0.is_contiguous();
}
bool weights_ok(const CausalLMImpl& lm) {
    auto& layers = *lm.model->layers;
    if (layers.size() == 0) return false;
    const auto* l0 = layers.ptr(0)->as<DecoderLayerImpl>();
    return weight_ok(l0->self_attn->q_proj->weight) && weight_ok(l0->mlp->down_proj->weight) &&
           weight_ok(lm.model->norm->weight);
}
}  // namespace

bool fast_decode_eligible(const CausalLMImpl& lm, const torch::Tensor& embeds, const KVCache* cache,
                          const torch::Tensor& pad_mask) {
    if (pad_mask.defined()) return false;
    return fast_decode_batch_eligible(lm, embeds, {const_cast<KVCache*>(cache)});
}

bool fast_decode_batch_eligible(const CausalLMImpl& lm, const torch::Tensor& embeds,
                                const std::vector<KVCache*>& caches) {
    if (torch::GradMode::is_enabled()) return false;
    if (!custom_kernels_enabled() || !bf16_gemv_available()) return false;
    const int64_t B = static_cast<int64_t>(caches.size());
    if (B < 1 || B > kMaxKernelRows) return false;
    if (embeds.dim() != 3 || embeds.size(0) != B || embeds.size(1) != 1 ||
        embeds.scalar_type() != torch::kBFloat16)
        return false;
    for (const KVCache* c : caches)
        if (!cache_ok(c)) return false;
    return weights_ok(lm);
}

torch::Tensor fast_decode_step(CausalLMImpl& lm, const torch::Tensor& embeds, KVCache& cache) {
    return fast_decode_step_batched(lm, embeds, {&cache});
}

torch::Tensor fast_decode_step_batched(CausalLMImpl& lm, const torch::Tensor& embeds,
                                       const std::vector<KVCache*>& caches) {
    const TextConfig& c = lm.config();
    const int64_t H = c.hidden_size, D = c.head_dim;
    const int64_t nH = c.num_attention_heads, kvH = c.num_key_value_heads, rep = nH / kvH;
    const int64_t I = c.intermediate_size;
    const int64_t B = static_cast<int64_t>(caches.size());
    TORCH_CHECK(B >= 1 && B <= kMaxKernelRows, "fast decode: 1..", kMaxKernelRows, " sequences");
    std::vector<int64_t> pos(B);
    int64_t total_s = 0;
    for (int64_t b = 0; b < B; ++b) {
        TORCH_CHECK(caches[b]->length + 1 <= caches[b]->capacity,
                    "KV cache full: ", caches[b]->length + 1, " > ", caches[b]->capacity);
        pos[b] = caches[b]->length;
        total_s += pos[b] + 1;
    }

    // RoPE tables exactly as forward_hidden builds them, cast to bf16 as apply_rope does.
    auto [cos_t, sin_t] = rope_tables(torch::tensor(pos, torch::kInt64), D, c.rope_theta);
    auto cos_f = cos_t.to(torch::kBFloat16).to(torch::kFloat32).contiguous();  // [B, D]
    auto sin_f = sin_t.to(torch::kBFloat16).to(torch::kFloat32).contiguous();
    const float* cs = cos_f.data_ptr<float>();
    const float* sn = sin_f.data_ptr<float>();

    const int64_t QD = nH * D, KD = kvH * D;
    std::vector<float> h(B * H), q(B * QD), k(B * KD), v(B * KD), proj(B * H);
    std::vector<float> gate(B * I), up(B * I);
    std::vector<uint16_t> xn(B * H), ob(B * QD), act(B * I);
    {
        auto e = embeds.contiguous();
        const uint16_t* ep = u16(e);
        for (int64_t i = 0; i < B * H; ++i)
            h[i] = fl(ep[i]);
    }
    const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(D)));
    TORCH_CHECK(D <= kMaxHeadDim, "fast decode: head_dim ", D, " above ", kMaxHeadDim);

    int64_t li = 0;
    for (auto& m : *lm.model->layers) {
        auto layer = m->as<DecoderLayer>();
        auto& at = *layer->self_attn;
        auto& mlp = *layer->mlp;
        for (const auto* w :
             {&at.q_proj->weight, &at.k_proj->weight, &at.v_proj->weight, &at.o_proj->weight,
              &mlp.gate_proj->weight, &mlp.up_proj->weight, &mlp.down_proj->weight})
            TORCH_CHECK(weight_ok(*w), "fast decode: weights must be contiguous bf16");

        // --- attention ---
        for (int64_t b = 0; b < B; ++b)
            rms_norm(h.data() + b * H, H, layer->input_layernorm->weight,
                     layer->input_layernorm->eps, xn.data() + b * H);
        GemvJob qkv[3] = {{u16(at.q_proj->weight), QD, q.data()},
                          {u16(at.k_proj->weight), KD, k.data()},
                          {u16(at.v_proj->weight), KD, v.data()}};
        gemv_bf16_multi(xn.data(), B, H, qkv, 3);
        for (int64_t b = 0; b < B; ++b) {
            float* qb = q.data() + b * QD;
            float* kb = k.data() + b * KD;
            float* vb = v.data() + b * KD;
            finish_linear(qb, QD, at.q_proj->bias);
            finish_linear(kb, KD, at.k_proj->bias);
            finish_linear(vb, KD, at.v_proj->bias);
            rope(qb, nH, D, cs + b * D, sn + b * D);
            rope(kb, kvH, D, cs + b * D, sn + b * D);
            const int64_t cap = caches[b]->capacity;
            uint16_t* kc = u16m(caches[b]->k[li]);  // [1, kvH, cap, D]
            uint16_t* vc = u16m(caches[b]->v[li]);
            for (int64_t j = 0; j < kvH; ++j)
                for (int64_t d = 0; d < D; ++d) {
                    kc[(j * cap + pos[b]) * D + d] = bits(kb[j * D + d]);
                    vc[(j * cap + pos[b]) * D + d] = bits(vb[j * D + d]);
                }
        }
        // softmax(bf16(bf16(q.k) * scale)) in fp32, probabilities rounded to bf16, then p.V;
        // one task per (sequence, head).
        const int64_t mean_s = std::max<int64_t>(1, total_s / B);
        const int64_t grain = std::max<int64_t>(1, 65536 / (mean_s * D));
        at::parallel_for(0, B * nH, grain, [&](int64_t t0, int64_t t1) {
            std::vector<float> p;
            for (int64_t t = t0; t < t1; ++t) {
                const int64_t b = t / nH, hh = t % nH, j = hh / rep;
                const int64_t S = pos[b] + 1, cap = caches[b]->capacity;
                p.resize(S);
                const float* qh = q.data() + b * QD + hh * D;
                const uint16_t* kb = u16(caches[b]->k[li]) + j * cap * D;
                const uint16_t* vb = u16(caches[b]->v[li]) + j * cap * D;
                float mx = -INFINITY;
                for (int64_t s = 0; s < S; ++s) {
                    p[s] = rb(rb(dot_bf16(qh, kb + s * D, D)) * scale);
                    mx = std::max(mx, p[s]);
                }
                float sum = 0.f;
                for (int64_t s = 0; s < S; ++s)
                    sum += (p[s] = std::exp(p[s] - mx));
                for (int64_t s = 0; s < S; ++s)
                    p[s] = rb(p[s] / sum);
                float out[kMaxHeadDim];
                std::fill(out, out + D, 0.f);
                for (int64_t s = 0; s < S; ++s)
                    axpy_bf16(p[s], vb + s * D, out, D);
                for (int64_t d = 0; d < D; ++d)
                    ob[b * QD + hh * D + d] = bits(out[d]);
            }
        });
        GemvJob o_job{u16(at.o_proj->weight), H, proj.data()};
        gemv_bf16_multi(ob.data(), B, QD, &o_job, 1);
        for (int64_t b = 0; b < B; ++b)
            finish_linear(proj.data() + b * H, H, at.o_proj->bias);
        add_residual(h.data(), proj.data(), B * H);

        // --- SwiGLU MLP ---
        for (int64_t b = 0; b < B; ++b)
            rms_norm(h.data() + b * H, H, layer->post_attention_layernorm->weight,
                     layer->post_attention_layernorm->eps, xn.data() + b * H);
        GemvJob gu[2] = {{u16(mlp.gate_proj->weight), I, gate.data()},
                         {u16(mlp.up_proj->weight), I, up.data()}};
        gemv_bf16_multi(xn.data(), B, H, gu, 2);
        // fast decode runs only where the CPU has AVX512-BF16, so AVX-512F/BW/VL are there
        detail::silu_mul(gate.data(), up.data(), act.data(), B * I, /*vectorized=*/true);
        GemvJob d_job{u16(mlp.down_proj->weight), H, proj.data()};
        gemv_bf16_multi(act.data(), B, I, &d_job, 1);
        for (int64_t b = 0; b < B; ++b)
            finish_linear(proj.data() + b * H, H, mlp.down_proj->bias);
        add_residual(h.data(), proj.data(), B * H);
        ++li;
    }
    for (KVCache* kc : caches)
        kc->length += 1;
    auto out = torch::empty({B, 1, H}, torch::kBFloat16);
    uint16_t* op = u16m(out);
    for (int64_t b = 0; b < B; ++b)
        rms_norm(h.data() + b * H, H, lm.model->norm->weight, lm.model->norm->eps, op + b * H);
    return out;
}

namespace detail {
void silu_mul(const float* gate, const float* up, uint16_t* act, int64_t n, bool vectorized) {
#ifdef MF_HAVE_AVX512_HELPERS
    if (vectorized) return silu_mul_avx512(gate, up, act, n);
#endif
    (void)vectorized;
    silu_mul_scalar(gate, up, act, n);
}
}  // namespace detail

}  // namespace mf::model
