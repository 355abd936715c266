// The reference DCGAN in C++ against PyTorch: golden outputs written by train.py for G, D
// and the classifier, and FID-FMNIST of the shipped generator against the value computed
// in Python (scipy's sqrtm) on the same features. qgan::eval itself: test_eval.cpp.
#include <catch2/catch.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>
#include <string>
#include <vector>

#include <stb/stb_image.h>

#include "test_matrices.hpp"
#include "dcgan/evaluation.hpp"
#include "dcgan/images.hpp"
#include "dcgan/latent.hpp"
#include "dcgan/metrics.hpp"
#include "dcgan/model.hpp"
#include "dcgan/weights.hpp"
#include "qgan/core/error.hpp"
#include "qgan/io/safetensors.hpp"

namespace {

const std::string reference_weights_dir = QGAN_DCGAN_WEIGHTS_DIR;
const std::string data_dir = QGAN_TEST_DATA_DIR;

dcgan::tensor4 golden4(const qgan::io::safetensors_file& file, const char* name) {
  const auto& t = file.at(name);
  const std::vector<float> values = file.read_float(t);
  dcgan::tensor4 out(t.shape.at(0), t.shape.at(1), t.shape.at(2), t.shape.at(3));
  std::copy(values.begin(), values.end(), out.data());
  return out;
}

float max_abs_diff(const float* a, const float* b, Eigen::Index count) {
  float worst = 0;
  for (Eigen::Index i = 0; i < count; ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
  return worst;
}

using qgan::test::matrix_of;

}  // namespace

TEST_CASE("DCGAN generator, discriminator and classifier match PyTorch's golden outputs", "[dcgan]") {
  const auto golden = qgan::io::safetensors_file::open(reference_weights_dir + "/golden.safetensors");
  const dcgan::generator G(dcgan::load_weights(reference_weights_dir + "/generator.safetensors"));
  const dcgan::discriminator D(dcgan::load_weights(reference_weights_dir + "/discriminator.safetensors"));
  const dcgan::classifier C(dcgan::load_weights(reference_weights_dir + "/classifier.safetensors"));

  const dcgan::tensor4 images = G(golden4(golden, "g.z"));
  const dcgan::tensor4 expected_images = golden4(golden, "g.out");
  REQUIRE(images.dimensions() == expected_images.dimensions());
  CHECK(max_abs_diff(images.data(), expected_images.data(), images.size()) <= 1e-4f);

  const dcgan::tensor1 d_real = D(golden4(golden, "d.x"));
  const std::vector<float> expected_real = golden.read_float("d.out");
  REQUIRE(static_cast<std::size_t>(d_real.size()) == expected_real.size());
  CHECK(max_abs_diff(d_real.data(), expected_real.data(), d_real.size()) <= 1e-4f);
  const dcgan::tensor1 d_fake = D(images);
  CHECK(max_abs_diff(d_fake.data(), golden.read_float("d.out_on_g").data(), d_fake.size()) <= 1e-4f);

  const dcgan::classifier_outputs c = C(golden4(golden, "c.x"));
  const std::vector<float> features = golden.read_float("c.features");
  const std::vector<float> logits = golden.read_float("c.logits");
  REQUIRE(static_cast<std::size_t>(c.features.size()) == features.size());
  CHECK(max_abs_diff(c.features.data(), features.data(), c.features.size()) <= 1e-4f);
  CHECK(max_abs_diff(c.logits.data(), logits.data(), c.logits.size()) <= 1e-4f);
}

TEST_CASE("A model file of the wrong network fails naming the tensor", "[dcgan]") {
  const dcgan::weight_set classifier_weights = dcgan::load_weights(reference_weights_dir + "/classifier.safetensors");
  CHECK_THROWS_WITH(dcgan::generator(classifier_weights), Catch::Contains("deconv1.weight") && Catch::Contains("missing"));
  CHECK_THROWS_WITH(dcgan::discriminator(classifier_weights), Catch::Contains("conv4.weight"));
  CHECK_THROWS_WITH(dcgan::load_weights(reference_weights_dir + "/no_such.safetensors"), Catch::Contains("no such file"));
}

TEST_CASE("Running a generator in batches of no images is refused, not a loop without end", "[dcgan]") {
  const dcgan::generator G(dcgan::load_weights(reference_weights_dir + "/generator.safetensors"));
  const std::vector<float> z = dcgan::normal_latents(2 * 100, 1);
  CHECK_THROWS_AS(dcgan::run_generator(G, z, 2, {}, 0), qgan::error);
  CHECK_THROWS_WITH(dcgan::run_generator(G, z, 2, {}, 0), Catch::Contains("batches of 0 images"));
  CHECK(dcgan::run_generator(G, z, 2, {}, 1).dimension(0) == 2);
}

TEST_CASE("FID-FMNIST of the shipped generator against the shipped test-set statistics", "[dcgan][metrics]") {
  // The production case: 128-d features of the shipped generator's images against the
  // shipped test-set statistics, whose covariance is near-singular in places; the value
  // scipy's sqrtm gives (make_metrics_golden.py). The metrics themselves: test_eval.cpp.
  const auto file = qgan::io::safetensors_file::open(data_dir + "/dcgan/metrics_golden.safetensors");
  const qgan::eval::frechet_reference test_set(dcgan::read_reference_gaussian(
      qgan::io::safetensors_file::open(reference_weights_dir + "/fid_reference.safetensors")));
  CHECK(test_set.reference().mean.size() == dcgan::classifier::feature_dim);
  const double expected_generated = std::stod(file.metadata().at("fid_generated_vs_test_scipy"));
  const qgan::eval::gaussian generated = qgan::eval::gaussian_fit(matrix_of(file, "features_generated"));
  CHECK(test_set.distance(generated) == Approx(expected_generated).epsilon(1e-6));
  CHECK(qgan::eval::frechet_distance(generated, test_set.reference()) == Approx(expected_generated).epsilon(1e-6));

  // The reference file must hold F64 mu [d] and sigma [d, d].
  CHECK_THROWS_AS(dcgan::read_reference_gaussian(file), qgan::error);
}

TEST_CASE("FID-FMNIST's seeded bootstrap is reproducible", "[dcgan][metrics]") {
  dcgan::splitmix64 rng(7);
  Eigen::MatrixXd x(400, 4);
  for (Eigen::Index i = 0; i < x.size(); ++i) x.data()[i] = rng.uniform();
  const qgan::eval::frechet_reference reference(qgan::eval::gaussian_fit(x));
  const qgan::eval::frechet_estimate self = dcgan::fid_with_bootstrap(x, reference, 20, 1);
  CHECK(std::abs(self.value) < 1e-9);
  CHECK(self.bootstrap_std > 0);  // resampling moves the fit away from itself
  CHECK(self.resamples == 20);
  CHECK(dcgan::fid_with_bootstrap(x, reference, 20, 1).bootstrap_std == self.bootstrap_std);
  CHECK(dcgan::fid_with_bootstrap(x, reference, 20, 2).bootstrap_std != self.bootstrap_std);
}

TEST_CASE("Seeded latents are standard normal and reproducible", "[dcgan]") {
  const std::vector<float> z = dcgan::normal_latents(100001, 5);
  CHECK(z == dcgan::normal_latents(100001, 5));
  CHECK(z != dcgan::normal_latents(100001, 6));
  // Split over threads, pieces start where the single stream is: the same values.
  for (const std::size_t count : {std::size_t{100001}, std::size_t{32768}, std::size_t{32769}, std::size_t{1}, std::size_t{0}}) {
    const std::vector<float> one = dcgan::normal_latents(count, 5);
    CHECK(dcgan::normal_latents(count, 5, 2) == one);
    CHECK(dcgan::normal_latents(count, 5, 3) == one);
  }
  // The definition as one stream (the function computes it in pieces of 16,384 pairs).
  qgan::splitmix64 rng(5);
  std::vector<float> stream(z.size());
  for (std::size_t i = 0; i < stream.size(); i += 2) {
    const double radius = std::sqrt(-2.0 * std::log(1.0 - rng.uniform()));
    const double angle = 2.0 * std::numbers::pi * rng.uniform();
    stream[i] = static_cast<float>(radius * std::cos(angle));
    if (i + 1 < stream.size()) stream[i + 1] = static_cast<float>(radius * std::sin(angle));
  }
  CHECK(z == stream);
  double sum = 0, squares = 0;
  for (const float v : z) {
    sum += v;
    squares += double(v) * v;
  }
  const double mean = sum / double(z.size());
  CHECK(std::abs(mean) < 0.02);
  CHECK(squares / double(z.size()) - mean * mean == Approx(1.0).epsilon(0.02));
}

TEST_CASE("to_pixel rounds as its definition says on sampled floats and at every half-way point", "[dcgan][images]") {
  // The definition: round((x + 1) * 127.5) in float32, ties to even, clamped to 0..255, NaN 0.
  const auto defined = [](float x) -> std::uint8_t {
    const float scaled = std::nearbyint((x + 1.0f) * 127.5f);
    if (!(scaled >= 0.0f)) return 0;
    return static_cast<std::uint8_t>(std::min(scaled, 255.0f));
  };
  for (std::uint64_t bits = 0; bits <= 0xFFFFFFFFu; bits += 97) {
    const float x = std::bit_cast<float>(static_cast<std::uint32_t>(bits));
    if (dcgan::to_pixel(x) != defined(x)) FAIL("x = " << x << " (bits " << bits << ")");
  }
  for (int k = -2; k <= 257; ++k) {
    // The floats around each point where (x + 1) * 127.5 = k + 0.5.
    float x = (static_cast<float>(k) + 0.5f) / 127.5f - 1.0f;
    for (int step = 0; step < 8; ++step) x = std::nextafter(x, -INFINITY);
    for (int step = 0; step < 16; ++step, x = std::nextafter(x, INFINITY)) {
      if (dcgan::to_pixel(x) != defined(x)) FAIL("x = " << x << " near k = " << k);
    }
  }
  for (const float x : {INFINITY, -INFINITY, std::numeric_limits<float>::quiet_NaN(), 0.0f, -0.0f}) CHECK(dcgan::to_pixel(x) == defined(x));
}

TEST_CASE("Image grids, labels and PNG encoding round-trip through stb_image", "[dcgan][images]") {
  dcgan::tensor4 images(3, 1, 4, 5);
  for (Eigen::Index i = 0; i < images.size(); ++i) images.data()[i] = -1.0f + 2.0f * float(i) / float(images.size() - 1);
  CHECK(dcgan::to_pixel(-1.0f) == 0);
  CHECK(dcgan::to_pixel(1.0f) == 255);
  CHECK(dcgan::to_pixel(5.0f) == 255);
  CHECK(dcgan::to_pixel(-0.0039215689f) == 127);  // (x+1)*127.5 = 127.0
  CHECK(dcgan::to_pixel(0.0f) == 128);             // 127.5 rounds to even
  CHECK(dcgan::to_pixel(std::numeric_limits<float>::quiet_NaN()) == 0);

  const dcgan::gray_image grid = dcgan::image_grid(images, 2, 1);
  CHECK(grid.width == 1 + 2 * (5 + 1));
  CHECK(grid.height == 1 + 2 * (4 + 1));
  const std::vector<std::uint8_t> pixels = dcgan::to_pixels(images);
  CHECK(grid.pixels[1 * std::size_t(grid.width) + 1] == pixels[0]);                    // image 0, (0, 0)
  CHECK(grid.pixels[1 * std::size_t(grid.width) + 1 + 6] == pixels[20]);               // image 1, (0, 0)
  CHECK(grid.pixels[6 * std::size_t(grid.width) + 1 + 4] == pixels[40 + 4]);           // image 2, (0, 4)

  // Filled an image at a time, in any order (as qgan sample fills it): the same grid.
  // Images that do not fit it are refused, naming the grid.
  dcgan::grid_builder builder(3, 4, 5, 2, 1);
  for (const std::size_t i : {std::size_t{2}, std::size_t{0}, std::size_t{1}}) builder.place(images, 0, i);
  CHECK(builder.image().pixels == grid.pixels);
  CHECK_THROWS_AS(builder.place(images, 1), qgan::error);
  CHECK_THROWS_WITH(builder.place(images, 1), Catch::Contains("image grid") && Catch::Contains("does not fit a grid of 3 images"));
  CHECK_THROWS_WITH(builder.place(dcgan::tensor4(1, 1, 5, 5), 0), Catch::Contains("[1,1,5,5]") && Catch::Contains("1x4x5"));
  CHECK_THROWS_WITH(dcgan::grid_builder(3, 0, 5, 2), Catch::Contains("image grid") && Catch::Contains("0x5"));

  dcgan::gray_image labelled(64, 20, 0);
  dcgan::draw_text(labelled, 2, 2, "EM 2b", 2);
  std::size_t lit = 0;
  for (const auto p : labelled.pixels) lit += p == 255 ? 1 : 0;
  CHECK(lit > 20);

  const std::vector<std::byte> png = dcgan::encode_png(labelled);
  int w = 0, h = 0, channels = 0;
  unsigned char* decoded = stbi_load_from_memory(reinterpret_cast<const unsigned char*>(png.data()),
                                                 static_cast<int>(png.size()), &w, &h, &channels, 1);
  REQUIRE(decoded != nullptr);
  CHECK(w == 64);
  CHECK(h == 20);
  CHECK(channels == 1);
  CHECK(std::equal(labelled.pixels.begin(), labelled.pixels.end(), decoded));
  stbi_image_free(decoded);
}
