// Checks a program runs on its file arguments before it reads or writes anything:
// inputs must be regular files (qgan reads models at offsets, and a FIFO or device would
// block or stream once), and no output may be one of the inputs or another output, by
// any spelling of its path (symlinks, "..", hard links). Errors are qgan::error naming
// the role and the path, e.g. "--raw out.f32: is the same file as -o out.f32".
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <system_error>
#include <variant>

#include "qgan/core/error.hpp"

namespace qgan::io {

/// "a directory", "a FIFO", ... for a message about a file that has the wrong type.
inline const char* file_type_name(mode_t mode) {
  if (S_ISREG(mode)) return "a regular file";
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISFIFO(mode)) return "a FIFO";
  return "not a regular file";
}

/// Opens path for reading without blocking on a FIFO, and refuses anything but a regular
/// file. Returns the descriptor (the caller closes it).
inline int open_regular_file(const std::filesystem::path& path) {
  const std::string where = path.string();
  if (path.empty()) detail::throw_error("input path is empty");
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) {
    const int code = errno;
    if (code == ENOENT) detail::throw_error(where, ": no such file");
    detail::throw_error(where, ": cannot open: ", std::error_code(code, std::generic_category()).message());
  }
  struct stat info {};
  if (::fstat(fd, &info) != 0) {
    const int code = errno;
    ::close(fd);
    detail::throw_error(where, ": cannot stat: ", std::error_code(code, std::generic_category()).message());
  }
  if (!S_ISREG(info.st_mode)) {
    ::close(fd);
    detail::throw_error(where, ": is ", file_type_name(info.st_mode),
                        "; qgan reads models and data from regular files only (copy it to one first)");
  }
  // Reads of a regular file never block; clearing O_NONBLOCK keeps it that way for every
  // file system, some of which honour it.
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  return fd;
}

/// The size of a regular file, with open_regular_file's checks and messages.
inline std::uint64_t regular_file_size(const std::filesystem::path& path) {
  const int fd = open_regular_file(path);
  struct stat info {};
  const int status = ::fstat(fd, &info);
  ::close(fd);
  if (status != 0 || info.st_size < 0) detail::throw_error(path.string(), ": cannot stat");
  return static_cast<std::uint64_t>(info.st_size);
}

/// A file argument and what the command calls it ("MODEL", "-o", "--z").
struct file_role {
  std::string role;
  std::filesystem::path path;
};

namespace file_checks_detail {

struct inode {
  dev_t device;
  ino_t number;
  bool operator==(const inode&) const = default;
};
// An existing file is its inode (so hard links and every path spelling agree); a file not
// there yet is its absolute path with links and ".." resolved as far as they exist.
using identity = std::variant<inode, std::string>;

inline identity identify(const std::filesystem::path& path) {
  struct stat info {};
  if (!path.empty() && ::stat(path.c_str(), &info) == 0) return inode{info.st_dev, info.st_ino};
  std::error_code error;
  std::filesystem::path resolved = std::filesystem::weakly_canonical(std::filesystem::absolute(path, error), error);
  return (error ? path : resolved).lexically_normal().string();
}

}  // namespace file_checks_detail

/// Throws when an output is an input, or two outputs are one file. Non-regular outputs
/// count too: "-o /dev/null --raw /dev/null" names one file twice.
inline void require_distinct_files(std::span<const file_role> inputs, std::span<const file_role> outputs) {
  using file_checks_detail::identify;
  for (std::size_t o = 0; o < outputs.size(); ++o) {
    const auto output = identify(outputs[o].path);
    for (const file_role& input : inputs) {
      if (identify(input.path) == output) {
        detail::throw_error(outputs[o].role, " ", outputs[o].path.string(), ": is the same file as ", input.role, " ",
                            input.path.string(), ", which it would replace");
      }
    }
    for (std::size_t earlier = 0; earlier < o; ++earlier) {
      if (identify(outputs[earlier].path) == output) {
        detail::throw_error(outputs[o].role, " ", outputs[o].path.string(), ": is the same file as ",
                            outputs[earlier].role, " ", outputs[earlier].path.string(),
                            "; each output needs its own file");
      }
    }
  }
}

}  // namespace qgan::io
