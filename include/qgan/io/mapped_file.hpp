// A whole file mapped read-only into memory (POSIX mmap), so a loader can look at a
// multi-gigabyte model without copying it; pages are read as tensors are touched. RAII and
// move-only. A zero-length file gives an empty span, because mmap refuses length 0.
// The file must not be truncated while mapped (the kernel would raise SIGBUS); replacing it
// by rename, as qgan's writers do, is safe: the mapping keeps the old contents.
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <span>
#include <string>
#include <system_error>
#include <utility>

#include "qgan/core/error.hpp"
#include "qgan/io/file_checks.hpp"

namespace qgan::io {

class mapped_file {
 public:
  mapped_file() noexcept = default;

  static mapped_file open(const std::filesystem::path& path) {
    const int fd = open_regular_file(path);
    // The descriptor is closed on every path out; the mapping does not need it.
    struct fd_closer {
      int fd;
      ~fd_closer() { ::close(fd); }
    } closer{fd};

    struct stat info {};
    if (::fstat(fd, &info) != 0) fail(path, "cannot stat", errno);
    if (info.st_size < 0 ||
        static_cast<std::uintmax_t>(info.st_size) > std::numeric_limits<std::size_t>::max()) {
      detail::throw_error(path.string(), ": file size ", info.st_size,
                          " does not fit in this process's address space");
    }
    mapped_file file;
    file.size_ = static_cast<std::size_t>(info.st_size);
    if (file.size_ == 0) return file;
    void* address = ::mmap(nullptr, file.size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (address == MAP_FAILED) fail(path, "cannot mmap", errno);
    file.data_ = static_cast<const std::byte*>(address);
    return file;
  }

  mapped_file(mapped_file&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

  mapped_file& operator=(mapped_file&& other) noexcept {
    if (this != &other) {
      unmap();
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }

  mapped_file(const mapped_file&) = delete;
  mapped_file& operator=(const mapped_file&) = delete;

  ~mapped_file() { unmap(); }

  [[nodiscard]] std::span<const std::byte> bytes() const noexcept { return {data_, size_}; }

 private:
  [[noreturn]] static void fail(const std::filesystem::path& path, const char* what, int code) {
    detail::throw_error(path.string(), ": ", what, ": ",
                        std::error_code(code, std::generic_category()).message());
  }

  void unmap() noexcept {
    // munmap can only fail on arguments we never produce; nothing to report from here.
    if (data_ != nullptr) ::munmap(const_cast<std::byte*>(data_), size_);
    data_ = nullptr;
    size_ = 0;
  }

  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace qgan::io
