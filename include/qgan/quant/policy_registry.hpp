// The policy registry: every fact about a quantizer policy in one row (its frozen .qgan id,
// the quantizer type that implements it and so its name and params, the smallest width it
// supports), and the methods a user picks by name, where one policy may appear with
// different options ("em" and "em+"). The file reader, packed_tensor::validate, the front
// doors and the tool read these tables instead of listing the policies themselves, so
// adding a policy is one row here.
//
//   policy_id, policies (constexpr array of policy_info), find_policy(id | name)
//   policy_name(id), policy_from_name(name), params_per_channel(id, bits)
//   with_policy(id, fn)        fn(Q{}) with the policy's default-constructed quantizer
//   methods(), method_names()  "minmax", "log", "tanh", "em", "em+", "lloyd"
//   with_method(name, fn)      fn(quantizer) as the method configures it
#pragma once

#include "qgan/core/isa_namespace.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "qgan/core/error.hpp"
#include "qgan/quant/concepts.hpp"
#include "qgan/quant/em.hpp"
#include "qgan/quant/lloyd_max.hpp"
#include "qgan/quant/log.hpp"
#include "qgan/quant/minmax.hpp"
#include "qgan/quant/tanh.hpp"
#include "qgan/quant/uniform_grid.hpp"

namespace qgan {

/// Which policy made a tensor's codes: it decides how params decode them. The numbers are
/// part of the .qgan format: never renumber one, never reuse one.
enum class policy_id : std::uint8_t { minmax = 1, log = 2, tanh = 3, em = 4, lloyd = 5 };

/// How one channel's params (float32s, in this order) describe its levels.
enum class param_form : std::uint8_t {
  uniform_grid,  ///< (alpha, beta): code z is fma(alpha, z, beta); kernels decode it directly
  log_grid,      ///< (log_alpha, log_beta); log_beta is -inf for an all-zero channel
  tanh_range,    ///< (lowest, highest): what the end codes decode to
  codebook,      ///< the 2^bits levels themselves
};

namespace detail {

// How each params type lies in a file: the float32s of one channel, in order. The form
// belongs to the params type, so two policies sharing one (minmax and EM) cannot disagree.
template <class P>
struct param_codec;

template <>
struct param_codec<uniform_params> {
  static constexpr param_form form = param_form::uniform_grid;
  static void append(const uniform_params& p, std::vector<float>& out) {
    out.insert(out.end(), {p.alpha, p.beta});
  }
  static uniform_params read(const float* channel, int bits) {
    return {channel[0], channel[1], bits};
  }
};

template <>
struct param_codec<log_params> {
  static constexpr param_form form = param_form::log_grid;
  static void append(const log_params& p, std::vector<float>& out) {
    out.insert(out.end(), {p.log_alpha, p.log_beta});
  }
  static log_params read(const float* channel, int bits) { return {channel[0], channel[1], bits}; }
};

template <>
struct param_codec<tanh_params> {
  static constexpr param_form form = param_form::tanh_range;
  static void append(const tanh_params& p, std::vector<float>& out) {
    out.insert(out.end(), {p.lowest, p.highest});
  }
  static tanh_params read(const float* channel, int bits) { return {channel[0], channel[1], bits}; }
};

template <>
struct param_codec<codebook_params> {
  static constexpr param_form form = param_form::codebook;
  static void append(const codebook_params& p, std::vector<float>& out) {
    out.insert(out.end(), p.levels.begin(), p.levels.end());
  }
  static codebook_params read(const float* channel, int bits) {
    return {std::vector<float>(channel, channel + level_count(bits)), bits};
  }
};

}  // namespace detail

/// One row of the registry, as types, so that the row can also say which quantizer to
/// construct. Name and params come from the quantizer; MinBits is the policy's own floor.
template <policy_id Id, quantizer Q, int MinBits>
struct policy_row {
  static constexpr policy_id id = Id;
  using quantizer_type = Q;
  static constexpr int min_bits = MinBits;
  static_assert(MinBits >= qgan::min_bits && MinBits <= qgan::max_bits);
};

namespace detail {

using policy_rows = std::tuple<
    policy_row<policy_id::minmax, minmax_quantizer, 1>,
    policy_row<policy_id::log, log_quantizer, 2>,  // a sign bit and at least one magnitude bit
    policy_row<policy_id::tanh, tanh_quantizer, 1>,
    policy_row<policy_id::em, em_quantizer, 1>,
    policy_row<policy_id::lloyd, lloyd_max_quantizer, 1>>;

inline constexpr std::size_t policy_count = std::tuple_size_v<policy_rows>;

}  // namespace detail

/// The registry's facts as plain values, for code that holds a policy_id at run time.
struct policy_info {
  policy_id id{};
  std::string_view name;  ///< the quantizer's name, used by messages and the tool
  int min_bits = 1;
  param_form form{};

  /// Floats of params per channel; 0 for a width outside 1..8, which no tensor can have.
  [[nodiscard]] constexpr std::size_t params_per_channel(int bits) const noexcept {
    if (bits < qgan::min_bits || bits > qgan::max_bits) return 0;
    return form == param_form::codebook ? std::size_t{1} << bits : 2;
  }
  [[nodiscard]] constexpr bool uniform_grid() const noexcept {
    return form == param_form::uniform_grid;
  }
  /// The one non-finite value a fit produces: log's all-zero channel stores log_beta = -inf.
  [[nodiscard]] constexpr bool allows_minus_infinity(std::size_t index_in_channel) const noexcept {
    return form == param_form::log_grid && index_in_channel == 1;
  }
};

namespace detail {
QGAN_BEGIN_FUNCTIONS

template <class... Rows>
constexpr std::array<policy_info, sizeof...(Rows)> make_policy_table(
    std::type_identity<std::tuple<Rows...>>) {
  return {policy_info{Rows::id, Rows::quantizer_type::name, Rows::min_bits,
                      param_codec<typename Rows::quantizer_type::params>::form}...};
}

QGAN_END_FUNCTIONS
}  // namespace detail

/// Every policy, in id order.
inline constexpr std::array<policy_info, detail::policy_count> policies =
    detail::make_policy_table(std::type_identity<detail::policy_rows>{});

namespace detail {
QGAN_BEGIN_FUNCTIONS

constexpr bool policy_table_is_sound() {
  for (std::size_t i = 0; i < policies.size(); ++i) {
    if (static_cast<unsigned>(policies[i].id) != i + 1) return false;  // ids 1..n, dense
    for (std::size_t j = 0; j < i; ++j) {
      if (policies[i].name == policies[j].name) return false;
    }
  }
  return true;
}
static_assert(policy_table_is_sound(), "policy ids must be 1..n in order and names unique");

QGAN_END_FUNCTIONS
}  // namespace detail

QGAN_BEGIN_FUNCTIONS

[[nodiscard]] constexpr const policy_info* find_policy(policy_id policy) noexcept {
  const auto index = static_cast<std::size_t>(policy);
  return index >= 1 && index <= policies.size() ? &policies[index - 1] : nullptr;
}

[[nodiscard]] constexpr const policy_info* find_policy(std::string_view name) noexcept {
  for (const auto& info : policies) {
    if (info.name == name) return &info;
  }
  return nullptr;
}

/// "unknown" for an id no row has (a stray cast, a file from the future).
[[nodiscard]] constexpr std::string_view policy_name(policy_id policy) noexcept {
  const policy_info* info = find_policy(policy);
  return info != nullptr ? info->name : std::string_view("unknown");
}

[[nodiscard]] constexpr std::optional<policy_id> policy_from_name(std::string_view name) noexcept {
  const policy_info* info = find_policy(name);
  return info != nullptr ? std::optional<policy_id>(info->id) : std::nullopt;
}

/// Floats of params per channel: (alpha, beta) for minmax and EM, (log_alpha, log_beta)
/// for log, (lowest, highest) for tanh, the 2^bits levels for Lloyd-Max; 0 for an unknown
/// policy or a width outside 1..8.
[[nodiscard]] constexpr std::size_t params_per_channel(policy_id policy, int bits) noexcept {
  const policy_info* info = find_policy(policy);
  return info != nullptr ? info->params_per_channel(bits) : 0;
}

/// "1 minmax, 2 log, 3 tanh, 4 em, 5 lloyd", for messages that refuse an unknown id.
inline std::string known_policy_ids() {
  std::string text;
  for (const auto& info : policies) {
    if (!text.empty()) text += ", ";
    text += std::to_string(static_cast<unsigned>(info.id));
    text += ' ';
    text += info.name;
  }
  return text;
}

QGAN_END_FUNCTIONS

namespace detail {
QGAN_BEGIN_FUNCTIONS

template <class Q, std::size_t I = 0>
constexpr policy_id policy_id_of() {
  static_assert(I < policy_count, "this quantizer type has no row in the policy registry");
  using row = std::tuple_element_t<I, policy_rows>;
  if constexpr (std::is_same_v<typename row::quantizer_type, Q>) {
    return row::id;
  } else {
    return policy_id_of<Q, I + 1>();
  }
}


QGAN_END_FUNCTIONS

/// What the packed front door needs of a quantizer type: its id and how its params lie.
template <class Q>
struct policy_traits {
  static constexpr policy_id id = policy_id_of<Q>();
  static void append(const typename Q::params& p, std::vector<float>& out) {
    param_codec<typename Q::params>::append(p, out);
  }
  static typename Q::params read(const float* channel, int bits) {
    return param_codec<typename Q::params>::read(channel, bits);
  }
};

template <class Fn>
using policy_result_t =
    std::invoke_result_t<Fn&, const typename std::tuple_element_t<0, policy_rows>::quantizer_type&>;


QGAN_BEGIN_FUNCTIONS

template <class R, std::size_t I, class Fn>
R visit_policy(policy_id policy, Fn& fn) {
  if constexpr (I == policy_count) {
    throw_error("policy id ", static_cast<unsigned>(policy), " is unknown (", known_policy_ids(),
                ")");
  } else {
    using row = std::tuple_element_t<I, policy_rows>;
    if (policy == row::id) {
      const typename row::quantizer_type quantizer{};
      return fn(quantizer);
    }
    return visit_policy<R, I + 1>(policy, fn);
  }
}

QGAN_END_FUNCTIONS
}  // namespace detail

QGAN_BEGIN_FUNCTIONS

/// Calls fn with the default-constructed quantizer of `policy` (every fn must return the
/// same type); throws qgan::error for an id no row has.
template <class Fn>
decltype(auto) with_policy(policy_id policy, Fn&& fn) {
  return detail::visit_policy<detail::policy_result_t<Fn>, 0>(policy, fn);
}

QGAN_END_FUNCTIONS

namespace detail {
QGAN_BEGIN_FUNCTIONS

// The 2^bits values a channel's codes decode to, whatever the policy: each quantizer's own
// decode, so a table can never drift from the policy it stands for.
inline std::vector<float> channel_levels(policy_id policy, int bits, const float* channel_params) {
  return with_policy(policy, [&](const auto& q) {
    using Q = std::decay_t<decltype(q)>;
    const typename Q::params params = policy_traits<Q>::read(channel_params, bits);
    std::vector<float> levels(level_count(bits));
    for (std::uint32_t code = 0; code < levels.size(); ++code) levels[code] = q.decode(code, params);
    return levels;
  });
}

template <class... Rows>
std::variant<typename Rows::quantizer_type...> any_quantizer_of(std::type_identity<std::tuple<Rows...>>);

QGAN_END_FUNCTIONS
}  // namespace detail

/// A quantizer of any registered policy, options included.
using any_quantizer =
    decltype(detail::any_quantizer_of(std::type_identity<detail::policy_rows>{}));

/// A method: a name a user picks a quantizer by, and the quantizer it stands for. Its
/// policy follows from the quantizer's type.
struct method_info {
  std::string_view name;
  any_quantizer quantizer;

  [[nodiscard]] policy_id policy() const noexcept {
    return std::visit(
        [](const auto& q) { return detail::policy_traits<std::decay_t<decltype(q)>>::id; },
        quantizer);
  }
};

namespace detail {
QGAN_BEGIN_FUNCTIONS

template <class Q>
method_info plain_method() {
  return {Q::name, Q{}};
}

QGAN_END_FUNCTIONS
}  // namespace detail

QGAN_BEGIN_FUNCTIONS

/// Every method, in the order tables list them: each policy under its own name with its
/// default options, and "em+", EM with exact 1-bit 2-means and restarts.
inline std::span<const method_info> methods() {
  static const std::array<method_info, 6> table{
      detail::plain_method<minmax_quantizer>(), detail::plain_method<log_quantizer>(),
      detail::plain_method<tanh_quantizer>(),   detail::plain_method<em_quantizer>(),
      method_info{"em+", em_quantizer::plus()}, detail::plain_method<lloyd_max_quantizer>()};
  return table;
}

inline const std::vector<std::string_view>& method_names() {
  static const std::vector<std::string_view> names = [] {
    std::vector<std::string_view> out;
    for (const auto& method : methods()) out.push_back(method.name);
    return out;
  }();
  return names;
}

[[nodiscard]] inline const method_info* find_method(std::string_view name) noexcept {
  for (const auto& method : methods()) {
    if (method.name == name) return &method;
  }
  return nullptr;
}

/// Calls fn(quantizer) with the quantizer `method` names (every fn must return the same
/// type); throws qgan::error listing the methods when there is no such method.
template <class Fn>
decltype(auto) with_method(std::string_view method, Fn&& fn) {
  const method_info* found = find_method(method);
  if (found == nullptr) {
    std::string choices;
    for (const std::string_view name : method_names()) {
      if (!choices.empty()) choices += ", ";
      choices += name;
    }
    detail::throw_error("unknown method '", method, "' (choose one of ", choices, ")");
  }
  return std::visit(std::forward<Fn>(fn), found->quantizer);
}

QGAN_END_FUNCTIONS
}  // namespace qgan
