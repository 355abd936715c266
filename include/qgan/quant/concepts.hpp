// The contract every quantizer policy meets, so granularity, fake-quant, metrics and (later)
// packing are written once for all of them. A policy is a small value type whose options
// are public members; its fitted state is a nested `params` type that records `bits`.
#pragma once

#include <concepts>
#include <cstdint>
#include <span>
#include <string_view>

#include "qgan/core/error.hpp"

namespace qgan {

inline constexpr int min_bits = 1;
inline constexpr int max_bits = 8;

template <class Q>
concept quantizer = std::copyable<Q> && requires(const Q policy, std::span<const float> values,
                                                 int bits, const typename Q::params& fitted,
                                                 float value, std::uint32_t code) {
  typename Q::params;
  { Q::name } -> std::convertible_to<std::string_view>;
  { policy.fit(values, bits) } -> std::same_as<typename Q::params>;
  { policy.encode(value, fitted) } -> std::same_as<std::uint32_t>;
  { policy.decode(code, fitted) } -> std::same_as<float>;
  { fitted.bits } -> std::convertible_to<int>;
};

namespace detail {

// Every policy calls this first in fit(), so an unsupported width is an error at fit time
// (and an "n/a" cell in a table), never a silently wrong grid.
inline void require_bits(int bits, std::string_view policy, int lowest = min_bits,
                         std::string_view why_lowest = {}) {
  if (bits < lowest || bits > max_bits) {
    if (bits < lowest && !why_lowest.empty()) {
      throw_error(policy, ": bits = ", bits, " is not supported: ", why_lowest);
    }
    throw_error(policy, ": bits = ", bits, " is outside the supported range ", lowest, "..",
                max_bits);
  }
}

constexpr std::uint32_t level_count(int bits) noexcept { return std::uint32_t{1} << bits; }
constexpr std::uint32_t top_code(int bits) noexcept { return level_count(bits) - 1; }

}  // namespace detail
}  // namespace qgan
