// The JSON header of a safetensors file, read in one pass over nlohmann's SAX events
// straight into tensor entries and metadata (qgan/io/safetensors.hpp holds the rest of the
// format). Headers come from strangers and may be 100 MB, so the reader builds no DOM:
// nlohmann's DOM costs about 60 bytes per header byte on nested input, and its callback
// parser rescans the whole root object after every entry (100k tensors took 148 s).
//
// Bounds, for a header of B bytes: time linear in B (times a log factor for the name and
// key lookups); nesting deeper than the format's 3 levels (the root object; a tensor entry
// or __metadata__; a shape or data_offsets array) refused where the parser reaches it,
// naming the byte; memory is what is kept (names, extents, metadata, and about 100 to 250
// bytes of std::map and std::vector overhead per tensor or metadata key) plus twice the
// longest string token: about 10 B at most (peak RSS at B = 100 MB, the mapped file
// included), reached by a header of tiny metadata entries. A value the reader refuses is
// kept only as far as its error message prints it (value_sketch).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <sstream>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "qgan/core/error.hpp"
#include "qgan/core/shape.hpp"
#include "qgan/io/dtype.hpp"
#include "qgan/io/utf8.hpp"

namespace qgan::io {

using safetensors_metadata = std::map<std::string, std::string, std::less<>>;

namespace safetensors_detail {

/// The root object, a tensor entry or __metadata__, a shape or data_offsets array.
inline constexpr std::size_t max_header_depth = 3;

// "tensor 'x': ", quoting even the empty name, which the format allows.
inline std::string tensor_label(std::string_view name) {
  std::string label = "tensor '";
  label.append(name);
  label += "': ";
  return label;
}

// Built by appending: GCC 12 reports a false -Wrestrict for "literal" + std::string&&.
inline std::string offsets_text(std::uint64_t begin, std::uint64_t end) {
  std::string text = "[";
  text += std::to_string(begin);
  text += ",";
  text += std::to_string(end);
  text += "]";
  return text;
}

/// Elements describe() prints of an array or object; beyond it, only the count.
inline constexpr std::size_t max_described_elements = 8;
/// Characters describe() prints of one value.
inline constexpr std::size_t max_described_chars = 48;
/// Bytes kept of a string that is only described: more than describe() prints even when
/// every byte is escaped no shorter, so a cut string reads the same as the whole one.
inline constexpr std::size_t max_sketched_chars = 64;
static_assert(max_sketched_chars > max_described_chars);

// A JSON value cut down to what an error message prints of it: a primitive (a string cut to
// max_sketched_chars bytes), or an array or object with its first max_described_elements
// primitive elements and the count of all of them. However large the value is in the
// header, this is all the reader keeps of it.
struct value_sketch {
  nlohmann::json head;
  std::size_t size = 0;  ///< elements of an array or object
  bool flat = true;      ///< every element primitive
  bool cut = false;      ///< head is a string cut short
};

inline value_sketch sketch_of_string(std::string_view text) {
  const bool cut = text.size() > max_sketched_chars;
  return {nlohmann::json(std::string(cut ? text.substr(0, max_sketched_chars) : text)), 0, true,
          cut};
}

// The value as it appears in the file, cut short: messages stay readable even when a
// hostile header puts megabytes where a number belongs.
inline std::string describe(const value_sketch& value) {
  if (value.head.is_structured() && !(value.flat && value.size <= max_described_elements)) {
    std::string summary = value.head.is_array() ? "an array of " : "an object of ";
    summary += std::to_string(value.size);
    summary += value.head.is_array() ? " element" : " key";
    if (value.size != 1) summary += "s";
    return summary;
  }
  // A cut string may end inside a UTF-8 sequence; replace marks it past what is printed.
  std::string text = value.head.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (text.size() > max_described_chars) {
    text.resize(max_described_chars - 3);
    text += "...";
  }
  return text;
}

// A non-negative JSON integer, or nullopt. nlohmann reads "-0" as a signed 0.
inline std::optional<std::uint64_t> as_count(const nlohmann::json& value) {
  if (value.is_number_unsigned()) return value.get<std::uint64_t>();
  if (value.is_number_integer() && value.get<std::int64_t>() == 0) return 0;
  return std::nullopt;
}

// Offset of the bracket that opens level depth + 1, found by a second pass over text that
// the parser accepted up to there: the SAX interface reports no positions.
inline std::size_t nesting_offset(std::string_view text, std::size_t depth) {
  bool in_string = false;
  bool escaped = false;
  std::size_t open = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++open > depth) return i;
    } else if (c == '}' || c == ']') {
      --open;
    }
  }
  return text.size();
}

// One tensor as the header declares it, checked on its own (the layout of all of them
// together is the caller's to check).
struct header_entry {
  std::string name;
  dtype type = dtype::f32;
  shape_t shape;
  std::uint64_t begin = 0;
  std::uint64_t end = 0;
};

struct parsed_header {
  std::vector<header_entry> entries;                       ///< in header order
  std::map<std::string, std::size_t, std::less<>> index;  ///< name -> position in entries
  safetensors_metadata metadata;
};

// nlohmann::json::sax_parse's handler: a stack of at most max_header_depth frames, one per
// open array or object, each knowing what its values are for. Broken JSON, a duplicate key
// and nesting too deep throw at once; a value that breaks the format's rules is reported
// once the whole header has parsed as JSON (first in header order), so a header cut short
// says so rather than naming the entry it cut.
class header_reader {
 public:
  using json = nlohmann::json;

  header_reader(std::string_view text, std::uint64_t data_size, std::string_view source)
      : text_(text), data_size_(data_size), source_(source) {}

  // The entries and metadata, or the first broken rule the parse deferred.
  [[nodiscard]] parsed_header take() && {
    if (!deferred_.empty()) throw error(deferred_);
    return std::move(result_);
  }

  bool null() { return primitive({nullptr}); }
  bool boolean(bool value) { return primitive({json(value)}); }
  bool number_integer(json::number_integer_t value) { return primitive({json(value)}); }
  bool number_unsigned(json::number_unsigned_t value) { return primitive({json(value)}); }
  bool number_float(json::number_float_t value, const json::string_t& /*text*/) {
    return primitive({json(value)});
  }
  bool string(json::string_t& value) {
    if (!frames_.empty() && frames_.back().kind == frame_kind::metadata) {
      // nlohmann lets a handler move the token it is given.
      metadata_slot_->second = std::move(value);
      return true;
    }
    return primitive(sketch_of_string(value));
  }
  bool binary(json::binary_t& /*value*/) { return primitive({json::binary({})}); }

  bool start_object(std::size_t /*elements*/) { return open(true); }
  bool start_array(std::size_t /*elements*/) { return open(false); }
  bool end_object() { return close(); }
  bool end_array() { return close(); }

  bool key(json::string_t& name) {
    frame& top = frames_.back();
    switch (top.kind) {
      case frame_kind::root:
        if (name == "__metadata__") {
          if (seen_metadata_) fail("header has '__metadata__' twice");
          seen_metadata_ = true;
        } else if (!result_.index.try_emplace(name, result_.entries.size()).second) {
          fail(tensor_label(name), "duplicate tensor name");
        }
        top.key = std::move(name);
        break;
      case frame_kind::entry: {
        field_ = field_of(name);
        if (field_ == field::none) {
          defer(tensor_label(entry_name()), "unknown field '", name,
                "' (a tensor has exactly dtype, shape and data_offsets)");
          unknown_field_ = std::move(name);
          break;
        }
        const unsigned bit = 1u << static_cast<unsigned>(field_);
        if ((pending_.seen & bit) != 0) {
          fail(tensor_label(entry_name()), "duplicate field '", name, "'");
        }
        pending_.seen |= bit;
        break;
      }
      case frame_kind::metadata: {
        // Inserted now, so a duplicate is caught however its first value turns out.
        const auto [slot, inserted] = result_.metadata.try_emplace(std::move(name));
        if (!inserted) fail("__metadata__: duplicate key '", slot->first, "'");
        metadata_slot_ = slot;
        break;
      }
      case frame_kind::sketch:
        top.key = name.substr(0, max_sketched_chars);
        break;
      case frame_kind::shape:
      case frame_kind::ignored:
        break;
    }
    return true;
  }

  bool parse_error(std::size_t /*position*/, const std::string& /*last_token*/,
                   const json::exception& e) {
    fail("header is not valid JSON: ", e.what());
  }

 private:
  enum class frame_kind {
    root,      ///< the header object: keys are tensor names and __metadata__
    entry,     ///< a tensor's object: dtype, shape, data_offsets
    metadata,  ///< __metadata__: keys to strings
    shape,     ///< a shape array: extents
    sketch,    ///< a value kept only to describe it (value_sketch)
    ignored,   ///< a container inside a sketch: counted there, its contents not kept
  };
  struct frame {
    frame_kind kind;
    std::string key;  ///< the last key read in this object (root, sketch)
  };
  enum class field : unsigned { dtype, shape, data_offsets, none };
  static constexpr std::string_view field_names[] = {"dtype", "shape", "data_offsets"};

  static field field_of(std::string_view name) {
    for (unsigned i = 0; i < 3; ++i) {
      if (field_names[i] == name) return static_cast<field>(i);
    }
    return field::none;
  }

  // The entry being read; its checks run when its object closes, in the order they always
  // ran: missing fields, dtype, shape, data_offsets, size.
  struct pending_entry {
    unsigned seen = 0;  ///< a bit per field
    value_sketch type;
    value_sketch offsets;
    value_sketch shape;      ///< when the shape is not an array
    bool shape_is_array = false;
    std::size_t axes = 0;
    shape_t extents;
    std::string shape_problem;  ///< the first bad extent's message
  };

  template <class... Parts>
  [[noreturn]] void fail(const Parts&... parts) const {
    detail::throw_error(source_, ": ", parts...);
  }

  // Keeps the first message; a failed header still parses to its end (see the class note).
  template <class... Parts>
  void defer(const Parts&... parts) {
    if (!deferred_.empty()) return;
    std::ostringstream message;
    ((message << source_ << ": ") << ... << parts);
    deferred_ = message.str();
  }

  [[nodiscard]] const std::string& entry_name() const { return frames_.front().key; }
  [[nodiscard]] bool in_metadata() const { return frames_.front().key == "__metadata__"; }

  void not_an_object(const value_sketch& value) {
    if (in_metadata()) {
      return defer("__metadata__ is ", describe(value), ", not an object of strings");
    }
    defer(tensor_label(entry_name()), "entry is ", describe(value),
          ", not an object with dtype, shape and data_offsets");
  }

  void metadata_not_string(const value_sketch& value) {
    defer("__metadata__: key '", metadata_slot_->first, "' is ", describe(value), ", not a string");
  }

  void store_field(value_sketch value) {
    if (field_ == field::dtype) pending_.type = std::move(value);
    if (field_ == field::shape) pending_.shape = std::move(value);
    if (field_ == field::data_offsets) pending_.offsets = std::move(value);
  }

  bool primitive(value_sketch value) {
    switch (frames_.back().kind) {
      case frame_kind::root:
        not_an_object(value);
        break;
      case frame_kind::entry:
        store_field(std::move(value));
        break;
      case frame_kind::metadata:
        metadata_not_string(value);
        break;
      case frame_kind::shape:
        extent(value);
        break;
      case frame_kind::sketch: {
        frame& top = frames_.back();
        if (++sketch_.size <= max_described_elements) {
          if (sketch_.head.is_array()) {
            sketch_.head.push_back(std::move(value.head));
          } else {
            sketch_.head[top.key] = std::move(value.head);
          }
        }
        break;
      }
      case frame_kind::ignored:
        break;
    }
    return true;
  }

  void extent(const value_sketch& value) {
    const std::size_t axis = pending_.axes++;
    if (!pending_.shape_problem.empty() || !deferred_.empty()) return;
    const auto count = as_count(value.head);
    if (!count) {
      pending_.shape_problem = "field 'shape' has " + describe(value) + " on axis " +
                               std::to_string(axis) + ", not a non-negative integer";
    } else if (*count > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      pending_.shape_problem = "field 'shape' has extent " + std::to_string(*count) +
                               " on axis " + std::to_string(axis) + ", beyond 2^63-1";
    } else {
      pending_.extents.push_back(static_cast<std::int64_t>(*count));
    }
  }

  bool open(bool is_object) {
    if (frames_.empty()) {  // the caller checked that the text starts with '{'
      frames_.push_back({frame_kind::root, {}});
      return true;
    }
    if (frames_.size() == max_header_depth) too_deep();
    frame_kind kind = frame_kind::sketch;
    switch (frames_.back().kind) {
      case frame_kind::root:
        if (is_object) {
          kind = in_metadata() ? frame_kind::metadata : frame_kind::entry;
          pending_ = {};
        }
        break;
      case frame_kind::entry:
        if (!is_object && field_ == field::shape) {
          kind = frame_kind::shape;
          pending_.shape_is_array = true;
        }
        break;
      case frame_kind::sketch:
        ++sketch_.size;
        sketch_.flat = false;
        kind = frame_kind::ignored;
        break;
      default:
        break;
    }
    if (kind == frame_kind::sketch) {
      sketch_ = {is_object ? json::object() : json::array(), 0, true, false};
    }
    frames_.push_back({kind, {}});
    return true;
  }

  bool close() {
    const frame_kind kind = frames_.back().kind;
    frames_.pop_back();
    if (kind == frame_kind::entry) finish_entry();
    if (kind == frame_kind::sketch) {
      switch (frames_.back().kind) {
        case frame_kind::root:
          not_an_object(sketch_);
          break;
        case frame_kind::metadata:
          metadata_not_string(sketch_);
          break;
        default:
          store_field(std::move(sketch_));
      }
    }
    return true;
  }

  [[noreturn]] void too_deep() const {
    std::string where;
    const frame& top = frames_.back();
    const frame& parent = frames_[frames_.size() - 2];
    if (top.kind == frame_kind::ignored) {
      where = in_metadata() ? std::string("__metadata__") : tensor_label(entry_name()) + "entry";
    } else if (parent.kind == frame_kind::metadata) {
      where = "__metadata__: key '" + metadata_slot_->first + "'";
    } else {
      where = tensor_label(entry_name()) + "field '";
      where += field_ == field::none ? std::string_view(unknown_field_)
                                     : field_names[static_cast<unsigned>(field_)];
      where += "'";
    }
    fail(where, " nests arrays or objects deeper than the ", max_header_depth,
         " levels a safetensors header has (byte ",
         8 + nesting_offset(text_, max_header_depth), " of the file)");
  }

  void finish_entry() {
    if (!deferred_.empty()) return;  // only the first broken rule is reported
    const std::string& name = entry_name();
    const std::string label = tensor_label(name);
    for (unsigned i = 0; i < 3; ++i) {
      if ((pending_.seen & (1u << i)) == 0) {
        return defer(label, "missing field '", field_names[i], "'");
      }
    }
    header_entry result{name, dtype::f32, {}, 0, 0};

    const value_sketch& type = pending_.type;
    if (!type.head.is_string()) {
      return defer(label, "field 'dtype' is ", describe(type), ", not a string");
    }
    const auto parsed_type =
        type.cut ? std::nullopt : dtype_from_name(type.head.get_ref<const std::string&>());
    if (!parsed_type) {
      return defer(label, "field 'dtype' is ", describe(type), ", not a safetensors dtype");
    }
    result.type = *parsed_type;

    if (!pending_.shape_is_array) {
      return defer(label, "field 'shape' is ", describe(pending_.shape),
                   ", not an array of extents");
    }
    if (!pending_.shape_problem.empty()) return defer(label, pending_.shape_problem);
    result.shape = std::move(pending_.extents);
    if (!extents_fit(label, result.shape)) return;

    const json& offsets = pending_.offsets.head;
    const bool is_pair = offsets.is_array() && pending_.offsets.size == 2;
    const auto begin = is_pair ? as_count(offsets[0]) : std::nullopt;
    const auto end = is_pair ? as_count(offsets[1]) : std::nullopt;
    if (!begin || !end) {
      return defer(label, "field 'data_offsets' is ", describe(pending_.offsets),
                   ", not [begin, end] with non-negative integers");
    }
    result.begin = *begin;
    result.end = *end;
    const std::string span_text = offsets_text(result.begin, result.end);
    if (result.begin > result.end) {
      return defer(label, "field 'data_offsets' ", span_text, " begins after it ends");
    }

    std::size_t size = 0;
    try {
      size = tensor_byte_size(result.type, result.shape, name);
    } catch (const error& e) {
      return defer(e.what());
    }
    if (size != result.end - result.begin) {
      return defer(label, "shape ", to_string(result.shape), " of ", dtype_name(result.type),
                   " needs ", size, " bytes but data_offsets ", span_text, " span ",
                   result.end - result.begin);
    }
    if (result.end > data_size_) {
      return defer(label, "data_offsets ", span_text, " run past the end of the data section (",
                   data_size_, " bytes)");
    }
    result_.entries.push_back(std::move(result));
  }

  // An empty axis makes the element count 0 whatever the others are, yet code that sizes a
  // channel or a row multiplies the other axes: their product must fit too. With every
  // nonzero extent's product within 2^63-1, so is the product of any subset of axes.
  bool extents_fit(const std::string& label, const shape_t& shape) {
    std::uint64_t product = 1;
    for (const std::int64_t extent : shape) {
      const auto e = static_cast<std::uint64_t>(extent);
      if (e == 0) continue;
      if (product > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) / e) {
        defer(label, "field 'shape' describes shape ", to_string(shape),
              ", whose nonzero extents multiply to more elements than 2^63-1");
        return false;
      }
      product *= e;
    }
    return true;
  }

  std::string_view text_;
  std::uint64_t data_size_;
  std::string_view source_;
  std::vector<frame> frames_;
  bool seen_metadata_ = false;
  safetensors_metadata::iterator metadata_slot_;  ///< the key whose value comes next
  field field_ = field::none;  ///< the field whose value comes next, in an entry
  std::string unknown_field_;  ///< its name, when it is none of the three
  std::string deferred_;       ///< the first broken rule, with source
  pending_entry pending_;
  value_sketch sketch_;
  parsed_header result_;
};

// Checks the header's bytes (UTF-8, one object, space padding) and reads it; entries come
// back checked one by one. Errors throw qgan::error prefixed with source.
inline parsed_header read_header(std::span<const std::byte> header, std::uint64_t data_size,
                                 std::string_view source) {
  const auto fail = [&](const auto&... parts) {
    detail::throw_error(source, ": ", parts...);
  };
  if (const auto bad = first_invalid_utf8(header); bad != std::string_view::npos) {
    fail("header is not valid UTF-8 (byte ", 8 + bad, " of the file)");
  }
  if (header.empty() || header.front() != std::byte{'{'}) {
    fail("header must be a JSON object, starting with '{'");
  }
  // The format allows trailing spaces (0x20) as padding, and nothing else after the
  // object: a JSON parser alone would also let tabs and newlines through.
  std::size_t end = header.size();
  while (end > 0 && header[end - 1] == std::byte{' '}) --end;
  if (header[end - 1] != std::byte{'}'}) {
    fail("header has bytes other than space (0x20) padding after its JSON object");
  }

  const std::string_view text(reinterpret_cast<const char*>(header.data()), end);
  header_reader reader(text, data_size, source);
  bool parsed = false;
  try {
    parsed = nlohmann::json::sax_parse(text.begin(), text.end(), &reader);
  } catch (const nlohmann::json::exception& e) {
    fail("header is not valid JSON: ", e.what());
  }
  if (!parsed) fail("header is not valid JSON");
  return std::move(reader).take();
}

}  // namespace safetensors_detail
}  // namespace qgan::io
