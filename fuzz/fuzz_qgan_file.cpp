// libFuzzer target for the .qgan reader. Each input is parsed twice through parse_qgan, the
// in-memory entry point read_qgan uses: as it is (nearly every mutation dies at the header
// checksum, which is what a corrupt file should do), and after qgan_file_detail::reseal
// recomputed its checksums, so that mutated directories, shapes, offsets and params reach
// every later check. What parses is used: every packed tensor is dequantized, every entry
// looked up by name, and the model written back and parsed again, which must succeed and
// give the same bytes. qgan::error from parsing the input is the one expected outcome for
// bad input; anything else (a crash, a sanitizer report, another exception, a model that
// does not survive its own round trip) is a bug. Seeds: fuzz/corpus/qgan; tokens: qgan.dict.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <variant>
#include <vector>

#include "qgan/io/qgan_file.hpp"
#include "qgan/io/qgan_test_hooks.hpp"
#include "qgan/pack/quantize.hpp"

namespace {

void exercise(std::span<const std::byte> bytes) {
  qgan::io::qgan_model model;
  try {
    model = qgan::io::parse_qgan(bytes, "fuzz");
  } catch (const qgan::error&) {
    return;
  }
  std::size_t total = 0;
  for (const auto& entry : model.tensors) {
    if (const auto* packed = std::get_if<qgan::packed_tensor>(&entry.tensor)) {
      total += qgan::dequantize(*packed, entry.name).size();  // validated: must not throw
    }
    if (&model.at(entry.name) != &entry) std::abort();
  }
  for (const auto& [key, value] : model.metadata) total += key.size() + value.size();
  (void)total;
  // What was read is a valid model: it serializes, and its bytes parse back to themselves.
  const auto again = qgan::io::serialize_qgan(model);
  const auto reread = qgan::io::parse_qgan(again, "fuzz-reserialized");
  if (qgan::io::serialize_qgan(reread) != again) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto bytes = std::as_bytes(std::span(data, size));
  exercise(bytes);
  std::vector<std::byte> resealed(bytes.begin(), bytes.end());
  qgan::io::qgan_file_detail::reseal(resealed);
  exercise(resealed);
  return 0;
}
