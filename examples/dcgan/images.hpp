// Generator outputs as 8-bit pictures: pixel = round_half_even((x + 1) * 127.5) computed
// in float32 and clamped to 0..255 (NaN -> 0), the inverse of train.py's
// x = u / 127.5 - 1, so PSNR and PNGs see the same bytes. PNGs are encoded with
// stb_image_write's deflate (libstb-dev), a band of rows per task (dcgan/png_encoder.cpp),
// and written atomically; labels on the comparison image are drawn from stb_easy_font's
// quads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "qgan/nn/tensor.hpp"

namespace dcgan {

/// A grayscale picture, row-major.
struct gray_image {
  int width = 0;
  int height = 0;
  std::vector<std::uint8_t> pixels;

  gray_image() = default;
  gray_image(int w, int h, std::uint8_t fill) : width(w), height(h), pixels(static_cast<std::size_t>(w) * static_cast<std::size_t>(h), fill) {}
  std::uint8_t& at(int x, int y) { return pixels[static_cast<std::size_t>(y) * static_cast<std::size_t>(width) + static_cast<std::size_t>(x)]; }
};

std::uint8_t to_pixel(float x);

/// All pixels of a batch (N, 1, H, W), in storage order.
std::vector<std::uint8_t> to_pixels(const qgan::nn::tensor4& images);

/// Images laid out `columns` wide with a `gap`-pixel gray border between them.
gray_image image_grid(const qgan::nn::tensor4& images, int columns, int gap = 2);

/// The same grid filled a batch at a time, so that thousands of images need not be held
/// as floats: place(batch, first) draws images first .. first + N - 1.
class grid_builder {
 public:
  grid_builder(std::size_t count, int image_height, int image_width, int columns, int gap = 2);
  void place(const qgan::nn::tensor4& images, std::size_t first);
  /// Image `image` of the batch only; different images write different pixels, so
  /// threads may place a batch's images at once.
  void place(const qgan::nn::tensor4& images, std::size_t first, std::size_t image);
  [[nodiscard]] const gray_image& image() const { return grid_; }
  /// The finished grid, moved out.
  [[nodiscard]] gray_image take() && { return std::move(grid_); }

 private:
  std::size_t count_;
  int height_, width_, columns_, gap_;
  gray_image grid_;
};

/// Copies `source` into `target` with its top-left corner at (left, top), clipped.
void paste(gray_image& target, const gray_image& source, int left, int top);

/// Draws ASCII text with stb_easy_font (about 7 px high at scale 1), scaled by `scale`.
void draw_text(gray_image& image, int left, int top, const std::string& text, int scale = 2,
               std::uint8_t value = 255);

/// Runs task(i) for every i in [0, count), on any threads, and returns when all are done.
using parallel_runner = std::function<void(std::size_t count, const std::function<void(std::size_t)>& task)>;

/// Bytes of raw rows per band of encode_png. Deflate's window is 32 KiB, so longer bands
/// find few more matches (0.3% fewer bytes at 512 KiB on a sample grid), while stb's
/// per-bucket arrays outgrow the caches: its time per byte was 25% lower at 32 KiB.
inline constexpr std::size_t png_band_bytes = std::size_t{1} << 15;

/// Most bytes of rows one deflate call takes: stb counts in int and doubles its output
/// buffer, which overflows past 2^30 bytes.
inline constexpr std::size_t png_max_band_bytes = std::size_t{1} << 29;

/// Rows per band of encode_png for an image `width` pixels wide: at least 1, at most what
/// fits png_max_band_bytes. Throws qgan::error for a width below 1 or a row over that.
int png_band_rows(int width, std::size_t band_bytes = png_band_bytes);

/// PNG bytes of the image (8-bit grayscale): no row filter, stb's deflate at level 5, a
/// band of about `band_bytes` of rows per deflate call, the calls spread over `run` (the
/// calling thread if empty) and joined into the one zlib stream. The bytes depend on the
/// image and band_bytes, not on the threads. Throws qgan::error for an empty image, a
/// pixel count that does not match its size, or rows wider than png_max_band_bytes.
std::vector<std::byte> encode_png(const gray_image& image, const parallel_runner& run = {},
                                  std::size_t band_bytes = png_band_bytes);

/// Receives a PNG's bytes in order, a piece at a time.
using png_sink = std::function<void(std::span<const std::byte>)>;

/// The same bytes as encode_png, handed to `sink` chunk by chunk once every band is
/// compressed (a file gets them without a copy of the whole PNG in memory: on a
/// 5,000-sample grid that copy's fresh pages were 3 MB of page faults on one thread).
void encode_png(const gray_image& image, const parallel_runner& run, const png_sink& sink,
                std::size_t band_bytes = png_band_bytes);

/// Writes the PNG atomically (temporary file, fsync, rename).
void write_png(const std::filesystem::path& path, const gray_image& image);

}  // namespace dcgan
