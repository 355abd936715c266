// qgan quantize --recalibrate: the model quantized in memory, recalibrated from sampled
// latents by the library (qgan/calib/recalibrate.hpp), then written atomically.
#pragma once

#include <filesystem>
#include <optional>

#include "cli.hpp"
#include "dcgan/quantize_model.hpp"
#include "qgan/calib/recalibrate.hpp"

namespace qgan_cli {

/// The recalibration the options ask for, or nullopt without --recalibrate (the other
/// --calib and recalibration options are then usage errors).
std::optional<qgan::calib::recalibration_options> recalibration_options(const parsed_args& parsed, int threads);

int quantize_and_recalibrate(const std::filesystem::path& input, const std::filesystem::path& output,
                             const dcgan::quantize_settings& settings, qgan::calib::recalibration_options options,
                             const context& ctx);

}  // namespace qgan_cli
