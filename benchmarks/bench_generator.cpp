// The DCGAN generator, every engine in one process: qgan's packed layers at W1/W2/W4/W8 x
// A32/A8 (EM 2-bit per channel and so on, quantized here from the shipped weights), qgan's
// fp32 weights through the same kernels, qgan's fp32 reference layers (Eigen), and
// oneDNN 2.6 int8 and fp32 (when built with libdnnl-dev). For each batch size and thread
// count, rounds run every engine once in turn (interleaved, so drifting clocks hit all
// alike) and the table shows medians and the speed ratio against oneDNN int8. Quality
// (FID-FMNIST, PSNR against the fp32 generator on the same z) is measured on the same
// evaluation latents for every engine. Run with OMP_WAIT_POLICY=passive (oneDNN's OpenMP
// threads otherwise spin on the cores qgan's threads need).
//
//   bench_generator [--rounds R] [--threads 1,2] [--batches 1,64] [--quality N] [--layers] [--only NAME]
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dcgan/evaluation.hpp"
#include "dcgan/images.hpp"
#include "dcgan/latent.hpp"
#include "dcgan/model.hpp"
#include "dcgan/packed_generator.hpp"
#include "bench_common.hpp"
#include "qgan/nn/batch_norm.hpp"
#include "qgan/nn/packed/forward.hpp"
#include "qgan/pack/quantize.hpp"
#include "qgan/quant/em.hpp"
#include "qgan/simd/dispatch.hpp"
#ifdef QGAN_HAVE_ONEDNN
#include "onednn_generator.hpp"
#endif

namespace {

namespace packed = qgan::nn::packed;
using clock_type = std::chrono::steady_clock;

using qgan_bench::median;
using qgan_bench::option_value;
using qgan_bench::parse_list;

// A model of the shipped generator with every transposed convolution quantized (EM per
// output channel) at `bits`, BatchNorm and the rest as they are.
dcgan::packed_weight_set quantized(const dcgan::packed_weight_set& fp32, int bits) {
  dcgan::packed_weight_set out;
  out.floats = dcgan::weight_set(fp32.floats.source() + " (W" + std::to_string(bits) + ")");
  for (const auto& [name, tensor] : fp32.floats.tensors()) {
    if (name.starts_with("deconv") && name.ends_with(".weight")) {
      out.packed.emplace(name, qgan::quantize(qgan::em_quantizer{}, tensor.values, tensor.shape, {bits, qgan::per_channel{1}}));
    } else {
      out.floats.add(name, tensor);
    }
  }
  for (const auto& [name, type] : fp32.floats.others()) out.floats.add_other(name, type);
  return out;
}

struct engine {
  std::string name;
  std::function<qgan::nn::tensor4(const qgan::nn::tensor4&)> run;
  std::size_t weight_bytes = 0;
  std::vector<double> seconds;  // per image
  std::string quality;
};

#ifdef QGAN_HAVE_ONEDNN
std::vector<qgan_bench::deconv_spec> onednn_specs(const dcgan::weight_set& w) {
  std::vector<qgan_bench::deconv_spec> specs;
  for (int i = 1; i <= 4; ++i) {
    const auto& weight = w.find("deconv" + std::to_string(i) + ".weight");
    const auto extent = [&](std::size_t axis) { return static_cast<int>(weight->shape[axis]); };
    qgan::nn::tensor4 t(weight->shape[0], weight->shape[1], 4, 4);
    std::copy(weight->values.begin(), weight->values.end(), t.data());
    qgan_bench::deconv_spec spec{extent(0), extent(1), 4, i == 1 ? 1 : 2, i == 1 ? 0 : 1, {}, {}, i < 4};
    if (i < 4) {
      const std::string bn = "bn" + std::to_string(i);
      const auto read = [&](const char* field) {
        const auto* f = w.find(bn + "." + field);
        qgan::nn::tensor1 out(static_cast<Eigen::Index>(f->values.size()));
        std::copy(f->values.begin(), f->values.end(), out.data());
        return out;
      };
      const qgan::nn::folded_conv folded = qgan::nn::fold_batch_norm_conv_transpose2d(
          t, {read("running_mean"), read("running_var"), read("weight"), read("bias"), 1e-5f});
      spec.weight.assign(folded.weight.data(), folded.weight.data() + folded.weight.size());
      spec.bias.assign(folded.bias.data(), folded.bias.data() + folded.bias.size());
    } else {
      spec.weight = weight->values;
      spec.bias.assign(1, 0.0f);
    }
    specs.push_back(std::move(spec));
  }
  return specs;
}
#endif

}  // namespace

int main(int argc, char** argv) {
  int rounds = 30;
  std::vector<int> thread_counts{1, 2}, batches{1, 64};
  std::size_t quality_samples = 2000;
  bool per_layer = false;
  std::string only;  // run only engines whose name contains this (and oneDNN int8, the bar)
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto next = [&] { return option_value(argc, argv, i); };
    if (arg == "--rounds") rounds = std::stoi(next());
    else if (arg == "--threads") thread_counts = parse_list(next());
    else if (arg == "--batches") batches = parse_list(next());
    else if (arg == "--quality") quality_samples = static_cast<std::size_t>(std::stoul(next()));
    else if (arg == "--layers") per_layer = true;
    else if (arg == "--only") only = next();
    else {
      std::fprintf(stderr, "usage: bench_generator [--rounds R] [--threads 1,2] [--batches 1,64] [--quality N] [--layers]\n");
      return 2;
    }
  }
  const std::filesystem::path weights_dir = QGAN_DCGAN_WEIGHTS_DIR;
  const dcgan::packed_weight_set fp32 = dcgan::load_packed_weights(weights_dir / "generator.safetensors");
  const std::vector<int> widths{1, 2, 4, 8};
  std::vector<dcgan::packed_weight_set> models;
  for (const int bits : widths) models.push_back(quantized(fp32, bits));
  // Calibration latents: a seed the evaluation never uses.
  constexpr std::uint64_t calibration_seed = 0xCA11B4A7Eull;
  std::vector<dcgan::activation_ranges> ranges;
  for (const auto& m : models) {
    const dcgan::packed_generator g(m, packed::activation_path::fp32, 1);
    ranges.push_back(dcgan::calibrate_ranges(g, 1024, calibration_seed));
  }
  std::printf("kernels: %s\n", qgan::simd::dispatched_kernel_set().name);
#ifndef QGAN_HAVE_ONEDNN
  // Without it the tables lose their bar without a word: say so where a reader looks first.
  std::printf("oneDNN: not built (libdnnl-dev was not found when this build was configured); "
              "no oneDNN rows, no ratios\n");
#endif

  // Quality of every engine on the evaluation latents (seed 0, as qgan eval).
  std::optional<dcgan::reference_assets> assets;
  std::vector<float> eval_z;
  std::vector<std::uint8_t> reference_pixels;
  const dcgan::generator reference_G(fp32.floats);
  if (quality_samples > 0) {
    assets = dcgan::reference_assets::load(weights_dir);
    eval_z = dcgan::normal_latents(quality_samples * 100, 0);
    reference_pixels = dcgan::to_pixels(dcgan::run_generator(reference_G, eval_z, quality_samples));
  }
  const auto measure_quality = [&](engine& e) {
    if (quality_samples == 0) return;
    qgan::nn::tensor4 images(static_cast<Eigen::Index>(quality_samples), 1, 32, 32);
    for (std::size_t first = 0; first < quality_samples; first += 100) {
      const std::size_t count = std::min<std::size_t>(100, quality_samples - first);
      qgan::nn::tensor4 zb(static_cast<Eigen::Index>(count), 100, 1, 1);
      std::copy(eval_z.begin() + static_cast<std::ptrdiff_t>(first * 100),
                eval_z.begin() + static_cast<std::ptrdiff_t>((first + count) * 100), zb.data());
      const qgan::nn::tensor4 out = e.run(zb);
      std::copy(out.data(), out.data() + out.size(), images.data() + static_cast<std::ptrdiff_t>(first) * 1024);
    }
    const dcgan::quality q = dcgan::score(images, reference_pixels, *assets, 10, 1);
    char text[96];
    std::snprintf(text, sizeof text, "%.2f | %.1f", q.fid.value, q.psnr);
    e.quality = text;
  };

  for (const int threads : thread_counts) {
    for (const int batch : batches) {
      std::vector<engine> engines;
      std::vector<std::unique_ptr<dcgan::packed_generator>> keep;
      for (std::size_t m = 0; m < models.size(); ++m) {
        for (const auto path : {packed::activation_path::int8, packed::activation_path::fp32}) {
          keep.push_back(std::make_unique<dcgan::packed_generator>(models[m], path, threads,
                                                                   path == packed::activation_path::int8 ? &ranges[m] : nullptr));
          auto* g = keep.back().get();
          engines.push_back({"qgan W" + std::to_string(widths[m]) + (path == packed::activation_path::int8 ? "A8" : "A32"),
                             [g](const qgan::nn::tensor4& z) { return (*g)(z); }, g->weight_bytes(), {}, {}});
        }
      }
      keep.push_back(std::make_unique<dcgan::packed_generator>(fp32, packed::activation_path::fp32, threads));
      auto* g32 = keep.back().get();
      engines.push_back({"qgan fp32 (packed-layer kernels)", [g32](const qgan::nn::tensor4& z) { return (*g32)(z); },
                         g32->weight_bytes(), {}, {}});
      if (threads == 1) {
        engines.push_back({"qgan fp32 reference layers (Eigen)", [&](const qgan::nn::tensor4& z) { return reference_G(z); },
                           0, {}, {}});
      }
#ifdef QGAN_HAVE_ONEDNN
      std::vector<std::unique_ptr<qgan_bench::onednn_generator>> onednn;
      {
        // oneDNN's int8 ranges: symmetric s8 latent, u8 after ReLU, from the W8 calibration
        // (its weights are its own s8 per channel).
        qgan_bench::onednn_int8_scales scales;
        const dcgan::activation_ranges& r = ranges.back();
        scales.input_scale.push_back(r[0].scale * 255.0f / 2.0f / 127.0f);
        for (std::size_t i = 1; i < 4; ++i) scales.input_scale.push_back(r[i].scale);
        const auto specs = onednn_specs(fp32.floats);
        for (const auto precision : {qgan_bench::onednn_precision::int8, qgan_bench::onednn_precision::f32}) {
          onednn.push_back(std::make_unique<qgan_bench::onednn_generator>(specs, batch, 1, 1, precision, scales, threads));
          auto* o = onednn.back().get();
          engines.push_back({precision == qgan_bench::onednn_precision::int8 ? "oneDNN 2.6 int8 (u8/s8, its JIT)" : "oneDNN 2.6 fp32",
                             [o, batch](const qgan::nn::tensor4& z) {
                               // The object is built for one batch size; quality runs go in
                               // batches of it.
                               const auto n = static_cast<std::size_t>(z.dimension(0));
                               qgan::nn::tensor4 out(z.dimension(0), 1, 32, 32);
                               std::vector<float> zb(static_cast<std::size_t>(batch) * 100, 0.0f), yb(static_cast<std::size_t>(batch) * 1024);
                               for (std::size_t first = 0; first < n; first += static_cast<std::size_t>(batch)) {
                                 const std::size_t count = std::min<std::size_t>(static_cast<std::size_t>(batch), n - first);
                                 std::copy(z.data() + first * 100, z.data() + (first + count) * 100, zb.begin());
                                 o->run(zb.data(), yb.data());
                                 std::copy(yb.begin(), yb.begin() + static_cast<std::ptrdiff_t>(count * 1024), out.data() + first * 1024);
                               }
                               return out;
                             },
                             o->weight_bytes(), {}, {}});
        }
      }
#endif
      if (!only.empty()) {
        std::erase_if(engines, [&](const engine& e) { return e.name.find(only) == std::string::npos && !e.name.starts_with("oneDNN 2.6 int8"); });
      }
      const std::vector<float> zv = dcgan::normal_latents(static_cast<std::size_t>(batch) * 100, 7);
      qgan::nn::tensor4 z(batch, 100, 1, 1);
      std::copy(zv.begin(), zv.end(), z.data());
      // Repetitions per measurement so that one lasts about 2 ms or more.
      const int inner = std::max(1, 20 / batch);
      for (auto& e : engines) (void)e.run(z);  // warm up
      for (int round = 0; round < rounds; ++round) {
        for (auto& e : engines) {
          const auto start = clock_type::now();
          for (int k = 0; k < inner; ++k) (void)e.run(z);
          const std::chrono::duration<double> elapsed = clock_type::now() - start;
          e.seconds.push_back(elapsed.count() / inner / batch);
        }
      }
      if (threads == thread_counts.front() && batch == batches.front()) {
        for (auto& e : engines) measure_quality(e);
      }
      double bar = 0.0;
      for (const auto& e : engines) {
        if (e.name.starts_with("oneDNN 2.6 int8")) bar = median(e.seconds);
      }
      std::printf("\n### batch %d, %d thread%s (median of %d interleaved rounds, %d runs each)\n\n", batch, threads,
                  threads == 1 ? "" : "s", rounds, inner);
      std::printf("| engine | us per image | speed vs oneDNN int8 | weight bytes | FID-FMNIST | PSNR vs fp32 (dB) |\n");
      std::printf("| --- | ---: | ---: | ---: | ---: | ---: |\n");
      for (const auto& e : engines) {
        const double t = median(e.seconds);
        std::printf("| %s | %.1f | %s | %zu | %s |\n", e.name.c_str(), t * 1e6,
                    bar > 0 ? (std::to_string(bar / t).substr(0, 4) + "x").c_str() : "-", e.weight_bytes,
                    e.quality.empty() ? "- | -" : e.quality.c_str());
      }
      if (per_layer) {
        // W2A8 and oneDNN int8, one layer at a time.
        const auto& g = *keep[2];  // W2A8
        qgan::thread_pool pool(threads);
        const dcgan::activation_ranges& r = ranges[1];
        std::vector<packed::u8_activations> inputs(4);
        inputs[0] = packed::quantize_nchw(zv, static_cast<std::size_t>(batch), 100, 1, 1, r[0], false);
        for (std::size_t i = 0; i < 3; ++i) {
          inputs[i + 1].scale = r[i + 1].scale;
          inputs[i + 1].planar = g.layers()[i + 1].weights.row_tiles;
          packed::forward(g.layers()[i], inputs[i], inputs[i + 1], pool);
        }
        std::printf("\nper layer, us per image (median of %d):\n| layer | qgan W2A8 |", rounds);
#ifdef QGAN_HAVE_ONEDNN
        std::printf(" oneDNN int8 |");
#endif
        std::printf("\n");
        for (std::size_t i = 0; i < 4; ++i) {
          std::vector<double> ours, theirs;
          for (int round = 0; round < rounds; ++round) {
            auto start = clock_type::now();
            for (int k = 0; k < inner; ++k) {
              if (i < 3) {
                packed::u8_activations out;
                out.scale = inputs[i + 1].scale;
                out.planar = inputs[i + 1].planar;
                packed::forward(g.layers()[i], inputs[i], out, pool);
              } else {
                packed::f32_activations out;
                packed::forward(g.layers()[i], inputs[i], out, false, pool);
              }
            }
            ours.push_back(std::chrono::duration<double>(clock_type::now() - start).count() / inner / batch);
#ifdef QGAN_HAVE_ONEDNN
            start = clock_type::now();
            for (int k = 0; k < inner; ++k) onednn[0]->run_layer(i);
            theirs.push_back(std::chrono::duration<double>(clock_type::now() - start).count() / inner / batch);
#endif
          }
          std::printf("| deconv%zu | %.1f |", i + 1, median(ours) * 1e6);
#ifdef QGAN_HAVE_ONEDNN
          std::printf(" %.1f |", median(theirs) * 1e6);
#endif
          std::printf("\n");
        }
        // W2A32 and fp32 weights through the same fp32-activation kernels, one layer at a time.
        std::printf("\nper layer, fp32 activations, us per image (median of %d):\n| layer | qgan W2A32 | qgan fp32 (packed-layer kernels) |\n",
                    rounds);
        const std::array<const dcgan::packed_generator*, 2> fp32_paths{keep[3].get(), g32};
        std::array<std::vector<packed::f32_activations>, 2> layer_inputs;
        for (std::size_t e = 0; e < 2; ++e) {
          layer_inputs[e].push_back(packed::from_nchw(zv, static_cast<std::size_t>(batch), 100, 1, 1));
          for (std::size_t i = 0; i < 3; ++i) {
            packed::f32_activations out;
            packed::forward(fp32_paths[e]->layers()[i], layer_inputs[e][i], out, true, pool);
            layer_inputs[e].push_back(std::move(out));
          }
        }
        for (std::size_t i = 0; i < 4; ++i) {
          std::array<std::vector<double>, 2> times;
          for (int round = 0; round < rounds; ++round) {
            for (std::size_t e = 0; e < 2; ++e) {
              const auto start = clock_type::now();
              for (int k = 0; k < inner; ++k) {
                packed::f32_activations out;
                packed::forward(fp32_paths[e]->layers()[i], layer_inputs[e][i], out, i < 3, pool);
              }
              times[e].push_back(std::chrono::duration<double>(clock_type::now() - start).count() / inner / batch);
            }
          }
          std::printf("| deconv%zu | %.1f | %.1f |\n", i + 1, median(times[0]) * 1e6, median(times[1]) * 1e6);
        }
      }
    }
  }
  return 0;
}
