// Atomic replacement of a file, shared by qgan's writers (safetensors, .qgan): bytes go to a
// hidden temporary file in the target's directory, which is fsynced and renamed over the
// target, so a crash or an error never leaves a half-written file under the final name.
// Until commit() succeeds the temporary file is removed on destruction; every failure is a
// qgan::error naming the target and the path that failed.
//
//   qgan::io::atomic_file file(path);   // creates .<name>.tmp-<pid>-<n> next to path
//   file.write(bytes);                   // any number of times
//   file.commit();                       // fsync, close, rename over path, fsync the directory
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <filesystem>
#include <span>
#include <string>
#include <system_error>
#include <utility>

#include "qgan/core/error.hpp"

namespace qgan::io {

class atomic_file {
 public:
  explicit atomic_file(const std::filesystem::path& target) : target_(target) {
    static std::atomic<unsigned> counter{0};
    const std::filesystem::path directory =
        target.has_parent_path() ? target.parent_path() : std::filesystem::path(".");
    for (int attempt = 0;; ++attempt) {
      // Hidden, in the target's directory (rename is atomic only within one file system),
      // unique per process and call; O_EXCL refuses to reuse a leftover.
      std::string name = ".";
      name += target.filename().string();
      name += ".tmp-";
      name += std::to_string(::getpid());
      name += "-";
      name += std::to_string(counter++);
      path_ = directory / name;
      fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
      if (fd_ >= 0) return;
      if (errno != EEXIST || attempt == 100) fail("cannot create temporary file", path_);
    }
  }
  atomic_file(const atomic_file&) = delete;
  atomic_file& operator=(const atomic_file&) = delete;
  ~atomic_file() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(path_.c_str());
  }

  /// The temporary file's path (for tests and messages).
  [[nodiscard]] const std::filesystem::path& temporary_path() const noexcept { return path_; }

  void write(std::span<const std::byte> bytes) {
    while (!bytes.empty()) {
      // Linux writes at most about 2 GiB per call; loop on short writes and signals.
      const std::size_t chunk = std::min<std::size_t>(bytes.size(), std::size_t{1} << 30);
      const ::ssize_t written = ::write(fd_, bytes.data(), chunk);
      if (written < 0 && errno == EINTR) continue;
      if (written == 0) errno = ENOSPC;  // no progress and no reason given
      if (written <= 0) fail("cannot write", path_);
      bytes = bytes.subspan(static_cast<std::size_t>(written));
    }
  }

  void commit() {
    if (::fsync(fd_) != 0) fail("cannot fsync", path_);
    const int fd = std::exchange(fd_, -1);
    if (::close(fd) != 0) fail("cannot close", path_);
    if (::rename(path_.c_str(), target_.c_str()) != 0) fail("cannot rename", path_);
    committed_ = true;
    // Make the rename itself durable. Best effort: the new file is complete and in place,
    // and a failure here could only make a crash bring back the previous version.
    const std::filesystem::path directory =
        target_.has_parent_path() ? target_.parent_path() : std::filesystem::path(".");
    const int dir_fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd >= 0) {
      ::fsync(dir_fd);
      ::close(dir_fd);
    }
  }

 private:
  [[noreturn]] void fail(const char* what, const std::filesystem::path& path) const {
    const int code = errno;
    detail::throw_error(target_.string(), ": ", what, " '", path.string(),
                        "': ", std::error_code(code, std::generic_category()).message());
  }

  std::filesystem::path target_;
  std::filesystem::path path_;
  int fd_ = -1;
  bool committed_ = false;
};

}  // namespace qgan::io
