// Linear (fully connected) layer, fp32 reference: y = x W^T + b with x (N, in), weight
// (out, in) as PyTorch's nn.Linear stores it and an optional bias (out). The product is
// one Eigen GEMM on matrix maps over the tensors' row-major storage, without copies.
#pragma once

#include <Eigen/Core>

#include "qgan/core/error.hpp"
#include "qgan/nn/tensor.hpp"

namespace qgan::nn {

namespace detail {

inline tensor2 linear_impl(const tensor2& x, const tensor2& weight, const tensor1* bias) {
  using row_major = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const Eigen::Index batch = x.dimension(0);
  const Eigen::Index in = x.dimension(1);
  const Eigen::Index out = weight.dimension(0);
  if (weight.dimension(1) != in) {
    qgan::detail::throw_error("linear: input has ", in, " features but weight expects ",
                              weight.dimension(1), " (weight shape ", dims_string(weight), ")");
  }
  if (bias != nullptr && bias->dimension(0) != out) {
    qgan::detail::throw_error("linear: bias has ", bias->dimension(0), " elements but weight has ",
                              out, " outputs (weight shape ", dims_string(weight), ")");
  }
  tensor2 y(batch, out);
  if (y.size() == 0) return y;
  Eigen::Map<const row_major> xm(x.data(), batch, in);
  Eigen::Map<const row_major> wm(weight.data(), out, in);
  Eigen::Map<row_major> ym(y.data(), batch, out);
  if (in == 0) {
    ym.setZero();
  } else {
    ym.noalias() = xm * wm.transpose();
  }
  if (bias != nullptr) {
    Eigen::Map<const Eigen::RowVectorXf> bm(bias->data(), out);
    ym.rowwise() += bm;
  }
  return y;
}

}  // namespace detail

// x (N, in), weight (out, in) -> (N, out). Throws qgan::error when in or the bias length
// does not match the weight.
inline tensor2 linear(const tensor2& x, const tensor2& weight) {
  return detail::linear_impl(x, weight, nullptr);
}

inline tensor2 linear(const tensor2& x, const tensor2& weight, const tensor1& bias) {
  return detail::linear_impl(x, weight, &bias);
}

}  // namespace qgan::nn
