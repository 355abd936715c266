// The few operations the kernel bodies need that xsimd 8.1 lacks or gets wrong, picked per
// architecture from isa_x86.hpp or isa_neon.hpp, with a portable fallback. Templates on
// the xsimd architecture, like everything the bodies call.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <xsimd/xsimd.hpp>

#include "qgan/simd/isa_neon.hpp"
#include "qgan/simd/isa_x86.hpp"

namespace qgan::simd::isa {

/// xsimd 8.1's AVX-512 archs derive from `generic`, not from its SSE/AVX chain.
template <class Arch>
inline constexpr bool is_x86 = std::is_base_of_v<xsimd::sse2, Arch> || std::is_base_of_v<xsimd::avx512f, Arch>;

#if defined(__aarch64__)
template <class Arch>
inline constexpr bool is_neon64 = std::is_base_of_v<xsimd::neon64, Arch>;
#else
template <class Arch>
inline constexpr bool is_neon64 = false;
#endif

/// Whether the set has a fused multiply-add, so that a SIMD decode rounds once, as the
/// references' std::fma does. SSE2 and SSE4.2 have none.
template <class Arch>
inline constexpr bool has_fused_multiply_add =
    std::is_base_of_v<xsimd::avx512f, Arch> || std::is_base_of_v<xsimd::fma3<xsimd::avx2>, Arch> ||
    std::is_base_of_v<xsimd::fma3<xsimd::sse4_2>, Arch> ||
    std::is_base_of_v<xsimd::fma3<xsimd::avx>, Arch> || is_neon64<Arch>;

/// Lanes [0, n/2) and [n/2, n) of a float register as two double registers.
template <class Arch>
inline void to_double_halves(const xsimd::batch<float, Arch>& x, xsimd::batch<double, Arch>& low,
                             xsimd::batch<double, Arch>& high) noexcept {
#if defined(__x86_64__) || defined(__i386__)
  if constexpr (is_x86<Arch>) {
    x86::to_double_halves<Arch>(x, low, high);
    return;
  }
#endif
#if defined(__aarch64__)
  if constexpr (is_neon64<Arch>) {
    neon::to_double_halves<Arch>(x, low, high);
    return;
  }
#endif
  constexpr std::size_t lanes = xsimd::batch<float, Arch>::size;
  alignas(64) float floats[lanes];
  alignas(64) double doubles[lanes];
  x.store_aligned(floats);
  for (std::size_t j = 0; j < lanes; ++j) doubles[j] = floats[j];
  low = xsimd::batch<double, Arch>::load_aligned(doubles);
  high = xsimd::batch<double, Arch>::load_aligned(doubles + lanes / 2);
}

/// a*b + c rounded once; only for sets with has_fused_multiply_add.
template <class Arch>
inline xsimd::batch<float, Arch> fused_multiply_add(const xsimd::batch<float, Arch>& a,
                                                    const xsimd::batch<float, Arch>& b,
                                                    const xsimd::batch<float, Arch>& c) noexcept {
  static_assert(has_fused_multiply_add<Arch>, "this instruction set has no fused multiply-add");
#if defined(__x86_64__) || defined(__i386__)
  if constexpr (is_x86<Arch>) return x86::fused_multiply_add<Arch>(a, b, c);
#endif
  return xsimd::fma(a, b, c);
}

/// a / b correctly rounded in every lane, as the references' scalar division.
template <class Arch>
inline xsimd::batch<float, Arch> divide(const xsimd::batch<float, Arch>& a,
                                        const xsimd::batch<float, Arch>& b) noexcept {
#if defined(__aarch64__)
  if constexpr (is_neon64<Arch>) return neon::divide<Arch>(a, b);
#endif
  return a / b;
}

/// Whether the set writes past the cache (streaming stores); elsewhere stream_store is
/// an ordinary store.
template <class Arch>
inline constexpr bool has_streaming_stores = is_x86<Arch>;

template <class Arch>
inline void stream_store(float* aligned_destination, const xsimd::batch<float, Arch>& x) noexcept {
#if defined(__x86_64__) || defined(__i386__)
  if constexpr (is_x86<Arch>) {
    x86::stream_store<Arch>(aligned_destination, x);
    return;
  }
#endif
  x.store_aligned(aligned_destination);
}

template <class Arch>
inline void store_fence() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  if constexpr (is_x86<Arch>) x86::store_fence();
#endif
}

/// Stores the low byte of every 32-bit lane (values 0..255).
template <class Arch>
inline void store_low_bytes(std::uint8_t* out, const xsimd::batch<std::int32_t, Arch>& lanes) noexcept {
#if defined(__x86_64__) || defined(__i386__)
  if constexpr (is_x86<Arch>) {
    if (x86::store_low_bytes<Arch>(out, lanes)) return;
  }
#endif
  constexpr std::size_t count = xsimd::batch<std::int32_t, Arch>::size;
  alignas(64) std::int32_t values[count];
  lanes.store_aligned(values);
  for (std::size_t j = 0; j < count; ++j) out[j] = static_cast<std::uint8_t>(values[j]);
}

}  // namespace qgan::simd::isa
