// stb_image_write's implementation (PNG encoding for dcgan/images.cpp), compiled from
// Debian's libstb-dev header instead of linked from libstb, which exists for the host
// architecture only. Built without qgan's warnings (examples/CMakeLists.txt).
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>

namespace {
// stb's defaults (level 8, the best of five filters per row) suit photographs. On grids of
// generated samples, measured on 5,000-image grids of the fp32 and the W2A8 generator
// (274 x 21,252 pixels): level 5 with no filter writes 0.6-3% fewer bytes in half the
// time or less (0.19-0.20 s against 0.30-0.43 s), and the PNG was a quarter of
// `qgan sample`'s time. Set before main, once, since stb reads these as globals.
const bool png_settings_applied = [] {
  stbi_write_png_compression_level = 5;
  stbi_write_force_png_filter = 0;
  return true;
}();
}  // namespace
