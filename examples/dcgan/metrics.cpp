// The DCGAN side of the metrics, compiled once (Eigen's symmetric eigensolver is heavy to build).
#include "dcgan/metrics.hpp"

#include <cstring>
#include <vector>

#include "dcgan/latent.hpp"
#include "qgan/core/error.hpp"
#include "qgan/io/safetensors.hpp"

namespace dcgan {

qgan::eval::gaussian read_reference_gaussian(const qgan::io::safetensors_file& file) {
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
  qgan::eval::gaussian g;
  g.mean = Eigen::Map<const Eigen::VectorXd>(mu.data(), d);
  g.covariance = Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
      sigma.data(), d, d);
  return g;
}

qgan::eval::frechet_estimate fid_with_bootstrap(const Eigen::MatrixXd& features,
                                                const qgan::eval::frechet_reference& reference, int resamples,
                                                std::uint64_t seed) {
  splitmix64 rng(seed);
  return qgan::eval::frechet_bootstrap(features, reference, resamples,
                                       [&rng](std::size_t n) { return rng.below(n); });
}

}  // namespace dcgan
