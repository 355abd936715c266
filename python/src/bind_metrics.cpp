// The metrics the tables use (bridge section "metrics"): weight error, code usage, PSNR of
// 8-bit images, and the Frechet distance and inception score of classifier outputs.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <Eigen/Core>

#include "arrays.hpp"
#include "qgan/eval/frechet.hpp"
#include "qgan/eval/inception_score.hpp"
#include "qgan/eval/psnr.hpp"
#include "qgan/quant/metrics.hpp"

namespace qgan_python {
namespace {

using row_major = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

Eigen::Map<const row_major> matrix_view(const py::array& array, const std::string& where) {
  const std::span<const double> values = input_span<double>(array, where);
  if (array.ndim() != 2) throw py::value_error(where + ": expected a 2-D array (samples x dimensions)");
  return {values.data(), static_cast<Eigen::Index>(array.shape(0)), static_cast<Eigen::Index>(array.shape(1))};
}

}  // namespace

void bind_metrics(py::module_& m) {
  m.def("mse", [](const py::array& a, const py::array& b) {
    return qgan::mse(input_span<float>(a, "mse(reference)"), input_span<float>(b, "mse(reconstructed)"));
  }, py::arg("reference").noconvert(), py::arg("reconstructed").noconvert());
  m.def("sqnr_db", [](const py::array& a, const py::array& b) {
    return qgan::sqnr_db(input_span<float>(a, "sqnr_db(reference)"), input_span<float>(b, "sqnr_db(reconstructed)"));
  }, py::arg("reference").noconvert(), py::arg("reconstructed").noconvert());
  m.def("code_histogram", [](const py::array& codes, int bits) {
    return qgan::code_histogram(input_span<std::uint8_t>(codes, "code_histogram(codes)"), bits);
  }, py::arg("codes").noconvert(), py::arg("bits"));
  m.def("psnr_u8", [](const py::array& a, const py::array& b) {
    return qgan::eval::psnr_u8(input_span<std::uint8_t>(a, "psnr_u8(a)"), input_span<std::uint8_t>(b, "psnr_u8(b)"));
  }, py::arg("a").noconvert(), py::arg("b").noconvert(), "dB; +inf for identical images.");
  m.def("frechet_distance", [](const py::array& a, const py::array& b) {
    const auto fa = matrix_view(a, "frechet_distance(features_a)");
    const auto fb = matrix_view(b, "frechet_distance(features_b)");
    const py::gil_scoped_release release;
    return qgan::eval::frechet_distance(fa, fb);
  }, py::arg("features_a").noconvert(), py::arg("features_b").noconvert(),
        "Squared Frechet distance between the Gaussian fits of two float64 feature sets (rows = samples).");
  m.def("inception_score_from_logits", [](const py::array& logits) {
    const auto l = matrix_view(logits, "inception_score_from_logits(logits)");
    return qgan::eval::inception_score_from_logits(l);
  }, py::arg("logits").noconvert(), "exp(E KL(p(y|x) || p(y))) of float64 logits (samples x classes).");
}

}  // namespace qgan_python
