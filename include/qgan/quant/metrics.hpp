// How much a quantizer loses and how much of its code space it uses: MSE, SQNR, states
// used and code entropy. The paper's central observation (minmax, log and tanh leave
// states empty) is read off `states_used` and `code_entropy_bits`.
#pragma once

#include "qgan/core/isa_namespace.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "qgan/core/error.hpp"
#include "qgan/quant/concepts.hpp"

namespace qgan {

namespace detail {
QGAN_BEGIN_FUNCTIONS
inline void require_same_size(std::size_t reference, std::size_t reconstructed,
                              const char* metric) {
  if (reference != reconstructed) {
    throw_error(metric, ": reference has ", reference, " values but reconstruction has ",
                reconstructed);
  }
}
QGAN_END_FUNCTIONS
}  // namespace detail
QGAN_BEGIN_FUNCTIONS

/// Mean squared error, accumulated in double in index order; 0 for empty input.
inline double mse(std::span<const float> reference, std::span<const float> reconstructed) {
  detail::require_same_size(reference.size(), reconstructed.size(), "mse");
  if (reference.empty()) return 0.0;
  double squared_error = 0.0;
  for (std::size_t i = 0; i < reference.size(); ++i) {
    const double error = static_cast<double>(reference[i]) - reconstructed[i];
    squared_error += error * error;
  }
  return squared_error / static_cast<double>(reference.size());
}

/// Total signal energy over total error energy, in dB. +inf when the error is 0 (empty
/// input included); -inf when the signal is 0 but the error is not.
inline double sqnr_db(std::span<const float> reference, std::span<const float> reconstructed) {
  detail::require_same_size(reference.size(), reconstructed.size(), "sqnr_db");
  double signal = 0.0, noise = 0.0;
  for (std::size_t i = 0; i < reference.size(); ++i) {
    const double error = static_cast<double>(reference[i]) - reconstructed[i];
    signal += static_cast<double>(reference[i]) * reference[i];
    noise += error * error;
  }
  if (noise == 0.0) return std::numeric_limits<double>::infinity();
  if (signal == 0.0) return -std::numeric_limits<double>::infinity();
  return 10.0 * std::log10(signal / noise);
}

inline std::vector<std::size_t> code_histogram(std::span<const std::uint8_t> codes, int bits) {
  detail::require_bits(bits, "code_histogram");
  std::vector<std::size_t> histogram(detail::level_count(bits));
  for (const std::uint8_t code : codes) {
    if (code >= histogram.size()) {
      detail::throw_error("code_histogram: code ", int{code}, " does not fit in ", bits, " bits");
    }
    ++histogram[code];
  }
  return histogram;
}

/// Number of distinct codes that occur at least `min_share` of the time (0: at all).
inline int states_used(std::span<const std::uint8_t> codes, int bits, double min_share = 0.0) {
  int used = 0;
  for (const std::size_t hits : code_histogram(codes, bits)) {
    if (hits != 0 && static_cast<double>(hits) >= min_share * static_cast<double>(codes.size())) {
      ++used;
    }
  }
  return used;
}

/// Shannon entropy of the code histogram in bits: k when all 2^k states are equally used.
inline double code_entropy_bits(std::span<const std::uint8_t> codes, int bits) {
  double entropy = 0.0;
  for (const std::size_t hits : code_histogram(codes, bits)) {
    if (hits == 0) continue;
    const double share = static_cast<double>(hits) / static_cast<double>(codes.size());
    entropy -= share * std::log2(share);
  }
  return entropy;
}

QGAN_END_FUNCTIONS
}  // namespace qgan
