// The Fréchet distance of a feature set to a reference with its bootstrap spread: the
// standard deviation over resamples of N rows drawn with replacement, so a reader can tell
// a real difference between two models from sampling noise at this N. The random source
// is the caller's (a callable returning an index below its argument), so results are
// reproducible with whatever generator the caller already seeds.
#pragma once

#include <Eigen/Core>

#include <cmath>
#include <concepts>
#include <cstddef>
#include <functional>
#include <type_traits>
#include <vector>

#include "qgan/core/error.hpp"
#include "qgan/core/isa_namespace.hpp"
#include "qgan/eval/frechet.hpp"

namespace qgan::eval {

struct frechet_estimate {
  double value = 0;          ///< on all N samples
  double bootstrap_std = 0;  ///< sample std (N - 1) over `resamples` draws of N rows; 0 when resamples = 0
  int resamples = 0;
};

/// draw(n) must return an index in [0, n), uniformly: one row of a resample.
template <class F>
concept index_draw = std::invocable<F&, std::size_t> &&
                     std::convertible_to<std::invoke_result_t<F&, std::size_t>, std::size_t>;

QGAN_BEGIN_FUNCTIONS

/// reference.distance(gaussian_fit(features)) and, for resamples >= 2, its bootstrap
/// standard deviation; resamples = 0 skips it. Each resample takes rows draw(N) for
/// i = 0..N-1, in that order. Throws qgan::error for resamples < 0 or = 1 (no spread),
/// for an index out of range and for what gaussian_fit and distance reject.
template <index_draw Draw>
frechet_estimate frechet_bootstrap(const Eigen::Ref<const Eigen::MatrixXd>& features, const frechet_reference& reference,
                                   int resamples, Draw&& draw) {
  if (resamples < 0 || resamples == 1) {
    qgan::detail::throw_error("frechet_bootstrap: ", resamples, " resamples; use 0 (no spread) or at least 2");
  }
  frechet_estimate estimate;
  estimate.value = reference.distance(gaussian_fit(features));
  estimate.resamples = resamples;
  if (resamples == 0) return estimate;
  const Eigen::Index n = features.rows();
  const auto bound = static_cast<std::size_t>(n);
  Eigen::MatrixXd resample(n, features.cols());
  std::vector<double> values;
  values.reserve(static_cast<std::size_t>(resamples));
  for (int r = 0; r < resamples; ++r) {
    for (Eigen::Index i = 0; i < n; ++i) {
      const std::size_t row = std::invoke(draw, bound);
      if (row >= bound) qgan::detail::throw_error("frechet_bootstrap: draw(", bound, ") returned ", row);
      resample.row(i) = features.row(static_cast<Eigen::Index>(row));
    }
    values.push_back(reference.distance(gaussian_fit(resample)));
  }
  double mean = 0;
  for (const double v : values) mean += v;
  mean /= static_cast<double>(values.size());
  double square_sum = 0;
  for (const double v : values) square_sum += (v - mean) * (v - mean);
  estimate.bootstrap_std = std::sqrt(square_sum / static_cast<double>(values.size() - 1));
  return estimate;
}

QGAN_END_FUNCTIONS
}  // namespace qgan::eval
