// Data-free recalibration (qgan/calib/): the phase decomposition against the layers
// themselves, BatchNorm statistics against a hand computation, bias correction, and the
// GPTQ sweep's guarantees, on tiny networks written to safetensors and quantized by the
// library.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "qgan/calib/recalibrate.hpp"
#include "qgan/io/qgan_writer.hpp"
#include "qgan/model/quantize_file.hpp"
#include "test_files.hpp"

namespace {

using qgan::calib::activation_kind;
using qgan::calib::layer_kind;
using qgan::calib::layer_step;
using qgan::nn::tensor4;

std::vector<float> random_values(std::size_t count, std::mt19937& rng, float scale = 1.0f) {
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> v(count);
  for (float& x : v) x = normal(rng);
  return v;
}

tensor4 random_tensor(Eigen::Index n, Eigen::Index c, Eigen::Index h, Eigen::Index w, std::mt19937& rng) {
  tensor4 t(n, c, h, w);
  const std::vector<float> v = random_values(static_cast<std::size_t>(t.size()), rng);
  std::copy(v.begin(), v.end(), t.data());
  return t;
}

// A small generator: z (3, 3, 3) -> up1 ConvTranspose2d(3 -> 5, k3, s2, p1, op1) -> bn1
// -> ReLU -> conv2 Conv2d(5 -> 4, k3, s1, p1, bias) -> (tanh or nothing).
struct tiny_generator {
  qgan::test::temp_dir dir{"qgan_calib_"};
  std::filesystem::path path = dir.path / "tiny.safetensors";
  qgan::calib::sequential_network network;

  explicit tiny_generator(std::uint32_t seed, activation_kind last = activation_kind::none) {
    std::mt19937 rng(seed);
    const std::vector<float> up1 = random_values(3 * 5 * 9, rng, 0.5f);
    const std::vector<float> conv2 = random_values(4 * 5 * 9, rng, 0.3f);
    const std::vector<float> conv2_bias = random_values(4, rng, 0.1f);
    const std::vector<float> mean = random_values(5, rng, 0.2f);
    std::vector<float> var = random_values(5, rng, 0.5f);
    for (float& v : var) v = 0.5f + v * v;
    const std::vector<float> gamma = {1.0f, 0.8f, -0.6f, 1.2f, 0.9f};
    const std::vector<float> beta = random_values(5, rng, 0.1f);
    const std::vector<qgan::io::safetensors_tensor> tensors = {
        qgan::io::make_f32_tensor("up1.weight", {3, 5, 3, 3}, up1),
        qgan::io::make_f32_tensor("bn1.running_mean", {5}, mean),
        qgan::io::make_f32_tensor("bn1.running_var", {5}, var),
        qgan::io::make_f32_tensor("bn1.weight", {5}, gamma),
        qgan::io::make_f32_tensor("bn1.bias", {5}, beta),
        qgan::io::make_f32_tensor("conv2.weight", {4, 5, 3, 3}, conv2),
        qgan::io::make_f32_tensor("conv2.bias", {4}, conv2_bias),
    };
    qgan::io::write_safetensors(path, tensors);
    network.input = {3, 3, 3};
    layer_step up;
    up.name = "up1";
    up.kind = layer_kind::conv_transpose2d;
    up.stride = 2;
    up.pad = 1;
    up.output_pad = 1;
    up.batch_norm = "bn1";
    up.activation = activation_kind::relu;
    layer_step conv;
    conv.name = "conv2";
    conv.kind = layer_kind::conv2d;
    conv.pad = 1;
    conv.activation = last;
    network.layers = {up, conv};
  }

  qgan::io::qgan_model quantize(const std::string& method, int bits) const {
    const qgan::io::safetensors_file file = qgan::io::safetensors_file::open(path);
    qgan::model::quantize_rules rules;
    rules.method = method;
    rules.bits = bits;
    rules.per_channel = true;
    rules.axes = {{"up1.weight", 1}, {"conv2.weight", 0}};
    return qgan::model::quantize_model(file, rules, "tiny.safetensors");
  }
};

// The network's output for z, from the model's tensors (or the fp32 file's), through the
// library's fp32 layers.
tensor4 forward(const qgan::calib::sequential_network& network, const tensor4& z,
                const std::function<std::vector<float>(const std::string&)>& read,
                const std::function<bool(const std::string&)>& has) {
  namespace d = qgan::calib::detail;
  tensor4 x = z;
  for (const layer_step& step : network.layers) {
    const std::vector<float> w = read(step.weight_name());
    const tensor4 weight = step.kind == layer_kind::conv2d ? qgan::nn::tensor_from<4>(w, {4, 5, 3, 3}, "w")
                                                                  : qgan::nn::tensor_from<4>(w, {3, 5, 3, 3}, "w");
    std::optional<qgan::nn::tensor1> bias;
    if (has(step.bias_name())) bias = qgan::nn::tensor_from(read(step.bias_name()));
    tensor4 y = d::run_layer(step, x, weight, bias);
    if (!step.batch_norm.empty()) y = qgan::nn::batch_norm2d(y, d::batch_norm_from(step, read));
    x = d::activate(step, std::move(y));
  }
  return x;
}

tensor4 forward_model(const qgan::calib::sequential_network& network, const tensor4& z, const qgan::io::qgan_model& model) {
  return forward(
      network, z,
      [&](const std::string& name) {
        const qgan::io::qgan_entry& e = model.at(name);
        if (const auto* p = std::get_if<qgan::packed_tensor>(&e.tensor)) return qgan::dequantize(*p, name);
        return model.floats(name).values;
      },
      [&](const std::string& name) { return model.find(name) != nullptr; });
}

tensor4 forward_file(const qgan::calib::sequential_network& network, const tensor4& z, const qgan::io::safetensors_file& file) {
  return forward(
      network, z, [&](const std::string& name) { return file.read_float(name); },
      [&](const std::string& name) { return file.find(name) != nullptr; });
}

// Per-channel mean of a - b over samples and pixels.
std::vector<double> mean_difference(const tensor4& a, const tensor4& b) {
  const Eigen::Index n = a.dimension(0), c = a.dimension(1), plane = a.dimension(2) * a.dimension(3);
  std::vector<double> out(static_cast<std::size_t>(c), 0.0);
  for (Eigen::Index s = 0; s < n; ++s) {
    for (Eigen::Index ch = 0; ch < c; ++ch) {
      for (Eigen::Index i = 0; i < plane; ++i) {
        const Eigen::Index at = (s * c + ch) * plane + i;
        out[static_cast<std::size_t>(ch)] += double(a.data()[at]) - double(b.data()[at]);
      }
    }
  }
  for (double& v : out) v /= double(n * plane);
  return out;
}

double max_abs(const std::vector<double>& v) {
  double m = 0;
  for (const double x : v) m = std::max(m, std::abs(x));
  return m;
}

}  // namespace

TEST_CASE("phase Hessians give each layer's squared output error exactly", "[calib]") {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 60; ++trial) {
    layer_step step;
    step.kind = trial % 2 == 0 ? layer_kind::conv_transpose2d : layer_kind::conv2d;
    std::uniform_int_distribution<int> pick(0, 1000);
    step.stride = 1 + pick(rng) % 3;
    step.dilation = 1 + pick(rng) % 2;
    const int kernel = 1 + pick(rng) % 4;
    step.pad = pick(rng) % (kernel + 1);
    if (step.kind == layer_kind::conv_transpose2d) {
      step.pad = std::min(step.pad, step.dilation * (kernel - 1));
      step.output_pad = pick(rng) % std::max(step.stride, step.dilation);
    }
    qgan::calib::layer_geometry g;
    g.in_channels = 1 + pick(rng) % 5;
    g.out_channels = 1 + pick(rng) % 4;
    g.in_h = 1 + pick(rng) % 6;
    g.in_w = 1 + pick(rng) % 6;
    g.kernel_h = kernel;
    g.kernel_w = kernel;
    const bool transposed = step.kind == layer_kind::conv_transpose2d;
    g.out_h = transposed ? qgan::nn::conv_transpose2d_output_extent(g.in_h, kernel, step.stride, step.pad, step.output_pad, step.dilation)
                         : qgan::nn::conv2d_output_extent(g.in_h, kernel, step.stride, step.pad, step.dilation);
    g.out_w = transposed ? qgan::nn::conv_transpose2d_output_extent(g.in_w, kernel, step.stride, step.pad, step.output_pad, step.dilation)
                         : qgan::nn::conv2d_output_extent(g.in_w, kernel, step.stride, step.pad, step.dilation);
    const Eigen::Index span = step.dilation * (kernel - 1) + 1;
    if (g.out_h < 1 || g.out_w < 1) continue;
    if (!transposed && (g.in_h + 2 * step.pad < span || g.in_w + 2 * step.pad < span)) continue;
    INFO("trial " << trial << (transposed ? " transposed" : " conv") << " stride " << step.stride << " pad " << step.pad
                  << " dilation " << step.dilation << " kernel " << kernel << " in " << g.in_h << "x" << g.in_w);
    const tensor4 x = random_tensor(3, g.in_channels, g.in_h, g.in_w, rng);
    const tensor4 delta = transposed ? random_tensor(g.in_channels, g.out_channels, kernel, kernel, rng)
                                     : random_tensor(g.out_channels, g.in_channels, kernel, kernel, rng);
    const tensor4 y = qgan::calib::detail::run_layer(step, x, delta, std::nullopt);
    double direct = 0;
    for (Eigen::Index i = 0; i < y.size(); ++i) direct += double(y.data()[i]) * double(y.data()[i]);
    const qgan::calib::layer_hessians hs = qgan::calib::accumulate_hessians(step, g, x, 2);
    double through_phases = 0;
    std::vector<int> weight_uses(static_cast<std::size_t>(delta.size()), 0);
    for (std::size_t p = 0; p < hs.phases.size(); ++p) {
      const auto& phase = hs.phases[p];
      const Eigen::Index taps = static_cast<Eigen::Index>(phase.taps.size());
      Eigen::MatrixXd d(g.out_channels, g.in_channels * taps);
      for (Eigen::Index o = 0; o < g.out_channels; ++o) {
        for (Eigen::Index c = 0; c < g.in_channels; ++c) {
          for (Eigen::Index t = 0; t < taps; ++t) {
            const std::size_t flat = qgan::calib::weight_index(step, g, o, c, phase.taps[static_cast<std::size_t>(t)]);
            d(o, c * taps + t) = delta.data()[flat];
            ++weight_uses[flat];
          }
        }
      }
      if (d.cols() > 0) through_phases += qgan::calib::output_error(d, Eigen::MatrixXd::Zero(d.rows(), d.cols()), hs.hessians[p]);
    }
    CHECK(through_phases == Approx(direct).epsilon(1e-5).margin(1e-9));
    // Every weight sits in exactly one phase.
    for (const int uses : weight_uses) CHECK(uses == 1);
  }
}

TEST_CASE("BatchNorm re-estimation reproduces the statistics computed by hand", "[calib]") {
  const tiny_generator tiny(11);
  const qgan::io::safetensors_file file = qgan::io::safetensors_file::open(tiny.path);
  qgan::io::qgan_model model = tiny.quantize("em", 2);
  const std::vector<float> w = qgan::dequantize(model.packed("up1.weight"));
  qgan::calib::recalibration_options options;
  options.batch_norm = qgan::calib::batch_norm_mode::reestimate;
  options.samples = 37;
  options.seed = 5;
  const qgan::calib::recalibration_report report = qgan::calib::recalibrate(file, model, tiny.network, options);
  REQUIRE(report.layers.size() == 2);
  CHECK(report.layers[0].batch_norm_updated);
  // up1's output by its definition: out[oy] += w[ky] * in[iy] where oy = 2 iy - 1 + ky,
  // output extent (3 - 1) * 2 - 2 + 3 + 1 = 6.
  const tensor4 z = qgan::calib::calibration_latents(tiny.network, 37, 5);
  std::vector<double> sum(5, 0), sum_sq(5, 0);
  std::vector<double> out(6 * 6);
  for (int n = 0; n < 37; ++n) {
    for (int o = 0; o < 5; ++o) {
      std::fill(out.begin(), out.end(), 0.0);
      for (int c = 0; c < 3; ++c) {
        for (int iy = 0; iy < 3; ++iy) {
          for (int ix = 0; ix < 3; ++ix) {
            for (int ky = 0; ky < 3; ++ky) {
              for (int kx = 0; kx < 3; ++kx) {
                const int oy = 2 * iy - 1 + ky, ox = 2 * ix - 1 + kx;
                if (oy < 0 || oy >= 6 || ox < 0 || ox >= 6) continue;
                out[static_cast<std::size_t>(oy * 6 + ox)] +=
                    double(w[static_cast<std::size_t>(((c * 5 + o) * 3 + ky) * 3 + kx)]) * double(z(n, c, iy, ix));
              }
            }
          }
        }
      }
      for (const double v : out) {
        sum[static_cast<std::size_t>(o)] += v;
        sum_sq[static_cast<std::size_t>(o)] += v * v;
      }
    }
  }
  const double count = 37.0 * 36.0;
  const auto& mean = model.floats("bn1.running_mean").values;
  const auto& var = model.floats("bn1.running_var").values;
  for (std::size_t o = 0; o < 5; ++o) {
    const double m = sum[o] / count;
    const double unbiased = (sum_sq[o] - count * m * m) / (count - 1);
    CHECK(mean[o] == Approx(m).epsilon(1e-4).margin(1e-6));
    CHECK(var[o] == Approx(unbiased).epsilon(1e-4));
  }
  CHECK(model.metadata.at("qgan.recalibration") == "bn");
  CHECK(model.metadata.at("qgan.calib_samples") == "37");
  CHECK(model.metadata.at("qgan.calib_seed") == "5");
}

TEST_CASE("matching the fp32 post-BatchNorm moments makes them equal on the calibration set", "[calib]") {
  const tiny_generator tiny(12);
  const qgan::io::safetensors_file file = qgan::io::safetensors_file::open(tiny.path);
  qgan::io::qgan_model model = tiny.quantize("minmax", 2);
  qgan::calib::recalibration_options options;
  options.batch_norm = qgan::calib::batch_norm_mode::match_fp32;
  options.samples = 64;
  (void)qgan::calib::recalibrate(file, model, tiny.network, options);
  // After bn1 (before the ReLU): run only the first layer and its BatchNorm.
  qgan::calib::sequential_network first = tiny.network;
  first.layers.resize(1);
  first.layers[0].activation = activation_kind::none;
  const tensor4 z = qgan::calib::calibration_latents(tiny.network, 64, options.seed);
  const tensor4 a = forward_model(first, z, model);
  const tensor4 b = forward_file(first, z, file);
  CHECK(max_abs(mean_difference(a, b)) < 1e-4);
}

TEST_CASE("bias correction zeroes the mean output error on the calibration set and reduces it on held-out z", "[calib]") {
  const tiny_generator tiny(13);
  const qgan::io::safetensors_file file = qgan::io::safetensors_file::open(tiny.path);
  const qgan::io::qgan_model plain = tiny.quantize("em", 2);
  qgan::io::qgan_model corrected = plain;
  qgan::calib::recalibration_options options;
  options.bias = true;
  options.samples = 256;
  const qgan::calib::recalibration_report report = qgan::calib::recalibrate(file, corrected, tiny.network, options);
  CHECK(report.layers[0].bias_corrected);  // no BatchNorm recalibration: up1 is corrected too
  CHECK(report.layers[1].bias_corrected);
  CHECK(corrected.find("up1.bias") != nullptr);  // created: the layer had none
  const tensor4 z = qgan::calib::calibration_latents(tiny.network, 256, options.seed);
  const tensor4 reference = forward_file(tiny.network, z, file);
  const double before = max_abs(mean_difference(forward_model(tiny.network, z, plain), reference));
  const double after = max_abs(mean_difference(forward_model(tiny.network, z, corrected), reference));
  INFO("calibration set: largest channel mean error " << before << " -> " << after);
  CHECK(before > 1e-3);
  CHECK(after < 1e-5);
  const tensor4 held_out = qgan::calib::calibration_latents(tiny.network, 2048, 99);
  const tensor4 held_reference = forward_file(tiny.network, held_out, file);
  const double held_before = max_abs(mean_difference(forward_model(tiny.network, held_out, plain), held_reference));
  const double held_after = max_abs(mean_difference(forward_model(tiny.network, held_out, corrected), held_reference));
  INFO("held-out z: " << held_before << " -> " << held_after);
  CHECK(held_after < 0.5 * held_before);
}

TEST_CASE("bias correction into a tanh lowers the error after the tanh, where matching means would not", "[calib]") {
  const tiny_generator tiny(14, activation_kind::tanh);
  const qgan::io::safetensors_file file = qgan::io::safetensors_file::open(tiny.path);
  const qgan::io::qgan_model plain = tiny.quantize("em", 1);
  qgan::io::qgan_model corrected = plain;
  qgan::calib::recalibration_options options = qgan::calib::parse_steps("bn,bias");
  options.samples = 200;
  (void)qgan::calib::recalibrate(file, corrected, tiny.network, options);
  const tensor4 z = qgan::calib::calibration_latents(tiny.network, 200, options.seed);
  const tensor4 reference = forward_file(tiny.network, z, file);
  // bn only, for the error before conv2's bias moves.
  qgan::io::qgan_model bn_only = plain;
  qgan::calib::recalibration_options bn = qgan::calib::parse_steps("bn");
  bn.samples = 200;
  (void)qgan::calib::recalibrate(file, bn_only, tiny.network, bn);
  const auto mse = [&](const tensor4& a) { return qgan::calib::detail::mean_squared_difference(a, reference); };
  const double before = mse(forward_model(tiny.network, z, bn_only));
  const double after = mse(forward_model(tiny.network, z, corrected));
  INFO("after tanh: " << before << " -> " << after);
  CHECK(after <= before);
  CHECK(corrected.floats("conv2.bias").values != bn_only.floats("conv2.bias").values);
}

TEST_CASE("GPTQ rounding never leaves a layer's calibration error above the incoming codes'", "[calib]") {
  for (const char* method : {"em", "minmax", "lloyd", "log"}) {
    for (int bits = 1; bits <= 4; ++bits) {
      if (std::string(method) == "log" && bits < 2) continue;
      const tiny_generator tiny(20 + static_cast<std::uint32_t>(bits));
      const qgan::io::safetensors_file file = qgan::io::safetensors_file::open(tiny.path);
      qgan::io::qgan_model model = tiny.quantize(method, bits);
      qgan::calib::recalibration_options options;
      options.rounding = true;
      options.samples = 48;
      const qgan::calib::recalibration_report report = qgan::calib::recalibrate(file, model, tiny.network, options);
      for (const auto& layer : report.layers) {
        INFO(method << " " << bits << " bits, " << layer.name);
        CHECK(layer.phases > 0);
        CHECK(layer.error_after <= layer.error_before);
      }
      for (const char* name : {"up1.weight", "conv2.weight"}) model.packed(name).validate(name);
    }
  }
}

TEST_CASE("GPTQ keeps weights that already lie on the grid, and gains on correlated inputs", "[calib]") {
  std::mt19937 rng(3);
  const Eigen::Index rows = 16, cols = 64, samples = 4096;
  // Inputs with strong neighbour correlation (AR(1), rho 0.9), as a convolution's taps have.
  Eigen::MatrixXd x(cols, samples);
  std::normal_distribution<double> normal;
  for (Eigen::Index s = 0; s < samples; ++s) {
    x(0, s) = normal(rng);
    for (Eigen::Index c = 1; c < cols; ++c) x(c, s) = 0.9 * x(c - 1, s) + std::sqrt(1 - 0.81) * normal(rng);
  }
  const Eigen::MatrixXd h = x * x.transpose();
  // A 2-bit grid per row: levels -1.5a, -0.5a, 0.5a, 1.5a.
  std::vector<qgan::calib::level_table> tables;
  for (Eigen::Index r = 0; r < rows; ++r) {
    const float a = 0.3f + 0.05f * static_cast<float>(r);
    tables.push_back(qgan::calib::make_level_table({-1.5f * a, -0.5f * a, 0.5f * a, 1.5f * a}));
  }
  const auto table_of = [&](Eigen::Index r, Eigen::Index) -> const qgan::calib::level_table& {
    return tables[static_cast<std::size_t>(r)];
  };
  Eigen::MatrixXd on_grid(rows, cols), w(rows, cols), nearest(rows, cols);
  std::uniform_int_distribution<std::size_t> level(0, 3);
  for (Eigen::Index r = 0; r < rows; ++r) {
    for (Eigen::Index c = 0; c < cols; ++c) {
      const auto& t = tables[static_cast<std::size_t>(r)];
      on_grid(r, c) = t.values[level(rng)];
      w(r, c) = 0.45 * normal(rng) * (0.3 + 0.05 * double(r));
      nearest(r, c) = t.values[qgan::calib::nearest_level(t, w(r, c))];
    }
  }
  Eigen::MatrixXd q;
  std::vector<std::size_t> chosen;
  REQUIRE(qgan::calib::gptq_sweep(on_grid, h, table_of, {}, q, chosen));
  CHECK(q == on_grid);

  REQUIRE(qgan::calib::gptq_sweep(w, h, table_of, {}, q, chosen));
  const double rtn = qgan::calib::output_error(w, nearest, h);
  const double swept = qgan::calib::output_error(w, q, h);
  INFO("output error: round-to-nearest " << rtn << ", GPTQ " << swept << " (" << swept / rtn << "x)");
  CHECK(swept < 0.6 * rtn);
  for (Eigen::Index r = 0; r < rows; ++r) {
    for (Eigen::Index c = 0; c < cols; ++c) {
      const auto& values = tables[static_cast<std::size_t>(r)].values;
      CHECK(std::find(values.begin(), values.end(), static_cast<float>(q(r, c))) != values.end());
    }
  }
  // A column whose inputs are always 0 gets each element's nearest level.
  Eigen::MatrixXd dead = h;
  dead.row(5).setZero();
  dead.col(5).setZero();
  REQUIRE(qgan::calib::gptq_sweep(w, dead, table_of, {}, q, chosen));
  for (Eigen::Index r = 0; r < rows; ++r) CHECK(q(r, 5) == nearest(r, 5));
}

TEST_CASE("recalibration gives the same bytes for any thread count", "[calib]") {
  const tiny_generator tiny(31, activation_kind::tanh);
  const qgan::io::safetensors_file file = qgan::io::safetensors_file::open(tiny.path);
  std::vector<std::vector<std::byte>> images;
  for (const int threads : {1, 2, 3}) {
    qgan::io::qgan_model model = tiny.quantize("em", 3);
    qgan::calib::recalibration_options options = qgan::calib::parse_steps("bn,bias,rounding");
    options.samples = 40;
    options.threads = threads;
    (void)qgan::calib::recalibrate(file, model, tiny.network, options);
    images.push_back(qgan::io::serialize_qgan(model));
  }
  CHECK(images[0] == images[1]);
  CHECK(images[0] == images[2]);
}

TEST_CASE("recalibration steps parse, and refuse what they cannot do", "[calib]") {
  using qgan::calib::parse_steps;
  const auto all = parse_steps("rounding,bias,bn");
  CHECK(all.rounding);
  CHECK(all.bias);
  CHECK(all.batch_norm == qgan::calib::batch_norm_mode::reestimate);
  CHECK(qgan::calib::steps_text(all) == "bn,bias,rounding");
  CHECK(parse_steps("bn-match").batch_norm == qgan::calib::batch_norm_mode::match_fp32);
  CHECK_THROWS_WITH(parse_steps("bn,bn-match"), Catch::Contains("exclude each other"));
  CHECK_THROWS_WITH(parse_steps("bias,bias"), Catch::Contains("'bias' is given twice"));
  CHECK_THROWS_WITH(parse_steps("bnn"), Catch::Contains("unknown recalibration step 'bnn'"));
  CHECK_THROWS_WITH(parse_steps(""), Catch::Contains("unknown recalibration step ''"));

  const tiny_generator tiny(41);
  const qgan::io::safetensors_file file = qgan::io::safetensors_file::open(tiny.path);
  qgan::io::qgan_model model = tiny.quantize("em", 2);
  qgan::calib::sequential_network wrong = tiny.network;
  wrong.layers[1].name = "conv9";
  CHECK_THROWS_WITH(qgan::calib::recalibrate(file, model, wrong, all), Catch::Contains("conv9.weight"));
  qgan::calib::recalibration_options one;
  one.samples = 1;
  CHECK_THROWS_WITH(qgan::calib::recalibrate(file, model, tiny.network, one), Catch::Contains("at least 2"));
  // A BatchNorm statistic the model holds as raw bytes cannot be rewritten as float32.
  qgan::io::qgan_model raw_stats = tiny.quantize("em", 2);
  for (auto& entry : raw_stats.tensors) {
    if (entry.name == "bn1.running_var") entry.tensor = qgan::io::raw_tensor{qgan::io::dtype::i32, {5}, std::vector<std::byte>(20)};
  }
  CHECK_THROWS_WITH(qgan::calib::recalibrate(file, raw_stats, tiny.network, parse_steps("bn")),
                    Catch::Contains("bn1.running_var"));
}

TEST_CASE("calibration latents are far from the evaluation streams", "[calib]") {
  const std::uint64_t calibration = qgan::calib::recalibration_options{}.seed;
  for (const std::uint64_t evaluation : {0ull, 1ull}) {
    const std::uint64_t ahead = qgan::splitmix64::stream_offset(evaluation, calibration);
    const std::uint64_t behind = qgan::splitmix64::stream_offset(calibration, evaluation);
    CHECK(std::min(ahead, behind) > (std::uint64_t{1} << 40));
  }
  // The offset is what it claims: seed b's first draw is seed a's draw number `offset`.
  qgan::splitmix64 a(17);
  const std::uint64_t offset = qgan::splitmix64::stream_offset(17, 17 + 5 * qgan::splitmix64::gamma);
  CHECK(offset == 5);
  for (int i = 0; i < 5; ++i) (void)a.next();
  qgan::splitmix64 b(17 + 5 * qgan::splitmix64::gamma);
  CHECK(a.next() == b.next());
}
