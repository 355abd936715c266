// A regular file read at offsets with pread: a file truncated or failing under the reader
// gives a qgan::error naming it, where a memory mapping would give SIGBUS. The streaming
// quantizer reads every tensor through this.
#pragma once

#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <sys/stat.h>

#include "qgan/core/error.hpp"
#include "qgan/io/file_checks.hpp"

namespace qgan::io {

class input_file {
 public:
  /// Opens path, refusing anything but a regular file (open_regular_file's messages).
  explicit input_file(const std::filesystem::path& path) : path_(path), fd_(open_regular_file(path)) {}
  input_file(const input_file&) = delete;
  input_file& operator=(const input_file&) = delete;
  ~input_file() { ::close(fd_); }

  /// The whole file as it is now (its size from fstat). A loader that parses this copy
  /// instead of a mapping cannot be killed by SIGBUS when the file is truncated under it.
  [[nodiscard]] std::vector<std::byte> read_all() const {
    struct stat info {};
    if (::fstat(fd_, &info) != 0 || info.st_size < 0) {
      detail::throw_error(path_.string(), ": cannot stat: ", std::generic_category().message(errno));
    }
    std::vector<std::byte> bytes(static_cast<std::size_t>(info.st_size));
    read_at(0, bytes);
    return bytes;
  }

  /// Exactly bytes.size() bytes at offset, or an error naming the file (and "the file
  /// ended" when it is now shorter than that).
  void read_at(std::uint64_t offset, std::span<std::byte> bytes) const {
    std::size_t done = 0;
    while (done < bytes.size()) {
      const ::ssize_t got = ::pread(fd_, bytes.data() + done, bytes.size() - done, static_cast<off_t>(offset + done));
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) {
        detail::throw_error(path_.string(), ": cannot read ", bytes.size(), " bytes at offset ", offset, ": ",
                            got < 0 ? std::generic_category().message(errno)
                                    : std::string("the file ended (was it truncated while qgan read it?)"));
      }
      done += static_cast<std::size_t>(got);
    }
  }

 private:
  std::filesystem::path path_;
  int fd_;
};

}  // namespace qgan::io
