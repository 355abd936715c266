// Tensor element types as safetensors defines them, and the facts about each (name, bit
// width, bytes of a shape). A header of its own so that the .qgan format, whose raw tensors
// carry any of these, does not pull in the safetensors reader and its JSON parser.
//
// Dtypes and sizes, as the reference implementation (safetensors/src/tensor.rs) defines
// them: BOOL U8 I8 F8_E5M2 F8_E4M3 F8_E8M0 F8_E4M3FNUZ F8_E5M2FNUZ (8 bits), I16 U16 F16
// BF16 (16), I32 U32 F32 (32), I64 U64 F64 C64 (64), F4 (4), F6_E2M3 F6_E3M2 (6). A tensor
// takes element_count * bits / 8 bytes, and element_count * bits must be a multiple of 8:
// sub-byte elements are packed with no padding, so an F4 tensor of shape [3] is invalid.
#pragma once

#include "qgan/core/isa_namespace.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string_view>

#include "qgan/core/error.hpp"
#include "qgan/core/shape.hpp"

namespace qgan::io {

// In the reference implementation's order (increasing alignment). This numbering never
// reaches a file: each format maps dtypes to its own frozen codes.
enum class dtype : std::uint8_t {
  boolean,
  f4,
  f6_e2m3,
  f6_e3m2,
  u8,
  i8,
  f8_e5m2,
  f8_e4m3,
  f8_e8m0,
  f8_e4m3fnuz,
  f8_e5m2fnuz,
  i16,
  u16,
  f16,
  bf16,
  i32,
  u32,
  f32,
  c64,
  f64,
  i64,
  u64,
};

namespace dtype_detail {

struct dtype_info {
  dtype type;
  std::string_view name;  ///< as safetensors spells it (case-sensitive)
  std::size_t bits;
};

inline constexpr std::array<dtype_info, 22> dtype_table{{
    {dtype::boolean, "BOOL", 8},
    {dtype::f4, "F4", 4},
    {dtype::f6_e2m3, "F6_E2M3", 6},
    {dtype::f6_e3m2, "F6_E3M2", 6},
    {dtype::u8, "U8", 8},
    {dtype::i8, "I8", 8},
    {dtype::f8_e5m2, "F8_E5M2", 8},
    {dtype::f8_e4m3, "F8_E4M3", 8},
    {dtype::f8_e8m0, "F8_E8M0", 8},
    {dtype::f8_e4m3fnuz, "F8_E4M3FNUZ", 8},
    {dtype::f8_e5m2fnuz, "F8_E5M2FNUZ", 8},
    {dtype::i16, "I16", 16},
    {dtype::u16, "U16", 16},
    {dtype::f16, "F16", 16},
    {dtype::bf16, "BF16", 16},
    {dtype::i32, "I32", 32},
    {dtype::u32, "U32", 32},
    {dtype::f32, "F32", 32},
    {dtype::c64, "C64", 64},
    {dtype::f64, "F64", 64},
    {dtype::i64, "I64", 64},
    {dtype::u64, "U64", 64},
}};

QGAN_BEGIN_FUNCTIONS

constexpr bool table_is_indexed_by_enum() {
  for (std::size_t i = 0; i < dtype_table.size(); ++i) {
    if (static_cast<std::size_t>(dtype_table[i].type) != i) return false;
  }
  return true;
}
static_assert(table_is_indexed_by_enum(), "dtype_table[i] must describe dtype i");

QGAN_END_FUNCTIONS

}  // namespace dtype_detail

QGAN_BEGIN_FUNCTIONS

// A value outside the enum (a cast from a stray integer) names itself "invalid" and has
// 0 bits, which tensor_byte_size and so the writers reject, rather than reading past the table.
constexpr std::string_view dtype_name(dtype type) noexcept {
  const auto index = static_cast<std::size_t>(type);
  return index < dtype_detail::dtype_table.size() ? dtype_detail::dtype_table[index].name
                                                  : std::string_view("invalid");
}

constexpr std::size_t dtype_bits(dtype type) noexcept {
  const auto index = static_cast<std::size_t>(type);
  return index < dtype_detail::dtype_table.size() ? dtype_detail::dtype_table[index].bits : 0;
}

// Names are case-sensitive, as in the format ("F32", never "f32").
constexpr std::optional<dtype> dtype_from_name(std::string_view name) noexcept {
  for (const auto& info : dtype_detail::dtype_table) {
    if (info.name == name) return info.type;
  }
  return std::nullopt;
}

constexpr bool is_float_readable(dtype type) noexcept {
  return type == dtype::f32 || type == dtype::f16 || type == dtype::bf16 || type == dtype::f64;
}

// Bytes a tensor of this dtype and shape occupies. Throws qgan::error (naming the tensor
// when a name is given) on a negative extent, on a size that overflows 64-bit arithmetic,
// and when packed sub-byte elements do not end on a byte boundary.
inline std::size_t tensor_byte_size(dtype type, const shape_t& shape,
                                    std::string_view tensor_name = {}) {
  const std::size_t count = element_count(shape, tensor_name);
  const std::size_t bits = dtype_bits(type);
  if (bits == 0) {
    detail::throw_error(detail::tensor_prefix(tensor_name), "dtype value ",
                        static_cast<unsigned>(type), " is not a safetensors dtype");
  }
  if (count > std::numeric_limits<std::size_t>::max() / bits) {
    detail::throw_error(detail::tensor_prefix(tensor_name), "shape ", to_string(shape), " of ",
                        dtype_name(type), " has more bits than fit in a size_t");
  }
  if ((count * bits) % 8 != 0) {
    detail::throw_error(detail::tensor_prefix(tensor_name), "shape ", to_string(shape), " of ",
                        dtype_name(type), " holds ", count * bits,
                        " bits, not a whole number of bytes");
  }
  return count * bits / 8;
}

QGAN_END_FUNCTIONS
}  // namespace qgan::io
