// x86 intrinsics the kernels need beyond xsimd 8.1's API: widening float registers to
// double, AVX-512's fused multiply-add (xsimd 8.1 falls back to a*b + c there), streaming
// stores and narrowing stores. Each form sits behind the #if of its instruction set, so a
// translation unit only sees what its own flags allow, and other architectures none of it.
// Everything is a template on the xsimd architecture: a separate symbol per set.
#pragma once

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include <cstdint>
#include <type_traits>
#include <xsimd/xsimd.hpp>

namespace qgan::simd::x86 {

template <class Arch>
inline void to_double_halves(const xsimd::batch<float, Arch>& x, xsimd::batch<double, Arch>& low,
                             xsimd::batch<double, Arch>& high) noexcept {
#if defined(__AVX512F__)
  if constexpr (std::is_base_of_v<xsimd::avx512f, Arch>) {
    const __m512 v = x;
    low = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
    high = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    return;
  }
#endif
#if defined(__AVX__)
  if constexpr (std::is_base_of_v<xsimd::avx, Arch>) {
    const __m256 v = x;
    low = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
    high = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
    return;
  }
#endif
  if constexpr (std::is_base_of_v<xsimd::sse2, Arch> && !std::is_base_of_v<xsimd::avx, Arch>) {
    const __m128 v = x;
    low = _mm_cvtps_pd(v);
    high = _mm_cvtps_pd(_mm_movehl_ps(v, v));
  }
}

template <class Arch>
inline xsimd::batch<float, Arch> fused_multiply_add(const xsimd::batch<float, Arch>& a,
                                                    const xsimd::batch<float, Arch>& b,
                                                    const xsimd::batch<float, Arch>& c) noexcept {
#if defined(__AVX512F__)
  // The explicit-rounding form: GCC 12 under -ffp-contract=off lowers plain
  // _mm512_fmadd_ps to a multiply and an add (two roundings); with embedded rounding it
  // must emit the one instruction.
  if constexpr (std::is_base_of_v<xsimd::avx512f, Arch>) {
    return _mm512_fmadd_round_ps(a, b, c, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
#endif
  return xsimd::fma(a, b, c);
}

template <class Arch>
inline void stream_store(float* aligned_destination, const xsimd::batch<float, Arch>& x) noexcept {
#if defined(__AVX512F__)
  if constexpr (std::is_base_of_v<xsimd::avx512f, Arch>) {
    _mm512_stream_ps(aligned_destination, x);
    return;
  }
#endif
#if defined(__AVX__)
  if constexpr (std::is_base_of_v<xsimd::avx, Arch> && !std::is_base_of_v<xsimd::avx512f, Arch>) {
    _mm256_stream_ps(aligned_destination, x);
    return;
  }
#endif
  if constexpr (std::is_base_of_v<xsimd::sse2, Arch> && !std::is_base_of_v<xsimd::avx, Arch>) {
    _mm_stream_ps(aligned_destination, x);
  }
}

/// Orders streaming stores before whatever the caller does next.
inline void store_fence() noexcept { _mm_sfence(); }

/// Stores the low byte of each 32-bit lane; false where only the scalar loop can.
template <class Arch>
inline bool store_low_bytes(std::uint8_t* out, const xsimd::batch<std::int32_t, Arch>& lanes) noexcept {
#if defined(__AVX512F__)
  if constexpr (std::is_base_of_v<xsimd::avx512f, Arch>) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm512_cvtepi32_epi8(lanes));
    return true;
  }
#endif
  (void)out;
  (void)lanes;
  return false;
}

}  // namespace qgan::simd::x86
#endif
