// The activation tensors packed layers pass each other. 8-bit activations are x =
// scale*(q - zero_point), channel-last with each pixel's channels padded to a multiple of
// 4 (one 4-byte group per dot-product step), or, for layers with few output channels,
// "planar": 4-channel planes (n, c/4, h, w, 4), so that 16 neighbouring pixels of one
// plane are one 64-byte load. fp32 activations are channel-last (n, h, w, c).
#pragma once

#include "qgan/core/isa_namespace.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "qgan/core/error.hpp"
#include "qgan/core/uninitialized_allocator.hpp"
#include "qgan/simd/conv_ref.hpp"

namespace qgan::nn::packed {

/// Bytes every u8 buffer carries past its end: a 4-channel read of a group whose channel
/// count is not a multiple of 4 may run into the next pixel (its codes there are 0).
inline constexpr std::size_t u8_slack = 64;

constexpr std::size_t round_up(std::size_t value, std::size_t multiple) { return (value + multiple - 1) / multiple * multiple; }

struct u8_activations {
  std::size_t batch = 0, channels = 0, height = 0, width = 0;
  bool planar = false;
  float scale = 1.0f;
  std::int32_t zero_point = 0;
  std::vector<std::uint8_t, uninitialized_allocator<std::uint8_t>> data{};

  [[nodiscard]] std::size_t pixels() const { return height * width; }
  /// Channel-last: bytes per pixel. Planar: 4 (one plane's pixel).
  [[nodiscard]] std::size_t pixel_bytes() const { return planar ? 4 : round_up(channels, 4); }
  [[nodiscard]] std::size_t plane_bytes() const { return pixels() * 4; }
  [[nodiscard]] std::size_t image_bytes() const { return round_up(channels, 4) * pixels(); }
  /// Channel c of pixel p of image n.
  [[nodiscard]] std::size_t offset(std::size_t n, std::size_t c, std::size_t p) const {
    return n * image_bytes() + (planar ? (c / 4) * plane_bytes() + p * 4 + c % 4 : p * pixel_bytes() + c);
  }
  /// Sizes data for the shape (zeros, padding included).
  void allocate(std::size_t n, std::size_t c, std::size_t h, std::size_t w) {
    batch = n, channels = c, height = h, width = w;
    data.assign(n * image_bytes() + u8_slack, 0);
  }
  /// Sizes data for a layer's output, which writes every channel of every pixel itself:
  /// only what it does not write (the padding of a channel count that is not a multiple
  /// of 4, and the slack) is zeroed.
  void allocate_output(std::size_t n, std::size_t c, std::size_t h, std::size_t w) {
    if (c % 4 != 0) {
      allocate(n, c, h, w);
      return;
    }
    batch = n, channels = c, height = h, width = w;
    data.clear();
    data.resize(n * image_bytes() + u8_slack);
    std::fill(data.end() - static_cast<std::ptrdiff_t>(u8_slack), data.end(), std::uint8_t{0});
  }
};

struct f32_activations {
  std::size_t batch = 0, channels = 0, height = 0, width = 0;
  std::vector<float, uninitialized_allocator<float>> data{};  ///< (n, h, w, c)
  void allocate(std::size_t n, std::size_t c, std::size_t h, std::size_t w) {
    batch = n, channels = c, height = h, width = w;
    data.assign(n * c * h * w, 0.0f);
  }
  /// Sizes data for a layer's output, which writes every element itself: not cleared.
  void allocate_output(std::size_t n, std::size_t c, std::size_t h, std::size_t w) {
    batch = n, channels = c, height = h, width = w;
    data.clear();
    data.resize(n * c * h * w);
  }
};

/// The scale and zero point that map [low, high] (widened to hold 0) onto 0..255.
struct activation_range {
  float scale = 1.0f;
  std::int32_t zero_point = 0;
};

QGAN_BEGIN_FUNCTIONS

inline activation_range range_for(float low, float high) {
  if (!std::isfinite(low) || !std::isfinite(high) || low > high) {
    qgan::detail::throw_error("activation range [", low, ", ", high, "] is not a finite interval");
  }
  low = low < 0.0f ? low : 0.0f;
  high = high > 0.0f ? high : 0.0f;
  if (high == low) return {1.0f, 0};
  const float scale = (high - low) / 255.0f;
  const float zero = std::nearbyint(-low / scale);
  return {scale, static_cast<std::int32_t>(zero < 0.0f ? 0.0f : (zero > 255.0f ? 255.0f : zero))};
}

/// The range calibration picks for one tensor from values observed on generator runs: |x|
/// clipped at its `quantile` (element floor(quantile * n) of the sorted |x|: the sample
/// maximum grows with the sample count, a quantile does not), [-clip, clip] for a signed
/// input (the latent), [0, clip] for one that follows a ReLU. `what` starts the messages.
inline activation_range clipped_range(std::vector<float> values, bool is_signed, double quantile, std::string_view what) {
  if (values.empty()) qgan::detail::throw_error(what, " has no values to calibrate on");
  if (!(quantile > 0.0 && quantile <= 1.0)) qgan::detail::throw_error(what, ": quantile ", quantile, " is outside (0, 1]");
  for (float& x : values) {
    if (!std::isfinite(x)) qgan::detail::throw_error(what, " is not finite");
    x = std::fabs(x);
  }
  const std::size_t rank = std::min(values.size() - 1, static_cast<std::size_t>(quantile * static_cast<double>(values.size())));
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(rank), values.end());
  const float clip = std::max(values[rank], 1e-6f);
  return is_signed ? range_for(-clip, clip) : range_for(0.0f, clip);
}

/// q = clamp(round_half_even(x / scale) + zero_point, 0, 255) of NCHW floats.
inline u8_activations quantize_nchw(std::span<const float> x, std::size_t n, std::size_t c, std::size_t h,
                                    std::size_t w, activation_range range, bool planar) {
  if (x.size() != n * c * h * w) qgan::detail::throw_error("quantize_nchw: ", x.size(), " values for shape ", n, "x", c, "x", h, "x", w);
  if (!(range.scale > 0.0f) || !std::isfinite(range.scale) || range.zero_point < 0 || range.zero_point > 255) {
    qgan::detail::throw_error("quantize_nchw: scale ", range.scale, " and zero point ", range.zero_point,
                        " are not a valid 8-bit activation range");
  }
  u8_activations q;
  q.planar = planar;
  q.scale = range.scale;
  q.zero_point = range.zero_point;
  q.allocate(n, c, h, w);
  // The kernels' own requantization, so the latent rounds as every layer output does.
  simd::tile_output conversion;
  conversion.to_u8 = true;
  conversion.inverse_scale = 1.0f / range.scale;
  conversion.zero_point = range.zero_point;
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t ch = 0; ch < c; ++ch) {
      for (std::size_t p = 0; p < h * w; ++p) {
        q.data[q.offset(i, ch, p)] = simd::conv_ref::requantize_ref(x[(i * c + ch) * h * w + p], conversion);
      }
    }
  }
  return q;
}

/// Channel-last floats from NCHW.
inline f32_activations from_nchw(std::span<const float> x, std::size_t n, std::size_t c, std::size_t h, std::size_t w) {
  if (x.size() != n * c * h * w) qgan::detail::throw_error("from_nchw: ", x.size(), " values for shape ", n, "x", c, "x", h, "x", w);
  f32_activations a;
  a.allocate(n, c, h, w);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t ch = 0; ch < c; ++ch) {
      for (std::size_t p = 0; p < h * w; ++p) a.data[(i * h * w + p) * c + ch] = x[(i * c + ch) * h * w + p];
    }
  }
  return a;
}

/// NCHW floats from channel-last ones.
inline std::vector<float> to_nchw(const f32_activations& a) {
  std::vector<float> x(a.data.size());
  const std::size_t area = a.height * a.width;
  for (std::size_t i = 0; i < a.batch; ++i) {
    for (std::size_t p = 0; p < area; ++p) {
      for (std::size_t ch = 0; ch < a.channels; ++ch) x[(i * a.channels + ch) * area + p] = a.data[(i * area + p) * a.channels + ch];
    }
  }
  return x;
}

/// The real values of 8-bit activations, NCHW.
inline std::vector<float> dequantize_to_nchw(const u8_activations& q) {
  std::vector<float> x(q.batch * q.channels * q.pixels());
  for (std::size_t i = 0; i < q.batch; ++i) {
    for (std::size_t ch = 0; ch < q.channels; ++ch) {
      for (std::size_t p = 0; p < q.pixels(); ++p) {
        x[(i * q.channels + ch) * q.pixels() + p] =
            q.scale * static_cast<float>(std::int32_t{q.data[q.offset(i, ch, p)]} - q.zero_point);
      }
    }
  }
  return x;
}

QGAN_END_FUNCTIONS
}  // namespace qgan::nn::packed
