// libFuzzer target for the safetensors reader: parses any byte string through the same
// in-memory entry point the file reader uses, then reads every tensor (widening the float
// ones), so a header that passes validation is also exercised as data. qgan::error is
// the one expected outcome for bad input; anything else (a crash, a sanitizer report, any
// other exception) is a bug. Seeds: fuzz/corpus/safetensors; tokens: safetensors.dict.
#include <cstddef>
#include <cstdint>
#include <span>

#include "qgan/io/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto bytes = std::as_bytes(std::span(data, size));
  try {
    const auto file = qgan::io::safetensors_file::parse(bytes, "fuzz");
    std::size_t total = 0;
    for (const auto& tensor : file.tensors()) {
      if (qgan::io::is_float_readable(tensor.type)) {
        total += file.read_float(tensor).size();
      } else {
        (void)file.read_float(tensor);  // must refuse with qgan::error, naming the dtype
      }
      total += tensor.bytes.size();
      (void)file.at(tensor.name);
    }
    for (const auto& [key, value] : file.metadata()) total += key.size() + value.size();
    (void)total;
  } catch (const qgan::error&) {
  }
  return 0;
}
