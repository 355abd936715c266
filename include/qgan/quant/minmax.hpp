// Minmax quantizer (QGAN Eq. 3): a uniform grid from the smallest to the largest weight.
// One outlier stretches the grid, which is why the paper finds it leaves states unused.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "qgan/core/error.hpp"
#include "qgan/core/finite.hpp"
#include "qgan/quant/uniform_grid.hpp"

namespace qgan {

namespace detail {

// Minmax grid over [lo, hi]; a zero-width range gives alpha = 0, which encode maps to
// code 0 and decode to beta = lo exactly (no division by zero, no NaN).
inline uniform_params minmax_grid(double lo, double hi, int bits, std::string_view name = {}) {
  uniform_params grid;
  grid.bits = bits;
  grid.beta = static_cast<float>(lo);
  grid.alpha = static_cast<float>((hi - lo) / static_cast<double>(top_code(bits)));
  if (!std::isfinite(grid.alpha)) {
    throw_error(tensor_prefix(name), "value range [", lo, ", ", hi,
                "] is too wide for a float grid step");
  }
  return grid;
}

}  // namespace detail

/// Smallest and largest of count >= 1 finite values: the reference for the SIMD kernel.
template <class Tag = void>
inline void minmax_ref(const float* values, std::size_t count, float& lowest,
                       float& highest) noexcept {
  for (std::size_t i = 0; i < count; ++i) {
    lowest = values[i] < lowest ? values[i] : lowest;
    highest = values[i] > highest ? values[i] : highest;
  }
}

struct minmax_quantizer {
  using params = uniform_params;
  static constexpr std::string_view name = "minmax";

  params fit(std::span<const float> values, int bits, std::string_view tensor_name = {}) const {
    detail::require_bits(bits, name);
    require_finite(values, tensor_name);
    if (values.empty()) return params{.alpha = 0.0f, .beta = 0.0f, .bits = bits};
    const auto [lo, hi] = std::minmax_element(values.begin(), values.end());
    return detail::minmax_grid(*lo, *hi, bits, tensor_name);
  }
  std::uint32_t encode(float value, const params& grid) const noexcept {
    return detail::uniform_encode(value, grid);
  }
  float decode(std::uint32_t code, const params& grid) const noexcept {
    return detail::uniform_decode(code, grid);
  }
};

}  // namespace qgan
