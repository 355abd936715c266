// Where every output of a convolution gets its inputs, computed once per input size. A
// convolution, a transposed convolution and a linear layer are all described the same
// way: per output phase, a set of kernel taps and, for each output position of the phase,
// the input pixel each tap reads (or none, past the border).
//
// Transposed convolution, stride s: output o receives tap k from input i where
// o = i*s - pad + k*dilation. For a fixed phase r = (o + pad) mod s only the taps with
// k*dilation = r (mod s) can reach o, and each reads i = (o + pad - k*dilation) / s. So
// the layer splits into s*s dense sub-convolutions (one per (row, column) phase); no
// multiply touches an inserted zero and every output is written once. For k = 4, s = 2,
// pad = 1: even outputs 2m take taps {1, 3} from input rows {m, m-1}, odd outputs taps
// {0, 2} from rows {m+1, m}; a border output has one valid tap in that dimension. With
// dilation, or k not a multiple of s, phases have unequal tap counts (maybe none: such an
// output is its bias alone). A convolution is the case of one phase holding every tap.
//
// Positions of a phase are ordered by which taps are valid for them, so consecutive
// positions (one compute tile) mostly share their taps: interior positions come first,
// then each border pattern. That keeps the multiplies on real inputs: the first DCGAN
// layer (1x1 input, stride 1) has 16 taps but each output reads exactly one of them.
#pragma once

#include "qgan/core/isa_namespace.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <vector>

#include "qgan/core/error.hpp"

namespace qgan::nn::packed {

/// One spatial dimension's phases: the taps each uses and the input each tap reads.
struct axis_phase {
  std::vector<int> taps;     ///< kernel indices, ascending
  std::vector<int> outputs;  ///< output coordinates, ascending
  std::vector<int> inputs;   ///< [output index][tap index]: input coordinate, -1 past the border
};

/// How a layer maps onto its input along one axis.
struct axis_spec {
  int kernel = 1;
  int stride = 1;
  int pad = 0;
  int dilation = 1;
  int output_pad = 0;  ///< transposed only
};

/// A 2-D output phase: the product of one row phase and one column phase.
struct phase_plan {
  std::vector<int> tap_rows, tap_cols;  ///< kernel (ki, kj) of tap t = (tap_rows[t], tap_cols[t])
  /// Output positions (oh, ow) in row-major order.
  std::vector<std::int32_t> out_rows, out_cols;
  /// The positions again, ordered so that those with the same valid taps are adjacent
  /// (interior first): the order channel tiles take them in.
  std::vector<std::uint32_t> by_pattern;
  /// [position][tap]: input pixel ih*width + iw, or -1 where the tap falls past the border.
  std::vector<std::int32_t> pixels;
  /// Row tiles: 16 consecutive positions (row-major) each. [tile][tap][16]: the input
  /// pixel of each lane (-1 past the border or past the phase's positions), and
  /// [tile][16]: each lane's output pixel oh*out_w + ow (-1 past the positions).
  std::vector<std::int32_t> row_pixels, row_outputs;
  [[nodiscard]] std::size_t tap_count() const { return tap_rows.size(); }
  [[nodiscard]] std::size_t position_count() const { return out_rows.size(); }
  [[nodiscard]] const std::int32_t* pixels_of(std::size_t position) const {
    return pixels.data() + position * tap_count();
  }
};

struct layer_plan {
  int in_h = 0, in_w = 0, out_h = 0, out_w = 0;
  std::vector<phase_plan> phases;
};

namespace detail {
QGAN_BEGIN_FUNCTIONS

inline int floor_mod(int value, int modulus) {
  const int r = value % modulus;
  return r < 0 ? r + modulus : r;
}

/// The kernel taps of a transposed convolution's output phase r along one axis: those
/// whose dilated offset is r modulo the stride.
inline std::vector<int> phase_taps(const axis_spec& a, int r) {
  std::vector<int> taps;
  for (int k = 0; k < a.kernel; ++k) {
    if (floor_mod(k * a.dilation, a.stride) == r) taps.push_back(k);
  }
  return taps;
}

/// Kernel taps along one axis that can reach one output: all of a convolution's; the
/// largest phase's of a transposed convolution (a 4-tap kernel at stride 2: 2).
inline std::size_t taps_reaching_output(const axis_spec& a, bool transposed) {
  if (!transposed) return static_cast<std::size_t>(a.kernel);
  std::size_t most = 0;
  for (int r = 0; r < a.stride; ++r) most = std::max(most, phase_taps(a, r).size());
  return most;
}

inline std::vector<axis_phase> axis_phases(bool transposed, int in, int out, const axis_spec& a) {
  std::vector<axis_phase> phases;
  if (!transposed) {
    axis_phase p;
    p.taps.resize(static_cast<std::size_t>(a.kernel));
    std::iota(p.taps.begin(), p.taps.end(), 0);
    for (int o = 0; o < out; ++o) {
      p.outputs.push_back(o);
      for (const int k : p.taps) {
        const int i = o * a.stride - a.pad + k * a.dilation;
        p.inputs.push_back(i >= 0 && i < in ? i : -1);
      }
    }
    phases.push_back(std::move(p));
    return phases;
  }
  for (int r = 0; r < a.stride; ++r) {
    axis_phase p;
    p.taps = phase_taps(a, r);
    for (int o = 0; o < out; ++o) {
      if (floor_mod(o + a.pad, a.stride) != r) continue;
      p.outputs.push_back(o);
      for (const int k : p.taps) {
        const int numerator = o + a.pad - k * a.dilation;  // a multiple of stride by the phase
        const int i = numerator >= 0 ? numerator / a.stride : -1;
        p.inputs.push_back(numerator >= 0 && i < in ? i : -1);
      }
    }
    if (!p.outputs.empty()) phases.push_back(std::move(p));
  }
  return phases;
}

QGAN_END_FUNCTIONS
}  // namespace detail

QGAN_BEGIN_FUNCTIONS

/// The plan of a layer for one input size; out_h and out_w as the layer computed them.
inline layer_plan make_layer_plan(bool transposed, int in_h, int in_w, int out_h, int out_w,
                                  const axis_spec& rows, const axis_spec& cols) {
  layer_plan plan{in_h, in_w, out_h, out_w, {}};
  const std::vector<axis_phase> row_phases = detail::axis_phases(transposed, in_h, out_h, rows);
  const std::vector<axis_phase> col_phases = detail::axis_phases(transposed, in_w, out_w, cols);
  for (const axis_phase& rp : row_phases) {
    for (const axis_phase& cp : col_phases) {
      phase_plan phase;
      for (const int ki : rp.taps) {
        for (const int kj : cp.taps) {
          phase.tap_rows.push_back(ki);
          phase.tap_cols.push_back(kj);
        }
      }
      const std::size_t taps = phase.tap_count();
      const std::size_t positions = rp.outputs.size() * cp.outputs.size();
      std::vector<std::int32_t> pixels(positions * taps);
      std::vector<std::vector<bool>> valid(positions, std::vector<bool>(taps));
      for (std::size_t a = 0; a < rp.outputs.size(); ++a) {
        for (std::size_t b = 0; b < cp.outputs.size(); ++b) {
          const std::size_t position = a * cp.outputs.size() + b;
          for (std::size_t ta = 0; ta < rp.taps.size(); ++ta) {
            for (std::size_t tb = 0; tb < cp.taps.size(); ++tb) {
              const int ih = rp.inputs[a * rp.taps.size() + ta];
              const int iw = cp.inputs[b * cp.taps.size() + tb];
              const std::size_t t = ta * cp.taps.size() + tb;
              const bool inside = ih >= 0 && iw >= 0;
              valid[position][t] = inside;
              pixels[position * taps + t] = inside ? ih * in_w + iw : -1;
            }
          }
        }
      }
      // Most valid taps first (interior), then by pattern, then in row-major order.
      std::vector<std::size_t> order(positions);
      std::iota(order.begin(), order.end(), std::size_t{0});
      std::stable_sort(order.begin(), order.end(), [&](std::size_t x, std::size_t y) {
        const auto cx = std::count(valid[x].begin(), valid[x].end(), true);
        const auto cy = std::count(valid[y].begin(), valid[y].end(), true);
        if (cx != cy) return cx > cy;
        return valid[x] > valid[y];
      });
      for (std::size_t position = 0; position < positions; ++position) {
        phase.out_rows.push_back(rp.outputs[position / cp.outputs.size()]);
        phase.out_cols.push_back(cp.outputs[position % cp.outputs.size()]);
      }
      for (const std::size_t position : order) phase.by_pattern.push_back(static_cast<std::uint32_t>(position));
      phase.pixels = std::move(pixels);
      const std::size_t row_tiles = (positions + 15) / 16;
      phase.row_pixels.assign(row_tiles * taps * 16, -1);
      phase.row_outputs.assign(row_tiles * 16, -1);
      for (std::size_t position = 0; position < positions; ++position) {
        const std::size_t tile = position / 16, lane = position % 16;
        for (std::size_t t = 0; t < taps; ++t) phase.row_pixels[(tile * taps + t) * 16 + lane] = phase.pixels[position * taps + t];
        phase.row_outputs[tile * 16 + lane] = phase.out_rows[position] * out_w + phase.out_cols[position];
      }
      plan.phases.push_back(std::move(phase));
    }
  }
  return plan;
}

QGAN_END_FUNCTIONS
}  // namespace qgan::nn::packed

namespace qgan::nn::packed {

/// Consecutive positions of one phase computed together (one kernel call per output
/// block), and the taps they run: the union of their valid taps.
struct channel_tile {
  std::uint32_t phase = 0;
  std::uint32_t first = 0;       ///< first entry (tiling::position_of, image_of)
  std::uint32_t count = 0;
  std::uint32_t taps_begin = 0;  ///< into tiling::phase_taps / kernel_taps
  std::uint32_t taps_end = 0;
};

struct tiling {
  std::vector<channel_tile> tiles;
  std::vector<std::uint16_t> phase_taps;   ///< tap index within the phase
  std::vector<std::uint16_t> kernel_taps;  ///< ki * kernel_cols + kj
  /// Entry order: image by image (a tile's outputs stay in one image, which keeps its
  /// writes in cache), or position by position across the batch (the images of one
  /// position share their taps, so layers whose every position has its own taps, such as
  /// a 1x1 input, still fill tiles).
  bool image_major = false;
  std::size_t batch = 1;
  /// Image-major only: the tiles of image n (every phase) are
  /// tiles_by_image[image_begin[n] .. image_begin[n + 1]). A thread that takes a whole
  /// image writes every cache line of its output alone; split by tile, the two column
  /// phases of one output row land on different cores and each line crosses between them
  /// (measured: the second thread then bought 1.25x on the DCGAN's deconv3, and made
  /// deconv4 slower).
  std::vector<std::uint32_t> tiles_by_image, image_begin;
  /// Each tile's entries, resolved once so that a forward builds a tile's input pointers
  /// with no division (the per-tile setup was a twentieth of an 8-bit generator's time):
  /// entry p of tile i is image entry_image[i * max_positions + p], output pixel
  /// entry_out_pixel[...] (oh * out_w + ow), and reads input pixel
  /// entry_pixels[(taps_begin + u) * max_positions + p] (ih * in_w + iw, -1 past the
  /// border) through the tile's tap u.
  std::size_t max_positions = 0;
  std::vector<std::uint32_t> entry_image, entry_out_pixel;
  std::vector<std::int32_t> entry_pixels;

  [[nodiscard]] std::size_t position_of(const phase_plan& phase, std::size_t entry) const {
    return phase.by_pattern[image_major ? entry % phase.position_count() : entry / batch];
  }
  [[nodiscard]] std::size_t image_of(const phase_plan& phase, std::size_t entry) const {
    return image_major ? entry / phase.position_count() : entry % batch;
  }
};

QGAN_BEGIN_FUNCTIONS

/// Cuts every phase's positions, for every image of the batch, into tiles of at most
/// max_positions. A position joins the tile while the multiplies the union of taps
/// costs stay within 25% of those its positions need, so border positions (fewer valid
/// taps) do not drag whole tiles through taps that read nothing, yet a tile is not cut
/// to one position for a single missing tap.
inline tiling make_tiling_in_order(const layer_plan& plan, std::size_t batch, std::size_t max_positions, int kernel_cols,
                                   bool image_major) {
  tiling result;
  result.image_major = image_major;
  result.batch = batch;
  for (std::size_t ph = 0; ph < plan.phases.size(); ++ph) {
    const phase_plan& phase = plan.phases[ph];
    const std::size_t taps = phase.tap_count(), entries = phase.position_count() * batch;
    std::vector<bool> in_union(taps);
    for (std::size_t e = 0; e < entries;) {
      std::fill(in_union.begin(), in_union.end(), false);
      std::size_t union_count = 0, needed = 0, count = 0;
      while (count < max_positions && e + count < entries) {
        // A tile stays within one image in image-major order.
        if (image_major && count > 0 && result.image_of(phase, e + count) != result.image_of(phase, e)) break;
        const std::int32_t* pixels = phase.pixels_of(result.position_of(phase, e + count));
        std::size_t valid = 0, added = 0;
        for (std::size_t t = 0; t < taps; ++t) {
          if (pixels[t] < 0) continue;
          ++valid;
          if (!in_union[t]) ++added;
        }
        if (count > 0 && 4 * (union_count + added) * (count + 1) > 5 * (needed + valid)) break;
        for (std::size_t t = 0; t < taps; ++t) {
          if (pixels[t] >= 0) in_union[t] = true;
        }
        union_count += added;
        needed += valid;
        ++count;
      }
      channel_tile tile{static_cast<std::uint32_t>(ph), static_cast<std::uint32_t>(e), static_cast<std::uint32_t>(count),
                        static_cast<std::uint32_t>(result.phase_taps.size()), 0};
      for (std::size_t t = 0; t < taps; ++t) {
        if (!in_union[t]) continue;
        result.phase_taps.push_back(static_cast<std::uint16_t>(t));
        result.kernel_taps.push_back(static_cast<std::uint16_t>(phase.tap_rows[t] * kernel_cols + phase.tap_cols[t]));
      }
      tile.taps_end = static_cast<std::uint32_t>(result.phase_taps.size());
      result.tiles.push_back(tile);
      e += count;
    }
  }
  return result;
}

/// What a forward reads per tile, resolved once for the tiling make_tiling keeps (not for
/// the order it discards): each entry's image, output pixel and input pixels, and, in
/// image-major order, each image's tiles.
inline void resolve_entries(tiling& result, const layer_plan& plan, std::size_t max_positions) {
  const std::size_t batch = result.batch;
  const bool image_major = result.image_major;
  result.max_positions = max_positions;
  result.entry_image.assign(result.tiles.size() * max_positions, 0);
  result.entry_out_pixel.assign(result.tiles.size() * max_positions, 0);
  result.entry_pixels.assign(result.phase_taps.size() * max_positions, -1);
  for (std::size_t i = 0; i < result.tiles.size(); ++i) {
    const channel_tile& tile = result.tiles[i];
    const phase_plan& phase = plan.phases[tile.phase];
    for (std::size_t p = 0; p < tile.count; ++p) {
      const std::size_t position = result.position_of(phase, tile.first + p);
      result.entry_image[i * max_positions + p] = static_cast<std::uint32_t>(result.image_of(phase, tile.first + p));
      result.entry_out_pixel[i * max_positions + p] =
          static_cast<std::uint32_t>(phase.out_rows[position] * plan.out_w + phase.out_cols[position]);
      for (std::size_t u = tile.taps_begin; u < tile.taps_end; ++u) {
        result.entry_pixels[u * max_positions + p] = phase.pixels_of(position)[result.phase_taps[u]];
      }
    }
  }
  if (image_major) {
    result.image_begin.assign(batch + 1, 0);
    for (const channel_tile& tile : result.tiles) ++result.image_begin[result.image_of(plan.phases[tile.phase], tile.first) + 1];
    for (std::size_t n = 0; n < batch; ++n) result.image_begin[n + 1] += result.image_begin[n];
    result.tiles_by_image.resize(result.tiles.size());
    std::vector<std::uint32_t> next(result.image_begin.begin(), result.image_begin.end() - 1);
    for (std::size_t t = 0; t < result.tiles.size(); ++t) {
      const channel_tile& tile = result.tiles[t];
      result.tiles_by_image[next[result.image_of(plan.phases[tile.phase], tile.first)]++] = static_cast<std::uint32_t>(t);
    }
  }
}

/// Image-major order unless it needs over a quarter more tiles than position-major.
inline tiling make_tiling(const layer_plan& plan, std::size_t batch, std::size_t max_positions, int kernel_cols) {
  tiling chosen = make_tiling_in_order(plan, batch, max_positions, kernel_cols, true);
  if (batch > 1) {
    tiling by_position = make_tiling_in_order(plan, batch, max_positions, kernel_cols, false);
    if (4 * chosen.tiles.size() > 5 * by_position.tiles.size()) chosen = std::move(by_position);
  }
  resolve_entries(chosen, plan, max_positions);
  return chosen;
}

QGAN_END_FUNCTIONS
}  // namespace qgan::nn::packed
