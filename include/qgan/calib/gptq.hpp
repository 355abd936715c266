// Output-aware rounding on a fixed grid: the closed-form GPTQ/OBQ column sweep (Frantar
// et al. 2022). For one weight matrix W (rows: outputs, columns: inputs) and the Hessian
// H = sum x x^T of its calibration inputs, the output error of codes Q is
// sum_rows (w - q)^T H (w - q). The sweep rounds one column at a time to each element's
// nearest level and spreads the rounding error over the columns not yet rounded, through
// the upper Cholesky factor U of H^-1 (damped): w[j+1:] -= (w_j - q_j) / U_jj * U_j,j+1:.
// Columns are visited in order of decreasing H_jj ("act order"). Levels come from the
// tensor's own quantizer (alpha, beta, or the codebook), so the result is an ordinary
// packed tensor. Columns whose inputs are always 0 (H_jj = 0) get each element's nearest
// level: nothing couples them to the other columns.
#pragma once

#include <Eigen/Dense>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <vector>

#include "qgan/calib/options.hpp"
#include "qgan/core/isa_namespace.hpp"

namespace qgan::calib {

/// A channel's levels sorted by value, with the code of each.
struct level_table {
  std::vector<float> values{};
  std::vector<std::uint8_t> codes{};
};

QGAN_BEGIN_FUNCTIONS

/// Sorts the 2^bits decoded levels of one channel (ties keep the lower code).
inline level_table make_level_table(const std::vector<float>& decoded) {
  std::vector<std::size_t> order(decoded.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return decoded[a] < decoded[b]; });
  level_table table;
  for (const std::size_t code : order) {
    table.values.push_back(decoded[code]);
    table.codes.push_back(static_cast<std::uint8_t>(code));
  }
  return table;
}

/// The index into `table` of the level nearest to w (the lower one on a tie).
inline std::size_t nearest_level(const level_table& table, double w) {
  const auto above = std::lower_bound(table.values.begin(), table.values.end(), w,
                                      [](float level, double value) { return double(level) < value; });
  if (above == table.values.begin()) return 0;
  if (above == table.values.end()) return table.values.size() - 1;
  const std::size_t hi = static_cast<std::size_t>(above - table.values.begin());
  return w - double(table.values[hi - 1]) <= double(table.values[hi]) - w ? hi - 1 : hi;
}

/// sum over rows of (w - q)^T H (w - q), with q the decoded levels of `levels`
/// (row-major rows x cols, each element's level as a value).
inline double output_error(const Eigen::MatrixXd& w, const Eigen::MatrixXd& q, const Eigen::MatrixXd& h) {
  const Eigen::MatrixXd d = w - q;
  return (d * h).cwiseProduct(d).sum();
}

/// The sweep on one matrix. table_of(row, col) gives each element's level table; the
/// result is each element's chosen level index into its table, as the decoded value in
/// `quantized` and the index in `chosen`. Returns false (leaving both untouched) where
/// H + damping stays not positive definite.
template <class TableOf>
bool gptq_sweep(const Eigen::MatrixXd& weights, const Eigen::MatrixXd& hessian, TableOf&& table_of,
                const sweep_options& options, Eigen::MatrixXd& quantized, std::vector<std::size_t>& chosen) {
  const Eigen::Index rows = weights.rows(), cols = weights.cols();
  std::vector<Eigen::Index> order(static_cast<std::size_t>(cols));
  std::iota(order.begin(), order.end(), Eigen::Index{0});
  if (options.act_order) {
    std::stable_sort(order.begin(), order.end(),
                     [&](Eigen::Index a, Eigen::Index b) { return hessian(a, a) > hessian(b, b); });
  }
  Eigen::MatrixXd h(cols, cols);
  Eigen::MatrixXd w(rows, cols);
  for (Eigen::Index a = 0; a < cols; ++a) {
    w.col(a) = weights.col(order[static_cast<std::size_t>(a)]);
    for (Eigen::Index b = 0; b < cols; ++b) h(a, b) = hessian(order[static_cast<std::size_t>(a)], order[static_cast<std::size_t>(b)]);
  }
  double mean_diagonal = 0;
  for (Eigen::Index j = 0; j < cols; ++j) {
    if (h(j, j) == 0) h(j, j) = 1;  // a dead column: decoupled from the others
    mean_diagonal += h(j, j);
  }
  mean_diagonal = cols == 0 ? 1 : mean_diagonal / double(cols);
  h.diagonal().array() += options.damping * mean_diagonal;
  Eigen::LLT<Eigen::MatrixXd> factor(h);
  if (factor.info() != Eigen::Success) return false;
  const Eigen::MatrixXd inverse = factor.solve(Eigen::MatrixXd::Identity(cols, cols));
  Eigen::LLT<Eigen::MatrixXd> inverse_factor(inverse);
  if (inverse_factor.info() != Eigen::Success) return false;
  const Eigen::MatrixXd upper = inverse_factor.matrixU();

  Eigen::MatrixXd q(rows, cols);
  std::vector<std::size_t> picked(static_cast<std::size_t>(rows * cols));
  for (Eigen::Index j = 0; j < cols; ++j) {
    const Eigen::Index original = order[static_cast<std::size_t>(j)];
    for (Eigen::Index r = 0; r < rows; ++r) {
      const level_table& table = table_of(r, original);
      const std::size_t level = nearest_level(table, w(r, j));
      picked[static_cast<std::size_t>(r * cols + original)] = level;
      q(r, j) = table.values[level];
    }
    const Eigen::Index rest = cols - j - 1;
    if (rest > 0) {
      const Eigen::VectorXd error = (w.col(j) - q.col(j)) / upper(j, j);
      w.rightCols(rest).noalias() -= error * upper.row(j).tail(rest);
    }
  }
  quantized.resize(rows, cols);
  for (Eigen::Index a = 0; a < cols; ++a) quantized.col(order[static_cast<std::size_t>(a)]) = q.col(a);
  chosen = std::move(picked);
  return true;
}

QGAN_END_FUNCTIONS

}  // namespace qgan::calib
