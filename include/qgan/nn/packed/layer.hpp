// Convolution, transposed convolution and linear layers that compute straight from k-bit
// weight codes (qgan/nn/packed/build.hpp builds them, forward.hpp runs them). Math in
// qgan/simd/conv_types.hpp, geometry in qgan/nn/packed/geometry.hpp.
//
// Weights are repacked once, at construction, from the file's canonical layout into the
// layout of the path the layer runs, and stay k-bit:
// - 8-bit activations, channel tiles: per group and block of 16 output channels, per
//   kernel tap (ki, kj), chunks of 32 input channels in the kernels' bit-sliced layout
//   (qgan/simd/conv_ref.hpp, chunk_code). 5-7-bit codes are widened to 8 (the 8-bit
//   kernel, no offset); 8-bit codes are stored minus 128. Padding channels hold code 0.
// - 8-bit activations, row tiles (fewer than 16 output channels per group): one signed
//   byte per code, [group][output][tap][4-channel group][4] (at most 15 x K bytes).
// - fp32 activations: per group and block of 16 outputs, [tap][input channel][16] codes,
//   k-bit in the canonical bit order; each task decodes one block (to the codes as floats
//   for uniform grids, to levels for codebooks) and runs all positions against it.
// - fp32 weights (an unquantized model): [group][block][tap][channel][16] floats.
// - fp32 activations with fewer than 16 outputs per group (codes or floats): dot tiles,
//   [group][output][tap][channel padded to a multiple of 16] (detail::fp32_dot_tiles).
// Forward passes are const and may run concurrently on one layer.
#pragma once

#include "qgan/core/isa_namespace.hpp"

#include <cstddef>
#include <cstdint>
#include <map>
#include <array>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <xsimd/memory/xsimd_aligned_allocator.hpp>

#include "qgan/nn/packed/activations.hpp"
#include "qgan/nn/packed/geometry.hpp"
#include "qgan/simd/conv_types.hpp"

namespace qgan::nn::packed {

enum class layer_kind { convolution, transposed_convolution, linear };
enum class activation_path { int8, fp32 };

/// A layer's shape and options, PyTorch's semantics.
struct layer_geometry {
  layer_kind kind = layer_kind::convolution;
  std::size_t in_channels = 0, out_channels = 0, groups = 1;
  axis_spec rows{}, cols{};  ///< kernel extent, stride, padding, dilation, output padding
};

/// How an output channel's weights decode, after BatchNorm folding: per output channel o,
/// y = gamma_o * conv(x) + shift_o where conv uses the stored weights.
struct output_affine {
  std::vector<float> gamma;  ///< 1 without BatchNorm
  std::vector<float> shift;  ///< bias folded with BatchNorm
};

/// The weights of a layer in the layout of its path (see the file comment).
struct layer_weights {
  activation_path path = activation_path::fp32;
  bool row_tiles = false;
  int bits = 32;               ///< stored code width, 32 for fp32 weights
  int storage_bits = 8;        ///< 1, 2, 3, 4 or 8 (8-bit activations)
  std::int32_t code_offset = 0;
  bool decode_as_codes = false;  ///< fp32 path: uniform grid, decode z itself
  std::vector<std::uint8_t> codes;     ///< int8 channel tiles, or fp32 path bit-packed codes
  std::vector<std::int8_t> row_codes;  ///< int8 row tiles
  /// fp32 weights, or per-output level tables (codebooks); on 64-byte boundaries, so that
  /// the fp32 tile's 16-float loads do not straddle cache lines.
  std::vector<float, xsimd::aligned_allocator<float, 64>> floats;
  std::vector<std::int32_t> code_sums;  ///< [group][block][tap][16]: sum over input channels of z
  std::vector<float> alpha, beta;      ///< per output channel: uniform grid, before folding
};

/// Plans per input size, shared by concurrent forward passes.
class plan_cache {
 public:
  std::shared_ptr<const layer_plan> find(std::size_t height, std::size_t width) const {
    const std::lock_guard lock(mutex_);
    const auto found = plans_.find({height, width});
    return found == plans_.end() ? nullptr : found->second;
  }
  std::shared_ptr<const layer_plan> insert(std::size_t height, std::size_t width, std::shared_ptr<const layer_plan> plan) const {
    const std::lock_guard lock(mutex_);
    return plans_.emplace(std::pair{height, width}, std::move(plan)).first->second;
  }
  std::shared_ptr<const tiling> find_tiling(std::size_t height, std::size_t width, std::size_t batch) const {
    const std::lock_guard lock(mutex_);
    const auto found = tilings_.find({height, width, batch});
    return found == tilings_.end() ? nullptr : found->second;
  }
  std::shared_ptr<const tiling> insert_tiling(std::size_t height, std::size_t width, std::size_t batch,
                                              std::shared_ptr<const tiling> t) const {
    const std::lock_guard lock(mutex_);
    // A program that runs many batch sizes keeps only the recent ones.
    if (tilings_.size() >= 16) tilings_.clear();
    return tilings_.emplace(std::array<std::size_t, 3>{height, width, batch}, std::move(t)).first->second;
  }

 private:
  mutable std::mutex mutex_;
  mutable std::map<std::pair<std::size_t, std::size_t>, std::shared_ptr<const layer_plan>> plans_;
  mutable std::map<std::array<std::size_t, 3>, std::shared_ptr<const tiling>> tilings_;
};

/// A packed layer: what qgan/nn/packed/build.hpp builds and forward.hpp runs.
struct layer {
  std::string name;
  layer_geometry geometry;
  layer_weights weights;
  output_affine affine;
  std::size_t group_in = 0;   ///< input channels per group
  std::size_t group_out = 0;  ///< output channels per group
  std::size_t taps = 0;       ///< kernel rows x columns
  std::size_t vectors = 0;    ///< 4-channel groups of a group's input channels
  std::size_t chunks = 0;     ///< 32-channel chunks of them
  std::size_t blocks = 0;     ///< 16-channel blocks of a group's output channels
  std::shared_ptr<plan_cache> plans = std::make_shared<plan_cache>();
};

namespace detail {
QGAN_BEGIN_FUNCTIONS

/// fp32 path: fewer than 16 outputs per group run dot tiles (a channel tile would fill as
/// few of its 16 lanes; the generator's last layer, one output, ran at a sixteenth of the
/// rate of the others), their weights [group][output][tap][padded channel], where that is
/// less work: a dot tile costs a vector step per output and 16 padded channels, a channel
/// tile one per channel (8 outputs of 1 input channel stay in channel tiles).
inline bool fp32_dot_tiles(const layer& l) noexcept {
  return l.group_out < simd::tile_lanes &&
         l.group_out * simd::dot_padded_channels(l.group_in) < simd::tile_lanes * l.group_in;
}

/// fp32 path: weights (floats or codes) of one group's block of up to 16 outputs.
inline std::size_t fp32_block_size(const layer& l) noexcept {
  return fp32_dot_tiles(l) ? l.group_out * l.taps * simd::dot_padded_channels(l.group_in)
                           : l.taps * l.group_in * simd::tile_lanes;
}

/// fp32 path: where the weight of output o (of its group), input channel c, kernel tap
/// `tap` sits in its block.
inline std::size_t fp32_block_index(const layer& l, std::size_t o, std::size_t c, std::size_t tap) noexcept {
  return fp32_dot_tiles(l) ? (o * l.taps + tap) * simd::dot_padded_channels(l.group_in) + c
                           : (tap * l.group_in + c) * simd::tile_lanes + o % simd::tile_lanes;
}

QGAN_END_FUNCTIONS
}  // namespace detail

}  // namespace qgan::nn::packed
