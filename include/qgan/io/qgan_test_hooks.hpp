// Tools for tests, fuzzers and tools that build .qgan files a correct writer never would:
// reseal() recomputes the checksums of a deliberately corrupted image so the reader's later
// checks are reached, and qgan_file_detail::serialize (qgan_writer.hpp) takes a write_layout
// to produce what a newer 1.x writer could, or packed tensors written unchecked. Nothing
// here is needed to read or write a model.
#pragma once

#include "qgan/core/isa_namespace.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>

#include "qgan/io/qgan_format.hpp"
#include "qgan/io/qgan_writer.hpp"

namespace qgan::io::qgan_file_detail {
QGAN_BEGIN_FUNCTIONS

// Recomputes every payload checksum and then the header checksum of a file image in place,
// walking its directory leniently (it stops where the directory stops making sense). A file
// whose checksums agree reaches the reader's later checks. Never reads or writes outside
// `file`.
inline void reseal(std::span<std::byte> file) noexcept {
  if (file.size() < header_bytes) return;
  const std::uint64_t size = file.size();
  const auto header_size = load<std::uint32_t>(file, header_at::header_size);
  const auto entry_count = load<std::uint64_t>(file, header_at::entry_count);
  const auto directory_size = load<std::uint64_t>(file, header_at::directory_size);
  const auto data_offset = load<std::uint64_t>(file, header_at::data_offset);
  const std::uint64_t directory_end =
      std::min(size, add(header_size, directory_size).value_or(size));
  std::uint64_t at = header_size;
  for (std::uint64_t i = 0;
       i < entry_count && at <= directory_end && directory_end - at >= record_fixed_bytes; ++i) {
    const auto record_size = load<std::uint32_t>(file, at + record_at::record_size);
    if (record_size < record_fixed_bytes || record_size > directory_end - at) break;
    const auto offset = load<std::uint64_t>(file, at + record_at::payload_offset);
    const auto payload_size = load<std::uint64_t>(file, at + record_at::payload_size);
    if (offset <= size && payload_size <= size - offset) {
      store(file, at + record_at::payload_checksum, xxh3(file.subspan(offset, payload_size)));
    }
    at += record_size;
  }
  store(file, header_at::header_checksum, header_checksum(file.first(std::min(size, data_offset))));
}

QGAN_END_FUNCTIONS
}  // namespace qgan::io::qgan_file_detail
