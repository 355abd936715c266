// The front doors both translation units of the ODR check call: the same source, compiled
// once with the baseline flags and once with AVX-512 flags. Each returns a digest of every
// byte it produced (fitted params, packed codes, decoded floats). The check's own code sits
// in an anonymous namespace and draws its weights without the standard library's engines,
// so that only qgan's symbols (and the standard library's inside them) are shared.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "qgan/pack/quantize.hpp"
#include "qgan/quant/em.hpp"
#include "qgan/quant/minmax.hpp"

namespace odr_check {
namespace {

std::uint64_t mix(std::uint64_t digest, const void* bytes, std::size_t size) {
  const auto* p = static_cast<const unsigned char*>(bytes);
  for (std::size_t i = 0; i < size; ++i) digest = (digest ^ p[i]) * 0x100000001b3ull;  // FNV-1a
  return digest;
}

std::uint64_t run_front_doors() {
  // Sums of four uniform draws of a 64-bit LCG: near-Gaussian, about 0.02 wide.
  std::uint64_t state = 2019;
  const auto uniform = [&state] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<float>(state >> 40) / 16777216.0f - 0.5f;
  };
  std::vector<float> weights(64 * 3 * 4 * 4 * 8 + 13);
  for (float& w : weights) w = 0.02f * (uniform() + uniform() + uniform() + uniform());
  std::uint64_t digest = 0xcbf29ce484222325ull;
  for (const int bits : {1, 2, 3, 4, 8}) {
    const auto em = qgan::em_quantizer::plus().fit(weights, bits);
    const auto minmax = qgan::minmax_quantizer{}.fit(weights, bits);
    digest = mix(digest, &em, sizeof em);
    digest = mix(digest, &minmax, sizeof minmax);
    const qgan::shape_t shape{static_cast<std::int64_t>(weights.size())};
    const auto packed = qgan::quantize(qgan::em_quantizer{}, weights, shape, {.bits = bits});
    digest = mix(digest, packed.params.data(), packed.params.size() * sizeof(float));
    digest = mix(digest, packed.codes.data(), packed.codes.size());
    const auto decoded = qgan::dequantize(packed);
    digest = mix(digest, decoded.data(), decoded.size() * sizeof(float));
  }
  return digest;
}

}  // namespace
}  // namespace odr_check
