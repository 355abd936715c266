// Everything the kernel bodies (reductions_body.inl, em_pass_body.inl, codec_body.inl)
// use, included before them so that their inclusion inside a namespace pulls in no header
// there.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <xsimd/xsimd.hpp>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif
#if defined(__aarch64__)
#include <arm_neon.h>
#endif

#include "qgan/pack/canonical.hpp"
#include "qgan/quant/reductions_ref.hpp"
#include "qgan/quant/uniform_grid.hpp"
#include "qgan/simd/conv_ref.hpp"
#include "qgan/simd/em_pass_avx512.hpp"
#include "qgan/simd/isa.hpp"
#include "qgan/simd/tables.hpp"
