// Named float tensors, whatever file they came from: a PyTorch state dict exported as
// .safetensors, or a .qgan model whose packed tensors are decoded here. The DCGAN models
// are built from this one view, so fp32 and quantized generators share every line of the
// forward pass and differ only in the numbers they are handed.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "qgan/core/error.hpp"
#include "qgan/core/shape.hpp"
#include "qgan/pack/packed_tensor.hpp"

namespace qgan::io {
class safetensors_file;
struct qgan_model;
struct raw_tensor;
}  // namespace qgan::io

namespace dcgan {

struct float_tensor {
  qgan::shape_t shape;
  std::vector<float> values;  ///< row-major
};

class weight_set {
 public:
  weight_set() = default;
  explicit weight_set(std::string source) : source_(std::move(source)) {}

  void add(std::string name, float_tensor tensor) { tensors_.insert_or_assign(std::move(name), std::move(tensor)); }

  [[nodiscard]] const float_tensor* find(std::string_view name) const {
    const auto found = tensors_.find(name);
    return found == tensors_.end() ? nullptr : &found->second;
  }

  /// The tensor, checked against the shape the architecture needs; the message names the
  /// file, the tensor and both shapes, so a generator handed a classifier file says so.
  [[nodiscard]] const float_tensor& at(std::string_view name, const qgan::shape_t& expected) const {
    const float_tensor* tensor = find(name);
    if (tensor == nullptr) {
      qgan::detail::throw_error(source_, ": tensor '", name, "': missing (expected shape ",
                                qgan::to_string(expected), "; the file holds ", tensors_.size(),
                                " float tensors)");
    }
    if (tensor->shape != expected) {
      qgan::detail::throw_error(source_, ": tensor '", name, "': shape ",
                                qgan::to_string(tensor->shape), ", expected ",
                                qgan::to_string(expected));
    }
    return *tensor;
  }

  /// A tensor that is not floating point (BatchNorm's num_batches_tracked, say): not a
  /// weight, but a model must still know its name.
  void add_other(std::string name, std::string type) { others_.insert_or_assign(std::move(name), std::move(type)); }
  [[nodiscard]] const std::map<std::string, std::string, std::less<>>& others() const { return others_; }

  [[nodiscard]] const std::map<std::string, float_tensor, std::less<>>& tensors() const { return tensors_; }
  [[nodiscard]] const std::string& source() const { return source_; }

 private:
  std::string source_;
  std::map<std::string, float_tensor, std::less<>> tensors_;
  std::map<std::string, std::string, std::less<>> others_;  ///< name -> dtype
};

/// F16, BF16 and F64 tensors that `qgan quantize` kept byte for byte, as float.
std::vector<float> decode_floats(const qgan::io::raw_tensor& raw);

/// Every floating-point tensor of a safetensors file; integer tensors such as BatchNorm's
/// num_batches_tracked are not weights and are listed by name (others()).
weight_set weights_from_safetensors(const qgan::io::safetensors_file& file);

/// Float tensors as stored, packed tensors decoded with qgan::dequantize.
weight_set weights_from_qgan(const qgan::io::qgan_model& model);

/// True when the file starts with the .qgan magic; the extension is not trusted.
bool is_qgan_file(const std::filesystem::path& path);

/// A model file of either kind, every tensor checked finite; errors name the path.
weight_set load_weights(const std::filesystem::path& path);

/// A model file with its quantized tensors kept packed (for layers that compute from the
/// codes); every other tensor as load_weights gives it.
struct packed_weight_set {
  weight_set floats;
  std::map<std::string, qgan::packed_tensor, std::less<>> packed;
};
packed_weight_set load_packed_weights(const std::filesystem::path& path);
packed_weight_set packed_weights_from_qgan(qgan::io::qgan_model model);

}  // namespace dcgan
