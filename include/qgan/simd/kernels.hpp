// Static selection: qgan's kernels for the instruction set the including translation unit
// is compiled for (xsimd::default_arch follows its -m flags), as a template on that
// architecture so that units built with different flags get different symbols. Where
// xsimd has no architecture for the target (not x86, not aarch64), the scalar set.
#pragma once

#include <type_traits>

#include "qgan/simd/kernels_prelude.hpp"
#include "qgan/simd/reference_set.hpp"

namespace qgan::simd {
#include "qgan/simd/kernels_body.inl"

/// Whether qgan has SIMD kernels for an xsimd architecture (x86 SSE2 and up, aarch64).
template <class Arch>
inline constexpr bool has_simd_kernels = isa::is_x86<Arch> || isa::is_neon64<Arch>;

/// The kernel set compiled for Arch in this translation unit.
template <class Arch = xsimd::default_arch>
inline const kernel_set& static_kernel_set() noexcept {
  if constexpr (has_simd_kernels<Arch>) {
    static constexpr kernel_set set = make_kernel_set<Arch>(Arch::name());
    return set;
  } else {
    return reference_kernel_set<Arch>();
  }
}

}  // namespace qgan::simd
