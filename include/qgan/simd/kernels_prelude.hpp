// Everything qgan/simd/kernels_body.inl uses, included before the body so that its
// inclusion inside a namespace pulls in no header there.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <immintrin.h>
#include <type_traits>
#include <xsimd/xsimd.hpp>

#include "qgan/pack/canonical.hpp"
#include "qgan/quant/minmax.hpp"
#include "qgan/quant/uniform_grid.hpp"
#include "qgan/simd/em_sums.hpp"
