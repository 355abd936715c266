// The ODR check (issue: front doors must not break the one-definition rule when units of
// one program are built with different -m flags). This unit has the baseline flags and
// calls the front doors; wide_unit.cpp calls the same ones built for AVX-512 and is
// linked first. Run under `qemu-x86_64 -cpu Nehalem` it must not die of SIGILL; run
// natively, both units must print the same digest, and that digest must match the
// Nehalem run's (CI compares them).
#include <cstdio>

#include "front_doors.hpp"
#include "qgan/simd/cpu_features.hpp"

std::uint64_t wide_unit_digest();

int main() {
  const std::uint64_t baseline = odr_check::run_front_doors();
  std::printf("baseline unit: %016llx\n", static_cast<unsigned long long>(baseline));
  if (!qgan::simd::detect_cpu_features().avx512bw) {
    std::printf("no AVX-512 here: the wide unit is not called\n");
    return 0;
  }
  const std::uint64_t wide = wide_unit_digest();
  std::printf("wide unit:     %016llx\n", static_cast<unsigned long long>(wide));
  return wide == baseline ? 0 : 1;
}
