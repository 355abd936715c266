#include "dcgan/images.hpp"

#include <stb/stb_easy_font.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "qgan/core/error.hpp"
#include "qgan/io/atomic_write.hpp"

namespace dcgan {

std::uint8_t to_pixel(float x) {
  // In float32, as written: (x + 1) and the product each round, so an outside tool must
  // compute in float32 too to match near a rounding boundary. Clamped before rounding
  // (the same result: 0 and 255 are integers) so that adding 2^23 rounds to the nearest
  // integer, ties to even, in the default mode; selects and no library call let compilers
  // vectorize the loops below at every instruction set.
  const float scaled = (x + 1.0f) * 127.5f;
  const float low = scaled >= 0.0f ? scaled : 0.0f;  // also NaN: never cast NaN
  const float clamped = low <= 255.0f ? low : 255.0f;
  constexpr float round_magic = 8388608.0f;  // 2^23
  return static_cast<std::uint8_t>(static_cast<int>((clamped + round_magic) - round_magic));
}

/// All pixels of a batch (N, 1, H, W), in storage order.
std::vector<std::uint8_t> to_pixels(const qgan::nn::tensor4& images) {
  std::vector<std::uint8_t> out(static_cast<std::size_t>(images.size()));
  const float* values = images.data();
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = to_pixel(values[i]);
  return out;
}

/// Images laid out `columns` wide with a `gap`-pixel gray border between them.
gray_image image_grid(const qgan::nn::tensor4& images, int columns, int gap) {
  grid_builder grid(static_cast<std::size_t>(images.dimension(0)), static_cast<int>(images.dimension(2)),
                    static_cast<int>(images.dimension(3)), columns, gap);
  grid.place(images, 0);
  return std::move(grid).take();
}

grid_builder::grid_builder(std::size_t count, int image_height, int image_width, int columns, int gap)
    : count_(count), height_(image_height), width_(image_width),
      columns_(std::max(1, std::min(columns, static_cast<int>(std::min<std::size_t>(count, INT32_MAX))))), gap_(gap) {
  if (image_height < 1 || image_width < 1 || gap < 0) {
    qgan::detail::throw_error("image grid: ", count, " images of ", image_height, "x", image_width, ", gap ", gap);
  }
  const std::size_t rows = (count + static_cast<std::size_t>(columns_) - 1) / static_cast<std::size_t>(columns_);
  const std::size_t width = static_cast<std::size_t>(gap) + static_cast<std::size_t>(columns_) * static_cast<std::size_t>(image_width + gap);
  const std::size_t height = static_cast<std::size_t>(gap) + rows * static_cast<std::size_t>(image_height + gap);
  if (width > INT32_MAX || height > INT32_MAX) qgan::detail::throw_error("image grid: ", width, " x ", height, " pixels is too large");
  grid_ = gray_image(static_cast<int>(width), static_cast<int>(height), 96);
}

void grid_builder::place(const qgan::nn::tensor4& images, std::size_t first) {
  for (std::size_t i = 0; i < static_cast<std::size_t>(images.dimension(0)); ++i) place(images, first, i);
}

void grid_builder::place(const qgan::nn::tensor4& images, std::size_t first, std::size_t image) {
  const auto count = static_cast<std::size_t>(images.dimension(0));
  if (images.dimension(1) != 1 || images.dimension(2) != height_ || images.dimension(3) != width_ || image >= count ||
      first > count_ || count > count_ - first) {
    qgan::detail::throw_error("image grid: image ", image, " of images ", first, "..", first + count, " of shape ",
                              qgan::nn::detail::dims_string(images), " does not fit a grid of ", count_, " images of 1x", height_,
                              "x", width_);
  }
  // Straight from the floats, row by row: no intermediate pixel copy.
  const auto width = static_cast<std::size_t>(width_);
  const auto columns = static_cast<std::size_t>(columns_);
  const std::size_t n = first + image;
  const int left = gap_ + static_cast<int>(n % columns) * (width_ + gap_);
  const int top = gap_ + static_cast<int>(n / columns) * (height_ + gap_);
  for (int y = 0; y < height_; ++y) {
    const float* row = images.data() + (image * static_cast<std::size_t>(height_) + static_cast<std::size_t>(y)) * width;
    std::uint8_t* target = &grid_.at(left, top + y);
    for (std::size_t x = 0; x < width; ++x) target[x] = to_pixel(row[x]);
  }
}

/// Copies `source` into `target` with its top-left corner at (left, top), clipped.
void paste(gray_image& target, const gray_image& source, int left, int top) {
  for (int y = 0; y < source.height; ++y) {
    for (int x = 0; x < source.width; ++x) {
      const int tx = left + x;
      const int ty = top + y;
      if (tx >= 0 && tx < target.width && ty >= 0 && ty < target.height) {
        target.at(tx, ty) = source.pixels[static_cast<std::size_t>(y) * static_cast<std::size_t>(source.width) + static_cast<std::size_t>(x)];
      }
    }
  }
}

/// Draws ASCII text with stb_easy_font (about 7 px high at scale 1), scaled by `scale`.
void draw_text(gray_image& image, int left, int top, const std::string& text, int scale,
               std::uint8_t value) {
  std::string buffer = text;
  std::vector<char> quads(text.size() * 270 + 1024);  // stb_easy_font's sizing advice
  const int count = stb_easy_font_print(0, 0, buffer.data(), nullptr, quads.data(), static_cast<int>(quads.size()));
  struct vertex {
    float x, y, z;
    unsigned char color[4];
  };
  for (int q = 0; q < count; ++q) {
    vertex v[4];
    std::memcpy(v, quads.data() + static_cast<std::size_t>(q) * sizeof v, sizeof v);
    const int x0 = left + static_cast<int>(v[0].x) * scale;
    const int y0 = top + static_cast<int>(v[0].y) * scale;
    const int x1 = left + static_cast<int>(v[2].x) * scale;
    const int y1 = top + static_cast<int>(v[2].y) * scale;
    for (int y = std::max(0, y0); y < std::min(image.height, y1); ++y) {
      for (int x = std::max(0, x0); x < std::min(image.width, x1); ++x) image.at(x, y) = value;
    }
  }
}

void write_png(const std::filesystem::path& path, const gray_image& image) {
  const std::vector<std::byte> bytes = encode_png(image);
  qgan::io::atomic_file file(path);
  file.write(bytes);
  file.commit();
}

}  // namespace dcgan
