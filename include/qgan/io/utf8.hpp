// Strict UTF-8 validation for names and metadata in model files. Both file formats require
// well-formed UTF-8, and a lenient check would let two byte strings that decode to the same
// text (an overlong form) name two different tensors.
#pragma once

#include "qgan/core/isa_namespace.hpp"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace qgan::io {
QGAN_BEGIN_FUNCTIONS

// Offset of the first byte that does not start a well-formed UTF-8 sequence (overlong
// forms, surrogates and code points above U+10FFFF included), or npos.
inline std::size_t first_invalid_utf8(std::span<const std::byte> text) noexcept {
  std::size_t i = 0;
  while (i < text.size()) {
    const unsigned lead = std::to_integer<unsigned>(text[i]);
    if (lead < 0x80u) {
      ++i;
      continue;
    }
    std::size_t length = 0;
    std::uint32_t code_point = 0;
    std::uint32_t smallest = 0;
    if ((lead & 0xe0u) == 0xc0u) {
      length = 2, code_point = lead & 0x1fu, smallest = 0x80;
    } else if ((lead & 0xf0u) == 0xe0u) {
      length = 3, code_point = lead & 0x0fu, smallest = 0x800;
    } else if ((lead & 0xf8u) == 0xf0u) {
      length = 4, code_point = lead & 0x07u, smallest = 0x10000;
    } else {
      return i;
    }
    if (text.size() - i < length) return i;
    for (std::size_t k = 1; k < length; ++k) {
      const unsigned next = std::to_integer<unsigned>(text[i + k]);
      if ((next & 0xc0u) != 0x80u) return i;
      code_point = (code_point << 6) | (next & 0x3fu);
    }
    if (code_point < smallest || code_point > 0x10ffffu ||
        (code_point >= 0xd800u && code_point <= 0xdfffu)) {
      return i;
    }
    i += length;
  }
  return std::string_view::npos;
}

inline std::size_t first_invalid_utf8(std::string_view text) noexcept {
  return first_invalid_utf8(std::as_bytes(std::span(text.data(), text.size())));
}

QGAN_END_FUNCTIONS
}  // namespace qgan::io
