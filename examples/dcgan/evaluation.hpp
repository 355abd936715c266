// Sampling and scoring a generator: the work behind `qgan sample`, `qgan eval` and the
// demo. Scores need the shipped reference assets: the classifier, the test set's feature
// statistics and the fp32 generator (for PSNR of the same z).
#pragma once

#include <Eigen/Core>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
#include <vector>

#include "dcgan/metrics.hpp"
#include "dcgan/model.hpp"
#include "dcgan/packed_generator.hpp"
#include "dcgan/weights.hpp"

namespace dcgan {

/// Called with the number of items done so far.
using progress_callback = std::function<void(std::size_t)>;

/// Images G(z) for n latent vectors stored row after row in z (n * nz floats), in batches
/// so memory stays flat whatever n is.
tensor4 run_generator(const generator& G, std::span<const float> z, std::size_t n,
                      const progress_callback& progress = {}, std::size_t batch = 100);

/// The same through the packed layers.
tensor4 run_generator(const packed_generator& G, std::span<const float> z, std::size_t n,
                      const progress_callback& progress = {}, std::size_t batch = 100);

/// Called with each batch's images (count, 1, H, W) and the index of its first image.
using batch_consumer = std::function<void(std::size_t first, const tensor4& images)>;

/// G(z) a batch at a time, each handed to `consume` as it is made: nothing is held for
/// all n images (qgan sample draws them into its grid as they come).
void generate_in_batches(const packed_generator& G, std::span<const float> z, std::size_t n, const batch_consumer& consume,
                         std::size_t batch = 100);

struct classified {
  Eigen::MatrixXd features;  ///< (N, 128)
  Eigen::MatrixXd logits;    ///< (N, 10)
};

classified classify(const classifier& C, const tensor4& images, std::size_t batch = 250);

/// The shipped weights directory: classifier, test-set feature statistics, fp32 generator.
struct reference_assets {
  std::filesystem::path directory;
  classifier C;
  qgan::eval::frechet_reference fid_reference;
  weight_set fp32_generator;

  static reference_assets load(const std::filesystem::path& dir);
};

struct quality {
  std::size_t samples = 0;
  qgan::eval::frechet_estimate fid;
  double inception = 0;
  double psnr = 0;  ///< against fp32 G on the same z; +inf when identical
};

/// Scores images (generated from some z) against the reference, with PSNR against
/// reference_pixels: the fp32 generator's 8-bit images for the same z.
quality score(const tensor4& images, std::span<const std::uint8_t> reference_pixels, const reference_assets& assets,
              int resamples, std::uint64_t seed);

}  // namespace dcgan
