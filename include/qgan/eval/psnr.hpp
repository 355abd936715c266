// Peak signal-to-noise ratio of 8-bit images: 10 log10(255^2 / MSE) in dB, MSE over all
// pixels in double. A quantized generator's images are compared with the full-precision
// generator's for the same z, so PSNR tells how far quantization moved each image, where
// FID and IS only see the distribution. How floats become 8-bit pixels is the caller's
// rule (the DCGAN example's is round((x + 1) * 127.5) in float32, clamped to [0, 255]).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>

#include "qgan/core/error.hpp"
#include "qgan/core/isa_namespace.hpp"

namespace qgan::eval {
QGAN_BEGIN_FUNCTIONS

/// PSNR in dB of b against a (same non-zero length, any layout as long as both share it);
/// +infinity when the images are identical.
inline double psnr_u8(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b) {
  if (a.size() != b.size() || a.empty()) {
    qgan::detail::throw_error("psnr_u8: ", a.size(), " and ", b.size(), " pixels (need equal, non-zero counts)");
  }
  double square_sum = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double d = static_cast<double>(a[i]) - static_cast<double>(b[i]);
    square_sum += d * d;
  }
  if (square_sum == 0) return std::numeric_limits<double>::infinity();
  return 10.0 * std::log10(255.0 * 255.0 / (square_sum / static_cast<double>(a.size())));
}

QGAN_END_FUNCTIONS
}  // namespace qgan::eval
