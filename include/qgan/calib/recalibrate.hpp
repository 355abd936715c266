// Data-free recalibration of a quantized generator: no training data, only latents
// z ~ N(0, I) drawn from a seed, and the fp32 generator's own activations on them as the
// target. Layer by layer in forward order, over the whole calibration set at once:
//   1. rounding: the layer's codes are re-chosen on the quantizer's own grid by the GPTQ
//      sweep (calib/gptq.hpp), per output phase (calib/layer_columns.hpp), from the
//      inputs the quantized (or the fp32) network feeds the layer; a phase keeps the new
//      codes only where its calibration output error drops below the incoming codes'.
//   2. bias: per output channel, the mean of the fp32 target minus the mean of the
//      quantized output is added to the layer's bias (created, as float32 NAME.bias,
//      where the layer had none). Skipped before a BatchNorm whose statistics are
//      recalibrated: the new statistics absorb any shift.
//   3. BatchNorm: re-estimated from the quantized network's own pre-BatchNorm outputs
//      (mean, and the unbiased variance PyTorch stores, over every sample and pixel of
//      the calibration set), or set so that the post-BatchNorm mean and variance match
//      the fp32 network's.
// The quantized network runs on the dequantized weights in fp32 (the Eigen layers), so
// what is calibrated is the weights alone. Every sum is taken in a fixed order: the
// result depends on the seed, the sample count and the options, never on threads.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "qgan/calib/gptq.hpp"
#include "qgan/calib/layer_columns.hpp"
#include "qgan/calib/network.hpp"
#include "qgan/core/error.hpp"
#include "qgan/core/random.hpp"
#include "qgan/io/qgan_model.hpp"
#include "qgan/io/safetensors.hpp"
#include "qgan/nn/activations.hpp"
#include "qgan/nn/batch_norm.hpp"
#include "qgan/pack/quantize.hpp"

namespace qgan::calib {

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

/// The steps of a comma-separated list: bn (re-estimate BatchNorm), bn-match (match the
/// fp32 post-BatchNorm moments), bias, rounding. Throws naming an unknown or repeated
/// step, or bn together with bn-match.
inline recalibration_options parse_steps(std::string_view list, recalibration_options options = {}) {
  std::vector<std::string> seen;
  std::size_t start = 0;
  while (start <= list.size()) {
    const std::size_t comma = std::min(list.find(',', start), list.size());
    const std::string step(list.substr(start, comma - start));
    if (std::find(seen.begin(), seen.end(), step) != seen.end()) {
      qgan::detail::throw_error("recalibration step '", step, "' is given twice");
    }
    seen.push_back(step);
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
    start = comma + 1;
  }
  return options;
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

namespace detail {
QGAN_BEGIN_FUNCTIONS

inline nn::tensor1 to_tensor1(const std::vector<float>& values) {
  nn::tensor1 t(static_cast<Eigen::Index>(values.size()));
  std::copy(values.begin(), values.end(), t.data());
  return t;
}

inline nn::tensor4 to_tensor4(const std::vector<float>& values, const shape_t& shape, const std::string& name) {
  if (shape.size() != 4) qgan::detail::throw_error("tensor '", name, "': shape ", to_string(shape), " is not 4-D");
  nn::tensor4 t(shape[0], shape[1], shape[2], shape[3]);
  std::copy(values.begin(), values.end(), t.data());
  return t;
}

inline nn::tensor4 run_layer(const layer_step& step, const nn::tensor4& x, const nn::tensor4& weight,
                             const std::optional<nn::tensor1>& bias) {
  if (step.kind == layer_kind::conv2d) {
    return bias ? nn::conv2d(x, weight, *bias, step.conv2d_options()) : nn::conv2d(x, weight, step.conv2d_options());
  }
  return bias ? nn::conv_transpose2d(x, weight, *bias, step.conv_transpose2d_options())
              : nn::conv_transpose2d(x, weight, step.conv_transpose2d_options());
}

inline nn::tensor4 activate(const layer_step& step, nn::tensor4 x) {
  switch (step.activation) {
    case activation_kind::relu: return nn::relu(std::move(x));
    case activation_kind::leaky_relu: return nn::leaky_relu(std::move(x), step.negative_slope);
    case activation_kind::tanh: return nn::tanh(std::move(x));
    case activation_kind::sigmoid: return nn::sigmoid(std::move(x));
    case activation_kind::none: break;
  }
  return x;
}

/// Per channel of x (N, C, H, W): the mean, and the sum of squared deviations from it,
/// in double over every sample and pixel in order.
struct channel_moments {
  std::vector<double> mean;
  std::vector<double> squares;
  double count = 0;
};

inline channel_moments moments(const nn::tensor4& x) {
  const Eigen::Index n = x.dimension(0), c = x.dimension(1), plane = x.dimension(2) * x.dimension(3);
  channel_moments m{std::vector<double>(static_cast<std::size_t>(c)), std::vector<double>(static_cast<std::size_t>(c)),
                    double(n * plane)};
  for (Eigen::Index ch = 0; ch < c; ++ch) {
    double sum = 0;
    for (Eigen::Index s = 0; s < n; ++s) {
      const float* v = x.data() + (s * c + ch) * plane;
      for (Eigen::Index i = 0; i < plane; ++i) sum += v[i];
    }
    const double mean = sum / m.count;
    double squares = 0;
    for (Eigen::Index s = 0; s < n; ++s) {
      const float* v = x.data() + (s * c + ch) * plane;
      for (Eigen::Index i = 0; i < plane; ++i) squares += (v[i] - mean) * (v[i] - mean);
    }
    m.mean[static_cast<std::size_t>(ch)] = mean;
    m.squares[static_cast<std::size_t>(ch)] = squares;
  }
  return m;
}

inline double activate_value(const layer_step& step, double v) {
  switch (step.activation) {
    case activation_kind::relu: return v > 0 ? v : 0;
    case activation_kind::leaky_relu: return v >= 0 ? v : double(step.negative_slope) * v;
    case activation_kind::tanh: return std::tanh(v);
    case activation_kind::sigmoid: return 1 / (1 + std::exp(-v));
    case activation_kind::none: break;
  }
  return v;
}

/// Mean squared error, over channel c, between activation(y + shift) and `target`
/// (already activated).
inline double activated_error(const layer_step& step, const nn::tensor4& y, const nn::tensor4& target, Eigen::Index c,
                              double shift) {
  const Eigen::Index n = y.dimension(0), channels = y.dimension(1), plane = y.dimension(2) * y.dimension(3);
  double sum = 0;
  for (Eigen::Index s = 0; s < n; ++s) {
    const float* v = y.data() + (s * channels + c) * plane;
    const float* t = target.data() + (s * channels + c) * plane;
    for (Eigen::Index i = 0; i < plane; ++i) {
      const double d = activate_value(step, double(v[i]) + shift) - double(t[i]);
      sum += d * d;
    }
  }
  return sum;
}

/// The shift of channel c that minimises activated_error: a golden-section search over
/// [min(0, mean_shift) - spread, max(0, mean_shift) + spread], kept only if it beats both
/// 0 and the mean shift, so the calibration error never grows.
inline double best_shift(const layer_step& step, const nn::tensor4& y, const nn::tensor4& target, Eigen::Index c,
                         double mean_shift, double spread) {
  const auto error = [&](double shift) { return activated_error(step, y, target, c, shift); };
  double best = 0, best_error = error(0);
  if (const double e = error(mean_shift); e < best_error) {
    best = mean_shift;
    best_error = e;
  }
  double lo = std::min(0.0, mean_shift) - spread, hi = std::max(0.0, mean_shift) + spread;
  const double ratio = (std::sqrt(5.0) - 1) / 2;
  double a = hi - ratio * (hi - lo), b = lo + ratio * (hi - lo);
  double error_a = error(a), error_b = error(b);
  for (int i = 0; i < 40; ++i) {
    if (error_a < error_b) {
      hi = b;
      b = a;
      error_b = error_a;
      a = hi - ratio * (hi - lo);
      error_a = error(a);
    } else {
      lo = a;
      a = b;
      error_a = error_b;
      b = lo + ratio * (hi - lo);
      error_b = error(b);
    }
  }
  const double found = (lo + hi) / 2;
  if (const double e = error(found); e < best_error) best = found;
  return best;
}

inline void add_per_channel(nn::tensor4& x, const std::vector<double>& shift) {
  const Eigen::Index n = x.dimension(0), c = x.dimension(1), plane = x.dimension(2) * x.dimension(3);
  for (Eigen::Index s = 0; s < n; ++s) {
    for (Eigen::Index ch = 0; ch < c; ++ch) {
      float* v = x.data() + (s * c + ch) * plane;
      const float add = static_cast<float>(shift[static_cast<std::size_t>(ch)]);
      for (Eigen::Index i = 0; i < plane; ++i) v[i] += add;
    }
  }
}

inline double mean_squared_difference(const nn::tensor4& a, const nn::tensor4& b) {
  double sum = 0;
  for (Eigen::Index i = 0; i < a.size(); ++i) sum += double(a.data()[i] - b.data()[i]) * double(a.data()[i] - b.data()[i]);
  return a.size() == 0 ? 0 : sum / double(a.size());
}

inline std::string model_label(const io::qgan_model& model) {
  return model.source.empty() ? std::string("the quantized model") : model.source;
}

/// The model's float32 tensor `name`, replaced or appended.
inline void store_floats(io::qgan_model& model, const std::string& name, shape_t shape, std::vector<float> values) {
  io::float_tensor tensor{std::move(shape), std::move(values)};
  for (io::qgan_entry& entry : model.tensors) {
    if (entry.name != name) continue;
    if (!std::holds_alternative<io::float_tensor>(entry.tensor)) {
      qgan::detail::throw_error(model_label(model), ": tensor '", name, "': recalibration writes it as float32, but the model stores it ",
                                std::holds_alternative<packed_tensor>(entry.tensor) ? "quantized" : "as raw bytes");
    }
    entry.tensor = std::move(tensor);
    return;
  }
  model.tensors.push_back({name, std::move(tensor)});
}

inline nn::batch_norm2d_params batch_norm_from(const io::safetensors_file& file, const layer_step& step) {
  nn::batch_norm2d_params bn;
  bn.running_mean = to_tensor1(file.read_float(step.batch_norm + ".running_mean"));
  bn.running_var = to_tensor1(file.read_float(step.batch_norm + ".running_var"));
  bn.weight = to_tensor1(file.read_float(step.batch_norm + ".weight"));
  bn.bias = to_tensor1(file.read_float(step.batch_norm + ".bias"));
  bn.eps = step.batch_norm_eps;
  return bn;
}

inline nn::batch_norm2d_params batch_norm_from(const io::qgan_model& model, const layer_step& step) {
  nn::batch_norm2d_params bn;
  bn.running_mean = to_tensor1(model.floats(step.batch_norm + ".running_mean").values);
  bn.running_var = to_tensor1(model.floats(step.batch_norm + ".running_var").values);
  bn.weight = to_tensor1(model.floats(step.batch_norm + ".weight").values);
  bn.bias = to_tensor1(model.floats(step.batch_norm + ".bias").values);
  bn.eps = step.batch_norm_eps;
  return bn;
}

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

  std::vector<std::vector<std::uint8_t>> phase_codes(hessians.phases.size());
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
    std::vector<std::uint8_t>& mine = phase_codes[p];
    mine.resize(index.size());
    for (std::size_t i = 0; i < index.size(); ++i) {
      mine[i] = tables[channel_of(index[i])].codes[chosen[i]];
    }
  });
  // Written back in phase order: phases own disjoint weights.
  for (std::size_t p = 0; p < hessians.phases.size(); ++p) {
    const output_phase& phase = hessians.phases[p];
    if (!phase.out_rows.empty() && !phase.taps.empty()) ++report.phases;
    report.error_before += before[p];
    report.error_after += after[p];
    if (!rounded[p]) continue;
    ++report.phases_rounded;
    const Eigen::Index taps = static_cast<Eigen::Index>(phase.taps.size());
    for (Eigen::Index r = 0; r < g.out_channels; ++r) {
      for (Eigen::Index c = 0; c < g.in_channels; ++c) {
        for (Eigen::Index t = 0; t < taps; ++t) {
          const std::size_t flat = weight_index(step, g, r, c, phase.taps[static_cast<std::size_t>(t)]);
          codes[flat] = phase_codes[p][static_cast<std::size_t>((r * g.in_channels + c) * taps + t)];
        }
      }
    }
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
}  // namespace detail

QGAN_BEGIN_FUNCTIONS

/// The calibration latents: samples x (C, H, W) of the network's input, from the seed.
inline nn::tensor4 calibration_latents(const sequential_network& network, std::size_t samples, std::uint64_t seed) {
  const auto& [c, h, w] = network.input;
  nn::tensor4 z(static_cast<Eigen::Index>(samples), c, h, w);
  const std::vector<float> values = normal_latents(static_cast<std::size_t>(z.size()), seed);
  std::copy(values.begin(), values.end(), z.data());
  return z;
}

/// Recalibrates `model` (quantized from `fp32`) in place and returns what changed. Throws
/// qgan::error naming the tensor when the network's description does not fit the files.
template <class Arch = xsimd::default_arch>
recalibration_report recalibrate(const io::safetensors_file& fp32, io::qgan_model& model,
                                 const sequential_network& network, const recalibration_options& options) {
  const auto start = std::chrono::steady_clock::now();
  if (options.samples < 2) qgan::detail::throw_error("recalibration needs at least 2 calibration samples, not ", options.samples);
  if (network.layers.empty()) qgan::detail::throw_error("recalibration: the network has no layers");
  recalibration_report report;
  report.samples = options.samples;
  report.seed = options.seed;
  nn::tensor4 x_fp32 = calibration_latents(network, options.samples, options.seed);
  nn::tensor4 x_quant = x_fp32;
  for (std::size_t l = 0; l < network.layers.size(); ++l) {
    const layer_step& step = network.layers[l];
    if (options.progress) options.progress(step.name, l, network.layers.size());
    layer_report layer;
    layer.name = step.name;
    const std::string weight_name = step.weight_name();
    const io::safetensors_tensor& source = fp32.at(weight_name);
    const std::vector<float> fp32_weight = fp32.read_float(source);
    const nn::tensor4 weight_fp32 = detail::to_tensor4(fp32_weight, source.shape, weight_name);
    std::optional<nn::tensor1> bias_fp32;
    if (fp32.find(step.bias_name()) != nullptr) bias_fp32 = detail::to_tensor1(fp32.read_float(step.bias_name()));

    io::qgan_entry* entry = nullptr;
    for (io::qgan_entry& e : model.tensors) {
      if (e.name == weight_name) entry = &e;
    }
    if (entry == nullptr) qgan::detail::throw_error(detail::model_label(model), ": tensor '", weight_name, "': missing");
    packed_tensor* packed = std::get_if<packed_tensor>(&entry->tensor);
    if (packed != nullptr && packed->shape != source.shape) {
      qgan::detail::throw_error(detail::model_label(model), ": tensor '", weight_name, "': shape ", to_string(packed->shape),
                                " differs from ", fp32.source(), "'s ", to_string(source.shape));
    }
    if (source.shape.size() != 4) {
      qgan::detail::throw_error(fp32.source(), ": tensor '", weight_name, "': shape ", to_string(source.shape),
                                " is not a 4-D convolution weight");
    }
    const bool transposed = step.kind == layer_kind::conv_transpose2d;
    layer_geometry g;
    g.in_channels = x_quant.dimension(1);
    g.in_h = x_quant.dimension(2);
    g.in_w = x_quant.dimension(3);
    g.out_channels = source.shape[transposed ? 1 : 0];
    const auto extent = [&](Eigen::Index in, std::int64_t kernel) {
      return transposed ? nn::conv_transpose2d_output_extent(in, kernel, step.stride, step.pad, step.output_pad, step.dilation)
                        : nn::conv2d_output_extent(in, kernel, step.stride, step.pad, step.dilation);
    };
    g.out_h = extent(g.in_h, source.shape[2]);
    g.out_w = extent(g.in_w, source.shape[3]);
    g.kernel_h = source.shape[2];
    g.kernel_w = source.shape[3];

    if (options.rounding && packed != nullptr) {
      const nn::tensor4& inputs = options.rounding_from == rounding_inputs::fp32 ? x_fp32 : x_quant;
      const nn::tensor4* reference = options.rounding_from == rounding_inputs::both ? &x_fp32 : nullptr;
      detail::round_layer<Arch>(step, g, fp32_weight, *packed, inputs, reference, options, layer);
    }
    const nn::tensor4 weight_quant = packed != nullptr ? detail::to_tensor4(dequantize<Arch>(*packed, weight_name), packed->shape, weight_name)
                                                       : weight_fp32;
    std::optional<nn::tensor1> bias_quant;
    if (model.find(step.bias_name()) != nullptr) bias_quant = detail::to_tensor1(model.floats(step.bias_name()).values);

    nn::tensor4 y_fp32 = detail::run_layer(step, x_fp32, weight_fp32, bias_fp32);
    nn::tensor4 y_quant = detail::run_layer(step, x_quant, weight_quant, bias_quant);
    const bool has_bn = !step.batch_norm.empty();
    // From here on store_floats may append to model.tensors, which moves `packed`.
    packed = nullptr;
    if (options.bias && !(has_bn && options.batch_norm != batch_norm_mode::keep)) {
      const nn::tensor4 target_outputs =
          options.bias_toward == bias_target::fp32_network ? y_fp32 : detail::run_layer(step, x_quant, weight_fp32, bias_fp32);
      const detail::channel_moments target = detail::moments(target_outputs);
      const detail::channel_moments current = detail::moments(y_quant);
      std::vector<double> shift(target.mean.size());
      std::vector<float> bias(target.mean.size(), 0.0f);
      // Straight into a nonlinearity, equal means before it are not what counts: where
      // tanh saturates, the quantized and fp32 pre-activations can differ by whole units
      // with no effect on the output, and their mean difference then shifts every pixel
      // that is not saturated. There the shift minimises the error after the activation.
      const bool after_activation = !has_bn && step.activation != activation_kind::none;
      const nn::tensor4 activated_target = after_activation ? detail::activate(step, target_outputs) : nn::tensor4();
      for (std::size_t c = 0; c < shift.size(); ++c) {
        shift[c] = target.mean[c] - current.mean[c];
        if (after_activation) {
          const double spread = std::sqrt(current.squares[c] / current.count);
          shift[c] = detail::best_shift(step, y_quant, activated_target, static_cast<Eigen::Index>(c), shift[c], spread);
        }
        if (bias_quant) bias[c] = (*bias_quant)(static_cast<Eigen::Index>(c));
        bias[c] = static_cast<float>(double(bias[c]) + shift[c]);
        layer.bias_shift += std::abs(shift[c]) / double(shift.size());
      }
      detail::store_floats(model, step.bias_name(), {static_cast<std::int64_t>(bias.size())}, bias);
      detail::add_per_channel(y_quant, shift);
      layer.bias_corrected = true;
    }
    if (has_bn) {
      const nn::batch_norm2d_params bn_fp32 = detail::batch_norm_from(fp32, step);
      if (options.batch_norm != batch_norm_mode::keep) {
        nn::batch_norm2d_params bn = detail::batch_norm_from(model, step);
        const detail::channel_moments quant = detail::moments(y_quant);
        const detail::channel_moments reference = detail::moments(y_fp32);
        std::vector<float> mean(quant.mean.size()), var(quant.mean.size());
        for (std::size_t c = 0; c < mean.size(); ++c) {
          const double var_quant = quant.squares[c] / (quant.count - 1);
          if (options.batch_norm == batch_norm_mode::reestimate) {
            mean[c] = static_cast<float>(quant.mean[c]);
            var[c] = static_cast<float>(var_quant);
            continue;
          }
          // Same post-BatchNorm moments: gamma (x - m') / s' + beta over the quantized
          // outputs has the mean and variance that gamma (x - m) / s + beta has over the
          // fp32 ones, with s = sqrt(var + eps).
          const auto i = static_cast<Eigen::Index>(c);
          const double var_ref = reference.squares[c] / (reference.count - 1);
          const double s = std::sqrt(double(bn_fp32.running_var(i)) + bn.eps);
          const double s_new = var_ref > 0 ? s * std::sqrt(var_quant / var_ref) : s;
          mean[c] = static_cast<float>(quant.mean[c] - s_new * (reference.mean[c] - bn_fp32.running_mean(i)) / s);
          var[c] = static_cast<float>(std::max(s_new * s_new - double(bn.eps), 0.0));
        }
        detail::store_floats(model, step.batch_norm + ".running_mean", {static_cast<std::int64_t>(mean.size())}, mean);
        detail::store_floats(model, step.batch_norm + ".running_var", {static_cast<std::int64_t>(var.size())}, var);
        layer.batch_norm_updated = true;
      }
      y_fp32 = nn::batch_norm2d(y_fp32, bn_fp32);
      y_quant = nn::batch_norm2d(y_quant, detail::batch_norm_from(model, step));
    }
    x_fp32 = detail::activate(step, std::move(y_fp32));
    x_quant = detail::activate(step, std::move(y_quant));
    layer.output_mse = detail::mean_squared_difference(x_fp32, x_quant);
    report.layers.push_back(layer);
  }
  if (options.progress) options.progress("", network.layers.size(), network.layers.size());
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  model.metadata["qgan.recalibration"] = steps_text(options);
  model.metadata["qgan.calib_samples"] = std::to_string(options.samples);
  model.metadata["qgan.calib_seed"] = std::to_string(options.seed);
  return report;
}

QGAN_END_FUNCTIONS

}  // namespace qgan::calib
