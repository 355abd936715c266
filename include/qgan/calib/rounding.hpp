// The rounding step of recalibration for one packed weight: Hessians per output phase
// from the calibration inputs (calib/layer_columns.hpp), the GPTQ sweep on the tensor's
// own level tables (calib/gptq.hpp), and the per-phase choice between the new codes and
// the incoming ones, whichever has the lower calibration objective.
#pragma once

#include <Eigen/Dense>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "qgan/calib/gptq.hpp"
#include "qgan/calib/layer_columns.hpp"
#include "qgan/calib/network.hpp"
#include "qgan/calib/options.hpp"
#include "qgan/core/isa_namespace.hpp"
#include "qgan/core/parallel.hpp"
#include "qgan/nn/tensor.hpp"
#include "qgan/pack/quantize.hpp"

namespace qgan::calib::detail {
QGAN_BEGIN_FUNCTIONS

/// Re-chooses a packed weight's codes phase by phase (see the file comment); returns the
/// layer's report fields.
template <class Arch>
void round_layer(const layer_step& step, const layer_geometry& g, const std::vector<float>& fp32_weight,
                 packed_tensor& packed, const nn::tensor4& inputs, const nn::tensor4* reference,
                 const recalibration_options& options, layer_report& report) {
  const std::string& name = step.weight_name();
  const layer_hessians hessians = accumulate_hessians(step, g, inputs, options.threads, reference);
  const channel_layout layout = make_channel_layout(packed.shape, packed.grain, name);
  const std::size_t stride = params_per_channel(packed.policy, packed.bits);
  std::vector<level_table> tables;
  for (std::size_t c = 0; c < layout.channels; ++c) {
    tables.push_back(make_level_table(qgan::detail::channel_levels(packed.policy, packed.bits, packed.params.data() + c * stride)));
  }
  // The incoming decoded values: the grid values every comparison and the sweep share.
  const std::vector<float> incoming = dequantize<Arch>(packed, name);
  std::vector<std::uint8_t> codes(packed.element_count());
  simd::active_kernels<Arch>().codec.unpack(packed.codes.data(), 0, codes.size(), packed.bits, codes.data());
  const auto channel_of = [&](std::size_t flat) { return (flat / layout.inner) % layout.channels; };

  std::vector<double> before(hessians.phases.size()), after(hessians.phases.size());
  std::vector<char> rounded(hessians.phases.size(), 0);
  parallel_for(hessians.phases.size(), options.threads, [&](std::size_t p) {
    const output_phase& phase = hessians.phases[p];
    const Eigen::Index taps = static_cast<Eigen::Index>(phase.taps.size());
    const Eigen::Index rows = g.out_channels, cols = g.in_channels * taps;
    if (phase.out_rows.empty() || cols == 0) return;
    std::vector<std::size_t> index(static_cast<std::size_t>(rows * cols));
    Eigen::MatrixXd w(rows, cols), q(rows, cols);
    for (Eigen::Index r = 0; r < rows; ++r) {
      for (Eigen::Index c = 0; c < g.in_channels; ++c) {
        for (Eigen::Index t = 0; t < taps; ++t) {
          const std::size_t flat = weight_index(step, g, r, c, phase.taps[static_cast<std::size_t>(t)]);
          index[static_cast<std::size_t>(r * cols + c * taps + t)] = flat;
          w(r, c * taps + t) = fp32_weight[flat];
          q(r, c * taps + t) = incoming[flat];
        }
      }
    }
    const Eigen::MatrixXd& h = hessians.hessians[p];
    if (!hessians.cross.empty()) {
      // min over Q of sum |W r - Q x|^2 = const + (T - Q) H (T - Q)^T with the target
      // T = W C H^-1 (the best unquantized weights for x), damped as the sweep is. A
      // column whose inputs are always 0 keeps its weights (its nearest levels).
      Eigen::MatrixXd damped = h;
      const double mean_diagonal = std::max(h.diagonal().mean(), 1e-30);
      for (Eigen::Index j = 0; j < cols; ++j) {
        if (damped(j, j) == 0) damped(j, j) = mean_diagonal;
      }
      damped.diagonal().array() += options.sweep.damping * mean_diagonal;
      const Eigen::LLT<Eigen::MatrixXd> factor(damped);
      if (factor.info() == Eigen::Success) {
        const Eigen::MatrixXd target = factor.solve((w * hessians.cross[p]).transpose()).transpose();
        for (Eigen::Index j = 0; j < cols; ++j) {
          if (h(j, j) != 0) w.col(j) = target.col(j);
        }
      }
    }
    before[p] = output_error(w, q, h);
    after[p] = before[p];
    Eigen::MatrixXd swept;
    std::vector<std::size_t> chosen;
    const auto table_of = [&](Eigen::Index r, Eigen::Index col) -> const level_table& {
      return tables[channel_of(index[static_cast<std::size_t>(r * cols + col)])];
    };
    if (!gptq_sweep(w, h, table_of, options.sweep, swept, chosen)) return;
    const double error = output_error(w, swept, h);
    if (!(error < before[p])) return;
    after[p] = error;
    rounded[p] = 1;
    // Phases own disjoint weights, so each task writes only its own elements of codes.
    for (std::size_t i = 0; i < index.size(); ++i) codes[index[i]] = tables[channel_of(index[i])].codes[chosen[i]];
  });
  for (std::size_t p = 0; p < hessians.phases.size(); ++p) {
    const output_phase& phase = hessians.phases[p];
    if (!phase.out_rows.empty() && !phase.taps.empty()) ++report.phases;
    report.error_before += before[p];
    report.error_after += after[p];
    if (rounded[p]) ++report.phases_rounded;
  }
  const double outputs = hessians.positions * double(g.out_channels);
  if (outputs > 0) {
    report.error_before /= outputs;
    report.error_after /= outputs;
  }
  std::fill(packed.codes.begin(), packed.codes.end(), std::uint8_t{0});
  simd::active_kernels<Arch>().codec.pack_codes(codes.data(), codes.size(), packed.bits, packed.codes.data());
}

QGAN_END_FUNCTIONS
}  // namespace qgan::calib::detail
