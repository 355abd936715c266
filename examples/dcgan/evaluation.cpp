#include "dcgan/evaluation.hpp"

#include <algorithm>

#include "dcgan/images.hpp"
#include "dcgan/latent.hpp"
#include "qgan/io/safetensors.hpp"

namespace dcgan {


/// Images G(z) for n latent vectors stored row after row in z (n * nz floats), in batches
/// so memory stays flat whatever n is.
namespace {

template <class Generator>
void for_each_batch(const Generator& G, std::span<const float> z, std::size_t n, const batch_consumer& consume, std::size_t batch) {
  const auto nz = static_cast<std::size_t>(G.nz());
  if (z.size() != n * nz) {
    qgan::detail::throw_error("generator: ", z.size(), " latent floats for ", n, " samples of ", nz);
  }
  if (batch == 0) qgan::detail::throw_error("generator: batches of 0 images");
  for (std::size_t first = 0; first < n; first += batch) {
    const std::size_t count = std::min(batch, n - first);
    tensor4 zb(static_cast<Eigen::Index>(count), G.nz(), 1, 1);
    std::copy(z.begin() + static_cast<std::ptrdiff_t>(first * nz),
              z.begin() + static_cast<std::ptrdiff_t>((first + count) * nz), zb.data());
    consume(first, G(zb));
  }
}

template <class Generator>
tensor4 run_in_batches(const Generator& G, std::span<const float> z, std::size_t n, const progress_callback& progress,
                       std::size_t batch) {
  tensor4 images;
  for_each_batch(G, z, n, [&](std::size_t first, const tensor4& out) {
    const auto count = static_cast<std::ptrdiff_t>(out.dimension(0));
    if (first == 0) images = tensor4(static_cast<Eigen::Index>(n), out.dimension(1), out.dimension(2), out.dimension(3));
    std::copy(out.data(), out.data() + out.size(), images.data() + static_cast<std::ptrdiff_t>(first) * out.size() / count);
    if (progress) progress(first + static_cast<std::size_t>(count));
  }, batch);
  return images;
}

}  // namespace

tensor4 run_generator(const generator& G, std::span<const float> z, std::size_t n, const progress_callback& progress,
                      std::size_t batch) {
  return run_in_batches(G, z, n, progress, batch);
}

tensor4 run_generator(const packed_generator& G, std::span<const float> z, std::size_t n,
                      const progress_callback& progress, std::size_t batch) {
  return run_in_batches(G, z, n, progress, batch);
}

void generate_in_batches(const packed_generator& G, std::span<const float> z, std::size_t n, const batch_consumer& consume,
                         std::size_t batch) {
  for_each_batch(G, z, n, consume, batch);
}

classified classify(const classifier& C, const tensor4& images, std::size_t batch) {
  const auto n = static_cast<std::size_t>(images.dimension(0));
  const Eigen::Index image_size = images.dimension(1) * images.dimension(2) * images.dimension(3);
  classified out{Eigen::MatrixXd(static_cast<Eigen::Index>(n), classifier::feature_dim),
                 Eigen::MatrixXd(static_cast<Eigen::Index>(n), classifier::classes)};
  for (std::size_t first = 0; first < n; first += batch) {
    const std::size_t count = std::min(batch, n - first);
    tensor4 xb(static_cast<Eigen::Index>(count), images.dimension(1), images.dimension(2), images.dimension(3));
    const float* begin = images.data() + static_cast<Eigen::Index>(first) * image_size;
    std::copy(begin, begin + static_cast<Eigen::Index>(count) * image_size, xb.data());
    const classifier_outputs c = C(xb);
    for (Eigen::Index i = 0; i < static_cast<Eigen::Index>(count); ++i) {
      for (Eigen::Index j = 0; j < classifier::feature_dim; ++j) out.features(static_cast<Eigen::Index>(first) + i, j) = c.features(i, j);
      for (Eigen::Index j = 0; j < classifier::classes; ++j) out.logits(static_cast<Eigen::Index>(first) + i, j) = c.logits(i, j);
    }
  }
  return out;
}

reference_assets reference_assets::load(const std::filesystem::path& dir) {
  return {dir, classifier(load_weights(dir / "classifier.safetensors")),
          qgan::eval::frechet_reference(
              read_reference_gaussian(qgan::io::safetensors_file::open(dir / "fid_reference.safetensors"))),
          load_weights(dir / "generator.safetensors")};
}


/// Scores images (generated from some z) against the reference, with PSNR against
/// reference_pixels: the fp32 generator's 8-bit images for the same z.
quality score(const tensor4& images, std::span<const std::uint8_t> reference_pixels,
                     const reference_assets& assets, int resamples, std::uint64_t seed) {
  const classified c = classify(assets.C, images);
  quality q;
  q.samples = static_cast<std::size_t>(images.dimension(0));
  q.fid = fid_with_bootstrap(c.features, assets.fid_reference, resamples, seed);
  q.inception = qgan::eval::inception_score_from_logits(c.logits);
  const std::vector<std::uint8_t> pixels = to_pixels(images);
  q.psnr = qgan::eval::psnr_u8(reference_pixels, pixels);
  return q;
}

}  // namespace dcgan
