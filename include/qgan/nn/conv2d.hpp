// Conv2d, fp32 reference with PyTorch's semantics (stride, zero padding, dilation, groups):
// input NCHW, weight (out, in/groups, kh, kw), optional bias (out). It is the yardstick the
// packed-weight layers are tested against, so it favours plain correctness: per image and
// group, im2col builds a (in/groups*kh*kw, Ho*Wo) matrix and one Eigen GEMM with the
// weight's (out/groups, in/groups*kh*kw) block gives the group's output channels.
#pragma once

#include <Eigen/Core>

#include <algorithm>
#include <cstddef>

#include "qgan/core/error.hpp"
#include "qgan/nn/tensor.hpp"

namespace qgan::nn {

struct conv2d_options {
  Eigen::Index stride_h = 1;
  Eigen::Index stride_w = 1;
  Eigen::Index pad_h = 0;  ///< zeros added above and below
  Eigen::Index pad_w = 0;  ///< zeros added left and right
  Eigen::Index dilation_h = 1;
  Eigen::Index dilation_w = 1;
  Eigen::Index groups = 1;
};

// PyTorch's output extent: floor((in + 2*pad - dilation*(k-1) - 1) / stride) + 1.
constexpr Eigen::Index conv2d_output_extent(Eigen::Index in, Eigen::Index kernel,
                                            Eigen::Index stride, Eigen::Index pad,
                                            Eigen::Index dilation) {
  return (in + 2 * pad - dilation * (kernel - 1) - 1) / stride + 1;
}

namespace detail {

inline void check_conv2d(const tensor4& x, const tensor4& weight, const tensor1* bias,
                         const conv2d_options& o) {
  require_at_least("conv2d", "stride_h", o.stride_h, 1);
  require_at_least("conv2d", "stride_w", o.stride_w, 1);
  require_at_least("conv2d", "pad_h", o.pad_h, 0);
  require_at_least("conv2d", "pad_w", o.pad_w, 0);
  require_at_least("conv2d", "dilation_h", o.dilation_h, 1);
  require_at_least("conv2d", "dilation_w", o.dilation_w, 1);
  require_at_least("conv2d", "groups", o.groups, 1);
  for (std::size_t axis = 0; axis < 4; ++axis) {
    if (weight.dimension(axis) < 1) {
      qgan::detail::throw_error("conv2d: weight shape ", dims_string(weight), " has an empty axis ",
                                axis);
    }
  }
  const Eigen::Index out_channels = weight.dimension(0);
  if (out_channels % o.groups != 0) {
    qgan::detail::throw_error("conv2d: groups ", o.groups, " does not divide the ", out_channels,
                              " output channels (weight shape ", dims_string(weight), ")");
  }
  if (x.dimension(1) != weight.dimension(1) * o.groups) {
    qgan::detail::throw_error("conv2d: input has ", x.dimension(1), " channels but weight expects ",
                              weight.dimension(1) * o.groups, " (weight shape ", dims_string(weight),
                              ", groups ", o.groups, ")");
  }
  if (bias != nullptr && bias->dimension(0) != out_channels) {
    qgan::detail::throw_error("conv2d: bias has ", bias->dimension(0), " elements but weight has ",
                              out_channels, " output channels (weight shape ", dims_string(weight),
                              ")");
  }
  const Eigen::Index span_h = o.dilation_h * (weight.dimension(2) - 1) + 1;
  const Eigen::Index span_w = o.dilation_w * (weight.dimension(3) - 1) + 1;
  if (span_h > x.dimension(2) + 2 * o.pad_h) {
    qgan::detail::throw_error("conv2d: kernel height ", weight.dimension(2), " (dilation ",
                              o.dilation_h, ") spans ", span_h, " rows but the padded input has ",
                              x.dimension(2) + 2 * o.pad_h, " (height ", x.dimension(2), ", pad_h ",
                              o.pad_h, ")");
  }
  if (span_w > x.dimension(3) + 2 * o.pad_w) {
    qgan::detail::throw_error("conv2d: kernel width ", weight.dimension(3), " (dilation ",
                              o.dilation_w, ") spans ", span_w, " columns but the padded input has ",
                              x.dimension(3) + 2 * o.pad_w, " (width ", x.dimension(3), ", pad_w ",
                              o.pad_w, ")");
  }
}

inline tensor4 conv2d_impl(const tensor4& x, const tensor4& weight, const tensor1* bias,
                           const conv2d_options& o) {
  using row_major = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  check_conv2d(x, weight, bias, o);
  const Eigen::Index batch = x.dimension(0);
  const Eigen::Index in_channels = x.dimension(1);
  const Eigen::Index height = x.dimension(2);
  const Eigen::Index width = x.dimension(3);
  const Eigen::Index out_channels = weight.dimension(0);
  const Eigen::Index group_in = weight.dimension(1);
  const Eigen::Index kh = weight.dimension(2);
  const Eigen::Index kw = weight.dimension(3);
  const Eigen::Index group_out = out_channels / o.groups;
  const Eigen::Index out_h = conv2d_output_extent(height, kh, o.stride_h, o.pad_h, o.dilation_h);
  const Eigen::Index out_w = conv2d_output_extent(width, kw, o.stride_w, o.pad_w, o.dilation_w);
  const Eigen::Index out_area = out_h * out_w;
  const Eigen::Index depth = group_in * kh * kw;  // GEMM reduction length

  tensor4 y(batch, out_channels, out_h, out_w);
  if (y.size() == 0) return y;
  row_major col(depth, out_area);
  for (Eigen::Index n = 0; n < batch; ++n) {
    for (Eigen::Index g = 0; g < o.groups; ++g) {
      // im2col: row (c, ki, kj), column (oh, ow) holds x[n, g*group_in + c, ih, iw], or 0
      // where (ih, iw) = (oh*stride - pad + ki*dilation, ...) falls in the padding.
      for (Eigen::Index c = 0; c < group_in; ++c) {
        const float* plane = x.data() + ((n * in_channels + g * group_in + c) * height) * width;
        for (Eigen::Index ki = 0; ki < kh; ++ki) {
          for (Eigen::Index kj = 0; kj < kw; ++kj) {
            float* dst = col.data() + ((c * kh + ki) * kw + kj) * out_area;
            for (Eigen::Index oh = 0; oh < out_h; ++oh) {
              const Eigen::Index ih = oh * o.stride_h - o.pad_h + ki * o.dilation_h;
              float* dst_row = dst + oh * out_w;
              if (ih < 0 || ih >= height) {
                std::fill(dst_row, dst_row + out_w, 0.0f);
                continue;
              }
              const float* src_row = plane + ih * width;
              for (Eigen::Index ow = 0; ow < out_w; ++ow) {
                const Eigen::Index iw = ow * o.stride_w - o.pad_w + kj * o.dilation_w;
                dst_row[ow] = (iw >= 0 && iw < width) ? src_row[iw] : 0.0f;
              }
            }
          }
        }
      }
      Eigen::Map<const row_major> w(weight.data() + g * group_out * depth, group_out, depth);
      Eigen::Map<row_major> out(y.data() + (n * out_channels + g * group_out) * out_area,
                                group_out, out_area);
      out.noalias() = w * col;
    }
    if (bias != nullptr) {
      for (Eigen::Index c = 0; c < out_channels; ++c) {
        float* plane = y.data() + (n * out_channels + c) * out_area;
        const float b = (*bias)(c);
        for (Eigen::Index i = 0; i < out_area; ++i) plane[i] += b;
      }
    }
  }
  return y;
}

}  // namespace detail

// x (N, C, H, W), weight (O, C/groups, kh, kw) -> (N, O, Ho, Wo). Throws qgan::error naming
// the field when channel counts, groups, bias length or the (dilated) kernel against the
// padded input do not fit, or when an option is out of range.
inline tensor4 conv2d(const tensor4& x, const tensor4& weight, const conv2d_options& options = {}) {
  return detail::conv2d_impl(x, weight, nullptr, options);
}

inline tensor4 conv2d(const tensor4& x, const tensor4& weight, const tensor1& bias,
                      const conv2d_options& options = {}) {
  return detail::conv2d_impl(x, weight, &bias, options);
}

}  // namespace qgan::nn
