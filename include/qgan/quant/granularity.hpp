// Per-tensor or per-channel quantization along any axis of a row-major tensor. PyTorch's
// layouts decide the axis: Linear (out, in) and Conv2d (out, in/groups, kh, kw) use axis 0;
// ConvTranspose2d (in, out/groups, kh, kw) keeps its output channels on axis 1.
#pragma once

#include "qgan/core/isa_namespace.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <variant>

#include "qgan/core/error.hpp"
#include "qgan/core/shape.hpp"

namespace qgan {

struct per_tensor {
  friend bool operator==(const per_tensor&, const per_tensor&) = default;
};
struct per_channel {
  int axis = 0;  ///< negative counts from the last axis, as in PyTorch
  friend bool operator==(const per_channel&, const per_channel&) = default;
};
using granularity = std::variant<per_tensor, per_channel>;

/// A row-major tensor seen as (outer, channels, inner): element (o, c, i) sits at
/// (o * channels + c) * inner + i. Per-tensor is the case channels = 1.
struct channel_layout {
  std::size_t outer = 1;
  std::size_t channels = 1;
  std::size_t inner = 0;

  std::size_t index(std::size_t outer_index, std::size_t channel, std::size_t inner_index) const
      noexcept {
    return (outer_index * channels + channel) * inner + inner_index;
  }
  std::size_t channel_size() const noexcept { return outer * inner; }
};

QGAN_BEGIN_FUNCTIONS

inline channel_layout make_channel_layout(const shape_t& shape, const granularity& grain,
                                          std::string_view tensor_name = {}) {
  const std::size_t total = element_count(shape, tensor_name);
  if (std::holds_alternative<per_tensor>(grain)) return {1, 1, total};
  const int rank = static_cast<int>(shape.size());
  int axis = std::get<per_channel>(grain).axis;
  if (axis < 0) axis += rank;
  if (axis < 0 || axis >= rank) {
    detail::throw_error(detail::tensor_prefix(tensor_name), "per-channel axis ",
                        std::get<per_channel>(grain).axis, " is out of range for shape ",
                        to_string(shape), " (rank ", rank, ")");
  }
  channel_layout layout;
  layout.channels = static_cast<std::size_t>(shape[static_cast<std::size_t>(axis)]);
  layout.outer = element_count(shape_t(shape.begin(), shape.begin() + axis));
  layout.inner = element_count(shape_t(shape.begin() + axis + 1, shape.end()));
  return layout;
}

QGAN_END_FUNCTIONS

}  // namespace qgan
