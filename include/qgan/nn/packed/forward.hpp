// Running packed layers: cut each output phase into tiles, gather each tile's input
// pointers and sums, and hand the tiles to the active kernel set. Tasks (one per tile
// range, or per output block on the fp32 path) write disjoint outputs, so any thread
// count gives the same bits.
#pragma once

#include "qgan/core/isa_namespace.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "qgan/core/error.hpp"
#include "qgan/core/thread_pool.hpp"
#include "qgan/nn/packed/layer.hpp"
#include "qgan/simd/select.hpp"

namespace qgan::nn::packed {
namespace detail {
QGAN_BEGIN_FUNCTIONS

inline std::size_t output_extent(const layer& l, const axis_spec& a, std::size_t in) {
  const auto i = static_cast<std::int64_t>(in);
  const std::int64_t k = a.kernel, s = a.stride, p = a.pad, d = a.dilation;
  const std::int64_t out = l.geometry.kind == layer_kind::transposed_convolution
                               ? (i - 1) * s - 2 * p + d * (k - 1) + a.output_pad + 1
                               : (i + 2 * p - d * (k - 1) - 1) / s + 1;
  const bool fits = l.geometry.kind == layer_kind::transposed_convolution || i + 2 * p - d * (k - 1) - 1 >= 0;
  if (!fits || out < 1) qgan::detail::throw_error(l.name, ": an input extent of ", in, " gives no output (kernel ", k, ", stride ", s, ", padding ", p, ")");
  return static_cast<std::size_t>(out);
}

inline std::shared_ptr<const layer_plan> plan_for(const layer& l, std::size_t height, std::size_t width) {
  if (auto found = l.plans->find(height, width)) return found;
  const std::size_t out_h = output_extent(l, l.geometry.rows, height), out_w = output_extent(l, l.geometry.cols, width);
  auto plan = std::make_shared<const layer_plan>(make_layer_plan(l.geometry.kind == layer_kind::transposed_convolution,
                                                                 static_cast<int>(height), static_cast<int>(width),
                                                                 static_cast<int>(out_h), static_cast<int>(out_w),
                                                                 l.geometry.rows, l.geometry.cols));
  return l.plans->insert(height, width, std::move(plan));
}

inline void check_input(const layer& l, std::size_t channels, std::size_t height, std::size_t width, std::size_t batch) {
  if (channels != l.geometry.in_channels) {
    qgan::detail::throw_error(l.name, ": input has ", channels, " channels, the layer takes ", l.geometry.in_channels);
  }
  if (height == 0 || width == 0 || batch == 0) qgan::detail::throw_error(l.name, ": input has an empty axis");
  if (height > (1u << 20) || width > (1u << 20)) qgan::detail::throw_error(l.name, ": input extent above 2^20");
  if (l.geometry.kind == layer_kind::linear && (height != 1 || width != 1)) qgan::detail::throw_error(l.name, ": a linear layer takes 1x1 inputs");
}

/// Epilogue terms of one 16-channel block (zero past the layer's channels).
struct block_terms {
  alignas(64) std::array<float, simd::tile_lanes> alpha_scale{}, beta_scale{}, bias{};
};

inline std::vector<block_terms> int8_block_terms(const layer& l, float input_scale) {
  std::vector<block_terms> terms(l.geometry.groups * l.blocks);
  for (std::size_t g = 0; g < l.geometry.groups; ++g) {
    for (std::size_t o = 0; o < l.group_out; ++o) {
      const std::size_t global = g * l.group_out + o;
      block_terms& t = terms[g * l.blocks + o / simd::tile_lanes];
      const std::size_t lane = o % simd::tile_lanes;
      t.alpha_scale[lane] = input_scale * (l.affine.gamma[global] * l.weights.alpha[global]);
      t.beta_scale[lane] = input_scale * (l.affine.gamma[global] * l.weights.beta[global]);
      t.bias[lane] = l.affine.shift[global];
    }
  }
  return terms;
}

inline std::vector<block_terms> fp32_block_terms(const layer& l) {
  std::vector<block_terms> terms(l.geometry.groups * l.blocks);
  for (std::size_t g = 0; g < l.geometry.groups; ++g) {
    for (std::size_t o = 0; o < l.group_out; ++o) {
      const std::size_t global = g * l.group_out + o;
      block_terms& t = terms[g * l.blocks + o / simd::tile_lanes];
      const std::size_t lane = o % simd::tile_lanes;
      const bool codes = l.weights.decode_as_codes;
      t.alpha_scale[lane] = codes ? l.affine.gamma[global] * l.weights.alpha[global] : l.affine.gamma[global];
      t.beta_scale[lane] = codes ? l.affine.gamma[global] * l.weights.beta[global] : 0.0f;
      t.bias[lane] = l.affine.shift[global];
    }
  }
  return terms;
}

/// Where one task's tiles lie: group, phase and first tile, from a flat task index.
struct tile_ranges {
  std::vector<std::size_t> starts;  ///< per (group, phase): first flat tile
  std::size_t total = 0;
  void build(std::size_t groups, const layer_plan& plan, std::size_t per_position, std::size_t tile) {
    starts.clear();
    total = 0;
    for (std::size_t g = 0; g < groups; ++g) {
      for (const phase_plan& phase : plan.phases) {
        starts.push_back(total);
        total += (phase.position_count() * per_position + tile - 1) / tile;
      }
    }
  }
  /// (group * phases + phase, tile within it)
  [[nodiscard]] std::pair<std::size_t, std::size_t> locate(std::size_t flat) const {
    const auto it = std::upper_bound(starts.begin(), starts.end(), flat) - 1;
    return {static_cast<std::size_t>(it - starts.begin()), flat - *it};
  }
};

/// Sum of each pixel's channels of each group (integers), [image][pixel][group].
inline std::vector<std::int32_t> pixel_sums(const u8_activations& in, std::size_t groups, std::size_t group_in) {
  std::vector<std::int32_t> sums(in.batch * in.pixels() * groups, 0);
  for (std::size_t n = 0; n < in.batch; ++n) {
    for (std::size_t p = 0; p < in.pixels(); ++p) {
      for (std::size_t g = 0; g < groups; ++g) {
        std::int32_t s = 0;
        for (std::size_t c = g * group_in; c < (g + 1) * group_in; ++c) s += in.data[in.offset(n, c, p)];
        sums[(n * in.pixels() + p) * groups + g] = s;
      }
    }
  }
  return sums;
}

template <class Arch>
void forward_int8(const layer& l, const u8_activations& in, void* out_data, bool to_u8, const u8_activations* u8_out,
                  std::size_t out_channels_stride, bool relu, const simd::tile_output& output, thread_pool& pool) {
  const layer_plan& plan = *plan_for(l, in.height, in.width);
  const simd::conv_table& kernels = simd::active_kernels<Arch>().conv;
  const std::vector<block_terms> terms = int8_block_terms(l, in.scale);
  const std::vector<std::int32_t> sums = pixel_sums(in, l.geometry.groups, l.group_in);
  const std::size_t groups = l.geometry.groups, batch = in.batch, in_pixels = in.pixels();
  const std::size_t out_pixels = static_cast<std::size_t>(plan.out_h) * static_cast<std::size_t>(plan.out_w);
  const std::int32_t zp = in.zero_point;
  const std::int32_t count_per_tap = static_cast<std::int32_t>(l.group_in);
  const std::vector<std::uint8_t> zeros(l.vectors * 4 + 64, 0);
  (void)relu;

  // Output address of channel `o` (global) at pixel `p` of image `n`.
  const auto out_address = [&](std::size_t n, std::size_t p, std::size_t o) -> void* {
    if (!to_u8) return static_cast<float*>(out_data) + (n * out_pixels + p) * out_channels_stride + o;
    return static_cast<std::uint8_t*>(out_data) + u8_out->offset(n, o, p);
  };

  tile_ranges ranges;
  if (!l.weights.row_tiles) {
    ranges.build(groups, plan, batch, simd::tile_positions);
    pool.run(ranges.total, [&](std::size_t flat) {
      const auto [index, tile] = ranges.locate(flat);
      const std::size_t g = index / plan.phases.size();
      const phase_plan& phase = plan.phases[index % plan.phases.size()];
      const std::size_t first = tile * simd::tile_positions;
      const std::size_t positions = std::min(simd::tile_positions, phase.position_count() * batch - first);
      std::array<std::size_t, simd::tile_positions> image{}, position{};
      for (std::size_t p = 0; p < positions; ++p) {
        position[p] = phase.by_pattern[(first + p) / batch];
        image[p] = (first + p) % batch;
      }
      // Taps any position of the tile reads; the others read zeros (code 0 there anyway).
      std::vector<std::uint16_t> taps;
      for (std::size_t t = 0; t < phase.tap_count(); ++t) {
        bool used = false;
        for (std::size_t p = 0; p < positions && !used; ++p) used = phase.pixels_of(position[p])[t] >= 0;
        if (used) taps.push_back(static_cast<std::uint16_t>(phase.tap_rows[t] * l.geometry.cols.kernel + phase.tap_cols[t]));
      }
      std::vector<const std::uint8_t*> inputs(std::max<std::size_t>(taps.size(), 1) * positions, zeros.data());
      std::array<std::int32_t, simd::tile_positions> q_sums{}, counts{};
      std::vector<std::vector<std::uint16_t>> valid_taps(positions);
      for (std::size_t p = 0; p < positions; ++p) {
        std::size_t used = 0;
        for (std::size_t t = 0; t < phase.tap_count(); ++t) {
          const std::uint16_t kernel_tap = static_cast<std::uint16_t>(phase.tap_rows[t] * l.geometry.cols.kernel + phase.tap_cols[t]);
          if (used < taps.size() && taps[used] != kernel_tap) continue;
          const std::int32_t pixel = phase.pixels_of(position[p])[t];
          if (pixel >= 0) {
            const auto px = static_cast<std::size_t>(pixel);
            inputs[used * positions + p] = in.data.data() + in.offset(image[p], g * l.group_in, px);
            q_sums[p] += sums[(image[p] * in_pixels + px) * groups + g];
            counts[p] += count_per_tap;
            valid_taps[p].push_back(kernel_tap);
          }
          ++used;
        }
      }
      std::array<std::int32_t, simd::tile_positions * simd::tile_lanes> code_sums{};
      std::array<void*, simd::tile_positions> outputs{};
      for (std::size_t b = 0; b < l.blocks; ++b) {
        const std::size_t o_base = g * l.group_out + b * simd::tile_lanes;
        if (zp != 0) {
          code_sums.fill(0);
          for (std::size_t p = 0; p < positions; ++p) {
            for (const std::uint16_t t : valid_taps[p]) {
              const std::int32_t* z = l.weights.code_sums.data() + ((g * l.blocks + b) * l.taps + t) * simd::tile_lanes;
              for (std::size_t lane = 0; lane < simd::tile_lanes; ++lane) code_sums[p * simd::tile_lanes + lane] += z[lane];
            }
          }
        }
        for (std::size_t p = 0; p < positions; ++p) {
          const auto pixel = static_cast<std::size_t>(phase.out_rows[position[p]]) * static_cast<std::size_t>(plan.out_w) +
                             static_cast<std::size_t>(phase.out_cols[position[p]]);
          outputs[p] = out_address(image[p], pixel, o_base);
        }
        const block_terms& bt = terms[g * l.blocks + b];
        const simd::a8_channel_tile args{
            l.weights.codes.data() + (g * l.blocks + b) * l.taps * l.chunks * simd::chunk_bytes(l.weights.storage_bits),
            l.chunks * simd::chunk_bytes(l.weights.storage_bits),
            taps.data(),
            taps.size(),
            inputs.data(),
            positions,
            l.vectors,
            l.weights.storage_bits,
            q_sums.data(),
            counts.data(),
            zp != 0 ? code_sums.data() : nullptr,
            {bt.alpha_scale.data(), bt.beta_scale.data(), bt.bias.data(), l.weights.code_offset, zp},
            std::min(simd::tile_lanes, l.group_out - b * simd::tile_lanes),
            outputs.data(),
            output};
        kernels.a8_channel(args);
      }
    });
    return;
  }

  // Row tiles: 16 consecutive positions (row-major within the phase) of one image.
  std::vector<std::size_t> starts;
  std::size_t total = 0;
  for (std::size_t g = 0; g < groups; ++g) {
    for (const phase_plan& phase : plan.phases) {
      starts.push_back(total);
      total += batch * ((phase.position_count() + 15) / 16);
    }
  }
  pool.run(total, [&](std::size_t flat) {
    const auto it = std::upper_bound(starts.begin(), starts.end(), flat) - 1;
    const auto index = static_cast<std::size_t>(it - starts.begin());
    const std::size_t g = index / plan.phases.size();
    const phase_plan& phase = plan.phases[index % plan.phases.size()];
    const std::size_t per_image = (phase.position_count() + 15) / 16;
    const std::size_t n = (flat - *it) / per_image, first = ((flat - *it) % per_image) * 16;
    const std::size_t lanes = std::min<std::size_t>(16, phase.position_count() - first);
    std::vector<std::uint16_t> taps(phase.tap_count());
    std::vector<std::int32_t> pixels(phase.tap_count() * 16, -1);
    std::array<std::int32_t, 16> q_sums{}, counts{};
    for (std::size_t t = 0; t < phase.tap_count(); ++t) {
      taps[t] = static_cast<std::uint16_t>(phase.tap_rows[t] * l.geometry.cols.kernel + phase.tap_cols[t]);
      for (std::size_t lane = 0; lane < lanes; ++lane) {
        const std::int32_t pixel = phase.pixels_of(first + lane)[t];
        pixels[t * 16 + lane] = pixel;
        if (pixel >= 0) {
          q_sums[lane] += sums[(n * in_pixels + static_cast<std::size_t>(pixel)) * groups + g];
          counts[lane] += count_per_tap;
        }
      }
    }
    std::array<std::int32_t, simd::row_tile_outputs * 16> code_sums{};
    std::array<void*, 16> outputs{};
    alignas(64) std::array<float, simd::row_tile_outputs> sa{}, sb{}, bias{};
    for (std::size_t o0 = 0; o0 < l.group_out; o0 += simd::row_tile_outputs) {
      const std::size_t count = std::min(simd::row_tile_outputs, l.group_out - o0);
      for (std::size_t o = 0; o < count; ++o) {
        const std::size_t local = o0 + o;
        const block_terms& bt = terms[g * l.blocks + local / simd::tile_lanes];
        sa[o] = bt.alpha_scale[local % simd::tile_lanes];
        sb[o] = bt.beta_scale[local % simd::tile_lanes];
        bias[o] = bt.bias[local % simd::tile_lanes];
        if (zp != 0) {
          for (std::size_t lane = 0; lane < lanes; ++lane) {
            std::int32_t z = 0;
            for (std::size_t t = 0; t < phase.tap_count(); ++t) {
              if (pixels[t * 16 + lane] < 0) continue;
              z += l.weights.code_sums[((g * l.blocks + local / simd::tile_lanes) * l.taps + taps[t]) * simd::tile_lanes +
                                       local % simd::tile_lanes];
            }
            code_sums[o * 16 + lane] = z;
          }
        }
      }
      for (std::size_t lane = 0; lane < lanes; ++lane) {
        const auto pixel = static_cast<std::size_t>(phase.out_rows[first + lane]) * static_cast<std::size_t>(plan.out_w) +
                           static_cast<std::size_t>(phase.out_cols[first + lane]);
        outputs[lane] = out_address(n, pixel, g * l.group_out + o0);
      }
      const simd::a8_row_tile args{
          l.weights.row_codes.data() + (g * l.group_out + o0) * l.taps * l.vectors * 4,
          l.taps,
          count,
          taps.data(),
          pixels.data(),
          taps.size(),
          in.data.data() + in.offset(n, g * l.group_in, 0),
          in.plane_bytes(),
          l.vectors,
          lanes,
          q_sums.data(),
          counts.data(),
          zp != 0 ? code_sums.data() : nullptr,
          {sa.data(), sb.data(), bias.data(), l.weights.code_offset, zp},
          outputs.data(),
          1,
          output};
      kernels.a8_row(args);
    }
  });
}

QGAN_END_FUNCTIONS
}  // namespace detail

QGAN_BEGIN_FUNCTIONS

/// Output extent (height, width) for an input extent.
inline std::pair<std::size_t, std::size_t> output_size(const layer& l, std::size_t height, std::size_t width) {
  return {detail::output_extent(l, l.geometry.rows, height), detail::output_extent(l, l.geometry.cols, width)};
}

/// 8-bit input to 8-bit output; out's planar flag, scale and zero point say what to write
/// (q = clamp(round(y / scale) + zero_point, 0, 255): with zero point 0 that is ReLU).
template <class Arch = xsimd::default_arch>
void forward(const layer& l, const u8_activations& in, u8_activations& out, thread_pool& pool) {
  if (l.weights.path != activation_path::int8) qgan::detail::throw_error(l.name, ": built for fp32 activations, given 8-bit ones");
  detail::check_input(l, in.channels, in.height, in.width, in.batch);
  if (in.planar != l.weights.row_tiles) {
    qgan::detail::throw_error(l.name, ": takes ", l.weights.row_tiles ? "planar" : "channel-last", " 8-bit input, given ",
                in.planar ? "planar" : "channel-last");
  }
  if (!(out.scale > 0.0f) || !std::isfinite(out.scale) || out.zero_point < 0 || out.zero_point > 255) {
    qgan::detail::throw_error(l.name, ": output scale ", out.scale, " and zero point ", out.zero_point, " are not a valid 8-bit range");
  }
  if (out.planar && (l.weights.row_tiles || (l.geometry.groups > 1 && l.group_out % 4 != 0))) {
    qgan::detail::throw_error(l.name, ": cannot write planar output (row tiles, or groups of ", l.group_out, " channels)");
  }
  const auto [h, w] = output_size(l, in.height, in.width);
  out.allocate(in.batch, l.geometry.out_channels, h, w);
  simd::tile_output output;
  output.to_u8 = true;
  output.inverse_scale = 1.0f / out.scale;
  output.zero_point = out.zero_point;
  output.quad_stride = out.planar ? out.plane_bytes() : 4;
  detail::forward_int8<Arch>(l, in, out.data.data(), true, &out, 0, false, output, pool);
}

/// 8-bit input to float output (channel-last), with or without ReLU.
template <class Arch = xsimd::default_arch>
void forward(const layer& l, const u8_activations& in, f32_activations& out, bool relu, thread_pool& pool) {
  if (l.weights.path != activation_path::int8) qgan::detail::throw_error(l.name, ": built for fp32 activations, given 8-bit ones");
  detail::check_input(l, in.channels, in.height, in.width, in.batch);
  if (in.planar != l.weights.row_tiles) {
    qgan::detail::throw_error(l.name, ": takes ", l.weights.row_tiles ? "planar" : "channel-last", " 8-bit input, given ",
                in.planar ? "planar" : "channel-last");
  }
  const auto [h, w] = output_size(l, in.height, in.width);
  out.allocate(in.batch, l.geometry.out_channels, h, w);
  simd::tile_output output;
  output.relu = relu;
  detail::forward_int8<Arch>(l, in, out.data.data(), false, nullptr, l.geometry.out_channels, relu, output, pool);
}

/// Float input and output (channel-last).
template <class Arch = xsimd::default_arch>
void forward(const layer& l, const f32_activations& in, f32_activations& out, bool relu, thread_pool& pool) {
  if (l.weights.path != activation_path::fp32) qgan::detail::throw_error(l.name, ": built for 8-bit activations, given fp32 ones");
  detail::check_input(l, in.channels, in.height, in.width, in.batch);
  const layer_plan& plan = *detail::plan_for(l, in.height, in.width);
  const auto [h, w] = output_size(l, in.height, in.width);
  out.allocate(in.batch, l.geometry.out_channels, h, w);
  const simd::kernel_set& kernels = simd::active_kernels<Arch>();
  const std::vector<detail::block_terms> terms = detail::fp32_block_terms(l);
  const std::size_t groups = l.geometry.groups, batch = in.batch, in_pixels = in.height * in.width, out_pixels = h * w;
  // Sums of each pixel's channels per group, in channel order (the beta term).
  std::vector<float> sums(batch * in_pixels * groups, 0.0f);
  for (std::size_t i = 0; i < batch * in_pixels; ++i) {
    for (std::size_t g = 0; g < groups; ++g) {
      float s = 0.0f;
      for (std::size_t c = 0; c < l.group_in; ++c) s = s + in.data[i * in.channels + g * l.group_in + c];
      sums[i * groups + g] = s;
    }
  }
  const std::vector<float> zeros(l.group_in + 16, 0.0f);
  const std::size_t per_block = l.taps * l.group_in * simd::tile_lanes;
  pool.run(groups * l.blocks, [&](std::size_t task) {
    const std::size_t g = task / l.blocks, b = task % l.blocks;
    std::vector<float> decoded;
    const float* weights = nullptr;
    if (l.weights.codes.empty()) {
      weights = l.weights.floats.data() + task * per_block;
    } else {
      std::vector<std::uint8_t> codes(per_block);
      kernels.codec.unpack(l.weights.codes.data(), task * per_block, per_block, l.weights.bits, codes.data());
      decoded.resize(per_block);
      if (l.weights.decode_as_codes) {
        for (std::size_t i = 0; i < per_block; ++i) decoded[i] = static_cast<float>(codes[i]);
      } else {
        const std::size_t levels = std::size_t{1} << l.weights.bits;
        for (std::size_t i = 0; i < per_block; ++i) {
          const std::size_t o = std::min(g * l.group_out + b * simd::tile_lanes + i % simd::tile_lanes, l.geometry.out_channels - 1);
          decoded[i] = l.weights.floats[o * levels + codes[i]];
        }
      }
      weights = decoded.data();
    }
    const detail::block_terms& bt = terms[task];
    for (const phase_plan& phase : plan.phases) {
      const std::size_t entries = phase.position_count() * batch;
      for (std::size_t first = 0; first < entries; first += simd::tile_positions) {
        const std::size_t positions = std::min(simd::tile_positions, entries - first);
        std::array<std::size_t, simd::tile_positions> image{}, position{};
        for (std::size_t p = 0; p < positions; ++p) {
          position[p] = phase.by_pattern[(first + p) / batch];
          image[p] = (first + p) % batch;
        }
        std::vector<std::uint16_t> taps;
        for (std::size_t t = 0; t < phase.tap_count(); ++t) {
          bool used = false;
          for (std::size_t p = 0; p < positions && !used; ++p) used = phase.pixels_of(position[p])[t] >= 0;
          if (used) taps.push_back(static_cast<std::uint16_t>(phase.tap_rows[t] * l.geometry.cols.kernel + phase.tap_cols[t]));
        }
        std::vector<const float*> inputs(std::max<std::size_t>(taps.size(), 1) * positions, zeros.data());
        std::array<float, simd::tile_positions> input_sums{};
        std::array<float*, simd::tile_positions> outputs{};
        for (std::size_t p = 0; p < positions; ++p) {
          std::size_t used = 0;
          for (std::size_t t = 0; t < phase.tap_count(); ++t) {
            const auto kernel_tap = static_cast<std::uint16_t>(phase.tap_rows[t] * l.geometry.cols.kernel + phase.tap_cols[t]);
            if (used < taps.size() && taps[used] != kernel_tap) continue;
            const std::int32_t pixel = phase.pixels_of(position[p])[t];
            if (pixel >= 0) {
              const std::size_t at = image[p] * in_pixels + static_cast<std::size_t>(pixel);
              inputs[used * positions + p] = in.data.data() + at * in.channels + g * l.group_in;
              input_sums[p] = input_sums[p] + sums[at * groups + g];
            }
            ++used;
          }
          const auto pixel = static_cast<std::size_t>(phase.out_rows[position[p]]) * w + static_cast<std::size_t>(phase.out_cols[position[p]]);
          outputs[p] = out.data.data() + (image[p] * out_pixels + pixel) * l.geometry.out_channels + g * l.group_out + b * simd::tile_lanes;
        }
        const simd::f32_channel_tile args{weights, l.group_in, taps.data(), taps.size(), inputs.data(), positions,
                                          input_sums.data(), bt.alpha_scale.data(), bt.beta_scale.data(), bt.bias.data(),
                                          std::min(simd::tile_lanes, l.group_out - b * simd::tile_lanes), outputs.data(), relu};
        kernels.conv.f32_channel(args);
      }
    }
  });
}

QGAN_END_FUNCTIONS
}  // namespace qgan::nn::packed
