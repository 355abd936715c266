// The network-independent metrics of qgan/eval: Fréchet distance against scipy's sqrtm
// (tests/data/dcgan/make_metrics_golden.py) and closed forms, the bootstrap spread,
// Inception Score bounds, PSNR by hand, and a qgan::error for every bad input.
#include <catch2/catch.hpp>

#include <Eigen/Core>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "test_matrices.hpp"
#include "qgan/eval/eval.hpp"
#include "qgan/io/safetensors.hpp"

namespace {

namespace ev = qgan::eval;
using Catch::Contains;

using qgan::test::matrix_of;

/// rows x cols uniform [0, 1) values plus a per-column offset, from a fixed seed.
Eigen::MatrixXd random_features(Eigen::Index rows, Eigen::Index cols, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  Eigen::MatrixXd x(rows, cols);
  for (Eigen::Index j = 0; j < cols; ++j) {
    for (Eigen::Index i = 0; i < rows; ++i) x(i, j) = u(rng) * double(j + 1) + double(j);
  }
  return x;
}

Eigen::MatrixXd softmax_rows(const Eigen::MatrixXd& logits) {
  Eigen::MatrixXd p(logits.rows(), logits.cols());
  for (Eigen::Index i = 0; i < logits.rows(); ++i) {
    const Eigen::RowVectorXd e = (logits.row(i).array() - logits.row(i).maxCoeff()).exp();
    p.row(i) = e / e.sum();
  }
  return p;
}

template <class T>
constexpr bool frechet_distance_takes = requires(const T& x) { ev::frechet_distance(x, x); };

}  // namespace

TEST_CASE("frechet_distance and frechet_reference take what plain functions of gaussian and Ref took", "[eval]") {
  // They are templates only to defer Eigen's eigensolver (frechet.hpp says why): braced
  // gaussians, blocks and maps of features must still convert, and other types must not.
  const Eigen::MatrixXd a = random_features(40, 3, 1), b = random_features(50, 3, 2);
  const ev::gaussian ga = ev::gaussian_fit(a), gb = ev::gaussian_fit(b);
  const double expected = ev::frechet_distance(ga, gb);
  CHECK(ev::frechet_distance({ga.mean, ga.covariance}, {gb.mean, gb.covariance}) == expected);
  const Eigen::Map<const Eigen::MatrixXd> map_a(a.data(), a.rows(), a.cols());
  CHECK(ev::frechet_distance(map_a, b.topRows(50)) == Approx(expected).epsilon(1e-12));
  const ev::frechet_reference reference({gb.mean, gb.covariance});
  CHECK(reference.distance({ga.mean, ga.covariance}) == Approx(expected).epsilon(1e-12));
  CHECK(reference.distance(map_a) == Approx(expected).epsilon(1e-12));
  static_assert(frechet_distance_takes<ev::gaussian> && frechet_distance_takes<Eigen::MatrixXd>);
  static_assert(!frechet_distance_takes<int> && !frechet_distance_takes<Eigen::MatrixXf>);
  static_assert(!std::is_constructible_v<ev::frechet_reference, Eigen::MatrixXd>);
  static_assert(!std::is_convertible_v<ev::gaussian, ev::frechet_reference>);
}

TEST_CASE("Frechet distance and IS match scipy's sqrtm and train.py on the same features", "[eval]") {
  const auto file = qgan::io::safetensors_file::open(std::string(QGAN_TEST_DATA_DIR) + "/dcgan/metrics_golden.safetensors");
  const Eigen::MatrixXd a = matrix_of(file, "features_a");
  const Eigen::MatrixXd b = matrix_of(file, "features_b");
  const double expected_fid = std::stod(file.metadata().at("fid_scipy"));
  const ev::gaussian ga = ev::gaussian_fit(a);
  const ev::gaussian gb = ev::gaussian_fit(b);
  CHECK(ev::frechet_distance(ga, gb) == Approx(expected_fid).epsilon(1e-6));
  CHECK(ev::frechet_distance(gb, ga) == Approx(expected_fid).epsilon(1e-6));
  CHECK(ev::frechet_distance(a, b) == Approx(expected_fid).epsilon(1e-6));
  CHECK(ev::frechet_reference(gb).distance(ga) == Approx(expected_fid).epsilon(1e-6));
  CHECK(ev::frechet_reference(gb).distance(a) == Approx(expected_fid).epsilon(1e-6));
  CHECK(std::abs(ev::frechet_distance(ga, ga)) < 1e-8 * ga.covariance.trace());

  // The same features as a row-major float buffer (what a network hands over).
  const std::vector<float> a_floats = file.read_float("features_a");
  const ev::gaussian ga_span = ev::gaussian_fit(a_floats, std::size_t(a.rows()), std::size_t(a.cols()));
  CHECK(ga_span.mean == ga.mean);
  CHECK(ga_span.covariance.isApprox(ga.covariance, 1e-14));

  const double expected_is = std::stod(file.metadata().at("is_logits"));
  const Eigen::MatrixXd logits = matrix_of(file, "logits");
  CHECK(ev::inception_score_from_logits(logits) == Approx(expected_is).epsilon(1e-9));
  CHECK(ev::inception_score(softmax_rows(logits)) == Approx(expected_is).epsilon(1e-9));
}

TEST_CASE("Frechet distance of Gaussians with known moments", "[eval]") {
  SECTION("identical Gaussians are at distance 0") {
    const ev::gaussian g = ev::gaussian_fit(random_features(300, 6, 11));
    const double d = ev::frechet_distance(g, g);
    CHECK(std::abs(d) < 1e-10 * g.covariance.trace());
    CHECK(std::abs(ev::frechet_reference(g).distance(g)) < 1e-10 * g.covariance.trace());
  }
  SECTION("1-D: (m1 - m2)^2 + (s1 - s2)^2") {
    const ev::gaussian g1{Eigen::VectorXd::Constant(1, 2.0), Eigen::MatrixXd::Constant(1, 1, 9.0)};
    const ev::gaussian g2{Eigen::VectorXd::Constant(1, -1.0), Eigen::MatrixXd::Constant(1, 1, 0.25)};
    CHECK(ev::frechet_distance(g1, g2) == Approx(9.0 + 2.5 * 2.5).epsilon(1e-14));
  }
  SECTION("diagonal: |mu1 - mu2|^2 + sum (sqrt(s1) - sqrt(s2))^2") {
    const ev::gaussian g1{Eigen::Vector3d(0, 1, 2), Eigen::Vector3d(1, 4, 9).asDiagonal()};
    const ev::gaussian g2{Eigen::Vector3d(1, 1, 0), Eigen::Vector3d(4, 1, 1).asDiagonal()};
    CHECK(ev::frechet_distance(g1, g2) == Approx(1 + 4 + (1 + 1 + 4)).epsilon(1e-12));
    CHECK(ev::frechet_reference(g2).distance(g1) == Approx(1 + 4 + (1 + 1 + 4)).epsilon(1e-12));
  }
  SECTION("identity against a rotated covariance: sum (1 - sqrt(lambda))^2") {
    // S2 = Q diag(lambda) Q^T with Q a rotation in the (0, 2) plane: not diagonal.
    const Eigen::Vector3d lambda(0.25, 4.0, 16.0);
    Eigen::Matrix3d q = Eigen::Matrix3d::Identity();
    const double c = std::cos(0.7), s = std::sin(0.7);
    q(0, 0) = c, q(0, 2) = -s, q(2, 0) = s, q(2, 2) = c;
    const ev::gaussian g1{Eigen::Vector3d::Zero(), Eigen::Matrix3d::Identity()};
    const ev::gaussian g2{Eigen::Vector3d::Zero(), q * lambda.asDiagonal() * q.transpose()};
    const double expected = (1 - 0.5) * (1 - 0.5) + (1 - 2.0) * (1 - 2.0) + (1 - 4.0) * (1 - 4.0);
    CHECK(ev::frechet_distance(g1, g2) == Approx(expected).epsilon(1e-12));
    CHECK(ev::frechet_distance(g2, g1) == Approx(expected).epsilon(1e-12));
  }
  SECTION("singular covariances: round-off eigenvalues below zero count as zero") {
    // 5 samples in 8 dimensions: both covariances have rank <= 4.
    const ev::gaussian g1 = ev::gaussian_fit(random_features(5, 8, 1));
    const ev::gaussian g2 = ev::gaussian_fit(random_features(5, 8, 2));
    const double d = ev::frechet_distance(g1, g2);
    CHECK(std::isfinite(d));
    CHECK(d > 0);
    const ev::gaussian zero{Eigen::VectorXd::Zero(3), Eigen::MatrixXd::Zero(3, 3)};
    const ev::gaussian shifted{Eigen::Vector3d(1, 2, 2), Eigen::MatrixXd::Zero(3, 3)};
    CHECK(ev::frechet_distance(zero, shifted) == Approx(9.0).epsilon(1e-15));
  }
}

TEST_CASE("Frechet distance is symmetric and the reference form agrees", "[eval]") {
  const auto dims = GENERATE(1, 2, 7, 16, 33);
  const Eigen::MatrixXd a = random_features(200, dims, 3);
  const Eigen::MatrixXd b = random_features(150, dims, 4) * 1.3;
  INFO("dims " << dims);
  const double ab = ev::frechet_distance(a, b);
  CHECK(ab > 0);
  CHECK(ev::frechet_distance(b, a) == Approx(ab).epsilon(1e-10));
  CHECK(ev::frechet_reference(ev::gaussian_fit(a)).distance(b) == Approx(ab).epsilon(1e-10));
  CHECK(ev::frechet_reference(ev::gaussian_fit(b)).distance(a) == Approx(ab).epsilon(1e-10));
}

TEST_CASE("Bootstrap spread of the Frechet distance", "[eval]") {
  const Eigen::MatrixXd x = random_features(400, 4, 7);
  const ev::frechet_reference reference(ev::gaussian_fit(x));
  std::mt19937_64 rng(1);
  const auto draw = [&rng](std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng); };
  const ev::frechet_estimate self = ev::frechet_bootstrap(x, reference, 20, draw);
  CHECK(std::abs(self.value) < 1e-9);
  CHECK(self.bootstrap_std > 0);  // resampling moves the fit away from itself
  CHECK(self.resamples == 20);

  rng.seed(1);  // the same draws give the same spread
  CHECK(ev::frechet_bootstrap(x, reference, 20, draw).bootstrap_std == self.bootstrap_std);
  // Always row 0 then row 1: every resample is the same matrix, so the spread is 0 (up to
  // the round-off of the mean of equal values).
  std::size_t calls = 0;
  const ev::frechet_estimate fixed =
      ev::frechet_bootstrap(x, reference, 3, [&calls](std::size_t) { return calls++ % 2; });
  CHECK(fixed.bootstrap_std < 1e-12);
  const ev::frechet_estimate none = ev::frechet_bootstrap(x, reference, 0, draw);
  CHECK(none.value == self.value);
  CHECK(none.bootstrap_std == 0);
  CHECK(none.resamples == 0);

  CHECK_THROWS_WITH(ev::frechet_bootstrap(x, reference, 1, draw), Contains("1 resamples"));
  CHECK_THROWS_WITH(ev::frechet_bootstrap(x, reference, -2, draw), Contains("-2 resamples"));
  CHECK_THROWS_WITH(ev::frechet_bootstrap(x, reference, 2, [](std::size_t n) { return n; }),
                    Contains("draw(400) returned 400"));
}

TEST_CASE("Inception Score of uniform, confident and underflowing predictions", "[eval]") {
  // Uniform predictions: IS = 1, from probabilities and from logits.
  CHECK(ev::inception_score(Eigen::MatrixXd::Constant(5, 10, 0.1)) == Approx(1.0).epsilon(1e-14));
  CHECK(ev::inception_score_from_logits(Eigen::MatrixXd::Zero(5, 10)) == Approx(1.0));
  // The same prediction for every sample, however confident: IS = 1.
  Eigen::MatrixXd same = Eigen::MatrixXd::Zero(4, 3);
  same.col(1).setOnes();
  CHECK(ev::inception_score(same) == Approx(1.0));

  // One-hot, every class equally often: IS = number of classes.
  for (const int classes : {1, 2, 10, 1000}) {
    INFO("classes " << classes);
    CHECK(ev::inception_score(Eigen::MatrixXd::Identity(classes, classes)) == Approx(double(classes)).epsilon(1e-12));
    Eigen::MatrixXd twice(2 * classes, classes);
    twice << Eigen::MatrixXd::Identity(classes, classes), Eigen::MatrixXd::Identity(classes, classes);
    CHECK(ev::inception_score(twice) == Approx(double(classes)).epsilon(1e-12));
  }
  Eigen::MatrixXd confident = Eigen::MatrixXd::Constant(10, 10, -1000.0);
  for (int i = 0; i < 10; ++i) confident(i, i) = 0;
  CHECK(ev::inception_score_from_logits(confident) == Approx(10.0));
  // Half the classes, equally often: IS = 5.
  Eigen::MatrixXd half = Eigen::MatrixXd::Zero(10, 10);
  for (int i = 0; i < 10; ++i) half(i, i % 5) = 1;
  CHECK(ev::inception_score(half) == Approx(5.0).epsilon(1e-12));

  // A class no sample gives any probability (its softmax underflows to 0) adds nothing.
  Eigen::MatrixXd never = Eigen::MatrixXd::Zero(4, 3);
  never.col(2).setConstant(-2000.0);
  CHECK(ev::inception_score_from_logits(never) == Approx(1.0));

  // Row-major float buffers give the same.
  const std::vector<float> probabilities{1, 0, 0, 0, 1, 0, 0, 0, 1};
  CHECK(ev::inception_score(probabilities, 3, 3) == Approx(3.0).epsilon(1e-12));
  const std::vector<float> logits{0, 0, 0, 0, 0, 0};
  CHECK(ev::inception_score_from_logits(logits, 2, 3) == Approx(1.0));
}

TEST_CASE("PSNR of 8-bit images", "[eval]") {
  const std::vector<std::uint8_t> a{0, 10, 255, 128};
  std::vector<std::uint8_t> b = a;
  CHECK(ev::psnr_u8(a, b) == std::numeric_limits<double>::infinity());
  b[0] = 5;  // MSE = 25 / 4 = 6.25: 10 log10(65025 / 6.25) = 10 log10(10404)
  CHECK(ev::psnr_u8(a, b) == Approx(40.1720034).epsilon(1e-8));
  CHECK(ev::psnr_u8(b, a) == ev::psnr_u8(a, b));
  // Off by one everywhere: MSE = 1, PSNR = 20 log10(255). Black against white: 0 dB.
  const std::vector<std::uint8_t> c{1, 11, 254, 129};
  CHECK(ev::psnr_u8(a, c) == Approx(48.1308036).epsilon(1e-8));
  const std::vector<std::uint8_t> black(16, 0), white(16, 255);
  CHECK(ev::psnr_u8(black, white) == 0.0);
}

TEST_CASE("Metrics reject bad shapes, empty input and NaN with a qgan::error", "[eval]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const Eigen::MatrixXd x = random_features(10, 3, 5);

  CHECK_THROWS_WITH(ev::gaussian_fit(x.topRows(1)), Contains("1 samples, need at least 2"));
  CHECK_THROWS_WITH(ev::gaussian_fit(Eigen::MatrixXd(0, 3)), Contains("0 samples"));
  CHECK_THROWS_WITH(ev::gaussian_fit(Eigen::MatrixXd(4, 0)), Contains("dimension 0"));
  Eigen::MatrixXd with_nan = x;
  with_nan(6, 2) = nan;
  CHECK_THROWS_WITH(ev::gaussian_fit(with_nan), Contains("(row 6, column 2) is NaN"));
  with_nan(6, 2) = -std::numeric_limits<double>::infinity();
  CHECK_THROWS_WITH(ev::frechet_distance(x, with_nan), Contains("-Inf"));
  const std::vector<float> floats(11);
  CHECK_THROWS_WITH(ev::gaussian_fit(floats, 4, 3), Contains("11 values, not 4 x 3"));
  CHECK_THROWS_WITH(ev::gaussian_fit(floats, std::size_t(1) << 40, std::size_t(1) << 40), Contains("11 values"));
  CHECK_THROWS_AS(ev::gaussian_fit(std::vector<double>{}, 0, 0), qgan::error);

  CHECK_THROWS_WITH(ev::frechet_distance(x, random_features(10, 4, 6)), Contains("dimensions 3 and 4 differ"));
  const ev::gaussian g = ev::gaussian_fit(x);
  const ev::gaussian g4 = ev::gaussian_fit(random_features(10, 4, 6));
  CHECK_THROWS_WITH(ev::frechet_distance(g, g4), Contains("dimensions 3 and 4 differ"));
  CHECK_THROWS_WITH(ev::frechet_reference(g4).distance(g), Contains("feature dimension 3, the reference has 4"));
  CHECK_THROWS_WITH(ev::frechet_distance(g, ev::gaussian{}), Contains("second gaussian has dimension 0"));
  CHECK_THROWS_WITH(ev::frechet_distance(ev::gaussian{g.mean, g4.covariance}, g),
                    Contains("first gaussian has a mean of 3 values but a 4 x 4 covariance"));
  ev::gaussian nan_mean = g;
  nan_mean.mean(1) = nan;
  CHECK_THROWS_WITH(ev::frechet_distance(g, nan_mean), Contains("second gaussian's mean (row 1, column 0) is NaN"));
  ev::gaussian nan_covariance = g;
  nan_covariance.covariance(2, 0) = nan;
  CHECK_THROWS_WITH(ev::frechet_reference(nan_covariance), Contains("reference gaussian's covariance (row 2, column 0)"));

  CHECK_THROWS_WITH(ev::inception_score(Eigen::MatrixXd(0, 10)), Contains("no samples"));
  CHECK_THROWS_WITH(ev::inception_score_from_logits(Eigen::MatrixXd(3, 0)), Contains("no classes"));
  Eigen::MatrixXd logits = Eigen::MatrixXd::Zero(3, 4);
  logits(1, 3) = nan;
  CHECK_THROWS_WITH(ev::inception_score_from_logits(logits), Contains("logit (row 1, column 3) is NaN"));
  CHECK_THROWS_WITH(ev::inception_score(Eigen::MatrixXd::Constant(2, 4, 0.3)), Contains("row 0 sums to 1.2"));
  Eigen::MatrixXd negative = Eigen::MatrixXd::Identity(2, 2);
  negative(1, 0) = -0.5;
  negative(1, 1) = 1.5;
  CHECK_THROWS_WITH(ev::inception_score(negative), Contains("row 1 holds a probability outside [0, 1] (-0.5)"));
  CHECK_THROWS_WITH(ev::inception_score(std::vector<float>(5), 2, 3), Contains("5 values, not 2 x 3"));

  const std::vector<std::uint8_t> four(4), three(3);
  CHECK_THROWS_WITH(ev::psnr_u8(four, three), Contains("4 and 3 pixels"));
  CHECK_THROWS_WITH(ev::psnr_u8({}, {}), Contains("0 and 0 pixels"));
}
