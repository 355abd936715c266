// Elementwise activations of the fp32 reference layers: relu, leaky_relu, tanh, sigmoid,
// as PyTorch defines them. Each takes its tensor by value and returns it rewritten in
// place, so a caller that moves its activations in pays no copy.
#pragma once

#include <unsupported/Eigen/CXX11/Tensor>

#include <cmath>
#include <utility>

namespace qgan::nn {

namespace detail {

template <int Rank, class Function>
Eigen::Tensor<float, Rank, Eigen::RowMajor> map_in_place(Eigen::Tensor<float, Rank, Eigen::RowMajor> x,
                                                         Function function) {
  float* data = x.data();
  for (Eigen::Index i = 0; i < x.size(); ++i) data[i] = function(data[i]);
  return x;
}

}  // namespace detail

template <int Rank>
Eigen::Tensor<float, Rank, Eigen::RowMajor> relu(Eigen::Tensor<float, Rank, Eigen::RowMajor> x) {
  // NaN passes through, as in PyTorch: a clamp that turned it into 0 would hide an
  // overflow upstream behind plausible numbers.
  return detail::map_in_place(std::move(x), [](float v) { return v > 0.0f || std::isnan(v) ? v : 0.0f; });
}

// v for v >= 0, slope * v otherwise (PyTorch's default slope is 0.01; DCGAN uses 0.2).
template <int Rank>
Eigen::Tensor<float, Rank, Eigen::RowMajor> leaky_relu(Eigen::Tensor<float, Rank, Eigen::RowMajor> x,
                                                       float slope = 0.01f) {
  return detail::map_in_place(std::move(x), [slope](float v) { return v >= 0.0f ? v : slope * v; });
}

template <int Rank>
Eigen::Tensor<float, Rank, Eigen::RowMajor> tanh(Eigen::Tensor<float, Rank, Eigen::RowMajor> x) {
  return detail::map_in_place(std::move(x), [](float v) { return std::tanh(v); });
}

// 1 / (1 + exp(-v)), written so that neither branch overflows.
template <int Rank>
Eigen::Tensor<float, Rank, Eigen::RowMajor> sigmoid(Eigen::Tensor<float, Rank, Eigen::RowMajor> x) {
  return detail::map_in_place(std::move(x), [](float v) {
    if (v >= 0.0f) return 1.0f / (1.0f + std::exp(-v));
    const float e = std::exp(v);
    return e / (1.0f + e);
  });
}

}  // namespace qgan::nn
