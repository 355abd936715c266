// qgan::quantize / qgan::dequantize: the packed front door gives exactly what the
// unpacked codes give, for every policy, width and granularity; the canonical layout's
// size is ceil(N*k/8); inconsistent fields are refused with a message naming them.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "qgan/pack/packed_tensor.hpp"
#include "qgan/pack/quantize.hpp"
#include "weights.hpp"

namespace {

template <class Q>
void check_round_trip(const Q& policy, const qgan::shape_t& shape, const qgan::granularity& grain) {
  const auto values = qgan::test::make_weights(qgan::test::family::laplacian,
                                               qgan::element_count(shape), 23);
  for (int bits = Q::name == qgan::log_quantizer::name ? 2 : 1; bits <= 8; ++bits) {
    const qgan::quantize_options options{.bits = bits, .grain = grain, .name = "w"};
    const qgan::packed_tensor packed = qgan::quantize(policy, values, shape, options);
    INFO(Q::name << ", shape " << qgan::to_string(shape) << ", " << bits << " bits");
    REQUIRE_NOTHROW(packed.validate("w"));
    CHECK(packed.codes.size() == (values.size() * std::size_t(bits) + 7) / 8);
    const auto codes = qgan::quantize_codes(policy, values, shape, options);
    std::vector<std::uint8_t> unpacked(values.size());
    qgan::pack::unpack_ref(packed.codes.data(), 0, values.size(), bits, unpacked.data());
    CHECK(unpacked == codes.codes);
    const auto fast = qgan::dequantize(packed);
    const auto exact = qgan::dequantize_codes(policy, codes);
    if (qgan::simd::native_kernels::has_fused_multiply_add) {
      CHECK(fast == exact);
    } else {
      // SSE2/SSE4.2 decode alpha*z + beta with two roundings: the bound of test_kernels.
      double worst = 0.0, largest = 0.0;
      for (std::size_t i = 0; i < fast.size(); ++i) {
        worst = std::max(worst, std::abs(double(fast[i]) - double(exact[i])));
        largest = std::max(largest, std::abs(double(exact[i])));
      }
      CHECK(worst <= 3.0 * std::ldexp(4.0 * largest, -24));
    }
  }
}

}  // namespace

TEMPLATE_TEST_CASE("quantize then dequantize equals fake-quantize", "[packed]",
                   qgan::minmax_quantizer, qgan::log_quantizer, qgan::tanh_quantizer,
                   qgan::em_quantizer, qgan::lloyd_max_quantizer) {
  const TestType policy;
  check_round_trip(policy, {1031}, qgan::per_tensor{});
  check_round_trip(policy, {8, 3, 4, 4}, qgan::per_channel{0});
  check_round_trip(policy, {3, 5, 3, 3}, qgan::per_channel{1});  // ConvTranspose2d layout
}

TEST_CASE("canonical storage is ceil(N*k/8) bytes", "[packed]") {
  const auto values = qgan::test::make_weights(qgan::test::family::gaussian, 65536 + 3, 1);
  for (int bits = 1; bits <= 8; ++bits) {
    const auto packed = qgan::quantize(qgan::em_quantizer{}, values,
                                       {static_cast<std::int64_t>(values.size())}, {.bits = bits});
    CHECK(packed.codes.size() == (values.size() * std::size_t(bits) + 7) / 8);
    if (bits == 2) CHECK(double(values.size() * 4) / double(packed.codes.size()) >= 15.8);
  }
}

TEST_CASE("inconsistent packed tensors are refused, naming the field", "[packed]") {
  const std::vector<float> values(24, 0.25f);
  const qgan::packed_tensor good = qgan::quantize(qgan::em_quantizer{}, values, {2, 3, 4},
                                                  {.bits = 3, .grain = qgan::per_channel{1}});
  REQUIRE_NOTHROW(good.validate("g"));
  auto broken = good;
  broken.bits = 9;
  CHECK_THROWS_WITH(broken.validate("g"), Catch::Contains("'g'") && Catch::Contains("bits = 9"));
  broken = good;
  broken.params.pop_back();
  CHECK_THROWS_WITH(qgan::dequantize(broken, "g"), Catch::Contains("params") && Catch::Contains("3 channel"));
  broken = good;
  broken.codes.push_back(0);
  CHECK_THROWS_WITH(broken.validate("g"), Catch::Contains("codes hold 10 bytes"));
  broken = good;
  broken.params[1] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_WITH(broken.validate("g"), Catch::Contains("params[1]"));
  broken = good;
  broken.grain = qgan::per_channel{5};
  CHECK_THROWS_WITH(broken.validate("g"), Catch::Contains("axis 5"));
  broken = good;
  broken.policy = static_cast<qgan::policy_id>(77);
  CHECK_THROWS_WITH(broken.validate("g"), Catch::Contains("policy id 77"));
  CHECK(qgan::policy_from_name("lloyd") == qgan::policy_id::lloyd);
  CHECK_FALSE(qgan::policy_from_name("kmeans").has_value());
}
