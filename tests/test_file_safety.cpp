// What qgan promises about the files it writes and reads (docs/file-safety.md), one case
// per way a user's file was found to be at risk; the case names say which.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "qgan/core/parallel.hpp"
#include "qgan/io/atomic_write.hpp"
#include "qgan/io/file_checks.hpp"
#include "qgan/io/input_file.hpp"
#include "qgan/io/temporary_files.hpp"
#include "test_files.hpp"

namespace fs = std::filesystem;
namespace io = qgan::io;

namespace {

std::span<const std::byte> as_bytes(const std::string& text) {
  return std::as_bytes(std::span<const char>(text.data(), text.size()));
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

void write_text(const fs::path& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

void write_atomically(const fs::path& path, const std::string& text) {
  io::atomic_file file(path);
  file.write(as_bytes(text));
  file.commit();
}

mode_t permission_bits(const fs::path& path) {
  struct stat info {};
  REQUIRE(::stat(path.c_str(), &info) == 0);
  return info.st_mode & 07777;
}

}  // namespace

TEST_CASE("REPLACED_FILE_KEEPS_ITS_MODE: a 0600 output stays 0600", "[file_safety]") {
  const qgan::test::temp_dir dir("qgan_safety_");
  const fs::path target = dir.path / "secret.qgan";
  write_text(target, "old");
  REQUIRE(::chmod(target.c_str(), 0600) == 0);
  write_atomically(target, "new");
  CHECK(read_text(target) == "new");
  CHECK(permission_bits(target) == 0600);
  CHECK(dir.names() == std::vector<std::string>{"secret.qgan"});
}

TEST_CASE("SYMLINK_OUTPUT: the link stays, the file it names is replaced", "[file_safety]") {
  const qgan::test::temp_dir dir("qgan_safety_");
  const fs::path real = dir.path / "real.qgan", link = dir.path / "link.qgan";
  write_text(real, "old");
  fs::create_symlink(real, link);
  write_atomically(link, "new");
  CHECK(fs::is_symlink(link));
  CHECK(read_text(real) == "new");

  const fs::path dangling = dir.path / "dangling.qgan";
  fs::create_symlink(dir.path / "nothing-here", dangling);
  CHECK_THROWS_WITH(write_atomically(dangling, "x"), Catch::Contains("symbolic link") && Catch::Contains("does not exist"));
  CHECK(fs::is_symlink(dangling));
  CHECK_FALSE(fs::exists(dir.path / "nothing-here"));
}

TEST_CASE("FIFO_OUTPUT: written through, never renamed over, and no reader is an error", "[file_safety]") {
  const qgan::test::temp_dir dir("qgan_safety_");
  const fs::path fifo = dir.path / "pipe";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  CHECK_THROWS_WITH(write_atomically(fifo, "x"), Catch::Contains("FIFO has no reader"));

  const int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
  REQUIRE(reader >= 0);
  {
    io::atomic_file file(fifo);
    CHECK(file.kind() == io::output_kind::stream);
    file.write(as_bytes("through the pipe"));
    char early[8];
    CHECK(::read(reader, early, sizeof early) <= 0);  // nothing before commit
    file.commit();
  }
  char buffer[64] = {};
  const ::ssize_t got = ::read(reader, buffer, sizeof buffer);
  ::close(reader);
  CHECK(std::string(buffer, static_cast<std::size_t>(std::max<::ssize_t>(got, 0))) == "through the pipe");
  struct stat info {};
  REQUIRE(::lstat(fifo.c_str(), &info) == 0);
  CHECK(S_ISFIFO(info.st_mode));
  CHECK(dir.names() == std::vector<std::string>{"pipe"});
}

TEST_CASE("DEVICE_NODE_OUTPUT: a character device is written through and stays a device", "[file_safety]") {
  const qgan::test::temp_dir dir("qgan_safety_");
  const fs::path node = dir.path / "null";
  // The machine's own /dev/null is never touched: a node of the same kind, made here.
  if (::mknod(node.c_str(), S_IFCHR | 0666, makedev(1, 3)) != 0) {
    WARN("mknod not permitted here (" << std::strerror(errno) << "); DEVICE_NODE_OUTPUT skipped");
    return;
  }
  write_atomically(node, "discarded");
  struct stat info {};
  REQUIRE(::lstat(node.c_str(), &info) == 0);
  CHECK(S_ISCHR(info.st_mode));
  CHECK(dir.names() == std::vector<std::string>{"null"});
}

TEST_CASE("UNWRITABLE_TARGET_KINDS: directories, empty and long names", "[file_safety]") {
  const qgan::test::temp_dir dir("qgan_safety_");
  CHECK_THROWS_WITH(io::atomic_file(dir.path), Catch::Contains("is a directory") || Catch::Contains("not a file name"));
  fs::create_directory(dir.path / "sub");
  CHECK_THROWS_WITH(io::atomic_file(dir.path / "sub"), Catch::Contains("is a directory"));
  CHECK_THROWS_WITH(io::atomic_file(fs::path()), Catch::Contains("output path is empty"));
  // A name near NAME_MAX must not fail on its longer temporary name.
  const fs::path long_name = dir.path / (std::string(250, 'x') + ".qgan");
  write_atomically(long_name, "fits");
  CHECK(read_text(long_name) == "fits");
}

TEST_CASE("COMMIT_TOGETHER_ROLLS_BACK: a failed second file restores the first", "[file_safety]") {
  const qgan::test::temp_dir dir("qgan_safety_");
  const fs::path first = dir.path / "grid.png", second = dir.path / "raw.f32";
  write_text(first, "old png");
  {
    io::atomic_file a(first), b(second);
    a.write(as_bytes("new png"));
    b.write(as_bytes("new raw"));
    fs::create_directory(second);  // the rename of b now fails
    CHECK_THROWS_WITH(io::commit_together({&a, &b}), Catch::Contains("cannot rename"));
  }
  CHECK(read_text(first) == "old png");
  CHECK(fs::is_directory(second));
  CHECK(dir.names() == (std::vector<std::string>{"grid.png", "raw.f32"}));

  // And when both succeed, both are new and nothing hidden is left.
  fs::remove(second);
  {
    io::atomic_file c(first), d(second);
    c.write(as_bytes("png 2"));
    d.write(as_bytes("raw 2"));
    io::commit_together({&c, &d});
  }
  CHECK(read_text(first) == "png 2");
  CHECK(read_text(second) == "raw 2");
  CHECK(dir.names() == (std::vector<std::string>{"grid.png", "raw.f32"}));
}

TEST_CASE("SIGNAL_DURING_WRITE: SIGTERM and SIGINT remove the temporaries, pool running", "[file_safety]") {
  for (const int signal_number : {SIGTERM, SIGINT}) {
    const qgan::test::temp_dir dir("qgan_safety_");
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      io::remove_temporaries_on_signals();
      io::atomic_file first(dir.path / "a.qgan"), second(dir.path / "b.png");
      first.write(as_bytes("partial"));
      // The signal lands while pool threads run; whichever thread takes it cleans up.
      qgan::parallel_for(4, 2, [&](std::size_t task) {
        if (task == 1) ::kill(::getpid(), signal_number);
        std::this_thread::sleep_for(std::chrono::seconds(2));
      });
      ::_exit(0);  // not reached: the signal ends the process
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    CHECK(WIFSIGNALED(status));
    if (WIFSIGNALED(status)) CHECK(WTERMSIG(status) == signal_number);
    CHECK(dir.names().empty());
  }
}

TEST_CASE("OUTPUT_ALIASES_INPUT: by any spelling, link or hard link", "[file_safety]") {
  const qgan::test::temp_dir dir("qgan_safety_");
  const fs::path model = dir.path / "m.qgan";
  write_text(model, "model");
  fs::create_directory(dir.path / "sub");
  fs::create_symlink(model, dir.path / "alias.qgan");
  fs::create_hard_link(model, dir.path / "hard.qgan");
  const io::file_role input{"MODEL", model};
  for (const fs::path& spelling : {model, dir.path / "sub" / ".." / "m.qgan", dir.path / "alias.qgan",
                                   dir.path / "hard.qgan"}) {
    INFO(spelling);
    const io::file_role output{"-o", spelling};
    CHECK_THROWS_WITH(io::require_distinct_files({&input, 1}, {&output, 1}),
                      Catch::Contains("is the same file as MODEL"));
  }
  // Two outputs that do not exist yet, spelled differently.
  const std::vector<io::file_role> outputs{{"-o", dir.path / "new.png"}, {"--raw", dir.path / "sub" / ".." / "new.png"}};
  CHECK_THROWS_WITH(io::require_distinct_files({&input, 1}, outputs), Catch::Contains("--raw") && Catch::Contains("-o"));
  const std::vector<io::file_role> distinct{{"-o", dir.path / "a.png"}, {"--raw", dir.path / "a.f32"}};
  CHECK_NOTHROW(io::require_distinct_files({&input, 1}, distinct));
}

TEST_CASE("NON_REGULAR_INPUT: directories and FIFOs are refused without blocking", "[file_safety]") {
  const qgan::test::temp_dir dir("qgan_safety_");
  CHECK_THROWS_WITH(io::input_file(dir.path), Catch::Contains("is a directory"));
  const fs::path fifo = dir.path / "pipe";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  CHECK_THROWS_WITH(io::input_file(fifo), Catch::Contains("is a FIFO") && Catch::Contains("regular files"));
  CHECK_THROWS_WITH(io::regular_file_size(dir.path / "missing"), Catch::Contains("no such file"));
}

TEST_CASE("INPUT_TRUNCATED_WHILE_READ: a clear error, not SIGBUS", "[file_safety]") {
  const qgan::test::temp_dir dir("qgan_safety_");
  const fs::path path = dir.path / "in.bin";
  write_text(path, std::string(4096, 'w'));
  const io::input_file in(path);
  std::vector<std::byte> buffer(1024);
  in.read_at(2048, buffer);
  fs::resize_file(path, 1000);
  CHECK_THROWS_WITH(in.read_at(2048, buffer), Catch::Contains("in.bin") && Catch::Contains("the file ended"));
}
