// stb_image_write's deflate and CRC, reached from dcgan/png_encoder.cpp through the one
// unit that compiles stb's implementation (dcgan/stb_image_write_impl.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace dcgan::detail {

/// `data` as a zlib stream (header, deflate blocks, Adler-32) by stb at `level` (stb
/// raises levels below 5 to 5). Throws qgan::error when stb cannot allocate or the input
/// is longer than its int lengths.
std::vector<std::uint8_t> stb_zlib_compress(std::span<const std::uint8_t> data, int level);

/// PNG's chunk CRC-32 (stb's table-driven one).
std::uint32_t png_crc32(const unsigned char* bytes, std::size_t size);

}  // namespace dcgan::detail
