// The .qgan v1 byte layout as code: the magic and version, the offsets of every header and
// directory-record field, the frozen codes of raw dtypes, little-endian loads and stores,
// overflow-checked layout arithmetic and the XXH3 checksums. docs/qgan-format.md is the
// specification; the reader (qgan_reader.hpp) and the writers (qgan_writer.hpp) share
// these facts so they cannot disagree on a byte.
// Checksums use xxHash header-only (libxxhash-dev, nothing to link).
#pragma once

#include "qgan/core/isa_namespace.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

#if !defined(XXH_INLINE_ALL)
#define XXH_INLINE_ALL  // header-only xxHash: consumers need no link flag
#define QGAN_XXH_INLINE_ALL_DEFINED
#endif
#include <xxhash.h>
#if defined(QGAN_XXH_INLINE_ALL_DEFINED)
#undef XXH_INLINE_ALL
#undef QGAN_XXH_INLINE_ALL_DEFINED
#endif

#include "qgan/io/dtype.hpp"

namespace qgan::io {

static_assert(std::endian::native == std::endian::little,
              ".qgan payloads are little-endian; qgan copies them as they lie");

inline constexpr std::uint16_t qgan_format_major = 1;
inline constexpr std::uint16_t qgan_format_minor = 0;

/// The three kinds of directory entry; the numbers are part of the format.
enum class entry_kind : std::uint8_t { packed = 1, float32 = 2, raw = 3 };

QGAN_BEGIN_FUNCTIONS

constexpr std::string_view kind_name(entry_kind kind) noexcept {
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

QGAN_END_FUNCTIONS

namespace qgan_file_detail {

// Offsets are in bytes from the start of the file (header) or of the record (directory
// entry); every integer is little-endian.
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

/// granularity field: 0 per tensor (axis 0), 1 per channel (axis in range for the shape).
inline constexpr std::uint8_t per_tensor_code = 0;
inline constexpr std::uint8_t per_channel_code = 1;

// Raw dtypes by their code in the file (code = index + 1). Frozen: a new dtype takes the
// next code, and io::dtype's own numbering never leaks into files.
inline constexpr std::array<dtype, 22> dtype_codes{
    dtype::boolean, dtype::u8,      dtype::i8,          dtype::i16,         dtype::u16,
    dtype::i32,     dtype::u32,     dtype::i64,         dtype::u64,         dtype::f16,
    dtype::bf16,    dtype::f32,     dtype::f64,         dtype::c64,         dtype::f8_e5m2,
    dtype::f8_e4m3, dtype::f8_e8m0, dtype::f8_e4m3fnuz, dtype::f8_e5m2fnuz, dtype::f4,
    dtype::f6_e2m3, dtype::f6_e3m2};

QGAN_BEGIN_FUNCTIONS

constexpr std::optional<dtype> dtype_from_code(unsigned code) noexcept {
  if (code == 0 || code > dtype_codes.size()) return std::nullopt;
  return dtype_codes[code - 1];
}

constexpr std::uint8_t dtype_code(dtype type) noexcept {  // 0 for a value outside the enum
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

/// payload_checksum: XXH3-64 of a payload, given as up to two pieces (packed: params, codes).
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

constexpr std::uint64_t align_up(std::uint64_t offset) noexcept {
  return (offset + (alignment - 1)) / alignment * alignment;
}

// a + b and a * b, or nullopt when the result does not fit in 64 bits.
constexpr std::optional<std::uint64_t> add(std::uint64_t a, std::uint64_t b) noexcept {
  if (a > std::numeric_limits<std::uint64_t>::max() - b) return std::nullopt;
  return a + b;
}
constexpr std::optional<std::uint64_t> mul(std::uint64_t a, std::uint64_t b) noexcept {
  if (b != 0 && a > std::numeric_limits<std::uint64_t>::max() / b) return std::nullopt;
  return a * b;
}

/// Bytes of a directory record: the fixed part, the name, 8 per extent, and what a later
/// minor version appends (`extra`, 0 in 1.0).
constexpr std::uint64_t record_bytes(std::uint64_t name_size, std::uint64_t rank,
                                     std::uint64_t extra = 0) noexcept {
  return record_fixed_bytes + name_size + 8 * rank + extra;
}

QGAN_END_FUNCTIONS

}  // namespace qgan_file_detail
}  // namespace qgan::io
