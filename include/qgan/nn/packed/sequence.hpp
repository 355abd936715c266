// Packed layers one after another, as a sequential generator runs them: between two layers
// a ReLU (fp32 activations) or the next layer's 8-bit grid (whose zero point 0 is the
// ReLU), and the last layer's output in fp32 with no activation, for the caller's own
// (the DCGAN's tanh).
#pragma once

#include "qgan/core/isa_namespace.hpp"

#include <cstddef>
#include <span>
#include <utility>

#include "qgan/core/error.hpp"
#include "qgan/core/thread_pool.hpp"
#include "qgan/nn/packed/activations.hpp"
#include "qgan/nn/packed/forward.hpp"
#include "qgan/nn/packed/layer.hpp"

namespace qgan::nn::packed {
QGAN_BEGIN_FUNCTIONS

/// 8-bit activations: input_ranges[i] is layer i's input grid (x already on input_ranges[0]).
template <class Arch = xsimd::default_arch>
f32_activations forward_sequence(std::span<const layer> layers, std::span<const activation_range> input_ranges,
                                 u8_activations x, thread_pool& pool) {
  if (layers.empty() || input_ranges.size() != layers.size()) {
    qgan::detail::throw_error("forward_sequence: ", layers.size(), " layers and ", input_ranges.size(), " input ranges");
  }
  for (std::size_t i = 0; i + 1 < layers.size(); ++i) {
    u8_activations y;
    y.scale = input_ranges[i + 1].scale;
    y.zero_point = input_ranges[i + 1].zero_point;
    y.planar = layers[i + 1].weights.row_tiles;
    forward<Arch>(layers[i], x, y, pool);
    x = std::move(y);
  }
  f32_activations out;
  forward<Arch>(layers.back(), x, out, false, pool);
  return out;
}

/// fp32 activations.
template <class Arch = xsimd::default_arch>
f32_activations forward_sequence(std::span<const layer> layers, f32_activations x, thread_pool& pool) {
  if (layers.empty()) qgan::detail::throw_error("forward_sequence: no layers");
  for (std::size_t i = 0; i < layers.size(); ++i) {
    f32_activations y;
    forward<Arch>(layers[i], x, y, i + 1 < layers.size(), pool);
    x = std::move(y);
  }
  return x;
}

QGAN_END_FUNCTIONS
}  // namespace qgan::nn::packed
