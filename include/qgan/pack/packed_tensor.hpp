// A quantized tensor as qgan stores and ships it: shape, bit width, policy, granularity,
// the fitted params of every channel and the codes in the canonical packed layout
// (qgan/pack/canonical.hpp). `qgan::quantize` and `qgan::dequantize` are the front door;
// the .qgan file stores these fields as they are.
#pragma once

#include <cmath>
#include <cstddef>
#include <limits>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "qgan/core/error.hpp"
#include "qgan/core/shape.hpp"
#include "qgan/pack/canonical.hpp"
#include "qgan/quant/em.hpp"
#include "qgan/quant/granularity.hpp"
#include "qgan/quant/lloyd_max.hpp"
#include "qgan/quant/log.hpp"
#include "qgan/quant/minmax.hpp"
#include "qgan/quant/quantize.hpp"
#include "qgan/quant/tanh.hpp"

namespace qgan {

/// Which policy made the codes: it decides how params decode them. The numbers are part
/// of the .qgan format and never change meaning.
enum class policy_id : std::uint8_t { minmax = 1, log = 2, tanh = 3, em = 4, lloyd = 5 };

inline std::string_view policy_name(policy_id policy) noexcept {
  switch (policy) {
    case policy_id::minmax: return "minmax";
    case policy_id::log: return "log";
    case policy_id::tanh: return "tanh";
    case policy_id::em: return "em";
    case policy_id::lloyd: return "lloyd";
  }
  return "unknown";
}

inline std::optional<policy_id> policy_from_name(std::string_view name) noexcept {
  for (const policy_id policy : {policy_id::minmax, policy_id::log, policy_id::tanh,
                                 policy_id::em, policy_id::lloyd}) {
    if (policy_name(policy) == name) return policy;
  }
  return std::nullopt;
}

/// Floats of params per channel: (alpha, beta) for minmax and EM, (log_alpha, log_beta)
/// for log, (lowest, highest) for tanh, the 2^bits levels for Lloyd-Max.
inline std::size_t params_per_channel(policy_id policy, int bits) noexcept {
  return policy == policy_id::lloyd ? std::size_t{1} << bits : 2;
}

struct packed_tensor {
  shape_t shape{};
  int bits = 0;
  policy_id policy = policy_id::em;
  granularity grain = per_tensor{};
  std::vector<float> params{};        ///< channel-major, params_per_channel() per channel
  std::vector<std::uint8_t> codes{};  ///< canonical layout, pack::packed_size(N, bits) bytes

  std::size_t element_count() const { return qgan::element_count(shape); }

  /// Throws qgan::error naming the tensor and the field if the fields disagree.
  void validate(std::string_view name = {}) const {
    const std::string prefix = detail::tensor_prefix(name);
    if (bits < min_bits || bits > max_bits) {
      detail::throw_error(prefix, "bits = ", bits, " is outside ", min_bits, "..", max_bits);
    }
    if (policy_name(policy) == "unknown") {
      detail::throw_error(prefix, "policy id ", int(policy), " is unknown");
    }
    if (policy == policy_id::log && bits < 2) {
      detail::throw_error(prefix, "log policy with bits = ", bits, " (needs bits >= 2)");
    }
    const std::size_t count = qgan::element_count(shape, name);
    const channel_layout layout = make_channel_layout(shape, grain, name);
    const std::size_t expected_params = layout.channels * params_per_channel(policy, bits);
    if (params.size() != expected_params) {
      detail::throw_error(prefix, "params holds ", params.size(), " floats but shape ",
                          to_string(shape), " with ", layout.channels, " channel(s) of ",
                          policy_name(policy), " at ", bits, " bits needs ", expected_params);
    }
    for (std::size_t i = 0; i < params.size(); ++i) {
      // The one infinity a fit produces: log's all-zero channel, log_beta = -inf.
      const bool zero_log_channel = policy == policy_id::log && i % 2 == 1 &&
                                    params[i] == -std::numeric_limits<float>::infinity();
      if (!std::isfinite(params[i]) && !zero_log_channel) {
        detail::throw_error(prefix, "params[", i, "] = ", params[i], " is not finite");
      }
    }
    const std::size_t expected_bytes = pack::packed_size(count, bits);
    if (codes.size() != expected_bytes) {
      detail::throw_error(prefix, "codes hold ", codes.size(), " bytes but ", count,
                          " elements at ", bits, " bits need ", expected_bytes);
    }
  }
};

namespace detail {

template <class Q> struct policy_traits;

// Minmax and EM store the same uniform grid; only the id tells them apart.
struct uniform_grid_traits {
  static void append(const uniform_params& p, std::vector<float>& out) {
    out.insert(out.end(), {p.alpha, p.beta});
  }
};
template <> struct policy_traits<minmax_quantizer> : uniform_grid_traits {
  static constexpr policy_id id = policy_id::minmax;
};
template <> struct policy_traits<em_quantizer> : uniform_grid_traits {
  static constexpr policy_id id = policy_id::em;
};
template <> struct policy_traits<log_quantizer> {
  static constexpr policy_id id = policy_id::log;
  static void append(const log_params& p, std::vector<float>& out) {
    out.insert(out.end(), {p.log_alpha, p.log_beta});
  }
};
template <> struct policy_traits<tanh_quantizer> {
  static constexpr policy_id id = policy_id::tanh;
  static void append(const tanh_params& p, std::vector<float>& out) {
    out.insert(out.end(), {p.lowest, p.highest});
  }
};
template <> struct policy_traits<lloyd_max_quantizer> {
  static constexpr policy_id id = policy_id::lloyd;
  static void append(const codebook_params& p, std::vector<float>& out) {
    out.insert(out.end(), p.levels.begin(), p.levels.end());
  }
};

// The 2^bits values a channel's codes decode to, whatever the policy.
inline std::vector<float> channel_levels(policy_id policy, int bits, const float* channel_params) {
  std::vector<float> levels(level_count(bits));
  for (std::uint32_t code = 0; code < levels.size(); ++code) {
    switch (policy) {
      case policy_id::minmax:
      case policy_id::em:
        levels[code] = uniform_decode(code, {channel_params[0], channel_params[1], bits});
        break;
      case policy_id::log:
        levels[code] = log_quantizer{}.decode(code, {channel_params[0], channel_params[1], bits});
        break;
      case policy_id::tanh:
        levels[code] = tanh_quantizer{}.decode(code, {channel_params[0], channel_params[1], bits});
        break;
      case policy_id::lloyd: levels[code] = channel_params[code]; break;
    }
  }
  return levels;
}

}  // namespace detail

}  // namespace qgan
