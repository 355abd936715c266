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
#include <optional>
#include <string>
#include <vector>

#include "qgan/calib/layer_runs.hpp"
#include "qgan/calib/network.hpp"
#include "qgan/calib/options.hpp"
#include "qgan/calib/rounding.hpp"
#include "qgan/core/error.hpp"
#include "qgan/core/random.hpp"
#include "qgan/io/qgan_model.hpp"
#include "qgan/io/safetensors.hpp"
#include "qgan/nn/batch_norm.hpp"
#include "qgan/pack/quantize.hpp"

namespace qgan::calib {

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
    const nn::tensor4 weight_fp32 = nn::tensor_from<4>(fp32_weight, source.shape, weight_name);
    std::optional<nn::tensor1> bias_fp32;
    if (fp32.find(step.bias_name()) != nullptr) bias_fp32 = nn::tensor_from(fp32.read_float(step.bias_name()));

    io::qgan_entry* entry = nullptr;
    for (io::qgan_entry& e : model.tensors) {
      if (e.name == weight_name) entry = &e;
    }
    if (entry == nullptr) qgan::detail::throw_error(model.source_label(), ": tensor '", weight_name, "': missing");
    packed_tensor* packed = std::get_if<packed_tensor>(&entry->tensor);
    if (packed != nullptr && packed->shape != source.shape) {
      qgan::detail::throw_error(model.source_label(), ": tensor '", weight_name, "': shape ", to_string(packed->shape),
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
    const nn::tensor4 weight_quant = packed != nullptr ? nn::tensor_from<4>(dequantize<Arch>(*packed, weight_name), packed->shape, weight_name)
                                                       : weight_fp32;
    std::optional<nn::tensor1> bias_quant;
    if (model.find(step.bias_name()) != nullptr) bias_quant = nn::tensor_from(model.floats(step.bias_name()).values);

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
        const detail::channel_moments reference =
            options.batch_norm == batch_norm_mode::match_fp32 ? detail::moments(y_fp32) : detail::channel_moments{};
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
