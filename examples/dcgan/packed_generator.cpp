#include "dcgan/packed_generator.hpp"

#include <algorithm>
#include <cmath>
#include <string_view>

#include "dcgan/latent.hpp"
#include "dcgan/model.hpp"
#include "dcgan/tensor_reader.hpp"
#include "qgan/core/error.hpp"
#include "qgan/nn/activations.hpp"
#include "qgan/nn/packed/build.hpp"
#include "qgan/nn/packed/forward.hpp"
#include "qgan/nn/packed/sequence.hpp"
#include "qgan/simd/select.hpp"

namespace dcgan {

namespace packed = qgan::nn::packed;

std::string input_scale_name(std::size_t layer) { return "deconv" + std::to_string(layer + 1) + ".input_scale"; }
std::string input_zero_point_name(std::size_t layer) { return "deconv" + std::to_string(layer + 1) + ".input_zero_point"; }

namespace {

std::vector<std::string> packed_names(const packed_weight_set& w) {
  std::vector<std::string> names;
  for (const auto& entry : w.packed) names.push_back(entry.first);
  return names;
}

std::int64_t extent(const packed_weight_set& w, const std::string& name, std::size_t axis) {
  qgan::shape_t shape;
  if (const auto found = w.packed.find(name); found != w.packed.end()) {
    shape = found->second.shape;
  } else if (const float_tensor* t = w.floats.find(name)) {
    shape = t->shape;
  } else {
    qgan::detail::throw_error(w.floats.source(), ": tensor '", name, "': missing (is this the right model file?)");
  }
  if (shape.size() != 4 || shape[axis] < 1) {
    qgan::detail::throw_error(w.floats.source(), ": tensor '", name, "': shape ", qgan::to_string(shape),
                              " is not a 4-D convolution weight");
  }
  return shape[axis];
}

}  // namespace

packed_generator::packed_generator(const packed_weight_set& w, packed::activation_path path, int threads,
                                   const activation_ranges* ranges)
    : nz_(extent(w, "deconv1.weight", 0)), path_(path), pool_(std::make_unique<qgan::thread_pool>(threads)) {
  const std::int64_t ngf = extent(w, "deconv1.weight", 1) / 4;
  if (ngf < 1 || ngf * 4 != extent(w, "deconv1.weight", 1)) {
    qgan::detail::throw_error(w.floats.source(), ": tensor 'deconv1.weight': ", extent(w, "deconv1.weight", 1),
                              " output channels is not 4 * ngf");
  }
  const std::array<std::int64_t, generator_layers + 1> channels{nz_, 4 * ngf, 2 * ngf, ngf, 1};
  tensor_reader reader(w.floats, packed_names(w));
  for (std::size_t i = 0; i < generator_layers; ++i) {
    const std::string name = "deconv" + std::to_string(i + 1);
    packed::layer_geometry g;
    g.kind = packed::layer_kind::transposed_convolution;
    g.in_channels = static_cast<std::size_t>(channels[i]);
    g.out_channels = static_cast<std::size_t>(channels[i + 1]);
    g.rows = g.cols = i == 0 ? packed::axis_spec{4, 1, 0, 1, 0} : packed::axis_spec{4, 2, 1, 1, 0};
    packed::layer_extras extras;
    const qgan::shape_t weight_shape{channels[i], channels[i + 1], 4, 4};
    if (const float_tensor* bias = reader.optional(name + ".bias", {channels[i + 1]})) extras.bias = bias->values;
    if (i + 1 < generator_layers) extras.batch_norm = read_batch_norm(reader, "bn" + std::to_string(i + 1), channels[i + 1]);
    const std::string label = w.floats.source() + ": " + name;
    if (const auto found = w.packed.find(name + ".weight"); found != w.packed.end()) {
      reader.mark_used(found->first);
      if (found->second.shape != weight_shape) {
        qgan::detail::throw_error(w.floats.source(), ": tensor '", name, ".weight': shape ", qgan::to_string(found->second.shape),
                                  ", expected ", qgan::to_string(weight_shape));
      }
      layers_.push_back(packed::make_layer(label, g, found->second, path, extras));
    } else {
      if (path == packed::activation_path::int8) {
        qgan::detail::throw_error(w.floats.source(), ": tensor '", name,
                                  ".weight' is not quantized; 8-bit activations run from a quantized .qgan model");
      }
      const float_tensor& weight = reader.at(name + ".weight", weight_shape);
      layers_.push_back(packed::make_layer(label, g, std::span<const float>(weight.values), extras));
    }
    // The ranges: given, or stored in the file.
    const float_tensor* scale = reader.optional(input_scale_name(i), {1});
    const float_tensor* zero = reader.optional(input_zero_point_name(i), {1});
    if (path == packed::activation_path::int8) {
      if (ranges != nullptr) {
        ranges_[i] = (*ranges)[i];
      } else if (scale == nullptr || zero == nullptr) {
        qgan::detail::throw_error(w.floats.source(), ": tensor '", scale == nullptr ? input_scale_name(i) : input_zero_point_name(i),
                                  "': missing; 8-bit activations need the input ranges `qgan calibrate` stores");
      } else {
        const float s = scale->values[0], zp = zero->values[0];
        if (!(s > 0.0f) || !std::isfinite(s) || !(zp >= 0.0f && zp <= 255.0f) || zp != std::nearbyint(zp)) {
          qgan::detail::throw_error(w.floats.source(), ": tensors '", input_scale_name(i), "' = ", s, " and '",
                                    input_zero_point_name(i), "' = ", zp,
                                    " are not an 8-bit range (scale > 0, zero point an integer in 0..255)");
        }
        ranges_[i] = {s, static_cast<std::int32_t>(zp)};
      }
      if (i > 0 && ranges_[i].zero_point != 0) {
        qgan::detail::throw_error(w.floats.source(), ": layer ", name, " input follows a ReLU; its zero point must be 0, not ",
                                  ranges_[i].zero_point);
      }
    }
  }
  // Everything the file holds must be used, as the Eigen models require; the stored
  // ranges are read above, so only BatchNorm's step counter is bookkeeping here.
  constexpr std::array<std::string_view, 1> bookkeeping{".num_batches_tracked"};
  reader.require_all_used("DCGAN generator", bookkeeping);
}

packed_generator packed_generator::load(const std::filesystem::path& path, packed::activation_path act, int threads) {
  return packed_generator(load_packed_weights(path), act, threads);
}

qgan::nn::tensor4 packed_generator::operator()(const qgan::nn::tensor4& z) const {
  if (z.dimension(1) != nz_ || z.dimension(2) != 1 || z.dimension(3) != 1) {
    qgan::detail::throw_error("generator: z has shape ", qgan::nn::detail::dims_string(z), ", expected [N,", nz_, ",1,1]");
  }
  const auto n = static_cast<std::size_t>(z.dimension(0));
  const std::span<const float> latent(z.data(), static_cast<std::size_t>(z.size()));
  const packed::f32_activations image =
      path_ == packed::activation_path::int8
          ? packed::forward_sequence(std::span<const packed::layer>(layers_), std::span<const packed::activation_range>(ranges_),
                                     packed::quantize_nchw(latent, n, static_cast<std::size_t>(nz_), 1, 1, ranges_[0],
                                                           layers_[0].weights.row_tiles),
                                     *pool_)
          : packed::forward_sequence(std::span<const packed::layer>(layers_),
                                     packed::from_nchw(latent, n, static_cast<std::size_t>(nz_), 1, 1), *pool_);
  qgan::nn::tensor4 out(static_cast<Eigen::Index>(n), 1, static_cast<Eigen::Index>(image.height),
                        static_cast<Eigen::Index>(image.width));
  // One output channel: channel-last is already NCHW, so tanh reads the layer's output in
  // place. Split over the pool: single-threaded, this tail was a tenth of a W2A8 forward.
  const std::vector<float> reordered = image.channels == 1 ? std::vector<float>{} : packed::to_nchw(image);
  const float* source = image.channels == 1 ? image.data.data() : reordered.data();
  const qgan::simd::kernel_set& kernels = qgan::simd::active_kernels();
  constexpr std::size_t chunk = 16384;
  const std::size_t total = static_cast<std::size_t>(out.size());
  pool_->run((total + chunk - 1) / chunk, [&](std::size_t c) {
    const std::size_t end = std::min(total, (c + 1) * chunk);
    kernels.conv.tanh(source + c * chunk, out.data() + c * chunk, end - c * chunk);
  });
  return out;
}

std::array<std::vector<float>, generator_layers> packed_generator::layer_inputs(const qgan::nn::tensor4& z) const {
  if (path_ != packed::activation_path::fp32) qgan::detail::throw_error("layer_inputs: runs the fp32 path only");
  std::array<std::vector<float>, generator_layers> inputs;
  const auto n = static_cast<std::size_t>(z.dimension(0));
  packed::f32_activations x = packed::from_nchw(std::span<const float>(z.data(), static_cast<std::size_t>(z.size())), n,
                                                static_cast<std::size_t>(nz_), 1, 1);
  for (std::size_t i = 0; i < generator_layers; ++i) {
    inputs[i] = packed::to_nchw(x);
    if (i + 1 == generator_layers) break;
    packed::f32_activations y;
    packed::forward(layers_[i], x, y, true, *pool_);
    x = std::move(y);
  }
  return inputs;
}

std::size_t packed_generator::weight_bytes() const {
  std::size_t bytes = 0;
  for (const auto& l : layers_) {
    bytes += l.weights.codes.size() + l.weights.row_codes.size() + l.weights.floats.size() * sizeof(float) +
             l.weights.code_sums.size() * sizeof(std::int32_t) + (l.weights.alpha.size() + l.weights.beta.size()) * sizeof(float);
  }
  return bytes;
}

activation_ranges calibrate_ranges(const packed_generator& G, std::size_t samples, std::uint64_t seed) {
  if (samples == 0) qgan::detail::throw_error("calibrate: needs at least one sample");
  const auto nz = static_cast<std::size_t>(G.nz());
  const std::vector<float> z = normal_latents(samples * nz, seed);
  std::array<std::vector<float>, generator_layers> values;
  constexpr std::size_t batch = 256;
  for (std::size_t first = 0; first < samples; first += batch) {
    const std::size_t count = std::min(batch, samples - first);
    qgan::nn::tensor4 zb(static_cast<Eigen::Index>(count), G.nz(), 1, 1);
    std::copy(z.begin() + static_cast<std::ptrdiff_t>(first * nz), z.begin() + static_cast<std::ptrdiff_t>((first + count) * nz),
              zb.data());
    const auto inputs = G.layer_inputs(zb);
    for (std::size_t i = 0; i < generator_layers; ++i) values[i].insert(values[i].end(), inputs[i].begin(), inputs[i].end());
  }
  activation_ranges ranges{};
  for (std::size_t i = 0; i < generator_layers; ++i) {
    std::string what = "calibrate: layer ";  // built up: GCC 12 warns falsely on "..." + std::string&&
    what += std::to_string(i + 1);
    what += " input";
    // The latent is signed; every later input follows a ReLU.
    ranges[i] = packed::clipped_range(std::move(values[i]), i == 0, 0.9999, what);
  }
  return ranges;
}

void store_ranges(qgan::io::qgan_model& model, const activation_ranges& ranges) {
  for (std::size_t i = 0; i < generator_layers; ++i) {
    for (const auto& entry : {std::pair{input_scale_name(i), ranges[i].scale},
                              std::pair{input_zero_point_name(i), static_cast<float>(ranges[i].zero_point)}}) {
      const std::string& name = entry.first;  // not a structured binding: clang 14 cannot capture one
      std::erase_if(model.tensors, [&](const qgan::io::qgan_entry& e) { return e.name == name; });
      model.tensors.push_back({name, qgan::io::float_tensor{{1}, {entry.second}}});
    }
  }
}

activation_ranges calibrate_model(qgan::io::qgan_model& model, std::size_t samples, std::uint64_t seed, int threads) {
  const packed_weight_set weights = packed_weights_from_qgan(model);
  const packed_generator G(weights, packed::activation_path::fp32, threads);
  const activation_ranges ranges = calibrate_ranges(G, samples, seed);
  // Weights that cannot run with 8-bit activations (codebook policies) fail here, naming
  // the layer, rather than when sampling.
  (void)packed_generator(weights, packed::activation_path::int8, 1, &ranges);
  store_ranges(model, ranges);
  model.metadata["qgan.activation_calibration"] = "99.99th percentile of " + std::to_string(samples) +
                                                  " generator runs, latent seed " + std::to_string(seed);
  return ranges;
}

}  // namespace dcgan
