// Checks the oneDNN baseline (onednn_generator) against qgan's fp32 DCGAN generator on the
// shipped weights, then times it on one thread. BatchNorm is folded into the
// deconvolutions first; int8 activation scales are calibrated on 256 latents the check
// does not use (layer 0: max|z| / 127; later layers: the 99.99th percentile of the input,
// zeros included, / 255, and for comparison the maximum / 255).
//
// Usage: OMP_WAIT_POLICY=passive check_onednn_generator [generator.safetensors]
// Exits 1 when fp32 differs from the reference by more than 1e-3 anywhere, or int8 by
// more than 0.1 on average.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include <dnnl.hpp>

#include "dcgan/latent.hpp"
#include "dcgan/model.hpp"
#include "dcgan/weights.hpp"
#include "onednn_generator.hpp"
#include "qgan/nn/activations.hpp"
#include "qgan/nn/batch_norm.hpp"
#include "qgan/nn/conv_transpose2d.hpp"

namespace {

using qgan::nn::tensor1;
using qgan::nn::tensor4;
using qgan_bench::deconv_spec;
using qgan_bench::onednn_generator;
using qgan_bench::onednn_int8_scales;
using qgan_bench::onednn_precision;

constexpr std::size_t calibration_count = 256;
constexpr std::size_t check_batch = 64;
constexpr std::uint64_t calibration_seed = 1;
constexpr std::uint64_t check_seed = 2;
constexpr double activation_percentile = 0.9999;
constexpr int timed_runs = 200;
constexpr int warmup_runs = 20;
constexpr double f32_limit = 1e-3;       ///< max |difference|
constexpr double int8_mean_limit = 0.1;  ///< mean |difference|

qgan::nn::batch_norm2d_params batch_norm(const dcgan::weight_set& w, const std::string& name, std::int64_t channels) {
  const qgan::shape_t shape{channels};
  const auto read = [&](const char* field) { return qgan::nn::tensor_from(w.at(name + field, shape).values); };
  return {read(".running_mean"), read(".running_var"), read(".weight"), read(".bias"), 1e-5f};
}

// The DCGAN generator of examples/dcgan (deconv1: stride 1, pad 0; deconv2-4: stride 2,
// pad 1; BatchNorm and ReLU after the first three, tanh after the last), BatchNorm folded.
std::vector<deconv_spec> folded_generator(const dcgan::weight_set& w) {
  std::vector<deconv_spec> layers;
  for (int index = 1; index <= 4; ++index) {
    const std::string name = "deconv" + std::to_string(index);
    const dcgan::float_tensor* weight = w.find(name + ".weight");
    if (weight == nullptr || weight->shape.size() != 4) {
      qgan::detail::throw_error(w.source(), ": no 4-D tensor '", name, ".weight'");
    }
    const std::int64_t out = weight->shape[1];
    const dcgan::float_tensor* file_bias = w.find(name + ".bias");
    tensor4 folded_weight = qgan::nn::tensor_from<4>(weight->values, weight->shape, name + ".weight");
    tensor1 folded_bias(out);
    folded_bias.setZero();
    if (file_bias != nullptr) folded_bias = qgan::nn::tensor_from(w.at(name + ".bias", {out}).values);
    if (index < 4) {
      const auto bn = batch_norm(w, "bn" + std::to_string(index), out);
      const qgan::nn::folded_conv folded = qgan::nn::fold_batch_norm_conv_transpose2d(folded_weight, folded_bias, bn);
      folded_weight = folded.weight;
      folded_bias = folded.bias;
    }
    deconv_spec spec;
    spec.in_channels = static_cast<int>(weight->shape[0]);
    spec.out_channels = static_cast<int>(out);
    spec.kernel = static_cast<int>(weight->shape[2]);
    spec.stride = index == 1 ? 1 : 2;
    spec.pad = index == 1 ? 0 : 1;
    spec.weight.assign(folded_weight.data(), folded_weight.data() + folded_weight.size());
    spec.bias.assign(folded_bias.data(), folded_bias.data() + folded_bias.size());
    spec.relu = index < 4;
    layers.push_back(std::move(spec));
  }
  return layers;
}

tensor4 latents(std::size_t batch, std::int64_t nz, std::uint64_t seed) {
  const std::vector<float> values = dcgan::normal_latents(batch * static_cast<std::size_t>(nz), seed);
  tensor4 z(static_cast<Eigen::Index>(batch), nz, 1, 1);
  std::copy(values.begin(), values.end(), z.data());
  return z;
}

// The folded layers in fp32 with qgan's reference conv_transpose2d; inputs[i] receives the
// input of layer i.
tensor4 folded_forward(const std::vector<deconv_spec>& layers, const tensor4& z, std::vector<tensor4>& inputs) {
  tensor4 x = z;
  inputs.clear();
  for (const deconv_spec& s : layers) {
    inputs.push_back(x);
    tensor4 weight(s.in_channels, s.out_channels, s.kernel, s.kernel);
    std::copy(s.weight.begin(), s.weight.end(), weight.data());
    tensor1 bias(s.out_channels);
    std::copy(s.bias.begin(), s.bias.end(), bias.data());
    const qgan::nn::conv_transpose2d_options options{.stride_h = s.stride, .stride_w = s.stride, .pad_h = s.pad,
                                                     .pad_w = s.pad};
    x = qgan::nn::conv_transpose2d(x, weight, bias, options);
    x = s.relu ? qgan::nn::relu(std::move(x)) : qgan::nn::tanh(std::move(x));
  }
  return x;
}

float max_abs(const tensor4& t) {
  float m = 0.0f;
  for (Eigen::Index i = 0; i < t.size(); ++i) m = std::max(m, std::fabs(t.data()[i]));
  return m;
}

float percentile(const tensor4& t, double p) {
  std::vector<float> values(t.data(), t.data() + t.size());
  const auto k = static_cast<std::size_t>(p * static_cast<double>(values.size() - 1));
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(k), values.end());
  return values[k];
}

struct difference {
  double max_abs = 0.0;
  double mean_abs = 0.0;
  double p999_abs = 0.0;  ///< 99.9th percentile: how far the worst pixels but a handful are off
};

difference compare(const std::vector<float>& got, const tensor4& want) {
  difference d;
  std::vector<double> errors(got.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    errors[i] = std::fabs(static_cast<double>(got[i]) - static_cast<double>(want.data()[i]));
    d.max_abs = std::max(d.max_abs, errors[i]);
    d.mean_abs += errors[i];
  }
  d.mean_abs /= static_cast<double>(got.size());
  const auto k = static_cast<std::size_t>(0.999 * static_cast<double>(errors.size() - 1));
  std::nth_element(errors.begin(), errors.begin() + static_cast<std::ptrdiff_t>(k), errors.end());
  d.p999_abs = errors[k];
  return d;
}

template <class Function>
double median_seconds(Function&& function) {
  for (int i = 0; i < warmup_runs; ++i) function();
  std::vector<double> times(static_cast<std::size_t>(timed_runs));
  for (double& t : times) {
    const auto start = std::chrono::steady_clock::now();
    function();
    t = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  std::nth_element(times.begin(), times.begin() + timed_runs / 2, times.end());
  return times[static_cast<std::size_t>(timed_runs / 2)];
}

const char* isa_name(dnnl::cpu_isa isa) {
  switch (isa) {
    case dnnl::cpu_isa::sse41: return "sse41";
    case dnnl::cpu_isa::avx: return "avx";
    case dnnl::cpu_isa::avx2: return "avx2";
    case dnnl::cpu_isa::avx2_vnni: return "avx2_vnni";
    case dnnl::cpu_isa::avx512_core: return "avx512_core";
    case dnnl::cpu_isa::avx512_core_vnni: return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core_bf16: return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_amx: return "avx512_core_amx";
    default: return "other";
  }
}

const char* precision_name(onednn_precision p) { return p == onednn_precision::f32 ? "f32" : "int8"; }

void time_generator(const std::vector<deconv_spec>& layers, onednn_precision precision,
                    const onednn_int8_scales& scales, std::int64_t nz) {
  for (const std::size_t batch : {std::size_t{1}, check_batch}) {
    onednn_generator g(layers, static_cast<int>(batch), 1, 1, precision, scales, 1);
    const tensor4 z = latents(batch, nz, check_seed);
    std::vector<float> images(batch * g.output_size_per_image());
    const double whole = median_seconds([&] { g.run(z.data(), images.data()); });
    std::printf("  %-4s batch %2zu: %9.1f us per image (%9.1f us per run)", precision_name(precision), batch,
                whole * 1e6 / static_cast<double>(batch), whole * 1e6);
    std::printf("; layers");
    for (std::size_t i = 0; i < g.layer_count(); ++i) {
      std::printf(" %.1f", median_seconds([&] { g.run_layer(i); }) * 1e6 / static_cast<double>(batch));
    }
    std::printf(" us per image\n");
  }
}

int run(int argc, char** argv) {
  const std::string path = argc > 1 ? argv[1] : std::string(QGAN_DCGAN_WEIGHTS_DIR) + "/generator.safetensors";
  const dcgan::weight_set weights = dcgan::load_weights(path);
  const dcgan::generator reference(weights);
  const std::int64_t nz = reference.nz();
  const std::vector<deconv_spec> layers = folded_generator(weights);

  const dnnl::version_t* v = dnnl::version();
  std::printf("oneDNN %d.%d.%d (%s), effective ISA %s; weights %s\n", v->major, v->minor, v->patch, v->hash,
              isa_name(dnnl::get_effective_cpu_isa()), path.c_str());

  // Calibration on latents the check does not use.
  std::vector<tensor4> inputs;
  folded_forward(layers, latents(calibration_count, nz, calibration_seed), inputs);
  onednn_int8_scales percentile_scales, max_scales;
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const float top = max_abs(inputs[i]);
    const float scale = i == 0 ? top / 127.0f : percentile(inputs[i], activation_percentile) / 255.0f;
    percentile_scales.input_scale.push_back(scale);
    max_scales.input_scale.push_back(i == 0 ? top / 127.0f : top / 255.0f);
    std::printf("layer %zu input: max %.4f, p99.99 %.4f -> scale %.6f (max: %.6f)\n", i, static_cast<double>(top),
                static_cast<double>(percentile(inputs[i], activation_percentile)),
                static_cast<double>(scale), static_cast<double>(max_scales.input_scale.back()));
  }

  const tensor4 z = latents(check_batch, nz, check_seed);
  const tensor4 want = reference(z);
  {
    std::vector<tensor4> unused;
    const tensor4 folded = folded_forward(layers, z, unused);
    const difference d = compare(std::vector<float>(folded.data(), folded.data() + folded.size()), want);
    std::printf("folded fp32 reference vs dcgan::generator: max |diff| %.3g\n", d.max_abs);
  }

  bool ok = true;
  const auto check = [&](const char* label, onednn_precision precision, const onednn_int8_scales& scales) {
    onednn_generator g(layers, static_cast<int>(check_batch), 1, 1, precision, scales, 1);
    std::vector<float> images(check_batch * g.output_size_per_image());
    g.run(z.data(), images.data());
    const difference d = compare(images, want);
    std::printf("%-20s vs dcgan::generator, batch %zu: |diff| max %.3g, p99.9 %.3g, mean %.3g; weights %zu bytes;"
                " %zu reorders between layers\n",
                label, check_batch, d.max_abs, d.p999_abs, d.mean_abs, g.weight_bytes(), g.inter_layer_reorders());
    for (std::size_t i = 0; i < g.layer_count(); ++i) std::printf("    layer %zu: %s\n", i, g.implementation(i).c_str());
    return d;
  };
  if (check("onednn f32", onednn_precision::f32, {}).max_abs > f32_limit) {
    std::printf("FAIL: fp32 max |diff| above %g\n", f32_limit);
    ok = false;
  }
  if (check("onednn int8 (p99.99)", onednn_precision::int8, percentile_scales).mean_abs > int8_mean_limit) {
    std::printf("FAIL: int8 mean |diff| above %g\n", int8_mean_limit);
    ok = false;
  }
  check("onednn int8 (max)", onednn_precision::int8, max_scales);

  std::printf("median of %d runs, 1 thread (OMP_WAIT_POLICY should be passive):\n", timed_runs);
  time_generator(layers, onednn_precision::f32, {}, nz);
  time_generator(layers, onednn_precision::int8, percentile_scales, nz);
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "check_onednn_generator: %s\n", e.what());
    return 2;
  }
}
