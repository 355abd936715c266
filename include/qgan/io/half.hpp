// IEEE binary16 (F16) and bfloat16 (BF16) to float by bit manipulation. Both formats are
// subsets of binary32, so the conversion is exact for every one of the 65,536 inputs
// (subnormals, signed zeros, infinities, NaN payloads included) and needs neither F16C
// instructions nor a compiler's _Float16, which clang 14 lacks on x86.
#pragma once

#include <bit>
#include <cstdint>
#include <limits>

namespace qgan::io {

static_assert(std::numeric_limits<float>::is_iec559, "qgan reads files holding IEEE floats");

constexpr float f16_to_float(std::uint16_t half) noexcept {
  const std::uint32_t sign = static_cast<std::uint32_t>(half & 0x8000u) << 16;
  const std::uint32_t exponent = (half >> 10) & 0x1fu;
  std::uint32_t mantissa = half & 0x3ffu;
  if (exponent == 0x1fu) {
    // Inf or NaN: the 10 payload bits move to the top of float's 23, so a quiet NaN
    // stays quiet and the payload survives.
    return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13));
  }
  if (exponent == 0) {
    if (mantissa == 0) return std::bit_cast<float>(sign);  // keeps -0.0
    // Subnormal: mantissa * 2^-24. Shift the leading 1 into the implicit-bit position;
    // every binary16 subnormal is a normal binary32 number.
    std::uint32_t float_exponent = 127 - 14;
    while ((mantissa & 0x400u) == 0) {
      mantissa <<= 1;
      --float_exponent;
    }
    return std::bit_cast<float>(sign | (float_exponent << 23) | ((mantissa & 0x3ffu) << 13));
  }
  // Normal: rebias the exponent from 15 to 127.
  return std::bit_cast<float>(sign | ((exponent + 127 - 15) << 23) | (mantissa << 13));
}

// bfloat16 is the top half of a binary32: widening is a shift, for every input.
constexpr float bf16_to_float(std::uint16_t bits) noexcept {
  return std::bit_cast<float>(static_cast<std::uint32_t>(bits) << 16);
}

}  // namespace qgan::io
