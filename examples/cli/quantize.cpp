// qgan quantize IN.safetensors -o OUT.qgan --method M --bits K [...]
#include <iomanip>
#include <set>
#include <thread>

#include "cli.hpp"
#include "option_specs.hpp"
#include "dcgan/quantize_model.hpp"
#include "qgan/model/quantize_file.hpp"
#include "dcgan/weights.hpp"
#include "progress.hpp"
#include "qgan/io/file_checks.hpp"
#include "recalibrate.hpp"

namespace qgan_cli {

namespace {

constexpr const char* quantize_help =
    "usage: qgan quantize IN.safetensors -o OUT.qgan --method METHOD --bits K [options]\n"
    "\n"
    "Quantizes every floating-point tensor of rank >= 2 (conv and linear weights) and\n"
    "writes a .qgan model; biases, BatchNorm tensors and integer tensors are kept as they\n"
    "are. The options are recorded in the model's metadata.\n"
    "\n"
    "  -o, --output FILE      the .qgan file to write (atomically)\n"
    "  --method METHOD        em (the paper's EM), em+ (EM with exact 1-bit 2-means and\n"
    "                         restarts), minmax, log (needs K >= 2), tanh, lloyd (Lloyd-Max)\n"
    "  --bits K               1..8\n"
    "  --per-channel          one grid per output channel instead of one per tensor\n"
    "  --arch dcgan           names the output-channel axis of each weight: deconv* are\n"
    "                         ConvTranspose2d (axis 1), others axis 0\n"
    "  --axis PATTERN=N       output-channel axis N for tensors matching the glob PATTERN\n"
    "                         (repeatable; first match wins; needs --per-channel)\n"
    "  --keep PATTERN         leave matching tensors in float (repeatable)\n"
    "  --bits-for PATTERN=K   K bits for matching tensors (repeatable; last match wins)\n"
    "  --threads N            threads splitting each tensor's work (default: all cores);\n"
    "                         the output is byte-identical for any N\n"
    "\n"
    "Data-free recalibration from sampled latents (needs --arch; docs/recalibration.md):\n"
    "  --recalibrate STEPS    comma-separated: bn (re-estimate BatchNorm statistics on the\n"
    "                         quantized generator), bn-match (match the fp32 network's\n"
    "                         post-BatchNorm moments instead), bias (bias correction),\n"
    "                         rounding (GPTQ rounding on the quantizer's own grid), act8\n"
    "                         (store 8-bit activation ranges from the same latents, as\n"
    "                         qgan calibrate does, for --act int8)\n"
    "  --calib-samples N      calibration latents (default 1024)\n"
    "  --calib-seed S         their seed (default 3141592653; eval uses 1, sample 0)\n"
    "  --rounding-inputs fp32|quantized|both\n"
    "                         the rounding objective: the layer's error on the fp32\n"
    "                         network's inputs (default), on the quantized network's, or\n"
    "                         the quantized layer on quantized inputs against the fp32\n"
    "                         layer on fp32 inputs (twice the time)\n"
    "  --bias-target fp32|same-inputs\n"
    "                         bias correction aims each layer's mean output at the fp32\n"
    "                         network's (default) or at the fp32 layer's on the same inputs\n"
    "\n"
    "A safetensors file does not say whether a 4-D weight belongs to a Conv2d (output\n"
    "channels on axis 0) or a ConvTranspose2d (axis 1), so --per-channel needs --arch or\n"
    "--axis for 4-D weights; 2-D (Linear) weights use axis 0.\n";


}  // namespace

int command_quantize(std::span<const std::string> args, const context& ctx) {
  const std::optional<parsed_args> maybe_parsed = parse_command("quantize", args, quantize_option_specs, quantize_help, "input file", ctx);
  if (!maybe_parsed) return 0;
  const parsed_args& parsed = *maybe_parsed;
  dcgan::quantize_settings settings;
  settings.method = parsed.required("--method");
  settings.bits = static_cast<int>(parsed.integer("--bits", 0, qgan::min_bits, qgan::max_bits));
  if (!parsed.has("--bits")) throw usage_error("qgan quantize: --bits is required (see qgan quantize --help)");
  settings.per_channel = parsed.has("--per-channel");
  settings.arch = parsed.value("--arch").value_or("");
  for (const auto& rule : parsed.values("--axis")) {
    const auto [pattern, axis] = parse_pattern_value(rule, "qgan quantize: --axis", -8, 7);
    settings.axes.push_back({pattern, axis});
  }
  settings.keep = parsed.values("--keep");
  for (const auto& rule : parsed.values("--bits-for")) {
    const auto [pattern, bits] = parse_pattern_value(rule, "qgan quantize: --bits-for", qgan::min_bits, qgan::max_bits);
    settings.bits_for.push_back({pattern, bits});
  }
  const unsigned cores = std::thread::hardware_concurrency();
  settings.threads = static_cast<int>(parsed.integer("--threads", cores == 0 ? 1 : cores, 1, 256));
  try {
    qgan::model::validate(settings);
  } catch (const qgan::error& e) {
    throw usage_error(std::string("qgan quantize: ") + e.what());
  }
  const std::filesystem::path input = parsed.positionals[0];
  const std::filesystem::path output = parsed.required("-o");
  const qgan::io::file_role input_role{"IN", input}, output_role{"-o", output};
  require_distinct_files(parsed, {&input_role, 1}, {&output_role, 1});
  const std::uint64_t in_bytes = qgan::io::regular_file_size(input);
  if (dcgan::is_qgan_file(input)) {
    throw qgan::error(input.string() + ": already a .qgan model; quantize the original .safetensors");
  }
  if (const std::optional<recalibration_request> request = recalibration_options(parsed, settings.threads)) {
    return quantize_and_recalibrate(input, output, settings, *request, ctx);
  }
  // Streamed tensor by tensor (peak memory near the largest tensor); the summary's
  // weight SQNR comes from the energies each tensor reports as it is written.
  std::size_t packed = 0, total = 0;
  std::set<int> widths;
  dcgan::weight_error error;
  std::uint64_t out_bytes = 0;
  {
    progress_bar bar(ctx.err, ctx.stderr_is_terminal, "quantizing", 0);
    out_bytes = qgan::model::quantize_file(input, output, settings, [&](const qgan::model::progress_event& event) {
      total = event.total;
      bar.set_total(event.total);
      bar.update(event.done);
      if (event.quantized) {
        ++packed;
        widths.insert(event.bits);
      }
      error.signal += event.signal_energy;
      error.error += event.error_energy;
    });
  }
  const std::string bits_text = widths.empty() ? std::to_string(settings.bits) : qgan::model::join_bit_widths(widths);
  const double ratio = double(in_bytes) / double(out_bytes);
  ctx.out << "wrote " << output.string() << ": " << packed << " of " << total << " tensors quantized ("
          << settings.method << ", " << bits_text << (bits_text == "1" ? " bit, " : " bits, ")
          << (settings.per_channel ? "per channel" : "per tensor") << "), " << out_bytes << " bytes (" << std::fixed
          << std::setprecision(2) << (ratio >= 1.0 ? ratio : 1.0 / ratio)
          << (ratio >= 1.0 ? "x smaller than " : "x larger than ") << input.filename().string()
          << "), weight SQNR " << error.sqnr_db() << " dB\n";
  return 0;
}

}  // namespace qgan_cli
