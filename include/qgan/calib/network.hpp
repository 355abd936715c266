// What recalibration needs to know about a generator without knowing the generator: a
// chain of convolution layers, each optionally followed by a BatchNorm2d and an
// activation, named by the tensor prefixes of its PyTorch state dict ("deconv1" holds
// deconv1.weight and maybe deconv1.bias; "bn1" holds bn1.running_mean, .running_var,
// .weight, .bias). The DCGAN example builds one from its layer names
// (dcgan::generator_network); any sequential generator of conv2d / conv_transpose2d
// layers can be described the same way.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "qgan/nn/conv2d.hpp"
#include "qgan/nn/conv_transpose2d.hpp"

namespace qgan::calib {

enum class layer_kind { conv2d, conv_transpose2d };
enum class activation_kind { none, relu, leaky_relu, tanh, sigmoid };

/// One layer: conv2d weights are (out, in, kh, kw), conv_transpose2d weights are
/// (in, out, kh, kw), as in PyTorch. Square stride, padding and dilation; groups 1.
struct layer_step {
  std::string name;
  layer_kind kind = layer_kind::conv2d;
  int stride = 1;
  int pad = 0;
  int output_pad = 0;  ///< conv_transpose2d only
  int dilation = 1;
  std::string batch_norm{};  ///< tensor prefix of the BatchNorm2d after the layer; "" for none
  float batch_norm_eps = 1e-5f;
  activation_kind activation = activation_kind::none;
  float negative_slope = 0.01f;  ///< leaky_relu only

  [[nodiscard]] std::string weight_name() const { return name + ".weight"; }
  [[nodiscard]] std::string bias_name() const { return name + ".bias"; }

  [[nodiscard]] nn::conv2d_options conv2d_options() const {
    nn::conv2d_options o;
    o.stride_h = o.stride_w = stride;
    o.pad_h = o.pad_w = pad;
    o.dilation_h = o.dilation_w = dilation;
    return o;
  }
  [[nodiscard]] nn::conv_transpose2d_options conv_transpose2d_options() const {
    nn::conv_transpose2d_options o;
    o.stride_h = o.stride_w = stride;
    o.pad_h = o.pad_w = pad;
    o.output_pad_h = o.output_pad_w = output_pad;
    o.dilation_h = o.dilation_w = dilation;
    return o;
  }
};

/// The generator: one input (channels, height, width), e.g. the latent (nz, 1, 1), and
/// its layers in forward order.
struct sequential_network {
  std::array<std::int64_t, 3> input{};
  std::vector<layer_step> layers{};
};

}  // namespace qgan::calib
