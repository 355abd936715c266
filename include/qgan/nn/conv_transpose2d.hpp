// ConvTranspose2d, fp32 reference with PyTorch's semantics (stride, padding,
// output_padding, dilation, groups): input NCHW, weight (in, out/groups, kh, kw) as PyTorch
// stores it (output channels on axis 1), optional bias (out). It is the adjoint of conv2d
// with the same weight; per image and group one Eigen GEMM, W^T x, gives a
// (out/groups*kh*kw, H*W) matrix that col2im scatter-adds into the output.
#pragma once

#include <Eigen/Core>

#include <cstddef>

#include "qgan/core/error.hpp"
#include "qgan/nn/tensor.hpp"

namespace qgan::nn {

struct conv_transpose2d_options {
  Eigen::Index stride_h = 1;
  Eigen::Index stride_w = 1;
  Eigen::Index pad_h = 0;             ///< rows cropped from each side of the full output
  Eigen::Index pad_w = 0;             ///< columns cropped from each side
  Eigen::Index output_pad_h = 0;      ///< rows added at the bottom; < stride_h or < dilation_h
  Eigen::Index output_pad_w = 0;      ///< columns added at the right; < stride_w or < dilation_w
  Eigen::Index dilation_h = 1;
  Eigen::Index dilation_w = 1;
  Eigen::Index groups = 1;
};

// PyTorch's output extent: (in-1)*stride - 2*pad + dilation*(k-1) + output_pad + 1.
constexpr Eigen::Index conv_transpose2d_output_extent(Eigen::Index in, Eigen::Index kernel,
                                                      Eigen::Index stride, Eigen::Index pad,
                                                      Eigen::Index output_pad,
                                                      Eigen::Index dilation) {
  return (in - 1) * stride - 2 * pad + dilation * (kernel - 1) + output_pad + 1;
}

namespace detail {

inline void check_conv_transpose2d(const tensor4& x, const tensor4& weight, const tensor1* bias,
                                   const conv_transpose2d_options& o) {
  constexpr const char* layer = "conv_transpose2d";
  require_at_least(layer, "stride_h", o.stride_h, 1);
  require_at_least(layer, "stride_w", o.stride_w, 1);
  require_at_least(layer, "pad_h", o.pad_h, 0);
  require_at_least(layer, "pad_w", o.pad_w, 0);
  require_at_least(layer, "output_pad_h", o.output_pad_h, 0);
  require_at_least(layer, "output_pad_w", o.output_pad_w, 0);
  require_at_least(layer, "dilation_h", o.dilation_h, 1);
  require_at_least(layer, "dilation_w", o.dilation_w, 1);
  require_at_least(layer, "groups", o.groups, 1);
  if (o.output_pad_h >= o.stride_h && o.output_pad_h >= o.dilation_h) {
    qgan::detail::throw_error(layer, ": output_pad_h ", o.output_pad_h,
                              " must be smaller than stride_h ", o.stride_h, " or dilation_h ",
                              o.dilation_h);
  }
  if (o.output_pad_w >= o.stride_w && o.output_pad_w >= o.dilation_w) {
    qgan::detail::throw_error(layer, ": output_pad_w ", o.output_pad_w,
                              " must be smaller than stride_w ", o.stride_w, " or dilation_w ",
                              o.dilation_w);
  }
  for (std::size_t axis = 0; axis < 4; ++axis) {
    if (weight.dimension(axis) < 1) {
      qgan::detail::throw_error(layer, ": weight shape ", dims_string(weight), " has an empty axis ",
                                axis);
    }
  }
  const Eigen::Index in_channels = weight.dimension(0);
  if (in_channels % o.groups != 0) {
    qgan::detail::throw_error(layer, ": groups ", o.groups, " does not divide the ", in_channels,
                              " input channels (weight shape ", dims_string(weight), ")");
  }
  if (x.dimension(1) != in_channels) {
    qgan::detail::throw_error(layer, ": input has ", x.dimension(1), " channels but weight expects ",
                              in_channels, " (weight shape ", dims_string(weight), ", groups ",
                              o.groups, ")");
  }
  const Eigen::Index out_channels = weight.dimension(1) * o.groups;
  if (bias != nullptr && bias->dimension(0) != out_channels) {
    qgan::detail::throw_error(layer, ": bias has ", bias->dimension(0), " elements but weight has ",
                              out_channels, " output channels (weight shape ", dims_string(weight),
                              ", groups ", o.groups, ")");
  }
  if (x.dimension(2) < 1 || x.dimension(3) < 1) {
    qgan::detail::throw_error(layer, ": input shape ", dims_string(x), " has an empty spatial axis");
  }
  const Eigen::Index out_h = conv_transpose2d_output_extent(
      x.dimension(2), weight.dimension(2), o.stride_h, o.pad_h, o.output_pad_h, o.dilation_h);
  const Eigen::Index out_w = conv_transpose2d_output_extent(
      x.dimension(3), weight.dimension(3), o.stride_w, o.pad_w, o.output_pad_w, o.dilation_w);
  if (out_h < 1 || out_w < 1) {
    qgan::detail::throw_error(layer, ": output would be ", out_h, "x", out_w, " for input ",
                              dims_string(x), ", weight ", dims_string(weight), ", pad_h ", o.pad_h,
                              ", pad_w ", o.pad_w, " (padding crops more than the output holds)");
  }
}

inline tensor4 conv_transpose2d_impl(const tensor4& x, const tensor4& weight, const tensor1* bias,
                                     const conv_transpose2d_options& o) {
  using row_major = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  check_conv_transpose2d(x, weight, bias, o);
  const Eigen::Index batch = x.dimension(0);
  const Eigen::Index in_channels = x.dimension(1);
  const Eigen::Index height = x.dimension(2);
  const Eigen::Index width = x.dimension(3);
  const Eigen::Index group_in = in_channels / o.groups;
  const Eigen::Index group_out = weight.dimension(1);
  const Eigen::Index kh = weight.dimension(2);
  const Eigen::Index kw = weight.dimension(3);
  const Eigen::Index out_channels = group_out * o.groups;
  const Eigen::Index out_h =
      conv_transpose2d_output_extent(height, kh, o.stride_h, o.pad_h, o.output_pad_h, o.dilation_h);
  const Eigen::Index out_w =
      conv_transpose2d_output_extent(width, kw, o.stride_w, o.pad_w, o.output_pad_w, o.dilation_w);
  const Eigen::Index area = height * width;
  const Eigen::Index out_area = out_h * out_w;
  const Eigen::Index rows = group_out * kh * kw;  // one per (output channel, ki, kj)

  tensor4 y(batch, out_channels, out_h, out_w);
  if (y.size() == 0) return y;
  for (Eigen::Index n = 0; n < batch; ++n) {
    for (Eigen::Index c = 0; c < out_channels; ++c) {
      float* plane = y.data() + (n * out_channels + c) * out_area;
      const float b = bias != nullptr ? (*bias)(c) : 0.0f;
      for (Eigen::Index i = 0; i < out_area; ++i) plane[i] = b;
    }
  }
  row_major col(rows, area);
  for (Eigen::Index n = 0; n < batch; ++n) {
    for (Eigen::Index g = 0; g < o.groups; ++g) {
      Eigen::Map<const row_major> w(weight.data() + g * group_in * rows, group_in, rows);
      Eigen::Map<const row_major> in(x.data() + (n * in_channels + g * group_in) * area, group_in,
                                     area);
      col.noalias() = w.transpose() * in;
      // col2im: entry (c, ki, kj; ih, iw) lands on output (oh, ow) =
      // (ih*stride - pad + ki*dilation, ...) unless that falls in the cropped padding.
      for (Eigen::Index c = 0; c < group_out; ++c) {
        float* plane = y.data() + (n * out_channels + g * group_out + c) * out_area;
        for (Eigen::Index ki = 0; ki < kh; ++ki) {
          for (Eigen::Index kj = 0; kj < kw; ++kj) {
            const float* src = col.data() + ((c * kh + ki) * kw + kj) * area;
            for (Eigen::Index ih = 0; ih < height; ++ih) {
              const Eigen::Index oh = ih * o.stride_h - o.pad_h + ki * o.dilation_h;
              if (oh < 0 || oh >= out_h) continue;
              float* dst_row = plane + oh * out_w;
              const float* src_row = src + ih * width;
              for (Eigen::Index iw = 0; iw < width; ++iw) {
                const Eigen::Index ow = iw * o.stride_w - o.pad_w + kj * o.dilation_w;
                if (ow >= 0 && ow < out_w) dst_row[ow] += src_row[iw];
              }
            }
          }
        }
      }
    }
  }
  return y;
}

}  // namespace detail

// x (N, C, H, W), weight (C, O/groups, kh, kw) -> (N, O, Ho, Wo). Throws qgan::error naming
// the field when channel counts, groups, bias length, output padding or the resulting
// output size do not fit, or when an option is out of range.
inline tensor4 conv_transpose2d(const tensor4& x, const tensor4& weight,
                                const conv_transpose2d_options& options = {}) {
  return detail::conv_transpose2d_impl(x, weight, nullptr, options);
}

inline tensor4 conv_transpose2d(const tensor4& x, const tensor4& weight, const tensor1& bias,
                                const conv_transpose2d_options& options = {}) {
  return detail::conv_transpose2d_impl(x, weight, &bias, options);
}

}  // namespace qgan::nn
