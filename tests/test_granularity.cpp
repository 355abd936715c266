// Per-channel quantization along any axis equals per-tensor quantization applied to each
// channel's slice; the straight-through mask marks exactly the clipped weights; the Eigen
// overloads agree with the span front door.
#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

#include "qgan/qgan.hpp"
#include "weights.hpp"

namespace {

// Channel c of a row-major tensor along `axis`, gathered in row-major order.
std::vector<std::size_t> channel_indices(const qgan::shape_t& shape, int axis, std::int64_t channel) {
  std::vector<std::size_t> indices;
  std::vector<std::int64_t> index(shape.size(), 0);
  const std::size_t total = qgan::element_count(shape);
  for (std::size_t flat = 0; flat < total; ++flat) {
    if (index[std::size_t(axis)] == channel) indices.push_back(flat);
    for (std::size_t d = shape.size(); d-- > 0;) {  // odometer increment, last axis fastest
      if (++index[d] < shape[d]) break;
      index[d] = 0;
    }
  }
  return indices;
}

template <class Q>
void check_matches_slices(const Q& policy, const qgan::shape_t& shape, int axis, int bits) {
  const auto values = qgan::test::make_weights(qgan::test::family::laplacian,
                                               qgan::element_count(shape), 17);
  const auto per_channel = qgan::quantize_codes(
      policy, values, shape, {.bits = bits, .grain = qgan::per_channel{axis}, .name = "w"});
  const auto fake = qgan::dequantize_codes(policy, per_channel);
  REQUIRE(per_channel.params.size() == std::size_t(shape[std::size_t(axis)]));
  for (std::int64_t channel = 0; channel < shape[std::size_t(axis)]; ++channel) {
    const auto indices = channel_indices(shape, axis, channel);
    std::vector<float> slice;
    for (const std::size_t at : indices) slice.push_back(values[at]);
    const auto alone = qgan::quantize_codes(
        policy, slice, {static_cast<std::int64_t>(slice.size())}, {.bits = bits});
    const auto alone_fake = qgan::dequantize_codes(policy, alone);
    std::vector<std::uint8_t> channel_codes;
    std::vector<float> channel_fake;
    for (const std::size_t at : indices) {
      channel_codes.push_back(per_channel.codes[at]);
      channel_fake.push_back(fake[at]);
    }
    INFO("shape " << qgan::to_string(shape) << ", axis " << axis << ", channel " << channel);
    CHECK(per_channel.params[std::size_t(channel)] == alone.params.front());
    CHECK(channel_codes == alone.codes);
    CHECK(channel_fake == alone_fake);
  }
}

}  // namespace

TEMPLATE_TEST_CASE("per-channel equals per-tensor applied channel by channel", "[granularity]",
                   qgan::minmax_quantizer, qgan::log_quantizer, qgan::tanh_quantizer,
                   qgan::em_quantizer, qgan::lloyd_max_quantizer) {
  const TestType policy;
  check_matches_slices(policy, {6, 3, 4, 4}, 0, 3);  // Conv2d (out, in, kh, kw)
  check_matches_slices(policy, {3, 5, 4, 4}, 1, 2);  // ConvTranspose2d (in, out, kh, kw)
  check_matches_slices(policy, {7, 9}, 1, 4);
  check_matches_slices(policy, {2, 3, 5}, 2, 2);     // last axis: strided channels
}

TEST_CASE("per-channel axis is checked against the shape", "[granularity]") {
  const std::vector<float> values(24, 0.5f);
  const qgan::em_quantizer policy;
  CHECK_THROWS_WITH(qgan::quantize_codes(policy, values, {2, 3, 4},
                                         {.bits = 2, .grain = qgan::per_channel{3}, .name = "g.w"}),
                    Catch::Contains("g.w") && Catch::Contains("axis 3") &&
                        Catch::Contains("[2,3,4]"));
  CHECK_THROWS_WITH(qgan::quantize_codes(policy, values, {5, 5}, {.bits = 2, .name = "g.w"}),
                    Catch::Contains("g.w") && Catch::Contains("25 elements") &&
                        Catch::Contains("24 values"));
  const auto last = qgan::quantize_codes(policy, values, {2, 3, 4},
                                         {.bits = 2, .grain = qgan::per_channel{-1}});
  CHECK(last.params.size() == 4);
  CHECK_THROWS_AS(qgan::quantize_codes(policy, values, {2, -3, 4}, {.bits = 2}), qgan::error);
}

TEMPLATE_TEST_CASE("the STE mask passes gradients inside the representable range only",
                   "[granularity][ste]", qgan::minmax_quantizer, qgan::log_quantizer,
                   qgan::tanh_quantizer, qgan::em_quantizer, qgan::lloyd_max_quantizer) {
  const TestType policy;
  const auto values = qgan::test::make_weights(qgan::test::family::laplacian, 4 * 500, 8);
  const qgan::shape_t shape{4, 500};
  const qgan::quantize_options options{.bits = 2, .grain = qgan::per_channel{0}};
  const auto result = qgan::fake_quantize_ste(policy, values, shape, options);
  CHECK(result.values == qgan::fake_quantize(policy, values, shape, options));
  const auto codes = qgan::quantize_codes(policy, values, shape, options);
  std::size_t clipped = 0;
  for (std::size_t channel = 0; channel < 4; ++channel) {
    const auto [lowest, highest] = qgan::representable_range(policy, codes.params[channel]);
    for (std::size_t i = 0; i < 500; ++i) {
      const float value = values[channel * 500 + i];
      const bool inside = value >= lowest && value <= highest;
      clipped += inside ? 0 : 1;
      if (result.ste_mask[channel * 500 + i] != (inside ? 1 : 0)) FAIL("mask wrong at " << i);
    }
  }
  if constexpr (std::is_same_v<TestType, qgan::minmax_quantizer>) CHECK(clipped == 0);
  if constexpr (std::is_same_v<TestType, qgan::em_quantizer>) CHECK(clipped > 0);

  std::vector<float> upstream(values.size(), 2.5f);
  const auto gradient = qgan::ste_backward(upstream, result.ste_mask);
  for (std::size_t i = 0; i < gradient.size(); ++i) {
    if (gradient[i] != (result.ste_mask[i] ? 2.5f : 0.0f)) FAIL("gradient wrong at " << i);
  }
  CHECK_THROWS_AS(qgan::ste_backward(std::vector<float>(3), result.ste_mask), qgan::error);
}

TEST_CASE("Eigen tensors and matrices go through the same front door", "[granularity][eigen]") {
  Eigen::Tensor<float, 4, Eigen::RowMajor> weight(8, 3, 4, 4);
  const auto values = qgan::test::make_weights(qgan::test::family::gaussian,
                                               static_cast<std::size_t>(weight.size()), 12);
  std::copy(values.begin(), values.end(), weight.data());
  const qgan::quantize_options options{.bits = 3, .grain = qgan::per_channel{0}};
  const auto fake = qgan::fake_quantize(qgan::em_quantizer{}, weight, options);
  const auto expected = qgan::fake_quantize(qgan::em_quantizer{}, values, {8, 3, 4, 4}, options);
  CHECK(std::vector<float>(fake.data(), fake.data() + fake.size()) == expected);
  CHECK(fake.dimension(1) == 3);

  qgan::row_matrix matrix(8, 48);
  std::copy(values.begin(), values.end(), matrix.data());
  const qgan::row_matrix fake_matrix = qgan::fake_quantize(qgan::em_quantizer{}, matrix, options);
  const auto expected_matrix = qgan::fake_quantize(qgan::em_quantizer{}, values, {8, 48}, options);
  CHECK(std::vector<float>(fake_matrix.data(), fake_matrix.data() + fake_matrix.size()) ==
        expected_matrix);
  // A column-major matrix is copied into row-major order first, so rows stay channels.
  const Eigen::MatrixXf column_major = matrix;
  const qgan::row_matrix from_column_major =
      qgan::fake_quantize(qgan::em_quantizer{}, column_major, options);
  CHECK(from_column_major == fake_matrix);
}
