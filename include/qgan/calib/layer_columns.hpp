// A convolution as a set of dense matrix products, one per output phase, so that each
// output element is (one row of the weight matrix) . (one column of inputs) and output-
// aware rounding can minimise the error of the sums the layer really forms.
// - conv2d: one phase; its columns are (input channel, tap) and every output pixel has
//   one column of inputs (im2col; taps that fall in the padding read 0).
// - conv_transpose2d: output rows whose (oy + pad) mod stride is r take input from the
//   taps ky with ky * dilation = r (mod stride) only, and likewise for columns, so the
//   output splits into stride^2 phases, each a dense convolution over its own taps
//   (oy = iy * stride - pad + ky * dilation). Every weight belongs to exactly one phase,
//   so the Hessian of the layer's output error is block-diagonal over phases. (The
//   col2im product W^T x that nn::conv_transpose2d computes treats each tap alone and
//   never sees the sums that form an output, which is why rounding does not use it.)
#pragma once

#include <Eigen/Dense>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "qgan/calib/network.hpp"
#include "qgan/core/isa_namespace.hpp"
#include "qgan/core/parallel.hpp"
#include "qgan/nn/tensor.hpp"

namespace qgan::calib {

struct tap {
  int ky = 0;
  int kx = 0;
};

/// One output phase: its taps and its output pixels (row-major over the output).
struct output_phase {
  std::vector<tap> taps{};
  std::vector<std::int32_t> out_rows{};  ///< oy of each output pixel
  std::vector<std::int32_t> out_cols{};  ///< ox of each output pixel
};

/// The geometry a layer sees: input (channels, h, w), output (channels, h, w), kernel.
struct layer_geometry {
  std::int64_t in_channels = 0, in_h = 0, in_w = 0;
  std::int64_t out_channels = 0, out_h = 0, out_w = 0;
  std::int64_t kernel_h = 0, kernel_w = 0;
};

/// Hessians of one layer's output error, one per phase: H = sum over output pixels of
/// x x^T, where x is the pixel's column of inputs (input channel major, tap minor); with
/// reference inputs r (the fp32 network's, where x are the quantized network's), also
/// C = sum r x^T, which turns the fp32 layer's output on r into a target for x.
struct layer_hessians {
  std::vector<output_phase> phases{};
  std::vector<Eigen::MatrixXd> hessians{};
  std::vector<Eigen::MatrixXd> cross{};  ///< C per phase; empty without reference inputs
  double positions = 0;  ///< output pixels summed over, all phases and samples
};

QGAN_BEGIN_FUNCTIONS

/// The input row (or column) an output row takes from tap k, or -1 where it takes none.
inline std::int64_t input_coordinate(const layer_step& step, std::int64_t out, std::int64_t k, std::int64_t in_extent) {
  std::int64_t in = 0;
  if (step.kind == layer_kind::conv2d) {
    in = out * step.stride - step.pad + k * step.dilation;
  } else {
    const std::int64_t scaled = out + step.pad - k * step.dilation;
    if (scaled % step.stride != 0) return -1;
    in = scaled / step.stride;
  }
  return in >= 0 && in < in_extent ? in : -1;
}

inline std::vector<output_phase> output_phases(const layer_step& step, const layer_geometry& g) {
  const int phases_per_axis = step.kind == layer_kind::conv2d ? 1 : step.stride;
  std::vector<output_phase> phases(static_cast<std::size_t>(phases_per_axis * phases_per_axis));
  const auto residue = [&](std::int64_t v) {
    return static_cast<int>(((v % phases_per_axis) + phases_per_axis) % phases_per_axis);
  };
  for (int ry = 0; ry < phases_per_axis; ++ry) {
    for (int rx = 0; rx < phases_per_axis; ++rx) {
      output_phase& phase = phases[static_cast<std::size_t>(ry * phases_per_axis + rx)];
      for (int ky = 0; ky < g.kernel_h; ++ky) {
        for (int kx = 0; kx < g.kernel_w; ++kx) {
          if (residue(std::int64_t{ky} * step.dilation) == ry && residue(std::int64_t{kx} * step.dilation) == rx) {
            phase.taps.push_back({ky, kx});
          }
        }
      }
    }
  }
  for (std::int64_t oy = 0; oy < g.out_h; ++oy) {
    for (std::int64_t ox = 0; ox < g.out_w; ++ox) {
      output_phase& phase = phases[static_cast<std::size_t>(residue(oy + step.pad) * phases_per_axis + residue(ox + step.pad))];
      phase.out_rows.push_back(static_cast<std::int32_t>(oy));
      phase.out_cols.push_back(static_cast<std::int32_t>(ox));
    }
  }
  return phases;
}

/// The flat index, in the PyTorch weight layout, of row `out_channel`, column
/// (in_channel, tap) of a phase's weight matrix.
inline std::size_t weight_index(const layer_step& step, const layer_geometry& g, std::int64_t out_channel,
                                std::int64_t in_channel, const tap& t) {
  const std::int64_t outer = step.kind == layer_kind::conv2d ? out_channel * g.in_channels + in_channel
                                                             : in_channel * g.out_channels + out_channel;
  return static_cast<std::size_t>((outer * g.kernel_h + t.ky) * g.kernel_w + t.kx);
}

/// Accumulates every phase's Hessian from layer inputs x (N, C, H, W), and the cross
/// sums with `reference` when given (same shape), in chunks of samples so that the
/// columns never need more than a few MB; phases run on `threads` threads, each summing
/// its own samples in order, so the result does not depend on them.
inline layer_hessians accumulate_hessians(const layer_step& step, const layer_geometry& g, const nn::tensor4& x,
                                          int threads, const nn::tensor4* reference = nullptr) {
  layer_hessians out;
  out.phases = output_phases(step, g);
  out.hessians.resize(out.phases.size());
  if (reference != nullptr) out.cross.resize(out.phases.size());
  const Eigen::Index samples = x.dimension(0);
  parallel_for(out.phases.size(), threads, [&](std::size_t p) {
    const output_phase& phase = out.phases[p];
    const Eigen::Index taps = static_cast<Eigen::Index>(phase.taps.size());
    const Eigen::Index cols = static_cast<Eigen::Index>(g.in_channels) * taps;
    Eigen::MatrixXd& h = out.hessians[p];
    h = Eigen::MatrixXd::Zero(cols, cols);
    if (reference != nullptr) out.cross[p] = Eigen::MatrixXd::Zero(cols, cols);
    const Eigen::Index pixels = static_cast<Eigen::Index>(phase.out_rows.size());
    if (cols == 0 || pixels == 0) return;
    // Where each (pixel, tap) reads: an offset into one sample's (h, w) plane, or -1.
    std::vector<std::int64_t> source(static_cast<std::size_t>(pixels * taps));
    for (Eigen::Index i = 0; i < pixels; ++i) {
      for (Eigen::Index t = 0; t < taps; ++t) {
        const tap& k = phase.taps[static_cast<std::size_t>(t)];
        const std::int64_t iy = input_coordinate(step, phase.out_rows[static_cast<std::size_t>(i)], k.ky, g.in_h);
        const std::int64_t ix = input_coordinate(step, phase.out_cols[static_cast<std::size_t>(i)], k.kx, g.in_w);
        source[static_cast<std::size_t>(i * taps + t)] = iy < 0 || ix < 0 ? -1 : iy * g.in_w + ix;
      }
    }
    const Eigen::Index chunk_samples = std::max<Eigen::Index>(1, 8192 / pixels);
    Eigen::MatrixXf columns, reference_columns;
    Eigen::MatrixXf partial;
    const std::int64_t plane = g.in_h * g.in_w;
    const auto gather = [&](const nn::tensor4& from, Eigen::Index n0, Eigen::Index n1, Eigen::MatrixXf& into) {
      into.setZero(cols, (n1 - n0) * pixels);
      for (Eigen::Index n = n0; n < n1; ++n) {
        const float* sample = from.data() + n * g.in_channels * plane;
        for (Eigen::Index i = 0; i < pixels; ++i) {
          float* column = into.col((n - n0) * pixels + i).data();
          for (Eigen::Index t = 0; t < taps; ++t) {
            const std::int64_t offset = source[static_cast<std::size_t>(i * taps + t)];
            if (offset < 0) continue;
            for (Eigen::Index c = 0; c < g.in_channels; ++c) column[c * taps + t] = sample[c * plane + offset];
          }
        }
      }
    };
    for (Eigen::Index n0 = 0; n0 < samples; n0 += chunk_samples) {
      const Eigen::Index n1 = std::min(samples, n0 + chunk_samples);
      gather(x, n0, n1, columns);
      partial.setZero(cols, cols);
      partial.selfadjointView<Eigen::Lower>().rankUpdate(columns);
      h += partial.cast<double>();
      if (reference != nullptr) {
        gather(*reference, n0, n1, reference_columns);
        partial.noalias() = reference_columns * columns.transpose();
        out.cross[p] += partial.cast<double>();
      }
    }
    h = h.selfadjointView<Eigen::Lower>();
  });
  for (const output_phase& phase : out.phases) out.positions += double(phase.out_rows.size());
  out.positions *= double(samples);
  return out;
}

QGAN_END_FUNCTIONS

}  // namespace qgan::calib
