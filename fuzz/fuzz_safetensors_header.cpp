// libFuzzer target for the safetensors header alone: the input is the JSON text, which the
// target wraps into a whole file (the 8-byte length, the text, then as many zero data bytes
// as the largest data_offsets end it finds, capped at max_data_bytes), so mutations spend
// their time on the header's structure (nesting, many tensors, empty axes, overflowing
// shapes) rather than on a length prefix and data that rarely agree with it. Then it
// parses and reads every tensor, as fuzz_safetensors does. qgan::error is the one expected
// outcome. Seeds: fuzz/corpus/safetensors_header; tokens: safetensors.dict. Run with
// -max_len=1048576 so a header can hold thousands of tensors or deep nesting.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "qgan/io/safetensors.hpp"

namespace {

/// Data bytes the wrapper adds at most: more only costs memory, not coverage.
constexpr std::uint64_t max_data_bytes = 1 << 20;

// The largest second number after any "data_offsets" in text (a cheap scan, not a parse:
// a wrong guess only makes the layout check fail).
std::uint64_t largest_offset(std::string_view text) {
  std::uint64_t largest = 0;
  for (std::size_t at = text.find("data_offsets"); at != std::string_view::npos;
       at = text.find("data_offsets", at + 1)) {
    std::size_t i = text.find(',', at);
    if (i == std::string_view::npos || i - at > 32) continue;
    ++i;
    while (i < text.size() && text[i] == ' ') ++i;
    std::uint64_t value = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9' && value <= max_data_bytes) {
      value = value * 10 + static_cast<std::uint64_t>(text[i++] - '0');
    }
    if (value <= max_data_bytes) largest = std::max(largest, value);
  }
  return largest;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view header(reinterpret_cast<const char*>(data), size);
  const std::uint64_t data_bytes = largest_offset(header);
  std::vector<std::byte> image(8 + size + data_bytes, std::byte{0});
  for (std::size_t i = 0; i < 8; ++i) {
    image[i] = static_cast<std::byte>((std::uint64_t{size} >> (8 * i)) & 0xffu);
  }
  std::copy_n(reinterpret_cast<const std::byte*>(data), size, image.begin() + 8);
  try {
    const auto file = qgan::io::safetensors_file::parse(image, "fuzz");
    std::size_t total = 0;
    for (const auto& tensor : file.tensors()) {
      if (qgan::io::is_float_readable(tensor.type)) {
        total += file.read_float(tensor).size();
      }
      // What the reader promises every shape it hands out: its element count and the
      // product of any of its axes fit, and its bytes are what dtype and shape need.
      std::int64_t nonzero = 1;
      for (const auto extent : tensor.shape) {
        if (extent != 0 && __builtin_mul_overflow(nonzero, extent, &nonzero)) __builtin_trap();
      }
      if (qgan::io::tensor_byte_size(tensor.type, tensor.shape) != tensor.bytes.size()) {
        __builtin_trap();
      }
      if (file.find(tensor.name) != &tensor) __builtin_trap();
      total += tensor.bytes.size();
    }
    for (const auto& [key, value] : file.metadata()) total += key.size() + value.size();
    (void)total;
  } catch (const qgan::error&) {
  }
  return 0;
}
