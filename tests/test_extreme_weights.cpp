// Weights at the ends of the float range (issue: "denormal weights"): near 1e-41 every
// squared error in EM is subnormal, which x86 runs about 100x slower; near 1e38 squares
// overflow. quantize_codes fits such a channel on itself times an exact power of two and
// scales the grid back, so the fit is the one of ordinary-sized weights, bit for bit.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "qgan/qgan.hpp"
#include "weights.hpp"

namespace {

std::vector<float> scaled(const std::vector<float>& values, int exponent) {
  std::vector<float> out(values.size());
  for (std::size_t i = 0; i < values.size(); ++i) out[i] = std::ldexp(values[i], exponent);
  return out;
}

template <class Policy>
void check_fit_commutes_with_scale(const Policy& policy, int exponent) {
  const qgan::shape_t shape{4, 2048};
  // Scaling down to subnormals rounds the weights; scaling those back up is exact, so
  // `values` are exactly the extreme weights times 2^-exponent.
  const auto extreme_values =
      scaled(qgan::test::make_weights(qgan::test::family::gaussian, 4 * 2048, 17), exponent);
  const auto values = scaled(extreme_values, -exponent);
  const qgan::quantize_options options{.bits = 4, .grain = qgan::per_channel{0}, .name = "w"};
  const auto ordinary = qgan::quantize_codes(policy, values, shape, options);
  const auto extreme = qgan::quantize_codes(policy, extreme_values, shape, options);
  for (std::size_t channel = 0; channel < 4; ++channel) {
    INFO("channel " << channel);
    CHECK(extreme.params[channel] == qgan::detail::scale_params(ordinary.params[channel], exponent));
  }
  // Normal-range grids encode exactly alike; subnormal ones round their params, and only
  // near-ties may move.
  std::size_t moved = 0;
  for (std::size_t i = 0; i < values.size(); ++i) moved += ordinary.codes[i] != extreme.codes[i] ? 1 : 0;
  if (exponent > 0) {
    CHECK(moved == 0);
  } else {
    CHECK(moved <= values.size() / 100);
  }
}

}  // namespace

TEST_CASE("SUBNORMAL_WEIGHTS: the grid of weights near 1e-41 is the ordinary grid scaled", "[quantize][extreme]") {
  check_fit_commutes_with_scale(qgan::em_quantizer{}, -130);
  check_fit_commutes_with_scale(qgan::em_quantizer::plus(), -130);
  check_fit_commutes_with_scale(qgan::minmax_quantizer{}, -130);
}

TEST_CASE("HUGE_WEIGHTS: weights near 1e38 fit without overflow, as the ordinary grid scaled", "[quantize][extreme]") {
  check_fit_commutes_with_scale(qgan::em_quantizer::plus(), 130);
  check_fit_commutes_with_scale(qgan::minmax_quantizer{}, 130);
  check_fit_commutes_with_scale(qgan::lloyd_max_quantizer{}, 130);
}

TEST_CASE("RELU_PROPAGATES_NAN: an overflow upstream is not turned into zeros", "[nn][extreme]") {
  qgan::nn::tensor2 x(1, 3);
  x.setValues({{std::nanf(""), -1.0f, 2.0f}});
  const qgan::nn::tensor2 y = qgan::nn::relu(x);
  CHECK(std::isnan(y(0, 0)));
  CHECK(y(0, 1) == 0.0f);
  CHECK(y(0, 2) == 2.0f);
}
