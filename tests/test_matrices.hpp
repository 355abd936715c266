// A 2-D tensor of a safetensors file as an Eigen double matrix: the golden features and
// statistics the metric tests compare against.
#pragma once

#include <Eigen/Dense>
#include <vector>

#include "qgan/io/safetensors.hpp"

namespace qgan::test {

inline Eigen::MatrixXd matrix_of(const qgan::io::safetensors_file& file, const char* name) {
  const auto& t = file.at(name);
  const std::vector<float> values = file.read_float(t);
  Eigen::MatrixXd m(t.shape.at(0), t.shape.at(1));
  for (Eigen::Index i = 0; i < m.rows(); ++i) {
    for (Eigen::Index j = 0; j < m.cols(); ++j) m(i, j) = values[static_cast<std::size_t>(i * m.cols() + j)];
  }
  return m;
}

}  // namespace qgan::test
