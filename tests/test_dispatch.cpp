// Run-time dispatch: every kernel set compiled into this binary that the CPU runs is
// checked against the scalar references, the dispatcher picks the widest, and the front
// doors go through it. CI also runs this binary under `qemu-x86_64 -cpu Nehalem` (no
// AVX), where only the scalar, SSE2 and SSE4.2 sets may be offered, and under
// qemu-aarch64 (NEON).
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "kernel_checks.hpp"
#include "qgan/pack/quantize.hpp"
#include "qgan/simd/dispatch.hpp"

TEST_CASE("every available kernel set matches the scalar references", "[dispatch]") {
  const auto sets = qgan::simd::available_kernel_sets();
  REQUIRE(sets.size() >= 1);
  CHECK(std::strcmp(sets.front()->name, "scalar") == 0);
#if defined(__x86_64__)
  REQUIRE(sets.size() >= 2);
  CHECK(std::strcmp(sets[1]->name, "sse2") == 0);  // the x86-64 baseline
#endif
  for (const auto* set : sets) {
    std::printf("checking the %s kernels\n", set->name);
    qgan::test::check_all_kernels(*set);
  }
}

TEST_CASE("the dispatcher picks the widest set the CPU runs, or the forced one", "[dispatch]") {
  REQUIRE(qgan::simd::kernels_dispatched());
  const auto sets = qgan::simd::available_kernel_sets();
  const auto& chosen = qgan::simd::dispatched_kernel_set();
  std::printf("dispatched kernels: %s\n", chosen.name);
  const char* forced = std::getenv("QGAN_KERNELS");
  if (forced != nullptr && *forced != '\0') {
    CHECK(std::string(chosen.name) == forced);
  } else {
    CHECK(&chosen == sets.back());
  }
  CHECK(&qgan::simd::active_kernels<>() == &chosen);
  const auto cpu = qgan::simd::detect_cpu_features();
  for (const auto* set : sets) {
    const std::string name = set->name;
    if (name == "avx2") CHECK(cpu.avx2_fma);
    if (name == "avx512bw") CHECK(cpu.avx512bw);
    if (name == "avx512vnni") CHECK(cpu.avx512vnni);
  }
  if (cpu.avx512vnni) CHECK(std::string(sets.back()->name) == "avx512vnni");
}

TEST_CASE("a set the CPU or the binary lacks is refused by name", "[dispatch]") {
  CHECK_THROWS_WITH(qgan::simd::kernel_set_named("avx1024"),
                    Catch::Contains("kernel set 'avx1024' is not available") &&
                        Catch::Contains("scalar"));
}

TEST_CASE("every set fits the same EM grid and writes the same codes", "[dispatch]") {
  const auto values = qgan::test::make_weights(qgan::test::family::gaussian, 200003, 9);
  const auto reference = qgan::em_quantizer::plus().fit_with<qgan::simd::scalar_tag>(
      qgan::simd::reference_kernel_set<>(), values, 2);
  for (const auto* set : qgan::simd::available_kernel_sets()) {
    INFO("kernel set " << set->name);
    for (const int threads : {1, 3}) {
      auto policy = qgan::em_quantizer::plus();
      policy.threads = threads;
      const auto fitted = policy.fit_with(*set, values, 2);
      CHECK(fitted.params == reference.params);
      CHECK(fitted.mse == reference.mse);
    }
  }
}
