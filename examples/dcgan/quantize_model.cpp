#include "dcgan/quantize_model.hpp"

#include <variant>

#include "qgan/model/quantize_file.hpp"
#include "qgan/qgan.hpp"

namespace dcgan {

const std::vector<std::string>& method_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const auto name : qgan::method_names()) out.emplace_back(name);
    return out;
  }();
  return names;
}

qgan::io::qgan_model quantize_model(const qgan::io::safetensors_file& file, const quantize_settings& s,
                                    const std::string& source_name,
                                    const std::function<void(std::size_t)>& progress) {
  qgan::model::progress_callback report;
  if (progress) report = [&progress](const qgan::model::progress_event& event) { progress(event.done); };
  return qgan::model::quantize_model(file, s, source_name, report);
}

weight_error measure_weight_error(const qgan::io::safetensors_file& file, const qgan::io::qgan_model& model) {
  weight_error total;
  for (const auto& entry : model.tensors) {
    const auto* packed = std::get_if<qgan::packed_tensor>(&entry.tensor);
    if (packed == nullptr) continue;
    qgan::model::progress_event event;
    qgan::model::add_weight_error(*packed, file.read_float(entry.name), event);
    total.signal += event.signal_energy;
    total.error += event.error_energy;
  }
  return total;
}

}  // namespace dcgan
