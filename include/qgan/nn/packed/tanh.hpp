// tanh for the packed generators' last layer: thousands of calls per image, where libm's
// tanhf (through expm1f) cost more than the layer before it. Written with plain float
// operations and no branches or library calls, so compilers vectorize it and every
// instruction set computes the same bits (no fused multiply-add: qgan builds with
// -ffp-contract=off). Absolute error below 3e-7 on all floats (the test sweeps them
// against std::tanh); NaN stays NaN.
#pragma once

#include "qgan/core/isa_namespace.hpp"

#include <bit>
#include <cmath>
#include <cstdint>

namespace qgan::nn::packed {
QGAN_BEGIN_FUNCTIONS

inline float tanh_approx(float x) noexcept {
  // tanh|x| = 1 - 2 / (e^{2|x|} + 1); past 10 it rounds to 1.
  const float magnitude = std::fabs(x);
  const float a = magnitude < 10.0f ? magnitude : (magnitude == magnitude ? 10.0f : magnitude);
  const float y = 2.0f * a;
  // e^y = 2^k e^r with k = round(y / ln 2) (the 1.5 * 2^23 trick rounds to nearest even)
  // and ln 2 split in two so that k * ln 2 is subtracted exactly.
  constexpr float round_magic = 12582912.0f;
  const float k = (y * 1.44269504088896341f + round_magic) - round_magic;
  const float r = (y - k * 0.693145751953125f) - k * 1.428606765330187e-06f;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  // k is at most 29 here; NaN keeps the NaN in p and r.
  const auto exponent = static_cast<std::int32_t>(k == k ? k : 0.0f);
  const float scale = std::bit_cast<float>(static_cast<std::uint32_t>(exponent + 127) << 23);
  const float t = 1.0f - 2.0f / (p * scale + 1.0f);
  return std::copysign(t, x);
}

QGAN_END_FUNCTIONS
}  // namespace qgan::nn::packed
