// The reference generator as the library's recalibration sees it (qgan/calib/network.hpp):
// z (nz, 1, 1) -> four ConvTranspose2d layers, kernel 4, the first with stride 1 and no
// padding, the rest stride 2 padding 1; BatchNorm2d and ReLU after the first three, tanh
// after the last (examples/dcgan/train.py).
#pragma once

#include <cstdint>

#include "qgan/calib/network.hpp"

namespace dcgan {

inline qgan::calib::sequential_network generator_network(std::int64_t nz) {
  using qgan::calib::activation_kind;
  using qgan::calib::layer_kind;
  qgan::calib::sequential_network network;
  network.input = {nz, 1, 1};
  const auto deconv = [](const char* name, int stride, int pad, const char* batch_norm, activation_kind activation) {
    qgan::calib::layer_step step;
    step.name = name;
    step.kind = layer_kind::conv_transpose2d;
    step.stride = stride;
    step.pad = pad;
    step.batch_norm = batch_norm;
    step.activation = activation;
    return step;
  };
  network.layers = {deconv("deconv1", 1, 0, "bn1", activation_kind::relu),
                    deconv("deconv2", 2, 1, "bn2", activation_kind::relu),
                    deconv("deconv3", 2, 1, "bn3", activation_kind::relu),
                    deconv("deconv4", 2, 1, "", activation_kind::tanh)};
  return network;
}

}  // namespace dcgan
