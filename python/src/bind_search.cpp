// The search rules (qgan/search/precision_search.hpp) for Python's fine-tuning search: the
// callbacks are Python callables, called with the GIL held.
#include <pybind11/functional.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "qgan/search/precision_search.hpp"

namespace qgan_python {
namespace py = pybind11;

void bind_search(py::module_& m) {
  namespace s = qgan::search;
  py::class_<s::search_step>(m, "SearchStep")
      .def_readonly("bits", &s::search_step::bits)
      .def_readonly("score", &s::search_step::score)
      .def_readonly("passed", &s::search_step::passed)
      .def("__repr__", [](const s::search_step& x) {
        return "<SearchStep " + std::to_string(x.bits) + " bits: " + std::to_string(x.score) + (x.passed ? " passed>" : " failed>");
      });
  py::class_<s::search_result>(m, "SearchResult")
      .def_readonly("bits", &s::search_result::bits)
      .def_readonly("path", &s::search_result::path);
  py::class_<s::layer_shape>(m, "LayerShape")
      .def(py::init([](std::string name, std::size_t elements, std::size_t channels, std::size_t fan_in,
                       std::size_t output_channels) {
             return s::layer_shape{std::move(name), elements, channels, fan_in, output_channels};
           }),
           py::arg("name"), py::arg("elements"), py::arg("channels"), py::arg("fan_in"), py::arg("output_channels"))
      .def_readonly("name", &s::layer_shape::name)
      .def_readonly("elements", &s::layer_shape::elements)
      .def_readonly("fan_in", &s::layer_shape::fan_in)
      .def_readonly("output_channels", &s::layer_shape::output_channels);
  py::class_<s::layer_allocation>(m, "LayerAllocation")
      .def_readonly("bits", &s::layer_allocation::bits)
      .def_readonly("cost", &s::layer_allocation::cost)
      .def_readonly("bytes", &s::layer_allocation::bytes)
      .def_readonly("exact", &s::layer_allocation::exact);
  // pybind11 2.10 has no std::span caster: vectors in, spans to the library.
  m.def("lowest_passing_bits",
        [](const std::vector<int>& candidates, const std::function<double(int)>& score, double target) {
          return s::lowest_passing_bits(candidates, score, target);
        }, py::arg("candidates"), py::arg("score"), py::arg("target"),
        "Tries widths in ascending order; stops at the first with score(bits) <= target.");
  m.def("layer_bits_under_budget",
        [](const std::vector<s::layer_shape>& layers, const std::vector<int>& widths,
           const std::function<double(std::size_t, std::size_t)>& cost, std::uint64_t budget, std::size_t exact_limit) {
          return s::layer_bits_under_budget(layers, widths, cost, budget, exact_limit);
        }, py::arg("layers"), py::arg("widths"), py::arg("cost"),
        py::arg("budget_bytes"), py::arg("exact_limit") = 1u << 20,
        "Per-layer widths with the least summed cost(layer, width index) within a byte budget.");
  m.def("packed_bytes", &s::packed_bytes, py::arg("layer"), py::arg("bits"));
  m.def("pbgen_binarize",
        [](const std::vector<s::layer_shape>& layers, std::size_t min_fan_in, std::size_t min_outputs) {
          return s::pbgen_binarize(layers, min_fan_in, min_outputs);
        }, py::arg("layers"), py::arg("min_fan_in") = 512, py::arg("min_outputs") = 64,
        "PBGen's shape rule: binarize layers with fan-in >= min_fan_in and >= min_outputs output channels.");
}

}  // namespace qgan_python
