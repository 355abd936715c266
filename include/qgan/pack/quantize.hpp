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

/// Decodes every element to float, in row-major order. Uniform grids (minmax, EM) decode
/// straight from the packed codes with alpha * z + beta; other policies through each
/// channel's table of 2^bits levels.
template <class Arch = xsimd::default_arch>
std::vector<float> dequantize(const packed_tensor& packed, std::string_view name = {}) {
  packed.validate(name);
  const simd::codec_table& codec = simd::active_kernels<Arch>().codec;
  const channel_layout layout = make_channel_layout(packed.shape, packed.grain, name);
  std::vector<float> values(packed.element_count());
  const std::size_t stride = params_per_channel(packed.policy, packed.bits);
  const bool uniform = find_policy(packed.policy)->uniform_grid();
  std::vector<std::uint8_t> run_codes(uniform ? 0 : layout.inner);
  for (std::size_t channel = 0; channel < layout.channels; ++channel) {
    const float* channel_params = packed.params.data() + channel * stride;
    const uniform_params grid{channel_params[0], channel_params[1], packed.bits};
    const std::vector<float> levels =
        uniform ? std::vector<float>{} : detail::channel_levels(packed.policy, packed.bits, channel_params);
    for (std::size_t outer = 0; outer < layout.outer; ++outer) {
      const std::size_t first = layout.index(outer, channel, 0);
      if (uniform) {
        codec.dequantize_uniform(packed.codes.data(), first, layout.inner,
                                                 packed.bits, grid, values.data() + first);
        continue;
      }
      codec.unpack(packed.codes.data(), first, layout.inner, packed.bits,
                                   run_codes.data());
      for (std::size_t i = 0; i < layout.inner; ++i) values[first + i] = levels[run_codes[i]];
    }
  }
  return values;
}

QGAN_END_FUNCTIONS
}  // namespace qgan
