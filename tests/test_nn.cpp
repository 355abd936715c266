// fp32 reference layers (qgan/nn): hand-computed cases, naive direct loops written from the
// PyTorch definitions, the conv / transposed-conv adjoint identity, BatchNorm folding, a
// golden file written by PyTorch (tests/data/nn/make_nn_golden.py) and shape errors.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <filesystem>
#include <initializer_list>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "qgan/core/error.hpp"
#include "qgan/io/safetensors.hpp"
#include "qgan/nn/activations.hpp"
#include "qgan/nn/batch_norm.hpp"
#include "qgan/nn/conv2d.hpp"
#include "qgan/nn/conv_transpose2d.hpp"
#include "qgan/nn/linear.hpp"

namespace {

using qgan::nn::tensor1;
using qgan::nn::tensor2;
using qgan::nn::tensor4;
using Catch::Matchers::Contains;
using Index = Eigen::Index;

tensor4 make4(Index n, Index c, Index h, Index w, std::initializer_list<float> values) {
  tensor4 t(n, c, h, w);
  REQUIRE(static_cast<Index>(values.size()) == t.size());
  std::copy(values.begin(), values.end(), t.data());
  return t;
}

tensor1 make1(std::initializer_list<float> values) {
  tensor1 t(static_cast<Index>(values.size()));
  std::copy(values.begin(), values.end(), t.data());
  return t;
}

std::vector<float> values_of(const tensor4& t) { return {t.data(), t.data() + t.size()}; }

template <class TensorType>
float max_abs_diff(const TensorType& a, const TensorType& b) {
  REQUIRE(a.dimensions() == b.dimensions());
  float worst = 0.0f;
  for (Index i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a.data()[i] - b.data()[i]));
  return worst;
}

template <class TensorType>
void fill_random(TensorType& t, std::mt19937& rng, float low = -1.0f, float high = 1.0f) {
  std::uniform_real_distribution<float> dist(low, high);
  for (Index i = 0; i < t.size(); ++i) t.data()[i] = dist(rng);
}

// Conv2d straight from PyTorch's definition:
// y[n,o,oh,ow] = b[o] + sum_{c<C/g, ki, kj} w[o,c,ki,kj] * x[n, g(o)*C/g + c,
//                oh*s - p + ki*d, ow*s - p + kj*d]   (zero outside the input).
tensor4 conv2d_naive(const tensor4& x, const tensor4& w, const tensor1* b,
                     const qgan::nn::conv2d_options& o) {
  const Index out_c = w.dimension(0), group_in = w.dimension(1);
  const Index kh = w.dimension(2), kw = w.dimension(3);
  const Index out_h = (x.dimension(2) + 2 * o.pad_h - o.dilation_h * (kh - 1) - 1) / o.stride_h + 1;
  const Index out_w = (x.dimension(3) + 2 * o.pad_w - o.dilation_w * (kw - 1) - 1) / o.stride_w + 1;
  const Index group_out = out_c / o.groups;
  tensor4 y(x.dimension(0), out_c, out_h, out_w);
  for (Index n = 0; n < x.dimension(0); ++n)
    for (Index oc = 0; oc < out_c; ++oc)
      for (Index oh = 0; oh < out_h; ++oh)
        for (Index ow = 0; ow < out_w; ++ow) {
          double sum = b != nullptr ? (*b)(oc) : 0.0;
          for (Index c = 0; c < group_in; ++c)
            for (Index ki = 0; ki < kh; ++ki)
              for (Index kj = 0; kj < kw; ++kj) {
                const Index ih = oh * o.stride_h - o.pad_h + ki * o.dilation_h;
                const Index iw = ow * o.stride_w - o.pad_w + kj * o.dilation_w;
                if (ih < 0 || ih >= x.dimension(2) || iw < 0 || iw >= x.dimension(3)) continue;
                sum += static_cast<double>(w(oc, c, ki, kj)) *
                       static_cast<double>(x(n, (oc / group_out) * group_in + c, ih, iw));
              }
          y(n, oc, oh, ow) = static_cast<float>(sum);
        }
  return y;
}

// ConvTranspose2d straight from PyTorch's definition (the gradient of conv2d): every input
// x[n,i,ih,iw] adds x * w[i,j,ki,kj] to y[n, g(i)*O/g + j, ih*s - p + ki*d, iw*s - p + kj*d],
// dropped where that falls outside the (cropped, output-padded) output.
tensor4 conv_transpose2d_naive(const tensor4& x, const tensor4& w, const tensor1* b,
                               const qgan::nn::conv_transpose2d_options& o) {
  const Index in_c = w.dimension(0), group_out = w.dimension(1);
  const Index kh = w.dimension(2), kw = w.dimension(3);
  const Index out_h = (x.dimension(2) - 1) * o.stride_h - 2 * o.pad_h + o.dilation_h * (kh - 1) +
                      o.output_pad_h + 1;
  const Index out_w = (x.dimension(3) - 1) * o.stride_w - 2 * o.pad_w + o.dilation_w * (kw - 1) +
                      o.output_pad_w + 1;
  const Index group_in = in_c / o.groups;
  const Index out_c = group_out * o.groups;
  std::vector<double> acc(static_cast<std::size_t>(x.dimension(0) * out_c * out_h * out_w), 0.0);
  const auto at = [&](Index n, Index c, Index h, Index ww) -> double& {
    return acc[static_cast<std::size_t>(((n * out_c + c) * out_h + h) * out_w + ww)];
  };
  for (Index n = 0; n < x.dimension(0); ++n)
    for (Index i = 0; i < in_c; ++i)
      for (Index ih = 0; ih < x.dimension(2); ++ih)
        for (Index iw = 0; iw < x.dimension(3); ++iw)
          for (Index j = 0; j < group_out; ++j)
            for (Index ki = 0; ki < kh; ++ki)
              for (Index kj = 0; kj < kw; ++kj) {
                const Index oh = ih * o.stride_h - o.pad_h + ki * o.dilation_h;
                const Index ow = iw * o.stride_w - o.pad_w + kj * o.dilation_w;
                if (oh < 0 || oh >= out_h || ow < 0 || ow >= out_w) continue;
                at(n, (i / group_in) * group_out + j, oh, ow) +=
                    static_cast<double>(x(n, i, ih, iw)) * static_cast<double>(w(i, j, ki, kj));
              }
  tensor4 y(x.dimension(0), out_c, out_h, out_w);
  for (Index n = 0; n < x.dimension(0); ++n)
    for (Index c = 0; c < out_c; ++c)
      for (Index h = 0; h < out_h; ++h)
        for (Index ww = 0; ww < out_w; ++ww)
          y(n, c, h, ww) = static_cast<float>(at(n, c, h, ww) + (b != nullptr ? (*b)(c) : 0.0f));
  return y;
}

qgan::nn::batch_norm2d_params random_bn(Index channels, std::mt19937& rng) {
  qgan::nn::batch_norm2d_params bn{tensor1(channels), tensor1(channels), tensor1(channels),
                                   tensor1(channels)};
  fill_random(bn.running_mean, rng);
  fill_random(bn.running_var, rng, 0.5f, 1.5f);
  fill_random(bn.weight, rng);
  fill_random(bn.bias, rng);
  return bn;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Hand-computed cases. x = [[1,2,3],[4,5,6],[7,8,9]], w = [[1,2],[3,4]] unless stated.

TEST_CASE("conv2d: hand-computed 3x3 input, 2x2 kernel", "[nn]") {
  const tensor4 x = make4(1, 1, 3, 3, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  const tensor4 w = make4(1, 1, 2, 2, {1, 2, 3, 4});

  SECTION("stride 1, bias 0.5") {
    // y(0,0) = 1*1 + 2*2 + 3*4 + 4*5 = 37; then 2+6+15+24 = 47; 4+10+21+32 = 67; 5+12+24+36 = 77
    const tensor4 y = qgan::nn::conv2d(x, w, make1({0.5f}));
    REQUIRE(y.dimensions() == tensor4::Dimensions(1, 1, 2, 2));
    CHECK(values_of(y) == std::vector<float>{37.5f, 47.5f, 67.5f, 77.5f});
  }
  SECTION("stride 2, padding 1") {
    // Output floor((3 + 2 - 1 - 1) / 2) + 1 = 2; window rows/cols start at 2*o - 1.
    // (0,0): only x(0,0)*w(1,1) = 4. (0,1): x(0,1)*w(1,0) + x(0,2)*w(1,1) = 6 + 12 = 18.
    // (1,0): x(1,0)*w(0,1) + x(2,0)*w(1,1) = 8 + 28 = 36. (1,1): 5 + 12 + 24 + 36 = 77.
    const tensor4 y = qgan::nn::conv2d(x, w, {.stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1});
    REQUIRE(y.dimensions() == tensor4::Dimensions(1, 1, 2, 2));
    CHECK(values_of(y) == std::vector<float>{4, 18, 36, 77});
  }
  SECTION("dilation 2") {
    // The kernel taps the corners: 1*1 + 2*3 + 3*7 + 4*9 = 64.
    const tensor4 y = qgan::nn::conv2d(x, w, {.dilation_h = 2, .dilation_w = 2});
    REQUIRE(y.dimensions() == tensor4::Dimensions(1, 1, 1, 1));
    CHECK(y(0, 0, 0, 0) == 64.0f);
  }
  SECTION("groups 2 keep channels apart") {
    // Channel 0 [[1,2],[3,4]] meets identity [[1,0],[0,1]]: 1 + 4 = 5.
    // Channel 1 [[5,6],[7,8]] meets ones: 26.
    const tensor4 x2 = make4(1, 2, 2, 2, {1, 2, 3, 4, 5, 6, 7, 8});
    const tensor4 w2 = make4(2, 1, 2, 2, {1, 0, 0, 1, 1, 1, 1, 1});
    const tensor4 y = qgan::nn::conv2d(x2, w2, {.groups = 2});
    REQUIRE(y.dimensions() == tensor4::Dimensions(1, 2, 1, 1));
    CHECK(values_of(y) == std::vector<float>{5, 26});
  }
}

TEST_CASE("conv_transpose2d: hand-computed 2x2 input, 2x2 kernel", "[nn]") {
  const tensor4 x = make4(1, 1, 2, 2, {1, 2, 3, 4});
  const tensor4 w = make4(1, 1, 2, 2, {1, 2, 3, 4});

  SECTION("stride 1: the full convolution") {
    // y[i+ki][j+kj] += x[i][j] * w[ki][kj]: centre 1*4 + 2*3 + 3*2 + 4*1 = 20, etc.
    const tensor4 y = qgan::nn::conv_transpose2d(x, w);
    REQUIRE(y.dimensions() == tensor4::Dimensions(1, 1, 3, 3));
    CHECK(values_of(y) == std::vector<float>{1, 4, 4, 6, 20, 16, 9, 24, 16});
  }
  SECTION("stride 2: non-overlapping copies of w scaled by x") {
    // (2-1)*2 + 1*(2-1) + 1 = 4: blocks x(i,j) * w at rows 2i.., cols 2j..
    const tensor4 y = qgan::nn::conv_transpose2d(x, w, make1({-1.0f}), {.stride_h = 2, .stride_w = 2});
    REQUIRE(y.dimensions() == tensor4::Dimensions(1, 1, 4, 4));
    CHECK(values_of(y) == std::vector<float>{0, 1, 1, 3, 2, 3, 5, 7, 2, 5, 3, 7, 8, 11, 11, 15});
  }
  SECTION("stride 2, padding 1 crops one row and column on each side") {
    // Full 4x4 is [[1,2,2,4],[3,4,6,8],[3,6,4,8],[9,12,12,16]]; size (2-1)*2 - 2 + 1 + 1 = 2.
    const tensor4 y =
        qgan::nn::conv_transpose2d(x, w, {.stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1});
    REQUIRE(y.dimensions() == tensor4::Dimensions(1, 1, 2, 2));
    CHECK(values_of(y) == std::vector<float>{4, 6, 6, 4});
  }
  SECTION("stride 2, padding 1, output_padding 1 keeps the last row and column") {
    const tensor4 y = qgan::nn::conv_transpose2d(
        x, w,
        {.stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1, .output_pad_h = 1, .output_pad_w = 1});
    REQUIRE(y.dimensions() == tensor4::Dimensions(1, 1, 3, 3));
    CHECK(values_of(y) == std::vector<float>{4, 6, 8, 6, 4, 8, 12, 12, 16});
  }
  SECTION("groups 2 keep channels apart") {
    // Input [3, 5] (1x1 each), weight (2, 1, 2, 2): channel 0 = 3*[[1,2],[3,4]],
    // channel 1 = 5*[[-1,0],[0,1]].
    const tensor4 x2 = make4(1, 2, 1, 1, {3, 5});
    const tensor4 w2 = make4(2, 1, 2, 2, {1, 2, 3, 4, -1, 0, 0, 1});
    const tensor4 y = qgan::nn::conv_transpose2d(x2, w2, {.groups = 2});
    REQUIRE(y.dimensions() == tensor4::Dimensions(1, 2, 2, 2));
    CHECK(values_of(y) == std::vector<float>{3, 6, 9, 12, -5, 0, 0, 5});
  }
}

TEST_CASE("linear: hand-computed", "[nn]") {
  tensor2 x(2, 3);
  x.setValues({{1, 2, 3}, {4, 5, 6}});
  tensor2 w(2, 3);
  w.setValues({{1, 0, -1}, {0.5f, 0.5f, 0.5f}});
  // Row 0: 1 - 3 + 10 = 8 and 3 - 1 = 2; row 1: 4 - 6 + 10 = 8 and 7.5 - 1 = 6.5.
  const tensor2 y = qgan::nn::linear(x, w, make1({10, -1}));
  REQUIRE(y.dimensions() == tensor2::Dimensions(2, 2));
  CHECK(y(0, 0) == 8.0f);
  CHECK(y(0, 1) == 2.0f);
  CHECK(y(1, 0) == 8.0f);
  CHECK(y(1, 1) == 6.5f);
  const tensor2 no_bias = qgan::nn::linear(x, w);
  CHECK(no_bias(1, 1) == 7.5f);
}

TEST_CASE("batch_norm2d: hand-computed eval mode", "[nn]") {
  // Channel 0: mean 2, var 4 (std 2), gamma 1, beta 0: [1, 3] -> [-0.5, 0.5].
  // Channel 1: mean 1, var 1, gamma 2, beta 1: [0, 4] -> [-1, 7]. eps 0 keeps it exact.
  const qgan::nn::batch_norm2d_params bn{make1({2, 1}), make1({4, 1}), make1({1, 2}),
                                         make1({0, 1}), 0.0f};
  const tensor4 y = qgan::nn::batch_norm2d(make4(1, 2, 1, 2, {1, 3, 0, 4}), bn);
  CHECK(values_of(y) == std::vector<float>{-0.5f, 0.5f, -1.0f, 7.0f});
}

TEST_CASE("activations", "[nn]") {
  const tensor4 x = make4(1, 1, 1, 6, {-100, -2, -0.5f, 0, 1.5f, 100});
  CHECK(values_of(qgan::nn::relu(x)) == std::vector<float>{0, 0, 0, 0, 1.5f, 100});
  CHECK(values_of(qgan::nn::leaky_relu(x, 0.25f)) ==
        std::vector<float>{-25, -0.5f, -0.125f, 0, 1.5f, 100});
  CHECK(qgan::nn::leaky_relu(x)(0, 0, 0, 1) == Approx(-0.02f));
  const tensor4 t = qgan::nn::tanh(x);
  const tensor4 s = qgan::nn::sigmoid(x);
  for (Index i = 0; i < x.size(); ++i) {
    const double v = x.data()[i];
    CHECK(t.data()[i] == Approx(std::tanh(v)).margin(1e-7));
    CHECK(s.data()[i] == Approx(1.0 / (1.0 + std::exp(-v))).margin(1e-7));
    CHECK(std::isfinite(s.data()[i]));
  }
  CHECK(s(0, 0, 0, 3) == 0.5f);
  CHECK(t(0, 0, 0, 3) == 0.0f);
  // Any rank works; the input is rewritten when moved in.
  tensor2 m(1, 2);
  m.setValues({{-1, 2}});
  const tensor2 r = qgan::nn::relu(std::move(m));
  CHECK(r(0, 0) == 0.0f);
  CHECK(r(0, 1) == 2.0f);
}

// ---------------------------------------------------------------------------------------
// im2col / col2im against the direct loops.

namespace {

struct conv_case {
  Index n, c, h, w, o, kh, kw, stride, pad, dilation, groups, output_pad;
};

std::string describe(const conv_case& k) {
  std::ostringstream text;
  text << "N" << k.n << " C" << k.c << " H" << k.h << " W" << k.w << " O" << k.o << " k" << k.kh
       << "x" << k.kw << " stride " << k.stride << " pad " << k.pad << " dilation " << k.dilation
       << " groups " << k.groups << " output_pad " << k.output_pad;
  return text.str();
}

}  // namespace

TEST_CASE("conv2d and conv_transpose2d match the direct loops", "[nn]") {
  const conv_case k = GENERATE(values<conv_case>({
      {1, 1, 5, 5, 1, 3, 3, 1, 0, 1, 1, 0},
      {2, 3, 7, 9, 5, 3, 3, 2, 1, 1, 1, 1},
      {1, 4, 8, 8, 6, 4, 4, 2, 1, 1, 2, 0},   // DCGAN's 4/2/1, grouped
      {2, 4, 9, 7, 4, 3, 2, 1, 2, 2, 2, 1},   // dilation 2, padding 2, groups 2
      {1, 6, 11, 10, 9, 5, 3, 3, 2, 2, 3, 2},
      {3, 2, 1, 1, 3, 1, 1, 1, 0, 1, 1, 0},   // 1x1 image, 1x1 kernel
      {1, 8, 6, 5, 8, 3, 3, 2, 1, 1, 8, 1},   // depthwise
      {2, 5, 13, 4, 7, 2, 3, 1, 1, 1, 1, 0},
  }));
  INFO(describe(k));
  std::mt19937 rng(static_cast<unsigned>(k.c * 131 + k.h * 17 + k.groups));
  const bool with_bias = (k.h % 2) == 1;

  // Conv2d: x (n, c, h, w), weight (o, c/groups, kh, kw).
  tensor4 x(k.n, k.c, k.h, k.w);
  tensor4 w(k.o, k.c / k.groups, k.kh, k.kw);
  tensor1 b(k.o);
  fill_random(x, rng);
  fill_random(w, rng);
  fill_random(b, rng);
  const qgan::nn::conv2d_options co{.stride_h = k.stride, .stride_w = k.stride, .pad_h = k.pad,
                                    .pad_w = k.pad, .dilation_h = k.dilation,
                                    .dilation_w = k.dilation, .groups = k.groups};
  if (k.dilation * (k.kh - 1) + 1 <= k.h + 2 * k.pad && k.dilation * (k.kw - 1) + 1 <= k.w + 2 * k.pad) {
    const tensor4 fast = with_bias ? qgan::nn::conv2d(x, w, b, co) : qgan::nn::conv2d(x, w, co);
    const tensor4 slow = conv2d_naive(x, w, with_bias ? &b : nullptr, co);
    const auto depth = static_cast<float>(w.dimension(1) * k.kh * k.kw);
    CHECK(max_abs_diff(fast, slow) <= 1e-5f * depth);
  }

  // ConvTranspose2d: x (n, c, h, w), weight (c, o/groups, kh, kw).
  tensor4 wt(k.c, k.o / k.groups, k.kh, k.kw);
  fill_random(wt, rng);
  const qgan::nn::conv_transpose2d_options to{
      .stride_h = k.stride, .stride_w = k.stride, .pad_h = k.pad, .pad_w = k.pad,
      .output_pad_h = k.output_pad, .output_pad_w = k.output_pad, .dilation_h = k.dilation,
      .dilation_w = k.dilation, .groups = k.groups};
  const tensor4 fast = with_bias ? qgan::nn::conv_transpose2d(x, wt, b, to)
                                 : qgan::nn::conv_transpose2d(x, wt, to);
  const tensor4 slow = conv_transpose2d_naive(x, wt, with_bias ? &b : nullptr, to);
  REQUIRE(fast.dimension(2) == qgan::nn::conv_transpose2d_output_extent(k.h, k.kh, k.stride, k.pad,
                                                                         k.output_pad, k.dilation));
  const auto depth = static_cast<float>((k.c / k.groups) * k.kh * k.kw);
  CHECK(max_abs_diff(fast, slow) <= 1e-5f * depth);
}

TEST_CASE("conv_transpose2d is the adjoint of conv2d", "[nn]") {
  // <conv2d(x, W), y> == <x, conv_transpose2d(y, W)> for the same weight tensor: conv2d's
  // (O, C/g, kh, kw) is conv_transpose2d's (in = O, out/g = C/g, kh, kw).
  const Index stride = GENERATE(1, 2);
  const Index groups = GENERATE(1, 2);
  const Index dilation = GENERATE(1, 2);
  INFO("stride " << stride << " groups " << groups << " dilation " << dilation);
  const Index n = 2, c = 4, h = 9, wd = 8, o = 6, kh = 3, kw = 4, pad = 1;
  std::mt19937 rng(static_cast<unsigned>(stride * 10 + groups + dilation * 100));
  tensor4 x(n, c, h, wd);
  tensor4 w(o, c / groups, kh, kw);
  fill_random(x, rng);
  fill_random(w, rng);
  const qgan::nn::conv2d_options co{.stride_h = stride, .stride_w = stride, .pad_h = pad,
                                    .pad_w = pad, .dilation_h = dilation, .dilation_w = dilation,
                                    .groups = groups};
  const tensor4 cx = qgan::nn::conv2d(x, w, co);
  tensor4 y(cx.dimensions());
  fill_random(y, rng);
  // output_padding restores the rows and columns the strided conv2d skipped.
  const Index op_h = (h + 2 * pad - dilation * (kh - 1) - 1) % stride;
  const Index op_w = (wd + 2 * pad - dilation * (kw - 1) - 1) % stride;
  const qgan::nn::conv_transpose2d_options to{
      .stride_h = stride, .stride_w = stride, .pad_h = pad, .pad_w = pad, .output_pad_h = op_h,
      .output_pad_w = op_w, .dilation_h = dilation, .dilation_w = dilation, .groups = groups};
  const tensor4 ty = qgan::nn::conv_transpose2d(y, w, to);
  REQUIRE(ty.dimensions() == x.dimensions());
  double lhs = 0, rhs = 0, scale = 0;
  for (Index i = 0; i < cx.size(); ++i) {
    lhs += static_cast<double>(cx.data()[i]) * static_cast<double>(y.data()[i]);
    scale += std::abs(static_cast<double>(cx.data()[i]) * static_cast<double>(y.data()[i]));
  }
  for (Index i = 0; i < x.size(); ++i) {
    rhs += static_cast<double>(x.data()[i]) * static_cast<double>(ty.data()[i]);
  }
  CHECK(std::abs(lhs - rhs) <= 1e-5 * scale);
}

TEST_CASE("BatchNorm folding equals conv then BatchNorm", "[nn]") {
  std::mt19937 rng(7);
  const Index groups = GENERATE(1, 2);
  const bool with_bias = GENERATE(false, true);
  INFO("groups " << groups << " conv bias " << with_bias);
  tensor4 x(2, 4, 7, 6);
  fill_random(x, rng);
  tensor1 b(6);
  fill_random(b, rng);

  SECTION("Conv2d: scaled along axis 0") {
    tensor4 w(6, 4 / groups, 3, 3);
    fill_random(w, rng, -0.5f, 0.5f);
    const auto bn = random_bn(6, rng);
    const qgan::nn::conv2d_options co{.stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1,
                                      .groups = groups};
    const tensor4 ref = qgan::nn::batch_norm2d(
        with_bias ? qgan::nn::conv2d(x, w, b, co) : qgan::nn::conv2d(x, w, co), bn);
    const auto folded = with_bias ? qgan::nn::fold_batch_norm_conv2d(w, b, bn)
                                  : qgan::nn::fold_batch_norm_conv2d(w, bn);
    CHECK(max_abs_diff(qgan::nn::conv2d(x, folded.weight, folded.bias, co), ref) <= 1e-5f);
  }
  SECTION("ConvTranspose2d: scaled along axis 1, the output channels") {
    tensor4 w(4, 6 / groups, 4, 4);
    fill_random(w, rng, -0.5f, 0.5f);
    const auto bn = random_bn(6, rng);
    const qgan::nn::conv_transpose2d_options to{.stride_h = 2, .stride_w = 2, .pad_h = 1,
                                                .pad_w = 1, .groups = groups};
    const tensor4 ref = qgan::nn::batch_norm2d(
        with_bias ? qgan::nn::conv_transpose2d(x, w, b, to) : qgan::nn::conv_transpose2d(x, w, to),
        bn);
    const auto folded = with_bias ? qgan::nn::fold_batch_norm_conv_transpose2d(w, b, bn, groups)
                                  : qgan::nn::fold_batch_norm_conv_transpose2d(w, bn, groups);
    CHECK(max_abs_diff(qgan::nn::conv_transpose2d(x, folded.weight, folded.bias, to), ref) <=
          1e-5f);
  }
}

// ---------------------------------------------------------------------------------------
// Golden outputs from PyTorch 1.13 (tests/data/nn/make_nn_golden.py; options repeated here).

namespace {

tensor4 load4(const qgan::io::safetensors_file& file, const std::string& name) {
  const auto& view = file.at(name);
  REQUIRE(view.shape.size() == 4);
  tensor4 t(view.shape[0], view.shape[1], view.shape[2], view.shape[3]);
  const std::vector<float> values = file.read_float(name);
  std::copy(values.begin(), values.end(), t.data());
  return t;
}

tensor2 load2(const qgan::io::safetensors_file& file, const std::string& name) {
  const auto& view = file.at(name);
  REQUIRE(view.shape.size() == 2);
  tensor2 t(view.shape[0], view.shape[1]);
  const std::vector<float> values = file.read_float(name);
  std::copy(values.begin(), values.end(), t.data());
  return t;
}

tensor1 load1(const qgan::io::safetensors_file& file, const std::string& name) {
  const auto& view = file.at(name);
  REQUIRE(view.shape.size() == 1);
  tensor1 t(view.shape[0]);
  const std::vector<float> values = file.read_float(name);
  std::copy(values.begin(), values.end(), t.data());
  return t;
}

}  // namespace

TEST_CASE("layers match PyTorch golden outputs", "[nn]") {
  const auto file = qgan::io::safetensors_file::open(std::filesystem::path(QGAN_TEST_DATA_DIR) /
                                                     "nn" / "nn_golden.safetensors");
  SECTION("Conv2d(4, 6, 3, stride 2, padding 1, groups 2) with bias") {
    const tensor4 y = qgan::nn::conv2d(
        load4(file, "conv_a.x"), load4(file, "conv_a.weight"), load1(file, "conv_a.bias"),
        {.stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1, .groups = 2});
    CHECK(max_abs_diff(y, load4(file, "conv_a.y")) <= 1e-5f);
  }
  SECTION("Conv2d(3, 4, (3, 2), stride (1, 2), padding (2, 1), dilation 2)") {
    const tensor4 y = qgan::nn::conv2d(load4(file, "conv_b.x"), load4(file, "conv_b.weight"),
                                       {.stride_h = 1, .stride_w = 2, .pad_h = 2, .pad_w = 1,
                                        .dilation_h = 2, .dilation_w = 2});
    CHECK(max_abs_diff(y, load4(file, "conv_b.y")) <= 1e-5f);
  }
  SECTION("ConvTranspose2d(8, 4, 4, stride 2, padding 1), DCGAN's upsampling") {
    const tensor4 y = qgan::nn::conv_transpose2d(
        load4(file, "convt_a.x"), load4(file, "convt_a.weight"),
        {.stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1});
    CHECK(max_abs_diff(y, load4(file, "convt_a.y")) <= 1e-5f);
  }
  SECTION("ConvTranspose2d(4, 6, 3, stride 2, padding 1, output_padding 1, groups 2, dilation 2)") {
    const tensor4 y = qgan::nn::conv_transpose2d(
        load4(file, "convt_b.x"), load4(file, "convt_b.weight"), load1(file, "convt_b.bias"),
        {.stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1, .output_pad_h = 1,
         .output_pad_w = 1, .dilation_h = 2, .dilation_w = 2, .groups = 2});
    CHECK(max_abs_diff(y, load4(file, "convt_b.y")) <= 1e-5f);
  }
  SECTION("Linear(10, 7)") {
    const tensor2 y = qgan::nn::linear(load2(file, "linear.x"), load2(file, "linear.weight"),
                                       load1(file, "linear.bias"));
    CHECK(max_abs_diff(y, load2(file, "linear.y")) <= 1e-5f);
  }
  SECTION("BatchNorm2d(6), eval") {
    const qgan::nn::batch_norm2d_params bn{load1(file, "bn.running_mean"),
                                           load1(file, "bn.running_var"), load1(file, "bn.weight"),
                                           load1(file, "bn.bias")};
    const tensor4 y = qgan::nn::batch_norm2d(load4(file, "bn.x"), bn);
    CHECK(max_abs_diff(y, load4(file, "bn.y")) <= 1e-5f);
  }
}

// ---------------------------------------------------------------------------------------
// Shape errors name the layer and the field.

TEST_CASE("bad shapes and options throw qgan::error naming the field", "[nn]") {
  SECTION("conv2d") {
    const tensor4 x(1, 3, 5, 5);
    const tensor4 w(8, 2, 3, 3);
    REQUIRE_THROWS_WITH(qgan::nn::conv2d(x, w, {.groups = 2}),
                        "conv2d: input has 3 channels but weight expects 4 (weight shape "
                        "[8,2,3,3], groups 2)");
    REQUIRE_THROWS_AS(qgan::nn::conv2d(x, w, {.groups = 2}), qgan::error);
    REQUIRE_THROWS_WITH(qgan::nn::conv2d(tensor4(1, 6, 5, 5), tensor4(7, 2, 3, 3), {.groups = 3}),
                        Contains("conv2d: groups 3 does not divide the 7 output channels"));
    REQUIRE_THROWS_WITH(qgan::nn::conv2d(tensor4(1, 1, 2, 2), tensor4(1, 1, 5, 3), {.pad_h = 1, .pad_w = 1}),
                        Contains("conv2d: kernel height 5 (dilation 1) spans 5 rows but the padded "
                                 "input has 4"));
    REQUIRE_THROWS_WITH(qgan::nn::conv2d(tensor4(1, 1, 5, 2), tensor4(1, 1, 2, 2), {.dilation_w = 3}),
                        Contains("conv2d: kernel width 2 (dilation 3) spans 4 columns"));
    REQUIRE_THROWS_WITH(qgan::nn::conv2d(x, tensor4(8, 3, 3, 3), {.stride_h = 0}),
                        "conv2d: stride_h is 0, must be at least 1");
    REQUIRE_THROWS_WITH(qgan::nn::conv2d(x, tensor4(8, 3, 3, 3), {.pad_w = -1}),
                        "conv2d: pad_w is -1, must be at least 0");
    REQUIRE_THROWS_WITH(qgan::nn::conv2d(x, tensor4(8, 3, 3, 3), tensor1(7)),
                        Contains("conv2d: bias has 7 elements but weight has 8 output channels"));
    REQUIRE_THROWS_WITH(qgan::nn::conv2d(x, tensor4(8, 3, 0, 3)), Contains("empty axis 2"));
  }
  SECTION("conv_transpose2d") {
    const tensor4 x(1, 4, 5, 5);
    REQUIRE_THROWS_WITH(qgan::nn::conv_transpose2d(x, tensor4(3, 2, 4, 4)),
                        Contains("conv_transpose2d: input has 4 channels but weight expects 3"));
    REQUIRE_THROWS_WITH(qgan::nn::conv_transpose2d(tensor4(1, 3, 5, 5), tensor4(3, 2, 4, 4),
                                                   {.groups = 2}),
                        Contains("conv_transpose2d: groups 2 does not divide the 3 input channels"));
    REQUIRE_THROWS_WITH(
        qgan::nn::conv_transpose2d(x, tensor4(4, 2, 4, 4), {.stride_h = 2, .output_pad_h = 2}),
        "conv_transpose2d: output_pad_h 2 must be smaller than stride_h 2 or dilation_h 1");
    REQUIRE_THROWS_WITH(qgan::nn::conv_transpose2d(x, tensor4(4, 2, 4, 4), tensor1(3)),
                        Contains("conv_transpose2d: bias has 3 elements but weight has 2 output "
                                 "channels"));
    REQUIRE_THROWS_WITH(qgan::nn::conv_transpose2d(tensor4(1, 4, 1, 1), tensor4(4, 2, 1, 1),
                                                   {.pad_h = 1}),
                        Contains("conv_transpose2d: output would be -1x1"));
    REQUIRE_THROWS_WITH(qgan::nn::conv_transpose2d(x, tensor4(4, 2, 4, 4), {.dilation_w = 0}),
                        "conv_transpose2d: dilation_w is 0, must be at least 1");
  }
  SECTION("linear") {
    REQUIRE_THROWS_WITH(qgan::nn::linear(tensor2(2, 4), tensor2(5, 3)),
                        "linear: input has 4 features but weight expects 3 (weight shape [5,3])");
    REQUIRE_THROWS_WITH(qgan::nn::linear(tensor2(2, 3), tensor2(5, 3), tensor1(4)),
                        Contains("linear: bias has 4 elements but weight has 5 outputs"));
  }
  SECTION("batch norm and folding") {
    const qgan::nn::batch_norm2d_params bn{make1({0, 0}), make1({1, 1}), make1({1, 1}),
                                           make1({0, 0})};
    REQUIRE_THROWS_WITH(qgan::nn::batch_norm2d(tensor4(1, 3, 2, 2), bn),
                        "batch_norm2d: running_mean has 2 elements but there are 3 channels");
    qgan::nn::batch_norm2d_params negative = bn;
    negative.running_var(1) = -1.0f;
    REQUIRE_THROWS_WITH(qgan::nn::batch_norm2d(tensor4(1, 2, 2, 2), negative),
                        Contains("batch_norm2d: running_var[1] + eps = "));
    REQUIRE_THROWS_WITH(qgan::nn::fold_batch_norm_conv2d(tensor4(3, 1, 1, 1), bn),
                        Contains("fold_batch_norm_conv2d: running_mean has 2 elements but there "
                                 "are 3 channels"));
    // Transposed weight (in 2, out/groups 1): with groups 2 there are 2 output channels.
    CHECK_NOTHROW(qgan::nn::fold_batch_norm_conv_transpose2d(tensor4(2, 1, 1, 1), bn, 2));
    REQUIRE_THROWS_WITH(qgan::nn::fold_batch_norm_conv_transpose2d(tensor4(2, 1, 1, 1), bn),
                        Contains("fold_batch_norm_conv_transpose2d: running_mean has 2 elements "
                                 "but there are 1 channels"));
    REQUIRE_THROWS_WITH(qgan::nn::fold_batch_norm_conv_transpose2d(tensor4(3, 2, 1, 1), bn, 2),
                        Contains("groups 2 does not divide the 3 input channels"));
  }
}

TEST_CASE("nn: tensor_from copies row-major values and refuses a shape that does not hold them", "[nn]") {
  const std::vector<float> values{1, 2, 3, 4, 5, 6};
  const tensor2 m = qgan::nn::tensor_from<2>(values, {2, 3}, "fc.weight");
  CHECK(m(0, 2) == 3.0f);
  CHECK(m(1, 0) == 4.0f);
  const tensor1 v = qgan::nn::tensor_from(values);
  CHECK(v.size() == 6);
  CHECK(v(5) == 6.0f);
  CHECK_THROWS_WITH(qgan::nn::tensor_from<2>(values, {2, 2}, "fc.weight"),
                    Catch::Contains("tensor 'fc.weight'") && Catch::Contains("holds 4 values, given 6"));
  CHECK_THROWS_WITH(qgan::nn::tensor_from<4>(values, {2, 3}, "conv.weight"),
                    Catch::Contains("tensor 'conv.weight'") && Catch::Contains("is not 4-D"));
  CHECK_THROWS_WITH(qgan::nn::tensor_from<2>(values, {-2, -3}, "w"), Catch::Contains("negative extent"));
}
