#include "recalibrate.hpp"

#include <algorithm>
#include <iomanip>
#include <string>

#include "dcgan/generator_network.hpp"
#include "qgan/calib/recalibrate.hpp"
#include "progress.hpp"
#include "qgan/io/atomic_write.hpp"
#include "qgan/io/qgan_writer.hpp"
#include "qgan/io/safetensors.hpp"

namespace qgan_cli {

std::optional<recalibration_request> recalibration_options(const parsed_args& parsed, int threads) {
  const std::optional<std::string> steps = parsed.value("--recalibrate");
  if (!steps) {
    for (const char* option : {"--calib-samples", "--calib-seed", "--rounding-inputs", "--bias-target"}) {
      if (parsed.has(option)) throw usage_error("qgan quantize: " + std::string(option) + " needs --recalibrate");
    }
    return std::nullopt;
  }
  if (!parsed.has("--arch")) {
    throw usage_error("qgan quantize: --recalibrate needs --arch (it runs the generator the architecture describes)");
  }
  require_dcgan_arch(parsed);
  recalibration_request request;
  // act8 is the tool's (the library's steps do not know the packed generator): taken out
  // here, wherever it stands in the list; a second one is the library's to refuse.
  std::vector<std::string> library_steps = qgan::calib::split_steps(*steps);
  if (const auto act8 = std::find(library_steps.begin(), library_steps.end(), "act8"); act8 != library_steps.end()) {
    request.activation_ranges = true;
    library_steps.erase(act8);
  }
  qgan::calib::recalibration_options& options = request.library;
  try {
    if (!library_steps.empty() || !request.activation_ranges) options = qgan::calib::parse_steps(library_steps);
  } catch (const qgan::error& e) {
    throw usage_error(std::string("qgan quantize: --recalibrate: ") + e.what());
  }
  options.samples = static_cast<std::size_t>(parsed.integer("--calib-samples", 1024, 2, 65536));
  options.seed = static_cast<std::uint64_t>(parsed.integer("--calib-seed", 3141592653, 0, INT64_MAX));
  options.threads = threads;
  const std::string inputs = parsed.value("--rounding-inputs").value_or("fp32");
  if (inputs == "quantized") {
    options.rounding_from = qgan::calib::rounding_inputs::quantized;
  } else if (inputs == "fp32") {
    options.rounding_from = qgan::calib::rounding_inputs::fp32;
  } else if (inputs == "both") {
    options.rounding_from = qgan::calib::rounding_inputs::both;
  } else {
    throw usage_error("qgan quantize: --rounding-inputs '" + inputs + "' is unknown (quantized, fp32 or both)");
  }
  const std::string target = parsed.value("--bias-target").value_or("fp32");
  if (target != "fp32" && target != "same-inputs") {
    throw usage_error("qgan quantize: --bias-target '" + target + "' is unknown (fp32 or same-inputs)");
  }
  options.bias_toward = target == "fp32" ? qgan::calib::bias_target::fp32_network : qgan::calib::bias_target::same_inputs;
  if (parsed.has("--rounding-inputs") && !options.rounding) {
    throw usage_error("qgan quantize: --rounding-inputs needs the rounding step");
  }
  if (parsed.has("--bias-target") && !options.bias) throw usage_error("qgan quantize: --bias-target needs the bias step");
  return request;
}

int quantize_and_recalibrate(const std::filesystem::path& input, const std::filesystem::path& output,
                             const dcgan::quantize_settings& settings, recalibration_request request,
                             const context& ctx) {
  qgan::calib::recalibration_options& options = request.library;
  qgan::io::atomic_file out(output);
  const qgan::io::safetensors_file file = qgan::io::safetensors_file::open(input);
  qgan::io::qgan_model model;
  {
    progress_bar bar(ctx.err, ctx.stderr_is_terminal, "quantizing", file.tensors().size());
    model = dcgan::quantize_model(file, settings, input.filename().string(), [&](std::size_t done) { bar.update(done); });
  }
  const qgan::io::safetensors_tensor& first = file.at("deconv1.weight");
  if (first.shape.size() != 4 || first.shape[0] < 1) {
    throw qgan::error(file.source() + ": tensor 'deconv1.weight': shape " + qgan::to_string(first.shape) +
                      " is not a DCGAN generator's first ConvTranspose2d weight");
  }
  const qgan::calib::sequential_network network = dcgan::generator_network(first.shape[0]);
  qgan::calib::recalibration_report report;
  {
    progress_bar bar(ctx.err, ctx.stderr_is_terminal, "recalibrating", network.layers.size());
    options.progress = [&](std::string_view, std::size_t done, std::size_t) { bar.update(done); };
    report = qgan::calib::recalibrate(file, model, network, options);
  }
  std::string steps = qgan::calib::steps_text(options);
  if (request.activation_ranges) {
    dcgan::calibrate_model(model, options.samples, options.seed, options.threads);
    steps += steps.empty() ? "act8" : ",act8";
    model.metadata["qgan.recalibration"] = steps;
  }
  const std::vector<std::byte> bytes = qgan::io::serialize_qgan(model);
  out.write(bytes);
  out.commit();
  const dcgan::weight_error error = dcgan::measure_weight_error(file, model);
  ctx.out << "wrote " << output.string() << ": " << settings.method << ", " << settings.bits << " bits, "
          << (settings.per_channel ? "per channel" : "per tensor") << ", recalibrated ("
          << steps << ") on " << report.samples << " latents (seed " << report.seed << ") in "
          << std::fixed << std::setprecision(2) << report.seconds << " s, " << bytes.size() << " bytes, weight SQNR "
          << error.sqnr_db() << " dB\n";
  for (const qgan::calib::layer_report& layer : report.layers) {
    ctx.out << "  " << layer.name << ":";
    if (layer.phases > 0) {
      ctx.out << std::setprecision(4) << std::scientific << " rounding error " << layer.error_before << " -> "
              << layer.error_after << " (" << layer.phases_rounded << " of " << layer.phases << " phases re-rounded)";
    }
    if (layer.bias_corrected) ctx.out << std::scientific << std::setprecision(3) << ", bias shift " << layer.bias_shift;
    if (layer.batch_norm_updated) ctx.out << ", BatchNorm statistics recalibrated";
    ctx.out << std::scientific << std::setprecision(3) << ", output MSE vs fp32 " << layer.output_mse << "\n";
    ctx.out << std::defaultfloat;
  }
  return 0;
}

}  // namespace qgan_cli
