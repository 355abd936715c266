// The .qgan reader. Files come from strangers: it checks every count, offset and size
// against the file with overflow-safe arithmetic before it uses one, verifies the XXH3
// checksums over the header, directory and metadata and over each payload, and refuses
// anything else with a qgan::error naming the file, the tensor and the field, e.g.
// "gen.qgan: tensor 'gen.0.weight': params_count 6 but shape [4,2,2,2] with 4 channel(s) of
// em at 2 bits needs 8". The rules, in the order they are checked, are those of
// docs/qgan-format.md; packed tensors are held to packed_tensor::validate, the writer's own
// rule, so a file the writer can write is one the reader reads.
//
//   read_qgan(path) -> qgan_model  maps the file (mapped_file) and parses it
//   parse_qgan(bytes, source_name) -> qgan_model      the in-memory reader; copies what it
//                                  keeps, so bytes may go away afterwards
// Reading accepts any 1.x file (a newer minor only adds what older readers may skip) and
// refuses a newer major with a message saying so.
#pragma once

#include "qgan/core/isa_namespace.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

#include "qgan/core/error.hpp"
#include "qgan/core/shape.hpp"
#include "qgan/io/dtype.hpp"
#include "qgan/io/mapped_file.hpp"
#include "qgan/io/qgan_format.hpp"
#include "qgan/io/qgan_model.hpp"
#include "qgan/io/utf8.hpp"
#include "qgan/pack/packed_tensor.hpp"
#include "qgan/quant/granularity.hpp"
#include "qgan/quant/policy_registry.hpp"

namespace qgan::io {

namespace qgan_file_detail {

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
      if (grain == per_tensor_code) {
        if (axis != 0) fail(label, "axis ", axis, " but must be 0 with per-tensor granularity");
        r.grain = per_tensor{};
      } else if (grain == per_channel_code) {
        r.grain = per_channel{axis};
      } else {
        fail(label, "granularity ", unsigned{grain}, " is unknown (0 per-tensor, 1 per-channel)");
      }
      r.bits = bits;
      r.policy = static_cast<policy_id>(policy);
      // The rules packed_tensor::validate applies to these fields, checked before any
      // payload is touched.
      const detail::packed_sizes sizes = with_source(
          [&] { return detail::check_packed_fields(r.shape, r.bits, r.policy, r.grain, r.name); });
      if (r.params_count != sizes.params) {
        fail(label, "params_count ", r.params_count, " but shape ", to_string(r.shape), " with ",
             sizes.channels, " channel(s) of ", policy_name(r.policy), " at ", r.bits,
             " bits needs ", sizes.params);
      }
      if (r.size != sizes.payload_bytes) {
        fail(label, "payload_size ", r.size, " but ", r.params_count, " params (float32) and ",
             count, " codes at ", r.bits, " bits (", sizes.code_bytes, " bytes) need ",
             sizes.payload_bytes, " bytes");
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

QGAN_BEGIN_FUNCTIONS

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

QGAN_END_FUNCTIONS

}  // namespace qgan::io
