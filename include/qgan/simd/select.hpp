// The kernel set every public entry point calls through, chosen in one of two ways:
// - run-time dispatch: a program built with qgan_add_dispatched_kernels(target) contains
//   one unit per instruction set and a dispatcher that defines
//   qgan_dispatched_kernel_set(); the set is chosen once, from CPUID and the OS, or forced
//   by the environment variable QGAN_KERNELS (qgan/simd/dispatch.hpp);
// - static: otherwise that weak symbol stays null and the set is the one compiled for
//   the caller's own flags (qgan/simd/kernels.hpp).
// active_kernels is a template on the caller's architecture, so translation units built
// with different -m flags never share a body; every set gives the same results (see
// qgan/simd/kernel_types.hpp), so a program may mix both modes freely.
#pragma once

#include "qgan/simd/kernels.hpp"
#include "qgan/simd/tables.hpp"

/// Defined by the dispatcher unit qgan_add_dispatched_kernels() generates; null without it.
/// May throw qgan::error when QGAN_KERNELS names a set this binary or CPU lacks.
/// QGAN_DISPATCHED_KERNELS_ONLY (which qgan_add_dispatched_kernels() puts on its target's
/// users) drops the static fallback: the units that include this then never instantiate
/// the kernels themselves, which is most of what they cost to compile (tests/test_packed_layers.cpp:
/// 20 s instead of 79 s with clang 14 -O1 and the sanitizers), and the reference is
/// strong, so a program that lacks the dispatcher fails to link rather than to run.
#ifdef QGAN_DISPATCHED_KERNELS_ONLY
extern "C" const qgan::simd::kernel_set* qgan_dispatched_kernel_set();
#else
extern "C" const qgan::simd::kernel_set* qgan_dispatched_kernel_set() __attribute__((weak));
#endif

namespace qgan::simd {

#ifdef QGAN_DISPATCHED_KERNELS_ONLY
/// Whether this program was built with run-time dispatch.
inline bool kernels_dispatched() noexcept { return true; }

template <class Arch = xsimd::default_arch>
inline const kernel_set& active_kernels() {
  return *qgan_dispatched_kernel_set();
}
#else
/// Whether this program was built with run-time dispatch.
inline bool kernels_dispatched() noexcept { return &qgan_dispatched_kernel_set != nullptr; }

template <class Arch = xsimd::default_arch>
inline const kernel_set& active_kernels() {
  if (kernels_dispatched()) return *qgan_dispatched_kernel_set();
  return static_kernel_set<Arch>();
}
#endif

}  // namespace qgan::simd
