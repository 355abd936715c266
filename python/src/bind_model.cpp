// Whole models through the library's model API (bridge section "models"): quantize a
// safetensors state dict under the same rules as `qgan quantize`, read and write .qgan
// files (atomically; the writer checks every tensor first), and build a model from Python
// entries, e.g. a fine-tuned generator's packed weights and float BatchNorm terms.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <pybind11/stl/filesystem.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "arrays.hpp"
#include "qgan/io/qgan_reader.hpp"
#include "qgan/io/qgan_writer.hpp"
#include "qgan/io/safetensors.hpp"
#include "qgan/model/quantize_file.hpp"

namespace qgan_python {
namespace {

using pattern_list = std::vector<std::pair<std::string, int>>;

qgan::model::quantize_rules make_rules(const std::string& method, int bits, bool per_channel, const std::string& arch,
                                       const std::vector<std::string>& keep, const pattern_list& bits_for,
                                       const pattern_list& axes, int threads) {
  qgan::model::quantize_rules rules;
  rules.method = method;
  rules.bits = bits;
  rules.per_channel = per_channel;
  rules.arch = arch;
  rules.keep = keep;
  for (const auto& [pattern, value] : bits_for) rules.bits_for.push_back({pattern, value});
  for (const auto& [pattern, value] : axes) rules.axes.push_back({pattern, value});
  rules.threads = threads;
  return rules;
}

py::array float_array(const qgan::io::float_tensor& t) {
  std::vector<py::ssize_t> shape(t.shape.begin(), t.shape.end());
  py::array_t<float> out(shape);
  std::memcpy(out.mutable_data(), t.values.data(), t.values.size() * sizeof(float));
  return out;
}

py::object entry_value(const qgan::io::qgan_entry& entry) {
  if (const auto* packed = std::get_if<qgan::packed_tensor>(&entry.tensor)) return py::cast(*packed);
  if (const auto* floats = std::get_if<qgan::io::float_tensor>(&entry.tensor)) return float_array(*floats);
  const auto& raw = std::get<qgan::io::raw_tensor>(entry.tensor);
  return py::make_tuple(std::string(qgan::io::dtype_name(raw.type)),
                        py::tuple(py::cast(std::vector<std::int64_t>(raw.shape.begin(), raw.shape.end()))),
                        py::bytes(reinterpret_cast<const char*>(raw.bytes.data()), raw.bytes.size()));
}

void set_entry(qgan::io::qgan_model& model, const std::string& name, const py::object& value) {
  if (name.empty()) throw py::value_error("Model: a tensor needs a non-empty name");
  qgan::io::qgan_tensor tensor;
  if (py::isinstance<qgan::packed_tensor>(value)) {
    tensor = value.cast<qgan::packed_tensor>();
  } else if (py::isinstance<py::array>(value)) {
    const py::array array = value.cast<py::array>();
    const std::span<const float> values = input_span<float>(array, "Model['" + name + "']");
    qgan::require_finite(values, name, "a model's tensors must be finite");
    tensor = qgan::io::float_tensor{shape_of(array), std::vector<float>(values.begin(), values.end())};
  } else {
    throw py::type_error("Model['" + name + "']: expected a PackedTensor or a float32 NumPy array, got " +
                         py::str(py::type::of(value)).cast<std::string>());
  }
  for (auto& entry : model.tensors) {
    if (entry.name == name) {
      entry.tensor = std::move(tensor);
      return;
    }
  }
  model.tensors.push_back({name, std::move(tensor)});
}

}  // namespace

void bind_model(py::module_& m) {
  py::class_<qgan::io::qgan_model>(m, "Model", "A .qgan model: named tensors in file order and string metadata.")
      .def(py::init<>())
      .def_static("read", [](const std::filesystem::path& path) {
        const py::gil_scoped_release release;
        return qgan::io::read_qgan(path);
      }, py::arg("path"), "Reads and fully validates a .qgan file (checksums included).")
      .def("write", [](const qgan::io::qgan_model& model, const std::filesystem::path& path) {
        const py::gil_scoped_release release;
        qgan::io::write_qgan(path, model);
      }, py::arg("path"), "Writes atomically: the file appears whole or not at all.")
      .def("names", [](const qgan::io::qgan_model& model) {
        std::vector<std::string> names;
        for (const auto& e : model.tensors) names.push_back(e.name);
        return names;
      })
      .def("__len__", [](const qgan::io::qgan_model& model) { return model.tensors.size(); })
      .def("__contains__", [](const qgan::io::qgan_model& model, const std::string& name) { return model.find(name) != nullptr; })
      .def("__getitem__", [](const qgan::io::qgan_model& model, const std::string& name) {
        if (model.find(name) == nullptr) throw py::key_error(name);
        return entry_value(model.at(name));
      }, "A PackedTensor, a float32 array (a copy), or (dtype, shape, bytes) for a raw tensor.")
      .def("__setitem__", &set_entry)
      .def("dequantize", [](const qgan::io::qgan_model& model, const std::string& name) {
        const qgan::io::qgan_entry& entry = model.at(name);
        if (const auto* floats = std::get_if<qgan::io::float_tensor>(&entry.tensor)) return float_array(*floats);
        const qgan::packed_tensor& packed = model.packed(name);
        return float_array(qgan::io::float_tensor{packed.shape, qgan::dequantize(packed, name)});
      }, py::arg("name"), "The tensor's values as float32, decoded if it is packed.")
      // A read-only view: with a plain dict copy, `model.metadata[k] = v` would change the
      // copy and silently not the model.
      .def_property(
          "metadata",
          [](const qgan::io::qgan_model& model) {
            return py::module_::import("types").attr("MappingProxyType")(py::cast(model.metadata));
          },
          [](qgan::io::qgan_model& model, const qgan::io::qgan_metadata& metadata) { model.metadata = metadata; },
          "str -> str, read-only view; assign a whole dict to change it")
      .def_readonly("source", &qgan::io::qgan_model::source);

  m.def("quantize_safetensors",
        [](const std::filesystem::path& input, const std::filesystem::path& output, const std::string& method, int bits,
           bool per_channel, const std::string& arch, const std::vector<std::string>& keep, const pattern_list& bits_for,
           const pattern_list& axes, int threads) {
          const qgan::model::quantize_rules rules = make_rules(method, bits, per_channel, arch, keep, bits_for, axes, threads);
          const py::gil_scoped_release release;
          return qgan::model::quantize_file(input, output, rules);
        },
        py::arg("input"), py::arg("output"), py::arg("method") = "em", py::arg("bits") = 4, py::arg("per_channel") = false,
        py::arg("arch") = "", py::arg("keep") = std::vector<std::string>{}, py::arg("bits_for") = pattern_list{},
        py::arg("axes") = pattern_list{}, py::arg("threads") = 1,
        "`qgan quantize` as a call: streams a safetensors file to a .qgan file; returns its size in bytes. "
        "bits_for and axes are (glob, value) pairs.");
  m.def("quantize_model",
        [](const std::filesystem::path& input, const std::string& method, int bits, bool per_channel, const std::string& arch,
           const std::vector<std::string>& keep, const pattern_list& bits_for, const pattern_list& axes, int threads) {
          const qgan::model::quantize_rules rules = make_rules(method, bits, per_channel, arch, keep, bits_for, axes, threads);
          const py::gil_scoped_release release;
          const qgan::io::safetensors_file file = qgan::io::safetensors_file::open(input);
          return qgan::model::quantize_model(file, rules, input.filename().string());
        },
        py::arg("input"), py::arg("method") = "em", py::arg("bits") = 4, py::arg("per_channel") = false, py::arg("arch") = "",
        py::arg("keep") = std::vector<std::string>{}, py::arg("bits_for") = pattern_list{}, py::arg("axes") = pattern_list{},
        py::arg("threads") = 1, "The same, in memory: returns a Model.");
  m.def("read_safetensors", [](const std::filesystem::path& path) {
    const qgan::io::safetensors_file file = qgan::io::safetensors_file::open(path);
    py::dict out;
    for (const auto& tensor : file.tensors()) {
      if (qgan::io::is_float_readable(tensor.type)) {
        out[py::str(tensor.name)] = float_array(qgan::io::float_tensor{tensor.shape, file.read_float(tensor)});
      } else {
        out[py::str(tensor.name)] = entry_value({tensor.name, qgan::io::raw_tensor{tensor.type, tensor.shape,
                                                 std::vector<std::byte>(tensor.bytes.begin(), tensor.bytes.end())}});
      }
    }
    return out;
  }, py::arg("path"),
        "Every tensor of a safetensors file: float ones as float32 arrays (F16, BF16 and F64 converted), others as "
        "(dtype, shape, bytes).");
}

}  // namespace qgan_python
