// dcgan::encode_png joins stb's deflate streams of bands of rows into one zlib stream.
// Checked here against definitions, not against the encoder's own helpers: stb_image
// decodes every PNG (it refuses a stored block whose NLEN is not ~LEN, and a stream that
// ends early), each chunk's CRC is recomputed bit by bit from the polynomial, and the
// stream's Adler-32 from its two sums over the rows.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <stb/stb_image.h>

#include "dcgan/images.hpp"
#include "qgan/core/error.hpp"
#include "qgan/core/thread_pool.hpp"

namespace {

std::uint32_t read_be32(const std::vector<std::byte>& bytes, std::size_t at) {
  std::uint32_t value = 0;
  for (std::size_t i = 0; i < 4; ++i) value = (value << 8) | std::to_integer<std::uint32_t>(bytes.at(at + i));
  return value;
}

std::uint32_t crc32_by_definition(const std::vector<std::byte>& bytes, std::size_t begin, std::size_t end) {
  std::uint32_t crc = 0xffffffffu;
  for (std::size_t i = begin; i < end; ++i) {
    crc ^= std::to_integer<std::uint32_t>(bytes[i]);
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ ((crc & 1u) ? 0xedb88320u : 0u);
  }
  return ~crc;
}

struct png_layout {
  std::vector<std::string> chunk_types;
  std::vector<std::byte> zlib;  // the IDAT chunks' data, joined
};

/// Walks the chunks, checking each one's CRC.
png_layout read_chunks(const std::vector<std::byte>& png) {
  png_layout layout;
  std::size_t at = 8;
  while (at < png.size()) {
    const std::uint32_t length = read_be32(png, at);
    REQUIRE(at + 12 + length <= png.size());
    std::string type(4, ' ');
    for (std::size_t i = 0; i < 4; ++i) type[i] = static_cast<char>(png[at + 4 + i]);
    CHECK(read_be32(png, at + 8 + length) == crc32_by_definition(png, at + 4, at + 8 + length));
    if (type == "IDAT") layout.zlib.insert(layout.zlib.end(), png.begin() + static_cast<std::ptrdiff_t>(at + 8),
                                           png.begin() + static_cast<std::ptrdiff_t>(at + 8 + length));
    layout.chunk_types.push_back(type);
    at += 12 + length;
  }
  CHECK(at == png.size());
  return layout;
}

/// Adler-32 of the PNG's filtered rows (filter type 0 before each row).
std::uint32_t adler32_of_rows(const dcgan::gray_image& image) {
  std::uint64_t s1 = 1, s2 = 0;
  const auto add = [&](std::uint8_t byte) {
    s1 = (s1 + byte) % 65521;
    s2 = (s2 + s1) % 65521;
  };
  for (int y = 0; y < image.height; ++y) {
    add(0);
    for (int x = 0; x < image.width; ++x) add(image.pixels[static_cast<std::size_t>(y * image.width + x)]);
  }
  return static_cast<std::uint32_t>((s2 << 16) | s1);
}

/// Checks the PNG decodes to the image and its stream's checksums; returns its layout.
png_layout check_png(const dcgan::gray_image& image, const std::vector<std::byte>& png) {
  int width = 0, height = 0, channels = 0;
  unsigned char* decoded = stbi_load_from_memory(reinterpret_cast<const unsigned char*>(png.data()),
                                                 static_cast<int>(png.size()), &width, &height, &channels, 1);
  INFO("stb_image: " << (decoded ? "decoded" : stbi_failure_reason()));
  REQUIRE(decoded != nullptr);
  CHECK(width == image.width);
  CHECK(height == image.height);
  CHECK(channels == 1);
  CHECK(std::equal(image.pixels.begin(), image.pixels.end(), decoded));
  stbi_image_free(decoded);
  png_layout layout = read_chunks(png);
  REQUIRE(layout.zlib.size() >= 6);
  CHECK(read_be32(layout.zlib, layout.zlib.size() - 4) == adler32_of_rows(image));
  return layout;
}

enum class content { flat, stripes, noise, noise_bands };

dcgan::gray_image make_image(int width, int height, content kind, std::mt19937& random) {
  dcgan::gray_image image(width, height, 0);
  std::uniform_int_distribution<int> byte(0, 255);
  const int flat = byte(random);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      int value = flat;
      if (kind == content::stripes) value = (x * 7 + y / 3 * 13) % 256;
      if (kind == content::noise || (kind == content::noise_bands && (y / 5) % 2 == 1)) value = byte(random);
      image.at(x, y) = static_cast<std::uint8_t>(value);
    }
  }
  return image;
}

}  // namespace

TEST_CASE("PNG bands join into one stream that decodes to the image, whatever the bands and threads",
          "[dcgan][images][png]") {
  std::mt19937 random(20261129);
  qgan::thread_pool pool(3);
  const dcgan::parallel_runner on_pool = [&pool](std::size_t count, const std::function<void(std::size_t)>& task) {
    pool.run(count, task);
  };
  for (const int width : {1, 2, 7, 33, 274}) {
    for (const int height : {1, 2, 9, 31, 64}) {
      for (const content kind : {content::flat, content::stripes, content::noise, content::noise_bands}) {
        const dcgan::gray_image image = make_image(width, height, kind, random);
        // Bands of one row each, a few rows, and the whole image.
        for (const std::size_t band_bytes : {std::size_t{1}, std::size_t{5} * static_cast<std::size_t>(width + 1),
                                             dcgan::png_band_bytes}) {
          INFO(width << "x" << height << " content " << static_cast<int>(kind) << ", bands of " << band_bytes << " bytes");
          const std::vector<std::byte> png = dcgan::encode_png(image, {}, band_bytes);
          const png_layout layout = check_png(image, png);
          const int rows = dcgan::png_band_rows(width, band_bytes);
          REQUIRE(layout.chunk_types.size() == static_cast<std::size_t>(2 + (height + rows - 1) / rows));
          CHECK(layout.chunk_types.front() == "IHDR");
          CHECK(layout.chunk_types.back() == "IEND");
          // Noise does not compress: stb stores it, and stored blocks are joined too.
          const int first_block_type = (std::to_integer<int>(layout.zlib[2]) >> 1) & 3;
          if (band_bytes == dcgan::png_band_bytes && width * height > 200) {
            CHECK(first_block_type == (kind == content::noise ? 0 : 1));
          }
          CHECK(dcgan::encode_png(image, on_pool, band_bytes) == png);
        }
      }
    }
  }
}

TEST_CASE("A large grid's PNG is cut into bands of about png_band_bytes", "[dcgan][images][png]") {
  std::mt19937 random(7);
  const dcgan::gray_image image = make_image(274, 4000, content::noise_bands, random);
  const int rows = dcgan::png_band_rows(274);
  CHECK(rows == static_cast<int>(dcgan::png_band_bytes / 275));
  const std::vector<std::byte> png = dcgan::encode_png(image);
  const png_layout layout = check_png(image, png);
  CHECK(layout.chunk_types.size() == static_cast<std::size_t>(2 + (4000 + rows - 1) / rows));
  // Streamed to a sink: the signature, then one piece per chunk, the same bytes in order.
  std::vector<std::byte> streamed;
  std::size_t pieces = 0;
  dcgan::encode_png(image, {}, [&](std::span<const std::byte> bytes) {
    streamed.insert(streamed.end(), bytes.begin(), bytes.end());
    ++pieces;
  });
  CHECK(pieces == 1 + layout.chunk_types.size());
  CHECK(streamed == png);
}

TEST_CASE("Noise bands stb stores in several blocks join too", "[dcgan][images][png]") {
  // 64 KiB bands of noise: stb stores each in two blocks of at most 32,767 bytes, and only
  // the last one's BFINAL may be cleared.
  std::mt19937 random(11);
  const dcgan::gray_image image = make_image(274, 400, content::noise, random);
  const png_layout layout = check_png(image, dcgan::encode_png(image, {}, std::size_t{1} << 16));
  CHECK(((std::to_integer<int>(layout.zlib[2]) >> 1) & 3) == 0);
  CHECK(layout.chunk_types.size() == static_cast<std::size_t>(2 + (400 + 237) / 238));
}

TEST_CASE("Bands larger than stb's arena chunks, and many bands on one thread", "[dcgan][images][png]") {
  // stb's blocks come from a per-thread arena of 1 MiB chunks, reset after each call: a
  // 3 MB band of noise needs blocks larger than a chunk (its stored output), and the
  // smaller bands that follow on the same thread reuse the chunks it left.
  std::mt19937 random(13);
  const dcgan::gray_image noise = make_image(1000, 3000, content::noise, random);
  check_png(noise, dcgan::encode_png(noise, {}, std::size_t{3} << 20));
  const dcgan::gray_image mixed = make_image(1000, 3000, content::noise_bands, random);
  for (const std::size_t band_bytes : {std::size_t{3} << 20, std::size_t{1} << 15, std::size_t{1} << 21}) {
    INFO("bands of " << band_bytes << " bytes");
    check_png(mixed, dcgan::encode_png(mixed, {}, band_bytes));
  }
}

TEST_CASE("PNG encoding refuses an image it cannot hold", "[dcgan][images][png]") {
  CHECK_THROWS_WITH(dcgan::encode_png(dcgan::gray_image(0, 5, 0)), Catch::Contains("empty image") && Catch::Contains("0x5"));
  dcgan::gray_image short_of_pixels(4, 4, 0);
  short_of_pixels.pixels.resize(15);
  CHECK_THROWS_AS(dcgan::encode_png(short_of_pixels), qgan::error);
  CHECK_THROWS_WITH(dcgan::encode_png(short_of_pixels), Catch::Contains("4x4") && Catch::Contains("15 pixels, not 16"));
  CHECK_THROWS_WITH(dcgan::png_band_rows(-1), Catch::Contains("-1 pixels wide"));
  CHECK_THROWS_WITH(dcgan::png_band_rows(static_cast<int>(dcgan::png_max_band_bytes)), Catch::Contains("does not fit a band"));
  CHECK(dcgan::png_band_rows(1000, std::size_t{1} << 40) == static_cast<int>(dcgan::png_max_band_bytes / 1001));
}
