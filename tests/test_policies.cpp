// Each policy's own contract: supported widths, hand-computed grids, rejected input, and
// defined results on degenerate tensors (empty, one element, constant, all zero).
#include <catch2/catch.hpp>

#include <cmath>
#include <type_traits>
#include <limits>
#include <vector>

#include "qgan/qgan.hpp"
#include "weights.hpp"

namespace {

template <class Q>
std::vector<std::uint32_t> encode_all(const Q& policy, const std::vector<float>& values,
                                      int bits) {
  const auto fitted = policy.fit(values, bits);
  std::vector<std::uint32_t> codes;
  for (const float value : values) codes.push_back(policy.encode(value, fitted));
  return codes;
}

}  // namespace

TEMPLATE_TEST_CASE("every policy rejects widths outside 1..8", "[policies]",
                   qgan::minmax_quantizer, qgan::log_quantizer, qgan::tanh_quantizer,
                   qgan::em_quantizer, qgan::lloyd_max_quantizer) {
  const std::vector<float> values{0.1f, -0.2f, 0.3f};
  const TestType policy;
  CHECK_THROWS_AS(policy.fit(values, 0), qgan::error);
  CHECK_THROWS_AS(policy.fit(values, 9), qgan::error);
  CHECK_THROWS_AS(policy.fit(values, -3), qgan::error);
  for (int bits = 2; bits <= 8; ++bits) CHECK_NOTHROW(policy.fit(values, bits));
}

TEST_CASE("log quantization at one bit is an error that says why", "[policies][log]") {
  const std::vector<float> values{0.1f, -0.2f};
  CHECK_THROWS_WITH(qgan::log_quantizer{}.fit(values, 1),
                    Catch::Contains("bits >= 2") && Catch::Contains("sign"));
  CHECK_NOTHROW(qgan::minmax_quantizer{}.fit(values, 1));
  CHECK_NOTHROW(qgan::tanh_quantizer{}.fit(values, 1));
  CHECK_NOTHROW(qgan::em_quantizer{}.fit(values, 1));
  CHECK_NOTHROW(qgan::lloyd_max_quantizer{}.fit(values, 1));
}

TEMPLATE_TEST_CASE("NaN and Inf are rejected with the index and the tensor name",
                   "[policies]", qgan::minmax_quantizer, qgan::log_quantizer,
                   qgan::tanh_quantizer, qgan::em_quantizer, qgan::lloyd_max_quantizer) {
  const TestType policy;
  std::vector<float> values{0.1f, -0.2f, 0.3f, 0.4f};
  values[2] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_WITH(policy.fit(values, 3, "gen.0.weight"),
                    Catch::Contains("gen.0.weight") && Catch::Contains("element 2") &&
                        Catch::Contains("NaN"));
  values[2] = -std::numeric_limits<float>::infinity();
  CHECK_THROWS_WITH(policy.fit(values, 3), Catch::Contains("element 2") && Catch::Contains("-Inf"));
  const std::vector<float> shaped{1.0f, std::numeric_limits<float>::infinity()};
  CHECK_THROWS_WITH(qgan::fake_quantize(policy, shaped, {2}, {.bits = 3, .name = "disc.w"}),
                    Catch::Contains("disc.w") && Catch::Contains("element 1"));
}

TEST_CASE("minmax spans the data with 2^k evenly spaced levels", "[policies][minmax]") {
  const std::vector<float> values{-1.0f, 0.0f, 0.5f, 2.0f};
  const auto grid = qgan::minmax_quantizer{}.fit(values, 2);
  CHECK(grid.beta == -1.0f);
  CHECK(grid.alpha == 1.0f);
  CHECK(encode_all(qgan::minmax_quantizer{}, values, 2) == std::vector<std::uint32_t>{0, 1, 2, 3});
  CHECK(qgan::minmax_quantizer{}.decode(3, grid) == 2.0f);
}

TEST_CASE("log quantization keeps a sign bit and a log-spaced magnitude", "[policies][log]") {
  // |w| in {4, 1, 0.25, 2}: log range [-ln 4, ln 4] on 2 magnitude bits gives the levels
  // 4^(-1 + 2j/3) = 0.25, 0.63, 1.59, 4. -1 sits at position 1.5 and rounds to even (2).
  const std::vector<float> values{-4.0f, -1.0f, 0.25f, 2.0f};
  const qgan::log_quantizer policy;
  const auto fitted = policy.fit(values, 3);
  CHECK(encode_all(policy, values, 3) == std::vector<std::uint32_t>{7, 6, 0, 2});
  CHECK(policy.decode(7, fitted) == Approx(-4.0f));
  CHECK(policy.decode(0, fitted) == Approx(0.25f));
  CHECK(policy.decode(2, fitted) == Approx(std::pow(4.0, 1.0 / 3.0)));
  CHECK(policy.decode(6, fitted) == Approx(-std::pow(4.0, 1.0 / 3.0)));
  // A zero is left out of the log range and lands on the smallest positive magnitude.
  const std::vector<float> with_zero{-4.0f, 0.0f, 0.25f, 4.0f};
  const auto zero_fit = policy.fit(with_zero, 3);
  CHECK(policy.encode(0.0f, zero_fit) == 0u);
  CHECK(policy.decode(0, zero_fit) == Approx(0.25f));
}

TEST_CASE("tanh quantization uses a fixed grid on tanh(w) and decodes finitely",
          "[policies][tanh]") {
  const std::vector<float> values{-2.0f, -0.1f, 0.1f, 2.0f};
  const qgan::tanh_quantizer policy;
  const auto fitted = policy.fit(values, 2);
  CHECK(encode_all(policy, values, 2) == std::vector<std::uint32_t>{0, 1, 2, 3});
  CHECK(policy.decode(1, fitted) == Approx(std::atanh(-1.0 / 3.0)));
  CHECK(policy.decode(2, fitted) == Approx(std::atanh(1.0 / 3.0)));
  // The paper's end states are arctanh(+-1) = +-inf; here they are the fitted extremes.
  CHECK(policy.decode(0, fitted) == -2.0f);
  CHECK(policy.decode(3, fitted) == 2.0f);
  for (int bits = 1; bits <= 8; ++bits) {
    const auto wide = policy.fit(values, bits);
    for (std::uint32_t code = 0; code < (1u << bits); ++code) {
      CHECK(std::isfinite(policy.decode(code, wide)));
    }
  }
}

TEMPLATE_TEST_CASE("degenerate tensors give defined, finite results", "[policies]",
                   qgan::minmax_quantizer, qgan::log_quantizer, qgan::tanh_quantizer,
                   qgan::em_quantizer, qgan::lloyd_max_quantizer) {
  const TestType policy;
  const int bits = 3;
  SECTION("empty") {
    const std::vector<float> values;
    const auto result = qgan::fake_quantize(policy, values, {0}, {.bits = bits});
    CHECK(result.empty());
    CHECK(qgan::mse(values, result) == 0.0);
    CHECK(qgan::sqnr_db(values, result) == std::numeric_limits<double>::infinity());
  }
  SECTION("all zero") {
    const std::vector<float> values(17, 0.0f);
    const auto result = qgan::fake_quantize(policy, values, {17}, {.bits = bits});
    if constexpr (std::is_same_v<TestType, qgan::tanh_quantizer>) {
      // Eq. 5's grid on tanh(w) has no level at 0 (2^k - 1 steps over [-1, 1] is odd), so a
      // zero decodes to the interior level arctanh(1/7) at 3 bits: defined, finite, not 0.
      for (const float value : result) CHECK(value == Approx(std::atanh(1.0 / 7.0)));
      CHECK(qgan::sqnr_db(values, result) == -std::numeric_limits<double>::infinity());
    } else {
      for (const float value : result) CHECK(value == 0.0f);
      CHECK(qgan::sqnr_db(values, result) == std::numeric_limits<double>::infinity());
    }
  }
  SECTION("constant and single element") {
    for (const std::size_t count : {std::size_t{1}, std::size_t{9}}) {
      const std::vector<float> values(count, -0.0375f);
      const auto result = qgan::fake_quantize(policy, values, {static_cast<std::int64_t>(count)},
                                              {.bits = bits});
      for (const float value : result) {
        CHECK(std::isfinite(value));
        if (TestType::name != qgan::tanh_quantizer::name) CHECK(value == Approx(-0.0375f));
      }
      const auto codes = qgan::quantize_codes(policy, values, {static_cast<std::int64_t>(count)},
                                              {.bits = bits});
      CHECK(qgan::states_used(codes.codes, bits) == 1);
      CHECK(qgan::code_entropy_bits(codes.codes, bits) == 0.0);
    }
  }
}

TEST_CASE("uniform-grid policies reproduce a constant tensor exactly", "[policies]") {
  const std::vector<float> values(5, 0.0123f);
  CHECK(qgan::fake_quantize(qgan::minmax_quantizer{}, values, {5}, {.bits = 2}) == values);
  CHECK(qgan::fake_quantize(qgan::em_quantizer{}, values, {5}, {.bits = 2}) == values);
  CHECK(qgan::fake_quantize(qgan::em_quantizer::plus(), values, {5}, {.bits = 1}) == values);
  CHECK(qgan::fake_quantize(qgan::lloyd_max_quantizer{}, values, {5}, {.bits = 4}) == values);
}

TEMPLATE_TEST_CASE("encode and decode round trip: every level re-encodes to itself",
                   "[policies]", qgan::minmax_quantizer, qgan::log_quantizer,
                   qgan::tanh_quantizer, qgan::em_quantizer, qgan::lloyd_max_quantizer) {
  const TestType policy;
  for (const auto kind : qgan::test::all_families()) {
    const auto values = qgan::test::make_weights(kind, 5000, 11);
    for (int bits = 2; bits <= 8; ++bits) {
      const auto fitted = policy.fit(values, bits);
      std::vector<float> once, twice;
      for (const float value : values) {
        const float level = policy.decode(policy.encode(value, fitted), fitted);
        once.push_back(level);
        twice.push_back(policy.decode(policy.encode(level, fitted), fitted));
      }
      INFO(qgan::test::family_name(kind) << " at " << bits << " bits");
      CHECK(once == twice);
    }
  }
}
