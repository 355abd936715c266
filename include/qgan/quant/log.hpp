// Log-minmax quantizer (QGAN Eq. 4): one sign bit, and minmax on log|w| over the other
// k-1 bits, so k >= 2. Code layout: bit k-1 is the sign (1 = negative), bits 0..k-2 the
// magnitude index.
//
// Departure from the paper's code (which takes log(|w| + 1e-20)): exact zeros are left out
// of the log range and encode to the smallest magnitude with a + sign. With the epsilon, a
// single zero weight drags the log range down to -46 and wastes most magnitude levels.
// An all-zero tensor fits log_beta = -inf, so every code decodes to exactly 0.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <string_view>

#include "qgan/core/finite.hpp"
#include "qgan/quant/concepts.hpp"

namespace qgan {

struct log_params {
  float log_alpha = 0.0f;  ///< step of the magnitude grid in natural-log units
  float log_beta = 0.0f;   ///< log of the smallest magnitude level
  int bits = 2;
  friend bool operator==(const log_params&, const log_params&) = default;
};

struct log_quantizer {
  using params = log_params;
  static constexpr std::string_view name = "log";

  params fit(std::span<const float> values, int bits, std::string_view tensor_name = {}) const {
    detail::require_bits(bits, name, 2,
                         "log quantization spends one bit on the sign and needs at least one "
                         "more for the magnitude, so bits >= 2");
    require_finite(values, tensor_name);
    double lo = std::numeric_limits<double>::infinity();
    double hi = -std::numeric_limits<double>::infinity();
    for (const float value : values) {
      if (value == 0.0f) continue;
      const double magnitude_log = std::log(std::fabs(static_cast<double>(value)));
      lo = std::min(lo, magnitude_log);
      hi = std::max(hi, magnitude_log);
    }
    params fitted;
    fitted.bits = bits;
    if (lo > hi) {  // empty or all zero: decode everything to exactly 0
      fitted.log_beta = -std::numeric_limits<float>::infinity();
      return fitted;
    }
    fitted.log_beta = static_cast<float>(lo);
    fitted.log_alpha = static_cast<float>((hi - lo) / magnitude_top(bits));
    return fitted;
  }

  std::uint32_t encode(float value, const params& fitted) const noexcept {
    const std::uint32_t sign = value < 0.0f ? 1u : 0u;
    std::uint32_t index = 0;
    if (value != 0.0f && fitted.log_alpha > 0.0f) {
      const double magnitude_log = std::log(std::fabs(static_cast<double>(value)));
      const double position = std::nearbyint((magnitude_log - fitted.log_beta) / fitted.log_alpha);
      index = static_cast<std::uint32_t>(std::clamp(position, 0.0, magnitude_top(fitted.bits)));
    }
    return (sign << (fitted.bits - 1)) | index;
  }

  float decode(std::uint32_t code, const params& fitted) const noexcept {
    const std::uint32_t magnitude_mask = (std::uint32_t{1} << (fitted.bits - 1)) - 1;
    const std::uint32_t index = code & magnitude_mask;
    const double magnitude = std::exp(static_cast<double>(fitted.log_alpha) * index +
                                      static_cast<double>(fitted.log_beta));
    const bool negative = ((code >> (fitted.bits - 1)) & 1u) != 0;
    return static_cast<float>(negative ? -magnitude : magnitude);
  }

 private:
  static double magnitude_top(int bits) noexcept {
    return static_cast<double>(detail::top_code(bits - 1));
  }
};

}  // namespace qgan
