// Run-time dispatch, for programs built with qgan_add_dispatched_kernels(target): the
// kernels compiled once per instruction set, each in a translation unit of its own whose
// code sits in an anonymous namespace (cmake/dispatch/kernels_isa.cpp.in), so the linker
// can never hand one instruction set's code to another's caller. The dispatcher
// (cmake/dispatch/dispatcher.cpp.in) defines what is declared here; without it, these
// symbols are undefined and only qgan/simd/select.hpp's static selection exists.
#pragma once

#include <string_view>
#include <vector>

#include "qgan/simd/cpu_features.hpp"
#include "qgan/simd/select.hpp"
#include "qgan/simd/tables.hpp"

namespace qgan::simd {

/// Every set compiled into this binary, the scalar reference first and the widest last.
std::vector<const kernel_set*> compiled_kernel_sets();

/// The compiled sets this CPU and OS can run, in the same order.
std::vector<const kernel_set*> available_kernel_sets();

/// The set a name picks among available_kernel_sets(); throws qgan::error naming what is
/// available when the binary or the CPU lacks it.
const kernel_set& kernel_set_named(std::string_view name);

/// What QGAN_KERNELS forces (see kernel_set_named), else the widest available set.
/// Chosen on the first call; qgan_dispatched_kernel_set() returns the same set.
const kernel_set& dispatched_kernel_set();

}  // namespace qgan::simd
