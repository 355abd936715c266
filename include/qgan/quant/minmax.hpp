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
#include "qgan/quant/reductions_ref.hpp"
#include "qgan/quant/uniform_grid.hpp"
#include "qgan/simd/select.hpp"

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

struct minmax_quantizer {
  using params = uniform_params;
  static constexpr std::string_view name = "minmax";

  /// One pass of the selected kernel set's summarize: its sum is finite exactly when
  /// every value is, and min/max do not depend on the order they are taken in.
  template <class Arch = xsimd::default_arch>
  params fit(std::span<const float> values, int bits, std::string_view tensor_name = {}) const {
    detail::require_bits(bits, name);
    if (values.empty()) return params{.alpha = 0.0f, .beta = 0.0f, .bits = bits};
    const simd::kernel_set& kernels = simd::active_kernels<Arch>();
    float lowest = values[0], highest = values[0];
    bool finite = true;
    for (std::size_t first = 0; first < values.size(); first += simd::reduction_chunk) {
      const std::size_t length = std::min(simd::reduction_chunk, values.size() - first);
      const simd::value_summary part = kernels.reductions.summarize(values.data() + first, length);
      finite = finite && std::isfinite(part.sum);
      lowest = std::min(lowest, part.lowest);
      highest = std::max(highest, part.highest);
    }
    if (!finite) require_finite(values, tensor_name);
    return detail::minmax_grid(detail::positive_zero(lowest), detail::positive_zero(highest), bits,
                               tensor_name);
  }
  std::uint32_t encode(float value, const params& grid) const noexcept {
    return detail::uniform_encode(value, grid);
  }
  float decode(std::uint32_t code, const params& grid) const noexcept {
    return detail::uniform_decode(code, grid);
  }
};

}  // namespace qgan
