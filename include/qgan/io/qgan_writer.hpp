// The .qgan writers. Every payload's size follows from its entry's kind, shape, bits,
// policy, granularity and dtype, so the whole layout (header, directory, metadata, every
// payload offset) is fixed before the first payload byte exists: write_qgan and
// serialize_qgan store a model held in memory, and qgan_stream_writer stores one whose
// tensors arrive one at a time (a model quantized tensor by tensor), holding only the
// layout, never a payload. All three write the same bytes for the same model, and refuse
// what the reader (qgan_reader.hpp) would refuse, naming the file, the tensor and the field.
//
//   write_qgan(path, model)        atomic (temporary file in the same directory, fsync,
//                                  rename; removed on failure); errors name the path
//   serialize_qgan(model) -> std::vector<std::byte>   the same bytes, in memory
//   struct qgan_declaration { name, kind, shape, bits, policy, grain, type }
//   declare(entry) -> qgan_declaration                what write_qgan declares for it
//   class qgan_stream_writer
//     qgan_stream_writer(path, declarations, metadata = {})   lays out, creates the temporary
//     write(index | name, packed_tensor | span<const float> | span<const std::byte> |
//           qgan_tensor)           the next declared entry's payload, checked against it
//     commit()                     directory checksums, header checksum, fsync, rename;
//                                  destroyed uncommitted: the temporary goes, path untouched
#pragma once

#include "qgan/core/isa_namespace.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

#include "qgan/core/error.hpp"
#include "qgan/core/shape.hpp"
#include "qgan/io/atomic_write.hpp"
#include "qgan/io/dtype.hpp"
#include "qgan/io/qgan_format.hpp"
#include "qgan/io/qgan_model.hpp"
#include "qgan/io/utf8.hpp"
#include "qgan/pack/packed_tensor.hpp"
#include "qgan/quant/granularity.hpp"
#include "qgan/quant/policy_registry.hpp"

namespace qgan::io {

/// An entry as the stream writer needs it before its payload exists. Fields another kind
/// uses are ignored (a float32 entry's bits are written as 0 whatever they hold).
struct qgan_declaration {
  std::string name;
  entry_kind kind = entry_kind::float32;
  shape_t shape{};
  int bits = 0;                      ///< packed: 1..8
  policy_id policy = policy_id::em;  ///< packed
  granularity grain = per_tensor{};  ///< packed
  dtype type = dtype::u8;            ///< raw
};

QGAN_BEGIN_FUNCTIONS

inline qgan_declaration declare(const qgan_entry& entry) {
  qgan_declaration d;
  d.name = entry.name;
  d.kind = kind_of(entry.tensor);
  if (const auto* packed = std::get_if<packed_tensor>(&entry.tensor)) {
    d.shape = packed->shape;
    d.bits = packed->bits;
    d.policy = packed->policy;
    d.grain = packed->grain;
  } else if (const auto* floats = std::get_if<float_tensor>(&entry.tensor)) {
    d.shape = floats->shape;
  } else {
    const auto& raw = std::get<raw_tensor>(entry.tensor);
    d.shape = raw.shape;
    d.type = raw.type;
  }
  return d;
}

QGAN_END_FUNCTIONS

namespace qgan_file_detail {

/// Test hooks: files a newer 1.x writer could produce (a later minor version, a longer
/// header, longer directory records and a reserved gap before the data, all zero-filled),
/// and packed tensors written unchecked, to show the reader refuses what validate refuses.
struct write_layout {
  std::uint16_t minor = qgan_format_minor;
  std::uint32_t header_extra = 0;
  std::uint32_t record_extra = 0;
  std::uint32_t gap_extra = 0;
  bool check_packed = true;
};

// One entry laid out: its sizes and where its record and payload go.
struct planned_entry {
  const qgan_declaration* decl = nullptr;
  std::uint64_t params_count = 0;
  std::uint64_t payload_size = 0;
  std::uint64_t offset = 0;  ///< payload_offset
  std::uint64_t record = 0;  ///< where its directory record starts
};

struct plan {
  std::vector<std::byte> head;  ///< bytes [0, data_offset); payload and header checksums 0
  std::vector<planned_entry> entries;
  std::uint64_t file_size = 0;
};

// The payload's bytes as the file holds them: packed, the params as float32 then the codes.
struct payload_parts {
  std::span<const std::byte> first;
  std::span<const std::byte> second;
};

QGAN_BEGIN_FUNCTIONS

// Runs fn; a qgan::error it throws gets `where` in front.
template <class Fn>
auto on_behalf(const std::string& where, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const error& e) {
    detail::throw_error(where, ": ", e.what());
  }
}

// The checks the reader applies to a record, applied to its declaration: sizes follow.
inline planned_entry size_entry(const qgan_declaration& d) {
  planned_entry p;
  p.decl = &d;
  switch (d.kind) {
    case entry_kind::packed: {
      const detail::packed_sizes sizes =
          detail::check_packed_fields(d.shape, d.bits, d.policy, d.grain, d.name);
      p.params_count = sizes.params;
      p.payload_size = sizes.payload_bytes;
      return p;
    }
    case entry_kind::float32: {
      const auto bytes = mul(element_count(d.shape, d.name), sizeof(float));
      if (!bytes) {
        detail::throw_error(detail::tensor_prefix(d.name), "shape ", to_string(d.shape),
                            " of float32 needs more than 2^64 bytes");
      }
      p.payload_size = *bytes;
      return p;
    }
    case entry_kind::raw:
      p.payload_size = tensor_byte_size(d.type, d.shape, d.name);  // refuses a stray dtype
      return p;
  }
  detail::throw_error(detail::tensor_prefix(d.name), "kind ", static_cast<unsigned>(d.kind),
                      " is unknown (1 packed, 2 float32, 3 raw)");
}

inline std::string describe_packed(const shape_t& shape, int bits, policy_id policy,
                                   const granularity& grain) {
  std::string text = "shape " + to_string(shape) + ", " + std::to_string(bits) + " bits, ";
  text += policy_name(policy);
  if (const auto* channel = std::get_if<per_channel>(&grain)) {
    text += ", per-channel axis " + std::to_string(channel->axis);
  } else {
    text += ", per-tensor";
  }
  return text;
}

// A payload against its declaration: what the reader would refuse in the payload, and any
// field the tensor states differently from the record already laid out.
inline void check_packed(const qgan_declaration& d, const packed_tensor& packed) {
  if (packed.shape != d.shape || packed.bits != d.bits || packed.policy != d.policy ||
      packed.grain != d.grain) {
    detail::throw_error(detail::tensor_prefix(d.name), "declared as ",
                        describe_packed(d.shape, d.bits, d.policy, d.grain), " but given ",
                        describe_packed(packed.shape, packed.bits, packed.policy, packed.grain));
  }
  packed.validate(d.name);
}

inline void check_contents(const qgan_declaration& d, const qgan_tensor& tensor) {
  const std::string label = detail::tensor_prefix(d.name);
  if (kind_of(tensor) != d.kind) {
    detail::throw_error(label, "declared as a ", kind_name(d.kind), " entry but given a ",
                        kind_name(kind_of(tensor)), " tensor");
  }
  if (const auto* packed = std::get_if<packed_tensor>(&tensor)) {
    check_packed(d, *packed);
  } else if (const auto* floats = std::get_if<float_tensor>(&tensor)) {
    if (floats->shape != d.shape) {
      detail::throw_error(label, "declared with shape ", to_string(d.shape), " but given shape ",
                          to_string(floats->shape));
    }
    const std::size_t count = element_count(floats->shape, d.name);
    if (count != floats->values.size()) {
      detail::throw_error(label, "shape ", to_string(floats->shape), " holds ", count,
                          " elements but ", floats->values.size(), " values were given");
    }
  } else {
    const auto& raw = std::get<raw_tensor>(tensor);
    if (raw.type != d.type || raw.shape != d.shape) {
      detail::throw_error(label, "declared as ", dtype_name(d.type), " ", to_string(d.shape),
                          " but given ", dtype_name(raw.type), " ", to_string(raw.shape));
    }
    const std::size_t size = tensor_byte_size(raw.type, raw.shape, d.name);
    if (size != raw.bytes.size()) {
      detail::throw_error(label, "shape ", to_string(raw.shape), " of ", dtype_name(raw.type),
                          " needs ", size, " bytes but ", raw.bytes.size(), " were given");
    }
  }
}

inline payload_parts parts_of(const qgan_tensor& tensor) noexcept {
  if (const auto* packed = std::get_if<packed_tensor>(&tensor)) {
    return {std::as_bytes(std::span(packed->params)), std::as_bytes(std::span(packed->codes))};
  }
  if (const auto* floats = std::get_if<float_tensor>(&tensor)) {
    return {std::as_bytes(std::span(floats->values)), {}};
  }
  return {std::get<raw_tensor>(tensor).bytes, {}};
}

// Lays out declarations: size_one(index) returns entry index's planned_entry (sizes), names
// are checked here, then offsets, the directory and the metadata fill the head.
template <class SizeOne>
plan make_plan(const std::vector<qgan_declaration>& decls, const qgan_metadata& metadata,
               const std::string& where, const write_layout& layout, SizeOne&& size_one) {
  constexpr std::uint64_t u32_max = std::numeric_limits<std::uint32_t>::max();
  plan result;
  result.entries.reserve(decls.size());
  std::unordered_set<std::string_view> names;
  std::uint64_t directory_size = 0;
  for (std::size_t index = 0; index < decls.size(); ++index) {
    const qgan_declaration& d = decls[index];
    const std::string label = detail::tensor_prefix(d.name);
    if (d.name.empty()) detail::throw_error(where, ": a tensor has an empty name");
    if (first_invalid_utf8(d.name) != std::string_view::npos) {
      detail::throw_error(where, ": ", label, "the name is not UTF-8");
    }
    if (!names.insert(d.name).second) {
      detail::throw_error(where, ": ", label, "duplicate tensor name");
    }
    result.entries.push_back(on_behalf(where, [&] { return size_one(index); }));
    const std::uint64_t record_size =
        record_bytes(d.name.size(), d.shape.size(), layout.record_extra);
    if (d.name.size() > u32_max || record_size > u32_max) {
      detail::throw_error(where, ": ", label, "the name and shape take ", record_size,
                          " bytes, beyond a record's limit of ", u32_max);
    }
    directory_size += record_size;
  }

  std::uint64_t metadata_size = 0;
  for (const auto& [key, value] : metadata) {
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
  std::uint64_t cursor = data_offset;  // payloads in declaration order, each 64-byte aligned
  for (auto& planned : result.entries) {
    const auto padded = add(cursor, alignment - 1);
    const auto end = padded ? add(*padded / alignment * alignment, planned.payload_size)
                            : std::nullopt;
    if (!end) {
      detail::throw_error(where, ": ", detail::tensor_prefix(planned.decl->name),
                          "the file would pass 2^64 bytes");
    }
    planned.offset = *end - planned.payload_size;
    cursor = *end;
  }
  result.file_size = cursor;

  result.head.assign(data_offset, std::byte{0});
  std::span<std::byte> head(result.head);
  std::copy(magic.begin(), magic.end(), head.begin());
  store<std::uint16_t>(head, header_at::version_major, qgan_format_major);
  store<std::uint16_t>(head, header_at::version_minor, layout.minor);
  store(head, header_at::header_size, static_cast<std::uint32_t>(header_size));
  store<std::uint64_t>(head, header_at::entry_count, result.entries.size());
  store(head, header_at::directory_size, directory_size);
  store<std::uint64_t>(head, header_at::metadata_count, metadata.size());
  store(head, header_at::metadata_size, metadata_size);
  store(head, header_at::data_offset, data_offset);

  std::size_t at = header_size;
  for (auto& planned : result.entries) {
    const qgan_declaration& d = *planned.decl;
    planned.record = at;
    const std::size_t record_size = record_bytes(d.name.size(), d.shape.size(), layout.record_extra);
    store(head, at + record_at::record_size, static_cast<std::uint32_t>(record_size));
    store(head, at + record_at::kind, static_cast<std::uint8_t>(d.kind));
    if (d.kind == entry_kind::packed) {
      store(head, at + record_at::bits, static_cast<std::uint8_t>(d.bits));
      store(head, at + record_at::policy, static_cast<std::uint8_t>(d.policy));
      if (const auto* channel = std::get_if<per_channel>(&d.grain)) {
        store(head, at + record_at::granularity, per_channel_code);
        store<std::int32_t>(head, at + record_at::axis, channel->axis);
      }
    }
    if (d.kind == entry_kind::raw) store(head, at + record_at::dtype, dtype_code(d.type));
    store(head, at + record_at::name_size, static_cast<std::uint32_t>(d.name.size()));
    store(head, at + record_at::rank, static_cast<std::uint32_t>(d.shape.size()));
    store(head, at + record_at::params_count, planned.params_count);
    store(head, at + record_at::payload_offset, planned.offset);
    store(head, at + record_at::payload_size, planned.payload_size);
    const auto name_bytes = std::as_bytes(std::span(d.name.data(), d.name.size()));
    std::copy(name_bytes.begin(), name_bytes.end(),
              head.begin() + static_cast<std::ptrdiff_t>(at + record_at::name));
    std::size_t extent_at = at + record_at::name + d.name.size();
    for (const std::int64_t extent : d.shape) {
      store(head, extent_at, extent);
      extent_at += 8;
    }
    at += record_size;
  }
  for (const auto& [key, value] : metadata) {
    store(head, at, static_cast<std::uint32_t>(key.size()));
    store(head, at + 4, static_cast<std::uint32_t>(value.size()));
    at += metadata_fixed_bytes;
    for (const std::string* text : {&key, &value}) {
      const auto bytes = std::as_bytes(std::span(text->data(), text->size()));
      std::copy(bytes.begin(), bytes.end(), head.begin() + static_cast<std::ptrdiff_t>(at));
      at += text->size();
    }
  }
  return result;
}

// A model's plan: every tensor declared by what it holds and checked against that. With
// layout.check_packed off, packed tensors are laid out as they are, for tests only.
inline plan make_model_plan(const qgan_model& model, const std::vector<qgan_declaration>& decls,
                            const std::string& where, const write_layout& layout = {}) {
  return make_plan(decls, model.metadata, where, layout, [&](std::size_t index) {
    const qgan_tensor& tensor = model.tensors[index].tensor;
    const auto* packed = std::get_if<packed_tensor>(&tensor);
    if (packed != nullptr && !layout.check_packed) {
      planned_entry p;
      p.decl = &decls[index];
      p.params_count = packed->params.size();
      p.payload_size = packed->params.size() * sizeof(float) + packed->codes.size();
      return p;
    }
    planned_entry p = size_entry(decls[index]);
    check_contents(decls[index], tensor);
    return p;
  });
}

inline std::vector<qgan_declaration> declare_all(const qgan_model& model) {
  std::vector<qgan_declaration> decls;
  decls.reserve(model.tensors.size());
  for (const auto& entry : model.tensors) decls.push_back(declare(entry));
  return decls;
}

inline std::vector<std::byte> serialize(const qgan_model& model, const std::string& where,
                                        const write_layout& layout = {}) {
  const std::vector<qgan_declaration> decls = declare_all(model);
  const plan planned = make_model_plan(model, decls, where, layout);
  std::vector<std::byte> out;
  out.reserve(planned.file_size);
  out = planned.head;
  for (std::size_t index = 0; index < planned.entries.size(); ++index) {
    const planned_entry& entry = planned.entries[index];
    out.resize(entry.offset);  // zero padding up to the aligned offset
    const payload_parts parts = parts_of(model.tensors[index].tensor);
    out.insert(out.end(), parts.first.begin(), parts.first.end());
    out.insert(out.end(), parts.second.begin(), parts.second.end());
    store(std::span(out), entry.record + record_at::payload_checksum,
          xxh3(parts.first, parts.second));
  }
  const std::span<std::byte> head = std::span(out).first(planned.head.size());
  store(head, header_at::header_checksum, header_checksum(head));
  return out;
}

QGAN_END_FUNCTIONS
}  // namespace qgan_file_detail

/// Writes a .qgan file whose entries arrive one at a time, in declared order, without
/// holding more than the file's layout: payload sizes follow from the declarations, so
/// header, directory and metadata are laid out at construction and every payload goes
/// straight to a temporary file in the target's directory. commit() fills in the
/// checksums, fsyncs and renames; if the writer is destroyed first, the temporary file is
/// removed and the target is untouched. The bytes are those write_qgan writes for the same
/// model. Every error is a qgan::error naming the path and the tensor; a write refused for
/// its contents leaves the writer as it was, so the caller may write a corrected payload.
class qgan_stream_writer {
 public:
  qgan_stream_writer(const std::filesystem::path& path, std::vector<qgan_declaration> entries,
                     const qgan_metadata& metadata = {})
      : where_(path.string()),
        declarations_(std::move(entries)),
        plan_(make_plan(path, where_, declarations_, metadata)),
        file_(path) {
    // The head goes in now as a placeholder (checksums 0) and again at commit, complete.
    file_.write(plan_.head);
    written_ = plan_.head.size();
  }
  qgan_stream_writer(const qgan_stream_writer&) = delete;
  qgan_stream_writer& operator=(const qgan_stream_writer&) = delete;
  ~qgan_stream_writer() = default;

  [[nodiscard]] std::size_t size() const noexcept { return declarations_.size(); }
  /// Entries written so far: the index the next write must name.
  [[nodiscard]] std::size_t written() const noexcept { return next_; }
  /// The size of the finished file.
  [[nodiscard]] std::uint64_t file_size() const noexcept { return plan_.file_size; }
  [[nodiscard]] const qgan_declaration& declaration(std::size_t index) const {
    return declarations_.at(index);
  }

  [[nodiscard]] std::size_t index_of(std::string_view name) const {
    for (std::size_t index = 0; index < declarations_.size(); ++index) {
      if (declarations_[index].name == name) return index;
    }
    detail::throw_error(where_, ": ", detail::tensor_prefix(name), "was not declared");
  }

  void write(std::size_t index, const packed_tensor& tensor) {
    const qgan_declaration& d = expect(index, entry_kind::packed);
    qgan_file_detail::on_behalf(where_, [&] { qgan_file_detail::check_packed(d, tensor); });
    emit(index, std::as_bytes(std::span(tensor.params)), std::as_bytes(std::span(tensor.codes)));
  }

  void write(std::size_t index, std::span<const float> values) {
    const qgan_declaration& d = expect(index, entry_kind::float32);
    const std::uint64_t count = plan_.entries[index].payload_size / sizeof(float);
    if (values.size() != count) {
      detail::throw_error(where_, ": ", detail::tensor_prefix(d.name), "shape ",
                          to_string(d.shape), " holds ", count, " elements but ", values.size(),
                          " values were given");
    }
    emit(index, std::as_bytes(values), {});
  }

  /// Float32 or raw payloads as the file stores them (little-endian). Packed payloads go
  /// through write(index, packed_tensor), which validates them.
  void write(std::size_t index, std::span<const std::byte> bytes) {
    const qgan_declaration& d = expect(index, entry_kind::raw, entry_kind::float32);
    const std::uint64_t size = plan_.entries[index].payload_size;
    if (bytes.size() != size) {
      detail::throw_error(where_, ": ", detail::tensor_prefix(d.name), "shape ",
                          to_string(d.shape), " of ",
                          d.kind == entry_kind::raw ? dtype_name(d.type) : "float32", " needs ",
                          size, " bytes but ", bytes.size(), " were given");
    }
    emit(index, bytes, {});
  }

  void write(std::size_t index, const qgan_tensor& tensor) {
    const qgan_declaration& d = expect(index, kind_of(tensor));
    qgan_file_detail::on_behalf(where_, [&] { qgan_file_detail::check_contents(d, tensor); });
    const auto parts = qgan_file_detail::parts_of(tensor);
    emit(index, parts.first, parts.second);
  }

  /// By name: still in declared order. (A template on the name, so that an index 0 is
  /// never taken for a null string.)
  template <class Name, class Payload>
    requires(!std::is_arithmetic_v<Name> && std::is_convertible_v<const Name&, std::string_view>)
  void write(const Name& name, const Payload& payload) {
    write(index_of(name), payload);
  }

  void commit() {
    check_usable();
    if (next_ != declarations_.size()) {
      detail::throw_error(where_, ": ", detail::tensor_prefix(declarations_[next_].name),
                          "not written before commit (", next_, " of ", declarations_.size(),
                          " entries written)");
    }
    using namespace qgan_file_detail;
    const std::span<std::byte> head(plan_.head);
    store(head, header_at::header_checksum, header_checksum(head));
    failing([&] {
      rewrite_head();
      file_.commit();
    });
    committed_ = true;
  }

 private:
  static qgan_file_detail::plan make_plan(const std::filesystem::path& path,
                                          const std::string& where,
                                          const std::vector<qgan_declaration>& decls,
                                          const qgan_metadata& metadata) {
    if (path.empty()) detail::throw_error("output path is empty");
    if (!path.has_filename()) detail::throw_error(where, ": not a file name");
    return qgan_file_detail::make_plan(decls, metadata, where, {}, [&](std::size_t index) {
      return qgan_file_detail::size_entry(decls[index]);
    });
  }

  void check_usable() const {
    if (committed_) detail::throw_error(where_, ": the file is already committed");
    if (broken_) {
      detail::throw_error(where_, ": an earlier write failed; the file cannot be completed");
    }
  }

  const qgan_declaration& expect(std::size_t index, entry_kind kind,
                                 std::optional<entry_kind> or_kind = std::nullopt) const {
    check_usable();
    if (index >= declarations_.size()) {
      detail::throw_error(where_, ": entry index ", index, " but ", declarations_.size(),
                          " entries were declared");
    }
    const qgan_declaration& d = declarations_[index];
    if (index != next_) {
      detail::throw_error(where_, ": ", detail::tensor_prefix(d.name), "written out of order: ",
                          next_ < declarations_.size()
                              ? "the next entry is " + std::to_string(next_) + " ('" +
                                    declarations_[next_].name + "')"
                              : std::string("every entry is written"));
    }
    if (d.kind != kind && d.kind != or_kind) {
      detail::throw_error(where_, ": ", detail::tensor_prefix(d.name), "declared as a ",
                          kind_name(d.kind), " entry but given ", kind_name(kind), " data");
    }
    return d;
  }

  // An I/O failure leaves a partial payload behind: the file can only be abandoned.
  template <class Fn>
  void failing(Fn&& fn) {
    try {
      fn();
    } catch (...) {
      broken_ = true;
      throw;
    }
  }

  void emit(std::size_t index, std::span<const std::byte> first,
            std::span<const std::byte> second) {
    static constexpr std::array<std::byte, qgan_file_detail::alignment> zeros{};
    const qgan_file_detail::planned_entry& entry = plan_.entries[index];
    failing([&] {
      while (written_ < entry.offset) {
        const auto pad = std::min<std::uint64_t>(entry.offset - written_, zeros.size());
        file_.write(std::span<const std::byte>(zeros.data(), pad));
        written_ += pad;
      }
      file_.write(first);
      file_.write(second);
    });
    written_ += first.size() + second.size();
    qgan_file_detail::store(std::span(plan_.head),
                            entry.record + qgan_file_detail::record_at::payload_checksum,
                            qgan_file_detail::xxh3(first, second));
    ++next_;
  }

  // The head, complete only now, goes back over its placeholder.
  void rewrite_head() { file_.write_at(0, plan_.head); }

  std::string where_;
  std::vector<qgan_declaration> declarations_;
  qgan_file_detail::plan plan_;
  atomic_file file_;
  std::size_t next_ = 0;
  std::uint64_t written_ = 0;
  bool broken_ = false;
  bool committed_ = false;
};

QGAN_BEGIN_FUNCTIONS

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
  std::vector<qgan_declaration> decls = qgan_file_detail::declare_all(model);
  // Every tensor is checked before the temporary file exists.
  (void)qgan_file_detail::make_model_plan(model, decls, where);
  qgan_stream_writer out(path, std::move(decls), model.metadata);
  for (std::size_t index = 0; index < model.tensors.size(); ++index) {
    out.write(index, model.tensors[index].tensor);
  }
  out.commit();
}

QGAN_END_FUNCTIONS
}  // namespace qgan::io
