// The metrics' numerics, compiled once (Eigen's symmetric eigensolver is heavy to build).
#include "dcgan/metrics.hpp"

#include <Eigen/Dense>

#include <cmath>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

#include "dcgan/latent.hpp"
#include "qgan/core/error.hpp"
#include "qgan/io/safetensors.hpp"

namespace dcgan {


/// rows = samples. Centred before the product so large means cost no precision.
gaussian gaussian_fit(const Eigen::MatrixXd& features) {
  if (features.rows() < 2) {
    qgan::detail::throw_error("gaussian_fit: ", features.rows(), " samples, need at least 2");
  }
  gaussian g;
  g.mean = features.colwise().mean().transpose();
  const Eigen::MatrixXd centred = features.rowwise() - g.mean.transpose();
  g.covariance = (centred.transpose() * centred) / static_cast<double>(features.rows() - 1);
  return g;
}

namespace {

// Square root of a symmetric positive semi-definite matrix; eigenvalues that round-off
// pushed below zero count as zero.
Eigen::MatrixXd psd_sqrt(const Eigen::MatrixXd& m) {
  const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> solver(m);
  if (solver.info() != Eigen::Success) qgan::detail::throw_error("psd_sqrt: eigen solver failed");
  const Eigen::VectorXd roots = solver.eigenvalues().cwiseMax(0.0).cwiseSqrt();
  return solver.eigenvectors() * roots.asDiagonal() * solver.eigenvectors().transpose();
}

// Tr sqrt(A B) for symmetric PSD A, B, with S = A^(1/2): A B is not symmetric, but it is
// similar to S B S, which is, so its eigenvalues (real, >= 0 up to round-off) are those
// of the symmetric matrix and an exact symmetric solver applies.
double trace_sqrt_product(const Eigen::MatrixXd& sqrt_a, const Eigen::MatrixXd& b) {
  const Eigen::MatrixXd m = sqrt_a * b * sqrt_a;
  const Eigen::MatrixXd symmetric = 0.5 * (m + m.transpose());
  const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> solver(symmetric, Eigen::EigenvaluesOnly);
  if (solver.info() != Eigen::Success) qgan::detail::throw_error("frechet_distance: eigen solver failed");
  return solver.eigenvalues().cwiseMax(0.0).cwiseSqrt().sum();
}

}  // namespace

/// ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 sqrt(S1 S2)).
double frechet_distance(const gaussian& a, const gaussian& b) {
  if (a.mean.size() != b.mean.size()) {
    qgan::detail::throw_error("frechet_distance: dimensions ", a.mean.size(), " and ", b.mean.size(), " differ");
  }
  const double mean_term = (a.mean - b.mean).squaredNorm();
  return mean_term + a.covariance.trace() + b.covariance.trace() -
         2.0 * trace_sqrt_product(psd_sqrt(a.covariance), b.covariance);
}


frechet_reference::frechet_reference(gaussian reference)
    : reference_(std::move(reference)), sqrt_covariance_(psd_sqrt(reference_.covariance)) {}

double frechet_reference::distance(const gaussian& g) const {
  if (g.mean.size() != reference_.mean.size()) {
    qgan::detail::throw_error("frechet_distance: feature dimension ", g.mean.size(), ", the reference has ",
                              reference_.mean.size());
  }
  return (g.mean - reference_.mean).squaredNorm() + g.covariance.trace() + reference_.covariance.trace() -
         2.0 * trace_sqrt_product(sqrt_covariance_, g.covariance);
}

/// The shipped reference statistics (mu, sigma as F64) of the 10,000 test images.
gaussian read_reference_gaussian(const qgan::io::safetensors_file& file) {
  const auto read_f64 = [&](const char* name, std::int64_t rows, std::int64_t cols) {
    const auto& t = file.at(name);
    const qgan::shape_t expected = cols == 0 ? qgan::shape_t{rows} : qgan::shape_t{rows, cols};
    if (t.type != qgan::io::dtype::f64 || t.shape != expected) {
      qgan::detail::throw_error(file.source(), ": tensor '", name, "': ",
                                qgan::io::dtype_name(t.type), " ", qgan::to_string(t.shape),
                                ", expected F64 ", qgan::to_string(expected));
    }
    std::vector<double> values(t.bytes.size() / sizeof(double));
    std::memcpy(values.data(), t.bytes.data(), t.bytes.size());
    return values;
  };
  const std::int64_t d = file.at("mu").shape.empty() ? 0 : file.at("mu").shape[0];
  const std::vector<double> mu = read_f64("mu", d, 0);
  const std::vector<double> sigma = read_f64("sigma", d, d);
  gaussian g;
  g.mean = Eigen::Map<const Eigen::VectorXd>(mu.data(), d);
  g.covariance = Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
      sigma.data(), d, d);
  return g;
}


/// FID of the features against the reference and its bootstrap spread, so a reader can
/// tell a real difference from sampling noise at this N.
fid_estimate fid_with_bootstrap(const Eigen::MatrixXd& features, const frechet_reference& reference,
                                       int resamples, std::uint64_t seed) {
  fid_estimate estimate;
  estimate.value = reference.distance(gaussian_fit(features));
  estimate.resamples = resamples;
  if (resamples < 2) return estimate;
  splitmix64 rng(seed);
  const Eigen::Index n = features.rows();
  Eigen::MatrixXd draw(n, features.cols());
  std::vector<double> values;
  for (int r = 0; r < resamples; ++r) {
    for (Eigen::Index i = 0; i < n; ++i) draw.row(i) = features.row(static_cast<Eigen::Index>(rng.below(static_cast<std::size_t>(n))));
    values.push_back(reference.distance(gaussian_fit(draw)));
  }
  double mean = 0;
  for (const double v : values) mean += v;
  mean /= static_cast<double>(values.size());
  double square_sum = 0;
  for (const double v : values) square_sum += (v - mean) * (v - mean);
  estimate.bootstrap_std = std::sqrt(square_sum / static_cast<double>(values.size() - 1));
  return estimate;
}

/// exp(mean_i KL(p(y|x_i) || p(y))) with p from a softmax over logits (rows = samples),
/// in double with log-sum-exp, over one split of all rows as train.py computes it.
double inception_score(const Eigen::MatrixXd& logits) {
  if (logits.rows() < 1) qgan::detail::throw_error("inception_score: no samples");
  Eigen::MatrixXd log_p(logits.rows(), logits.cols());
  for (Eigen::Index i = 0; i < logits.rows(); ++i) {
    const double top = logits.row(i).maxCoeff();
    const double log_sum = top + std::log((logits.row(i).array() - top).exp().sum());
    log_p.row(i) = logits.row(i).array() - log_sum;
  }
  const Eigen::MatrixXd p = log_p.array().exp();
  const Eigen::RowVectorXd log_marginal = p.colwise().mean().array().log();
  double kl_sum = 0;
  for (Eigen::Index i = 0; i < p.rows(); ++i) {
    for (Eigen::Index j = 0; j < p.cols(); ++j) {
      // 0 * log 0 = 0: a class whose probability underflowed adds nothing (else 0 * inf).
      if (p(i, j) > 0.0) kl_sum += p(i, j) * (log_p(i, j) - log_marginal(j));
    }
  }
  return std::exp(kl_sum / static_cast<double>(p.rows()));
}

/// PSNR in dB of 8-bit images b against a (same length); +infinity when identical.
double psnr_u8(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b) {
  if (a.size() != b.size() || a.empty()) {
    qgan::detail::throw_error("psnr: ", a.size(), " and ", b.size(), " pixels (need equal, non-zero counts)");
  }
  double square_sum = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double d = static_cast<double>(a[i]) - static_cast<double>(b[i]);
    square_sum += d * d;
  }
  if (square_sum == 0) return std::numeric_limits<double>::infinity();
  return 10.0 * std::log10(255.0 * 255.0 / (square_sum / static_cast<double>(a.size())));
}

}  // namespace dcgan
