// The kernels for the instruction set this file is compiled for (static selection), and
// the scalar reference set itself, in a program of their own (qgan_static_tests) that has
// no dispatcher. CI builds the tests with the default x86-64 flags (SSE2 kernels), with
// -march=native (AVX-512 on CI's machines) and for aarch64 (NEON); test_dispatch.cpp
// covers every set through run-time dispatch.
#include <catch2/catch.hpp>

#include "kernel_checks.hpp"
#include "qgan/simd/kernels.hpp"
#include "qgan/simd/select.hpp"

TEST_CASE("static-selection kernels match the scalar references", "[kernels]") {
  qgan::test::check_all_kernels(qgan::simd::static_kernel_set<>());
}

TEST_CASE("the scalar reference set passes its own checks", "[kernels]") {
  qgan::test::check_all_kernels(qgan::simd::reference_kernel_set<>());
}

TEST_CASE("without the dispatcher, front doors use the static set", "[kernels]") {
  CHECK_FALSE(qgan::simd::kernels_dispatched());
  CHECK(&qgan::simd::active_kernels<>() == &qgan::simd::static_kernel_set<>());
}
