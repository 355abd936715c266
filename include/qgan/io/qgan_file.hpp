// The .qgan model file: one file holds a generator's packed (quantized) weights, the float
// tensors left unquantized (biases, BatchNorm), raw tensors of any other dtype passed through
// untouched (BatchNorm's I64 num_batches_tracked) and string metadata, bit-exactly. The
// byte layout, versioning rule and validation rules are specified in docs/qgan-format.md.
// Files come from strangers: the reader checks every count, offset and size against the
// file with overflow-safe arithmetic before it uses one, verifies an XXH3 checksum over the
// header, directory and metadata and one per payload, and refuses anything else with a
// qgan::error naming the file, the tensor and the field, e.g.
// "gen.qgan: tensor 'gen.0.weight': params_count 6 but shape [4,2,2,2] with 4 channel(s) of
// em at 2 bits needs 8".
//
// API (namespace qgan::io; raw tensors use io::dtype from safetensors.hpp, so link
// nlohmann_json::nlohmann_json; checksums use xxHash header-only (libxxhash-dev, no link)):
//   struct float_tensor { shape, values }             float32, stored as they are
//   struct raw_tensor   { type, shape, bytes }        any safetensors dtype, little-endian bytes
//   using qgan_tensor = std::variant<packed_tensor, float_tensor, raw_tensor>
//   struct qgan_entry   { name, tensor }
//   struct qgan_model   { tensors (in file order), metadata (string -> string), source }
//     find(name) -> pointer or nullptr;  at(name), packed(name), floats(name), raw(name)
//     throw a qgan::error naming the source and the tensor (missing, or another kind)
//   write_qgan(path, model)        atomic (temporary file in the same directory, fsync,
//                                  rename; removed on failure); errors name the path
//   serialize_qgan(model) -> std::vector<std::byte>   the same bytes, in memory
//   read_qgan(path) -> qgan_model  maps the file (mapped_file) and parses it
//   parse_qgan(bytes, source_name) -> qgan_model      the in-memory reader; copies what it
//                                  keeps, so bytes may go away afterwards
//   qgan_format_major / qgan_format_minor             the version this code writes (1.0)
// Reading accepts any 1.x file (a newer minor only adds what older readers may skip) and
// refuses a newer major with a message saying so.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

#if !defined(XXH_INLINE_ALL)
#define XXH_INLINE_ALL  // header-only xxHash: consumers need no link flag
#define QGAN_XXH_INLINE_ALL_DEFINED
#endif
#include <xxhash.h>
#if defined(QGAN_XXH_INLINE_ALL_DEFINED)
#undef XXH_INLINE_ALL
#undef QGAN_XXH_INLINE_ALL_DEFINED
#endif

#include "qgan/core/error.hpp"
#include "qgan/core/shape.hpp"
#include "qgan/io/atomic_write.hpp"
#include "qgan/io/mapped_file.hpp"
#include "qgan/io/safetensors.hpp"
#include "qgan/pack/canonical.hpp"
#include "qgan/pack/packed_tensor.hpp"
#include "qgan/quant/granularity.hpp"

namespace qgan::io {

static_assert(std::endian::native == std::endian::little,
              ".qgan payloads are little-endian; qgan copies them as they lie");

inline constexpr std::uint16_t qgan_format_major = 1;
inline constexpr std::uint16_t qgan_format_minor = 0;

/// The three kinds of directory entry; the numbers are part of the format.
enum class entry_kind : std::uint8_t { packed = 1, float32 = 2, raw = 3 };

struct float_tensor {
  shape_t shape{};
  std::vector<float> values{};  ///< row-major, element_count(shape) of them
};

struct raw_tensor {
  dtype type = dtype::u8;
  shape_t shape{};
  std::vector<std::byte> bytes{};  ///< little-endian, tensor_byte_size(type, shape) of them
};

using qgan_tensor = std::variant<packed_tensor, float_tensor, raw_tensor>;

struct qgan_entry {
  std::string name;
  qgan_tensor tensor;
};

using qgan_metadata = std::map<std::string, std::string, std::less<>>;

inline entry_kind kind_of(const qgan_tensor& tensor) noexcept {
  return static_cast<entry_kind>(tensor.index() + 1);
}

inline std::string_view kind_name(entry_kind kind) noexcept {
  switch (kind) {
    case entry_kind::packed:
      return "packed";
    case entry_kind::float32:
      return "float32";
    case entry_kind::raw:
      return "raw";
  }
  return "unknown";
}

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

 private:
  std::string source_label() const { return source.empty() ? std::string("qgan model") : source; }

  template <class T>
  const T& get(std::string_view name, entry_kind wanted) const {
    const qgan_entry& entry = at(name);
    if (const T* tensor = std::get_if<T>(&entry.tensor)) return *tensor;
    detail::throw_error(source_label(), ": ", detail::tensor_prefix(name), "is a ",
                        kind_name(kind_of(entry.tensor)), " tensor, not a ", kind_name(wanted),
                        " one");
  }
};

namespace qgan_file_detail {

// The v1 layout (docs/qgan-format.md). Offsets are in bytes from the start of the file
// (header) or of the record (directory entry); every integer is little-endian.
inline constexpr std::array<std::byte, 8> magic{std::byte{0x89}, std::byte{'Q'}, std::byte{'G'},
                                                std::byte{'A'},  std::byte{'N'}, std::byte{'\r'},
                                                std::byte{'\n'}, std::byte{0x1a}};
inline constexpr std::size_t alignment = 64;            ///< of data_offset and every payload
inline constexpr std::size_t header_bytes = 64;         ///< the v1 header; header_size >= this
inline constexpr std::size_t record_fixed_bytes = 56;   ///< a directory record before its name
inline constexpr std::size_t metadata_fixed_bytes = 8;  ///< key_size and value_size

namespace header_at {
inline constexpr std::size_t magic = 0;             ///< u8[8]
inline constexpr std::size_t version_major = 8;     ///< u16
inline constexpr std::size_t version_minor = 10;    ///< u16
inline constexpr std::size_t header_size = 12;      ///< u32
inline constexpr std::size_t header_checksum = 16;  ///< u64
inline constexpr std::size_t entry_count = 24;      ///< u64
inline constexpr std::size_t directory_size = 32;   ///< u64
inline constexpr std::size_t metadata_count = 40;   ///< u64
inline constexpr std::size_t metadata_size = 48;    ///< u64
inline constexpr std::size_t data_offset = 56;      ///< u64
}  // namespace header_at

namespace record_at {
inline constexpr std::size_t record_size = 0;        ///< u32
inline constexpr std::size_t kind = 4;               ///< u8
inline constexpr std::size_t bits = 5;               ///< u8
inline constexpr std::size_t policy = 6;             ///< u8
inline constexpr std::size_t granularity = 7;        ///< u8
inline constexpr std::size_t axis = 8;               ///< i32
inline constexpr std::size_t dtype = 12;             ///< u8
inline constexpr std::size_t reserved = 13;          ///< u8[3]
inline constexpr std::size_t name_size = 16;         ///< u32
inline constexpr std::size_t rank = 20;              ///< u32
inline constexpr std::size_t params_count = 24;      ///< u64
inline constexpr std::size_t payload_offset = 32;    ///< u64
inline constexpr std::size_t payload_size = 40;      ///< u64
inline constexpr std::size_t payload_checksum = 48;  ///< u64
inline constexpr std::size_t name = 56;              ///< u8[name_size], then i64[rank]
}  // namespace record_at

static_assert(header_at::data_offset + 8 == header_bytes);
static_assert(record_at::name == record_fixed_bytes);

// Raw dtypes by their code in the file (code = index + 1). Frozen: a new dtype takes the
// next code, and io::dtype's own numbering never leaks into files.
inline constexpr std::array<dtype, 22> dtype_codes{
    dtype::boolean, dtype::u8,      dtype::i8,          dtype::i16,         dtype::u16,
    dtype::i32,     dtype::u32,     dtype::i64,         dtype::u64,         dtype::f16,
    dtype::bf16,    dtype::f32,     dtype::f64,         dtype::c64,         dtype::f8_e5m2,
    dtype::f8_e4m3, dtype::f8_e8m0, dtype::f8_e4m3fnuz, dtype::f8_e5m2fnuz, dtype::f4,
    dtype::f6_e2m3, dtype::f6_e3m2};

inline std::optional<dtype> dtype_from_code(unsigned code) noexcept {
  if (code == 0 || code > dtype_codes.size()) return std::nullopt;
  return dtype_codes[code - 1];
}

inline std::uint8_t dtype_code(dtype type) noexcept {  // 0 for a value outside the enum
  for (std::size_t i = 0; i < dtype_codes.size(); ++i) {
    if (dtype_codes[i] == type) return static_cast<std::uint8_t>(i + 1);
  }
  return 0;
}

template <class T>
T load(std::span<const std::byte> bytes, std::size_t offset) noexcept {  // bounds checked by caller
  static_assert(std::is_integral_v<T>);
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i) {
    value |= std::uint64_t{std::to_integer<std::uint8_t>(bytes[offset + i])} << (8 * i);
  }
  return static_cast<T>(value);
}

template <class T>
void store(std::span<std::byte> bytes, std::size_t offset, T value) noexcept {
  static_assert(std::is_integral_v<T>);
  const auto bits = static_cast<std::uint64_t>(static_cast<std::make_unsigned_t<T>>(value));
  for (std::size_t i = 0; i < sizeof(T); ++i) {
    bytes[offset + i] = static_cast<std::byte>((bits >> (8 * i)) & 0xffu);
  }
}

inline std::uint64_t xxh3(std::span<const std::byte> first,
                          std::span<const std::byte> second = {}) noexcept {
  XXH3_state_t state;
  XXH3_INITSTATE(&state);
  XXH3_64bits_reset(&state);
  if (!first.empty()) XXH3_64bits_update(&state, first.data(), first.size());
  if (!second.empty()) XXH3_64bits_update(&state, second.data(), second.size());
  return XXH3_64bits_digest(&state);
}

/// header_checksum: XXH3-64 of bytes [0, data_offset) with the checksum field read as 0.
inline std::uint64_t header_checksum(std::span<const std::byte> region) noexcept {
  constexpr std::size_t at = header_at::header_checksum;
  constexpr std::array<std::byte, 8> zeros{};
  XXH3_state_t state;
  XXH3_INITSTATE(&state);
  XXH3_64bits_reset(&state);
  XXH3_64bits_update(&state, region.data(), std::min(region.size(), at));
  if (region.size() > at) {
    XXH3_64bits_update(&state, zeros.data(), std::min<std::size_t>(region.size() - at, 8));
  }
  if (region.size() > at + 8)
    XXH3_64bits_update(&state, region.data() + at + 8, region.size() - at - 8);
  return XXH3_64bits_digest(&state);
}

inline std::string hex(std::uint64_t value) {
  constexpr std::string_view digits = "0123456789abcdef";
  std::string text = "0x";
  for (int shift = 60; shift >= 0; shift -= 4) text += digits[(value >> shift) & 0xfu];
  return text;
}

inline std::uint64_t align_up(std::uint64_t offset) noexcept {
  return (offset + (alignment - 1)) / alignment * alignment;
}

// a + b and a * b, or nullopt when the result does not fit in 64 bits.
inline std::optional<std::uint64_t> add(std::uint64_t a, std::uint64_t b) noexcept {
  if (a > std::numeric_limits<std::uint64_t>::max() - b) return std::nullopt;
  return a + b;
}
inline std::optional<std::uint64_t> mul(std::uint64_t a, std::uint64_t b) noexcept {
  if (b != 0 && a > std::numeric_limits<std::uint64_t>::max() / b) return std::nullopt;
  return a * b;
}

// Recomputes every payload checksum and then the header checksum of a file image in place,
// walking its directory leniently (it stops where the directory stops making sense). For
// tests and tools that build corrupt files on purpose: a file whose checksums agree reaches
// the reader's later checks. Never reads or writes outside `file`.
inline void reseal(std::span<std::byte> file) noexcept {
  if (file.size() < header_bytes) return;
  const std::uint64_t size = file.size();
  const auto header_size = load<std::uint32_t>(file, header_at::header_size);
  const auto entry_count = load<std::uint64_t>(file, header_at::entry_count);
  const auto directory_size = load<std::uint64_t>(file, header_at::directory_size);
  const auto data_offset = load<std::uint64_t>(file, header_at::data_offset);
  const std::uint64_t directory_end =
      std::min(size, add(header_size, directory_size).value_or(size));
  std::uint64_t at = header_size;
  for (std::uint64_t i = 0;
       i < entry_count && at <= directory_end && directory_end - at >= record_fixed_bytes; ++i) {
    const auto record_size = load<std::uint32_t>(file, at + record_at::record_size);
    if (record_size < record_fixed_bytes || record_size > directory_end - at) break;
    const auto offset = load<std::uint64_t>(file, at + record_at::payload_offset);
    const auto payload_size = load<std::uint64_t>(file, at + record_at::payload_size);
    if (offset <= size && payload_size <= size - offset) {
      store(file, at + record_at::payload_checksum, xxh3(file.subspan(offset, payload_size)));
    }
    at += record_size;
  }
  store(file, header_at::header_checksum, header_checksum(file.first(std::min(size, data_offset))));
}

/// Test hooks for files a newer 1.x writer could produce: a later minor version, a longer
/// header, longer directory records and a reserved gap before the data, all zero-filled.
struct write_layout {
  std::uint16_t minor = qgan_format_minor;
  std::uint32_t header_extra = 0;
  std::uint32_t record_extra = 0;
  std::uint32_t gap_extra = 0;
};

// One entry as the writer lays it out: its payload is `first` then `second` (packed: the
// params as float32, then the codes).
struct planned_entry {
  entry_kind kind{};
  std::uint8_t bits = 0;
  std::uint8_t policy = 0;
  std::uint8_t granularity = 0;
  std::int32_t axis = 0;
  std::uint8_t dtype = 0;
  std::string_view name;
  const shape_t* shape = nullptr;
  std::uint64_t params_count = 0;
  std::span<const std::byte> first;
  std::span<const std::byte> second;
  std::uint64_t offset = 0;
};

struct plan {
  std::vector<std::byte> head;  ///< bytes [0, data_offset): header, directory, metadata
  std::vector<planned_entry> entries;
  std::uint64_t file_size = 0;
};

inline plan make_plan(const qgan_model& model, const std::string& where,
                      const write_layout& layout = {}) {
  using safetensors_detail::first_invalid_utf8;
  constexpr std::uint64_t u32_max = std::numeric_limits<std::uint32_t>::max();
  plan result;
  result.entries.reserve(model.tensors.size());
  std::unordered_set<std::string_view> names;
  std::uint64_t directory_size = 0;
  for (const auto& entry : model.tensors) {
    const std::string label = detail::tensor_prefix(entry.name);
    if (entry.name.empty()) detail::throw_error(where, ": a tensor has an empty name");
    if (first_invalid_utf8(entry.name) != std::string_view::npos) {
      detail::throw_error(where, ": ", label, "the name is not UTF-8");
    }
    if (!names.insert(entry.name).second) {
      detail::throw_error(where, ": ", label, "duplicate tensor name");
    }
    planned_entry planned;
    planned.kind = kind_of(entry.tensor);
    planned.name = entry.name;
    try {
      if (const auto* packed = std::get_if<packed_tensor>(&entry.tensor)) {
        packed->validate(entry.name);
        planned.bits = static_cast<std::uint8_t>(packed->bits);
        planned.policy = static_cast<std::uint8_t>(packed->policy);
        if (const auto* channel = std::get_if<per_channel>(&packed->grain)) {
          planned.granularity = 1;
          planned.axis = channel->axis;
        }
        planned.shape = &packed->shape;
        planned.params_count = packed->params.size();
        planned.first = std::as_bytes(std::span(packed->params));
        planned.second = std::as_bytes(std::span(packed->codes));
      } else if (const auto* floats = std::get_if<float_tensor>(&entry.tensor)) {
        const std::size_t count = element_count(floats->shape, entry.name);
        if (count != floats->values.size()) {
          detail::throw_error(label, "shape ", to_string(floats->shape), " holds ", count,
                              " elements but ", floats->values.size(), " values were given");
        }
        planned.shape = &floats->shape;
        planned.first = std::as_bytes(std::span(floats->values));
      } else {
        const auto& raw = std::get<raw_tensor>(entry.tensor);
        planned.dtype = dtype_code(raw.type);
        const std::size_t size = tensor_byte_size(raw.type, raw.shape, entry.name);
        if (size != raw.bytes.size()) {
          detail::throw_error(label, "shape ", to_string(raw.shape), " of ", dtype_name(raw.type),
                              " needs ", size, " bytes but ", raw.bytes.size(), " were given");
        }
        planned.shape = &raw.shape;
        planned.first = raw.bytes;
      }
    } catch (const error& e) {
      detail::throw_error(where, ": ", e.what());
    }
    const std::uint64_t record_size = record_fixed_bytes + std::uint64_t{entry.name.size()} +
                                      8 * std::uint64_t{planned.shape->size()} +
                                      layout.record_extra;
    if (entry.name.size() > u32_max || record_size > u32_max) {
      detail::throw_error(where, ": ", label, "the name and shape take ", record_size,
                          " bytes, beyond a record's limit of ", u32_max);
    }
    directory_size += record_size;
    result.entries.push_back(planned);
  }

  std::uint64_t metadata_size = 0;
  for (const auto& [key, value] : model.metadata) {
    if (first_invalid_utf8(key) != std::string_view::npos ||
        first_invalid_utf8(value) != std::string_view::npos) {
      detail::throw_error(where, ": metadata key '", key, "' or its value is not UTF-8");
    }
    if (key.size() > u32_max || value.size() > u32_max) {
      detail::throw_error(where, ": metadata key '", key.substr(0, 64),
                          "' or its value is longer than ", u32_max, " bytes");
    }
    metadata_size += metadata_fixed_bytes + key.size() + value.size();
  }

  const std::uint64_t header_size = header_bytes + layout.header_extra;
  const std::uint64_t metadata_end = header_size + directory_size + metadata_size;
  const std::uint64_t data_offset = align_up(metadata_end + layout.gap_extra);
  result.head.assign(data_offset, std::byte{0});
  std::span<std::byte> head(result.head);
  std::copy(magic.begin(), magic.end(), head.begin());
  store<std::uint16_t>(head, header_at::version_major, qgan_format_major);
  store<std::uint16_t>(head, header_at::version_minor, layout.minor);
  store(head, header_at::header_size, static_cast<std::uint32_t>(header_size));
  store<std::uint64_t>(head, header_at::entry_count, result.entries.size());
  store(head, header_at::directory_size, directory_size);
  store<std::uint64_t>(head, header_at::metadata_count, model.metadata.size());
  store(head, header_at::metadata_size, metadata_size);
  store(head, header_at::data_offset, data_offset);

  std::uint64_t cursor = data_offset;  // payloads in model order, each 64-byte aligned
  std::size_t at = header_size;
  for (auto& planned : result.entries) {
    const std::uint64_t payload_size = planned.first.size() + planned.second.size();
    planned.offset = align_up(cursor);
    cursor = planned.offset + payload_size;
    const auto rank = planned.shape->size();
    const std::size_t record_size =
        record_fixed_bytes + planned.name.size() + 8 * rank + layout.record_extra;
    store(head, at + record_at::record_size, static_cast<std::uint32_t>(record_size));
    store(head, at + record_at::kind, static_cast<std::uint8_t>(planned.kind));
    store(head, at + record_at::bits, planned.bits);
    store(head, at + record_at::policy, planned.policy);
    store(head, at + record_at::granularity, planned.granularity);
    store(head, at + record_at::axis, planned.axis);
    store(head, at + record_at::dtype, planned.dtype);
    store(head, at + record_at::name_size, static_cast<std::uint32_t>(planned.name.size()));
    store(head, at + record_at::rank, static_cast<std::uint32_t>(rank));
    store(head, at + record_at::params_count, planned.params_count);
    store(head, at + record_at::payload_offset, planned.offset);
    store(head, at + record_at::payload_size, payload_size);
    store(head, at + record_at::payload_checksum, xxh3(planned.first, planned.second));
    const auto name_bytes = std::as_bytes(std::span(planned.name.data(), planned.name.size()));
    std::copy(name_bytes.begin(), name_bytes.end(),
              head.begin() + static_cast<std::ptrdiff_t>(at + record_at::name));
    std::size_t extent_at = at + record_at::name + planned.name.size();
    for (const std::int64_t extent : *planned.shape) {
      store(head, extent_at, extent);
      extent_at += 8;
    }
    at += record_size;
  }
  for (const auto& [key, value] : model.metadata) {
    store(head, at, static_cast<std::uint32_t>(key.size()));
    store(head, at + 4, static_cast<std::uint32_t>(value.size()));
    at += metadata_fixed_bytes;
    for (const std::string* text : {&key, &value}) {
      const auto bytes = std::as_bytes(std::span(text->data(), text->size()));
      std::copy(bytes.begin(), bytes.end(), head.begin() + static_cast<std::ptrdiff_t>(at));
      at += text->size();
    }
  }
  store(head, header_at::header_checksum, header_checksum(head));
  result.file_size = std::max(cursor, data_offset);
  return result;
}

// Hands the file to sink(std::span<const std::byte>) in order: head, then each payload
// after the zero padding that aligns it.
template <class Sink>
void emit(const plan& planned, Sink&& sink) {
  static constexpr std::array<std::byte, alignment> zeros{};
  sink(std::span<const std::byte>(planned.head));
  std::uint64_t written = planned.head.size();
  for (const auto& entry : planned.entries) {
    while (written < entry.offset) {
      const auto pad = std::min<std::uint64_t>(entry.offset - written, zeros.size());
      sink(std::span<const std::byte>(zeros.data(), pad));
      written += pad;
    }
    if (!entry.first.empty()) sink(entry.first);
    if (!entry.second.empty()) sink(entry.second);
    written += entry.first.size() + entry.second.size();
  }
}

inline std::vector<std::byte> serialize(const qgan_model& model, const std::string& where,
                                        const write_layout& layout = {}) {
  const plan planned = make_plan(model, where, layout);
  std::vector<std::byte> out;
  out.reserve(planned.file_size);
  emit(planned, [&](std::span<const std::byte> bytes) {
    out.insert(out.end(), bytes.begin(), bytes.end());
  });
  return out;
}

// What the reader learns from one directory record before it touches the payload.
struct record {
  std::string name;
  entry_kind kind{};
  int bits = 0;
  policy_id policy = policy_id::em;
  granularity grain = per_tensor{};
  std::optional<dtype> type;
  shape_t shape;
  std::uint64_t params_count = 0;
  std::uint64_t offset = 0;
  std::uint64_t size = 0;
  std::uint64_t checksum = 0;
};

class parser {
 public:
  parser(std::span<const std::byte> file, std::string source)
      : file_(file), size_(file.size()), source_(std::move(source)) {}

  qgan_model parse() {
    read_header();
    read_directory();
    read_metadata();
    check_layout();
    for (const auto& r : records_) check_payload_checksum(r);
    model_.tensors.reserve(records_.size());
    for (auto& r : records_) model_.tensors.push_back(decode(r));
    model_.source = source_;
    return std::move(model_);
  }

 private:
  template <class... Parts>
  [[noreturn]] void fail(const Parts&... parts) const {
    detail::throw_error(source_, ": ", parts...);
  }

  // Runs fn; a qgan::error it throws gets this file's name in front.
  template <class Fn>
  auto with_source(Fn&& fn) const -> decltype(fn()) {
    try {
      return fn();
    } catch (const error& e) {
      fail(e.what());
    }
  }

  void read_header() {
    if (size_ < magic.size()) {
      fail("file is ", size_,
           " bytes, too short for the 8-byte magic (truncated, or not a "
           ".qgan file)");
    }
    if (!std::equal(magic.begin(), magic.end(), file_.begin())) {
      std::string found;
      for (std::size_t i = 0; i < magic.size(); ++i) {
        found += hex(std::to_integer<std::uint8_t>(file_[i])).substr(16);
        if (i + 1 < magic.size()) found += ' ';
      }
      fail("magic is ", found,
           ", not 89 51 47 41 4e 0d 0a 1a (\"\\x89QGAN\\r\\n\\x1a\"): not a "
           ".qgan file");
    }
    if (size_ < header_at::version_minor + 2) {
      fail("file is ", size_, " bytes, truncated inside version_major/version_minor");
    }
    major_ = load<std::uint16_t>(file_, header_at::version_major);
    minor_ = load<std::uint16_t>(file_, header_at::version_minor);
    if (major_ > qgan_format_major) {
      fail("version_major ", major_, " (format ", major_, ".", minor_, ") is newer than the ",
           qgan_format_major,
           ".x this reader knows: a newer qgan wrote it; update qgan to "
           "read it");
    }
    if (major_ == 0) fail("version_major 0 is not a format version (the first is 1)");
    if (size_ < header_bytes) {
      fail("file is ", size_, " bytes, truncated inside the ", header_bytes, "-byte header");
    }
    header_size_ = load<std::uint32_t>(file_, header_at::header_size);
    entry_count_ = load<std::uint64_t>(file_, header_at::entry_count);
    directory_size_ = load<std::uint64_t>(file_, header_at::directory_size);
    metadata_count_ = load<std::uint64_t>(file_, header_at::metadata_count);
    metadata_size_ = load<std::uint64_t>(file_, header_at::metadata_size);
    data_offset_ = load<std::uint64_t>(file_, header_at::data_offset);

    if (header_size_ < header_bytes) {
      fail("header_size ", header_size_, " is smaller than the ", header_bytes,
           "-byte version 1 header");
    }
    if (header_size_ > size_) {
      fail("header_size ", header_size_, " runs past the end of the file (", size_,
           " bytes): truncated?");
    }
    if (directory_size_ > size_ - header_size_) {
      fail("directory_size ", directory_size_, " runs past the end of the file (", size_,
           " bytes leave ", size_ - header_size_, " after the header): truncated?");
    }
    directory_end_ = header_size_ + directory_size_;
    if (metadata_size_ > size_ - directory_end_) {
      fail("metadata_size ", metadata_size_, " runs past the end of the file (", size_,
           " bytes leave ", size_ - directory_end_, " after the directory): truncated?");
    }
    metadata_end_ = directory_end_ + metadata_size_;
    if (data_offset_ % alignment != 0) {
      fail("data_offset ", data_offset_, " is not a multiple of ", alignment);
    }
    if (data_offset_ < metadata_end_) {
      fail("data_offset ", data_offset_, " lies before the end of the metadata (byte ",
           metadata_end_, ")");
    }
    if (data_offset_ > size_) {
      fail("data_offset ", data_offset_, " runs past the end of the file (", size_,
           " bytes): truncated?");
    }
    const auto stored = load<std::uint64_t>(file_, header_at::header_checksum);
    const auto computed = header_checksum(file_.first(data_offset_));
    if (stored != computed) {
      fail("header_checksum ", hex(stored),
           " does not match the header, directory and "
           "metadata (bytes [0,",
           data_offset_, ") hash to ", hex(computed),
           "): the file is "
           "corrupt");
    }
  }

  void read_directory() {
    if (entry_count_ > directory_size_ / record_fixed_bytes) {
      fail("entry_count ", entry_count_, " is more than directory_size ", directory_size_,
           " bytes can hold (each record takes at least ", record_fixed_bytes, ")");
    }
    records_.reserve(entry_count_);
    std::uint64_t at = header_size_;
    for (std::uint64_t index = 0; index < entry_count_; ++index) {
      at += read_record(index, at);
    }
    if (at != directory_end_) {
      fail("directory_size ", directory_size_, " but the ", entry_count_, " records end ",
           directory_end_ - at, " bytes before it (trailing bytes in the directory)");
    }
  }

  // Reads the record at byte `at`; returns its record_size.
  std::uint64_t read_record(std::uint64_t index, std::uint64_t at) {
    using safetensors_detail::first_invalid_utf8;
    const std::uint64_t left = directory_end_ - at;
    if (left < record_fixed_bytes) {
      fail("directory entry ", index, ": record_size: only ", left,
           " bytes of the directory remain, less than a ", record_fixed_bytes, "-byte record");
    }
    const auto record_bytes = file_.subspan(at);  // reads below stay within record_size
    const auto record_size = load<std::uint32_t>(record_bytes, record_at::record_size);
    if (record_size < record_fixed_bytes) {
      fail("directory entry ", index, ": record_size ", record_size, " is smaller than the ",
           record_fixed_bytes, "-byte fixed part");
    }
    if (record_size > left) {
      fail("directory entry ", index, ": record_size ", record_size,
           " runs past the end of the directory (", left, " bytes left)");
    }
    const auto name_size = load<std::uint32_t>(record_bytes, record_at::name_size);
    if (name_size > record_size - record_fixed_bytes) {
      fail("directory entry ", index, ": name_size ", name_size,
           " runs past the end of its record (record_size ", record_size, ")");
    }
    if (name_size == 0) fail("directory entry ", index, ": name_size is 0 (names are not empty)");
    const auto name_bytes = record_bytes.subspan(record_at::name, name_size);
    if (const auto bad = first_invalid_utf8(name_bytes); bad != std::string_view::npos) {
      fail("directory entry ", index, ": name is not valid UTF-8 (byte ", bad, ")");
    }
    record r;
    r.name.assign(reinterpret_cast<const char*>(name_bytes.data()), name_bytes.size());
    const std::string label = detail::tensor_prefix(r.name);
    if (!names_
             .insert(std::string_view(reinterpret_cast<const char*>(name_bytes.data()),
                                      name_bytes.size()))
             .second) {
      fail(label, "duplicate tensor name (directory entry ", index, ")");
    }

    const auto rank = load<std::uint32_t>(record_bytes, record_at::rank);
    const std::uint64_t extents_room = record_size - record_fixed_bytes - name_size;
    if (rank > extents_room / 8) {
      fail(label, "rank ", rank, " needs ", 8 * std::uint64_t{rank},
           " bytes of extents but its record (record_size ", record_size, ") has ", extents_room,
           " after the name");
    }
    r.shape.reserve(rank);
    for (std::uint32_t axis = 0; axis < rank; ++axis) {
      const auto extent =
          load<std::int64_t>(record_bytes, record_at::name + name_size + 8 * std::size_t{axis});
      if (extent < 0) {
        fail(label, "shape has negative extent ", extent, " on axis ", axis);
      }
      r.shape.push_back(extent);
    }
    const auto kind = load<std::uint8_t>(record_bytes, record_at::kind);
    const auto bits = load<std::uint8_t>(record_bytes, record_at::bits);
    const auto policy = load<std::uint8_t>(record_bytes, record_at::policy);
    const auto grain = load<std::uint8_t>(record_bytes, record_at::granularity);
    const auto axis = load<std::int32_t>(record_bytes, record_at::axis);
    const auto type = load<std::uint8_t>(record_bytes, record_at::dtype);
    r.params_count = load<std::uint64_t>(record_bytes, record_at::params_count);
    r.offset = load<std::uint64_t>(record_bytes, record_at::payload_offset);
    r.size = load<std::uint64_t>(record_bytes, record_at::payload_size);
    r.checksum = load<std::uint64_t>(record_bytes, record_at::payload_checksum);

    if (kind < 1 || kind > 3) {
      fail(label, "kind ", unsigned{kind}, " is unknown (1 packed, 2 float32, 3 raw)");
    }
    r.kind = static_cast<entry_kind>(kind);
    const std::string_view kind_text = kind_name(r.kind);
    // Fields another kind uses must be 0, so every file has one reading.
    const auto require_zero = [&](std::string_view field, auto value) {
      if (value != 0) {
        fail(label, field, " is ", value, " but must be 0 in a ", kind_text, " entry");
      }
    };
    if (r.kind != entry_kind::packed) {
      require_zero("bits", unsigned{bits});
      require_zero("policy", unsigned{policy});
      require_zero("granularity", unsigned{grain});
      require_zero("axis", axis);
      require_zero("params_count", r.params_count);
    }
    if (r.kind != entry_kind::raw) require_zero("dtype", unsigned{type});

    const std::size_t count = with_source([&] { return element_count(r.shape, r.name); });
    if (r.kind == entry_kind::packed) {
      if (bits < min_bits || bits > max_bits) {
        fail(label, "bits ", unsigned{bits}, " is outside ", min_bits, "..", max_bits);
      }
      r.bits = bits;
      r.policy = static_cast<policy_id>(policy);
      if (policy_name(r.policy) == "unknown") {
        fail(label, "policy ", unsigned{policy},
             " is unknown (1 minmax, 2 log, 3 tanh, 4 em, 5 lloyd)");
      }
      if (r.policy == policy_id::log && bits < 2) {
        fail(label, "bits ", unsigned{bits}, " with policy log (log needs bits >= 2)");
      }
      if (grain == 0) {
        if (axis != 0) fail(label, "axis ", axis, " but must be 0 with per-tensor granularity");
        r.grain = per_tensor{};
      } else if (grain == 1) {
        r.grain = per_channel{axis};
      } else {
        fail(label, "granularity ", unsigned{grain}, " is unknown (0 per-tensor, 1 per-channel)");
      }
      const channel_layout layout =
          with_source([&] { return make_channel_layout(r.shape, r.grain, r.name); });
      const auto expected_params = mul(layout.channels, params_per_channel(r.policy, r.bits));
      if (!expected_params || r.params_count != *expected_params) {
        fail(label, "params_count ", r.params_count, " but shape ", to_string(r.shape), " with ",
             layout.channels, " channel(s) of ", policy_name(r.policy), " at ", r.bits,
             " bits needs ",
             expected_params ? std::to_string(*expected_params) : std::string("more than 2^64"));
      }
      const std::uint64_t codes = with_source([&] { return pack::packed_size(count, r.bits); });
      const auto params_bytes = mul(r.params_count, sizeof(float));
      const auto total = params_bytes ? add(*params_bytes, codes) : std::nullopt;
      if (!total || r.size != *total) {
        fail(label, "payload_size ", r.size, " but ", r.params_count, " params (float32) and ",
             count, " codes at ", r.bits, " bits (", codes, " bytes) need ",
             total ? std::to_string(*total) : std::string("more than 2^64"), " bytes");
      }
    } else if (r.kind == entry_kind::float32) {
      const auto needed = mul(count, sizeof(float));
      if (!needed || r.size != *needed) {
        fail(label, "payload_size ", r.size, " but shape ", to_string(r.shape),
             " of float32 needs ", needed ? std::to_string(*needed) : std::string("more than 2^64"),
             " bytes");
      }
    } else {
      r.type = dtype_from_code(type);
      if (!r.type) {
        fail(label, "dtype ", unsigned{type}, " is unknown (codes 1..", dtype_codes.size(), ")");
      }
      const std::size_t needed =
          with_source([&] { return tensor_byte_size(*r.type, r.shape, r.name); });
      if (r.size != needed) {
        fail(label, "payload_size ", r.size, " but shape ", to_string(r.shape), " of ",
             dtype_name(*r.type), " needs ", needed, " bytes");
      }
    }

    if (r.offset % alignment != 0) {
      fail(label, "payload_offset ", r.offset, " is not a multiple of ", alignment);
    }
    if (r.offset < data_offset_) {
      fail(label, "payload_offset ", r.offset, " lies before data_offset ", data_offset_);
    }
    if (r.offset > size_ || r.size > size_ - r.offset) {
      fail(label, "payload_offset ", r.offset, " + payload_size ", r.size,
           " runs past the end of the file (", size_, " bytes): truncated?");
    }
    records_.push_back(std::move(r));
    return record_size;
  }

  void read_metadata() {
    using safetensors_detail::first_invalid_utf8;
    if (metadata_count_ > metadata_size_ / metadata_fixed_bytes) {
      fail("metadata_count ", metadata_count_, " is more than metadata_size ", metadata_size_,
           " bytes can hold (each entry takes at least ", metadata_fixed_bytes, ")");
    }
    std::uint64_t at = directory_end_;
    for (std::uint64_t index = 0; index < metadata_count_; ++index) {
      const std::uint64_t left = metadata_end_ - at;
      if (left < metadata_fixed_bytes) {
        fail("metadata entry ", index, ": key_size/value_size: only ", left,
             " bytes of metadata_size remain");
      }
      const auto key_size = load<std::uint32_t>(file_, at);
      const auto value_size = load<std::uint32_t>(file_, at + 4);
      if (key_size > left - metadata_fixed_bytes) {
        fail("metadata entry ", index, ": key_size ", key_size,
             " runs past the end of the metadata (", left - metadata_fixed_bytes, " bytes left)");
      }
      if (value_size > left - metadata_fixed_bytes - key_size) {
        fail("metadata entry ", index, ": value_size ", value_size,
             " runs past the end of the metadata (", left - metadata_fixed_bytes - key_size,
             " bytes left)");
      }
      const auto key = file_.subspan(at + metadata_fixed_bytes, key_size);
      const auto value = key.data() + key.size();
      const auto value_bytes = std::span<const std::byte>(value, value_size);
      if (first_invalid_utf8(key) != std::string_view::npos ||
          first_invalid_utf8(value_bytes) != std::string_view::npos) {
        fail("metadata entry ", index, ": key or value is not valid UTF-8");
      }
      std::string key_text(reinterpret_cast<const char*>(key.data()), key.size());
      std::string value_text(reinterpret_cast<const char*>(value_bytes.data()), value_size);
      const auto [where, inserted] =
          model_.metadata.emplace(std::move(key_text), std::move(value_text));
      if (!inserted) fail("metadata key '", where->first, "' appears twice (duplicate)");
      at += metadata_fixed_bytes + key_size + value_size;
    }
    if (at != metadata_end_) {
      fail("metadata_size ", metadata_size_, " but the ", metadata_count_, " entries end ",
           metadata_end_ - at, " bytes before it (trailing bytes in the metadata)");
    }
  }

  // In offset order, payloads must not overlap; the bytes between them (alignment padding)
  // must be zero; the file ends where the last payload ends. Then every byte is checked by
  // a checksum or a rule.
  void check_layout() const {
    std::vector<const record*> order;
    order.reserve(records_.size());
    for (const auto& r : records_) order.push_back(&r);
    std::sort(order.begin(), order.end(), [](const record* a, const record* b) {
      return std::tie(a->offset, a->size) < std::tie(b->offset, b->size);
    });
    std::uint64_t cursor = data_offset_;
    const record* previous = nullptr;
    for (const record* r : order) {
      if (r->offset < cursor && previous != nullptr) {
        fail(detail::tensor_prefix(r->name), "payload_offset ", r->offset, " overlaps tensor '",
             previous->name, "' (payload [", previous->offset, ",",
             previous->offset + previous->size, "))");
      }
      check_padding(cursor, r->offset);
      cursor = r->offset + r->size;
      previous = r;
    }
    if (cursor != size_) {
      fail("file is ", size_, " bytes but its last payload ends at byte ", cursor, ": ",
           size_ - cursor, " trailing bytes");
    }
  }

  void check_padding(std::uint64_t begin, std::uint64_t end) const {
    for (std::uint64_t at = begin; at < end; ++at) {
      if (file_[at] != std::byte{0}) {
        fail("padding byte ", at, " (between payloads) is ", std::to_integer<unsigned>(file_[at]),
             ", not 0");
      }
    }
  }

  std::span<const std::byte> payload(const record& r) const {
    return file_.subspan(r.offset, r.size);
  }

  void check_payload_checksum(const record& r) const {
    const std::uint64_t computed = xxh3(payload(r));
    if (computed != r.checksum) {
      fail(detail::tensor_prefix(r.name), "payload_checksum ", hex(r.checksum),
           " does not match its payload (bytes [", r.offset, ",", r.offset + r.size, ") hash to ",
           hex(computed), "): the tensor's data are corrupt");
    }
  }

  static std::vector<float> read_floats(std::span<const std::byte> bytes) {
    std::vector<float> values(bytes.size() / sizeof(float));
    if (!values.empty()) std::memcpy(values.data(), bytes.data(), values.size() * sizeof(float));
    return values;
  }

  qgan_entry decode(record& r) const {
    const auto bytes = payload(r);
    switch (r.kind) {
      case entry_kind::packed: {
        packed_tensor packed;
        packed.shape = std::move(r.shape);
        packed.bits = r.bits;
        packed.policy = r.policy;
        packed.grain = r.grain;
        const std::size_t params_bytes = r.params_count * sizeof(float);
        packed.params = read_floats(bytes.first(params_bytes));
        const auto codes = bytes.subspan(params_bytes);
        packed.codes.resize(codes.size());
        if (!codes.empty()) std::memcpy(packed.codes.data(), codes.data(), codes.size());
        // The canonical layout leaves the last byte's unused high bits 0.
        const std::size_t used_bits = (packed.element_count() * std::size_t(r.bits)) % 8;
        if (used_bits != 0 && (packed.codes.back() >> used_bits) != 0) {
          fail(detail::tensor_prefix(r.name), "codes: the last byte's ", 8 - used_bits,
               " unused high bits are not 0");
        }
        with_source([&] { packed.validate(r.name); });
        return {std::move(r.name), std::move(packed)};
      }
      case entry_kind::float32:
        return {std::move(r.name), float_tensor{std::move(r.shape), read_floats(bytes)}};
      case entry_kind::raw:
        return {std::move(r.name), raw_tensor{*r.type, std::move(r.shape),
                                              std::vector<std::byte>(bytes.begin(), bytes.end())}};
    }
    fail("unreachable: kind");  // read_record refused every other kind
  }

  std::span<const std::byte> file_;
  std::uint64_t size_;
  std::string source_;
  std::uint16_t major_ = 0;
  std::uint16_t minor_ = 0;
  std::uint64_t header_size_ = 0;
  std::uint64_t entry_count_ = 0;
  std::uint64_t directory_size_ = 0;
  std::uint64_t metadata_count_ = 0;
  std::uint64_t metadata_size_ = 0;
  std::uint64_t data_offset_ = 0;
  std::uint64_t directory_end_ = 0;
  std::uint64_t metadata_end_ = 0;
  std::vector<record> records_;
  std::unordered_set<std::string_view> names_;  // views into file_
  qgan_model model_;
};

}  // namespace qgan_file_detail

/// Parses an in-memory image of a .qgan file; source names it in error messages. The
/// result owns copies of everything, so bytes need not outlive it.
inline qgan_model parse_qgan(std::span<const std::byte> bytes, std::string source_name) {
  return qgan_file_detail::parser(bytes, std::move(source_name)).parse();
}

/// Maps the file read-only and parses it; error messages name the path.
inline qgan_model read_qgan(const std::filesystem::path& path) {
  const mapped_file mapping = mapped_file::open(path);
  return parse_qgan(mapping.bytes(), path.string());
}

/// The bytes write_qgan would write. Errors name `name` (the model is checked as by
/// write_qgan: unique non-empty UTF-8 names, consistent tensors, UTF-8 metadata).
inline std::vector<std::byte> serialize_qgan(const qgan_model& model,
                                             const std::string& name = "qgan model") {
  return qgan_file_detail::serialize(model, name);
}

/// Writes the model to path atomically: a temporary file in the same directory is
/// written, fsynced and renamed over path, and removed if anything fails. Throws
/// qgan::error naming path (and the tensor at fault); on failure path is untouched.
inline void write_qgan(const std::filesystem::path& path, const qgan_model& model) {
  const std::string where = path.string();
  if (!path.has_filename()) detail::throw_error(where, ": not a file name");
  const qgan_file_detail::plan planned = qgan_file_detail::make_plan(model, where);
  atomic_file file(path);
  qgan_file_detail::emit(planned, [&](std::span<const std::byte> bytes) { file.write(bytes); });
  file.commit();
}

}  // namespace qgan::io
