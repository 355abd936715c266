// The DCGAN generator run through qgan's packed layers (qgan/nn/packed): straight from the
// k-bit codes of a .qgan file (any mix of bits per layer), with 8-bit or fp32 activations,
// or from an fp32 file through the same dispatched kernels. BatchNorm is folded into each
// layer's per-channel terms; ReLU is the requantization's clamp at zero; the pre-tanh
// output stays fp32.
//
// 8-bit activations need each layer's input range, which `qgan calibrate` stores in the
// file as float32 tensors deconvN.input_scale and deconvN.input_zero_point (shape [1]):
// x = scale * (q - zero_point). calibrate_ranges() computes them: the generator runs with
// fp32 activations on calibration latents and each input's range is clipped at the
// 99.99th percentile of its values (of |z| for the signed latent, which gets a symmetric
// range; the inputs after ReLU start at 0, zero point 0).
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "dcgan/weights.hpp"
#include "qgan/core/thread_pool.hpp"
#include "qgan/io/qgan_model.hpp"
#include "qgan/nn/packed/layer.hpp"
#include "qgan/nn/tensor.hpp"

namespace dcgan {

inline constexpr std::size_t generator_layers = 4;

/// Input ranges of the four transposed convolutions, for 8-bit activations.
using activation_ranges = std::array<qgan::nn::packed::activation_range, generator_layers>;

/// The reserved tensor names a layer's input range is stored under.
std::string input_scale_name(std::size_t layer);
std::string input_zero_point_name(std::size_t layer);

class packed_generator {
 public:
  /// Builds from a loaded model. int8 activations need packed (uniform-grid) weights and
  /// the stored ranges (or `ranges`); fp32 takes any file. threads: worker threads.
  packed_generator(const packed_weight_set& weights, qgan::nn::packed::activation_path path, int threads,
                   const activation_ranges* ranges = nullptr);
  static packed_generator load(const std::filesystem::path& path, qgan::nn::packed::activation_path act, int threads);

  [[nodiscard]] std::int64_t nz() const { return nz_; }
  [[nodiscard]] qgan::nn::packed::activation_path path() const { return path_; }
  /// z (N, nz, 1, 1) -> images (N, 1, 32, 32) in [-1, 1].
  [[nodiscard]] qgan::nn::tensor4 operator()(const qgan::nn::tensor4& z) const;
  /// fp32 path only: the input of each layer (NCHW floats), for calibration.
  [[nodiscard]] std::array<std::vector<float>, generator_layers> layer_inputs(const qgan::nn::tensor4& z) const;
  /// Bytes the four layers' weights take in memory.
  [[nodiscard]] std::size_t weight_bytes() const;
  [[nodiscard]] const std::vector<qgan::nn::packed::layer>& layers() const { return layers_; }
  /// Runs task(i) for i in [0, count) on the generator's threads: a caller's own work
  /// between batches (drawing the images) then does not leave them idle. Not while a
  /// forward pass of this generator runs on another thread (the pool takes one job at a
  /// time, so that caller would wait its turn).
  void parallel_for(std::size_t count, const std::function<void(std::size_t)>& task) const { pool_->run(count, task); }

 private:
  std::int64_t nz_ = 0;
  qgan::nn::packed::activation_path path_;
  std::vector<qgan::nn::packed::layer> layers_;
  activation_ranges ranges_{};
  std::unique_ptr<qgan::thread_pool> pool_;
};

/// Ranges from `samples` latents of `seed` through the fp32 path (see the file comment).
activation_ranges calibrate_ranges(const packed_generator& fp32_generator, std::size_t samples, std::uint64_t seed);

/// The model with the ranges stored as float32 tensors (replacing earlier ones).
void store_ranges(qgan::io::qgan_model& model, const activation_ranges& ranges);

/// qgan calibrate's work on a model in memory: runs its generator with fp32 activations
/// on `samples` latents from `seed`, checks that the weights can run with 8-bit
/// activations, stores each layer's input range and records the rule in the metadata.
activation_ranges calibrate_model(qgan::io::qgan_model& model, std::size_t samples, std::uint64_t seed, int threads);

}  // namespace dcgan
