// Eigen at the boundary: row-major Eigen tensors and matrices go in, are viewed as
// (pointer, shape) at once, and come back as the same Eigen type. Column-major data would
// make "axis" ambiguous, so it is refused at compile time rather than reinterpreted.
#pragma once

#include <Eigen/Core>
#include <unsupported/Eigen/CXX11/Tensor>
#include <span>

#include "qgan/quant/quantize.hpp"

namespace qgan {

using row_matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

template <class TensorType>
shape_t shape_of(const TensorType& tensor) {
  static_assert(static_cast<int>(TensorType::Layout) == static_cast<int>(Eigen::RowMajor),
                "qgan reads tensors as PyTorch lays them out: use Eigen::RowMajor");
  shape_t shape;
  for (const Eigen::Index extent : tensor.dimensions()) shape.push_back(extent);
  return shape;
}

template <quantizer Q, int Rank>
quantized_codes<Q> quantize_codes(const Q& policy,
                                  const Eigen::Tensor<float, Rank, Eigen::RowMajor>& tensor,
                                  const quantize_options& options) {
  return quantize_codes(policy, std::span<const float>(tensor.data(), static_cast<std::size_t>(tensor.size())),
                        shape_of(tensor), options);
}

template <quantizer Q, int Rank>
Eigen::Tensor<float, Rank, Eigen::RowMajor> fake_quantize(
    const Q& policy, const Eigen::Tensor<float, Rank, Eigen::RowMajor>& tensor,
    const quantize_options& options) {
  const std::vector<float> values = fake_quantize(
      policy, std::span<const float>(tensor.data(), static_cast<std::size_t>(tensor.size())),
      shape_of(tensor), options);
  Eigen::Tensor<float, Rank, Eigen::RowMajor> result(tensor.dimensions());
  std::copy(values.begin(), values.end(), result.data());
  return result;
}

/// Matrices are (rows, cols) like a Linear weight (out, in): per_channel{0} is per row.
template <quantizer Q>
row_matrix fake_quantize(const Q& policy, const Eigen::Ref<const row_matrix>& matrix,
                         const quantize_options& options) {
  row_matrix contiguous = matrix;  // Ref may carry an outer stride; the front door wants dense
  const shape_t shape{contiguous.rows(), contiguous.cols()};
  const std::vector<float> values = fake_quantize(
      policy, std::span<const float>(contiguous.data(), static_cast<std::size_t>(contiguous.size())),
      shape, options);
  std::copy(values.begin(), values.end(), contiguous.data());
  return contiguous;
}

}  // namespace qgan
