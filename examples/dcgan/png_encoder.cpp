// PNG encoding with stb_image_write's deflate, a band of rows per task.
//
// PNG holds one zlib stream, and stb compresses a buffer in one call on one thread: on a
// 5,000-image grid that call was 40% of `qgan sample`'s time at two threads. So rows are
// cut into bands, each band is compressed by `stbi_zlib_compress` on its own, and the
// bands' deflate data are joined into one stream, the way pigz joins zlib's:
// - stb writes one fixed-Huffman block per call, ended by the end-of-block code and zero
//   bits up to a byte boundary. Every band but the last has its block's BFINAL bit
//   cleared and is followed by an empty stored block (3 header bits, zero bits to the byte
//   boundary, LEN 0, NLEN 0xffff), which puts the next band's block on a byte boundary.
//   Where the stored header's bits fall depends on how many padding bits stb wrote, and
//   only a walk over the block's codes says where the end-of-block code ends.
// - When compression does not pay, stb writes stored blocks instead: byte-aligned, so only
//   the last block's BFINAL bit is cleared.
// - The stream's Adler-32 is the bands' (from stb's trailers) combined; each band goes into
//   an IDAT chunk of its own, its CRC taken by stb's CRC function.
// Bands are a fixed number of rows for a given width, so the bytes do not depend on the
// threads. No row filter and stb's level 5: on grids of generated samples (flat gray gaps,
// dark backgrounds) that writes 0.6-3% fewer bytes than stb's defaults (level 8, best of
// five filters per row) in half the time or less.
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "dcgan/images.hpp"
#include "dcgan/stb_zlib.hpp"
#include "qgan/core/error.hpp"

namespace dcgan {
namespace {

constexpr int png_deflate_level = 5;

[[noreturn]] void stream_error(const std::string& what) {
  qgan::detail::throw_error("PNG encoder: stb's deflate stream ", what);
}

/// Reads a deflate stream's bits in their order (least significant bit of each byte first).
/// Past the end it reads zeros; the caller compares position() with the stream's size.
class deflate_bits {
 public:
  explicit deflate_bits(std::span<const std::uint8_t> bytes) : bytes_(bytes) {}
  /// The next n <= 32 bits, the first in the lowest bit.
  std::uint32_t peek(int n) {
    while (count_ <= 56) {
      const std::uint64_t byte = next_ < bytes_.size() ? bytes_[next_] : 0;
      ++next_;
      window_ |= byte << count_;
      count_ += 8;
    }
    return static_cast<std::uint32_t>(window_ & ((std::uint64_t{1} << n) - 1));
  }
  /// Skips n <= 32 bits.
  void skip(int n) {
    if (count_ < n) peek(0);
    window_ >>= n;
    count_ -= n;
    position_ += static_cast<std::size_t>(n);
  }
  std::uint32_t take(int n) {
    const std::uint32_t value = peek(n);
    skip(n);
    return value;
  }
  [[nodiscard]] std::size_t position() const { return position_; }

 private:
  std::span<const std::uint8_t> bytes_;
  std::size_t next_ = 0;
  std::uint64_t window_ = 0;
  int count_ = 0;
  std::size_t position_ = 0;
};

constexpr std::uint32_t reverse_bits(std::uint32_t code, int length) {
  std::uint32_t reversed = 0;
  for (int i = 0; i < length; ++i) reversed |= ((code >> i) & 1u) << (length - 1 - i);
  return reversed;
}

struct fixed_code {
  std::uint16_t symbol;
  std::uint8_t length;
};

/// Literal/length symbols of the fixed Huffman code (RFC 1951, 3.2.6) by the next 9 bits
/// of the stream: Huffman codes are sent most significant bit first, so the stream holds
/// them reversed.
constexpr std::array<fixed_code, 512> fixed_literal_table = [] {
  std::array<fixed_code, 512> table{};
  for (std::uint32_t symbol = 0; symbol < 288; ++symbol) {
    std::uint32_t code = 0;
    int length = 0;
    if (symbol < 144) {
      code = 0x30 + symbol, length = 8;
    } else if (symbol < 256) {
      code = 0x190 + symbol - 144, length = 9;
    } else if (symbol < 280) {
      code = symbol - 256, length = 7;
    } else {
      code = 0xc0 + symbol - 280, length = 8;
    }
    const std::uint32_t reversed = reverse_bits(code, length);
    for (std::uint32_t high = 0; high < (512u >> length); ++high) {
      table[reversed | (high << length)] = {static_cast<std::uint16_t>(symbol), static_cast<std::uint8_t>(length)};
    }
  }
  return table;
}();

constexpr std::array<std::uint8_t, 29> length_extra_bits{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                                         2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
constexpr std::array<std::uint8_t, 30> distance_extra_bits{0, 0, 0, 0, 1, 1, 2, 2,  3,  3,  4,  4,  5,  5,  6,
                                                           6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};

/// Bit position just past the end-of-block code of the fixed-Huffman block that starts the
/// deflate data. Symbols are skipped, not decoded: only their lengths are needed.
std::size_t fixed_block_end(std::span<const std::uint8_t> deflate) {
  deflate_bits bits(deflate);
  bits.skip(3);  // BFINAL, BTYPE
  const std::size_t size_bits = deflate.size() * 8;
  for (;;) {
    const fixed_code code = fixed_literal_table[bits.peek(9)];
    bits.skip(code.length);
    if (bits.position() > size_bits) stream_error("ends inside a code");
    if (code.symbol < 256) continue;
    if (code.symbol == 256) return bits.position();
    if (code.symbol > 285) stream_error("holds length symbol " + std::to_string(code.symbol));
    bits.skip(length_extra_bits[code.symbol - 257u]);
    const std::uint32_t distance = reverse_bits(bits.take(5), 5);
    if (distance > 29) stream_error("holds distance symbol " + std::to_string(distance));
    bits.skip(distance_extra_bits[distance]);
  }
}

std::uint32_t read_be32(const std::uint8_t* bytes) {
  return (std::uint32_t{bytes[0]} << 24) | (std::uint32_t{bytes[1]} << 16) | (std::uint32_t{bytes[2]} << 8) | bytes[3];
}

template <typename Byte>
void append_be32(std::vector<Byte>& out, std::uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<Byte>((value >> shift) & 0xffu));
}

/// Adler-32 of A then B from those of A and B: each byte of B adds A's sum (less its
/// starting 1) once more to the second sum.
std::uint32_t adler32_combine(std::uint32_t first, std::uint32_t second, std::size_t second_length) {
  constexpr std::uint64_t base = 65521;
  const std::uint64_t s1_first = first & 0xffffu, s2_first = first >> 16;
  const std::uint64_t s1_second = second & 0xffffu, s2_second = second >> 16;
  const std::uint64_t s1 = (s1_first + s1_second + base - 1) % base;
  const std::uint64_t s2 = (s2_first + s2_second + (second_length % base) * ((s1_first + base - 1) % base)) % base;
  return static_cast<std::uint32_t>((s2 << 16) | s1);
}

/// A PNG chunk under construction: 4 bytes for its length, its type, then its data.
std::vector<std::uint8_t> start_chunk(const char (&type)[5]) {
  std::vector<std::uint8_t> chunk(8, 0);
  std::memcpy(chunk.data() + 4, type, 4);
  return chunk;
}

/// Writes the chunk's length and appends its CRC (of the type and the data).
void finish_chunk(std::vector<std::uint8_t>& chunk) {
  const auto length = static_cast<std::uint32_t>(chunk.size() - 8);
  for (std::size_t i = 0; i < 4; ++i) chunk[i] = static_cast<std::uint8_t>((length >> (24 - 8 * i)) & 0xffu);
  append_be32(chunk, detail::png_crc32(chunk.data() + 4, chunk.size() - 4));
}

struct compressed_band {
  std::vector<std::uint8_t> chunk;  // its IDAT chunk; the last band's waits for the Adler-32
  std::uint32_t adler = 1;
  std::size_t raw_length = 0;
};

/// Rows [first, last) compressed by stb into an IDAT chunk, the zlib header first if
/// `is_first`, made to continue into a following band unless `is_last` (whose chunk the
/// caller finishes).
compressed_band compress_band(const gray_image& image, int first, int last, bool is_first, bool is_last) {
  const auto width = static_cast<std::size_t>(image.width);
  const std::size_t row_bytes = width + 1;  // filter type 0, then the pixels
  std::vector<std::uint8_t> raw(row_bytes * static_cast<std::size_t>(last - first));
  for (int y = first; y < last; ++y) {
    std::uint8_t* row = raw.data() + row_bytes * static_cast<std::size_t>(y - first);
    row[0] = 0;
    std::memcpy(row + 1, image.pixels.data() + width * static_cast<std::size_t>(y), width);
  }
  const std::vector<std::uint8_t> zlib = detail::stb_zlib_compress(raw, png_deflate_level);
  if (zlib.size() < 7) stream_error("is " + std::to_string(zlib.size()) + " bytes, shorter than a zlib stream");
  const std::span<const std::uint8_t> deflate(zlib.data() + 2, zlib.size() - 6);

  compressed_band band;
  band.raw_length = raw.size();
  band.adler = read_be32(zlib.data() + zlib.size() - 4);
  band.chunk = start_chunk("IDAT");
  band.chunk.reserve(8 + 2 + deflate.size() + 9);
  if (is_first) band.chunk.insert(band.chunk.end(), zlib.begin(), zlib.begin() + 2);
  const std::size_t start = band.chunk.size();
  band.chunk.insert(band.chunk.end(), deflate.begin(), deflate.end());
  if (is_last) return band;
  const unsigned block_type = (deflate[0] >> 1) & 3u;
  if (block_type == 1) {
    const std::size_t end = fixed_block_end(deflate);
    const std::size_t padding = deflate.size() * 8 - end;
    if (padding >= 8 || (deflate.back() >> (8 - padding)) != 0) stream_error("does not end at its end-of-block code");
    band.chunk[start] &= 0xfe;
    // The stored block's 3 header bits go into the padding if they fit, else into a byte
    // of their own; either way the header's block type and BFINAL are zeros.
    if (padding < 3) band.chunk.push_back(0);
    band.chunk.insert(band.chunk.end(), {0x00, 0x00, 0xff, 0xff});
  } else if (block_type == 0) {
    std::size_t header = 0;  // stb's stored blocks, each 5 header bytes and LEN bytes of data
    for (;;) {
      if (header + 5 > deflate.size()) stream_error("ends inside a stored block's header");
      if ((deflate[header] & 1u) != 0) break;
      header += 5 + (std::size_t{deflate[header + 1]} | (std::size_t{deflate[header + 2]} << 8));
    }
    band.chunk[start + header] &= 0xfe;
  } else {
    stream_error("starts with block type " + std::to_string(block_type));
  }
  finish_chunk(band.chunk);
  return band;
}

}  // namespace

int png_band_rows(int width, std::size_t band_bytes) {
  if (width < 1 || static_cast<std::size_t>(width) + 1 > png_max_band_bytes) {
    qgan::detail::throw_error("PNG encoder: an image ", width, " pixels wide does not fit a band of at most ",
                              png_max_band_bytes, " bytes of rows");
  }
  const std::size_t row_bytes = static_cast<std::size_t>(width) + 1;
  return static_cast<int>(std::clamp<std::size_t>(band_bytes / row_bytes, 1, png_max_band_bytes / row_bytes));
}

void encode_png(const gray_image& image, const parallel_runner& run, const png_sink& sink, std::size_t band_bytes) {
  if (image.width < 1 || image.height < 1) {
    qgan::detail::throw_error("PNG encoder: cannot encode an empty image (", image.width, "x", image.height, ")");
  }
  if (image.pixels.size() != static_cast<std::size_t>(image.width) * static_cast<std::size_t>(image.height)) {
    qgan::detail::throw_error("PNG encoder: a ", image.width, "x", image.height, " image holds ", image.pixels.size(),
                              " pixels, not ", static_cast<std::size_t>(image.width) * static_cast<std::size_t>(image.height));
  }
  const int rows_per_band = png_band_rows(image.width, band_bytes);
  const std::size_t band_count = static_cast<std::size_t>((image.height + rows_per_band - 1) / rows_per_band);
  std::vector<compressed_band> bands(band_count);
  const auto compress = [&](std::size_t b) {
    const int first = static_cast<int>(b) * rows_per_band;
    bands[b] = compress_band(image, first, std::min(image.height, first + rows_per_band), b == 0, b + 1 == band_count);
  };
  if (run) {
    run(band_count, compress);
  } else {
    for (std::size_t b = 0; b < band_count; ++b) compress(b);
  }
  std::uint32_t adler = bands[0].adler;
  for (std::size_t b = 1; b < band_count; ++b) adler = adler32_combine(adler, bands[b].adler, bands[b].raw_length);
  append_be32(bands.back().chunk, adler);
  finish_chunk(bands.back().chunk);

  std::vector<std::uint8_t> header = start_chunk("IHDR");
  append_be32(header, static_cast<std::uint32_t>(image.width));
  append_be32(header, static_cast<std::uint32_t>(image.height));
  header.insert(header.end(), {8, 0, 0, 0, 0});  // 8-bit gray, deflate, the five filters, no interlace
  finish_chunk(header);
  std::vector<std::uint8_t> end = start_chunk("IEND");
  finish_chunk(end);
  const auto emit = [&sink](std::span<const std::uint8_t> bytes) { sink(std::as_bytes(bytes)); };
  emit(std::array<std::uint8_t, 8>{137, 80, 78, 71, 13, 10, 26, 10});
  emit(header);
  for (compressed_band& band : bands) {
    emit(band.chunk);
    band.chunk = {};
  }
  emit(end);
}

std::vector<std::byte> encode_png(const gray_image& image, const parallel_runner& run, std::size_t band_bytes) {
  std::vector<std::byte> png;
  encode_png(image, run, [&png](std::span<const std::byte> bytes) { png.insert(png.end(), bytes.begin(), bytes.end()); },
             band_bytes);
  return png;
}

}  // namespace dcgan
