// Random numbers that are the same on every platform and standard library
// (std::normal_distribution's algorithm is left to each library): splitmix64 (Steele et
// al.) driving the Box-Muller transform in double, rounded to float. Generator latents
// z ~ N(0, I) for sampling, evaluation and data-free calibration all come from here, so
// any other tool can reproduce them from a seed.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numbers>
#include <vector>

#include "qgan/core/isa_namespace.hpp"
#include "qgan/core/parallel.hpp"

namespace qgan {

class splitmix64 {
 public:
  /// Added to the state once per draw: two seeds give the same stream shifted by
  /// (seed_b - seed_a) * gamma^-1 (mod 2^64) draws (stream_offset).
  static constexpr std::uint64_t gamma = 0x9E3779B97F4A7C15ull;

  explicit splitmix64(std::uint64_t seed) : state_(seed) {}

  std::uint64_t next() {
    std::uint64_t z = (state_ += gamma);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }

  /// Uniform on [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

  /// Uniform on {0, ..., bound-1}; the modulo bias, bound / 2^64, is negligible here.
  std::size_t below(std::size_t bound) { return static_cast<std::size_t>(next() % bound); }

  /// How many draws seed b's stream runs behind seed a's (mod 2^64): the streams share
  /// values only where this, or its negation, is below the number of draws made.
  static constexpr std::uint64_t stream_offset(std::uint64_t a, std::uint64_t b) {
    // gamma is odd, so it has an inverse mod 2^64 (Newton's iteration doubles the
    // correct low bits each step: 5 steps from 3 bits reach 64+).
    std::uint64_t inverse = gamma;
    for (int i = 0; i < 5; ++i) inverse *= 2 - gamma * inverse;
    return (b - a) * inverse;
  }

 private:
  std::uint64_t state_;
};

QGAN_BEGIN_FUNCTIONS

/// count standard-normal floats for seed: pairs (r cos t, r sin t) with
/// r = sqrt(-2 ln(1 - u1)), t = 2 pi u2. With threads > 1 the same values, computed in
/// pieces: pair i takes draws 2i and 2i + 1, and splitmix64's state after k draws is
/// seed + k*gamma, so each piece starts its stream where the single one would be.
inline std::vector<float> normal_latents(std::size_t count, std::uint64_t seed, int threads = 1) {
  std::vector<float> z(count);
  const std::size_t pairs = (count + 1) / 2;
  constexpr std::size_t pairs_per_piece = std::size_t{1} << 14;
  const std::size_t pieces = (pairs + pairs_per_piece - 1) / pairs_per_piece;
  parallel_for(pieces, threads, [&](std::size_t piece) {
    const std::size_t first = piece * pairs_per_piece, last = std::min(pairs, first + pairs_per_piece);
    splitmix64 rng(seed + 2 * static_cast<std::uint64_t>(first) * splitmix64::gamma);
    for (std::size_t pair = first; pair < last; ++pair) {
      const std::size_t i = 2 * pair;
      const double radius = std::sqrt(-2.0 * std::log(1.0 - rng.uniform()));
      const double angle = 2.0 * std::numbers::pi * rng.uniform();
      z[i] = static_cast<float>(radius * std::cos(angle));
      if (i + 1 < count) z[i + 1] = static_cast<float>(radius * std::sin(angle));
    }
  });
  return z;
}

QGAN_END_FUNCTIONS

}  // namespace qgan
