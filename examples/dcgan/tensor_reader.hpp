// Reading a network's tensors from a weight_set while remembering which it took, so a file
// holding a tensor the network would not use (a bias it ignores, a layer it does not have)
// is refused instead of silently running a different model than the file describes.
// Shared by the Eigen models (model.cpp) and the packed generator (packed_generator.cpp),
// whose quantized weights live outside the weight_set and are declared by name.
#pragma once

#include <cstdint>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dcgan/weights.hpp"
#include "qgan/nn/batch_norm.hpp"

namespace dcgan {

class tensor_reader {
 public:
  /// held_elsewhere: names of tensors the model holds outside `w` (packed weights).
  explicit tensor_reader(const weight_set& w, std::vector<std::string> held_elsewhere = {})
      : w_(w), elsewhere_(std::move(held_elsewhere)) {}
  [[nodiscard]] const std::string& source() const { return w_.source(); }

  const float_tensor& at(const std::string& name, const qgan::shape_t& shape) {
    used_.insert(name);
    return w_.at(name, shape);
  }
  const float_tensor* optional(const std::string& name, const qgan::shape_t& shape) {
    if (w_.find(name) == nullptr) return nullptr;
    return &at(name, shape);
  }
  void mark_used(const std::string& name) { used_.insert(name); }

  /// Throws naming every tensor the network did not take, except those ending in one of
  /// known_unused (bookkeeping such as BatchNorm's num_batches_tracked).
  void require_all_used(const char* network, std::span<const std::string_view> known_unused) const;

 private:
  const weight_set& w_;
  std::vector<std::string> elsewhere_;
  std::set<std::string, std::less<>> used_;
};

/// BatchNorm2d's four tensors `name.{running_mean,running_var,weight,bias}` (eps 1e-5),
/// each checked against `channels`, and every running_var + eps checked positive.
qgan::nn::batch_norm2d_params read_batch_norm(tensor_reader& w, const std::string& name, std::int64_t channels);

}  // namespace dcgan
