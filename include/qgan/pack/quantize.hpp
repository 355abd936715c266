// The packed front door: qgan::quantize fits a policy per tensor or per channel and packs
// the codes; qgan::dequantize decodes a packed_tensor to floats. Both run through the
// selected kernel set (qgan/simd/select.hpp).
#pragma once

#include "qgan/core/isa_namespace.hpp"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "qgan/pack/packed_tensor.hpp"
#include "qgan/quant/quantize.hpp"
#include "qgan/simd/select.hpp"

namespace qgan {

QGAN_BEGIN_FUNCTIONS

/// Fits `policy` per tensor or per channel and packs the codes.
template <quantizer Q, class Arch = xsimd::default_arch>
packed_tensor quantize(const Q& policy, std::span<const float> values, const shape_t& shape,
                       const quantize_options& options) {
  const quantized_codes<Q> fitted = quantize_codes<Q, Arch>(policy, values, shape, options);
  packed_tensor packed;
  packed.shape = shape;
  packed.bits = options.bits;
  packed.policy = detail::policy_traits<Q>::id;
  packed.grain = options.grain;
  for (const auto& channel_params : fitted.params) {
    detail::policy_traits<Q>::append(channel_params, packed.params);
  }
  packed.codes.resize(pack::packed_size(fitted.codes.size(), options.bits));
  simd::active_kernels<Arch>().codec.pack_codes(fitted.codes.data(), fitted.codes.size(), options.bits,
                                   packed.codes.data());
  return packed;
}

QGAN_END_FUNCTIONS

namespace detail {
QGAN_BEGIN_FUNCTIONS

/// Decodes runs of one channel's elements at a time: uniform grids (minmax, EM) straight
/// from the packed codes with alpha * z + beta; other policies through the channel's table
/// of 2^bits levels. Shared by dequantize and everything that decodes in pieces.
template <class Arch>
class channel_decoder {
 public:
  explicit channel_decoder(const packed_tensor& packed)
      : packed_(packed),
        codec_(simd::active_kernels<Arch>().codec),
        stride_(params_per_channel(packed.policy, packed.bits)),
        uniform_(find_policy(packed.policy)->uniform_grid()) {}

  void select_channel(std::size_t channel) {
    const float* channel_params = packed_.params.data() + channel * stride_;
    grid_ = uniform_params{channel_params[0], channel_params[1], packed_.bits};
    if (!uniform_) levels_ = channel_levels(packed_.policy, packed_.bits, channel_params);
  }

  /// out[i] = the decoded element first + i of the selected channel's run.
  void decode(std::size_t first, std::size_t length, float* out) {
    if (uniform_) {
      codec_.dequantize_uniform(packed_.codes.data(), first, length, packed_.bits, grid_, out);
      return;
    }
    if (codes_.size() < length) codes_.resize(length);
    codec_.unpack(packed_.codes.data(), first, length, packed_.bits, codes_.data());
    for (std::size_t i = 0; i < length; ++i) out[i] = levels_[codes_[i]];
  }

 private:
  const packed_tensor& packed_;
  const simd::codec_table& codec_;
  std::size_t stride_;
  bool uniform_;
  uniform_params grid_{};
  std::vector<float> levels_{};
  std::vector<std::uint8_t> codes_{};
};

QGAN_END_FUNCTIONS
}  // namespace detail

QGAN_BEGIN_FUNCTIONS

/// Decodes every element to float, in row-major order (detail::channel_decoder).
template <class Arch = xsimd::default_arch>
std::vector<float> dequantize(const packed_tensor& packed, std::string_view name = {}) {
  packed.validate(name);
  const channel_layout layout = make_channel_layout(packed.shape, packed.grain, name);
  std::vector<float> values(packed.element_count());
  detail::channel_decoder<Arch> decoder(packed);
  for (std::size_t channel = 0; channel < layout.channels; ++channel) {
    decoder.select_channel(channel);
    for (std::size_t outer = 0; outer < layout.outer; ++outer) {
      const std::size_t first = layout.index(outer, channel, 0);
      decoder.decode(first, layout.inner, values.data() + first);
    }
  }
  return values;
}

QGAN_END_FUNCTIONS
}  // namespace qgan
