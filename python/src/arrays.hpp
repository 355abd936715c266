// NumPy arrays in and out of the bridge without copies. pybind11's array_t converts an
// array of the wrong dtype or layout by copying it, silently; a training loop that thinks
// it updated a weight in place would then have updated a temporary. Every array argument is
// therefore taken as a plain py::array (declared .noconvert()) and checked here: float32
// or uint8, C-contiguous, writable where the bridge writes, and refused with a message
// naming the function and the argument otherwise.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "qgan/core/shape.hpp"

namespace qgan_python {

namespace py = pybind11;

template <class T>
constexpr const char* dtype_name() {
  if constexpr (std::is_same_v<T, float>) return "float32";
  if constexpr (std::is_same_v<T, double>) return "float64";
  if constexpr (std::is_same_v<T, std::uint8_t>) return "uint8";
}

/// Checks dtype, layout and (when `writable`) the write flag; throws TypeError or
/// ValueError naming `where` ("fake_quantize(values)").
template <class T>
void require_array(const py::array& array, const std::string& where, bool writable) {
  if (!py::array_t<T>::check_(array)) {
    throw py::type_error(where + ": expected a " + dtype_name<T>() + " array, got dtype " +
                         py::str(array.dtype()).cast<std::string>() +
                         " (convert it first, e.g. .astype(np." + dtype_name<T>() +
                         "); the bridge never copies behind your back)");
  }
  if ((array.flags() & py::array::c_style) == 0) {
    throw py::value_error(where + ": the array is not C-contiguous (a view with strides); pass "
                          "np.ascontiguousarray(x) or tensor.contiguous() explicitly");
  }
  if (writable && !array.writeable()) throw py::value_error(where + ": the array is read-only");
}

inline qgan::shape_t shape_of(const py::array& array) {
  qgan::shape_t shape;
  for (py::ssize_t i = 0; i < array.ndim(); ++i) shape.push_back(static_cast<std::int64_t>(array.shape(i)));
  return shape;
}

template <class T>
std::span<const T> input_span(const py::array& array, const std::string& where) {
  require_array<T>(array, where, false);
  return {static_cast<const T*>(array.data()), static_cast<std::size_t>(array.size())};
}

template <class T>
std::span<T> output_span(py::array& array, const std::string& where) {
  require_array<T>(array, where, true);
  return {static_cast<T*>(array.mutable_data()), static_cast<std::size_t>(array.size())};
}

/// `out` when given (checked: dtype, layout, writable, `shape`), else a new array of `shape`.
template <class T>
py::array output_array(const std::optional<py::array>& out, const qgan::shape_t& shape, const std::string& where) {
  if (!out) return py::array_t<T>(std::vector<py::ssize_t>(shape.begin(), shape.end()));
  py::array array = *out;
  require_array<T>(array, where, true);
  if (shape_of(array) != shape) {
    throw py::value_error(where + ": has shape " + qgan::to_string(shape_of(array)) + ", expected " + qgan::to_string(shape));
  }
  return array;
}

/// output_array shaped like `like`.
template <class T>
py::array output_like(const std::optional<py::array>& out, const py::array& like, const std::string& where) {
  return output_array<T>(out, shape_of(like), where);
}

}  // namespace qgan_python
