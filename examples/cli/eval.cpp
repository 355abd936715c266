// qgan eval MODEL --arch dcgan [--samples N] [--json]
#include <nlohmann/json.hpp>

#include <cmath>
#include <iomanip>

#include "cli.hpp"
#include "option_specs.hpp"
#include "dcgan/evaluation.hpp"
#include "dcgan/images.hpp"
#include "dcgan/latent.hpp"
#include "progress.hpp"

namespace qgan_cli {

namespace {

constexpr const char* eval_help =
    "usage: qgan eval MODEL --arch dcgan [options]\n"
    "\n"
    "Scores the generator in MODEL (.safetensors or .qgan) on N samples:\n"
    "  FID-FMNIST  Frechet distance of the Fashion-MNIST classifier's 128-d features\n"
    "              (relu4) against the 10,000 test images, with a bootstrap std\n"
    "  IS-FMNIST   exp(E KL(p(y|x) || p(y))) from the classifier's softmax\n"
    "  PSNR        of its 8-bit images against the fp32 generator's for the same z\n"
    "These are NOT Inception FID/IS; they compare runs of this project with each other.\n"
    "FID falls as N grows, so compare figures at the same N only.\n"
    "\n"
    "  --arch dcgan        the generator architecture (the only one known)\n"
    "  --samples N         samples (default 5000, as train.py reports)\n"
    "  --seed S            latent seed (default 1)\n"
    "  --bootstrap B       bootstrap resamples for the FID std (default 50; 0 = none)\n"
    "  --weights-dir DIR   classifier.safetensors, fid_reference.safetensors and the fp32\n"
    "                      generator.safetensors; default: $QGAN_DCGAN_WEIGHTS, else\n"
    "                      share/qgan/dcgan beside the installed binary, else the source\n"
    "                      tree's examples/dcgan/weights\n"
    "  --act fp32|int8     activations of the packed layers (default fp32); int8 needs a\n"
    "                      quantized .qgan model with stored ranges (qgan calibrate)\n"
    "  --threads N         threads the layers use (default 1)\n"
    "  --json              print one JSON object instead of text\n";


}  // namespace

int command_eval(std::span<const std::string> args, const context& ctx) {
  const std::optional<parsed_args> maybe_parsed = parse_command("eval", args, eval_option_specs, eval_help, "MODEL", ctx);
  if (!maybe_parsed) return 0;
  const parsed_args& parsed = *maybe_parsed;
  require_dcgan_arch(parsed);
  const auto samples = static_cast<std::size_t>(parsed.integer("--samples", 5000, 2, 100'000));
  const auto seed = static_cast<std::uint64_t>(parsed.integer("--seed", 1, 0, INT64_MAX));
  const int resamples = static_cast<int>(parsed.integer("--bootstrap", 50, 0, 100'000));
  if (resamples == 1) throw usage_error("qgan eval: --bootstrap 1 gives no spread; use 0 or at least 2");

  const int threads = threads_option(parsed);
  const dcgan::packed_generator G = dcgan::packed_generator::load(parsed.positionals[0], activation_option(parsed), threads);
  const std::filesystem::path weights_dir = find_weights_dir(parsed, ctx);
  const dcgan::reference_assets assets = dcgan::reference_assets::load(weights_dir);
  // The fp32 generator through the same packed-layer kernels, so an fp32 model is
  // identical to it (PSNR inf) and a quantized one differs by its quantization only.
  const dcgan::packed_generator reference_G(dcgan::packed_weight_set{assets.fp32_generator, {}},
                                            qgan::nn::packed::activation_path::fp32, threads);
  if (G.nz() != reference_G.nz()) {
    // PSNR compares the two generators on the same latent vectors.
    throw qgan::error(parsed.positionals[0] + ": the generator takes nz = " + std::to_string(G.nz()) +
                      " latent values, the fp32 reference generator in " + weights_dir.string() + " takes " +
                      std::to_string(reference_G.nz()) + "; eval compares the two on the same z");
  }
  const std::vector<float> z = dcgan::normal_latents(samples * static_cast<std::size_t>(G.nz()), seed);
  dcgan::tensor4 images, reference_images;
  {
    progress_bar bar(ctx.err, ctx.stderr_is_terminal, "sampling", 2 * samples);
    images = dcgan::run_generator(G, z, samples, [&bar](std::size_t done) { bar.update(done); }, 64);
    reference_images = dcgan::run_generator(reference_G, z, samples, [&](std::size_t done) { bar.update(samples + done); }, 64);
  }
  const dcgan::quality q = dcgan::score(images, dcgan::to_pixels(reference_images), assets, resamples, seed);

  if (parsed.has("--json")) {
    nlohmann::json j;
    j["model"] = parsed.positionals[0];
    j["samples"] = q.samples;
    j["activations"] = G.path() == qgan::nn::packed::activation_path::int8 ? "int8" : "fp32";
    j["seed"] = seed;
    j["fid_fmnist"] = q.fid.value;
    j["fid_fmnist_bootstrap_std"] = q.fid.bootstrap_std;
    j["bootstrap_resamples"] = q.fid.resamples;
    j["is_fmnist"] = q.inception;
    j["psnr_db_vs_fp32"] = std::isinf(q.psnr) ? nlohmann::json(nullptr) : nlohmann::json(q.psnr);
    j["identical_to_fp32"] = std::isinf(q.psnr);
    j["reference"] = "classifier relu4 features of the 10000 Fashion-MNIST test images";
    j["weights_dir"] = weights_dir.string();
    ctx.out << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return 0;
  }
  ctx.out << std::fixed << std::setprecision(2) << parsed.positionals[0] << " (N = " << q.samples << ", seed " << seed
          << ")\n  FID-FMNIST " << q.fid.value << " +- " << q.fid.bootstrap_std << " (bootstrap std, "
          << q.fid.resamples << " resamples)\n  IS-FMNIST  " << q.inception << "\n  PSNR vs fp32 "
          << (std::isinf(q.psnr) ? std::string("inf (identical images)") : "");
  if (!std::isinf(q.psnr)) ctx.out << q.psnr << " dB";
  ctx.out << "\n  reference weights: " << weights_dir.string() << "\n";
  return 0;
}

}  // namespace qgan_cli
