// Tensor shapes as PyTorch writes them (row-major extents), with the overflow-checked
// element count every loader and front door needs before it trusts a shape.
#pragma once

#include "qgan/core/isa_namespace.hpp"

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "qgan/core/error.hpp"

namespace qgan {

using shape_t = std::vector<std::int64_t>;

QGAN_BEGIN_FUNCTIONS

inline std::string to_string(const shape_t& shape) {
  std::string text = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i != 0) text += ",";
    text += std::to_string(shape[i]);
  }
  return text + "]";
}

// Number of elements; a rank-0 shape holds one element, as in PyTorch. Throws on a
// negative extent or a product that does not fit in std::size_t.
inline std::size_t element_count(const shape_t& shape, std::string_view tensor_name = {}) {
  std::size_t count = 1;
  for (std::size_t axis = 0; axis < shape.size(); ++axis) {
    const std::int64_t extent = shape[axis];
    if (extent < 0) {
      detail::throw_error(detail::tensor_prefix(tensor_name), "shape ", to_string(shape),
                          " has negative extent ", extent, " on axis ", axis);
    }
    const auto unsigned_extent = static_cast<std::uint64_t>(extent);
    if (unsigned_extent != 0 &&
        count > std::numeric_limits<std::size_t>::max() / unsigned_extent) {
      detail::throw_error(detail::tensor_prefix(tensor_name), "shape ", to_string(shape),
                          " has more elements than fit in memory");
    }
    count *= static_cast<std::size_t>(unsigned_extent);
  }
  return count;
}

QGAN_END_FUNCTIONS
}  // namespace qgan
