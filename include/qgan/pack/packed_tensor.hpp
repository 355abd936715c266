// A quantized tensor as qgan stores and ships it: shape, bit width, policy, granularity,
// the fitted params of every channel and the codes in the canonical packed layout
// (qgan/pack/canonical.hpp). `qgan::quantize` and `qgan::dequantize` (qgan/pack/quantize.hpp)
// are the front door; the .qgan file stores these fields as they are. validate() is the
// one definition of a well-formed packed tensor: the .qgan reader applies the same rules
// (detail::check_packed_fields, then validate), so whatever the writer accepts reads back.
#pragma once

#include "qgan/core/isa_namespace.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "qgan/core/error.hpp"
#include "qgan/core/shape.hpp"
#include "qgan/pack/canonical.hpp"
#include "qgan/quant/granularity.hpp"
#include "qgan/quant/policy_registry.hpp"
#include "qgan/quant/quantize.hpp"

namespace qgan {

namespace detail {

/// What a packed tensor's fields imply about its sizes.
struct packed_sizes {
  std::size_t count = 0;            ///< elements
  std::size_t channels = 1;         ///< 1 per tensor
  std::size_t params = 0;           ///< floats of params, all channels together
  std::size_t code_bytes = 0;       ///< canonical layout: ceil(count * bits / 8)
  std::uint64_t payload_bytes = 0;  ///< params as float32, then the codes (a .qgan payload)
};

QGAN_BEGIN_FUNCTIONS

/// The rules on a packed tensor's fields alone, before its params and codes are looked at:
/// bits within 1..8 and at least the policy's floor, a known policy, an element count and
/// a channel axis that fit the shape, and sizes that fit in 64 bits. The .qgan reader runs
/// this on each record before it touches a payload; packed_tensor::validate runs it first.
inline packed_sizes check_packed_fields(const shape_t& shape, int bits, policy_id policy,
                                        const granularity& grain, std::string_view name = {}) {
  const std::string prefix = tensor_prefix(name);
  if (bits < min_bits || bits > max_bits) {
    throw_error(prefix, "bits ", bits, " is outside ", min_bits, "..", max_bits);
  }
  const policy_info* info = find_policy(policy);
  if (info == nullptr) {
    throw_error(prefix, "policy ", static_cast<unsigned>(policy), " is unknown (",
                known_policy_ids(), ")");
  }
  if (bits < info->min_bits) {
    throw_error(prefix, "bits ", bits, " with policy ", info->name, " (", info->name,
                " needs bits >= ", info->min_bits, ")");
  }
  packed_sizes sizes;
  sizes.count = element_count(shape, name);
  sizes.channels = make_channel_layout(shape, grain, name).channels;
  constexpr std::uint64_t most = std::numeric_limits<std::uint64_t>::max();
  const std::size_t per_channel = info->params_per_channel(bits);
  if (sizes.channels > most / sizeof(float) / per_channel) {
    throw_error(prefix, "shape ", to_string(shape), " with ", sizes.channels, " channel(s) of ",
                info->name, " at ", bits, " bits needs more params than fit in 64 bits");
  }
  sizes.params = sizes.channels * per_channel;
  sizes.code_bytes = pack::packed_size(sizes.count, bits);  // throws past size_t
  const std::uint64_t params_bytes = std::uint64_t{sizes.params} * sizeof(float);
  if (sizes.code_bytes > most - params_bytes) {
    throw_error(prefix, "shape ", to_string(shape), " at ", bits,
                " bits needs a payload of more than 2^64 bytes");
  }
  sizes.payload_bytes = params_bytes + sizes.code_bytes;
  return sizes;
}

QGAN_END_FUNCTIONS
}  // namespace detail

struct packed_tensor {
  shape_t shape{};
  int bits = 0;
  policy_id policy = policy_id::em;
  granularity grain = per_tensor{};
  std::vector<float> params{};        ///< channel-major, params_per_channel() per channel
  std::vector<std::uint8_t> codes{};  ///< canonical layout, pack::packed_size(N, bits) bytes

  std::size_t element_count() const { return qgan::element_count(shape); }

  /// Throws qgan::error naming the tensor and the field if the fields disagree. Every
  /// tensor that passes can be written to a .qgan file and read back as it is.
  void validate(std::string_view name = {}) const;
};

namespace detail {
QGAN_BEGIN_FUNCTIONS

// The body of packed_tensor::validate, as a free function in the instruction-set
// namespace (qgan/core/isa_namespace.hpp): a member function's body would be shared by
// units built with different -m flags.
inline void validate_packed(const packed_tensor& t, std::string_view name) {
    const detail::packed_sizes sizes = detail::check_packed_fields(t.shape, t.bits, t.policy, t.grain, name);
    const std::string prefix = detail::tensor_prefix(name);
    const policy_info& info = *find_policy(t.policy);
    if (t.params.size() != sizes.params) {
      detail::throw_error(prefix, "params holds ", t.params.size(), " floats but shape ",
                          to_string(t.shape), " with ", sizes.channels, " channel(s) of ",
                          info.name, " at ", t.bits, " bits needs ", sizes.params);
    }
    const std::size_t stride = info.params_per_channel(t.bits);
    for (std::size_t i = 0; i < t.params.size(); ++i) {
      const bool allowed_infinity = info.allows_minus_infinity(i % stride) &&
                                    t.params[i] == -std::numeric_limits<float>::infinity();
      if (!std::isfinite(t.params[i]) && !allowed_infinity) {
        detail::throw_error(prefix, "params[", i, "] = ", t.params[i], " is not finite");
      }
    }
    if (t.codes.size() != sizes.code_bytes) {
      detail::throw_error(prefix, "codes hold ", t.codes.size(), " bytes but ", sizes.count,
                          " elements at ", t.bits, " bits need ", sizes.code_bytes);
    }
    // The canonical layout leaves them 0, so one tensor has one byte image (and one checksum).
    const std::size_t used_bits = (sizes.count * static_cast<std::size_t>(t.bits)) % 8;
    if (used_bits != 0 && (t.codes.back() >> used_bits) != 0) {
      detail::throw_error(prefix, "codes: the last byte's ", 8 - used_bits,
                          " unused high bits are not 0");
    }
}

QGAN_END_FUNCTIONS
}  // namespace detail

inline void packed_tensor::validate(std::string_view name) const { detail::validate_packed(*this, name); }

}  // namespace qgan
