// qgan calibrate MODEL.qgan --arch dcgan -o OUT.qgan [--samples N] [--seed S] [--threads N]
#include <iostream>

#include "cli.hpp"
#include "recalibrate.hpp"
#include "option_specs.hpp"
#include "dcgan/packed_generator.hpp"
#include "qgan/io/atomic_write.hpp"
#include "qgan/io/input_file.hpp"
#include "qgan/io/qgan_reader.hpp"
#include "qgan/io/qgan_writer.hpp"

namespace qgan_cli {

namespace {

constexpr const char* calibrate_help =
    "usage: qgan calibrate MODEL.qgan --arch dcgan -o OUT.qgan [options]\n"
    "\n"
    "Runs the quantized generator in MODEL with fp32 activations on calibration latents\n"
    "and stores each layer's 8-bit input range in OUT as float32 tensors\n"
    "deconvN.input_scale and deconvN.input_zero_point (x = scale * (q - zero_point)),\n"
    "which `qgan sample --act int8` and `qgan eval --act int8` need. Each range is\n"
    "clipped at the 99.99th percentile of its values (of |z| for the latent, whose range\n"
    "is symmetric; the inputs after ReLU start at 0). Everything else is copied as it is.\n"
    "\n"
    "  --arch dcgan        the generator architecture (the only one known)\n"
    "  -o, --output FILE   the .qgan file to write (may not be MODEL)\n"
    "  --samples N         calibration latents (default 1024)\n"
    "  --seed S            their seed (default 3141592653; eval uses 1 and sample 0 by\n"
    "                      default: keep calibration and evaluation latents apart)\n"
    "  --threads N         threads the layers use (default 1)\n";

}  // namespace

int command_calibrate(std::span<const std::string> args, const context& ctx) {
  const std::optional<parsed_args> maybe_parsed =
      parse_command("calibrate", args, calibrate_option_specs, calibrate_help, "MODEL", ctx);
  if (!maybe_parsed) return 0;
  const parsed_args& parsed = *maybe_parsed;
  require_dcgan_arch(parsed);
  const std::filesystem::path model_path = parsed.positionals[0];
  const std::filesystem::path output = parsed.required("-o");
  const auto samples = static_cast<std::size_t>(parsed.integer("--samples", 1024, 1, 1'000'000));
  const auto seed = static_cast<std::uint64_t>(parsed.integer("--seed", 3141592653, 0, INT64_MAX));
  const std::vector<qgan::io::file_role> inputs{{"MODEL", model_path}}, outputs{{"-o", output}};
  require_distinct_files(parsed, inputs, outputs);
  qgan::io::atomic_file out(output);

  if (!dcgan::is_qgan_file(model_path)) {
    throw qgan::error(model_path.string() + ": not a .qgan model; 8-bit activations run from quantized weights, so "
                      "quantize it first (qgan quantize MODEL -o OUT.qgan --method em --bits K --per-channel --arch dcgan)");
  }
  const std::vector<std::byte> image = qgan::io::input_file(model_path).read_all();
  qgan::io::qgan_model model = qgan::io::parse_qgan(image, model_path.string());
  const dcgan::activation_ranges ranges = dcgan::calibrate_model(model, samples, seed, threads_option(parsed));
  out.write(qgan::io::serialize_qgan(model));
  out.commit();
  ctx.out << "wrote " << output.string() << ":";
  for (std::size_t i = 0; i < ranges.size(); ++i) {
    ctx.out << " deconv" << i + 1 << " scale " << ranges[i].scale << " zero point " << ranges[i].zero_point
            << (i + 1 < ranges.size() ? ";" : "\n");
  }
  return 0;
}

}  // namespace qgan_cli
