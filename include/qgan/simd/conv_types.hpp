// What the packed-compute kernels (qgan/simd/conv_body.inl, references in
// qgan/simd/conv_ref.hpp) take: one tile of a convolution phase, and the epilogue that
// turns its integer or float sums into outputs. Plain types, no xsimd.
//
// The math, per output channel o with a uniform grid w = alpha_o*z + beta_o (BatchNorm
// folded into alpha_o, beta_o and the bias) and 8-bit activations x = s*(q - zp):
//   y = s*alpha_o*(sum(z*q) - zp*sum(z)) + s*beta_o*(sum(q) - zp*n) + bias_o,
// every sum over the (tap, input channel) pairs that reach the output (n counts them):
// taps past the border are left out, not padded with zp. The kernels compute
// acc = sum((z - offset)*q) (offset 128 for 8-bit codes, so they fit a signed byte; 0
// below), and the epilogue adds offset*sum(q) back:
//   A = acc + offset*Q - zp*Z,  B = Q - zp*n,  y = fma(sa_o, A, fma(sb_o, B, bias_o))
// with Q = sum(q), Z = sum(z), sa_o = s*alpha_o, sb_o = s*beta_o. A and B are exact int32
// (the layer bounds the reduction length), converted to float once; fma is the correctly
// rounded one on every set, so every kernel set gives the same bits.
//
// With fp32 activations the kernels sum w*x over decoded weights (levels, so codebook
// policies run too) in a fixed order, one multiply and one add per term (no fusing), and
// y = fma(scale_o, sum, fma(beta_o, sum(x), bias_o)): the same bits on every set as well.
// Uniform grids decode to the codes z themselves (scale_o = alpha_o, beta_o as it is, one
// conversion per weight); codebooks and fp32 weights to their values (beta_o = 0).
#pragma once

#include <cstddef>
#include <cstdint>

namespace qgan::simd {

/// Output channels one channel-vector tile computes (one AVX-512 register of int32).
inline constexpr std::size_t tile_lanes = 16;
/// Most positions one channel-vector tile holds (accumulator registers).
inline constexpr std::size_t tile_positions = 8;
/// Most output channels one row tile computes at a time.
inline constexpr std::size_t row_tile_outputs = 4;

/// Bytes one chunk of 32 input channels x 16 output channels takes at a storage width.
constexpr std::size_t chunk_bytes(int storage_bits) noexcept { return 64 * static_cast<std::size_t>(storage_bits); }

/// Where a tile's outputs go.
struct tile_output {
  bool to_u8 = false;            ///< requantize to u8 (else store float)
  bool relu = false;             ///< float outputs only; u8 outputs clamp at zp (ReLU for zp = 0)
  float inverse_scale = 1.0f;    ///< u8: q = clamp(round_half_even(y * inverse_scale) + zero_point, 0, 255)
  std::int32_t zero_point = 0;
  std::size_t quad_stride = 4;   ///< u8, channel tiles: bytes between consecutive 4-channel quads
};

/// The integer epilogue's per-channel terms (tile_lanes of each, zero past the layer's channels).
struct int_epilogue {
  const float* alpha_scale;      ///< sa_o
  const float* beta_scale;       ///< sb_o
  const float* bias;
  std::int32_t code_offset;      ///< 128 for 8-bit codes, else 0
  std::int32_t zero_point;       ///< of the input
};

/// A channel-vector tile: 16 output channels x up to tile_positions positions, weights in
/// the chunk layout (qgan/nn/packed/weight_layout.hpp), activations u8 channel-last.
struct a8_channel_tile {
  const std::uint8_t* weights;        ///< the output block's tap 0
  std::size_t tap_bytes;              ///< bytes per tap
  const std::uint16_t* taps;          ///< which taps to run
  std::size_t tap_count;
  const std::uint8_t* const* inputs;  ///< [tap][position]: the position's input pixel, channel 0
  std::size_t positions;
  std::size_t vectors;                ///< 4-channel groups per tap
  int storage_bits;                   ///< 1, 2, 3, 4 or 8
  const std::int32_t* input_sums;     ///< [position] Q
  const std::int32_t* input_counts;   ///< [position] n
  const std::int32_t* code_sums;      ///< [block][position][16] Z; null when the input zp is 0
  int_epilogue epilogue;              ///< the first block's terms
  std::size_t lanes;                  ///< output channels of the last block that exist
  void* const* outputs;               ///< [position]: where output channel 0 of the first block goes
  tile_output output;
  std::size_t blocks = 1;             ///< 16-channel output blocks, one after another
  std::size_t block_bytes = 0;        ///< weights: bytes from one block to the next
  std::size_t block_output_bytes = 0; ///< outputs: bytes from one block's channel 0 to the next's
  std::size_t terms_stride = 0;       ///< epilogue arrays: floats from one block's to the next's
};

/// A row tile: up to 16 positions in lanes (consecutive positions of one phase), up to
/// row_tile_outputs output channels, activations u8 in 4-channel planes (n, c/4, h, w, 4).
/// The kernel sums each lane's inputs (Q) and counts them (n) itself: they come out of
/// the loads the products need anyway.
struct a8_row_tile {
  const std::int8_t* weights;         ///< [output][kernel tap][vector] 4 codes each, offset applied
  std::size_t weight_tap_count;       ///< kernel taps per output in weights
  std::size_t output_count;           ///< 1..row_tile_outputs
  const std::uint16_t* taps;          ///< [tap]: the kernel tap
  const std::int32_t* pixels;         ///< [tap][16]: input pixel of each lane, -1 past the border
  std::size_t tap_count;
  const std::uint8_t* input;          ///< the image's first plane of the group
  std::size_t plane_bytes;            ///< bytes per 4-channel plane (h*w*4)
  std::size_t vectors;                ///< 4-channel planes
  std::size_t group_in;               ///< input channels a valid tap brings (n = valid taps * group_in)
  std::size_t lanes;                  ///< positions, 1..16
  const std::int32_t* code_sums;      ///< [output][16] Z; null when the input zp is 0
  int_epilogue epilogue;              ///< indexed by output
  void* output_base;                  ///< output o of lane l: element out_pixels[l] * pixel_stride + o * output_stride
  const std::int32_t* out_pixels;     ///< [16]
  std::size_t pixel_stride;           ///< elements (u8 or float) per output pixel
  std::size_t output_stride;          ///< elements between consecutive outputs at one position
  tile_output output;
};

/// Floats per chunk of an fp32 dot tile's reduction, the partial sums it keeps.
inline constexpr std::size_t dot_partials = 16;

/// An fp32 tile, activations float channel-last, up to tile_positions positions. Run as
/// - a channel tile (conv_table::f32_channel): decoded weights [tap][channel][16], the
///   `lanes` live outputs of a 16-output block in the lanes;
/// - a dot tile (conv_table::f32_dot), for layers with fewer than 16 outputs per group (a
///   channel tile would fill as few of its lanes): weights [output][kernel tap][padded
///   channel], each output of each position a dot product over the channels of every tap,
///   kept in 16 partial sums (channel c goes to partial c % 16; the channels are padded
///   with zeros to a multiple of 16) that are then added pairwise (j + 8 into j, then
///   j + 4, j + 2, j + 1). Instruction sets of 4, 8 or 16 lanes add in that one order, so
///   every set gives the same bits.
struct f32_channel_tile {
  const float* weights;
  std::size_t channels;               ///< channels an input pixel brings
  const std::uint16_t* taps;
  std::size_t tap_count;
  const float* const* inputs;         ///< [tap][position]: the pixel's first channel
  std::size_t positions;
  const float* input_sums;            ///< [position] sum of the inputs it reads
  const float* scale;                 ///< [output]: y = fma(scale, sum, fma(beta_scale, input_sum, bias))
  const float* beta_scale;            ///< [output]
  const float* bias;                  ///< [output]
  std::size_t lanes;                  ///< live outputs (a dot tile: 1..15)
  float* const* outputs;              ///< [position]: output 0 of the position
  bool relu;
  std::size_t output_stride;          ///< dot tiles: floats from one output's weights to the next's
};

/// Channels padded to whole chunks of an fp32 dot tile.
constexpr std::size_t dot_padded_channels(std::size_t channels) noexcept {
  return (channels + dot_partials - 1) / dot_partials * dot_partials;
}

}  // namespace qgan::simd
