// Building packed layers: from a quantized weight (packed_tensor, canonical layout) or
// from fp32 weights, with an optional bias and BatchNorm folded into per-output-channel
// terms. BatchNorm folds into the grid's alpha and beta (per-tensor params become
// per-channel; a negative gamma makes alpha negative), never into the codes.
#pragma once

#include "qgan/core/isa_namespace.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "qgan/core/error.hpp"
#include "qgan/nn/batch_norm.hpp"
#include "qgan/nn/packed/layer.hpp"
#include "qgan/pack/canonical.hpp"
#include "qgan/pack/packed_tensor.hpp"
#include "qgan/quant/granularity.hpp"
#include "qgan/quant/policy_registry.hpp"
#include "qgan/simd/conv_types.hpp"
#include "qgan/simd/select.hpp"

namespace qgan::nn::packed {

/// What a layer is built from besides its weight.
struct layer_extras {
  std::optional<std::vector<float>> bias{};
  std::optional<batch_norm2d_params> batch_norm{};
};

/// Longest reduction (taps reaching one output x input channels per group) the int32 sums
/// hold exactly: |sum| <= K * 255 * 255 plus corrections of the same size stays below 2^31.
inline constexpr std::size_t max_int8_reduction = 16384;

namespace detail {
QGAN_BEGIN_FUNCTIONS

inline shape_t weight_shape(const layer_geometry& g) {
  const auto s = [](std::size_t v) { return static_cast<std::int64_t>(v); };
  const std::size_t kh = static_cast<std::size_t>(g.rows.kernel), kw = static_cast<std::size_t>(g.cols.kernel);
  switch (g.kind) {
    case layer_kind::transposed_convolution: return {s(g.in_channels), s(g.out_channels / g.groups), s(kh), s(kw)};
    case layer_kind::convolution: return {s(g.out_channels), s(g.in_channels / g.groups), s(kh), s(kw)};
    default: return {s(g.out_channels), s(g.in_channels)};
  }
}

/// Canonical (PyTorch) element index of weight (group, output o and input c within it, tap).
inline std::size_t canonical_index(const layer& l, std::size_t g, std::size_t o, std::size_t c, std::size_t tap) {
  switch (l.geometry.kind) {
    case layer_kind::transposed_convolution: return ((g * l.group_in + c) * l.group_out + o) * l.taps + tap;
    case layer_kind::convolution: return ((g * l.group_out + o) * l.group_in + c) * l.taps + tap;
    default: return o * l.group_in + c;
  }
}

inline void check_geometry(const std::string& name, const layer_geometry& g) {
  const auto fail = [&](const auto&... parts) { qgan::detail::throw_error(name, ": ", parts...); };
  if (g.in_channels == 0 || g.out_channels == 0 || g.groups == 0) fail("channels and groups must be positive");
  if (g.in_channels % g.groups != 0 || g.out_channels % g.groups != 0) {
    fail("groups ", g.groups, " must divide the ", g.in_channels, " input and ", g.out_channels, " output channels");
  }
  if (g.kind == layer_kind::linear && (g.groups != 1 || g.rows.kernel != 1 || g.cols.kernel != 1)) {
    fail("a linear layer has one group and a 1x1 kernel");
  }
  for (const axis_spec* a : {&g.rows, &g.cols}) {
    if (a->kernel < 1 || a->stride < 1 || a->dilation < 1 || a->pad < 0 || a->output_pad < 0) {
      fail("kernel, stride and dilation must be >= 1 and padding >= 0");
    }
    if (g.kind == layer_kind::transposed_convolution && a->output_pad >= a->stride && a->output_pad >= a->dilation) {
      fail("output padding ", a->output_pad, " must be smaller than the stride or the dilation");
    }
    if (g.kind != layer_kind::transposed_convolution && a->output_pad != 0) fail("output padding is for transposed convolutions");
  }
  if (static_cast<std::size_t>(g.rows.kernel) * static_cast<std::size_t>(g.cols.kernel) > 65535) fail("kernel has more than 65535 taps");
}

inline void fill_derived(layer& l) {
  const layer_geometry& g = l.geometry;
  l.group_in = g.in_channels / g.groups;
  l.group_out = g.out_channels / g.groups;
  l.taps = static_cast<std::size_t>(g.rows.kernel) * static_cast<std::size_t>(g.cols.kernel);
  l.vectors = (l.group_in + 3) / 4;
  l.chunks = (l.vectors + 7) / 8;
  l.blocks = (l.group_out + simd::tile_lanes - 1) / simd::tile_lanes;
}

inline output_affine make_affine(const layer& l, const layer_extras& extras) {
  const std::size_t out = l.geometry.out_channels;
  output_affine a{std::vector<float>(out, 1.0f), std::vector<float>(out, 0.0f)};
  if (extras.bias) {
    if (extras.bias->size() != out) qgan::detail::throw_error(l.name, ": bias has ", extras.bias->size(), " elements, the layer ", out, " outputs");
    a.shift = *extras.bias;
  }
  if (extras.batch_norm) {
    const nn::detail::batch_norm_affine bn =
        nn::detail::batch_norm_coefficients(*extras.batch_norm, static_cast<Eigen::Index>(out), l.name.c_str());
    for (std::size_t o = 0; o < out; ++o) {
      const auto i = static_cast<Eigen::Index>(o);
      a.gamma[o] = bn.scale(i);
      a.shift[o] = a.shift[o] * bn.scale(i) + bn.shift(i);
    }
  }
  return a;
}

/// Whether every element of an output channel shares its params (per tensor, or per
/// channel along the weight's output axis), and each output channel's param channel.
inline std::optional<std::vector<std::size_t>> output_param_channels(const layer& l, const packed_tensor& w) {
  const channel_layout layout = make_channel_layout(w.shape, w.grain, l.name);
  if (std::holds_alternative<per_channel>(w.grain)) {
    int axis = std::get<per_channel>(w.grain).axis;
    if (axis < 0) axis += static_cast<int>(w.shape.size());
    const int output_axis = l.geometry.kind == layer_kind::transposed_convolution ? 1 : 0;
    if (axis != output_axis) return std::nullopt;
  }
  std::vector<std::size_t> channels(l.geometry.out_channels);
  for (std::size_t g = 0; g < l.geometry.groups; ++g) {
    for (std::size_t o = 0; o < l.group_out; ++o) {
      channels[g * l.group_out + o] = (canonical_index(l, g, o, 0, 0) / layout.inner) % layout.channels;
    }
  }
  return channels;
}

// Sets code z of (vector v, byte j) in a chunk; the inverse of simd::conv_ref::chunk_code.
inline void put_chunk_code(std::uint8_t* chunk, int storage_bits, std::size_t v, std::size_t j, std::int32_t z) {
  const auto u = static_cast<unsigned>(z);
  switch (storage_bits) {
    case 1: chunk[j] = static_cast<std::uint8_t>(chunk[j] | (u << v)); break;
    case 2: chunk[64 * (v / 4) + j] = static_cast<std::uint8_t>(chunk[64 * (v / 4) + j] | (u << (2 * (v % 4)))); break;
    case 3:
      chunk[64 * (v / 4) + j] = static_cast<std::uint8_t>(chunk[64 * (v / 4) + j] | ((u & 3u) << (2 * (v % 4))));
      chunk[128 + j] = static_cast<std::uint8_t>(chunk[128 + j] | (((u >> 2) & 1u) << v));
      break;
    case 4: chunk[64 * (v / 2) + j] = static_cast<std::uint8_t>(chunk[64 * (v / 2) + j] | (u << (4 * (v % 2)))); break;
    default: chunk[64 * v + j] = static_cast<std::uint8_t>(static_cast<std::int8_t>(z)); break;
  }
}

/// Every code of the tensor, one byte each, unpacked once by the active kernels: reading
/// them one at a time from the bit stream made loading a model a visible part of a run.
inline std::vector<std::uint8_t> unpacked_codes(const packed_tensor& w) {
  std::vector<std::uint8_t> codes(w.element_count());
  simd::active_kernels().codec.unpack(w.codes.data(), 0, codes.size(), w.bits, codes.data());
  return codes;
}

inline void build_int8(layer& l, const packed_tensor& w) {
  layer_weights& out = l.weights;
  out.storage_bits = w.bits <= 4 ? w.bits : 8;
  out.code_offset = w.bits == 8 ? 128 : 0;
  out.row_tiles = l.group_out < simd::tile_lanes && (l.geometry.groups == 1 || l.group_in % 4 == 0);
  const std::size_t groups = l.geometry.groups;
  const std::vector<std::uint8_t> codes = unpacked_codes(w);
  const auto code = [&](std::size_t g, std::size_t o, std::size_t c, std::size_t tap) {
    return static_cast<std::int32_t>(codes[canonical_index(l, g, o, c, tap)]);
  };
  out.code_sums.assign(groups * l.blocks * l.taps * simd::tile_lanes, 0);
  for (std::size_t g = 0; g < groups; ++g) {
    for (std::size_t o = 0; o < l.group_out; ++o) {
      for (std::size_t tap = 0; tap < l.taps; ++tap) {
        std::int32_t sum = 0;
        for (std::size_t c = 0; c < l.group_in; ++c) sum += code(g, o, c, tap);
        out.code_sums[((g * l.blocks + o / simd::tile_lanes) * l.taps + tap) * simd::tile_lanes + o % simd::tile_lanes] = sum;
      }
    }
  }
  if (out.row_tiles) {
    out.row_codes.assign(groups * l.group_out * l.taps * l.vectors * 4, 0);
    for (std::size_t g = 0; g < groups; ++g) {
      for (std::size_t o = 0; o < l.group_out; ++o) {
        for (std::size_t tap = 0; tap < l.taps; ++tap) {
          for (std::size_t c = 0; c < l.group_in; ++c) {
            out.row_codes[(((g * l.group_out + o) * l.taps + tap) * l.vectors) * 4 + c] =
                static_cast<std::int8_t>(code(g, o, c, tap) - out.code_offset);
          }
        }
      }
    }
  } else {
    const std::size_t chunk = simd::chunk_bytes(out.storage_bits);
    out.codes.assign(groups * l.blocks * l.taps * l.chunks * chunk, 0);
    for (std::size_t g = 0; g < groups; ++g) {
      for (std::size_t b = 0; b < l.blocks; ++b) {
        for (std::size_t tap = 0; tap < l.taps; ++tap) {
          for (std::size_t ch = 0; ch < l.chunks; ++ch) {
            std::uint8_t* base = out.codes.data() + (((g * l.blocks + b) * l.taps + tap) * l.chunks + ch) * chunk;
            for (std::size_t v = 0; v < 8; ++v) {
              for (std::size_t j = 0; j < 64; ++j) {
                const std::size_t o = b * simd::tile_lanes + j / 4, c = ch * 32 + v * 4 + j % 4;
                if (o >= l.group_out || c >= l.group_in) continue;
                put_chunk_code(base, out.storage_bits, v, j, code(g, o, c, tap) - out.code_offset);
              }
            }
          }
        }
      }
    }
  }
}

inline void build_fp32_codes(layer& l, const packed_tensor& w, const std::vector<std::size_t>& param_channel, bool uniform) {
  layer_weights& out = l.weights;
  out.decode_as_codes = uniform;
  const std::size_t per_block = fp32_block_size(l);
  const std::size_t count = l.geometry.groups * l.blocks * per_block;
  std::vector<std::uint8_t> codes(count, 0);  // padding outputs and channels hold code 0
  const std::vector<std::uint8_t> canonical = unpacked_codes(w);
  for (std::size_t g = 0; g < l.geometry.groups; ++g) {
    for (std::size_t o = 0; o < l.group_out; ++o) {
      for (std::size_t tap = 0; tap < l.taps; ++tap) {
        for (std::size_t c = 0; c < l.group_in; ++c) {
          codes[(g * l.blocks + o / simd::tile_lanes) * per_block + fp32_block_index(l, o, c, tap)] =
              canonical[canonical_index(l, g, o, c, tap)];
        }
      }
    }
  }
  out.codes.assign(pack::packed_size(count, w.bits), 0);
  pack::pack_ref(codes.data(), count, w.bits, out.codes.data());
  if (!uniform) {
    const std::size_t levels = std::size_t{1} << w.bits;
    const std::size_t stride = find_policy(w.policy)->params_per_channel(w.bits);
    out.floats.assign(l.geometry.out_channels * levels, 0.0f);
    for (std::size_t o = 0; o < l.geometry.out_channels; ++o) {
      const std::vector<float> table = qgan::detail::channel_levels(w.policy, w.bits, w.params.data() + param_channel[o] * stride);
      std::copy(table.begin(), table.end(), out.floats.begin() + static_cast<std::ptrdiff_t>(o * levels));
    }
  }
}

QGAN_END_FUNCTIONS
}  // namespace detail

QGAN_BEGIN_FUNCTIONS

/// A layer computing from the codes of `weight` (validated here; its shape must be the
/// geometry's PyTorch weight shape). 8-bit activations need a uniform grid (minmax, EM)
/// per tensor or per output channel; fp32 activations take any policy per tensor or per
/// output channel. Throws naming the layer and the field.
inline layer make_layer(std::string name, const layer_geometry& geometry, const packed_tensor& weight,
                        activation_path path, const layer_extras& extras = {}) {
  detail::check_geometry(name, geometry);
  weight.validate(name);
  if (weight.shape != detail::weight_shape(geometry)) {
    qgan::detail::throw_error(name, ": weight shape ", to_string(weight.shape), " does not fit the layer (expected ",
                to_string(detail::weight_shape(geometry)), ")");
  }
  layer l;
  l.name = std::move(name);
  l.geometry = geometry;
  detail::fill_derived(l);
  l.affine = detail::make_affine(l, extras);
  l.weights.path = path;
  l.weights.bits = weight.bits;
  const policy_info& info = *find_policy(weight.policy);
  const std::optional<std::vector<std::size_t>> channels = detail::output_param_channels(l, weight);
  if (!channels) {
    qgan::detail::throw_error(l.name, ": params per channel along an axis other than the output channels cannot be factored out of the "
                "sums; quantize per tensor or per output channel (axis ",
                geometry.kind == layer_kind::transposed_convolution ? 1 : 0, ")");
  }
  const std::size_t stride = info.params_per_channel(weight.bits);
  if (info.uniform_grid()) {
    for (std::size_t o = 0; o < geometry.out_channels; ++o) {
      l.weights.alpha.push_back(weight.params[(*channels)[o] * stride]);
      l.weights.beta.push_back(weight.params[(*channels)[o] * stride + 1]);
    }
  }
  if (path == activation_path::int8) {
    if (!info.uniform_grid()) {
      qgan::detail::throw_error(l.name, ": 8-bit activations need a uniform grid (minmax, em); ", info.name,
                  " levels run with fp32 activations");
    }
    const bool transposed = geometry.kind == layer_kind::transposed_convolution;
    const std::size_t reduction = detail::taps_reaching_output(geometry.rows, transposed) *
                                  detail::taps_reaching_output(geometry.cols, transposed) * l.group_in;
    if (reduction > max_int8_reduction) {
      qgan::detail::throw_error(l.name, ": ", reduction, " products per output exceed the ", max_int8_reduction,
                  " the exact int32 sums allow; run it with fp32 activations");
    }
    detail::build_int8(l, weight);
  } else {
    detail::build_fp32_codes(l, weight, *channels, info.uniform_grid());
  }
  return l;
}

/// A layer computing from fp32 weights (canonical PyTorch layout) with fp32 activations,
/// through the same kernels and tiles as the packed ones.
inline layer make_layer(std::string name, const layer_geometry& geometry, std::span<const float> weight,
                        const layer_extras& extras = {}) {
  detail::check_geometry(name, geometry);
  const std::size_t expected = element_count(detail::weight_shape(geometry));
  if (weight.size() != expected) {
    qgan::detail::throw_error(name, ": weight has ", weight.size(), " values, the layer's shape ", to_string(detail::weight_shape(geometry)),
                " holds ", expected);
  }
  layer l;
  l.name = std::move(name);
  l.geometry = geometry;
  detail::fill_derived(l);
  l.affine = detail::make_affine(l, extras);
  l.weights.path = activation_path::fp32;
  const std::size_t per_block = detail::fp32_block_size(l);
  l.weights.floats.assign(geometry.groups * l.blocks * per_block, 0.0f);
  for (std::size_t g = 0; g < geometry.groups; ++g) {
    for (std::size_t o = 0; o < l.group_out; ++o) {
      for (std::size_t tap = 0; tap < l.taps; ++tap) {
        for (std::size_t c = 0; c < l.group_in; ++c) {
          l.weights.floats[(g * l.blocks + o / simd::tile_lanes) * per_block + detail::fp32_block_index(l, o, c, tap)] =
              weight[detail::canonical_index(l, g, o, c, tap)];
        }
      }
    }
  }
  return l;
}

QGAN_END_FUNCTIONS
}  // namespace qgan::nn::packed
