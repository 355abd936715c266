// Everything qgan offers, in one include.
#pragma once

#include "qgan/version.hpp"
#include "qgan/core/error.hpp"
#include "qgan/core/finite.hpp"
#include "qgan/core/shape.hpp"
#include "qgan/eval/eval.hpp"
#include "qgan/nn/activations.hpp"
#include "qgan/nn/batch_norm.hpp"
#include "qgan/nn/conv2d.hpp"
#include "qgan/nn/conv_transpose2d.hpp"
#include "qgan/nn/linear.hpp"
#include "qgan/pack/canonical.hpp"
#include "qgan/pack/packed_tensor.hpp"
#include "qgan/pack/quantize.hpp"
#include "qgan/quant/concepts.hpp"
#include "qgan/quant/eigen.hpp"
#include "qgan/quant/em.hpp"
#include "qgan/quant/granularity.hpp"
#include "qgan/quant/lloyd_max.hpp"
#include "qgan/quant/log.hpp"
#include "qgan/quant/metrics.hpp"
#include "qgan/quant/minmax.hpp"
#include "qgan/quant/quantize.hpp"
#include "qgan/quant/tanh.hpp"
#include "qgan/quant/two_means.hpp"
#include "qgan/quant/uniform_grid.hpp"
#include "qgan/search/precision_search.hpp"
#include "qgan/simd/kernels.hpp"

namespace qgan {
static_assert(quantizer<minmax_quantizer>);
static_assert(quantizer<log_quantizer>);
static_assert(quantizer<tanh_quantizer>);
static_assert(quantizer<em_quantizer>);
static_assert(quantizer<lloyd_max_quantizer>);
}  // namespace qgan
