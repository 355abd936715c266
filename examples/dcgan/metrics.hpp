// The offline quality figures of the reference GAN. They are NOT Inception FID/IS: the
// features come from a small Fashion-MNIST classifier (examples/dcgan/train.py), so the
// numbers compare runs of this project with each other, never with published FIDs.
//   FID-FMNIST  Frechet distance between Gaussian fits of classifier features (relu4, 128-d)
//   IS-FMNIST   exp(E_x KL(p(y|x) || p(y))) from the classifier's softmax, one split
//   PSNR        of 8-bit images against reference images for the same z, MAX = 255
#pragma once

#include <Eigen/Core>

#include <cstdint>
#include <span>

namespace qgan::io {
class safetensors_file;
}  // namespace qgan::io

namespace dcgan {

struct gaussian {
  Eigen::VectorXd mean;
  Eigen::MatrixXd covariance;  ///< unbiased (N - 1), as numpy.cov and train.py
};

/// rows = samples (at least 2). Centred before the product so large means cost no precision.
gaussian gaussian_fit(const Eigen::MatrixXd& features);

/// ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 sqrt(S1 S2)). Tr sqrt(S1 S2) is the sum of the square
/// roots of the eigenvalues of the symmetric S S2 S with S = S1^(1/2): S1 S2 is not
/// symmetric but is similar to it. Negative round-off eigenvalues count as zero.
double frechet_distance(const gaussian& a, const gaussian& b);

/// A fixed reference (the real test set) with its square root computed once, so each
/// distance to it costs one symmetric eigenvalue problem: Tr sqrt(S1 S2) = Tr sqrt(S2 S1).
class frechet_reference {
 public:
  explicit frechet_reference(gaussian reference);
  [[nodiscard]] double distance(const gaussian& g) const;
  [[nodiscard]] const gaussian& reference() const { return reference_; }

 private:
  gaussian reference_;
  Eigen::MatrixXd sqrt_covariance_;
};

/// The shipped reference statistics (mu, sigma as F64) of the 10,000 test images.
gaussian read_reference_gaussian(const qgan::io::safetensors_file& file);

struct fid_estimate {
  double value = 0;          ///< on all N samples
  double bootstrap_std = 0;  ///< sample std over `resamples` draws of N rows with replacement
  int resamples = 0;
};

/// FID of the features against the reference and its bootstrap spread, so a reader can
/// tell a real difference from sampling noise at this N.
fid_estimate fid_with_bootstrap(const Eigen::MatrixXd& features, const frechet_reference& reference, int resamples,
                                std::uint64_t seed);

/// exp(mean_i KL(p(y|x_i) || p(y))) with p from a softmax over logits (rows = samples),
/// in double with log-sum-exp, over one split of all rows as train.py computes it.
double inception_score(const Eigen::MatrixXd& logits);

/// PSNR in dB of 8-bit images b against a (same length); +infinity when identical.
double psnr_u8(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b);

}  // namespace dcgan
