// The qgan executable: everything lives in qgan_cli::run so the tests can call it.
#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <system_error>
#include <string>
#include <vector>

#include "cli.hpp"
#include "qgan/io/temporary_files.hpp"

int main(int argc, char** argv) {
  // Ctrl-C or a kill during a write removes the hidden temporaries instead of leaving them.
  qgan::io::remove_temporaries_on_signals();
  const std::vector<std::string> args(argv + 1, argv + argc);
  // The real path (argv[0] may be a bare name found on PATH) locates installed weights.
  std::error_code ignored;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ignored);
  const qgan_cli::context ctx{std::cout, std::cerr, ::isatty(STDERR_FILENO) == 1, self};
  return qgan_cli::run(args, ctx);
}
