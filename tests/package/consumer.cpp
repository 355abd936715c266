// A program outside qgan that uses it the way a consumer would, built once through
// find_package(qgan) after install and once through add_subdirectory.
#include <qgan/qgan.hpp>

#include <cstdio>
#include <vector>

int main() {
  std::vector<float> weight(256);
  for (std::size_t i = 0; i < weight.size(); ++i) {
    weight[i] = 0.001f * static_cast<float>(static_cast<int>(i % 37) - 18);
  }
  const auto fake = qgan::fake_quantize(qgan::em_quantizer{}, weight, {16, 16},
                                        {.bits = 2, .grain = qgan::per_channel{0}});
  const double sqnr = qgan::sqnr_db(weight, fake);
  std::printf("qgan %d.%d.%d consumer: 2-bit EM per channel, SQNR %.2f dB\n",
              qgan::version_major, qgan::version_minor, qgan::version_patch, sqnr);
  return sqnr > 5.0 ? 0 : 1;
}
