// The three networks of examples/dcgan/train.py, run in eval mode from their PyTorch
// parameter names: the DCGAN generator and discriminator, and the Fashion-MNIST
// classifier whose penultimate layer defines FID-FMNIST. Widths (nz, ngf, ndf) are read
// from the first layer's weight and every other tensor is checked against them, so a
// wrong or damaged file fails with the tensor's name instead of computing garbage. A
// network uses every tensor its file holds (conv biases when present) or refuses to run,
// naming those it does not know; known_unused_suffixes lists the exceptions.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

#include "dcgan/weights.hpp"
#include "qgan/nn/batch_norm.hpp"
#include "qgan/nn/tensor.hpp"

namespace dcgan {

/// Tensors a network may hold without using: BatchNorm's step counter, and the
/// activation scales and zero points that 8-bit activation models store per layer input.
inline constexpr std::array<std::string_view, 3> known_unused_suffixes{".num_batches_tracked", ".input_scale",
                                                                       ".input_zero_point"};

using qgan::nn::tensor1;
using qgan::nn::tensor2;
using qgan::nn::tensor4;

/// z (N, nz, 1, 1) -> images (N, 1, 32, 32) in [-1, 1].
class generator {
 public:
  explicit generator(const weight_set& w);
  [[nodiscard]] std::int64_t nz() const { return nz_; }
  [[nodiscard]] tensor4 operator()(const tensor4& z) const;

 private:
  std::int64_t nz_;
  std::int64_t ngf_;
  tensor4 w1_, w2_, w3_, w4_;
  std::optional<tensor1> b1_, b2_, b3_, b4_;
  qgan::nn::batch_norm2d_params bn1_, bn2_, bn3_;
};

/// images (N, 1, 32, 32) -> probability of "real", N values.
class discriminator {
 public:
  explicit discriminator(const weight_set& w);
  [[nodiscard]] tensor1 operator()(const tensor4& images) const;

 private:
  std::int64_t ndf_;
  tensor4 w1_, w2_, w3_, w4_;
  std::optional<tensor1> b1_, b2_, b3_, b4_;
  qgan::nn::batch_norm2d_params bn2_, bn3_;
};

struct classifier_outputs {
  tensor2 features;  ///< (N, 128): relu4, the FID-FMNIST feature
  tensor2 logits;    ///< (N, 10)
};

/// The Fashion-MNIST classifier; its relu4 output is the FID-FMNIST feature.
class classifier {
 public:
  static constexpr std::int64_t feature_dim = 128;
  static constexpr std::int64_t classes = 10;

  explicit classifier(const weight_set& w);
  [[nodiscard]] classifier_outputs operator()(const tensor4& images) const;

 private:
  tensor4 w1_, w2_, w3_;
  qgan::nn::batch_norm2d_params bn1_, bn2_, bn3_;
  tensor2 fc1_, fc2_;
  tensor1 fc1_bias_, fc2_bias_;
};

}  // namespace dcgan
