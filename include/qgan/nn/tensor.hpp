// The tensor types the fp32 reference layers in qgan/nn take and return, and the shape
// text their error messages print. Activations are NCHW and weights are laid out as
// PyTorch stores them, both row-major, so a PyTorch state dict maps onto them unchanged.
#pragma once

#include <unsupported/Eigen/CXX11/Tensor>

#include <algorithm>
#include <array>
#include <span>
#include <string>
#include <string_view>

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

/// A tensor of `shape` holding a copy of `values` (row-major, as files and PyTorch store
/// them). `name` is the tensor's, for the error when the shape has another rank or does
/// not account for every value.
template <int Rank>
Eigen::Tensor<float, Rank, Eigen::RowMajor> tensor_from(std::span<const float> values, const shape_t& shape,
                                                       std::string_view name) {
  if (shape.size() != static_cast<std::size_t>(Rank)) {
    qgan::detail::throw_error("tensor '", name, "': shape ", qgan::to_string(shape), " is not ", Rank, "-D");
  }
  std::array<Eigen::Index, Rank> dims{};
  Eigen::Index count = 1;
  for (int i = 0; i < Rank; ++i) {
    if (shape[static_cast<std::size_t>(i)] < 0) {
      qgan::detail::throw_error("tensor '", name, "': shape ", qgan::to_string(shape), " has a negative extent");
    }
    dims[static_cast<std::size_t>(i)] = static_cast<Eigen::Index>(shape[static_cast<std::size_t>(i)]);
    count *= dims[static_cast<std::size_t>(i)];
  }
  if (static_cast<std::size_t>(count) != values.size()) {
    qgan::detail::throw_error("tensor '", name, "': shape ", qgan::to_string(shape), " holds ", count, " values, given ",
                              values.size());
  }
  Eigen::Tensor<float, Rank, Eigen::RowMajor> out(dims);
  std::copy(values.begin(), values.end(), out.data());
  return out;
}

/// A 1-D tensor holding a copy of `values` (a bias, BatchNorm statistics).
inline tensor1 tensor_from(std::span<const float> values) {
  tensor1 out(static_cast<Eigen::Index>(values.size()));
  std::copy(values.begin(), values.end(), out.data());
  return out;
}

}  // namespace qgan::nn
