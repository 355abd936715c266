// The scalar kernel set: the reference functions themselves, behind the same tables. It
// is what architectures without xsimd support run, what QGAN_KERNELS=scalar forces, and
// what the tests hold every other set against.
#pragma once

#include "qgan/pack/canonical.hpp"
#include "qgan/quant/reductions_ref.hpp"
#include "qgan/quant/uniform_grid.hpp"
#include "qgan/simd/conv_ref.hpp"
#include "qgan/simd/tables.hpp"

namespace qgan::simd {

/// Gives the scalar set's instantiations their own symbols (see qgan/pack/canonical.hpp).
struct scalar_tag {};

template <class Tag = scalar_tag>
struct reference_kernels {
  static void minmax(const float* values, std::size_t count, float& lowest, float& highest) noexcept {
    detail::minmax_ref<Tag>(values, count, lowest, highest);
  }
  static value_summary summarize(const float* values, std::size_t count) noexcept {
    return detail::summarize_ref<Tag>(values, count);
  }
  static double centred_square_sum(const float* values, std::size_t count, double mean) noexcept {
    return detail::centred_square_sum_ref<Tag>(values, count, mean);
  }
  static em_sums em_pass(const float* values, std::size_t count, const uniform_params& grid) noexcept {
    return detail::em_pass_ref<Tag>(values, count, grid);
  }
  static void encode_uniform(const float* values, std::size_t count, const uniform_params& grid,
                             std::uint8_t* codes) noexcept {
    detail::encode_uniform_ref<Tag>(values, count, grid, codes);
  }
  static void pack_codes(const std::uint8_t* codes, std::size_t count, int bits, std::uint8_t* packed) noexcept {
    pack::pack_ref<Tag>(codes, count, bits, packed);
  }
  static void unpack(const std::uint8_t* packed, std::size_t first, std::size_t count, int bits,
                     std::uint8_t* codes) noexcept {
    pack::unpack_ref<Tag>(packed, first, count, bits, codes);
  }
  static void dequantize_uniform(const std::uint8_t* packed, std::size_t first, std::size_t count,
                                 int bits, const uniform_params& grid, float* values) noexcept {
    pack::dequantize_uniform_ref<Tag>(packed, first, count, bits, grid, values);
  }
};

template <class Tag = scalar_tag>
inline const kernel_set& reference_kernel_set() noexcept {
  using k = reference_kernels<Tag>;
  static constexpr kernel_set set{"scalar",
                                  {&k::minmax, &k::summarize, &k::centred_square_sum},
                                  {&k::em_pass},
                                  {&k::encode_uniform, &k::pack_codes, &k::unpack,
                                   &k::dequantize_uniform, ~std::size_t{0}},
                                  {&conv_ref::a8_channel_tile_ref<Tag>, &conv_ref::a8_row_tile_ref<Tag>,
                                   &conv_ref::f32_channel_tile_ref<Tag>, &conv_ref::f32_dot_tile_ref<Tag>, &conv_ref::tanh_ref<Tag>, false}};
  return set;
}

}  // namespace qgan::simd
