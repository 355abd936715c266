// Latent vectors from a seed, the same on every platform: std::normal_distribution's
// algorithm is left to each standard library, so the generator here is spelled out.
// z[i] comes from splitmix64 (Steele et al.) driving the Box-Muller transform in double,
// rounded to float; any other tool can reproduce it, or pass its own z with `--z`.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numbers>
#include <vector>

namespace dcgan {

class splitmix64 {
 public:
  explicit splitmix64(std::uint64_t seed) : state_(seed) {}

  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }

  /// Uniform on [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

  /// Uniform on {0, ..., bound-1}; the modulo bias, bound / 2^64, is negligible here.
  std::size_t below(std::size_t bound) { return static_cast<std::size_t>(next() % bound); }

 private:
  std::uint64_t state_;
};

/// count standard-normal floats for seed: pairs (r cos t, r sin t) with
/// r = sqrt(-2 ln(1 - u1)), t = 2 pi u2.
inline std::vector<float> normal_latents(std::size_t count, std::uint64_t seed) {
  splitmix64 rng(seed);
  std::vector<float> z(count);
  for (std::size_t i = 0; i < count; i += 2) {
    const double radius = std::sqrt(-2.0 * std::log(1.0 - rng.uniform()));
    const double angle = 2.0 * std::numbers::pi * rng.uniform();
    z[i] = static_cast<float>(radius * std::cos(angle));
    if (i + 1 < count) z[i + 1] = static_cast<float>(radius * std::sin(angle));
  }
  return z;
}

}  // namespace dcgan
