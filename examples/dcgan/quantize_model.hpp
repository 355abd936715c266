// The dcgan example's view of whole-model quantization, which lives in the library
// (qgan/model/): the settings are qgan::model::quantize_rules, and quantize_model runs
// the library's in-memory quantization with a progress count the demo and the tests use.
#pragma once

#include <cmath>
#include <cstddef>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "qgan/io/qgan_file.hpp"
#include "qgan/io/safetensors.hpp"
#include "qgan/model/rules.hpp"

namespace dcgan {

using quantize_settings = qgan::model::quantize_rules;

/// Every method, in the demo table's order (qgan::method_names()).
const std::vector<std::string>& method_names();

/// Quantizes `file` into a model ready for write_qgan; progress counts tensors done.
qgan::io::qgan_model quantize_model(const qgan::io::safetensors_file& file, const quantize_settings& s,
                                    const std::string& source_name,
                                    const std::function<void(std::size_t)>& progress = {});

/// Weight SQNR over every quantized tensor together: total signal energy over total
/// error energy, in dB (the figure the demo table reports).
struct weight_error {
  double signal = 0;
  double error = 0;
  [[nodiscard]] double sqnr_db() const {
    return error == 0 ? std::numeric_limits<double>::infinity() : 10.0 * std::log10(signal / error);
  }
};

weight_error measure_weight_error(const qgan::io::safetensors_file& file, const qgan::io::qgan_model& model);

}  // namespace dcgan
