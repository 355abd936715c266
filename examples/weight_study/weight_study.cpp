// The weight-level twin of the QGAN paper's Table 2: every policy at 1-4 bits on one
// realistic weight tensor, with Lloyd-Max as the floor no uniform grid can beat.
// Data: 100,000 Laplacian weights with standard deviation 0.02 (the scale of trained
// DCGAN conv weights) plus 16 outliers at 6-10 standard deviations, seed 2019.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "qgan/qgan.hpp"

namespace {

constexpr std::uint32_t seed = 2019;
constexpr std::size_t weight_count = 100000;
constexpr std::size_t outlier_count = 16;
constexpr float deviation = 0.02f;

std::vector<float> realistic_weights() {
  std::mt19937 generator(seed);
  // A Laplacian with scale b has standard deviation b * sqrt(2).
  std::exponential_distribution<float> magnitude(std::sqrt(2.0f) / deviation);
  std::bernoulli_distribution negative(0.5);
  std::uniform_real_distribution<float> outlier_size(6.0f * deviation, 10.0f * deviation);
  std::vector<float> weights(weight_count);
  for (float& weight : weights) {
    weight = negative(generator) ? -magnitude(generator) : magnitude(generator);
  }
  std::uniform_int_distribution<std::size_t> position(0, weight_count - 1);
  for (std::size_t i = 0; i < outlier_count; ++i) {
    weights[position(generator)] = negative(generator) ? -outlier_size(generator)
                                                       : outlier_size(generator);
  }
  return weights;
}

template <class Q>
void print_row(const char* label, const Q& policy, const std::vector<float>& weights, int bits) {
  const qgan::shape_t shape{static_cast<std::int64_t>(weights.size())};
  try {
    const auto quantized = qgan::quantize_codes(policy, weights, shape, {.bits = bits});
    const auto restored = qgan::dequantize_codes(policy, quantized);
    std::printf("| %d | %-11s | %10.3e | %6.2f | %d | %d | %.3f |\n", bits, label,
                qgan::mse(weights, restored), qgan::sqnr_db(weights, restored),
                qgan::states_used(quantized.codes, bits),
                qgan::states_used(quantized.codes, bits, 0.01),
                qgan::code_entropy_bits(quantized.codes, bits));
  } catch (const qgan::error&) {  // a width the policy cannot work at (log at 1 bit)
    std::printf("| %d | %-11s | n/a | n/a | n/a | n/a | n/a |\n", bits, label);
  }
}

}  // namespace

int main() {
  const std::vector<float> weights = realistic_weights();
  std::printf("Weight study: %zu Laplacian weights (std %.2f) + %zu outliers at 6-10 std, "
              "seed %u, per tensor\n\n",
              weight_count, static_cast<double>(deviation), outlier_count, seed);
  std::printf("| bits | policy | MSE | SQNR (dB) | states used | states >= 1%% | entropy (bits) |\n");
  std::printf("|---:|---|---:|---:|---:|---:|---:|\n");
  for (int bits = 1; bits <= 4; ++bits) {
    print_row("minmax", qgan::minmax_quantizer{}, weights, bits);
    print_row("log", qgan::log_quantizer{}, weights, bits);
    print_row("tanh", qgan::tanh_quantizer{}, weights, bits);
    print_row("EM (paper)", qgan::em_quantizer{}, weights, bits);
    print_row("EM+", qgan::em_quantizer::plus(), weights, bits);
    print_row("Lloyd-Max", qgan::lloyd_max_quantizer{}, weights, bits);
  }
  return 0;
}
