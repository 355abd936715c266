// Reader and writer for safetensors, the file format trained PyTorch models ship in
// (https://github.com/huggingface/safetensors). Model files come from strangers, so the
// reader maps the file and checks every rule of the format before it hands out one byte;
// each failure is a qgan::error naming the file, the tensor and the field, e.g.
// "model.safetensors: tensor 'gen.0.weight': shape [64,3,4,4] of F32 needs 12288 bytes but
// data_offsets [0,1000] span 1000".
//
// Layout: an 8-byte little-endian header length N (at most 100,000,000), N bytes of UTF-8
// JSON (an object, optionally padded with trailing spaces) naming each tensor's dtype, shape
// and data_offsets [begin, end) within the data section, then the data section, whose every
// byte belongs to exactly one tensor. Data starts at byte 8 + N, which need not be aligned
// for any type: it is read with memcpy, never through a cast pointer.
//
// The header is read in one streaming pass (qgan/io/safetensors_header.hpp): time linear in
// its size, nesting past the format's 3 levels refused where it starts, memory at most
// about 10 times the header's bytes. A shape is refused when the product of its nonzero
// extents passes 2^63-1, so any product of its axes fits in int64_t; an empty axis is legal.
//
// API (namespace qgan::io; the header JSON goes through nlohmann/json, so link
// nlohmann_json::nlohmann_json). Dtypes come from qgan/io/dtype.hpp:
//   enum class dtype                 every dtype the format defines (22, see there)
//   dtype_name(dtype) -> "BF16"      dtype_from_name("BF16") -> std::optional<dtype>
//   dtype_bits(dtype) -> 4..64       is_float_readable(dtype): F32, F16, BF16, F64
//   tensor_byte_size(dtype, shape, name = {}) -> bytes; throws on overflow or when the
//       element count times the bit width is not a whole number of bytes (sub-byte dtypes)
//   struct safetensors_tensor { name, type, shape, bytes }      a view, never a copy
//   make_f32_tensor(name, shape, std::span<const float>)        a view for the writer
//   class safetensors_file (move-only)
//     open(path)             maps the file read-only (POSIX mmap); owns the mapping
//     parse(bytes, source)   BORROWS bytes: they must outlive the object and every view
//                            taken from it; source names the input in error messages
//     tensors()              in data-offset order      find(name) -> pointer or nullptr
//     at(name)               throws naming file and tensor
//     read_float(name | tensor) -> std::vector<float>: F32 copied, F16/BF16 widened
//                            exactly, F64 rounded to nearest (beyond float's range: +-inf);
//                            any other dtype throws naming it: read .bytes instead
//     metadata()             the "__metadata__" map of strings;  source()
//   write_safetensors(path, tensors, metadata = {})
//     Writes tensors of any dtype from their raw bytes, in the order given (reading a file
//     and writing tensors() back keeps its layout; list larger element types first to keep
//     every tensor aligned); header padded with spaces to a multiple of 8. Atomic: a
//     temporary file in the same directory is written, fsynced and renamed over path
//     (qgan/io/atomic_write.hpp).
//
// Values are little-endian, as the format prescribes; so is every host qgan supports.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "qgan/core/error.hpp"
#include "qgan/core/shape.hpp"
#include "qgan/io/atomic_write.hpp"
#include "qgan/io/dtype.hpp"
#include "qgan/io/half.hpp"
#include "qgan/io/mapped_file.hpp"
#include "qgan/io/safetensors_header.hpp"
#include "qgan/io/utf8.hpp"

namespace qgan::io {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; qgan copies it as it lies");

namespace safetensors_detail {

using dtype_detail::dtype_info;
using dtype_detail::dtype_table;
using io::first_invalid_utf8;

// The format caps the header at 100 MB so a hostile length cannot make a reader allocate
// without bound (safetensors MAX_HEADER_SIZE).
inline constexpr std::uint64_t max_header_bytes = 100'000'000;

inline std::uint64_t read_le64(std::span<const std::byte> bytes) noexcept {
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < 8; ++i) {
    value |= static_cast<std::uint64_t>(std::to_integer<unsigned>(bytes[i])) << (8 * i);
  }
  return value;
}

}  // namespace safetensors_detail

// One tensor: its bytes are a view into the file (or into the caller's memory when built
// for the writer), exactly as stored: little-endian, row-major, possibly unaligned.
struct safetensors_tensor {
  std::string name;
  dtype type = dtype::f32;
  shape_t shape;
  std::span<const std::byte> bytes;
};

// A view of float values for write_safetensors; values must outlive the write.
inline safetensors_tensor make_f32_tensor(std::string name, shape_t shape,
                                          std::span<const float> values) {
  const std::size_t count = element_count(shape, name);
  if (count != values.size()) {
    detail::throw_error(detail::tensor_prefix(name), "shape ", to_string(shape), " holds ", count,
                        " elements but ", values.size(), " values were given");
  }
  return {std::move(name), dtype::f32, std::move(shape), std::as_bytes(values)};
}

class safetensors_file {
 public:
  // Maps the file read-only and validates it; error messages name the path.
  static safetensors_file open(const std::filesystem::path& path) {
    safetensors_file file;
    file.source_ = path.string();
    file.mapping_ = mapped_file::open(path);
    file.load(file.mapping_.bytes());
    return file;
  }

  // Validates an in-memory image of a file. Borrows: bytes must outlive the result and
  // every tensor view taken from it. source names the input in error messages.
  static safetensors_file parse(std::span<const std::byte> bytes, std::string source) {
    safetensors_file file;
    file.source_ = std::move(source);
    file.load(bytes);
    return file;
  }

  safetensors_file(safetensors_file&&) = default;
  safetensors_file& operator=(safetensors_file&&) = default;
  // Views point into the mapping, so a copy could outlive what it points at.
  safetensors_file(const safetensors_file&) = delete;
  safetensors_file& operator=(const safetensors_file&) = delete;
  ~safetensors_file() = default;

  // In data-offset order, the order the bytes lie in the file.
  [[nodiscard]] std::span<const safetensors_tensor> tensors() const noexcept { return tensors_; }

  [[nodiscard]] const safetensors_tensor* find(std::string_view name) const noexcept {
    const auto found = index_.find(name);
    return found == index_.end() ? nullptr : &tensors_[found->second];
  }

  [[nodiscard]] const safetensors_tensor& at(std::string_view name) const {
    const safetensors_tensor* tensor = find(name);
    if (tensor == nullptr) {
      fail(safetensors_detail::tensor_label(name), "no such tensor (the file holds ",
           tensors_.size(), ")");
    }
    return *tensor;
  }

  [[nodiscard]] std::vector<float> read_float(std::string_view name) const {
    return read_float(at(name));
  }

  // Converts any tensor view (normally one of tensors()); errors are labelled with this
  // file's source.
  [[nodiscard]] std::vector<float> read_float(const safetensors_tensor& tensor) const {
    const std::byte* in = tensor.bytes.data();
    switch (tensor.type) {
      case dtype::f32: {
        std::vector<float> out(tensor.bytes.size() / sizeof(float));
        if (!out.empty()) std::memcpy(out.data(), in, out.size() * sizeof(float));
        return out;
      }
      case dtype::f16:
      case dtype::bf16: {
        std::vector<float> out(tensor.bytes.size() / sizeof(std::uint16_t));
        const bool brain = tensor.type == dtype::bf16;
        for (std::size_t i = 0; i < out.size(); ++i) {
          std::uint16_t bits = 0;
          std::memcpy(&bits, in + i * sizeof bits, sizeof bits);
          out[i] = brain ? bf16_to_float(bits) : f16_to_float(bits);
        }
        return out;
      }
      case dtype::f64: {
        std::vector<float> out(tensor.bytes.size() / sizeof(double));
        for (std::size_t i = 0; i < out.size(); ++i) {
          double value = 0;
          std::memcpy(&value, in + i * sizeof value, sizeof value);
          // IEEE narrowing: round to nearest even, beyond float's range to +-inf, NaN kept.
          out[i] = static_cast<float>(value);
        }
        return out;
      }
      default:
        fail(safetensors_detail::tensor_label(tensor.name), "dtype ", dtype_name(tensor.type),
             " cannot be read as float (read_float takes F32, F16, BF16 and F64); "
             "read its bytes instead");
    }
  }

  [[nodiscard]] const safetensors_metadata& metadata() const noexcept { return metadata_; }
  [[nodiscard]] const std::string& source() const noexcept { return source_; }

  /// Where a tensor's bytes start in the file (or the parsed image): lets a streaming
  /// reader pread them instead of touching the mapping, whose pages would count as its
  /// resident memory.
  [[nodiscard]] std::uint64_t file_offset(const safetensors_tensor& tensor) const noexcept {
    return static_cast<std::uint64_t>(tensor.bytes.data() - image_.data());
  }

 private:
  safetensors_file() = default;

  template <class... Parts>
  [[noreturn]] void fail(const Parts&... parts) const {
    detail::throw_error(source_, ": ", parts...);
  }

  using entry = safetensors_detail::header_entry;

  void load(std::span<const std::byte> file) {
    image_ = file;
    using safetensors_detail::max_header_bytes;
    if (file.size() < 8) {
      fail("file is ", file.size(), " bytes, shorter than the 8-byte header length");
    }
    const std::uint64_t header_size = safetensors_detail::read_le64(file);
    if (header_size > max_header_bytes) {
      fail("header length ", header_size, " exceeds the format's limit of ", max_header_bytes,
           " bytes");
    }
    if (header_size > file.size() - 8) {
      fail("header length ", header_size, " runs past the end of the file (", file.size(),
           " bytes leave at most ", file.size() - 8, " for the header)");
    }
    const auto header = file.subspan(8, static_cast<std::size_t>(header_size));
    const auto data = file.subspan(8 + header.size());

    auto parsed = safetensors_detail::read_header(header, data.size(), source_);
    std::vector<entry>& entries = parsed.entries;
    metadata_ = std::move(parsed.metadata);
    check_layout(entries, data.size());
    index_ = std::move(parsed.index);

    tensors_.reserve(entries.size());
    for (auto& e : entries) {
      const auto bytes = data.subspan(static_cast<std::size_t>(e.begin),
                                      static_cast<std::size_t>(e.end - e.begin));
      index_.find(e.name)->second = tensors_.size();
      tensors_.push_back({std::move(e.name), e.type, std::move(e.shape), bytes});
    }
  }

  // The spans, sorted by offset, must tile the data section exactly: from 0 to its end,
  // with no gap (bytes no tensor owns could hide anything), no overlap (two tensors
  // writing one byte) and no trailing byte.
  void check_layout(std::vector<entry>& entries, std::uint64_t data_size) const {
    using safetensors_detail::offsets_text;
    using safetensors_detail::tensor_label;
    std::sort(entries.begin(), entries.end(), [](const entry& a, const entry& b) {
      return std::tie(a.begin, a.end, a.name) < std::tie(b.begin, b.end, b.name);
    });
    std::uint64_t covered = 0;
    const entry* previous = nullptr;
    for (const auto& e : entries) {
      if (e.begin > covered) {
        if (previous == nullptr) {
          fail(tensor_label(e.name), "data_offsets ", offsets_text(e.begin, e.end),
               " leave a gap of ", e.begin - covered, " bytes at the start of the data section");
        }
        fail(tensor_label(e.name), "data_offsets ", offsets_text(e.begin, e.end),
             " leave a gap of ", e.begin - covered, " bytes after tensor '", previous->name,
             "' ", offsets_text(previous->begin, previous->end));
      }
      if (e.begin < covered) {
        fail(tensor_label(e.name), "data_offsets ", offsets_text(e.begin, e.end),
             " overlap tensor '", previous->name, "' ",
             offsets_text(previous->begin, previous->end));
      }
      covered = e.end;
      previous = &e;
    }
    if (covered != data_size) {
      fail("data section is ", data_size, " bytes but its tensors cover ", covered, " (",
           data_size - covered, " trailing bytes)");
    }
  }

  std::string source_;
  mapped_file mapping_;
  std::span<const std::byte> image_{};  ///< the whole file: the mapping or the parsed bytes
  std::vector<safetensors_tensor> tensors_;
  std::map<std::string, std::size_t, std::less<>> index_;
  safetensors_metadata metadata_;
};

// Writes tensors (any dtype, from their raw little-endian bytes) and metadata to path,
// atomically; see the opening comment. Throws qgan::error naming path, and the tensor when
// one is at fault (a duplicate or reserved name, bytes that disagree with dtype and shape,
// text that is not UTF-8). On failure path is untouched and no temporary file remains.
inline void write_safetensors(const std::filesystem::path& path,
                              std::span<const safetensors_tensor> tensors,
                              const safetensors_metadata& metadata = {}) {
  using safetensors_detail::first_invalid_utf8;
  using safetensors_detail::tensor_label;
  const std::string where = path.string();
  if (!path.has_filename()) detail::throw_error(where, ": not a file name");

  // ordered_json keeps __metadata__ first and the tensors in data order, as a person
  // reading the header would expect.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    auto& meta = header["__metadata__"];
    meta = nlohmann::ordered_json::object();
    for (const auto& [key, value] : metadata) {
      if (first_invalid_utf8(key) != std::string_view::npos ||
          first_invalid_utf8(value) != std::string_view::npos) {
        detail::throw_error(where, ": __metadata__: key '", key, "' or its value is not UTF-8");
      }
      meta[key] = value;
    }
  }
  std::set<std::string_view> names;
  std::uint64_t offset = 0;
  for (const auto& tensor : tensors) {
    const std::string label = tensor_label(tensor.name);
    if (tensor.name == "__metadata__") {
      detail::throw_error(where, ": ", label, "the name is reserved for the metadata");
    }
    if (first_invalid_utf8(tensor.name) != std::string_view::npos) {
      detail::throw_error(where, ": ", label, "the name is not UTF-8");
    }
    if (!names.insert(tensor.name).second) {
      detail::throw_error(where, ": ", label, "duplicate tensor name");
    }
    std::size_t size = 0;
    try {
      size = tensor_byte_size(tensor.type, tensor.shape, tensor.name);
    } catch (const error& e) {
      detail::throw_error(where, ": ", e.what());
    }
    if (size != tensor.bytes.size()) {
      detail::throw_error(where, ": ", label, "shape ", to_string(tensor.shape), " of ",
                          dtype_name(tensor.type), " needs ", size, " bytes but ",
                          tensor.bytes.size(), " were given");
    }
    header[tensor.name] = {{"dtype", dtype_name(tensor.type)},
                           {"shape", tensor.shape},
                           {"data_offsets", {offset, offset + size}}};
    offset += size;
  }

  std::string text = header.dump();
  text.resize((text.size() + 7) / 8 * 8, ' ');  // data starts 8-byte aligned
  if (text.size() > safetensors_detail::max_header_bytes) {
    detail::throw_error(where, ": header would be ", text.size(),
                        " bytes, beyond the format's limit of ",
                        safetensors_detail::max_header_bytes);
  }
  std::array<std::byte, 8> length{};
  for (std::size_t i = 0; i < 8; ++i) {
    length[i] = static_cast<std::byte>((std::uint64_t{text.size()} >> (8 * i)) & 0xffu);
  }

  atomic_file file(path);
  file.write(length);
  file.write(std::as_bytes(std::span(text.data(), text.size())));
  for (const auto& tensor : tensors) file.write(tensor.bytes);
  file.commit();
}

}  // namespace qgan::io
