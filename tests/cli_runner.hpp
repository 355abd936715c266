// Runs the qgan tool in-process, as the CLI tests do: arguments in, exit code and both
// output streams back.
#pragma once

#include <initializer_list>
#include <sstream>
#include <string>
#include <vector>

#include "cli.hpp"

namespace qgan::test {

inline const std::string weights_dir = QGAN_DCGAN_WEIGHTS_DIR;
inline const std::string generator_path = weights_dir + "/generator.safetensors";

struct cli_result {
  int code;
  std::string out;
  std::string err;
};

inline cli_result run_cli(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  const qgan_cli::context ctx{out, err};
  const int code = qgan_cli::run(args, ctx);
  return {code, out.str(), err.str()};
}

inline cli_result run_cli(std::initializer_list<std::string> words) { return run_cli(std::vector<std::string>(words)); }

}  // namespace qgan::test
