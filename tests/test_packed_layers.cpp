// Packed-weight layers (qgan/nn/packed): on random geometries (strides 1-3, padding,
// output padding, dilation, groups, odd channel counts, 1x1 to 10x10 inputs, every phase
// and border) and every bit width,
// - the 8-bit-activation path equals the integer reference (a direct loop over the
//   canonical layout) bit for bit, with u8 and float outputs, zero points 0 and not;
// - both paths equal the fp32 reference layers (Eigen) run on the dequantized weights
//   (and dequantized activations), BatchNorm applied after, within a tolerance that grows
//   with the reduction length;
// - any thread count gives the same bits; bad input is refused with the layer's name.
#include <catch2/catch.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "qgan/core/thread_pool.hpp"
#include "qgan/nn/batch_norm.hpp"
#include "qgan/nn/conv2d.hpp"
#include "qgan/nn/conv_transpose2d.hpp"
#include "qgan/nn/linear.hpp"
#include "qgan/nn/packed/build.hpp"
#include "qgan/nn/packed/forward.hpp"
#include "qgan/nn/packed/reference.hpp"
#include "qgan/nn/packed/sequence.hpp"
#include "qgan/nn/packed/tanh.hpp"
#include "qgan/pack/quantize.hpp"
#include "qgan/quant/em.hpp"
#include "qgan/quant/lloyd_max.hpp"
#include "qgan/simd/conv_ref.hpp"

namespace {

namespace packed = qgan::nn::packed;
using qgan::nn::tensor1;
using qgan::nn::tensor4;
using Catch::Matchers::Contains;

struct random_case {
  packed::layer_geometry geometry;
  std::size_t batch = 1, height = 1, width = 1;
  int bits = 2;
  bool batch_norm = false, bias = false;
  std::int32_t zero_point = 0;
};

random_case make_case(std::mt19937& rng, int round) {
  const auto pick = [&](int low, int high) { return std::uniform_int_distribution<int>(low, high)(rng); };
  random_case c;
  const int kind = round % 3;
  c.geometry.kind = kind == 0 ? packed::layer_kind::transposed_convolution
                              : (kind == 1 ? packed::layer_kind::convolution : packed::layer_kind::linear);
  c.geometry.groups = kind == 2 ? 1 : static_cast<std::size_t>(pick(1, 2));
  c.geometry.in_channels = c.geometry.groups * static_cast<std::size_t>(pick(1, 37));
  // Narrow layers (row tiles) and wide ones (channel tiles, several 16-channel blocks).
  c.geometry.out_channels = c.geometry.groups * static_cast<std::size_t>(pick(0, 1) != 0 ? pick(1, 9) : pick(10, 40));
  for (packed::axis_spec* a : {&c.geometry.rows, &c.geometry.cols}) {
    if (kind == 2) break;
    a->kernel = pick(1, 5);
    a->stride = pick(1, 3);
    a->dilation = pick(1, 2);
    a->pad = pick(0, std::min(2, a->kernel - 1) * a->dilation);
    if (kind == 0) a->output_pad = pick(0, std::max(a->stride, a->dilation) - 1);
  }
  c.batch = static_cast<std::size_t>(pick(1, 3));
  // Every eighth case has two images per thread of the 3-thread pool, so forward takes
  // whole images per task (tiling::tiles_by_image) there.
  if (round % 8 == 1) c.batch += 6;
  c.height = kind == 2 ? 1 : static_cast<std::size_t>(pick(1, 10));
  c.width = kind == 2 ? 1 : static_cast<std::size_t>(pick(1, 10));
  if (kind == 1) {  // a convolution needs its input to cover the dilated kernel
    c.height = std::max<std::size_t>(c.height, static_cast<std::size_t>((c.geometry.rows.kernel - 1) * c.geometry.rows.dilation + 1));
    c.width = std::max<std::size_t>(c.width, static_cast<std::size_t>((c.geometry.cols.kernel - 1) * c.geometry.cols.dilation + 1));
  }
  if (kind == 0) {  // and a transposed one an input long enough for its padding
    const auto at_least_one_output = [](std::size_t& extent, const packed::axis_spec& a) {
      const auto output = [&] {
        return (static_cast<int>(extent) - 1) * a.stride - 2 * a.pad + a.dilation * (a.kernel - 1) + a.output_pad + 1;
      };
      while (output() < 1) ++extent;
    };
    at_least_one_output(c.height, c.geometry.rows);
    at_least_one_output(c.width, c.geometry.cols);
  }
  c.bits = std::vector<int>{1, 2, 3, 4, 5, 7, 8}[static_cast<std::size_t>(round % 7)];
  c.batch_norm = pick(0, 1) != 0;
  c.bias = pick(0, 1) != 0;
  c.zero_point = pick(0, 1) != 0 ? pick(1, 200) : 0;
  return c;
}

std::vector<float> normal_values(std::size_t count, std::mt19937& rng, float sd = 1.0f) {
  std::normal_distribution<float> normal(0.0f, sd);
  std::vector<float> v(count);
  for (auto& x : v) x = normal(rng);
  return v;
}

qgan::nn::batch_norm2d_params random_batch_norm(std::size_t channels, std::mt19937& rng) {
  qgan::nn::batch_norm2d_params bn;
  const auto n = static_cast<Eigen::Index>(channels);
  bn.running_mean = tensor1(n), bn.running_var = tensor1(n), bn.weight = tensor1(n), bn.bias = tensor1(n);
  std::normal_distribution<float> normal;
  for (Eigen::Index i = 0; i < n; ++i) {
    bn.running_mean(i) = 0.3f * normal(rng);
    bn.running_var(i) = 0.5f + std::abs(normal(rng));
    bn.weight(i) = normal(rng);  // negative gammas too
    bn.bias(i) = 0.2f * normal(rng);
  }
  return bn;
}

// The fp32 reference layer (Eigen) on NCHW floats, BatchNorm after.
std::vector<float> fp32_reference(const random_case& c, const std::vector<float>& weights, const std::vector<float>& x,
                                  const packed::layer_extras& extras) {
  const packed::layer_geometry& g = c.geometry;
  const qgan::shape_t shape = packed::detail::weight_shape(g);
  tensor1 bias(static_cast<Eigen::Index>(g.out_channels));
  bias.setZero();
  if (extras.bias) std::copy(extras.bias->begin(), extras.bias->end(), bias.data());
  tensor4 y;
  const auto B = static_cast<Eigen::Index>(c.batch);
  if (g.kind == packed::layer_kind::linear) {
    qgan::nn::tensor2 in(B, static_cast<Eigen::Index>(g.in_channels)), w(shape[0], shape[1]);
    std::copy(x.begin(), x.end(), in.data());
    std::copy(weights.begin(), weights.end(), w.data());
    const qgan::nn::tensor2 out = qgan::nn::linear(in, w, bias);
    y = tensor4(B, static_cast<Eigen::Index>(g.out_channels), 1, 1);
    std::copy(out.data(), out.data() + out.size(), y.data());
  } else {
    tensor4 in(B, static_cast<Eigen::Index>(g.in_channels), static_cast<Eigen::Index>(c.height), static_cast<Eigen::Index>(c.width));
    tensor4 w(shape[0], shape[1], shape[2], shape[3]);
    std::copy(x.begin(), x.end(), in.data());
    std::copy(weights.begin(), weights.end(), w.data());
    if (g.kind == packed::layer_kind::transposed_convolution) {
      y = qgan::nn::conv_transpose2d(in, w, bias,
                                     {g.rows.stride, g.cols.stride, g.rows.pad, g.cols.pad, g.rows.output_pad, g.cols.output_pad,
                                      g.rows.dilation, g.cols.dilation, static_cast<Eigen::Index>(g.groups)});
    } else {
      y = qgan::nn::conv2d(in, w, bias,
                           {g.rows.stride, g.cols.stride, g.rows.pad, g.cols.pad, g.rows.dilation, g.cols.dilation,
                            static_cast<Eigen::Index>(g.groups)});
    }
  }
  if (extras.batch_norm) y = qgan::nn::batch_norm2d(y, *extras.batch_norm);
  return {y.data(), y.data() + y.size()};
}

std::vector<float> nchw_of(const packed::f32_activations& a) { return packed::to_nchw(a); }

// |a - b| <= tolerance * (1 + scale) elementwise, scale the typical magnitude of a sum.
void require_close(const std::vector<float>& got, const std::vector<float>& want, float tolerance) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i << ": " << got[i] << " vs " << want[i]);
    REQUIRE(std::abs(got[i] - want[i]) <= tolerance * (1.0f + std::abs(want[i])));
  }
}

}  // namespace

TEST_CASE("packed layers: 8-bit path equals the integer reference bit for bit, fp32 path the Eigen layers", "[packed]") {
  std::mt19937 rng(2024);
  qgan::thread_pool one(1), three(3);
  for (int round = 0; round < 140; ++round) {
    const random_case c = make_case(rng, round);
    const packed::layer_geometry& g = c.geometry;
    const qgan::shape_t shape = packed::detail::weight_shape(g);
    const std::vector<float> w = normal_values(qgan::element_count(shape), rng, 0.2f);
    const int output_axis = g.kind == packed::layer_kind::transposed_convolution ? 1 : 0;
    const qgan::granularity grain = round % 4 == 3 ? qgan::granularity{qgan::per_tensor{}} : qgan::granularity{qgan::per_channel{output_axis}};
    const qgan::packed_tensor weight = qgan::quantize(qgan::em_quantizer{}, w, shape, {c.bits, grain});
    const std::vector<float> dequantized = qgan::dequantize(weight);
    packed::layer_extras extras;
    if (c.bias) extras.bias = normal_values(g.out_channels, rng, 0.3f);
    if (c.batch_norm) extras.batch_norm = random_batch_norm(g.out_channels, rng);
    INFO("round " << round << ": kind " << static_cast<int>(g.kind) << ", in " << g.in_channels << ", out " << g.out_channels
                  << ", groups " << g.groups << ", kernel " << g.rows.kernel << "x" << g.cols.kernel << ", stride "
                  << g.rows.stride << "x" << g.cols.stride << ", pad " << g.rows.pad << "x" << g.cols.pad << ", dilation "
                  << g.rows.dilation << "x" << g.cols.dilation << ", output pad " << g.rows.output_pad << "x" << g.cols.output_pad
                  << ", input " << c.batch << "x" << c.height << "x" << c.width << ", bits " << c.bits << ", zp " << c.zero_point);

    // 8-bit activations.
    const packed::layer l8 = packed::make_layer("layer", g, weight, packed::activation_path::int8, extras);
    const std::vector<float> x = normal_values(c.batch * g.in_channels * c.height * c.width, rng);
    const float scale = 4.0f / 255.0f;
    const packed::activation_range range{scale, c.zero_point};
    const packed::u8_activations q = packed::quantize_nchw(x, c.batch, g.in_channels, c.height, c.width, range, l8.weights.row_tiles);
    packed::f32_activations y8, y8_threads;
    packed::forward(l8, q, y8, false, one);
    packed::forward(l8, q, y8_threads, false, three);
    const std::vector<float> reference = packed::int8_reference(l8, weight, q);
    const std::vector<float> got = nchw_of(y8);
    REQUIRE(got.size() == reference.size());
    REQUIRE(std::memcmp(got.data(), reference.data(), got.size() * sizeof(float)) == 0);
    REQUIRE(std::memcmp(y8.data.data(), y8_threads.data.data(), y8.data.size() * sizeof(float)) == 0);
    packed::f32_activations dirty_float;  // float outputs are sized, not cleared, too
    dirty_float.data.assign(y8.data.size() + 100, -777.0f);
    packed::forward(l8, q, dirty_float, false, one);
    REQUIRE(std::memcmp(dirty_float.data.data(), y8.data.data(), y8.data.size() * sizeof(float)) == 0);
    // u8 outputs: the reference's values requantized.
    packed::u8_activations out;
    out.scale = 0.05f;
    out.zero_point = round % 2 == 0 ? 0 : 17;
    out.planar = round % 5 == 0 && !l8.weights.row_tiles && (g.groups == 1 || l8.group_out % 4 == 0);
    packed::forward(l8, q, out, three);
    qgan::simd::tile_output conversion;
    conversion.to_u8 = true;
    conversion.inverse_scale = 1.0f / out.scale;
    conversion.zero_point = out.zero_point;
    const std::size_t out_pixels = out.pixels();
    for (std::size_t n = 0; n < c.batch; ++n) {
      for (std::size_t o = 0; o < g.out_channels; ++o) {
        for (std::size_t p = 0; p < out_pixels; ++p) {
          const float want = reference[(n * g.out_channels + o) * out_pixels + p];
          REQUIRE(out.data[out.offset(n, o, p)] == qgan::simd::conv_ref::requantize_ref(want, conversion));
        }
      }
    }
    // A layer writes every output byte it does not zero (its output buffer is sized, not
    // cleared): an earlier content of the buffer never shows.
    packed::u8_activations dirty;
    dirty.scale = out.scale;
    dirty.zero_point = out.zero_point;
    dirty.planar = out.planar;
    dirty.data.assign(out.data.size() + 4096, 0xA5);
    packed::forward(l8, q, dirty, one);
    REQUIRE(dirty.data.size() == out.data.size());
    REQUIRE(std::memcmp(dirty.data.data(), out.data.data(), out.data.size()) == 0);
    // The formula itself: fp32 layers on the dequantized weights and activations.
    const std::vector<float> xq = packed::dequantize_to_nchw(q);
    const float reduction = static_cast<float>(l8.taps * l8.group_in);
    require_close(got, fp32_reference(c, dequantized, xq, extras), 2e-6f * reduction * 8.0f);

    // fp32 activations from the same codes.
    const packed::layer l32 = packed::make_layer("layer", g, weight, packed::activation_path::fp32, extras);
    const packed::f32_activations xf = packed::from_nchw(x, c.batch, g.in_channels, c.height, c.width);
    packed::f32_activations y32, y32_threads;
    packed::forward(l32, xf, y32, false, one);
    packed::forward(l32, xf, y32_threads, true, three);
    packed::f32_activations dirty32;
    dirty32.data.assign(y32.data.size() + 100, -777.0f);
    packed::forward(l32, xf, dirty32, false, three);
    REQUIRE(std::memcmp(dirty32.data.data(), y32.data.data(), y32.data.size() * sizeof(float)) == 0);
    const std::vector<float> want32 = fp32_reference(c, dequantized, x, extras);
    require_close(nchw_of(y32), want32, 2e-6f * reduction * 8.0f);
    for (std::size_t i = 0; i < y32.data.size(); ++i) {
      REQUIRE(y32_threads.data[i] == (y32.data[i] < 0.0f ? 0.0f : y32.data[i]));  // ReLU, same bits on 3 threads
    }
    // A codebook (Lloyd-Max levels per output channel, or per tensor) through the level
    // tables, on every third case.
    if (round % 3 == 1) {
      const qgan::packed_tensor levels = qgan::quantize(qgan::lloyd_max_quantizer{}, w, shape, {std::min(c.bits, 4), grain});
      const packed::layer lc = packed::make_layer("layer", g, levels, packed::activation_path::fp32, extras);
      packed::f32_activations yc;
      packed::forward(lc, xf, yc, false, three);
      require_close(nchw_of(yc), fp32_reference(c, qgan::dequantize(levels), x, extras), 2e-6f * reduction * 8.0f);
    }
    // fp32 weights through the same tiles.
    const packed::layer lf = packed::make_layer("layer", g, std::span<const float>(w), extras);
    packed::f32_activations yf;
    packed::forward(lf, xf, yf, false, three);
    require_close(nchw_of(yf), fp32_reference(c, w, x, extras), 2e-6f * reduction * 8.0f);
  }
}

TEST_CASE("packed layers: the DCGAN transposed convolutions, batch 1 and 64", "[packed]") {
  std::mt19937 rng(5);
  qgan::thread_pool pool(2);
  struct shape_case {
    std::size_t in, out, height, kernel, stride, pad;
  };
  for (const shape_case s : {shape_case{100, 256, 1, 4, 1, 0}, shape_case{256, 128, 4, 4, 2, 1}, shape_case{128, 64, 8, 4, 2, 1},
                             shape_case{64, 1, 16, 4, 2, 1}}) {
    for (const std::size_t batch : {std::size_t{1}, std::size_t{64}}) {
      packed::layer_geometry g;
      g.kind = packed::layer_kind::transposed_convolution;
      g.in_channels = s.in, g.out_channels = s.out;
      g.rows = g.cols = {static_cast<int>(s.kernel), static_cast<int>(s.stride), static_cast<int>(s.pad), 1, 0};
      const qgan::shape_t shape = packed::detail::weight_shape(g);
      const std::vector<float> w = normal_values(qgan::element_count(shape), rng, 0.05f);
      const qgan::packed_tensor weight = qgan::quantize(qgan::em_quantizer{}, w, shape, {2, qgan::per_channel{1}});
      const packed::layer l = packed::make_layer("deconv", g, weight, packed::activation_path::int8);
      std::vector<float> x = normal_values(batch * s.in * s.height * s.height, rng);
      if (s.in != 100) {
        for (float& v : x) v = std::max(v, 0.0f);
      }
      const packed::activation_range range = s.in == 100 ? packed::range_for(-3.0f, 3.0f) : packed::range_for(0.0f, 3.0f);
      const packed::u8_activations q = packed::quantize_nchw(x, batch, s.in, s.height, s.height, range, l.weights.row_tiles);
      packed::f32_activations y;
      packed::forward(l, q, y, false, pool);
      INFO("layer " << s.in << "->" << s.out << ", batch " << batch);
      const std::vector<float> reference = packed::int8_reference(l, weight, q);
      const std::vector<float> got = packed::to_nchw(y);
      REQUIRE(std::memcmp(got.data(), reference.data(), got.size() * sizeof(float)) == 0);
    }
  }
}

TEST_CASE("packed layers: refusals name the layer and the field", "[packed]") {
  std::mt19937 rng(3);
  packed::layer_geometry g;
  g.kind = packed::layer_kind::transposed_convolution;
  g.in_channels = 8, g.out_channels = 4;
  g.rows = g.cols = {4, 2, 1, 1, 0};
  const qgan::shape_t shape = packed::detail::weight_shape(g);
  const std::vector<float> w = normal_values(qgan::element_count(shape), rng);
  const auto lloyd = qgan::quantize(qgan::lloyd_max_quantizer{}, w, shape, {2, qgan::per_channel{1}});
  CHECK_THROWS_WITH(packed::make_layer("deconv9", g, lloyd, packed::activation_path::int8),
                    Contains("deconv9") && Contains("uniform grid"));
  const auto input_axis = qgan::quantize(qgan::em_quantizer{}, w, shape, {2, qgan::per_channel{0}});
  CHECK_THROWS_WITH(packed::make_layer("deconv9", g, input_axis, packed::activation_path::fp32), Contains("output channels"));
  const auto good = qgan::quantize(qgan::em_quantizer{}, w, shape, {2, qgan::per_channel{1}});
  packed::layer_geometry wrong = g;
  wrong.in_channels = 16;
  CHECK_THROWS_WITH(packed::make_layer("deconv9", wrong, good, packed::activation_path::int8), Contains("weight shape"));
  const packed::layer l = packed::make_layer("deconv9", g, good, packed::activation_path::int8);
  qgan::thread_pool pool(1);
  packed::u8_activations x;
  x.allocate(1, 7, 2, 2);
  packed::f32_activations y;
  CHECK_THROWS_WITH(packed::forward(l, x, y, false, pool), Contains("deconv9") && Contains("7 channels"));
  const packed::f32_activations xf = packed::from_nchw(std::vector<float>(32), 1, 8, 2, 2);
  CHECK_THROWS_WITH(packed::forward(l, xf, y, false, pool), Contains("8-bit activations"));
  // A lloyd weight runs with fp32 activations through its levels.
  const packed::layer levels = packed::make_layer("deconv9", g, lloyd, packed::activation_path::fp32);
  CHECK_NOTHROW(packed::forward(levels, xf, y, false, pool));
}

TEST_CASE("packed layers: the 8-bit path's reduction bound counts the taps that reach one output", "[packed]") {
  // Taps per output along an axis: all of a convolution's; a transposed convolution's
  // phases split the kernel by the stride (dilation moves taps between phases).
  CHECK(packed::detail::taps_reaching_output({4, 2, 1, 1, 0}, true) == 2);
  CHECK(packed::detail::taps_reaching_output({4, 2, 1, 1, 0}, false) == 4);
  CHECK(packed::detail::taps_reaching_output({5, 2, 1, 1, 0}, true) == 3);
  CHECK(packed::detail::taps_reaching_output({3, 3, 0, 1, 0}, true) == 1);
  CHECK(packed::detail::taps_reaching_output({4, 2, 0, 2, 0}, true) == 4);  // even dilation: one phase gets every tap
  CHECK(packed::detail::taps_reaching_output({3, 1, 0, 1, 0}, true) == 3);
  const auto layer_of = [](packed::layer_kind kind, std::size_t in_channels, packed::axis_spec axis) {
    packed::layer_geometry g;
    g.kind = kind;
    g.in_channels = in_channels, g.out_channels = 1;
    g.rows = g.cols = axis;
    const qgan::shape_t shape = packed::detail::weight_shape(g);
    std::vector<float> w(qgan::element_count(shape));
    for (std::size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(i % 7) - 3.0f;
    const auto codes = qgan::quantize(qgan::minmax_quantizer{}, w, shape, {2, qgan::per_tensor{}});
    return packed::make_layer("wide", g, codes, packed::activation_path::int8);
  };
  // DCGAN's stride-2 layers at ngf 512 (2048 inputs, 16 kernel taps, 4 per output): 8,192.
  CHECK_NOTHROW(layer_of(packed::layer_kind::transposed_convolution, 2048, {4, 2, 1, 1, 0}));
  CHECK_NOTHROW(layer_of(packed::layer_kind::transposed_convolution, 4096, {4, 2, 1, 1, 0}));  // 16,384 exactly
  CHECK_THROWS_WITH(layer_of(packed::layer_kind::transposed_convolution, 4100, {4, 2, 1, 1, 0}),
                    Contains("wide") && Contains("16400 products per output exceed the 16384"));
  CHECK_THROWS_WITH(layer_of(packed::layer_kind::convolution, 1025, {4, 2, 1, 1, 0}), Contains("16400 products per output"));
}

TEST_CASE("packed layers: tanh_approx is within 3e-7 of std::tanh on every float", "[packed]") {
  float worst = 0.0f, worst_at = 0.0f;
  for (std::uint64_t bits = 0; bits < (std::uint64_t{1} << 32); bits += 4099) {  // every 4099th float: 1M of them
    const float x = std::bit_cast<float>(static_cast<std::uint32_t>(bits));
    const float got = packed::tanh_approx(x), want = std::tanh(x);
    if (std::isnan(x)) {
      REQUIRE(std::isnan(got));
      continue;
    }
    const float error = std::abs(got - want);
    if (error > worst) worst = error, worst_at = x;
  }
  INFO("worst at " << worst_at);
  CHECK(worst < 3e-7f);
  CHECK(packed::tanh_approx(0.0f) == 0.0f);
  CHECK(std::signbit(packed::tanh_approx(-0.0f)));
  CHECK(packed::tanh_approx(INFINITY) == 1.0f);
  CHECK(packed::tanh_approx(-INFINITY) == -1.0f);
}

TEST_CASE("packed layers: a sequence refuses no layers, or input ranges that do not match its layers") {
  qgan::thread_pool pool(1);
  const std::vector<packed::layer> none;
  CHECK_THROWS_WITH(packed::forward_sequence(std::span<const packed::layer>(none), packed::f32_activations{}, pool),
                    Catch::Contains("no layers"));
  const std::vector<packed::layer> one(1);
  const std::vector<packed::activation_range> two(2);
  CHECK_THROWS_WITH(packed::forward_sequence(std::span<const packed::layer>(one), std::span<const packed::activation_range>(two),
                                             packed::u8_activations{}, pool),
                    Catch::Contains("1 layers and 2 input ranges"));
}
