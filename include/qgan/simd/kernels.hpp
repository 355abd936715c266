// Static dispatch: qgan's SIMD kernels for the instruction set the including translation
// unit is compiled for (xsimd::default_arch follows -m flags). Run-time dispatch across
// instruction sets is qgan/simd/dispatch.hpp.
#pragma once

#include "qgan/simd/kernels_prelude.hpp"

namespace qgan::simd {
#include "qgan/simd/kernels_body.inl"

using native_kernels = kernels<xsimd::default_arch>;
}  // namespace qgan::simd
