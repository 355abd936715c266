// MSE, SQNR, states used and code entropy on hand-computed cases and their edges.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "qgan/qgan.hpp"

TEST_CASE("MSE and SQNR on hand-computed values", "[metrics]") {
  const std::vector<float> reference{1.0f, -2.0f, 3.0f, 0.0f};
  const std::vector<float> reconstructed{1.5f, -2.0f, 2.0f, 0.0f};
  CHECK(qgan::mse(reference, reconstructed) == Approx((0.25 + 1.0) / 4.0));
  // Total signal energy 14 over total error energy 1.25.
  CHECK(qgan::sqnr_db(reference, reconstructed) == Approx(10.0 * std::log10(14.0 / 1.25)));
  CHECK(qgan::sqnr_db(reference, reference) == std::numeric_limits<double>::infinity());
  const std::vector<float> zeros(4, 0.0f);
  CHECK(qgan::sqnr_db(zeros, zeros) == std::numeric_limits<double>::infinity());
  CHECK(qgan::sqnr_db(zeros, reference) == -std::numeric_limits<double>::infinity());
  CHECK(qgan::mse(std::vector<float>{}, std::vector<float>{}) == 0.0);
  const std::vector<float> shorter(3, 0.0f);
  CHECK_THROWS_WITH(qgan::mse(reference, shorter), Catch::Contains("4") && Catch::Contains("3"));
  CHECK_THROWS_AS(qgan::sqnr_db(reference, shorter), qgan::error);
}

TEST_CASE("states used and code entropy", "[metrics]") {
  const std::vector<std::uint8_t> even{0, 1, 2, 3, 0, 1, 2, 3};
  CHECK(qgan::states_used(even, 2) == 4);
  CHECK(qgan::code_entropy_bits(even, 2) == Approx(2.0));
  const std::vector<std::uint8_t> skewed{1, 1, 1, 1, 1, 1, 1, 2};
  CHECK(qgan::states_used(skewed, 2) == 2);
  CHECK(qgan::states_used(skewed, 2, 0.2) == 1);  // code 2 holds 12.5% < 20%
  CHECK(qgan::code_entropy_bits(skewed, 2) ==
        Approx(-(7.0 / 8) * std::log2(7.0 / 8) - (1.0 / 8) * std::log2(1.0 / 8)));
  CHECK(qgan::states_used(std::vector<std::uint8_t>{}, 3) == 0);
  CHECK(qgan::code_entropy_bits(std::vector<std::uint8_t>{}, 3) == 0.0);
  CHECK_THROWS_WITH(qgan::states_used(std::vector<std::uint8_t>{4}, 2),
                    Catch::Contains("code 4") && Catch::Contains("2 bits"));
}
