// Fréchet distance between Gaussian fits of two feature sets: the "F" of FID, for whatever
// network produced the features (Inception, a small classifier, a discriminator). The
// network is the caller's business; this header only sees feature rows, or means and
// covariances, in double.
//   d^2 = ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))
// Tr (S1 S2)^(1/2) is the sum of the square roots of the eigenvalues of the symmetric
// S S2 S with S = S1^(1/2): S1 S2 is not symmetric but is similar to it, so an exact
// symmetric eigensolver applies (no scipy.linalg.sqrtm, no complex round-off). Eigenvalues
// that round-off pushes below zero count as zero.
//
// The functions and frechet_reference's members that solve eigenvalue problems are
// templates whose parameters default to the one type they take (`gaussian`,
// `Eigen::MatrixXd`): a unit that includes this header (qgan/qgan.hpp does) without
// calling them then never instantiates Eigen's eigensolver, which cost every such unit
// 5 s of compilation with g++ -O3 (3 s with clang). Callers see ordinary functions.
#pragma once

#include <Eigen/Core>
#include <Eigen/Eigenvalues>

#include <concepts>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "qgan/core/error.hpp"
#include "qgan/core/isa_namespace.hpp"
#include "qgan/eval/checks.hpp"

namespace qgan::eval {

/// A Gaussian fit: mean (d) and covariance (d x d, symmetric positive semi-definite; only
/// its lower triangle is read by the eigensolvers).
struct gaussian {
  Eigen::VectorXd mean;
  Eigen::MatrixXd covariance;  ///< unbiased (N - 1) when it comes from gaussian_fit, as numpy.cov
};

namespace detail {
QGAN_BEGIN_FUNCTIONS

/// d >= 1, covariance d x d, everything finite. `which` names the argument ("first", ...).
inline void require_valid(const gaussian& g, const char* metric, std::string_view which) {
  if (g.mean.size() == 0) qgan::detail::throw_error(metric, ": ", which, " gaussian has dimension 0");
  if (g.covariance.rows() != g.mean.size() || g.covariance.cols() != g.mean.size()) {
    qgan::detail::throw_error(metric, ": ", which, " gaussian has a mean of ", g.mean.size(), " values but a ",
                              g.covariance.rows(), " x ", g.covariance.cols(), " covariance");
  }
  if (!g.mean.allFinite()) require_finite(g.mean, metric, std::string(which) + " gaussian's mean");
  if (!g.covariance.allFinite()) require_finite(g.covariance, metric, std::string(which) + " gaussian's covariance");
}

inline void require_same_dimension(const gaussian& a, const gaussian& b, const char* metric) {
  if (a.mean.size() != b.mean.size()) {
    qgan::detail::throw_error(metric, ": dimensions ", a.mean.size(), " and ", b.mean.size(), " differ");
  }
}

/// Square root of a symmetric positive semi-definite matrix; eigenvalues that round-off
/// pushed below zero count as zero.
template <class Matrix>
Matrix psd_sqrt(const Matrix& m) {
  const Eigen::SelfAdjointEigenSolver<Matrix> solver(m);
  if (solver.info() != Eigen::Success) qgan::detail::throw_error("frechet_distance: eigen solver failed");
  const typename Eigen::SelfAdjointEigenSolver<Matrix>::RealVectorType roots = solver.eigenvalues().cwiseMax(0.0).cwiseSqrt();
  return solver.eigenvectors() * roots.asDiagonal() * solver.eigenvectors().transpose();
}

/// Tr sqrt(A B) for symmetric PSD A, B, given sqrt_a = A^(1/2): the eigenvalues of A B are
/// those of the symmetric sqrt_a B sqrt_a (symmetrised against round-off).
template <class Matrix>
double trace_sqrt_product(const Matrix& sqrt_a, const Matrix& b) {
  const Matrix m = sqrt_a * b * sqrt_a;
  const Matrix symmetric = 0.5 * (m + m.transpose());
  const Eigen::SelfAdjointEigenSolver<Matrix> solver(symmetric, Eigen::EigenvaluesOnly);
  if (solver.info() != Eigen::Success) qgan::detail::throw_error("frechet_distance: eigen solver failed");
  return solver.eigenvalues().cwiseMax(0.0).cwiseSqrt().sum();
}

QGAN_END_FUNCTIONS
}  // namespace detail

QGAN_BEGIN_FUNCTIONS

/// Mean and unbiased (N - 1) covariance of feature rows (rows = samples, at least 2;
/// columns = feature dimension, at least 1; all finite). Centred before the product so
/// large means cost no precision.
inline gaussian gaussian_fit(const Eigen::Ref<const Eigen::MatrixXd>& features) {
  if (features.rows() < 2) {
    qgan::detail::throw_error("gaussian_fit: ", features.rows(), " samples, need at least 2");
  }
  if (features.cols() < 1) qgan::detail::throw_error("gaussian_fit: features have dimension 0");
  detail::require_finite(features, "gaussian_fit", "feature");
  gaussian g;
  g.mean = features.colwise().mean().transpose();
  const Eigen::MatrixXd centred = features.rowwise() - g.mean.transpose();
  g.covariance = (centred.transpose() * centred) / static_cast<double>(features.rows() - 1);
  return g;
}

/// The same from a row-major buffer of samples x dims values (float or double).
inline gaussian gaussian_fit(std::span<const float> features, std::size_t samples, std::size_t dims) {
  return gaussian_fit(detail::row_major_matrix(features, samples, dims, "gaussian_fit", "features"));
}
inline gaussian gaussian_fit(std::span<const double> features, std::size_t samples, std::size_t dims) {
  return gaussian_fit(detail::row_major_matrix(features, samples, dims, "gaussian_fit", "features"));
}

/// Squared Fréchet distance between two Gaussians of the same dimension (>= 0 up to
/// round-off; symmetric up to round-off). (A template only for the reason at the top.)
template <class Gaussian = gaussian>
  requires std::same_as<Gaussian, gaussian>
double frechet_distance(const Gaussian& a, const Gaussian& b) {
  detail::require_valid(a, "frechet_distance", "first");
  detail::require_valid(b, "frechet_distance", "second");
  detail::require_same_dimension(a, b, "frechet_distance");
  const double mean_term = (a.mean - b.mean).squaredNorm();
  return mean_term + a.covariance.trace() + b.covariance.trace() -
         2.0 * detail::trace_sqrt_product(detail::psd_sqrt(a.covariance), b.covariance);
}

/// Squared Fréchet distance between the Gaussian fits of two feature sets (rows = samples,
/// same number of columns): frechet_distance(gaussian_fit(a), gaussian_fit(b)).
/// (Matrix is never deduced: the parameters take whatever converts to the Ref.)
template <class Matrix = Eigen::MatrixXd>
  requires std::same_as<Matrix, Eigen::MatrixXd>
double frechet_distance(const std::type_identity_t<Eigen::Ref<const Matrix>>& features_a,
                        const std::type_identity_t<Eigen::Ref<const Matrix>>& features_b) {
  if (features_a.cols() != features_b.cols()) {
    qgan::detail::throw_error("frechet_distance: feature dimensions ", features_a.cols(), " and ", features_b.cols(),
                              " differ");
  }
  return frechet_distance<gaussian>(gaussian_fit(features_a), gaussian_fit(features_b));
}

QGAN_END_FUNCTIONS

/// A fixed reference (a real data set's statistics) with its covariance's square root
/// computed once, so each distance to it costs one symmetric eigenvalue problem
/// (Tr sqrt(S1 S2) = Tr sqrt(S2 S1)). The result equals frechet_distance(g, reference())
/// up to round-off.
class frechet_reference {
 public:
  template <class Gaussian = gaussian>
    requires std::same_as<Gaussian, gaussian>
  explicit frechet_reference(Gaussian reference)
      : reference_(validated(std::move(reference))),
        // The matrix type spelled through the parameter: dependent, so the eigensolver
        // is instantiated with this constructor, not wherever the class is defined.
        sqrt_covariance_(detail::psd_sqrt<decltype(reference.covariance)>(reference_.covariance)) {}

  template <class Gaussian = gaussian>
    requires std::same_as<Gaussian, gaussian>
  [[nodiscard]] double distance(const Gaussian& g) const {
    detail::require_valid(g, "frechet_distance", "first");
    if (g.mean.size() != reference_.mean.size()) {
      qgan::detail::throw_error("frechet_distance: feature dimension ", g.mean.size(), ", the reference has ",
                                reference_.mean.size());
    }
    return (g.mean - reference_.mean).squaredNorm() + g.covariance.trace() + reference_.covariance.trace() -
           2.0 * detail::trace_sqrt_product(sqrt_covariance_, g.covariance);
  }

  /// distance(gaussian_fit(features)).
  template <class Matrix = Eigen::MatrixXd>
    requires std::same_as<Matrix, Eigen::MatrixXd>
  [[nodiscard]] double distance(const std::type_identity_t<Eigen::Ref<const Matrix>>& features) const {
    return distance<gaussian>(gaussian_fit(features));
  }

  [[nodiscard]] const gaussian& reference() const { return reference_; }

 private:
  static gaussian validated(gaussian g) {
    detail::require_valid(g, "frechet_reference", "reference");
    return g;
  }

  gaussian reference_;
  Eigen::MatrixXd sqrt_covariance_;
};

}  // namespace qgan::eval
