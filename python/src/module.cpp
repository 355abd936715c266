// The _qgan extension module: qgan's C++ policies, model files and metrics for Python. The
// pure-Python package `qgan` (python/qgan) re-exports it; see its docstring for the API.
#include <pybind11/pybind11.h>

#include "qgan/core/error.hpp"
#include "qgan/version.hpp"

namespace qgan_python {
namespace py = pybind11;
void bind_policies(py::module_& m);
void bind_model(py::module_& m);
void bind_metrics(py::module_& m);
void bind_search(py::module_& m);
}  // namespace qgan_python

PYBIND11_MODULE(_qgan, m) {
  namespace py = pybind11;
  m.doc() = "qgan's C++ quantizers, .qgan files and metrics (use the `qgan` package).";
  // C++ errors keep their message (file, tensor and field) and become qgan.Error, a
  // RuntimeError, so `except RuntimeError` still catches them.
  py::register_exception<qgan::error>(m, "Error", PyExc_RuntimeError);
  m.attr("__version__") = QGAN_VERSION_STRING;
  qgan_python::bind_policies(m);
  qgan_python::bind_model(m);
  qgan_python::bind_metrics(m);
  qgan_python::bind_search(m);
}
