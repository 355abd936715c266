// The EM pass for grids of at most 16 levels on AVX-512: the same terms as
// detail::em_pass_ref, summed in the same 16 virtual lanes, with fewer instructions.
// Widening z and the decoded level to double took four of the six float->double
// conversions per register; here both come from 16-entry double tables indexed by the
// code, one two-register permute (vpermt2pd) each. The table holds exactly the float the
// reference decodes, so every term is bit-identical. AVX2 has no variable permute of
// doubles across lanes, so the other sets keep the generic loop (em_pass_body.inl).
#pragma once

#if defined(__AVX512F__) && defined(__AVX512DQ__)
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "qgan/quant/reductions_ref.hpp"
#include "qgan/quant/uniform_grid.hpp"
#include "qgan/simd/kernel_types.hpp"

namespace qgan::simd::x86 {

/// The distance from an integer beyond which a lane's multiply by 1/alpha is checked
/// against the division (see em_pass_body.inl: near_tie_distance).
template <class Arch>
inline float near_tie_window(int bits) noexcept {
  return 0.5f - static_cast<float>(std::uint32_t{1} << bits) / static_cast<float>(1 << 18);
}

/// Register-wide part of the pass over count - count % 16 elements; returns the lanes'
/// error and cross sums and the code sums. Needs alpha > 0 with a normal 1/alpha.
template <class Arch>
inline void em_pass_few_levels_avx512(const float* values, std::size_t body, const uniform_params& grid,
                                      double (&error_lanes)[virtual_lanes],
                                      double (&cross_lanes)[virtual_lanes], em_sums& sums) noexcept {
  const std::uint32_t top_level = detail::top_code(grid.bits);
  alignas(64) double level_table[16], code_table[16];
  for (std::uint32_t z = 0; z < 16; ++z) {
    const std::uint32_t code = z < top_level ? z : top_level;
    level_table[z] = detail::uniform_decode<Arch>(code, grid);
    code_table[z] = code;
  }
  const __m512d levels_low = _mm512_load_pd(level_table);
  const __m512d levels_high = _mm512_load_pd(level_table + 8);
  const __m512d codes_low = _mm512_load_pd(code_table), codes_high = _mm512_load_pd(code_table + 8);
  const __m512 alpha = _mm512_set1_ps(grid.alpha), beta = _mm512_set1_ps(grid.beta);
  const __m512 inverse_alpha = _mm512_set1_ps(1.0f / grid.alpha), zero = _mm512_setzero_ps();
  const __m512 top = _mm512_set1_ps(static_cast<float>(top_level));
  const __m512 near_tie = _mm512_set1_ps(near_tie_window<Arch>(grid.bits));
  const __m512 magnitude_mask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
  // The E-step works on elements j and j + 8 side by side in 64-bit lane j, so the code
  // of element j is the index in the low half of lane j and that of j + 8 (after one
  // shift) in the high half: the double-table permutes read them without a widening of
  // the codes. Elements 0-7 (virtual lanes 0-7) and 8-15 are widened straight from memory.
  const __m512i pairing = _mm512_setr_epi32(0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15);
  constexpr int nearest = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
  __m512d cross_low = _mm512_setzero_pd(), cross_high = _mm512_setzero_pd();
  __m512d error_low_acc = _mm512_setzero_pd(), error_high_acc = _mm512_setzero_pd();
  __m512d code_sum_acc = _mm512_setzero_pd(), square_sum_acc = _mm512_setzero_pd();
  // Code sums stay exact in float below 2^24 per lane (225 * 256 at most for squares).
  constexpr std::size_t block = 256 * 16;
  for (std::size_t block_start = 0; block_start < body; block_start += block) {
    const std::size_t block_end = body - block_start >= block ? block_start + block : body;
    __m512 code_acc = _mm512_setzero_ps(), square_acc = _mm512_setzero_ps();
    for (std::size_t i = block_start; i < block_end; i += 16) {
      const __m512 x = _mm512_permutexvar_ps(pairing, _mm512_loadu_ps(values + i));
      const __m512 shifted = _mm512_sub_ps(x, beta);
      // Clamping before rounding gives the reference's clamp(round(q)), as 0 and top are
      // integers; clamped lanes then never look like ties.
      __m512 position = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(shifted, inverse_alpha), zero), top);
      __m512i code = _mm512_cvt_roundps_epi32(position, nearest);
      __m512 z = _mm512_cvtepi32_ps(code);
      const __m512 distance = _mm512_and_ps(_mm512_sub_ps(position, z), magnitude_mask);
      if (_mm512_cmp_ps_mask(distance, near_tie, _CMP_GT_OQ) != 0) {
        position = _mm512_min_ps(_mm512_max_ps(_mm512_div_ps(shifted, alpha), zero), top);
        code = _mm512_cvt_roundps_epi32(position, nearest);
        z = _mm512_cvtepi32_ps(code);
      }
      code_acc = _mm512_add_ps(code_acc, z);
      square_acc = _mm512_fmadd_ps(z, z, square_acc);  // exact: small integers
      const __m512i code_of_high = _mm512_srli_epi64(code, 32);
      const __m512d x_low = _mm512_cvtps_pd(_mm256_loadu_ps(values + i));
      const __m512d x_high = _mm512_cvtps_pd(_mm256_loadu_ps(values + i + 8));
      const __m512d level_low = _mm512_permutex2var_pd(levels_low, code, levels_high);
      const __m512d level_high = _mm512_permutex2var_pd(levels_low, code_of_high, levels_high);
      const __m512d z_low = _mm512_permutex2var_pd(codes_low, code, codes_high);
      const __m512d z_high = _mm512_permutex2var_pd(codes_low, code_of_high, codes_high);
      const __m512d error_low = _mm512_sub_pd(x_low, level_low);
      const __m512d error_high = _mm512_sub_pd(x_high, level_high);
      // Square rounded, then added: the reference's order (no fused multiply-add).
      error_low_acc = _mm512_add_pd(error_low_acc, _mm512_mul_pd(error_low, error_low));
      error_high_acc = _mm512_add_pd(error_high_acc, _mm512_mul_pd(error_high, error_high));
      // x*z is exact in double, so the fused form rounds exactly like the reference.
      cross_low = _mm512_fmadd_pd(x_low, z_low, cross_low);
      cross_high = _mm512_fmadd_pd(x_high, z_high, cross_high);
    }
    code_sum_acc = _mm512_add_pd(code_sum_acc, _mm512_cvtps_pd(_mm512_castps512_ps256(code_acc)));
    code_sum_acc = _mm512_add_pd(code_sum_acc, _mm512_cvtps_pd(_mm256_castpd_ps(
                                                   _mm512_extractf64x4_pd(_mm512_castps_pd(code_acc), 1))));
    square_sum_acc = _mm512_add_pd(square_sum_acc, _mm512_cvtps_pd(_mm512_castps512_ps256(square_acc)));
    square_sum_acc = _mm512_add_pd(square_sum_acc, _mm512_cvtps_pd(_mm256_castpd_ps(
                                                       _mm512_extractf64x4_pd(_mm512_castps_pd(square_acc), 1))));
  }
  _mm512_storeu_pd(error_lanes, error_low_acc);
  _mm512_storeu_pd(error_lanes + 8, error_high_acc);
  _mm512_storeu_pd(cross_lanes, cross_low);
  _mm512_storeu_pd(cross_lanes + 8, cross_high);
  sums.code_sum += _mm512_reduce_add_pd(code_sum_acc);
  sums.code_square_sum += _mm512_reduce_add_pd(square_sum_acc);
}

}  // namespace qgan::simd::x86
#endif
