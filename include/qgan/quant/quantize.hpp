// The front door of the quantizer policies: fit any policy per tensor or per channel, get
// codes and fitted params, decode them, fake-quantize for a training loop, and the
// straight-through estimator's gradient mask. Packed storage builds on `quantized_codes`.
#pragma once

#include "qgan/core/isa_namespace.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "qgan/core/error.hpp"
#include "qgan/core/shape.hpp"
#include "qgan/quant/concepts.hpp"
#include "qgan/core/parallel.hpp"
#include "qgan/quant/granularity.hpp"
#include "qgan/quant/lloyd_max.hpp"
#include "qgan/quant/uniform_grid.hpp"
#include "qgan/simd/select.hpp"

namespace qgan {

struct quantize_options {
  int bits = 4;
  granularity grain = per_tensor{};
  std::string_view name = {};  ///< tensor name, quoted in every error message
  int threads = 1;  ///< threads splitting the channels (or one tensor's EM passes); never
                    ///< changes the result
};

/// Codes (one byte each, unpacked) and the params of each channel.
template <quantizer Q>
struct quantized_codes {
  shape_t shape{};
  int bits = 0;
  granularity grain = per_tensor{};
  std::vector<typename Q::params> params{};  ///< one per channel (one for per_tensor)
  std::vector<std::uint8_t> codes{};       ///< row-major, same order as the input
};

namespace detail {
QGAN_BEGIN_FUNCTIONS

inline void require_size(std::span<const float> values, const shape_t& shape,
                         std::string_view tensor_name) {
  const std::size_t expected = element_count(shape, tensor_name);
  if (values.size() != expected) {
    throw_error(tensor_prefix(tensor_name), "shape ", to_string(shape), " holds ", expected,
                " elements but ", values.size(), " values were given");
  }
}

// Visits channel c's elements in row-major order: fn(flat_index).
template <class Fn>
void for_each_in_channel(const channel_layout& layout, std::size_t channel, Fn&& fn) {
  for (std::size_t o = 0; o < layout.outer; ++o) {
    const std::size_t first = layout.index(o, channel, 0);
    for (std::size_t i = 0; i < layout.inner; ++i) fn(first + i);
  }
}

inline std::string channel_name(std::string_view tensor_name, std::size_t channel,
                                const channel_layout& layout) {
  if (layout.channels == 1 || tensor_name.empty()) return std::string(tensor_name);
  return std::string(tensor_name) + "[channel " + std::to_string(channel) + "]";
}

QGAN_END_FUNCTIONS
}  // namespace detail

namespace detail {
QGAN_BEGIN_FUNCTIONS

// A policy whose fit is a template on the instruction set (EM, minmax) gets the caller's.
template <class Arch, quantizer Q>
typename Q::params fit_for(const Q& policy, std::span<const float> values, int bits,
                           std::string_view name) {
  if constexpr (requires { policy.template fit<Arch>(values, bits, name); }) {
    return policy.template fit<Arch>(values, bits, name);
  } else {
    return policy.fit(values, bits, name);
  }
}

// Weights far from 1 in magnitude make the fit slow or wrong: below about 2^-63 every
// squared error is a subnormal float (x86 takes a microcode assist per operation, 100x
// slower), above about 2^63 squares overflow. A channel whose largest magnitude lies
// outside [2^-32, 2^32] is fitted on itself times 2^k (k putting that magnitude in
// [1, 2)), which is exact, and the fitted grid is scaled back by 2^-k. Only for policies
// whose fit commutes with scaling (a uniform grid or a codebook: em, em+, minmax, lloyd);
// log and tanh see the weights as they are. The scaled-back params are rounded like any
// float: a grid under about 1e-38 keeps fewer significant bits, and one under 1e-45
// becomes 0.
template <class Params>
inline constexpr bool fit_scales_exactly =
    std::is_same_v<Params, uniform_params> || std::is_same_v<Params, codebook_params>;

// The k putting the largest magnitude in [1, 2), or 0 when it lies in [2^-32, 2^32].
inline int rescale_exponent(std::span<const float> values) {
  float largest = 0.0f;
  for (const float v : values) largest = std::max(largest, std::fabs(v));
  if (largest == 0.0f || (largest >= 0x1p-32f && largest <= 0x1p32f)) return 0;
  int exponent = 0;
  (void)std::frexp(largest, &exponent);  // largest = m * 2^exponent, m in [0.5, 1)
  return 1 - exponent;
}

inline uniform_params scale_params(uniform_params params, int exponent) {
  params.alpha = std::ldexp(params.alpha, exponent);
  params.beta = std::ldexp(params.beta, exponent);
  return params;
}

inline codebook_params scale_params(codebook_params params, int exponent) {
  for (float& level : params.levels) level = std::ldexp(level, exponent);
  return params;
}

template <class Arch, quantizer Q>
typename Q::params fit_rescaled(const Q& policy, std::span<const float> values, int bits, std::string_view name) {
  if constexpr (fit_scales_exactly<typename Q::params>) {
    if (const int exponent = rescale_exponent(values); exponent != 0) {
      std::vector<float> scaled(values.size());
      for (std::size_t i = 0; i < values.size(); ++i) scaled[i] = std::ldexp(values[i], exponent);
      return scale_params(fit_for<Arch>(policy, scaled, bits, name), -exponent);
    }
  }
  return fit_for<Arch>(policy, values, bits, name);
}

QGAN_END_FUNCTIONS
}  // namespace detail
QGAN_BEGIN_FUNCTIONS

/// Fits the policy per channel and encodes every element. Channels are split across
/// options.threads threads (a single channel's EM passes are, when the policy has threads
/// of its own); each channel's result is the same whichever thread ran it.
template <quantizer Q, class Arch = xsimd::default_arch>
quantized_codes<Q> quantize_codes(const Q& policy, std::span<const float> values,
                                  const shape_t& shape, const quantize_options& options) {
  detail::require_size(values, shape, options.name);
  const channel_layout layout = make_channel_layout(shape, options.grain, options.name);
  quantized_codes<Q> result{shape, options.bits, options.grain, {}, {}};
  result.codes.resize(values.size());
  result.params.resize(layout.channels);
  Q channel_policy = policy;
  if constexpr (requires { channel_policy.threads; }) {
    if (layout.channels == 1) channel_policy.threads = std::max(policy.threads, options.threads);
  }
  const int channel_threads = layout.channels == 1 ? 1 : options.threads;
  const simd::kernel_set& kernels = simd::active_kernels<Arch>();
  parallel_for(layout.channels, channel_threads, [&](std::size_t channel) {
    // A channel is contiguous when nothing lies outside it (per tensor, or axis 0).
    std::vector<float> gathered;
    std::span<const float> channel_values;
    if (layout.outer == 1) {
      channel_values = values.subspan(layout.index(0, channel, 0), layout.inner);
    } else {
      gathered.reserve(layout.channel_size());
      detail::for_each_in_channel(layout, channel, [&](std::size_t at) { gathered.push_back(values[at]); });
      channel_values = gathered;
    }
    const std::string name = detail::channel_name(options.name, channel, layout);
    const auto fitted = detail::fit_rescaled<Arch>(channel_policy, channel_values, options.bits, name);
    result.params[channel] = fitted;
    for (std::size_t outer = 0; outer < layout.outer; ++outer) {
      const std::size_t first = layout.index(outer, channel, 0);
      if constexpr (std::is_same_v<typename Q::params, uniform_params>) {
        kernels.codec.encode_uniform(values.data() + first, layout.inner, fitted, result.codes.data() + first);
      } else {
        for (std::size_t i = 0; i < layout.inner; ++i) {
          result.codes[first + i] = static_cast<std::uint8_t>(policy.encode(values[first + i], fitted));
        }
      }
    }
  });
  return result;
}

template <quantizer Q>
std::vector<float> dequantize_codes(const Q& policy, const quantized_codes<Q>& quantized) {
  const channel_layout layout = make_channel_layout(quantized.shape, quantized.grain);
  if (quantized.params.size() != layout.channels || quantized.codes.size() !=
                                                        layout.outer * layout.channels *
                                                            layout.inner) {
    detail::throw_error("dequantize_codes: ", quantized.params.size(), " params and ",
                        quantized.codes.size(), " codes do not match shape ",
                        to_string(quantized.shape));
  }
  std::vector<float> values(quantized.codes.size());
  for (std::size_t channel = 0; channel < layout.channels; ++channel) {
    const auto& fitted = quantized.params[channel];
    detail::for_each_in_channel(layout, channel, [&](std::size_t at) {
      values[at] = policy.decode(quantized.codes[at], fitted);
    });
  }
  return values;
}

/// Quantize then dequantize: what a training loop's forward pass uses.
template <quantizer Q>
std::vector<float> fake_quantize(const Q& policy, std::span<const float> values,
                                 const shape_t& shape, const quantize_options& options) {
  return dequantize_codes(policy, quantize_codes(policy, values, shape, options));
}

/// Forward values and the straight-through estimator's mask (1: the gradient passes).
struct fake_quant_result {
  std::vector<float> values{};
  std::vector<std::uint8_t> ste_mask{};
};

/// The interval a policy represents without clipping: from the lowest level minus half the
/// gap to its neighbour to the highest level plus half its gap. A weight inside rounds to
/// a level; a weight outside is clipped to an end level, and the straight-through
/// estimator passes no gradient to it. (Bounding by the end levels themselves would call
/// the largest weight clipped whenever float rounding puts minmax's top level an ulp
/// below it.)
template <quantizer Q>
std::pair<float, float> representable_range(const Q& policy, const typename Q::params& fitted) {
  std::vector<float> levels;
  for (std::uint32_t code = 0; code < detail::level_count(fitted.bits); ++code) {
    levels.push_back(policy.decode(code, fitted));
  }
  std::sort(levels.begin(), levels.end());
  const float lowest = levels.front(), highest = levels.back();
  return {lowest - (levels[1] - lowest) / 2.0f, highest + (highest - levels[levels.size() - 2]) / 2.0f};
}

template <quantizer Q>
fake_quant_result fake_quantize_ste(const Q& policy, std::span<const float> values,
                                    const shape_t& shape, const quantize_options& options) {
  const quantized_codes<Q> quantized = quantize_codes(policy, values, shape, options);
  const channel_layout layout = make_channel_layout(shape, options.grain, options.name);
  fake_quant_result result{dequantize_codes(policy, quantized),
                           std::vector<std::uint8_t>(values.size())};
  for (std::size_t channel = 0; channel < layout.channels; ++channel) {
    // Not a structured binding: clang 14 cannot capture those in a lambda.
    const std::pair<float, float> range = representable_range(policy, quantized.params[channel]);
    detail::for_each_in_channel(layout, channel, [&](std::size_t at) {
      result.ste_mask[at] = values[at] >= range.first && values[at] <= range.second ? 1 : 0;
    });
  }
  return result;
}

/// Backward pass of the straight-through estimator: dL/dw = dL/dq where the mask is 1.
inline std::vector<float> ste_backward(std::span<const float> upstream_gradient,
                                       std::span<const std::uint8_t> ste_mask) {
  if (upstream_gradient.size() != ste_mask.size()) {
    detail::throw_error("ste_backward: ", upstream_gradient.size(), " gradients but ",
                        ste_mask.size(), " mask entries");
  }
  std::vector<float> gradient(upstream_gradient.size());
  for (std::size_t i = 0; i < gradient.size(); ++i) {
    gradient[i] = ste_mask[i] ? upstream_gradient[i] : 0.0f;
  }
  return gradient;
}

QGAN_END_FUNCTIONS
}  // namespace qgan
