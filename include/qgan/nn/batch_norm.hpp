// BatchNorm2d in eval mode, y = (x - running_mean) / sqrt(running_var + eps) * weight + bias
// per channel, and its folding into the preceding convolution. Folding removes the layer
// before weights are quantized, so the quantizer sees the weights inference really uses.
// Conv2d weights (out, in/groups, kh, kw) scale along axis 0; ConvTranspose2d weights
// (in, out/groups, kh, kw) along axis 1, their output channels.
#pragma once

#include <cmath>

#include "qgan/core/error.hpp"
#include "qgan/nn/tensor.hpp"

namespace qgan::nn {

// PyTorch's BatchNorm2d state (running statistics and affine weight and bias), eval mode.
struct batch_norm2d_params {
  tensor1 running_mean;
  tensor1 running_var;
  tensor1 weight;  ///< gamma
  tensor1 bias;    ///< beta
  float eps = 1e-5f;
};

// A convolution's weight and bias after a BatchNorm2d has been folded into them.
struct folded_conv {
  tensor4 weight;
  tensor1 bias;
};

namespace detail {

// Per-channel scale gamma / sqrt(var + eps) and shift beta - mean * scale, computed in
// double; throws when the parameters disagree in length with each other or with channels.
struct batch_norm_affine {
  tensor1 scale;
  tensor1 shift;
};

inline batch_norm_affine batch_norm_coefficients(const batch_norm2d_params& bn,
                                                 Eigen::Index channels, const char* context) {
  const auto check_length = [&](const tensor1& t, const char* field) {
    if (t.dimension(0) != channels) {
      qgan::detail::throw_error(context, ": ", field, " has ", t.dimension(0),
                                " elements but there are ", channels, " channels");
    }
  };
  check_length(bn.running_mean, "running_mean");
  check_length(bn.running_var, "running_var");
  check_length(bn.weight, "weight");
  check_length(bn.bias, "bias");
  batch_norm_affine affine{tensor1(channels), tensor1(channels)};
  for (Eigen::Index c = 0; c < channels; ++c) {
    const double variance = static_cast<double>(bn.running_var(c)) + static_cast<double>(bn.eps);
    if (!(variance > 0.0)) {
      qgan::detail::throw_error(context, ": running_var[", c, "] + eps = ", variance,
                                " is not positive");
    }
    const double scale = static_cast<double>(bn.weight(c)) / std::sqrt(variance);
    affine.scale(c) = static_cast<float>(scale);
    affine.shift(c) = static_cast<float>(static_cast<double>(bn.bias(c)) -
                                         static_cast<double>(bn.running_mean(c)) * scale);
  }
  return affine;
}

inline folded_conv fold_impl(const tensor4& weight, const tensor1* bias,
                             const batch_norm2d_params& bn, bool transposed,
                             Eigen::Index groups) {
  const char* context = transposed ? "fold_batch_norm_conv_transpose2d"
                                   : "fold_batch_norm_conv2d";
  require_at_least(context, "groups", groups, 1);
  const Eigen::Index group_out = transposed ? weight.dimension(1) : 0;
  if (transposed && weight.dimension(0) % groups != 0) {
    qgan::detail::throw_error(context, ": groups ", groups, " does not divide the ",
                              weight.dimension(0), " input channels (weight shape ",
                              dims_string(weight), ")");
  }
  const Eigen::Index channels = transposed ? group_out * groups : weight.dimension(0);
  if (bias != nullptr && bias->dimension(0) != channels) {
    qgan::detail::throw_error(context, ": conv bias has ", bias->dimension(0),
                              " elements but weight has ", channels,
                              " output channels (weight shape ", dims_string(weight), ")");
  }
  const batch_norm_affine affine = batch_norm_coefficients(bn, channels, context);

  folded_conv folded{weight, tensor1(channels)};
  const Eigen::Index d0 = weight.dimension(0);
  const Eigen::Index d1 = weight.dimension(1);
  const Eigen::Index kernel = weight.dimension(2) * weight.dimension(3);
  const Eigen::Index group_in = transposed ? d0 / groups : 1;
  float* w = folded.weight.data();
  for (Eigen::Index i = 0; i < d0; ++i) {
    for (Eigen::Index j = 0; j < d1; ++j) {
      // Conv2d: output channel i. ConvTranspose2d: input channel i sits in group
      // i / group_in, whose output channels are group * group_out + j.
      const Eigen::Index channel = transposed ? (i / group_in) * group_out + j : i;
      const float scale = affine.scale(channel);
      float* block = w + (i * d1 + j) * kernel;
      for (Eigen::Index k = 0; k < kernel; ++k) block[k] *= scale;
    }
  }
  for (Eigen::Index c = 0; c < channels; ++c) {
    const float b = bias != nullptr ? (*bias)(c) : 0.0f;
    folded.bias(c) = b * affine.scale(c) + affine.shift(c);
  }
  return folded;
}

}  // namespace detail

// Eval-mode BatchNorm2d over x (N, C, H, W). Throws when a parameter's length is not C or
// running_var + eps is not positive.
inline tensor4 batch_norm2d(const tensor4& x, const batch_norm2d_params& bn) {
  const Eigen::Index channels = x.dimension(1);
  const detail::batch_norm_affine affine =
      detail::batch_norm_coefficients(bn, channels, "batch_norm2d");
  tensor4 y(x.dimensions());
  const Eigen::Index area = x.dimension(2) * x.dimension(3);
  for (Eigen::Index n = 0; n < x.dimension(0); ++n) {
    for (Eigen::Index c = 0; c < channels; ++c) {
      const Eigen::Index offset = (n * channels + c) * area;
      const float scale = affine.scale(c);
      const float shift = affine.shift(c);
      for (Eigen::Index i = 0; i < area; ++i) y.data()[offset + i] = x.data()[offset + i] * scale + shift;
    }
  }
  return y;
}

// bn(conv2d(x, weight, bias)) == conv2d(x, folded.weight, folded.bias): weight
// (out, in/groups, kh, kw) scaled along axis 0.
inline folded_conv fold_batch_norm_conv2d(const tensor4& weight, const tensor1& bias,
                                          const batch_norm2d_params& bn) {
  return detail::fold_impl(weight, &bias, bn, false, 1);
}

inline folded_conv fold_batch_norm_conv2d(const tensor4& weight, const batch_norm2d_params& bn) {
  return detail::fold_impl(weight, nullptr, bn, false, 1);
}

// bn(conv_transpose2d(x, weight, bias)) == conv_transpose2d(x, folded.weight, folded.bias):
// weight (in, out/groups, kh, kw) scaled along axis 1 (output channel g*out/groups + j for
// input channels of group g); groups must be the layer's.
inline folded_conv fold_batch_norm_conv_transpose2d(const tensor4& weight, const tensor1& bias,
                                                    const batch_norm2d_params& bn,
                                                    Eigen::Index groups = 1) {
  return detail::fold_impl(weight, &bias, bn, true, groups);
}

inline folded_conv fold_batch_norm_conv_transpose2d(const tensor4& weight,
                                                    const batch_norm2d_params& bn,
                                                    Eigen::Index groups = 1) {
  return detail::fold_impl(weight, nullptr, bn, true, groups);
}

}  // namespace qgan::nn
