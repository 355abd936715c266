// The DCGAN generator as oneDNN 2.x deconvolution primitives, fp32 or int8: the baseline a
// packed-weight generator is measured against. oneDNN chooses every layout (format_tag::any)
// and kernel; weights are reordered once at construction, so run() is what a user of
// oneDNN would time. oneDNN's headers stay in the .cpp (the program that times this needs
// only libdnnl at link time).
//
// Threads: Debian's libdnnl runs on OpenMP. The constructor and every run call
// omp_set_num_threads(threads) on the calling thread; time it with OMP_WAIT_POLICY=passive,
// so idle OpenMP workers sleep instead of spinning on the cores the other side of a
// comparison runs on.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace qgan_bench {

/// One ConvTranspose2d layer, PyTorch semantics: square kernel, groups 1, no output_padding;
/// output extent (in - 1) * stride - 2 * pad + kernel.
struct deconv_spec {
  int in_channels = 0;
  int out_channels = 0;
  int kernel = 0;
  int stride = 1;
  int pad = 0;
  std::vector<float> weight;  ///< (in, out, k, k) row-major, PyTorch's layout; BatchNorm folded in
  std::vector<float> bias;    ///< out_channels; BatchNorm folded in
  bool relu = true;           ///< ReLU after the layer; false (the last layer only): tanh
};

enum class onednn_precision { f32, int8 };

/// Activation scales for int8 (real value = scale * q, zero point 0): layer 0's input (the
/// signed latent z) is s8, every later layer's input (post-ReLU) u8.
struct onednn_int8_scales {
  std::vector<float> input_scale;  ///< one per layer
};

/// int8 recipe: weights s8 symmetric per output channel (scale_w[o] = max|w_o| / 127), bias
/// f32; layer i < last writes u8 with output scale input_scale[i] * scale_w[o] /
/// input_scale[i + 1] and a ReLU post-op, the last layer f32 with input_scale * scale_w[o]
/// and a tanh post-op. oneDNN 2.x adds the bias to the s32 accumulator before the output
/// scale, so the bias it is handed is bias[o] / (input_scale[i] * scale_w[o]).
class onednn_generator {
 public:
  /// in_height, in_width: the first layer's input extent (1x1 for DCGAN). Throws
  /// std::invalid_argument on inconsistent specs or scales, dnnl::error when oneDNN refuses.
  onednn_generator(const std::vector<deconv_spec>& layers, int batch, int in_height, int in_width,
                   onednn_precision precision, const onednn_int8_scales& scales, int threads);
  ~onednn_generator();
  onednn_generator(onednn_generator&&) noexcept;
  onednn_generator& operator=(onednn_generator&&) noexcept;
  onednn_generator(const onednn_generator&) = delete;
  onednn_generator& operator=(const onednn_generator&) = delete;

  /// z (batch, C, H, W) NCHW f32 -> images (batch, C_out, H_out, W_out) NCHW f32: reorders z
  /// into the first primitive's source (quantized to s8 for int8), runs every layer (and
  /// any reorder oneDNN's chosen layouts need between two layers), reorders the last
  /// output into images.
  void run(const float* z, float* images);

  [[nodiscard]] std::size_t layer_count() const;
  /// Primitive i alone, on the buffers the last run() filled (per-layer timing).
  void run_layer(std::size_t i);
  /// oneDNN's impl_info_str(): on AVX-512 VNNI machines "jit:avx512_core" for f32 (the
  /// deconvolution run as a convolution's backward-data pass) and
  /// "jit_deconvolution:avx512_core_vnni" for int8.
  [[nodiscard]] std::string implementation(std::size_t i) const;
  /// Bytes of every layer's weights as oneDNN holds them: its blocked layouts pad channels
  /// (f32 DCGAN: 100 inputs to 112, 1 output to 16), int8 adds the s8-source compensation;
  /// biases excluded.
  [[nodiscard]] std::size_t weight_bytes() const;
  /// Reorders run() executes between layers because a layer's chosen output layout is not
  /// the next layer's chosen input layout (0 when oneDNN chains them directly).
  [[nodiscard]] std::size_t inter_layer_reorders() const;
  /// Output extent of the whole generator per image: C_out * H_out * W_out.
  [[nodiscard]] std::size_t output_size_per_image() const;

 private:
  struct state;
  std::unique_ptr<state> state_;
};

}  // namespace qgan_bench
