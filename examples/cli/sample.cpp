// qgan sample MODEL --arch dcgan -o grid.png [-n N] [--seed S] [--z FILE] [--raw FILE]
#include <bit>
#include <cstring>
#include <algorithm>
#include <cmath>
#include <optional>
#include <span>

#include "cli.hpp"
#include "option_specs.hpp"
#include "dcgan/evaluation.hpp"
#include "dcgan/images.hpp"
#include "dcgan/latent.hpp"
#include "qgan/core/finite.hpp"
#include "progress.hpp"
#include "qgan/io/atomic_write.hpp"
#include "qgan/io/file_checks.hpp"
#include "qgan/io/input_file.hpp"

namespace qgan_cli {

namespace {

constexpr const char* sample_help =
    "usage: qgan sample MODEL --arch dcgan -o GRID.png [options]\n"
    "\n"
    "Runs the generator in MODEL (.safetensors or .qgan) on n latent vectors through\n"
    "qgan's packed layers (quantized weights stay k-bit codes) and writes the images as\n"
    "one PNG grid.\n"
    "\n"
    "  --arch dcgan        the generator architecture (the only one known)\n"
    "  -o, --output FILE   the PNG to write\n"
    "  -n N                number of images (default 64, or as many as --z holds)\n"
    "  --seed S            latent seed (default 0): z = Box-Muller over splitmix64(S),\n"
    "                      as examples/dcgan/latent.hpp spells out\n"
    "  --z FILE            read z instead: raw little-endian float32, n x nz (nz = 100\n"
    "                      for the shipped generator); not with --seed\n"
    "  --raw FILE          also write the float outputs: raw little-endian float32,\n"
    "                      n x 1 x 32 x 32, values in [-1, 1]\n"
    "  --columns C         images per grid row (default 8)\n"
    "  --act fp32|int8     activations of the packed layers (default fp32); int8 needs a\n"
    "                      quantized .qgan model with stored ranges (qgan calibrate)\n"
    "  --threads N         threads the layers use (default 1); any N gives the same images\n"
    "\n"
    "Pixels are round((x + 1) * 127.5) in float32, ties to even, clamped to 0..255.\n";


constexpr std::size_t max_images = 100'000;

static_assert(std::endian::native == std::endian::little, "raw float files are little-endian");

std::vector<float> read_latents(const std::filesystem::path& path, std::size_t nz, std::optional<std::size_t>& n) {
  const std::string where = "--z " + path.string();
  const std::uint64_t bytes = qgan::io::regular_file_size(path);
  const std::uint64_t row = nz * sizeof(float);
  if (bytes == 0 || bytes % row != 0) {
    throw qgan::error(where + ": " + std::to_string(bytes) + " bytes is not a whole number of " + std::to_string(nz) +
                      "-float latent vectors (" + std::to_string(row) + " bytes each; the generator's nz is " +
                      std::to_string(nz) + ")");
  }
  if (n && *n * row != bytes) {
    throw qgan::error(where + ": holds " + std::to_string(bytes / row) + " latent vectors but -n is " +
                      std::to_string(*n));
  }
  if (bytes / row > max_images) {
    throw qgan::error(where + ": holds " + std::to_string(bytes / row) + " latent vectors, more than " +
                      std::to_string(max_images) + " images at once");
  }
  n = static_cast<std::size_t>(bytes / row);
  std::vector<float> z(*n * nz);
  const qgan::io::input_file in(path);
  in.read_at(0, std::as_writable_bytes(std::span(z)));
  for (std::size_t i = 0; i < z.size(); ++i) {
    if (!std::isfinite(z[i])) throw qgan::error(where + ": value " + std::to_string(i) + " is not finite");
  }
  return z;
}

}  // namespace

int command_sample(std::span<const std::string> args, const context& ctx) {
  const std::optional<parsed_args> maybe_parsed = parse_command("sample", args, sample_option_specs, sample_help, "MODEL", ctx);
  if (!maybe_parsed) return 0;
  const parsed_args& parsed = *maybe_parsed;
  require_dcgan_arch(parsed);
  const std::filesystem::path output = parsed.required("-o");
  std::optional<std::size_t> n;
  if (parsed.has("-n")) n = static_cast<std::size_t>(parsed.integer("-n", 64, 1, max_images));
  const auto seed = static_cast<std::uint64_t>(parsed.integer("--seed", 0, 0, INT64_MAX));
  const int columns = static_cast<int>(parsed.integer("--columns", 8, 1, 4096));
  if (parsed.has("--z") && parsed.has("--seed")) throw usage_error("qgan sample: give --z or --seed, not both");

  const std::filesystem::path model_path = parsed.positionals[0];
  const std::optional<std::string> z_path = parsed.value("--z");
  const std::optional<std::string> raw_path = parsed.value("--raw");
  std::vector<qgan::io::file_role> inputs{{"MODEL", model_path}};
  if (z_path) inputs.push_back({"--z", *z_path});
  std::vector<qgan::io::file_role> outputs{{"-o", output}};
  if (raw_path) outputs.push_back({"--raw", *raw_path});
  require_distinct_files(parsed, inputs, outputs);
  // Every target is checked, and its temporary opened, before any work: a -o that cannot
  // be written fails now, and --raw is never written alone.
  qgan::io::atomic_file png(output);
  std::optional<qgan::io::atomic_file> raw;
  if (raw_path) raw.emplace(*raw_path);

  const int threads = threads_option(parsed);
  const dcgan::packed_generator G = dcgan::packed_generator::load(model_path, activation_option(parsed), threads);
  const auto nz = static_cast<std::size_t>(G.nz());
  std::vector<float> z;
  if (z_path) {
    z = read_latents(*z_path, nz, n);
  } else {
    if (!n) n = 64;
    z = dcgan::normal_latents(*n * nz, seed, threads);
  }
  // Each batch goes into the grid (and the raw floats, if asked for) as it is made.
  std::optional<dcgan::grid_builder> grid;
  std::vector<float> raw_values;
  {
    progress_bar bar(ctx.err, ctx.stderr_is_terminal, "sampling", *n);
    dcgan::generate_in_batches(G, z, *n, [&](std::size_t first, const dcgan::tensor4& images) {
      const auto count = static_cast<std::size_t>(images.dimension(0));
      const std::size_t per_image = static_cast<std::size_t>(images.size()) / count;
      if (!grid) grid.emplace(*n, static_cast<int>(images.dimension(2)), static_cast<int>(images.dimension(3)), columns);
      // Each image checked and drawn by the generator's threads. Weights near the float
      // range's ends overflow inside the network; PyTorch gives NaN there, and a picture
      // of clamped NaNs would pass for a generator's output.
      std::vector<std::size_t> first_bad(count, per_image);
      G.parallel_for(count, [&](std::size_t i) {
        const float* values = images.data() + i * per_image;
        const auto bad = std::find_if(values, values + per_image, [](float v) { return !std::isfinite(v); });
        first_bad[i] = static_cast<std::size_t>(bad - values);
        if (bad == values + per_image) grid->place(images, first, i);
      });
      for (std::size_t i = 0; i < count; ++i) {
        if (first_bad[i] == per_image) continue;
        const float bad = images.data()[i * per_image + first_bad[i]];
        throw qgan::error(model_path.string() + ": the generator's output " + std::to_string((first + i) * per_image + first_bad[i]) +
                          " is " + (std::isnan(bad) ? "NaN" : "infinite") + " (its weights overflow float arithmetic); nothing written");
      }
      if (raw) raw_values.insert(raw_values.end(), images.data(), images.data() + images.size());
      bar.update(first + count);
    }, 64);
  }
  dcgan::encode_png(
      grid->image(), [&G](std::size_t count, const std::function<void(std::size_t)>& task) { G.parallel_for(count, task); },
      [&png](std::span<const std::byte> bytes) { png.write(bytes); });
  if (raw) raw->write(std::as_bytes(std::span<const float>(raw_values)));
  qgan::io::commit_together({&png, raw ? &*raw : nullptr});
  ctx.out << "wrote " << output.string() << ": " << *n << " images from "
          << (parsed.has("--z") ? "--z " + *parsed.value("--z") : "seed " + std::to_string(seed))
          << (parsed.has("--raw") ? ", floats in " + *parsed.value("--raw") : "") << "\n";
  return 0;
}

}  // namespace qgan_cli
