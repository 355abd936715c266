// What the kernels hand back, and the one summation order every kernel set shares. Plain
// types with no xsimd, so the policies and the kernel tables can name them.
//
// Why a fixed order: EM stops when the MSE stops falling, and the M-step divides sums that
// near the optimum differ only in their last bits, so a different summation order (another
// vector width, another thread count) ends in another grid and another file. Every
// reduction that feeds a fitted parameter or a stopping decision is therefore defined over
// 16 virtual lanes: element i of a call adds into lane i mod 16, each lane in element
// order, and the lanes are folded by the fixed tree of fold_lanes(). A register of any
// width (2, 4, 8 or 16 doubles) holds whole lanes, so SSE2, AVX2, AVX-512 and NEON compute
// the very same sums; long inputs are cut into reduction_chunk pieces whose results are
// added in order, which is what lets threads split one tensor without changing a bit.
#pragma once

#include <cstddef>

namespace qgan::simd {

inline constexpr std::size_t virtual_lanes = 16;

/// Elements per independently reduced piece of a long input (a multiple of every
/// register width and of 8 codes, so a piece starts on a byte of any packed width).
inline constexpr std::size_t reduction_chunk = std::size_t{1} << 16;

/// lanes[0] + ... + lanes[15] as a balanced tree: (0+8, 1+9, ...), then (0+4, ...), ...
template <class Tag = void>
inline double fold_lanes(double (&lanes)[virtual_lanes]) noexcept {
  for (std::size_t width = virtual_lanes / 2; width >= 1; width /= 2) {
    for (std::size_t j = 0; j < width; ++j) lanes[j] = lanes[j] + lanes[j + width];
  }
  return lanes[0];
}

/// min, max and sum of a run of values; the sum is +-inf or NaN when a value is not
/// finite, which is how callers notice one.
struct value_summary {
  float lowest = 0.0f, highest = 0.0f;
  double sum = 0.0;
};

/// What one EM pass hands the M-step: the squared error of the current grid and the sums
/// of z, z^2 and w*z (code sums are exact integers in double, so their order is free).
struct em_sums {
  double squared_error = 0.0;
  double code_sum = 0.0;
  double code_square_sum = 0.0;
  double cross = 0.0;  ///< sum of w*z, each product exact in double

  em_sums& operator+=(const em_sums& other) noexcept {
    squared_error += other.squared_error;
    code_sum += other.code_sum;
    code_square_sum += other.code_square_sum;
    cross += other.cross;
    return *this;
  }
};

}  // namespace qgan::simd
