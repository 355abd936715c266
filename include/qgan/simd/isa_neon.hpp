// aarch64 NEON forms of the operations xsimd 8.1 does not offer: widening a float
// register to two double registers, and float division (xsimd 8.1 has none for neon64 and
// falls back to ARMv7 NEON's reciprocal estimate with two Newton-Raphson steps, which is
// not correctly rounded). Its fused multiply-add (vfmaq) comes through xsimd.
#pragma once

#if defined(__aarch64__)
#include <arm_neon.h>

#include <xsimd/xsimd.hpp>

namespace qgan::simd::neon {

template <class Arch>
inline void to_double_halves(const xsimd::batch<float, Arch>& x, xsimd::batch<double, Arch>& low,
                             xsimd::batch<double, Arch>& high) noexcept {
  const float32x4_t v = x;
  low = vcvt_f64_f32(vget_low_f32(v));
  high = vcvt_high_f64_f32(v);
}

/// a / b correctly rounded (FDIV), as the scalar references divide.
template <class Arch>
inline xsimd::batch<float, Arch> divide(const xsimd::batch<float, Arch>& a,
                                        const xsimd::batch<float, Arch>& b) noexcept {
  return vdivq_f32(a, b);
}

}  // namespace qgan::simd::neon
#endif
