// Running packed layers: cut each output phase into tiles, gather each tile's input
// pointers and sums, and hand the tiles to the active kernel set. Tasks (one per image
// when the batch has at least two per thread, else one per tile or phase; one per output
// block on the fp32 path) write disjoint outputs, so any thread count gives the same bits.
#pragma once

#include "qgan/core/isa_namespace.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include <xsimd/memory/xsimd_aligned_allocator.hpp>

#include "qgan/core/error.hpp"
#include "qgan/core/thread_pool.hpp"
#include "qgan/nn/conv2d.hpp"
#include "qgan/nn/conv_transpose2d.hpp"
#include "qgan/nn/packed/layer.hpp"
#include "qgan/quant/uniform_grid.hpp"
#include "qgan/simd/select.hpp"

namespace qgan::nn::packed {
namespace detail {
QGAN_BEGIN_FUNCTIONS

// PyTorch's output extent (nn/conv2d.hpp, nn/conv_transpose2d.hpp), refused when a
// convolution's dilated kernel is longer than its padded input (the formula's truncating
// division would then still give 1).
inline std::size_t output_extent(const layer& l, const axis_spec& a, std::size_t in) {
  const auto i = static_cast<Eigen::Index>(in);
  const bool transposed = l.geometry.kind == layer_kind::transposed_convolution;
  const Eigen::Index out = transposed ? conv_transpose2d_output_extent(i, a.kernel, a.stride, a.pad, a.output_pad, a.dilation)
                                      : conv2d_output_extent(i, a.kernel, a.stride, a.pad, a.dilation);
  const bool fits = transposed || i + 2 * a.pad - a.dilation * (a.kernel - 1) - 1 >= 0;
  if (!fits || out < 1) {
    qgan::detail::throw_error(l.name, ": an input extent of ", in, " gives no output (kernel ", a.kernel, ", stride ", a.stride,
                              ", padding ", a.pad, ")");
  }
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

inline std::shared_ptr<const tiling> tiling_for(const layer& l, const layer_plan& plan, std::size_t height, std::size_t width,
                                                std::size_t batch) {
  if (auto found = l.plans->find_tiling(height, width, batch)) return found;
  return l.plans->insert_tiling(height, width, batch,
                                std::make_shared<const tiling>(make_tiling(plan, batch, simd::tile_positions, l.geometry.cols.kernel)));
}

inline void check_input(const layer& l, std::size_t channels, std::size_t height, std::size_t width, std::size_t batch) {
  if (channels != l.geometry.in_channels) {
    qgan::detail::throw_error(l.name, ": input has ", channels, " channels, the layer takes ", l.geometry.in_channels);
  }
  if (height == 0 || width == 0 || batch == 0) qgan::detail::throw_error(l.name, ": input has an empty axis");
  if (height > (1u << 20) || width > (1u << 20)) qgan::detail::throw_error(l.name, ": input extent above 2^20");
  if (l.geometry.kind == layer_kind::linear && (height != 1 || width != 1)) qgan::detail::throw_error(l.name, ": a linear layer takes 1x1 inputs");
}

inline void check_int8_input(const layer& l, const u8_activations& in) {
  if (l.weights.path != activation_path::int8) qgan::detail::throw_error(l.name, ": built for fp32 activations, given 8-bit ones");
  check_input(l, in.channels, in.height, in.width, in.batch);
  if (in.planar != l.weights.row_tiles) {
    qgan::detail::throw_error(l.name, ": takes ", l.weights.row_tiles ? "planar" : "channel-last", " 8-bit input, given ",
                              in.planar ? "planar" : "channel-last");
  }
}

/// Epilogue terms of every output channel, padded to whole 16-channel blocks (zero past
/// the layer's channels): channel o of group g at (g * blocks + o / 16) * 16 + o % 16.
struct block_terms {
  std::vector<float> alpha_scale, beta_scale, bias;
  explicit block_terms(std::size_t count) : alpha_scale(count, 0.0f), beta_scale(count, 0.0f), bias(count, 0.0f) {}
};

inline block_terms int8_block_terms(const layer& l, float input_scale) {
  block_terms terms(l.geometry.groups * l.blocks * simd::tile_lanes);
  for (std::size_t g = 0; g < l.geometry.groups; ++g) {
    for (std::size_t o = 0; o < l.group_out; ++o) {
      const std::size_t global = g * l.group_out + o, at = g * l.blocks * simd::tile_lanes + o;
      terms.alpha_scale[at] = input_scale * (l.affine.gamma[global] * l.weights.alpha[global]);
      terms.beta_scale[at] = input_scale * (l.affine.gamma[global] * l.weights.beta[global]);
      terms.bias[at] = l.affine.shift[global];
    }
  }
  return terms;
}

inline block_terms fp32_block_terms(const layer& l) {
  block_terms terms(l.geometry.groups * l.blocks * simd::tile_lanes);
  for (std::size_t g = 0; g < l.geometry.groups; ++g) {
    for (std::size_t o = 0; o < l.group_out; ++o) {
      const std::size_t global = g * l.group_out + o, at = g * l.blocks * simd::tile_lanes + o;
      const bool codes = l.weights.decode_as_codes;
      terms.alpha_scale[at] = codes ? l.affine.gamma[global] * l.weights.alpha[global] : l.affine.gamma[global];
      terms.beta_scale[at] = codes ? l.affine.gamma[global] * l.weights.beta[global] : 0.0f;
      terms.bias[at] = l.affine.shift[global];
    }
  }
  return terms;
}

/// Sum of each pixel's channels of group g of image n (integers), into sums laid out
/// [image][pixel][group].
inline void image_pixel_sums(const u8_activations& in, std::size_t groups, std::size_t group_in, std::size_t n, std::size_t g,
                             std::int32_t* sums) {
  const std::size_t pixels = in.pixels();
  for (std::size_t p = 0; p < pixels; ++p) {
    std::int32_t s = 0;
    const std::uint8_t* x = in.data.data() + in.offset(n, g * group_in, p);
    if (in.planar) {
      // A group starts on a plane (planar layouts need group_in % 4 == 0 with groups),
      // and padding channels hold 0.
      for (std::size_t plane = 0; plane < (group_in + 3) / 4; ++plane, x += in.plane_bytes()) s += x[0] + x[1] + x[2] + x[3];
    } else {
      for (std::size_t c = 0; c < group_in; ++c) s += x[c];
    }
    sums[(n * pixels + p) * groups + g] = s;
  }
}

/// Every image's sums, images split over the pool's threads.
inline std::vector<std::int32_t> pixel_sums(const u8_activations& in, std::size_t groups, std::size_t group_in,
                                            thread_pool& pool) {
  std::vector<std::int32_t> sums(in.batch * in.pixels() * groups, 0);
  pool.run(in.batch, [&](std::size_t n) {
    for (std::size_t g = 0; g < groups; ++g) image_pixel_sums(in, groups, group_in, n, g, sums.data());
  });
  return sums;
}

// Whole images per task (every phase of one image on one thread, for the reason
// tiling::tiles_by_image gives) once the batch has at least two images per thread.
inline bool whole_images_per_task(std::size_t batch, const thread_pool& pool) {
  const auto threads = static_cast<std::size_t>(pool.threads());
  return threads > 1 && batch >= 2 * threads;
}

template <class Arch>
void forward_int8(const layer& l, const u8_activations& in, void* out_data, const u8_activations* u8_out,
                  std::size_t out_channels_stride, const simd::tile_output& output, thread_pool& pool) {
  const bool to_u8 = u8_out != nullptr;
  const layer_plan& plan = *plan_for(l, in.height, in.width);
  const simd::conv_table& kernels = simd::active_kernels<Arch>().conv;
  const block_terms terms = int8_block_terms(l, in.scale);
  const std::size_t groups = l.geometry.groups, batch = in.batch, in_pixels = in.pixels();
  const std::size_t out_pixels = static_cast<std::size_t>(plan.out_h) * static_cast<std::size_t>(plan.out_w);
  const std::int32_t zp = in.zero_point;
  const std::int32_t count_per_tap = static_cast<std::int32_t>(l.group_in);
  const std::vector<std::uint8_t> zeros(l.vectors * 4 + 64, 0);

  // Output address of channel `o` (global) at pixel `p` of image `n`.
  const auto out_address = [&](std::size_t n, std::size_t p, std::size_t o) -> void* {
    if (!to_u8) return static_cast<float*>(out_data) + (n * out_pixels + p) * out_channels_stride + o;
    return static_cast<std::uint8_t*>(out_data) + u8_out->offset(n, o, p);
  };

  if (!l.weights.row_tiles) {
    const tiling& tiles = *tiling_for(l, plan, in.height, in.width, batch);
    // Each task sums its own image's pixels when it has a whole image (no extra pass
    // over the pool, and the sums are made where the tiles read them); otherwise first.
    const bool by_image = tiles.image_major && whole_images_per_task(batch, pool);
    std::vector<std::int32_t> sums =
        by_image ? std::vector<std::int32_t>(batch * in_pixels * groups, 0) : pixel_sums(in, groups, l.group_in, pool);
    // Everything a tile's setup reads, hoisted into locals: captured by reference, each
    // would be reloaded after every store into the scratch arrays it might alias.
    const std::uint8_t* const input_data = in.data.data();
    const std::size_t image_bytes = in.image_bytes(), pixel_bytes = in.pixel_bytes(), stride = tiles.max_positions;
    const std::uint32_t* const entry_image = tiles.entry_image.data();
    const std::uint32_t* const entry_out_pixel = tiles.entry_out_pixel.data();
    const std::int32_t* const entry_pixels = tiles.entry_pixels.data();
    const std::int32_t* const pixel_sum_data = sums.data();
    const auto run_tile = [&](std::size_t g, std::size_t tile_index) {
      const channel_tile& tile = tiles.tiles[tile_index];
      const std::size_t positions = tile.count;
      const std::uint32_t* image = entry_image + tile_index * stride;
      const std::uint32_t* out_pixel = entry_out_pixel + tile_index * stride;
      // Taps no position reads point at zeros (their codes multiply nothing). Scratch
      // space is per thread and reused: an allocation would be a visible part of a tile.
      const std::uint16_t* taps = tiles.kernel_taps.data() + tile.taps_begin;
      const std::size_t tap_count = tile.taps_end - tile.taps_begin;
      thread_local std::vector<std::uint16_t> valid_taps;
      thread_local std::vector<const std::uint8_t*> inputs;
      inputs.assign(std::max<std::size_t>(tap_count, 1) * positions, zeros.data());
      if (zp != 0) valid_taps.resize(positions * std::max<std::size_t>(tap_count, 1));
      const std::uint8_t** const input_pointers = inputs.data();
      std::uint16_t* const valid_tap_list = valid_taps.data();
      std::array<std::int32_t, simd::tile_positions> q_sums{}, counts{};
      std::array<std::size_t, simd::tile_positions> valid_count{};
      const std::uint8_t* const group_data = input_data + in.offset(0, g * l.group_in, 0);
      const std::int32_t* const group_sums = pixel_sum_data + g;
      const std::int32_t* const tile_pixels = entry_pixels + tile.taps_begin * stride;
      for (std::size_t p = 0; p < positions; ++p) {
        const std::uint8_t* image_base = group_data + image[p] * image_bytes;
        const std::int32_t* image_sums = group_sums + image[p] * in_pixels * groups;
        std::int32_t q_sum = 0;
        std::size_t valid = 0;
        for (std::size_t u = 0; u < tap_count; ++u) {
          const std::int32_t pixel = tile_pixels[u * stride + p];
          if (pixel < 0) continue;
          const auto px = static_cast<std::size_t>(pixel);
          input_pointers[u * positions + p] = image_base + px * pixel_bytes;
          q_sum += image_sums[px * groups];
          if (zp != 0) valid_tap_list[p * tap_count + valid] = taps[u];
          ++valid;
        }
        q_sums[p] = q_sum;
        counts[p] = static_cast<std::int32_t>(valid) * count_per_tap;
        valid_count[p] = valid;
      }
      thread_local std::vector<std::int32_t> code_sums;
      if (zp != 0) {
        // Summed in a local block of lanes (vectorized, no aliasing with the stores) and
        // stored once: in memory this was most of a latent layer's tile setup.
        code_sums.resize(l.blocks * positions * simd::tile_lanes);
        const std::int32_t* const weight_sums = l.weights.code_sums.data();
        for (std::size_t b = 0; b < l.blocks; ++b) {
          const std::int32_t* const block_sums = weight_sums + (g * l.blocks + b) * l.taps * simd::tile_lanes;
          for (std::size_t p = 0; p < positions; ++p) {
            std::array<std::int32_t, simd::tile_lanes> sum{};
            for (std::size_t k = 0; k < valid_count[p]; ++k) {
              const std::int32_t* z = block_sums + valid_taps[p * tap_count + k] * simd::tile_lanes;
              for (std::size_t lane = 0; lane < simd::tile_lanes; ++lane) sum[lane] += z[lane];
            }
            std::copy(sum.begin(), sum.end(), code_sums.begin() + static_cast<std::ptrdiff_t>((b * positions + p) * simd::tile_lanes));
          }
        }
      }
      std::array<void*, simd::tile_positions> outputs{};
      for (std::size_t p = 0; p < positions; ++p) outputs[p] = out_address(image[p], out_pixel[p], g * l.group_out);
      const std::size_t first_term = g * l.blocks * simd::tile_lanes;
      const std::size_t block_bytes = l.taps * l.chunks * simd::chunk_bytes(l.weights.storage_bits);
      simd::a8_channel_tile args{
          l.weights.codes.data() + g * l.blocks * block_bytes,
          l.chunks * simd::chunk_bytes(l.weights.storage_bits),
          taps,
          tap_count,
          inputs.data(),
          positions,
          l.vectors,
          l.weights.storage_bits,
          q_sums.data(),
          counts.data(),
          zp != 0 ? code_sums.data() : nullptr,
          {terms.alpha_scale.data() + first_term, terms.beta_scale.data() + first_term, terms.bias.data() + first_term,
           l.weights.code_offset, zp},
          l.group_out - (l.blocks - 1) * simd::tile_lanes,
          outputs.data(),
          output};
      args.blocks = l.blocks;
      args.block_bytes = block_bytes;
      args.block_output_bytes = !to_u8 ? simd::tile_lanes * sizeof(float) : (u8_out->planar ? 4 * u8_out->plane_bytes() : simd::tile_lanes);
      args.terms_stride = simd::tile_lanes;
      kernels.a8_channel(args);
    };
    if (by_image) {
      pool.run(groups * batch, [&](std::size_t task) {
        const std::size_t g = task / batch, n = task % batch;
        image_pixel_sums(in, groups, l.group_in, n, g, sums.data());
        for (std::uint32_t i = tiles.image_begin[n]; i < tiles.image_begin[n + 1]; ++i) run_tile(g, tiles.tiles_by_image[i]);
      });
    } else {
      pool.run(groups * tiles.tiles.size(),
               [&](std::size_t task) { run_tile(task / tiles.tiles.size(), task % tiles.tiles.size()); });
    }
    return;
  }

  // Row tiles: 16 consecutive positions (row-major within the phase) of one image; a
  // task runs every row tile of one phase of one image (of every phase, given enough
  // images), so its setup is paid once.
  const std::size_t phases = plan.phases.size();
  std::vector<std::uint16_t> phase_taps;  // kernel taps of every phase, one after another
  std::vector<std::size_t> taps_begin;
  for (const phase_plan& phase : plan.phases) {
    taps_begin.push_back(phase_taps.size());
    for (std::size_t t = 0; t < phase.tap_count(); ++t) {
      phase_taps.push_back(static_cast<std::uint16_t>(phase.tap_rows[t] * l.geometry.cols.kernel + phase.tap_cols[t]));
    }
  }
  const std::size_t pixel_stride = to_u8 ? u8_out->pixel_bytes() : out_channels_stride;
  const auto run_phase = [&](std::size_t g, std::size_t ph, std::size_t n) {
    const phase_plan& phase = plan.phases[ph];
    const std::size_t tap_count = phase.tap_count(), tiles = (phase.position_count() + 15) / 16;
    const std::uint16_t* taps = phase_taps.data() + taps_begin[ph];
    std::array<std::int32_t, simd::row_tile_outputs * 16> code_sums{};
    alignas(64) std::array<float, simd::row_tile_outputs> sa{}, sb{}, bias{};
    for (std::size_t o0 = 0; o0 < l.group_out; o0 += simd::row_tile_outputs) {
      const std::size_t count = std::min(simd::row_tile_outputs, l.group_out - o0);
      for (std::size_t o = 0; o < count; ++o) {
        const std::size_t at = g * l.blocks * simd::tile_lanes + o0 + o;
        sa[o] = terms.alpha_scale[at];
        sb[o] = terms.beta_scale[at];
        bias[o] = terms.bias[at];
      }
      void* base = to_u8 ? static_cast<void*>(static_cast<std::uint8_t*>(out_data) + u8_out->offset(n, g * l.group_out + o0, 0))
                         : static_cast<void*>(static_cast<float*>(out_data) + n * out_pixels * out_channels_stride + g * l.group_out + o0);
      for (std::size_t tile = 0; tile < tiles; ++tile) {
        const std::int32_t* pixels = phase.row_pixels.data() + tile * tap_count * 16;
        const std::size_t lanes = std::min<std::size_t>(16, phase.position_count() - tile * 16);
        if (zp != 0) {
          // Z per lane: the codes of the taps each lane reads (the latent's zero point).
          for (std::size_t o = 0; o < count; ++o) {
            for (std::size_t lane = 0; lane < lanes; ++lane) {
              std::int32_t z = 0;
              for (std::size_t t = 0; t < tap_count; ++t) {
                if (pixels[t * 16 + lane] < 0) continue;
                const std::size_t local = o0 + o;
                z += l.weights.code_sums[((g * l.blocks + local / simd::tile_lanes) * l.taps + taps[t]) * simd::tile_lanes +
                                         local % simd::tile_lanes];
              }
              code_sums[o * 16 + lane] = z;
            }
          }
        }
        const simd::a8_row_tile args{l.weights.row_codes.data() + (g * l.group_out + o0) * l.taps * l.vectors * 4,
                                     l.taps,
                                     count,
                                     taps,
                                     pixels,
                                     tap_count,
                                     in.data.data() + in.offset(n, g * l.group_in, 0),
                                     in.plane_bytes(),
                                     l.vectors,
                                     l.group_in,
                                     lanes,
                                     zp != 0 ? code_sums.data() : nullptr,
                                     {sa.data(), sb.data(), bias.data(), l.weights.code_offset, zp},
                                     base,
                                     phase.row_outputs.data() + tile * 16,
                                     pixel_stride,
                                     1,
                                     output};
        kernels.a8_row(args);
      }
    }
  };
  if (whole_images_per_task(batch, pool)) {
    pool.run(groups * batch, [&](std::size_t task) {
      for (std::size_t ph = 0; ph < phases; ++ph) run_phase(task / batch, ph, task % batch);
    });
  } else {
    pool.run(groups * phases * batch,
             [&](std::size_t task) { run_phase(task / (phases * batch), (task / batch) % phases, task % batch); });
  }
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
  detail::check_int8_input(l, in);
  if (!(out.scale > 0.0f) || !std::isfinite(out.scale) || out.zero_point < 0 || out.zero_point > 255) {
    qgan::detail::throw_error(l.name, ": output scale ", out.scale, " and zero point ", out.zero_point, " are not a valid 8-bit range");
  }
  if (out.planar && (l.weights.row_tiles || (l.geometry.groups > 1 && l.group_out % 4 != 0))) {
    qgan::detail::throw_error(l.name, ": cannot write planar output (row tiles, or groups of ", l.group_out, " channels)");
  }
  const auto extent = output_size(l, in.height, in.width);
  const std::size_t h = extent.first, w = extent.second;  // not a structured binding: clang 14 cannot capture one
  out.allocate_output(in.batch, l.geometry.out_channels, h, w);
  simd::tile_output output;
  output.to_u8 = true;
  output.inverse_scale = 1.0f / out.scale;
  output.zero_point = out.zero_point;
  output.quad_stride = out.planar ? out.plane_bytes() : 4;
  detail::forward_int8<Arch>(l, in, out.data.data(), &out, 0, output, pool);
}

/// 8-bit input to float output (channel-last), with or without ReLU.
template <class Arch = xsimd::default_arch>
void forward(const layer& l, const u8_activations& in, f32_activations& out, bool relu, thread_pool& pool) {
  detail::check_int8_input(l, in);
  const auto extent = output_size(l, in.height, in.width);
  const std::size_t h = extent.first, w = extent.second;  // not a structured binding: clang 14 cannot capture one
  out.allocate_output(in.batch, l.geometry.out_channels, h, w);
  simd::tile_output output;
  output.relu = relu;
  detail::forward_int8<Arch>(l, in, out.data.data(), nullptr, l.geometry.out_channels, output, pool);
}

/// Float input and output (channel-last).
template <class Arch = xsimd::default_arch>
void forward(const layer& l, const f32_activations& in, f32_activations& out, bool relu, thread_pool& pool) {
  if (l.weights.path != activation_path::fp32) qgan::detail::throw_error(l.name, ": built for 8-bit activations, given fp32 ones");
  detail::check_input(l, in.channels, in.height, in.width, in.batch);
  const layer_plan& plan = *detail::plan_for(l, in.height, in.width);
  const tiling& tiles = *detail::tiling_for(l, plan, in.height, in.width, in.batch);
  const auto extent = output_size(l, in.height, in.width);
  const std::size_t h = extent.first, w = extent.second;  // not a structured binding: clang 14 cannot capture one
  out.allocate_output(in.batch, l.geometry.out_channels, h, w);
  const simd::kernel_set& kernels = simd::active_kernels<Arch>();
  const detail::block_terms terms = detail::fp32_block_terms(l);
  const std::size_t groups = l.geometry.groups, batch = in.batch, in_pixels = in.height * in.width, out_pixels = h * w;
  // Sums of each pixel's channels per group, in channel order (the beta term), a range of
  // pixels per task. Each sum is a chain of dependent additions: 8 pixels' chains are
  // interleaved so that the additions overlap (one chain at a time, this pass waited on
  // the adder's latency for 30 us of the last layer's 40 at batch 1).
  std::vector<float> sums(batch * in_pixels * groups);
  constexpr std::size_t pixels_per_sum_task = 64, interleaved = 8;
  const std::size_t pixel_count = batch * in_pixels;
  pool.run((pixel_count + pixels_per_sum_task - 1) / pixels_per_sum_task, [&](std::size_t chunk) {
    const std::size_t end = std::min(pixel_count, (chunk + 1) * pixels_per_sum_task);
    for (std::size_t g = 0; g < groups; ++g) {
      for (std::size_t first = chunk * pixels_per_sum_task; first < end; first += interleaved) {
        const std::size_t count = std::min(interleaved, end - first);
        std::array<float, interleaved> s{};
        const float* x = in.data.data() + first * in.channels + g * l.group_in;
        for (std::size_t c = 0; c < l.group_in; ++c) {
          for (std::size_t j = 0; j < count; ++j) s[j] = s[j] + x[j * in.channels + c];
        }
        for (std::size_t j = 0; j < count; ++j) sums[(first + j) * groups + g] = s[j];
      }
    }
  });
  const std::vector<float> zeros(l.group_in + 16, 0.0f);
  const std::size_t per_block = detail::fp32_block_size(l);
  const bool dot_tiles = detail::fp32_dot_tiles(l);
  // A dot tile's channels padded to whole chunks, and the floats of one output's weights.
  const std::size_t dot_channels = simd::dot_padded_channels(l.group_in), dot_output_floats = l.taps * dot_channels;
  // A task per block of 16 outputs and, where blocks are fewer than twice the threads (the
  // last layer has one), per share of the tiles (about four tasks per thread), so every
  // thread has work. Each output is still one tile's: the split changes no bit.
  const std::size_t block_tasks = groups * l.blocks, threads = static_cast<std::size_t>(pool.threads());
  const std::size_t tile_shares =
      threads > 1 && block_tasks < 2 * threads ? std::min(tiles.tiles.size(), (4 * threads + block_tasks - 1) / block_tasks) : 1;
  pool.run(block_tasks * tile_shares, [&](std::size_t share_task) {
    const std::size_t task = share_task / tile_shares, share = share_task % tile_shares;
    const std::size_t g = task / l.blocks, b = task % l.blocks;
    const float* weights = nullptr;
    if (l.weights.codes.empty()) {
      weights = l.weights.floats.data() + task * per_block;
    } else {
      // One block decoded per task into a buffer the thread keeps (no allocation or
      // zeroing per forward), on 64-byte boundaries so that the tile's 16-float loads do
      // not straddle cache lines.
      thread_local std::vector<float, xsimd::aligned_allocator<float, 64>> decoded;
      if (decoded.size() < per_block) decoded.resize(per_block);
      if (l.weights.decode_as_codes) {
        // alpha 1, beta 0: each code's float exactly.
        kernels.codec.dequantize_uniform(l.weights.codes.data(), task * per_block, per_block, l.weights.bits,
                                         qgan::uniform_params{1.0f, 0.0f, l.weights.bits}, decoded.data());
      } else {
        thread_local std::vector<std::uint8_t> codes;
        if (codes.size() < per_block) codes.resize(per_block);
        kernels.codec.unpack(l.weights.codes.data(), task * per_block, per_block, l.weights.bits, codes.data());
        const std::size_t levels = std::size_t{1} << l.weights.bits;
        for (std::size_t i = 0; i < per_block; ++i) {
          const std::size_t local = dot_tiles ? i / dot_output_floats : b * simd::tile_lanes + i % simd::tile_lanes;
          const std::size_t o = std::min(g * l.group_out + local, l.geometry.out_channels - 1);
          // A dot tile's padding channels are zeros, as its contract says (not level 0).
          decoded[i] = dot_tiles && i % dot_channels >= l.group_in ? 0.0f : l.weights.floats[o * levels + codes[i]];
        }
      }
      weights = decoded.data();
    }
    const std::size_t first_term = task * simd::tile_lanes;
    const std::size_t tiles_end = tiles.tiles.size() * (share + 1) / tile_shares;
    for (std::size_t tile_index = tiles.tiles.size() * share / tile_shares; tile_index < tiles_end; ++tile_index) {
      const channel_tile& tile = tiles.tiles[tile_index];
      const std::size_t positions = tile.count;
      const std::uint32_t* image = tiles.entry_image.data() + tile_index * tiles.max_positions;
      const std::uint32_t* out_pixel = tiles.entry_out_pixel.data() + tile_index * tiles.max_positions;
      const std::uint16_t* taps = tiles.kernel_taps.data() + tile.taps_begin;
      const std::size_t tap_count = tile.taps_end - tile.taps_begin;
      thread_local std::vector<const float*> inputs;
      inputs.assign(std::max<std::size_t>(tap_count, 1) * positions, zeros.data());
      std::array<float, simd::tile_positions> input_sums{};
      std::array<float*, simd::tile_positions> outputs{};
      for (std::size_t p = 0; p < positions; ++p) {
        const std::int32_t* pixels = tiles.entry_pixels.data() + tile.taps_begin * tiles.max_positions + p;
        for (std::size_t u = 0; u < tap_count; ++u) {
          const std::int32_t pixel = pixels[u * tiles.max_positions];
          if (pixel < 0) continue;
          const std::size_t at = image[p] * in_pixels + static_cast<std::size_t>(pixel);
          inputs[u * positions + p] = in.data.data() + at * in.channels + g * l.group_in;
          input_sums[p] = input_sums[p] + sums[at * groups + g];
        }
        outputs[p] = out.data.data() + (image[p] * out_pixels + out_pixel[p]) * l.geometry.out_channels +
                     g * l.group_out + b * simd::tile_lanes;
      }
      const simd::f32_channel_tile args{weights,
                                        l.group_in,
                                        taps,
                                        tap_count,
                                        inputs.data(),
                                        positions,
                                        input_sums.data(),
                                        terms.alpha_scale.data() + first_term,
                                        terms.beta_scale.data() + first_term,
                                        terms.bias.data() + first_term,
                                        std::min(simd::tile_lanes, l.group_out - b * simd::tile_lanes),
                                        outputs.data(),
                                        relu,
                                        dot_output_floats};
      (dot_tiles ? kernels.conv.f32_dot : kernels.conv.f32_channel)(args);
    }
  });
}

QGAN_END_FUNCTIONS
}  // namespace qgan::nn::packed
