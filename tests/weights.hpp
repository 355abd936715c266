// Seeded weight-like test data. Each family stresses a quantizer differently: Gaussian is
// what trained conv weights look like, Laplacian has the heavy tails that stretch minmax,
// uniform is minmax's best case, bimodal is where a single grid fits worst.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace qgan::test {

enum class family { gaussian, laplacian, uniform, bimodal };

inline const char* family_name(family kind) {
  switch (kind) {
    case family::gaussian: return "gaussian";
    case family::laplacian: return "laplacian";
    case family::uniform: return "uniform";
    case family::bimodal: return "bimodal";
  }
  return "?";
}

inline std::vector<float> make_weights(family kind, std::size_t count, std::uint32_t seed,
                                       float scale = 0.02f) {
  std::mt19937 generator(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::exponential_distribution<float> exponential(1.0f / scale);
  std::uniform_real_distribution<float> uniform(-scale, scale);
  std::bernoulli_distribution coin(0.5);
  std::vector<float> weights(count);
  for (float& weight : weights) {
    switch (kind) {
      case family::gaussian: weight = normal(generator); break;
      case family::laplacian:
        weight = coin(generator) ? exponential(generator) : -exponential(generator);
        break;
      case family::uniform: weight = uniform(generator); break;
      case family::bimodal:
        weight = (coin(generator) ? 3.0f * scale : -3.0f * scale) + 0.5f * normal(generator);
        break;
    }
  }
  return weights;
}

inline const std::vector<family>& all_families() {
  static const std::vector<family> families{family::gaussian, family::laplacian,
                                            family::uniform, family::bimodal};
  return families;
}

}  // namespace qgan::test
