// Inception Score: exp(E_x KL(p(y|x) || p(y))), p(y) the mean of p(y|x) over the samples,
// from any classifier's outputs (the Inception network or another), in double, over one
// split of all rows (no 10-split averaging). It runs from 1 (every prediction the same)
// to the number of classes (confident predictions, all classes equally often).
#pragma once

#include <Eigen/Core>

#include <cmath>
#include <cstddef>
#include <span>

#include "qgan/core/error.hpp"
#include "qgan/core/isa_namespace.hpp"
#include "qgan/eval/checks.hpp"

namespace qgan::eval {

namespace detail {
QGAN_BEGIN_FUNCTIONS

inline void require_classes(const Eigen::Ref<const Eigen::MatrixXd>& m, const char* metric) {
  if (m.rows() < 1) qgan::detail::throw_error(metric, ": no samples");
  if (m.cols() < 1) qgan::detail::throw_error(metric, ": no classes");
}

/// From p (rows = samples) and its elementwise log, both made by the caller (log-softmax
/// is more accurate than log(p) when p comes from logits).
inline double inception_score_of(const Eigen::MatrixXd& p, const Eigen::MatrixXd& log_p) {
  const Eigen::RowVectorXd log_marginal = p.colwise().mean().array().log();
  double kl_sum = 0;
  for (Eigen::Index i = 0; i < p.rows(); ++i) {
    for (Eigen::Index j = 0; j < p.cols(); ++j) {
      // 0 * log 0 = 0: a class whose probability is (or underflowed to) 0 adds nothing (else 0 * inf).
      if (p(i, j) > 0.0) kl_sum += p(i, j) * (log_p(i, j) - log_marginal(j));
    }
  }
  return std::exp(kl_sum / static_cast<double>(p.rows()));
}

QGAN_END_FUNCTIONS
}  // namespace detail

QGAN_BEGIN_FUNCTIONS

/// Probability rows (rows = samples, columns = classes): finite, in [0, 1], each row
/// summing to 1 within 1e-5.
inline double inception_score(const Eigen::Ref<const Eigen::MatrixXd>& probabilities) {
  detail::require_classes(probabilities, "inception_score");
  detail::require_finite(probabilities, "inception_score", "probability");
  for (Eigen::Index i = 0; i < probabilities.rows(); ++i) {
    const double low = probabilities.row(i).minCoeff();
    const double high = probabilities.row(i).maxCoeff();
    if (low < 0.0 || high > 1.0) {
      qgan::detail::throw_error("inception_score: row ", i, " holds a probability outside [0, 1] (", low < 0.0 ? low : high,
                                ")");
    }
    const double sum = probabilities.row(i).sum();
    if (!(std::abs(sum - 1.0) <= 1e-5)) {
      qgan::detail::throw_error("inception_score: row ", i, " sums to ", sum, ", not 1 (pass logits to ",
                                "inception_score_from_logits)");
    }
  }
  const Eigen::MatrixXd p = probabilities;
  const Eigen::MatrixXd log_p = p.array().log();
  return detail::inception_score_of(p, log_p);
}

/// The same from logits (rows = samples, finite): p is their softmax, computed in log
/// space with log-sum-exp, so logits far below a row's maximum underflow to p = 0 safely.
inline double inception_score_from_logits(const Eigen::Ref<const Eigen::MatrixXd>& logits) {
  detail::require_classes(logits, "inception_score_from_logits");
  detail::require_finite(logits, "inception_score_from_logits", "logit");
  Eigen::MatrixXd log_p(logits.rows(), logits.cols());
  for (Eigen::Index i = 0; i < logits.rows(); ++i) {
    const double top = logits.row(i).maxCoeff();
    const double log_sum = top + std::log((logits.row(i).array() - top).exp().sum());
    log_p.row(i) = logits.row(i).array() - log_sum;
  }
  const Eigen::MatrixXd p = log_p.array().exp();
  return detail::inception_score_of(p, log_p);
}

/// Row-major buffers of samples x classes values.
inline double inception_score(std::span<const float> probabilities, std::size_t samples, std::size_t classes) {
  return inception_score(detail::row_major_matrix(probabilities, samples, classes, "inception_score", "probabilities"));
}
inline double inception_score_from_logits(std::span<const float> logits, std::size_t samples, std::size_t classes) {
  return inception_score_from_logits(
      detail::row_major_matrix(logits, samples, classes, "inception_score_from_logits", "logits"));
}

QGAN_END_FUNCTIONS
}  // namespace qgan::eval
