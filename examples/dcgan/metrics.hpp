// The offline quality figures of the reference GAN. They are NOT Inception FID/IS: the
// features come from a small Fashion-MNIST classifier (examples/dcgan/train.py), so the
// numbers compare runs of this project with each other, never with published FIDs.
//   FID-FMNIST  qgan::eval::frechet_distance of classifier features (relu4, 128-d)
//   IS-FMNIST   qgan::eval::inception_score_from_logits of the classifier, one split
//   PSNR        qgan::eval::psnr_u8 against the fp32 generator's images for the same z
// The math lives in qgan/eval; what stays here is DCGAN-specific: where the test set's
// statistics are stored and the seeded bootstrap the `qgan` tool and the demo report.
#pragma once

#include <Eigen/Core>

#include <cstdint>

#include "qgan/eval/eval.hpp"

namespace qgan::io {
class safetensors_file;
}  // namespace qgan::io

namespace dcgan {

/// The shipped reference statistics (mu, sigma as F64) of the 10,000 test images.
qgan::eval::gaussian read_reference_gaussian(const qgan::io::safetensors_file& file);

/// qgan::eval::frechet_bootstrap with resample rows drawn by splitmix64(seed).below(N),
/// so a seed gives the same spread on every platform.
qgan::eval::frechet_estimate fid_with_bootstrap(const Eigen::MatrixXd& features,
                                                const qgan::eval::frechet_reference& reference, int resamples,
                                                std::uint64_t seed);

}  // namespace dcgan
