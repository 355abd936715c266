// Scalar specifications of the reductions the fits use (qgan/simd/kernel_types.hpp says
// why every one runs over 16 virtual lanes): min/max, sum, centred sum of squares, and
// the fused EM pass. The SIMD kernels in qgan/simd/ mirror them bit for bit. `Tag` gives
// each instruction set's caller its own instantiation (see qgan/pack/canonical.hpp).
//
// Products are rounded before they are added (no fused multiply-add): SSE2 has none, and
// a kernel set that fused would disagree with one that could not. qgan's own targets
// build with -ffp-contract=off so that the compiler does not fuse them either.
#pragma once

#include "qgan/core/isa_namespace.hpp"

#include <cstddef>
#include <cstdint>

#include "qgan/quant/uniform_grid.hpp"
#include "qgan/simd/kernel_types.hpp"

namespace qgan::detail {

QGAN_BEGIN_FUNCTIONS

/// Min and max of count values into lowest/highest (which the caller seeds).
template <class Tag = void>
inline void minmax_ref(const float* values, std::size_t count, float& lowest,
                       float& highest) noexcept {
  for (std::size_t i = 0; i < count; ++i) {
    lowest = values[i] < lowest ? values[i] : lowest;
    highest = values[i] > highest ? values[i] : highest;
  }
}

/// -0 and +0 compare equal, so which one min/max keeps depends on the order it met them;
/// a fitted beta must not, so an extreme of zero is always +0.
inline float positive_zero(float value) noexcept { return value == 0.0f ? 0.0f : value; }

template <class Tag = void>
inline simd::value_summary summarize_ref(const float* values, std::size_t count) noexcept {
  simd::value_summary result;
  if (count == 0) return result;
  result.lowest = result.highest = values[0];
  minmax_ref<Tag>(values, count, result.lowest, result.highest);
  double lanes[simd::virtual_lanes] = {};
  for (std::size_t i = 0; i < count; ++i) lanes[i % simd::virtual_lanes] += values[i];
  result.sum = simd::fold_lanes<Tag>(lanes);
  return result;
}

/// Sum of (value - mean)^2, each difference and square rounded to double.
template <class Tag = void>
inline double centred_square_sum_ref(const float* values, std::size_t count, double mean) noexcept {
  double lanes[simd::virtual_lanes] = {};
  for (std::size_t i = 0; i < count; ++i) {
    const double offset = static_cast<double>(values[i]) - mean;
    const double square = offset * offset;
    lanes[i % simd::virtual_lanes] += square;
  }
  return simd::fold_lanes<Tag>(lanes);
}

/// One EM pass: E-step z = uniform_encode(w), the squared error of the float level z
/// decodes to, and the sums of z, z^2 and w*z.
template <class Tag = void>
inline simd::em_sums em_pass_ref(const float* values, std::size_t count,
                                 const uniform_params& grid) noexcept {
  // Each level decoded once: the same std::fma the element-wise decode would do.
  double level_of[256];
  const std::uint32_t levels = level_count(grid.bits);
  for (std::uint32_t z = 0; z < levels; ++z) level_of[z] = uniform_decode<Tag>(z, grid);
  double error_lanes[simd::virtual_lanes] = {}, cross_lanes[simd::virtual_lanes] = {};
  simd::em_sums sums;
  for (std::size_t i = 0; i < count; ++i) {
    const std::uint32_t code = uniform_encode<Tag>(values[i], grid);
    const double value = values[i], z = static_cast<double>(code);
    const double error = value - level_of[code];
    const double square = error * error;
    error_lanes[i % simd::virtual_lanes] += square;
    cross_lanes[i % simd::virtual_lanes] += value * z;  // exact: 24 x 8 significant bits
    sums.code_sum += z;
    sums.code_square_sum += z * z;
  }
  sums.squared_error = simd::fold_lanes<Tag>(error_lanes);
  sums.cross = simd::fold_lanes<Tag>(cross_lanes);
  return sums;
}

QGAN_END_FUNCTIONS
}  // namespace qgan::detail
