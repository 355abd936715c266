// The tensor types the fp32 reference layers in qgan/nn take and return, and the shape
// text their error messages print. Activations are NCHW and weights are laid out as
// PyTorch stores them, both row-major, so a PyTorch state dict maps onto them unchanged.
#pragma once

#include <unsupported/Eigen/CXX11/Tensor>

#include <string>

#include "qgan/core/error.hpp"
#include "qgan/core/shape.hpp"

namespace qgan::nn {

using tensor1 = Eigen::Tensor<float, 1, Eigen::RowMajor>;  ///< bias, BatchNorm statistics
using tensor2 = Eigen::Tensor<float, 2, Eigen::RowMajor>;  ///< Linear input (N, in), weight (out, in)
using tensor4 = Eigen::Tensor<float, 4, Eigen::RowMajor>;  ///< NCHW activations, conv weights

namespace detail {

// "[8,2,3,3]", as qgan::to_string prints shapes everywhere else.
template <class TensorType>
std::string dims_string(const TensorType& tensor) {
  shape_t shape;
  for (const Eigen::Index extent : tensor.dimensions()) shape.push_back(extent);
  return qgan::to_string(shape);
}

// Throws "<layer>: <field> is <value>, must be at least <minimum>".
inline void require_at_least(const char* layer, const char* field, Eigen::Index value,
                             Eigen::Index minimum) {
  if (value < minimum) {
    qgan::detail::throw_error(layer, ": ", field, " is ", value, ", must be at least ", minimum);
  }
}

}  // namespace detail
}  // namespace qgan::nn
