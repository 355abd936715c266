// The demo: the shipped DCGAN generator quantized with every policy at 1-4 bits, per
// tensor (as in the paper) and per channel, each scored against the fp32 generator on the
// same latent vectors. Writes a PNG grid per configuration, one labelled comparison image,
// and the results as a markdown table (also printed) and JSON.
//
//   dcgan_demo [--out DIR] [--samples N] [--bootstrap B] [--threads T] [--weights-dir DIR]
#include <nlohmann/json.hpp>

#include <atomic>
#include <exception>
#include <span>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "args.hpp"
#include "dcgan/evaluation.hpp"
#include "dcgan/images.hpp"
#include "dcgan/latent.hpp"
#include "dcgan/quantize_model.hpp"
#include "qgan/io/atomic_write.hpp"

namespace {

struct configuration {
  std::string method;
  int bits = 0;
  bool per_channel = false;
};

struct outcome {
  configuration config;
  bool possible = true;
  std::string why_not;
  std::uint64_t model_bytes = 0;
  double weight_sqnr_db = 0;
  dcgan::quality quality;
  std::vector<float> first_images;  // the grid's images, for the comparison picture
  double seconds = 0;
};

std::string display_name(const std::string& method) {
  if (method == "em") return "EM (paper)";
  if (method == "em+") return "EM+";
  if (method == "lloyd") return "Lloyd-Max";
  return method;
}

std::string file_stem(const configuration& c) {
  std::string method = c.method == "em+" ? "emplus" : c.method;
  return method + "_" + std::to_string(c.bits) + "bit_" + (c.per_channel ? "per_channel" : "per_tensor");
}

std::string fixed(double value, int digits) {
  if (std::isinf(value)) return "inf";
  std::ostringstream text;
  text << std::fixed << std::setprecision(digits) << value;
  return text.str();
}

constexpr std::size_t grid_images = 64;
constexpr std::size_t strip_images = 16;

dcgan::tensor4 first_images(const dcgan::tensor4& images, std::size_t count) {
  dcgan::tensor4 out(static_cast<Eigen::Index>(count), images.dimension(1), images.dimension(2), images.dimension(3));
  std::copy(images.data(), images.data() + out.size(), out.data());
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  try {
    const std::vector<std::string> args(argv + 1, argv + argc);
    const qgan_cli::option_spec specs[] = {{"--out"}, {"--samples"}, {"--bootstrap"}, {"--threads"}, {"--weights-dir"}};
    const qgan_cli::parsed_args parsed = qgan_cli::parse_args("dcgan_demo", args, specs);
    if (parsed.has("--help") || !parsed.positionals.empty()) {
      std::cout << "usage: dcgan_demo [--out DIR] [--samples N] [--bootstrap B] [--threads T] [--weights-dir DIR]\n";
      return parsed.has("--help") ? 0 : 2;
    }
    const std::filesystem::path out_dir = parsed.value("--out").value_or("demo-output");
    const auto samples = static_cast<std::size_t>(parsed.integer("--samples", 5000, grid_images, 1'000'000));
    const int resamples = static_cast<int>(parsed.integer("--bootstrap", 30, 0, 10'000));
    if (resamples == 1) throw qgan_cli::usage_error("dcgan_demo: --bootstrap 1 gives no spread; use 0 or at least 2");
    const auto hardware = static_cast<std::int64_t>(std::max(1u, std::thread::hardware_concurrency()));
    const auto threads = static_cast<std::size_t>(parsed.integer("--threads", hardware, 1, 256));
    const std::filesystem::path weights_dir = parsed.value("--weights-dir").value_or(QGAN_DCGAN_WEIGHTS_DIR);
    constexpr std::uint64_t seed = 2019;
    std::filesystem::create_directories(out_dir);

    const std::filesystem::path generator_path = weights_dir / "generator.safetensors";
    const auto generator_file = qgan::io::safetensors_file::open(generator_path);
    const dcgan::reference_assets assets = dcgan::reference_assets::load(weights_dir);
    // Every generator runs through the packed layers (fp32 activations, the codes of the
    // quantized ones), one thread each: the configurations run in parallel.
    const dcgan::packed_generator fp32_G(dcgan::packed_weight_set{assets.fp32_generator, {}},
                                         qgan::nn::packed::activation_path::fp32, 1);
    const std::vector<float> z = dcgan::normal_latents(samples * static_cast<std::size_t>(fp32_G.nz()), seed);

    std::cerr << "dcgan_demo: N = " << samples << " samples per configuration (seed " << seed << "), "
              << resamples << " bootstrap resamples, " << threads << " threads\n";
    const dcgan::tensor4 fp32_images = dcgan::run_generator(fp32_G, z, samples);
    const std::vector<std::uint8_t> fp32_pixels = dcgan::to_pixels(fp32_images);
    outcome fp32;
    fp32.config = {"fp32", 32, false};
    fp32.model_bytes = std::filesystem::file_size(generator_path);
    fp32.weight_sqnr_db = std::numeric_limits<double>::infinity();
    fp32.quality = dcgan::score(fp32_images, fp32_pixels, assets, resamples, seed);
    const dcgan::tensor4 fp32_grid = first_images(fp32_images, grid_images);
    fp32.first_images.assign(fp32_grid.data(), fp32_grid.data() + fp32_grid.size());
    dcgan::write_png(out_dir / "grid_fp32.png", dcgan::image_grid(fp32_grid, 8));

    std::vector<outcome> outcomes;
    for (const bool per_channel : {false, true}) {
      for (int bits = 1; bits <= 4; ++bits) {
        for (const std::string& method : dcgan::method_names()) {
          outcome o;
          o.config = {method, bits, per_channel};
          if (method == "log" && bits == 1) {
            o.possible = false;
            o.why_not = "log needs a sign bit plus at least one magnitude bit";
          }
          outcomes.push_back(o);
        }
      }
    }

    std::atomic<std::size_t> next{0};
    std::mutex report;
    std::size_t finished = 0;
    std::exception_ptr failure;  // the first worker's error, rethrown after every join
    const auto work = [&]() {
      for (std::size_t i = next++; i < outcomes.size(); i = next++) {
        outcome& o = outcomes[i];
        if (!o.possible) continue;
        const auto begin = clock::now();
        dcgan::quantize_settings settings;
        settings.method = o.config.method;
        settings.bits = o.config.bits;
        settings.per_channel = o.config.per_channel;
        settings.arch = "dcgan";
        const qgan::io::qgan_model model = dcgan::quantize_model(generator_file, settings, "generator.safetensors");
        o.model_bytes = qgan::io::serialize_qgan(model).size();
        o.weight_sqnr_db = dcgan::measure_weight_error(generator_file, model).sqnr_db();
        const dcgan::packed_generator G(dcgan::packed_weights_from_qgan(model), qgan::nn::packed::activation_path::fp32, 1);
        const dcgan::tensor4 images = dcgan::run_generator(G, z, samples);
        o.quality = dcgan::score(images, fp32_pixels, assets, resamples, seed);
        const dcgan::tensor4 grid = first_images(images, grid_images);
        o.first_images.assign(grid.data(), grid.data() + grid.size());
        dcgan::write_png(out_dir / ("grid_" + file_stem(o.config) + ".png"), dcgan::image_grid(grid, 8));
        o.seconds = std::chrono::duration<double>(clock::now() - begin).count();
        const std::lock_guard lock(report);
        std::cerr << "  [" << ++finished << "] " << file_stem(o.config) << ": FID " << fixed(o.quality.fid.value, 2)
                  << ", PSNR " << fixed(o.quality.psnr, 2) << " dB (" << fixed(o.seconds, 1) << " s)\n";
      }
    };
    const auto worker = [&]() {
      try {
        work();
      } catch (...) {
        const std::lock_guard lock(report);
        if (!failure) failure = std::current_exception();
        next = outcomes.size();  // the others stop at their next configuration
      }
    };
    {
      std::vector<std::jthread> pool;  // joins on every exit path
      for (std::size_t t = 0; t < threads; ++t) pool.emplace_back(worker);
    }
    if (failure) std::rethrow_exception(failure);

    // Markdown table and JSON.
    std::ostringstream table;
    table << "DCGAN generator (Fashion-MNIST, " << qgan::element_count(generator_file.at("deconv2.weight").shape) +
                                                      qgan::element_count(generator_file.at("deconv3.weight").shape) +
                                                      qgan::element_count(generator_file.at("deconv1.weight").shape) +
                                                      qgan::element_count(generator_file.at("deconv4.weight").shape)
          << " conv weights), post-training quantization of every ConvTranspose2d weight; N = " << samples
          << " samples per row (latent seed " << seed << "), FID-FMNIST +- bootstrap std over " << resamples
          << " resamples; PSNR on 8-bit pixels vs fp32 G for the same z.\n\n"
          << "| granularity | bits | policy | model bytes | compression | weight SQNR (dB) | PSNR vs fp32 (dB) | FID-FMNIST | IS-FMNIST |\n"
          << "|---|---:|---|---:|---:|---:|---:|---:|---:|\n";
    const auto row = [&](const std::string& grain, const std::string& bits, const outcome& o) {
      table << "| " << grain << " | " << bits << " | " << display_name(o.config.method) << " | ";
      if (!o.possible) {
        table << "n/a | n/a | n/a | n/a | n/a | n/a |\n";
        return;
      }
      table << o.model_bytes << " | " << fixed(double(fp32.model_bytes) / double(o.model_bytes), 1) << "x | "
            << fixed(o.weight_sqnr_db, 2) << " | " << fixed(o.quality.psnr, 2) << " | "
            << fixed(o.quality.fid.value, 2) << " +- " << fixed(o.quality.fid.bootstrap_std, 2) << " | "
            << fixed(o.quality.inception, 2) << " |\n";
    };
    row("-", "32", fp32);
    nlohmann::json results = nlohmann::json::array();
    for (const outcome& o : outcomes) {
      row(o.config.per_channel ? "per channel" : "per tensor", std::to_string(o.config.bits), o);
      nlohmann::json j{{"method", o.config.method}, {"bits", o.config.bits}, {"per_channel", o.config.per_channel},
                       {"possible", o.possible}};
      if (o.possible) {
        j["model_bytes"] = o.model_bytes;
        j["weight_sqnr_db"] = o.weight_sqnr_db;
        j["psnr_db"] = std::isinf(o.quality.psnr) ? nlohmann::json(nullptr) : nlohmann::json(o.quality.psnr);
        j["fid_fmnist"] = o.quality.fid.value;
        j["fid_fmnist_bootstrap_std"] = o.quality.fid.bootstrap_std;
        j["is_fmnist"] = o.quality.inception;
        j["seconds"] = o.seconds;
      } else {
        j["why_not"] = o.why_not;
      }
      results.push_back(j);
    }
    const nlohmann::json summary{{"samples", samples}, {"seed", seed}, {"bootstrap_resamples", resamples},
                                 {"fp32", {{"model_bytes", fp32.model_bytes}, {"fid_fmnist", fp32.quality.fid.value},
                                           {"fid_fmnist_bootstrap_std", fp32.quality.fid.bootstrap_std},
                                           {"is_fmnist", fp32.quality.inception}}},
                                 {"configurations", results}};
    const auto write_text = [](const std::filesystem::path& path, const std::string& text) {
      qgan::io::atomic_file file(path);
      file.write(std::as_bytes(std::span<const char>(text.data(), text.size())));
      file.commit();
    };
    write_text(out_dir / "results.md", table.str());
    write_text(out_dir / "results.json", summary.dump(1) + "\n");

    // The comparison image: a labelled row of the same 16 latent vectors per configuration.
    std::vector<const outcome*> shown{&fp32};
    for (const outcome& o : outcomes) {
      if (o.possible) shown.push_back(&o);
    }
    constexpr int label_width = 300;
    constexpr int cell = 34;
    dcgan::gray_image comparison(label_width + static_cast<int>(strip_images) * cell + 2,
                                 static_cast<int>(shown.size()) * cell + 2, 0);
    for (std::size_t r = 0; r < shown.size(); ++r) {
      const outcome& o = *shown[r];
      const int top = static_cast<int>(r) * cell + 2;
      const std::string label = o.config.method == "fp32" ? "fp32"
                                : display_name(o.config.method) + " " + std::to_string(o.config.bits) + "b " +
                                      (o.config.per_channel ? "per-ch" : "per-tensor");
      dcgan::draw_text(comparison, 4, top + 9, label, 2);
      dcgan::tensor4 strip(static_cast<Eigen::Index>(strip_images), 1, 32, 32);
      std::copy(o.first_images.begin(), o.first_images.begin() + strip.size(), strip.data());
      dcgan::paste(comparison, dcgan::image_grid(strip, static_cast<int>(strip_images)), label_width, top - 2);
    }
    dcgan::write_png(out_dir / "comparison.png", comparison);

    std::cout << table.str();
    std::cout << "\nwrote " << (out_dir / "results.md").string() << ", results.json, comparison.png and "
              << shown.size() << " grids in " << out_dir.string() << " ("
              << fixed(std::chrono::duration<double>(clock::now() - start).count(), 0) << " s)\n";
    return 0;
  } catch (const qgan_cli::usage_error& e) {
    std::cerr << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "dcgan_demo: error: " << e.what() << "\n";
    return 1;
  }
}
