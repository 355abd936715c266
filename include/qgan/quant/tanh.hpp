// Tanh quantizer (QGAN Eq. 5): minmax on tanh(w) over the fixed range [-1, 1], decoded
// with arctanh. tanh squeezes the weights but the grid does not follow them: trained conv
// weights (|w| ~ 0.02) all land on the two levels nearest zero.
//
// Finite decode rule: the paper's end states decode to arctanh(-1) = -inf and
// arctanh(+1) = +inf. Here code 0 decodes to the smallest weight seen by fit() and code
// 2^k-1 to the largest. Every weight that encodes to an end state lies between that
// state's threshold and the extreme, so the extreme is the nearest finite value fit()
// knows of; interior states decode exactly as in the paper.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <string_view>

#include "qgan/core/finite.hpp"
#include "qgan/quant/concepts.hpp"

namespace qgan {

struct tanh_params {
  float lowest = 0.0f;   ///< smallest weight seen at fit time: what code 0 decodes to
  float highest = 0.0f;  ///< largest weight seen at fit time: what code 2^k-1 decodes to
  int bits = 1;
  friend bool operator==(const tanh_params&, const tanh_params&) = default;
};

struct tanh_quantizer {
  using params = tanh_params;
  static constexpr std::string_view name = "tanh";

  params fit(std::span<const float> values, int bits, std::string_view tensor_name = {}) const {
    detail::require_bits(bits, name);
    require_finite(values, tensor_name);
    params fitted;
    fitted.bits = bits;
    if (!values.empty()) {
      const auto [lo, hi] = std::minmax_element(values.begin(), values.end());
      fitted.lowest = *lo;
      fitted.highest = *hi;
    }
    return fitted;
  }

  std::uint32_t encode(float value, const params& fitted) const noexcept {
    const double top = detail::top_code(fitted.bits);
    const double squashed = std::tanh(static_cast<double>(value));
    const double position = std::nearbyint((squashed + 1.0) * top / 2.0);
    return static_cast<std::uint32_t>(std::clamp(position, 0.0, top));
  }

  float decode(std::uint32_t code, const params& fitted) const noexcept {
    const std::uint32_t top = detail::top_code(fitted.bits);
    if (code == 0) return fitted.lowest;
    if (code >= top) return fitted.highest;
    const double level = 2.0 * static_cast<double>(code) / static_cast<double>(top) - 1.0;
    return static_cast<float>(std::atanh(level));
  }
};

}  // namespace qgan
