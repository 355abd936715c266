// qgan::quantize / qgan::dequantize: the packed front door gives exactly what the
// unpacked codes give, for every policy, width and granularity; the canonical layout's
// size is ceil(N*k/8); inconsistent fields are refused with a message naming them; the
// policy registry gives each policy and method its frozen facts.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "qgan/pack/packed_tensor.hpp"
#include "qgan/pack/quantize.hpp"
#include "qgan/quant/policy_registry.hpp"
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
    CHECK(fast == exact);  // every kernel set decodes as the reference does
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
  CHECK_THROWS_WITH(broken.validate("g"), Catch::Contains("'g'") && Catch::Contains("bits 9"));
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
  CHECK_THROWS_WITH(broken.validate("g"), Catch::Contains("policy 77 is unknown"));
  CHECK(qgan::policy_from_name("lloyd") == qgan::policy_id::lloyd);
  CHECK_FALSE(qgan::policy_from_name("kmeans").has_value());
}

TEST_CASE("a last code byte with unused high bits set is refused", "[packed]") {
  const std::vector<float> values{0.1f, -0.2f, 0.3f, 0.0f, 0.5f};  // 15 bits: 1 unused
  qgan::packed_tensor packed = qgan::quantize(qgan::minmax_quantizer{}, values, {5}, {.bits = 3});
  REQUIRE(packed.codes.size() == 2);
  REQUIRE_NOTHROW(packed.validate("u"));
  packed.codes.back() |= 0x80;
  CHECK_THROWS_WITH(packed.validate("u"), Catch::Contains("tensor 'u'") &&
                                              Catch::Contains("1 unused high bits are not 0"));
}

TEST_CASE("the policy registry gives each policy its frozen facts", "[packed]") {
  using qgan::policy_id;
  // The ids are part of the .qgan format: these numbers may never change.
  const std::vector<std::pair<int, std::string_view>> frozen{
      {1, "minmax"}, {2, "log"}, {3, "tanh"}, {4, "em"}, {5, "lloyd"}};
  REQUIRE(qgan::policies.size() == frozen.size());
  for (const auto& [number, name] : frozen) {
    INFO(name);
    const auto id = static_cast<policy_id>(number);
    CHECK(qgan::policy_name(id) == name);
    CHECK(qgan::policy_from_name(name) == id);
    const qgan::policy_info& info = *qgan::find_policy(id);
    CHECK(info.min_bits == (name == "log" ? 2 : 1));
    CHECK(info.uniform_grid() == (name == "minmax" || name == "em"));
    CHECK(info.params_per_channel(3) == (name == "lloyd" ? 8u : 2u));
    CHECK(qgan::params_per_channel(id, 8) == (name == "lloyd" ? 256u : 2u));
    const std::string_view made = qgan::with_policy(id, [&](const auto& quantizer) {
      using Q = std::decay_t<decltype(quantizer)>;
      CHECK(qgan::detail::policy_traits<Q>::id == id);
      return Q::name;
    });
    CHECK(made == name);
  }
  CHECK(qgan::policy_name(static_cast<policy_id>(0)) == "unknown");
  CHECK(qgan::params_per_channel(static_cast<policy_id>(6), 2) == 0);
  CHECK(qgan::params_per_channel(policy_id::lloyd, 9) == 0);
  CHECK_THROWS_WITH(qgan::with_policy(static_cast<policy_id>(9), [](const auto&) { return 0; }),
                    Catch::Contains("policy id 9 is unknown") && Catch::Contains("5 lloyd"));

  // A codebook's levels are its params; a grid's are what its quantizer decodes.
  const std::vector<float> codebook{-1.0f, -0.5f, 0.25f, 2.0f};
  CHECK(qgan::detail::channel_levels(policy_id::lloyd, 2, codebook.data()) == codebook);
  const std::vector<float> grid{0.5f, -1.0f};
  CHECK(qgan::detail::channel_levels(policy_id::em, 2, grid.data()) ==
        std::vector<float>{-1.0f, -0.5f, 0.0f, 0.5f});
}

TEST_CASE("methods name quantizers, options included", "[packed]") {
  const std::vector<std::string_view> expected{"minmax", "log", "tanh", "em", "em+", "lloyd"};
  CHECK(qgan::method_names() == expected);
  const std::vector<float> values = qgan::test::make_weights(qgan::test::family::gaussian, 64, 5);
  for (const auto& method : qgan::methods()) {
    INFO(method.name);
    const qgan::packed_tensor packed = qgan::with_method(method.name, [&](const auto& quantizer) {
      return qgan::quantize(quantizer, values, {64}, {.bits = 2});
    });
    CHECK(packed.policy == method.policy());
    CHECK(qgan::policy_name(method.policy()) == (method.name == "em+" ? "em" : method.name));
  }
  const auto one_bit_exact = [](std::string_view name) {
    return qgan::with_method(name, [](const auto& quantizer) {
      if constexpr (std::is_same_v<std::decay_t<decltype(quantizer)>, qgan::em_quantizer>) {
        return quantizer.exact_one_bit;
      } else {
        return false;
      }
    });
  };
  CHECK_FALSE(one_bit_exact("em"));
  CHECK(one_bit_exact("em+"));
  CHECK_THROWS_WITH(qgan::with_method("kmeans", [](const auto&) { return 0; }),
                    Catch::Contains("unknown method 'kmeans'") && Catch::Contains("em+, lloyd"));
}
