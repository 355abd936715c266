// qgan quantize --recalibrate: the model quantized in memory, recalibrated from sampled
// latents by the library (qgan/calib/recalibrate.hpp), then written atomically.
#pragma once

#include <filesystem>
#include <optional>

#include "cli.hpp"
#include "dcgan/packed_generator.hpp"
#include "dcgan/quantize_model.hpp"
#include "qgan/calib/options.hpp"

namespace qgan_cli {

struct recalibration_request {
  qgan::calib::recalibration_options library{};
  /// The tool's own step act8: 8-bit activation ranges from the same latents, stored as
  /// qgan calibrate stores them.
  bool activation_ranges = false;
};

/// The recalibration the options ask for, or nullopt without --recalibrate (the other
/// --calib and recalibration options are then usage errors).
std::optional<recalibration_request> recalibration_options(const parsed_args& parsed, int threads);

int quantize_and_recalibrate(const std::filesystem::path& input, const std::filesystem::path& output,
                             const dcgan::quantize_settings& settings, recalibration_request request,
                             const context& ctx);

}  // namespace qgan_cli
