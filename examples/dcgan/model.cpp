// The networks' forward passes, compiled once: every program and test that runs them
// shares these instantiations of the Eigen-heavy layers.
#include "dcgan/model.hpp"

#include "dcgan/tensor_reader.hpp"

#include <algorithm>
#include <optional>
#include <string>
#include <string_view>

#include "qgan/nn/activations.hpp"
#include "qgan/nn/conv2d.hpp"
#include "qgan/nn/conv_transpose2d.hpp"
#include "qgan/nn/linear.hpp"

namespace dcgan {

namespace {

tensor4 conv_weight(tensor_reader& w, const std::string& name, std::int64_t a, std::int64_t b) {
  return qgan::nn::tensor_from<4>(w.at(name + ".weight", {a, b, 4, 4}).values, {a, b, 4, 4}, name + ".weight");
}

// PyTorch convolutions have a bias unless built with bias=False; DCGAN's are built
// without, but a file that has them gets them used.
std::optional<tensor1> conv_bias(tensor_reader& w, const std::string& name, std::int64_t out_channels) {
  const float_tensor* bias = w.optional(name + ".bias", {out_channels});
  if (bias == nullptr) return std::nullopt;
  return qgan::nn::tensor_from(bias->values);
}

tensor4 convolve_transposed(const tensor4& x, const tensor4& weight, const std::optional<tensor1>& bias,
                            const qgan::nn::conv_transpose2d_options& options) {
  return bias ? qgan::nn::conv_transpose2d(x, weight, *bias, options) : qgan::nn::conv_transpose2d(x, weight, options);
}

tensor4 convolve(const tensor4& x, const tensor4& weight, const std::optional<tensor1>& bias,
                 const qgan::nn::conv2d_options& options) {
  return bias ? qgan::nn::conv2d(x, weight, *bias, options) : qgan::nn::conv2d(x, weight, options);
}

// The width a network's first weight declares, checked to be usable.
std::int64_t first_extent(const weight_set& w, const std::string& name, std::size_t axis) {
  const float_tensor* t = w.find(name);
  if (t == nullptr) {
    qgan::detail::throw_error(w.source(), ": tensor '", name, "': missing (is this the right model file?)");
  }
  if (t->shape.size() != 4 || t->shape[axis] < 1) {
    qgan::detail::throw_error(w.source(), ": tensor '", name, "': shape ", qgan::to_string(t->shape),
                              " is not a 4-D convolution weight");
  }
  return t->shape[axis];
}

}  // namespace

generator::generator(const weight_set& weights)
    : nz_(first_extent(weights, "deconv1.weight", 0)), ngf_(first_extent(weights, "deconv1.weight", 1) / 4) {
  if (ngf_ < 1 || ngf_ * 4 != first_extent(weights, "deconv1.weight", 1)) {
    qgan::detail::throw_error(weights.source(), ": tensor 'deconv1.weight': ", first_extent(weights, "deconv1.weight", 1),
                              " output channels is not 4 * ngf");
  }
  tensor_reader w(weights);
  w1_ = conv_weight(w, "deconv1", nz_, 4 * ngf_);
  w2_ = conv_weight(w, "deconv2", 4 * ngf_, 2 * ngf_);
  w3_ = conv_weight(w, "deconv3", 2 * ngf_, ngf_);
  w4_ = conv_weight(w, "deconv4", ngf_, 1);
  b1_ = conv_bias(w, "deconv1", 4 * ngf_);
  b2_ = conv_bias(w, "deconv2", 2 * ngf_);
  b3_ = conv_bias(w, "deconv3", ngf_);
  b4_ = conv_bias(w, "deconv4", 1);
  bn1_ = read_batch_norm(w, "bn1", 4 * ngf_);
  bn2_ = read_batch_norm(w, "bn2", 2 * ngf_);
  bn3_ = read_batch_norm(w, "bn3", ngf_);
  w.require_all_used("DCGAN generator", known_unused_suffixes);
}

tensor4 generator::operator()(const tensor4& z) const {
  using namespace qgan::nn;
  if (z.dimension(1) != nz_ || z.dimension(2) != 1 || z.dimension(3) != 1) {
    qgan::detail::throw_error("generator: z has shape ", qgan::nn::detail::dims_string(z), ", expected [N,", nz_,
                              ",1,1]");
  }
  const conv_transpose2d_options first{}, up{.stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1};
  tensor4 x = relu(batch_norm2d(convolve_transposed(z, w1_, b1_, first), bn1_));
  x = relu(batch_norm2d(convolve_transposed(x, w2_, b2_, up), bn2_));
  x = relu(batch_norm2d(convolve_transposed(x, w3_, b3_, up), bn3_));
  return qgan::nn::tanh(convolve_transposed(x, w4_, b4_, up));
}

discriminator::discriminator(const weight_set& weights) : ndf_(first_extent(weights, "conv1.weight", 0)) {
  tensor_reader w(weights);
  w1_ = conv_weight(w, "conv1", ndf_, 1);
  w2_ = conv_weight(w, "conv2", 2 * ndf_, ndf_);
  w3_ = conv_weight(w, "conv3", 4 * ndf_, 2 * ndf_);
  w4_ = conv_weight(w, "conv4", 1, 4 * ndf_);
  b1_ = conv_bias(w, "conv1", ndf_);
  b2_ = conv_bias(w, "conv2", 2 * ndf_);
  b3_ = conv_bias(w, "conv3", 4 * ndf_);
  b4_ = conv_bias(w, "conv4", 1);
  bn2_ = read_batch_norm(w, "bn2", 2 * ndf_);
  bn3_ = read_batch_norm(w, "bn3", 4 * ndf_);
  w.require_all_used("DCGAN discriminator", known_unused_suffixes);
}

tensor1 discriminator::operator()(const tensor4& images) const {
  using namespace qgan::nn;
  const conv2d_options last{}, down{.stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1};
  tensor4 x = leaky_relu(convolve(images, w1_, b1_, down), 0.2f);
  x = leaky_relu(batch_norm2d(convolve(x, w2_, b2_, down), bn2_), 0.2f);
  x = leaky_relu(batch_norm2d(convolve(x, w3_, b3_, down), bn3_), 0.2f);
  const tensor4 probabilities = sigmoid(convolve(x, w4_, b4_, last));
  tensor1 out(probabilities.dimension(0));
  std::copy(probabilities.data(), probabilities.data() + probabilities.size(), out.data());
  return out;
}

classifier::classifier(const weight_set& weights) {
  tensor_reader w(weights);
  w1_ = conv_weight(w, "conv1", 32, 1);
  w2_ = conv_weight(w, "conv2", 64, 32);
  w3_ = conv_weight(w, "conv3", 128, 64);
  bn1_ = read_batch_norm(w, "bn1", 32);
  bn2_ = read_batch_norm(w, "bn2", 64);
  bn3_ = read_batch_norm(w, "bn3", 128);
  fc1_ = qgan::nn::tensor_from<2>(w.at("fc1.weight", {feature_dim, 2048}).values, {feature_dim, 2048}, "fc1.weight");
  fc1_bias_ = qgan::nn::tensor_from(w.at("fc1.bias", {feature_dim}).values);
  fc2_ = qgan::nn::tensor_from<2>(w.at("fc2.weight", {classes, feature_dim}).values, {classes, feature_dim}, "fc2.weight");
  fc2_bias_ = qgan::nn::tensor_from(w.at("fc2.bias", {classes}).values);
  w.require_all_used("Fashion-MNIST classifier", known_unused_suffixes);
}

classifier_outputs classifier::operator()(const tensor4& images) const {
  using namespace qgan::nn;
  const conv2d_options down{.stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1};
  tensor4 x = relu(batch_norm2d(conv2d(images, w1_, down), bn1_));
  x = relu(batch_norm2d(conv2d(x, w2_, down), bn2_));
  x = relu(batch_norm2d(conv2d(x, w3_, down), bn3_));
  // Flatten in (C, H, W) order: NCHW row-major storage already is that order.
  tensor2 flat(x.dimension(0), x.dimension(1) * x.dimension(2) * x.dimension(3));
  std::copy(x.data(), x.data() + x.size(), flat.data());
  classifier_outputs out;
  out.features = relu(linear(flat, fc1_, fc1_bias_));
  out.logits = linear(out.features, fc2_, fc2_bias_);
  return out;
}

}  // namespace dcgan
