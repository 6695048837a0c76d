// AVX-512 helpers shared by the model's CPU kernels (kernels.cpp, fast_decode.cpp); internal to
// src/model. Each is compiled for AVX-512F/BW/VL via MF_AVX512_TARGET: call them only from
// functions with the same target attribute, and only after checking the CPU has those features.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#include <cstdint>

#define MF_HAVE_AVX512_HELPERS 1
#define MF_AVX512_TARGET __attribute__((target("avx512f,avx512bw,avx512vl")))

namespace mf::model::simd {

// Lanes [0, min(n, 16)).
inline __mmask16 tail_mask(int64_t n) {
    return n >= 16 ? __mmask16(0xffff) : __mmask16((1u << n) - 1u);
}

// 16 bf16 values (masked lanes read as 0) widened to fp32.
MF_AVX512_TARGET inline __m512 load_bf16x16(const uint16_t* p, __mmask16 m) {
    __m512i w = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
}

// fp32 -> the bits of the nearest bf16 (ties to even; finite inputs) in the upper 16 bits.
MF_AVX512_TARGET inline __m512i round_to_bf16_bits(__m512 v) {
    __m512i u = _mm512_castps_si512(v);
    __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    return _mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7fff), lsb));
}

// fp32 -> bf16, round to nearest even (finite inputs), masked store.
MF_AVX512_TARGET inline void store_bf16x16(uint16_t* p, __m512 v, __mmask16 m) {
    _mm256_mask_storeu_epi16(p, m,
                             _mm512_cvtepi32_epi16(_mm512_srli_epi32(round_to_bf16_bits(v), 16)));
}

// fp32 rounded to the nearest bf16 value, kept in fp32 (what storing a bf16 result does).
MF_AVX512_TARGET inline __m512 round_bf16(__m512 v) {
    return _mm512_castsi512_ps(
        _mm512_and_si512(round_to_bf16_bits(v), _mm512_set1_epi32(static_cast<int>(0xffff0000u))));
}

// e^x: x = n ln2 + r, |r| <= ln2/2, degree-6 Taylor polynomial (rel. error ~2e-7), 2^n by scalef.
MF_AVX512_TARGET inline __m512 exp512(__m512 x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-87.0f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145752f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.42860677e-6f), r);
    __m512 p = _mm512_set1_ps(1.f / 720);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 120));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 24));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f));
    return _mm512_scalef_ps(p, n);
}

// SwiGLU's elementwise part on values that are already bf16: bf16(bf16(silu(g)) * u), silu in fp32
// (the product is rounded when stored).
MF_AVX512_TARGET inline __m512 silu_times(__m512 g, __m512 u) {
    const __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), g));
    return _mm512_mul_ps(round_bf16(_mm512_div_ps(g, _mm512_add_ps(_mm512_set1_ps(1.f), e))), u);
}

}  // namespace mf::model::simd

#endif
