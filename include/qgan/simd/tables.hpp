// The kernel tables: plain structs of function pointers, one per kernel family, declared
// with no xsimd so that the policies' front doors can call through whichever set was
// selected (qgan/simd/select.hpp) without depending on how a set was compiled. A set is
// one instruction set's tables together; the packed-compute families (GEMM, conv) join
// kernel_set as tables of their own.
#pragma once

#include <cstddef>
#include <cstdint>

#include "qgan/quant/uniform_grid.hpp"
#include "qgan/simd/conv_types.hpp"
#include "qgan/simd/kernel_types.hpp"

namespace qgan::simd {

/// Reductions over float runs, in the order kernel_types.hpp fixes.
struct reduction_table {
  /// Min and max of count values into lowest/highest, which the caller seeds.
  void (*minmax)(const float* values, std::size_t count, float& lowest, float& highest) noexcept;
  value_summary (*summarize)(const float* values, std::size_t count) noexcept;
  double (*centred_square_sum)(const float* values, std::size_t count, double mean) noexcept;
};

/// The fused E-step pass of the EM quantizer.
struct em_table {
  em_sums (*em_pass)(const float* values, std::size_t count, const uniform_params& grid) noexcept;
};

/// Encoding to codes, the canonical bit packing, and decoding straight from it.
struct codec_table {
  /// codes[i] = clamp(round_half_even((values[i] - beta) / alpha), 0, 2^k - 1).
  void (*encode_uniform)(const float* values, std::size_t count, const uniform_params& grid,
                         std::uint8_t* codes) noexcept;
  void (*pack_codes)(const std::uint8_t* codes, std::size_t count, int bits,
                     std::uint8_t* packed) noexcept;
  void (*unpack)(const std::uint8_t* packed, std::size_t first, std::size_t count, int bits,
                 std::uint8_t* codes) noexcept;
  void (*dequantize_uniform)(const std::uint8_t* packed, std::size_t first, std::size_t count,
                             int bits, const uniform_params& grid, float* values) noexcept;
  std::size_t streaming_threshold;  ///< outputs this long are written with streaming stores
};

/// Packed-weight layer tiles (qgan/simd/conv_types.hpp): the same bits on every set.
struct conv_table {
  void (*a8_channel)(const a8_channel_tile& tile) noexcept;
  void (*a8_row)(const a8_row_tile& tile) noexcept;
  void (*f32_channel)(const f32_channel_tile& tile) noexcept;
  void (*f32_dot)(const f32_channel_tile& tile) noexcept;
  /// out[i] = nn::packed::tanh_approx(in[i]) (the generators' last activation); out may
  /// be in (each register is read before it is written).
  void (*tanh)(const float* in, float* out, std::size_t count) noexcept;
  bool integer_dot_product;  ///< whether a8 tiles run on a dot-product instruction (VNNI)
};

/// One instruction set's kernels. Every set gives bit-identical codes, sums and decoded
/// floats (see qgan/simd/kernel_types.hpp and the README's "Same results on every CPU").
struct kernel_set {
  const char* name;  ///< "scalar", "sse2", "sse4_2", "avx2", "avx512bw", "avx512vnni", "neon64",
                     ///< "neon64_dotprod"
  reduction_table reductions;
  em_table em;
  codec_table codec;
  conv_table conv;
};

}  // namespace qgan::simd
