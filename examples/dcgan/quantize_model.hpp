// What `qgan quantize` does, as a function the demo and the tests call too: every
// floating-point tensor of rank >= 2 (conv and linear weights) is quantized with one
// policy; biases, BatchNorm tensors and anything --keep names stay float; integer and
// bool tensors (BatchNorm's num_batches_tracked) and non-F32 floats that are kept pass
// through byte for byte. The options are recorded in the model's metadata, the
// source file's metadata under "source.".
#pragma once

#include <cmath>
#include <cstddef>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "qgan/io/qgan_file.hpp"
#include "qgan/io/safetensors.hpp"

namespace dcgan {

/// Every method quantize_model takes, in the demo table's order: "minmax", "log", "tanh",
/// "em" (the paper's EM), "em+", "lloyd".
const std::vector<std::string>& method_names();

struct pattern_value {
  std::string pattern;  ///< shell glob over tensor names (fnmatch), e.g. "deconv*.weight"
  int value = 0;
};

struct quantize_settings {
  std::string method = "em";
  int bits = 4;
  bool per_channel = false;
  std::string arch{};                     ///< "" or "dcgan": names the output-channel axes
  std::vector<pattern_value> axes{};      ///< --axis PATTERN=N, first match wins
  std::vector<std::string> keep{};        ///< --keep PATTERN: left in float
  std::vector<pattern_value> bits_for{};  ///< --bits-for PATTERN=K, last match wins
};

/// Shell-glob match of a tensor name (fnmatch).
bool glob_match(const std::string& pattern, const std::string& name);

/// The known architectures' output-channel axis of a weight: ConvTranspose2d stores
/// (in, out, kh, kw), so its output channels are axis 1; Conv2d and Linear use axis 0.
std::optional<int> arch_axis(const std::string& arch, const std::string& name);

/// Checks the settings alone (before any file is read), so bad flags fail fast.
void validate(const quantize_settings& s);

/// Quantizes `file` into a model ready for write_qgan. source_name is recorded in the
/// metadata (normally the input's file name). progress, if set, is called with the
/// number of tensors done (of file.tensors().size()).
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
