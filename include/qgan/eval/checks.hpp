// Input checks shared by the metrics in qgan/eval: finite matrices and row-major buffers
// turned into Eigen matrices after their sizes are checked. Every failure is a qgan::error
// that names the metric, the argument and the offending element.
#pragma once

#include <Eigen/Core>

#include <cmath>
#include <concepts>
#include <cstddef>
#include <limits>
#include <span>
#include <string_view>

#include "qgan/core/error.hpp"
#include "qgan/core/isa_namespace.hpp"

namespace qgan::eval::detail {
QGAN_BEGIN_FUNCTIONS

inline const char* non_finite_name(double v) { return std::isnan(v) ? "NaN" : (v > 0 ? "+Inf" : "-Inf"); }

/// Throws naming (row, column) of the first NaN or Inf.
inline void require_finite(const Eigen::Ref<const Eigen::MatrixXd>& m, const char* metric, std::string_view what) {
  if (m.allFinite()) return;
  for (Eigen::Index j = 0; j < m.cols(); ++j) {
    for (Eigen::Index i = 0; i < m.rows(); ++i) {
      if (!std::isfinite(m(i, j))) {
        qgan::detail::throw_error(metric, ": ", what, " (row ", i, ", column ", j, ") is ", non_finite_name(m(i, j)));
      }
    }
  }
}

/// A row-major buffer of rows x cols values as a double matrix; the size must match.
template <class T>
  requires std::same_as<T, float> || std::same_as<T, double>
Eigen::MatrixXd row_major_matrix(std::span<const T> values, std::size_t rows, std::size_t cols, const char* metric,
                                 const char* what) {
  const auto index_max = static_cast<std::size_t>(std::numeric_limits<Eigen::Index>::max());
  if (rows > index_max || cols > index_max || (cols != 0 && rows > index_max / cols) || values.size() != rows * cols) {
    qgan::detail::throw_error(metric, ": ", what, " has ", values.size(), " values, not ", rows, " x ", cols);
  }
  using row_major = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  return Eigen::Map<const row_major>(values.data(), static_cast<Eigen::Index>(rows), static_cast<Eigen::Index>(cols))
      .template cast<double>();
}

QGAN_END_FUNCTIONS
}  // namespace qgan::eval::detail
