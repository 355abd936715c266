// The kernels for the instruction set this file is compiled for (static dispatch). CI
// builds the tests with the default x86-64 flags (SSE2 kernels) and with -march=native
// (AVX-512 on CI's machines); test_dispatch.cpp covers every set through run-time dispatch.
#include <catch2/catch.hpp>

#include "kernel_checks.hpp"
#include "qgan/simd/kernels.hpp"

TEST_CASE("static-dispatch kernels match the scalar references", "[kernels]") {
  const auto table =
      qgan::simd::make_kernel_table<qgan::simd::native_kernels>(xsimd::default_arch::name());
  qgan::test::check_all_kernels(table);
}
