// Rejects NaN and Inf before any fit: a single NaN poisons min/max and every M-step sum,
// and the result would be silent garbage rather than an error.
#pragma once

#include "qgan/core/isa_namespace.hpp"

#include <cmath>
#include <cstddef>
#include <span>
#include <string_view>

#include "qgan/core/error.hpp"

namespace qgan {
QGAN_BEGIN_FUNCTIONS

/// `why` ends the message: what needs the values finite.
inline void require_finite(std::span<const float> values, std::string_view tensor_name = {},
                           std::string_view why = "quantizers need finite values") {
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) {
      detail::throw_error(detail::tensor_prefix(tensor_name), "element ", i, " is ",
                          std::isnan(values[i]) ? "NaN" : (values[i] > 0 ? "+Inf" : "-Inf"), "; ", why);
    }
  }
}

QGAN_END_FUNCTIONS
}  // namespace qgan
