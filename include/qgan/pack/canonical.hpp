// The canonical packed layout, which files store: codes dense and LSB-first in PyTorch's
// element order. Element i occupies bits [i*k, (i+1)*k) of the byte stream, bit b being
// bit (b mod 8) of byte b/8; the last byte's unused high bits are 0. These scalar routines
// are the specification; SIMD kernels (qgan/simd/) mirror them and hand them their tails.
// Their `Tag` parameter only gives each instruction set's caller its own instantiation,
// so the linker can never hand code compiled for AVX-512 to an SSE2 caller.
#pragma once

#include "qgan/core/isa_namespace.hpp"

#include <cstddef>
#include <cstdint>
#include <limits>

#include "qgan/core/error.hpp"
#include "qgan/quant/uniform_grid.hpp"

namespace qgan::pack {

QGAN_BEGIN_FUNCTIONS

/// Bytes of the canonical layout: ceil(count * bits / 8). Throws if that overflows.
inline std::size_t packed_size(std::size_t count, int bits) {
  if (bits < 1 || bits > 8) detail::throw_error("packed_size: bits = ", bits, " is outside 1..8");
  const auto width = static_cast<std::size_t>(bits);
  if (count > (std::numeric_limits<std::size_t>::max() - 7) / width) {
    detail::throw_error("packed_size: ", count, " elements at ", bits, " bits overflow size_t");
  }
  return (count * width + 7) / 8;
}

/// Code of element `index`. Reads at most the two bytes the code spans.
template <class Tag = void>
inline std::uint32_t code_at_ref(const std::uint8_t* packed, std::size_t index, int bits) noexcept {
  const std::size_t first_bit = index * static_cast<std::size_t>(bits);
  const std::size_t byte = first_bit / 8;
  const unsigned shift = static_cast<unsigned>(first_bit % 8);
  std::uint32_t window = packed[byte];
  if (shift + static_cast<unsigned>(bits) > 8) window |= std::uint32_t{packed[byte + 1]} << 8;
  return (window >> shift) & ((std::uint32_t{1} << bits) - 1);
}

/// Packs `count` codes (only their low `bits` bits are used) into packed_size() bytes.
template <class Tag = void>
inline void pack_ref(const std::uint8_t* codes, std::size_t count, int bits,
                     std::uint8_t* packed) noexcept {
  const std::uint32_t mask = (std::uint32_t{1} << bits) - 1;
  std::uint32_t pending = 0;  // bits not yet written, LSB first
  unsigned pending_bits = 0;
  std::size_t out = 0;
  for (std::size_t i = 0; i < count; ++i) {
    pending |= (codes[i] & mask) << pending_bits;
    pending_bits += static_cast<unsigned>(bits);
    while (pending_bits >= 8) {
      packed[out++] = static_cast<std::uint8_t>(pending);
      pending >>= 8;
      pending_bits -= 8;
    }
  }
  if (pending_bits != 0) packed[out] = static_cast<std::uint8_t>(pending);
}

/// Unpacks elements [first, first + count) into one byte per code.
template <class Tag = void>
inline void unpack_ref(const std::uint8_t* packed, std::size_t first, std::size_t count, int bits,
                       std::uint8_t* codes) noexcept {
  for (std::size_t i = 0; i < count; ++i) {
    codes[i] = static_cast<std::uint8_t>(code_at_ref<Tag>(packed, first + i, bits));
  }
}

/// values[i] = alpha * code(first + i) + beta for a uniform grid (minmax, EM).
template <class Tag = void>
inline void dequantize_uniform_ref(const std::uint8_t* packed, std::size_t first, std::size_t count,
                                   int bits, const uniform_params& grid, float* values) noexcept {
  for (std::size_t i = 0; i < count; ++i) {
    values[i] = detail::uniform_decode<Tag>(code_at_ref<Tag>(packed, first + i, bits), grid);
  }
}

QGAN_END_FUNCTIONS
}  // namespace qgan::pack
