// The uniform grid w ~ alpha*z + beta, z in {0..2^k-1}, shared by minmax (QGAN Eq. 3) and
// EM (Eq. 6-10). Encode is the paper's E-step with the clamp it omits; decode is one fused
// multiply-add so every instruction set that later decodes in SIMD can match it bit for bit.
#pragma once

#include "qgan/core/isa_namespace.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "qgan/quant/concepts.hpp"

namespace qgan {

struct uniform_params {
  float alpha = 0.0f;  ///< grid step; 0 marks a degenerate grid (constant or empty input)
  float beta = 0.0f;   ///< value of code 0
  int bits = 1;
  friend bool operator==(const uniform_params&, const uniform_params&) = default;
};

namespace detail {
QGAN_BEGIN_FUNCTIONS

// z = clamp(round_half_even((w - beta) / alpha), 0, 2^k - 1). Round-half-even because it
// is what the SIMD round instructions do; on a uniform grid any tie rule picks a nearest
// level, so the MSE does not depend on it.
template <class Tag = void>
inline std::uint32_t uniform_encode(float value, const uniform_params& grid) noexcept {
  if (!(grid.alpha > 0.0f)) return 0;
  const float position = std::nearbyint((value - grid.beta) / grid.alpha);
  const float top = static_cast<float>(top_code(grid.bits));
  // Written out rather than std::clamp, whose shared instantiation an AVX-512 translation
  // unit could otherwise hand to an SSE2 caller (see qgan/pack/canonical.hpp).
  const float clamped = position < 0.0f ? 0.0f : (top < position ? top : position);
  return static_cast<std::uint32_t>(clamped);
}

template <class Tag = void>
inline float uniform_decode(std::uint32_t code, const uniform_params& grid) noexcept {
  return std::fma(grid.alpha, static_cast<float>(code), grid.beta);
}

QGAN_END_FUNCTIONS
}  // namespace detail
}  // namespace qgan

namespace qgan::detail {
QGAN_BEGIN_FUNCTIONS

// Whole-array forms of the grid's encode and decode: the scalar references the SIMD
// kernels are tested against. `Tag` as in qgan/pack/canonical.hpp.
template <class Tag = void>
inline void encode_uniform_ref(const float* values, std::size_t count, const uniform_params& grid,
                               std::uint8_t* codes) noexcept {
  for (std::size_t i = 0; i < count; ++i) {
    codes[i] = static_cast<std::uint8_t>(uniform_encode<Tag>(values[i], grid));
  }
}

template <class Tag = void>
inline void decode_uniform_ref(const std::uint8_t* codes, std::size_t count,
                               const uniform_params& grid, float* values) noexcept {
  for (std::size_t i = 0; i < count; ++i) values[i] = uniform_decode<Tag>(codes[i], grid);
}

QGAN_END_FUNCTIONS
}  // namespace qgan::detail
