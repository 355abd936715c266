// What a .qgan file holds, in memory: named entries in file order (packed tensors, float32
// tensors kept unquantized, raw tensors of any other dtype passed through untouched) and
// string metadata. read_qgan fills one (qgan_reader.hpp); write_qgan and serialize_qgan
// store one (qgan_writer.hpp).
//
//   struct float_tensor { shape, values }             float32, stored as they are
//   struct raw_tensor   { type, shape, bytes }        any io::dtype, little-endian bytes
//   using qgan_tensor = std::variant<packed_tensor, float_tensor, raw_tensor>
//   struct qgan_entry   { name, tensor }
//   struct qgan_model   { tensors (in file order), metadata (string -> string), source }
//     find(name) -> pointer or nullptr;  at(name), packed(name), floats(name), raw(name)
//     throw a qgan::error naming the source and the tensor (missing, or another kind)
#pragma once

#include "qgan/core/isa_namespace.hpp"

#include <cstddef>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "qgan/core/error.hpp"
#include "qgan/core/shape.hpp"
#include "qgan/io/dtype.hpp"
#include "qgan/io/qgan_format.hpp"
#include "qgan/pack/packed_tensor.hpp"

namespace qgan::io {

struct float_tensor {
  shape_t shape{};
  std::vector<float> values{};  ///< row-major, element_count(shape) of them
};

struct raw_tensor {
  dtype type = dtype::u8;
  shape_t shape{};
  std::vector<std::byte> bytes{};  ///< little-endian, tensor_byte_size(type, shape) of them
};

// Alternative i is entry kind i + 1 (kind_of relies on it).
using qgan_tensor = std::variant<packed_tensor, float_tensor, raw_tensor>;

struct qgan_entry {
  std::string name;
  qgan_tensor tensor;
};

using qgan_metadata = std::map<std::string, std::string, std::less<>>;

QGAN_BEGIN_FUNCTIONS

inline entry_kind kind_of(const qgan_tensor& tensor) noexcept {
  return static_cast<entry_kind>(tensor.index() + 1);
}

QGAN_END_FUNCTIONS

struct qgan_model {
  std::vector<qgan_entry> tensors{};  ///< in file order; names are unique and non-empty
  qgan_metadata metadata{};           ///< UTF-8 keys and values
  std::string source{};               ///< where it was read from, for messages ("" if built)

  /// Linear search: a generator holds tens to hundreds of tensors.
  [[nodiscard]] const qgan_entry* find(std::string_view name) const noexcept {
    for (const auto& entry : tensors) {
      if (entry.name == name) return &entry;
    }
    return nullptr;
  }

  [[nodiscard]] const qgan_entry& at(std::string_view name) const {
    const qgan_entry* entry = find(name);
    if (entry == nullptr) {
      detail::throw_error(source_label(), ": ", detail::tensor_prefix(name),
                          "no such tensor (the model holds ", tensors.size(), ")");
    }
    return *entry;
  }

  [[nodiscard]] const packed_tensor& packed(std::string_view name) const {
    return get<packed_tensor>(name, entry_kind::packed);
  }
  [[nodiscard]] const float_tensor& floats(std::string_view name) const {
    return get<float_tensor>(name, entry_kind::float32);
  }
  [[nodiscard]] const raw_tensor& raw(std::string_view name) const {
    return get<raw_tensor>(name, entry_kind::raw);
  }

  /// The model's file for error messages, or "qgan model" when it was built in memory.
  [[nodiscard]] std::string source_label() const { return source.empty() ? std::string("qgan model") : source; }

 private:

  template <class T>
  const T& get(std::string_view name, entry_kind wanted) const {
    const qgan_entry& entry = at(name);
    if (const T* tensor = std::get_if<T>(&entry.tensor)) return *tensor;
    detail::throw_error(source_label(), ": ", detail::tensor_prefix(name), "is a ",
                        kind_name(kind_of(entry.tensor)), " tensor, not a ", kind_name(wanted),
                        " one");
  }
};

}  // namespace qgan::io
