#include "dcgan/tensor_reader.hpp"

#include <algorithm>

namespace dcgan {

void tensor_reader::require_all_used(const char* network, std::span<const std::string_view> known_unused) const {
  std::string unknown;
  std::size_t count = 0;
  const auto consider = [&](const std::string& name) {
    if (used_.count(name) != 0) return;
    const auto ends_with = [&](std::string_view suffix) {
      return name.size() > suffix.size() && std::string_view(name).substr(name.size() - suffix.size()) == suffix;
    };
    if (std::any_of(known_unused.begin(), known_unused.end(), ends_with)) return;
    if (count < 8) unknown += (unknown.empty() ? "'" : ", '") + name + "'";
    ++count;
  };
  for (const auto& [name, tensor] : w_.tensors()) consider(name);
  for (const auto& [name, type] : w_.others()) consider(name);
  for (const std::string& name : elsewhere_) consider(name);
  if (count != 0) {
    qgan::detail::throw_error(w_.source(), ": ", count, count == 1 ? " tensor" : " tensors", " the ", network,
                              " does not use: ", unknown, count > 8 ? ", ..." : "",
                              " (refusing to run a model that differs from the file)");
  }
}

qgan::nn::batch_norm2d_params read_batch_norm(tensor_reader& w, const std::string& name, std::int64_t channels) {
  const qgan::shape_t shape{channels};
  constexpr float eps = 1e-5f;
  const float_tensor& variance = w.at(name + ".running_var", shape);
  // Checked here, where the file and tensor are known; the layer would only say which
  // channel.
  for (std::size_t c = 0; c < variance.values.size(); ++c) {
    if (!(static_cast<double>(variance.values[c]) + eps > 0.0)) {
      qgan::detail::throw_error(w.source(), ": tensor '", name, ".running_var': element ", c, " is ", variance.values[c],
                                "; a variance must be > -eps (", eps, ")");
    }
  }
  return {qgan::nn::tensor_from(w.at(name + ".running_mean", shape).values), qgan::nn::tensor_from(variance.values),
          qgan::nn::tensor_from(w.at(name + ".weight", shape).values), qgan::nn::tensor_from(w.at(name + ".bias", shape).values),
          eps};
}

}  // namespace dcgan
