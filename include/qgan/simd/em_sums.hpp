// What one EM pass hands the M-step. Outside the kernel body so that every instruction
// set's kernels return the same type.
#pragma once

namespace qgan::simd {

/// Squared error of the current grid and the sums of z, z^2 and (w - mean) * z.
struct em_sums {
  double squared_error = 0.0;
  double code_sum = 0.0;
  double code_square_sum = 0.0;
  double centred_cross = 0.0;
};

}  // namespace qgan::simd
