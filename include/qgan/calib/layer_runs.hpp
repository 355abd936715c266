// What recalibration does with a layer's activations over the calibration set: run the
// layer and its activation (the fp32 Eigen layers), per-channel moments in double, the
// bias shift that minimises the error after an activation, and reading and writing the
// float tensors (biases, BatchNorm statistics) of the fp32 file and the quantized model.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "qgan/calib/network.hpp"
#include "qgan/core/error.hpp"
#include "qgan/core/isa_namespace.hpp"
#include "qgan/io/qgan_model.hpp"
#include "qgan/io/safetensors.hpp"
#include "qgan/nn/activations.hpp"
#include "qgan/nn/batch_norm.hpp"
#include "qgan/nn/conv2d.hpp"
#include "qgan/nn/conv_transpose2d.hpp"

namespace qgan::calib::detail {
QGAN_BEGIN_FUNCTIONS


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

/// The model's float32 tensor `name`, replaced or appended.
inline void store_floats(io::qgan_model& model, const std::string& name, shape_t shape, std::vector<float> values) {
  io::float_tensor tensor{std::move(shape), std::move(values)};
  for (io::qgan_entry& entry : model.tensors) {
    if (entry.name != name) continue;
    if (!std::holds_alternative<io::float_tensor>(entry.tensor)) {
      qgan::detail::throw_error(model.source_label(), ": tensor '", name, "': recalibration writes it as float32, but the model stores it ",
                                std::holds_alternative<packed_tensor>(entry.tensor) ? "quantized" : "as raw bytes");
    }
    entry.tensor = std::move(tensor);
    return;
  }
  model.tensors.push_back({name, std::move(tensor)});
}

/// The step's BatchNorm, its four tensors read by read(name) -> std::vector<float>.
template <class Read>
nn::batch_norm2d_params batch_norm_from(const layer_step& step, Read&& read) {
  nn::batch_norm2d_params bn;
  bn.running_mean = nn::tensor_from(read(step.batch_norm + ".running_mean"));
  bn.running_var = nn::tensor_from(read(step.batch_norm + ".running_var"));
  bn.weight = nn::tensor_from(read(step.batch_norm + ".weight"));
  bn.bias = nn::tensor_from(read(step.batch_norm + ".bias"));
  bn.eps = step.batch_norm_eps;
  return bn;
}

inline nn::batch_norm2d_params batch_norm_from(const io::safetensors_file& file, const layer_step& step) {
  return batch_norm_from(step, [&](const std::string& name) { return file.read_float(name); });
}

inline nn::batch_norm2d_params batch_norm_from(const io::qgan_model& model, const layer_step& step) {
  return batch_norm_from(step, [&](const std::string& name) { return model.floats(name).values; });
}

QGAN_END_FUNCTIONS
}  // namespace qgan::calib::detail
