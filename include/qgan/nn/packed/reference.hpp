// The integer reference of the 8-bit-activation path: a direct loop over the canonical
// (PyTorch) weight layout and the input, with no phases, tiles or repacking, so that it
// checks them. For every output it sums z*q, q, z and the count over the (input channel,
// tap) pairs that reach it and applies the epilogue of qgan/simd/conv_types.hpp with the
// layer's own terms; the packed layer must give exactly these bits.
#pragma once

#include "qgan/core/isa_namespace.hpp"

#include <cstddef>
#include <cstdint>
#include <vector>

#include "qgan/nn/packed/build.hpp"
#include "qgan/nn/packed/forward.hpp"
#include "qgan/simd/conv_ref.hpp"

namespace qgan::nn::packed {
QGAN_BEGIN_FUNCTIONS

/// The input coordinate a tap reads for an output coordinate, or -1.
inline std::int64_t reference_input(bool transposed, std::int64_t out, std::int64_t k, const axis_spec& a, std::int64_t in) {
  if (!transposed) {
    const std::int64_t i = out * a.stride - a.pad + k * a.dilation;
    return i >= 0 && i < in ? i : -1;
  }
  const std::int64_t numerator = out + a.pad - k * a.dilation;
  if (numerator < 0 || numerator % a.stride != 0 || numerator / a.stride >= in) return -1;
  return numerator / a.stride;
}

/// y before the output conversion, NCHW, for layer `l` built from `weight`.
inline std::vector<float> int8_reference(const layer& l, const packed_tensor& weight, const u8_activations& in) {
  const auto [out_h, out_w] = output_size(l, in.height, in.width);
  const bool transposed = l.geometry.kind == layer_kind::transposed_convolution;
  const detail::block_terms terms = detail::int8_block_terms(l, in.scale);
  const auto kh = static_cast<std::size_t>(l.geometry.rows.kernel), kw = static_cast<std::size_t>(l.geometry.cols.kernel);
  std::vector<float> y(in.batch * l.geometry.out_channels * out_h * out_w);
  for (std::size_t n = 0; n < in.batch; ++n) {
    for (std::size_t g = 0; g < l.geometry.groups; ++g) {
      for (std::size_t o = 0; o < l.group_out; ++o) {
        const std::size_t global = g * l.group_out + o;
        const std::size_t at = g * l.blocks * simd::tile_lanes + o;
        for (std::size_t oh = 0; oh < out_h; ++oh) {
          for (std::size_t ow = 0; ow < out_w; ++ow) {
            std::int32_t zq = 0, q_sum = 0, z_sum = 0, count = 0;
            for (std::size_t ki = 0; ki < kh; ++ki) {
              const std::int64_t ih = reference_input(transposed, static_cast<std::int64_t>(oh), static_cast<std::int64_t>(ki),
                                                      l.geometry.rows, static_cast<std::int64_t>(in.height));
              if (ih < 0) continue;
              for (std::size_t kj = 0; kj < kw; ++kj) {
                const std::int64_t iw = reference_input(transposed, static_cast<std::int64_t>(ow), static_cast<std::int64_t>(kj),
                                                        l.geometry.cols, static_cast<std::int64_t>(in.width));
                if (iw < 0) continue;
                const std::size_t pixel = static_cast<std::size_t>(ih) * in.width + static_cast<std::size_t>(iw);
                for (std::size_t c = 0; c < l.group_in; ++c) {
                  const auto z = static_cast<std::int32_t>(
                      pack::code_at_ref(weight.codes.data(), detail::canonical_index(l, g, o, c, ki * kw + kj), weight.bits));
                  const std::int32_t q = in.data[in.offset(n, g * l.group_in + c, pixel)];
                  zq += z * q;
                  q_sum += q;
                  z_sum += z;
                  ++count;
                }
              }
            }
            const simd::int_epilogue e{terms.alpha_scale.data() + at, terms.beta_scale.data() + at, terms.bias.data() + at, 0,
                                       in.zero_point};
            y[((n * l.geometry.out_channels + global) * out_h + oh) * out_w + ow] =
                simd::conv_ref::int_output_ref(zq, q_sum, count, z_sum, e, 0);
          }
        }
      }
    }
  }
  return y;
}

QGAN_END_FUNCTIONS
}  // namespace qgan::nn::packed
