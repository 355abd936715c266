// How qgan's writers (safetensors, .qgan, PNG, raw floats) put bytes on disk without ever
// leaving a half-written file or destroying what was there. docs/file-safety.md states the
// promises; this is where they are kept.
//
//   qgan::io::atomic_file file(path);   // checks the target, opens a temporary
//   file.write(bytes);                   // any number of times (write_at patches)
//   file.commit();                       // makes the bytes the target's, all at once
//   qgan::io::commit_together({&a, &b}); // several files: all, or none of them
//
// What the target is decides how (resolved when the object is built, before any byte):
// - a regular file, or no file: bytes go to a hidden temporary in the target's directory
//   (".NAME.tmp-PID-N", the name shortened to fit NAME_MAX), which takes the old file's
//   permission bits (and, for root, its owner), is fsynced and renamed over the target.
// - a symbolic link: followed, and the file it names is replaced as above; the link stays.
//   A link to nothing is refused, as cp refuses it.
// - a character device or a FIFO (/dev/null, a pipe to another program): never renamed
//   over. The bytes are staged in an unnamed temporary file and written through at
//   commit, so a failure before commit writes nothing there; a FIFO must have a reader
//   when the object is built (qgan does not wait for one).
// - a directory, block device or socket: refused.
// Until commit succeeds the temporary is removed on destruction, and on SIGINT, SIGTERM,
// SIGHUP or SIGPIPE once the program calls remove_temporaries_on_signals(). Every failure
// is a qgan::error naming the target and the path that failed.
#pragma once

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <initializer_list>
#include <span>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "qgan/core/error.hpp"
#include "qgan/io/file_checks.hpp"
#include "qgan/io/temporary_files.hpp"

namespace qgan::io {

enum class output_kind {
  new_file,      ///< nothing there yet: created by rename
  regular_file,  ///< replaced by rename, keeping its permission bits
  stream,        ///< a character device or FIFO: written through at commit
};

namespace atomic_write_detail {

[[noreturn]] inline void fail_errno(const std::string& target, const char* what, const std::filesystem::path& path,
                                    int code) {
  detail::throw_error(target, ": ", what, " '", path.string(), "': ",
                      std::error_code(code, std::generic_category()).message());
}

inline std::filesystem::path directory_of(const std::filesystem::path& path) {
  return path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
}

// ".NAME<tag>PID-N": hidden, unique per process and call; the name part is cut so that
// the whole stays within NAME_MAX (a long target name must not fail on its temporary).
inline std::filesystem::path sibling_name(const std::filesystem::path& target, const char* tag) {
  static std::atomic<unsigned> counter{0};
  std::string suffix = tag;
  suffix += std::to_string(::getpid());
  suffix += "-";
  suffix += std::to_string(counter++);
  std::string name = target.filename().string();
  const std::size_t room = NAME_MAX - 1 - suffix.size();
  if (name.size() > room) name.resize(room);
  return directory_of(target) / ("." + name + suffix);
}

struct resolved_target {
  std::filesystem::path path;  ///< symlinks followed
  output_kind kind = output_kind::new_file;
  struct stat info {};
};

inline resolved_target resolve(const std::filesystem::path& requested) {
  const std::string where = requested.string();
  if (requested.empty()) detail::throw_error("output path is empty");
  if (!requested.has_filename()) detail::throw_error(where, ": not a file name");
  resolved_target result{requested, output_kind::new_file, {}};
  struct stat link_info {};
  if (::lstat(requested.c_str(), &link_info) != 0) {
    if (errno == ENOENT) return result;
    fail_errno(where, "cannot inspect", requested, errno);
  }
  if (S_ISLNK(link_info.st_mode)) {
    std::error_code error;
    result.path = std::filesystem::canonical(requested, error);
    if (error) {
      const auto points_to = std::filesystem::read_symlink(requested, error);
      detail::throw_error(where, ": symbolic link to '", error ? std::string("?") : points_to.string(),
                          "', which does not exist; qgan writes through links only to existing files");
    }
  }
  if (::stat(result.path.c_str(), &result.info) != 0) fail_errno(where, "cannot inspect", result.path, errno);
  const mode_t mode = result.info.st_mode;
  if (S_ISREG(mode)) {
    result.kind = output_kind::regular_file;
  } else if (S_ISCHR(mode) || S_ISFIFO(mode)) {
    result.kind = output_kind::stream;
  } else {
    detail::throw_error(where, ": is ", file_type_name(mode),
                        "; qgan writes regular files, character devices and FIFOs only");
  }
  return result;
}

}  // namespace atomic_write_detail

class atomic_file {
 public:
  explicit atomic_file(const std::filesystem::path& target)
      : requested_(target.string()), resolved_(atomic_write_detail::resolve(target)) {
    if (resolved_.kind == output_kind::stream) {
      open_stream();
    } else {
      open_temporary();
    }
  }
  atomic_file(const atomic_file&) = delete;
  atomic_file& operator=(const atomic_file&) = delete;
  ~atomic_file() {
    if (fd_ >= 0) ::close(fd_);
    if (stream_fd_ >= 0) ::close(stream_fd_);
    if (!committed_ && !path_.empty()) ::unlink(path_.c_str());
  }

  /// The temporary file's path (empty for a stream target, whose staging file has none).
  [[nodiscard]] const std::filesystem::path& temporary_path() const noexcept { return path_; }
  /// The file the bytes end up in: the target with symlinks followed.
  [[nodiscard]] const std::filesystem::path& target() const noexcept { return resolved_.path; }
  [[nodiscard]] output_kind kind() const noexcept { return resolved_.kind; }
  [[nodiscard]] bool committed() const noexcept { return committed_; }

  void write(std::span<const std::byte> bytes) {
    while (!bytes.empty()) {
      // Linux writes at most about 2 GiB per call; loop on short writes and signals.
      const std::size_t chunk = std::min<std::size_t>(bytes.size(), std::size_t{1} << 30);
      const ::ssize_t written = ::write(fd_, bytes.data(), chunk);
      if (written < 0 && errno == EINTR) continue;
      if (written == 0) errno = ENOSPC;  // no progress and no reason given
      if (written <= 0) fail("cannot write", staging_name());
      bytes = bytes.subspan(static_cast<std::size_t>(written));
    }
  }

  /// Overwrites bytes already written (a header whose checksums are known only at the end).
  void write_at(std::uint64_t offset, std::span<const std::byte> bytes) {
    while (!bytes.empty()) {
      const ::ssize_t done = ::pwrite(fd_, bytes.data(), bytes.size(), static_cast<off_t>(offset));
      if (done < 0 && errno == EINTR) continue;
      if (done == 0) errno = ENOSPC;
      if (done <= 0) fail("cannot write", staging_name());
      bytes = bytes.subspan(static_cast<std::size_t>(done));
      offset += static_cast<std::uint64_t>(done);
    }
  }

  /// Makes the written bytes the target's; see the header comment for each kind.
  void commit() {
    prepare();
    publish();
    finish();
  }

  // The three steps of commit, for commit_together. prepare() makes the bytes durable;
  // publish() puts them in place (and can be undone by roll_back() until finish()).
  void prepare() {
    if (resolved_.kind == output_kind::stream) return;
    if (::fsync(fd_) != 0) fail("cannot fsync", path_);
    const int fd = std::exchange(fd_, -1);
    if (::close(fd) != 0) fail("cannot close", path_);
  }

  void publish() {
    if (resolved_.kind == output_kind::stream) {
      copy_staging_to_stream();
      committed_ = true;
      return;
    }
    if (::rename(path_.c_str(), resolved_.path.c_str()) != 0) fail("cannot rename", path_);
    registration_.release();
    committed_ = true;
    // Make the rename itself durable. Best effort: the new file is complete and in place,
    // and a failure here could only make a crash bring back the previous version.
    const int dir_fd = ::open(atomic_write_detail::directory_of(resolved_.path).c_str(),
                              O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd >= 0) {
      ::fsync(dir_fd);
      ::close(dir_fd);
    }
  }

  /// Before publish(): keeps the old file under a hidden name so roll_back() can restore it.
  void keep_previous() {
    if (resolved_.kind != output_kind::regular_file) return;
    previous_ = atomic_write_detail::sibling_name(resolved_.path, ".old-");
    previous_registration_ = temporary_registration(previous_);
    if (::link(resolved_.path.c_str(), previous_.c_str()) != 0) {
      const int code = errno;
      previous_registration_.release();
      const std::filesystem::path failed = std::exchange(previous_, {});
      fail_code("cannot keep the previous version as", failed, code);
    }
  }

  /// After publish(), before finish(): brings back what the target was. Best effort: it
  /// runs while another error is on its way out.
  void roll_back() noexcept {
    if (!committed_ || resolved_.kind == output_kind::stream) return;
    if (!previous_.empty()) {
      if (::rename(previous_.c_str(), resolved_.path.c_str()) == 0) previous_.clear();
    } else if (resolved_.kind == output_kind::new_file) {
      ::unlink(resolved_.path.c_str());
    }
    committed_ = false;
  }

  /// Drops the previous version kept by keep_previous().
  void finish() noexcept {
    if (!previous_.empty()) ::unlink(previous_.c_str());
    previous_.clear();
    previous_registration_.release();
  }

 private:
  void open_temporary() {
    for (int attempt = 0;; ++attempt) {
      // In the target's directory: rename is atomic only within one file system. O_EXCL
      // refuses to reuse a leftover. Registered first, so no signal can miss the file.
      path_ = atomic_write_detail::sibling_name(resolved_.path, ".tmp-");
      registration_ = temporary_registration(path_);
      fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
      if (fd_ >= 0) break;
      const int code = errno;
      registration_.release();
      if (code != EEXIST || attempt == 100) {
        const std::filesystem::path failed = std::exchange(path_, {});
        fail_code("cannot create temporary file", failed, code);
      }
    }
    if (resolved_.kind == output_kind::regular_file) {
      // The replacement keeps the old file's permissions; only root may keep its owner.
      if (::fchmod(fd_, resolved_.info.st_mode & 07777) != 0) fail("cannot set the permissions of", path_);
      if (::geteuid() == 0) (void)!::fchown(fd_, resolved_.info.st_uid, resolved_.info.st_gid);
    }
  }

  void open_stream() {
    // Non-blocking, so a FIFO nobody reads is an error now instead of a hang.
    stream_fd_ = ::open(resolved_.path.c_str(), O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (stream_fd_ < 0) {
      if (errno == ENXIO) {
        detail::throw_error(requested_, ": FIFO has no reader (qgan does not wait for one)");
      }
      fail("cannot open", resolved_.path);
    }
    const int flags = ::fcntl(stream_fd_, F_GETFL);
    if (flags < 0 || ::fcntl(stream_fd_, F_SETFL, flags & ~O_NONBLOCK) != 0) fail("cannot configure", resolved_.path);
    const std::filesystem::path staging_directory = std::filesystem::temp_directory_path();
    fd_ = ::open(staging_directory.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd_ < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
      // No O_TMPFILE on this file system: a named file, unlinked at once.
      std::string name = (staging_directory / "qgan-staging-XXXXXX").string();
      fd_ = ::mkostemp(name.data(), O_CLOEXEC);
      if (fd_ >= 0) ::unlink(name.c_str());
    }
    if (fd_ < 0) fail("cannot create a staging file in", staging_directory);
  }

  void copy_staging_to_stream() {
    std::array<std::byte, 1 << 16> buffer{};
    off_t at = 0;
    for (;;) {
      const ::ssize_t got = ::pread(fd_, buffer.data(), buffer.size(), at);
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) fail("cannot read back the staging file for", resolved_.path);
      if (got == 0) break;
      at += got;
      std::span<const std::byte> rest(buffer.data(), static_cast<std::size_t>(got));
      while (!rest.empty()) {
        const ::ssize_t put = ::write(stream_fd_, rest.data(), rest.size());
        if (put < 0 && errno == EINTR) continue;
        if (put == 0) errno = ENOSPC;
        if (put <= 0) fail("cannot write", resolved_.path);
        rest = rest.subspan(static_cast<std::size_t>(put));
      }
    }
    const int fd = std::exchange(stream_fd_, -1);
    if (::close(fd) != 0) fail("cannot close", resolved_.path);
  }

  [[nodiscard]] std::filesystem::path staging_name() const {
    return path_.empty() ? std::filesystem::path("the staging file for " + resolved_.path.string()) : path_;
  }

  [[noreturn]] void fail(const char* what, const std::filesystem::path& path) const { fail_code(what, path, errno); }
  [[noreturn]] void fail_code(const char* what, const std::filesystem::path& path, int code) const {
    atomic_write_detail::fail_errno(requested_, what, path, code);
  }

  std::string requested_;
  atomic_write_detail::resolved_target resolved_;
  std::filesystem::path path_;
  temporary_registration registration_;
  std::filesystem::path previous_;
  temporary_registration previous_registration_;
  int fd_ = -1;
  int stream_fd_ = -1;
  bool committed_ = false;
};

/// Commits several files as one: if any fails, those already in place get their previous
/// contents back (stream targets go last, since bytes written through cannot be taken
/// back). A kill -9 between the renames leaves the first files new and the rest old,
/// and may leave a hidden ".NAME.old-PID-N" beside a replaced file.
inline void commit_together(std::initializer_list<atomic_file*> list) {
  std::vector<atomic_file*> files;
  for (atomic_file* file : list) {
    if (file != nullptr) files.push_back(file);
  }
  std::stable_partition(files.begin(), files.end(),
                        [](const atomic_file* file) { return file->kind() != output_kind::stream; });
  for (atomic_file* file : files) file->prepare();
  std::size_t published = 0;
  try {
    for (atomic_file* file : files) {
      if (files.size() > 1) file->keep_previous();
      file->publish();
      ++published;
    }
  } catch (...) {
    while (published > 0) files[--published]->roll_back();
    for (atomic_file* file : files) file->finish();
    throw;
  }
  for (atomic_file* file : files) file->finish();
}

}  // namespace qgan::io
