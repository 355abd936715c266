// Run-time dispatch: every instruction set compiled into this binary that the CPU runs is
// checked against the scalar references, and the dispatcher picks the widest. CI also
// runs this binary under `qemu-x86_64 -cpu Nehalem` (no AVX), where only the SSE2 and
// SSE4.2 tables may be offered.
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstring>

#include "kernel_checks.hpp"
#include "qgan/simd/dispatch.hpp"

TEST_CASE("every available kernel table matches the scalar references", "[dispatch]") {
  const auto tables = qgan::simd::available_kernel_tables();
  REQUIRE_FALSE(tables.empty());
  CHECK(std::strcmp(tables.front()->arch_name, "sse2") == 0);  // the x86-64 baseline
  for (const auto* table : tables) {
    std::printf("checking the %s kernels\n", table->arch_name);
    qgan::test::check_all_kernels(*table);
  }
}

TEST_CASE("the dispatcher picks the widest instruction set the CPU runs", "[dispatch]") {
  const auto tables = qgan::simd::available_kernel_tables();
  const auto& best = qgan::simd::best_kernel_table();
  std::printf("dispatched kernels: %s\n", best.arch_name);
  CHECK(&best == tables.back());
  const auto cpu = xsimd::available_architectures();
  if (cpu.avx512bw && cpu.avx512dq && cpu.avx512cd) CHECK(std::strcmp(best.arch_name, "avx512bw") == 0);
  if (!cpu.avx2) CHECK(std::strcmp(best.arch_name, "avx2") != 0);
  if (!cpu.avx512bw) CHECK(std::strcmp(best.arch_name, "avx512bw") != 0);
}
