// Scalar references of the packed-compute kernels (see qgan/simd/conv_types.hpp for the
// math). The SIMD kernels must give the same bits; the tests hold them to that on random
// tiles. `Tag` as in qgan/pack/canonical.hpp.
#pragma once

#include "qgan/core/isa_namespace.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "qgan/nn/packed/tanh.hpp"
#include "qgan/simd/conv_types.hpp"

namespace qgan::simd::conv_ref {
// In the instruction-set namespace as pack/canonical.hpp's references are: layer code
// calls them with the default Tag from units built with different -m flags.
QGAN_BEGIN_FUNCTIONS

/// Code byte j (output lane j/4, channel 4*v + j%4 of the chunk) of vector v (0..7) of a
/// chunk of 32 input channels x 16 output channels: widths 1, 2 and 4 hold 8/k vectors per
/// 64-byte block, vector v in bits [k*(v mod 8/k), ...) of block v/(8/k); width 3 is a
/// 2-bit part (blocks 0-1) and a 1-bit part (block 2); width 8 holds code - offset as a
/// signed byte.
template <class Tag = void>
inline std::int32_t chunk_code(const std::uint8_t* chunk, int storage_bits, std::size_t v, std::size_t j) noexcept {
  switch (storage_bits) {
    case 1: return (chunk[j] >> v) & 1;
    case 2: return (chunk[64 * (v / 4) + j] >> (2 * (v % 4))) & 3;
    case 3:
      return ((chunk[64 * (v / 4) + j] >> (2 * (v % 4))) & 3) | (((chunk[128 + j] >> v) & 1) << 2);
    case 4: return (chunk[64 * (v / 2) + j] >> (4 * (v % 2))) & 15;
    default: return static_cast<std::int8_t>(chunk[64 * v + j]);
  }
}

template <class Tag = void>
inline std::uint8_t requantize_ref(float y, const tile_output& out) noexcept {
  const float scaled = y * out.inverse_scale;
  const float rounded = std::nearbyint(scaled) + static_cast<float>(out.zero_point);
  const float low = rounded > 0.0f ? rounded : 0.0f;  // NaN -> 0, as the SIMD max does
  return static_cast<std::uint8_t>(low < 255.0f ? low : 255.0f);
}

template <class Tag = void>
inline float int_output_ref(std::int32_t acc, std::int32_t q_sum, std::int32_t count, std::int32_t z_sum,
                            const int_epilogue& e, std::size_t o) noexcept {
  const std::int32_t a = acc + e.code_offset * q_sum - e.zero_point * z_sum;
  const std::int32_t b = q_sum - e.zero_point * count;
  return std::fma(e.alpha_scale[o], static_cast<float>(a), std::fma(e.beta_scale[o], static_cast<float>(b), e.bias[o]));
}

template <class Tag = void>
inline void store_ref(float y, void* destination, std::size_t index, const tile_output& out) noexcept {
  if (out.to_u8) {
    static_cast<std::uint8_t*>(destination)[index] = requantize_ref<Tag>(y, out);
  } else {
    static_cast<float*>(destination)[index] = out.relu && y < 0.0f ? 0.0f : y;
  }
}

/// The integer epilogue of one output block of a channel tile: sums[position][lane] (the
/// block's acc) to outputs. Every set's channel tiles end here, so their bits agree.
template <class Tag = void>
inline void a8_channel_block_outputs_ref(const a8_channel_tile& t, std::size_t block, const std::int32_t (*sums)[tile_lanes]) noexcept {
  int_epilogue e = t.epilogue;
  e.alpha_scale += block * t.terms_stride;
  e.beta_scale += block * t.terms_stride;
  e.bias += block * t.terms_stride;
  const std::size_t lanes = block + 1 == t.blocks ? t.lanes : tile_lanes;
  for (std::size_t p = 0; p < t.positions; ++p) {
    for (std::size_t o = 0; o < lanes; ++o) {
      const std::int32_t z_sum = t.code_sums != nullptr ? t.code_sums[(block * t.positions + p) * tile_lanes + o] : 0;
      const float y = int_output_ref<Tag>(sums[p][o], t.input_sums[p], t.input_counts[p], z_sum, e, o);
      const std::size_t index = t.output.to_u8 ? (o / 4) * t.output.quad_stride + o % 4 : o;
      void* out = static_cast<std::uint8_t*>(t.outputs[p]) + block * t.block_output_bytes;
      store_ref<Tag>(y, out, index, t.output);
    }
  }
}

/// The integer epilogue of a row tile: acc[output][lane], each lane's input sum and count.
template <class Tag = void>
inline void a8_row_outputs_ref(const a8_row_tile& t, const std::int32_t (*acc)[16], const std::int32_t* q_sum,
                               const std::int32_t* count) noexcept {
  for (std::size_t lane = 0; lane < t.lanes; ++lane) {
    for (std::size_t o = 0; o < t.output_count; ++o) {
      const std::int32_t z_sum = t.code_sums != nullptr ? t.code_sums[o * 16 + lane] : 0;
      const float y = int_output_ref<Tag>(acc[o][lane], q_sum[lane], count[lane], z_sum, t.epilogue, o);
      const auto at = static_cast<std::size_t>(t.out_pixels[lane]) * t.pixel_stride + o * t.output_stride;
      store_ref<Tag>(y, t.output_base, at, t.output);
    }
  }
}

template <class Tag = void>
inline void a8_channel_block_ref(const a8_channel_tile& t, std::size_t block) noexcept {
  std::int32_t acc[tile_positions][tile_lanes] = {};
  const std::uint8_t* weights = t.weights + block * t.block_bytes;
  for (std::size_t tap = 0; tap < t.tap_count; ++tap) {
    const std::uint8_t* w = weights + t.taps[tap] * t.tap_bytes;
    for (std::size_t v = 0; v < t.vectors; ++v) {
      const std::uint8_t* chunk = w + (v / 8) * chunk_bytes(t.storage_bits);
      for (std::size_t p = 0; p < t.positions; ++p) {
        const std::uint8_t* x = t.inputs[tap * t.positions + p] + 4 * v;
        for (std::size_t j = 0; j < 4 * tile_lanes; ++j) {
          acc[p][j / 4] += chunk_code<Tag>(chunk, t.storage_bits, v % 8, j) * std::int32_t{x[j % 4]};
        }
      }
    }
  }
  a8_channel_block_outputs_ref<Tag>(t, block, acc);
}

template <class Tag = void>
inline void a8_channel_tile_ref(const a8_channel_tile& t) noexcept {
  for (std::size_t block = 0; block < t.blocks; ++block) a8_channel_block_ref<Tag>(t, block);
}

template <class Tag = void>
inline void a8_row_tile_ref(const a8_row_tile& t) noexcept {
  std::int32_t acc[row_tile_outputs][16] = {}, q_sum[16] = {}, count[16] = {};
  for (std::size_t tap = 0; tap < t.tap_count; ++tap) {
    for (std::size_t lane = 0; lane < t.lanes; ++lane) {
      const std::int32_t pixel = t.pixels[tap * 16 + lane];
      if (pixel < 0) continue;
      count[lane] += static_cast<std::int32_t>(t.group_in);
      for (std::size_t v = 0; v < t.vectors; ++v) {
        const std::uint8_t* x = t.input + v * t.plane_bytes + static_cast<std::size_t>(pixel) * 4;
        for (std::size_t b = 0; b < 4; ++b) q_sum[lane] += x[b];
        for (std::size_t o = 0; o < t.output_count; ++o) {
          const std::int8_t* w = t.weights + ((o * t.weight_tap_count + t.taps[tap]) * t.vectors + v) * 4;
          for (std::size_t b = 0; b < 4; ++b) acc[o][lane] += std::int32_t{w[b]} * std::int32_t{x[b]};
        }
      }
    }
  }
  a8_row_outputs_ref<Tag>(t, acc, q_sum, count);
}

template <class Tag = void>
inline void tanh_ref(const float* in, float* out, std::size_t count) noexcept {
  for (std::size_t i = 0; i < count; ++i) out[i] = ::qgan::nn::packed::tanh_approx(in[i]);
}

/// An fp32 tile's epilogue for output o of position p, given its sum: one function for
/// every set and both tile kinds, so the bits cannot drift apart.
template <class Tag = void>
inline void f32_store_output(const f32_channel_tile& t, std::size_t p, std::size_t o, float sum) noexcept {
  const float y = std::fma(t.scale[o], sum, std::fma(t.beta_scale[o], t.input_sums[p], t.bias[o]));
  t.outputs[p][o] = t.relu && y < 0.0f ? 0.0f : y;
}

template <class Tag = void>
inline void f32_channel_tile_ref(const f32_channel_tile& t) noexcept {
  float acc[tile_positions][tile_lanes] = {};
  for (std::size_t tap = 0; tap < t.tap_count; ++tap) {
    const float* w = t.weights + t.taps[tap] * t.channels * tile_lanes;
    for (std::size_t c = 0; c < t.channels; ++c) {
      for (std::size_t p = 0; p < t.positions; ++p) {
        const float x = t.inputs[tap * t.positions + p][c];
        for (std::size_t o = 0; o < tile_lanes; ++o) {
          const float product = x * w[c * tile_lanes + o];
          acc[p][o] = acc[p][o] + product;
        }
      }
    }
  }
  for (std::size_t p = 0; p < t.positions; ++p) {
    for (std::size_t o = 0; o < t.lanes; ++o) f32_store_output<Tag>(t, p, o, acc[p][o]);
  }
}

/// The sum of an fp32 dot tile's 16 partial sums, in the tile's order.
template <class Tag = void>
inline float dot_partials_sum(float* partial) noexcept {
  for (std::size_t half = dot_partials / 2; half > 0; half /= 2) {
    for (std::size_t j = 0; j < half; ++j) partial[j] = partial[j] + partial[j + half];
  }
  return partial[0];
}

template <class Tag = void>
inline void f32_dot_tile_ref(const f32_channel_tile& t) noexcept {
  const std::size_t padded = dot_padded_channels(t.channels);
  for (std::size_t o = 0; o < t.lanes; ++o) {
    for (std::size_t p = 0; p < t.positions; ++p) {
      float partial[dot_partials] = {};
      for (std::size_t tap = 0; tap < t.tap_count; ++tap) {
        const float* w = t.weights + o * t.output_stride + t.taps[tap] * padded;
        const float* x = t.inputs[tap * t.positions + p];
        for (std::size_t c = 0; c < padded; ++c) {
          const float product = (c < t.channels ? x[c] : 0.0f) * w[c];
          partial[c % dot_partials] = partial[c % dot_partials] + product;
        }
      }
      f32_store_output<Tag>(t, p, o, dot_partials_sum<Tag>(partial));
    }
  }
}

QGAN_END_FUNCTIONS
}  // namespace qgan::simd::conv_ref
