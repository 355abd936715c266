// What a recalibration is asked to do and what it reports (qgan/calib/recalibrate.hpp
// does it): the steps, their options, and parse_steps for the comma-separated list the
// tool takes. No Eigen, so a front end can hold options without the algebra.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "qgan/core/error.hpp"

namespace qgan::calib {

struct sweep_options {
  double damping = 0.01;  ///< added to H's diagonal, as a fraction of its mean
  bool act_order = true;
};

enum class batch_norm_mode { keep, reestimate, match_fp32 };
/// What bias correction aims the quantized layer's mean output at: the fp32 layer on the
/// same (quantized) inputs, or the fp32 network's own output at that layer.
enum class bias_target { same_inputs, fp32_network };
/// What the rounding minimises, per layer: the error of the quantized layer against the
/// fp32 layer on the quantized network's inputs, or on the fp32 network's, or (both) the
/// quantized layer on the quantized network's inputs against the fp32 layer on the fp32
/// network's, which also takes back error the layers before left.
enum class rounding_inputs { quantized, fp32, both };

struct recalibration_options {
  batch_norm_mode batch_norm = batch_norm_mode::keep;
  bool bias = false;
  bias_target bias_toward = bias_target::fp32_network;
  bool rounding = false;
  /// fp32: measured best at equal cost (EM 2-bit, FID 28.5 against 30.2 from quantized
  /// inputs; docs/results.md); `both` did better still with bn-match, at twice the time.
  rounding_inputs rounding_from = rounding_inputs::fp32;
  sweep_options sweep{};
  std::size_t samples = 1024;
  /// Evaluation in this project draws its latents from seeds 0 and 1: this stream is
  /// more than 2^40 draws away from both (tests/test_calib.cpp checks it).
  std::uint64_t seed = 3141592653u;
  int threads = 1;
  /// Called with the layer being calibrated and how many of the layers are done.
  std::function<void(std::string_view layer, std::size_t done, std::size_t total)> progress{};
};

struct layer_report {
  std::string name;
  std::size_t phases = 0;          ///< output phases with calibration inputs
  std::size_t phases_rounded = 0;  ///< of those, where the sweep beat the incoming codes
  double error_before = 0;         ///< rounding objective per output element, incoming codes
  double error_after = 0;          ///< the same for the codes kept
  bool bias_corrected = false;
  double bias_shift = 0;  ///< mean |shift| added to the bias
  bool batch_norm_updated = false;
  double output_mse = 0;  ///< quantized vs fp32 network, this layer's output after its activation
};

struct recalibration_report {
  std::vector<layer_report> layers{};
  std::size_t samples = 0;
  std::uint64_t seed = 0;
  double seconds = 0;
};

/// The items of a comma-separated list, empty ones included ("" is one empty item).
inline std::vector<std::string> split_steps(std::string_view list) {
  std::vector<std::string> steps;
  std::size_t start = 0;
  while (start <= list.size()) {
    const std::size_t comma = std::min(list.find(',', start), list.size());
    steps.emplace_back(list.substr(start, comma - start));
    start = comma + 1;
  }
  return steps;
}

/// The steps: bn (re-estimate BatchNorm), bn-match (match the fp32 post-BatchNorm
/// moments), bias, rounding. Throws naming an unknown or repeated step, or bn together
/// with bn-match.
inline recalibration_options parse_steps(const std::vector<std::string>& steps, recalibration_options options = {}) {
  for (std::size_t i = 0; i < steps.size(); ++i) {
    const std::string& step = steps[i];
    if (std::find(steps.begin(), steps.begin() + static_cast<std::ptrdiff_t>(i), step) != steps.begin() + static_cast<std::ptrdiff_t>(i)) {
      qgan::detail::throw_error("recalibration step '", step, "' is given twice");
    }
    if (step == "bn" || step == "bn-match") {
      if (options.batch_norm != batch_norm_mode::keep) {
        qgan::detail::throw_error("recalibration steps bn and bn-match exclude each other");
      }
      options.batch_norm = step == "bn" ? batch_norm_mode::reestimate : batch_norm_mode::match_fp32;
    } else if (step == "bias") {
      options.bias = true;
    } else if (step == "rounding") {
      options.rounding = true;
    } else {
      qgan::detail::throw_error("unknown recalibration step '", step, "' (known: bn, bn-match, bias, rounding)");
    }
  }
  return options;
}

/// parse_steps of a comma-separated list.
inline recalibration_options parse_steps(std::string_view list, recalibration_options options = {}) {
  return parse_steps(split_steps(list), options);
}

/// The steps of options as parse_steps reads them, for the model's metadata.
inline std::string steps_text(const recalibration_options& options) {
  std::string text;
  const auto add = [&](const char* step) {
    if (!text.empty()) text += ',';
    text += step;
  };
  if (options.batch_norm == batch_norm_mode::reestimate) add("bn");
  if (options.batch_norm == batch_norm_mode::match_fp32) add("bn-match");
  if (options.bias) add("bias");
  if (options.rounding) add("rounding");
  return text;
}

}  // namespace qgan::calib
