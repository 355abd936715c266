// stb_image_write's implementation (PNG encoding for dcgan/images.cpp), compiled from
// Debian's libstb-dev header instead of linked from libstb, which exists for the host
// architecture only. Built without qgan's warnings (examples/CMakeLists.txt).
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>

#include <cstddef>
#include <cstdint>

namespace dcgan::detail {
// stb declares its zlib compressor only in the implementation part of the header and
// keeps its chunk CRC file-local: dcgan/png_encoder.cpp, which compresses bands of rows
// and writes its own chunks, reaches both through these.
unsigned char* stb_zlib_compress(unsigned char* data, int length, int* compressed_length, int level) {
  return stbi_zlib_compress(data, length, compressed_length, level);
}

std::uint32_t png_crc32(const unsigned char* bytes, std::size_t size) {
  return stbiw__crc32(const_cast<unsigned char*>(bytes), static_cast<int>(size));
}
}  // namespace dcgan::detail
