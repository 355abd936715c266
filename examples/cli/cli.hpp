// The qgan command-line tool as a function, so tests run it in-process on temporary files
// and the executable's main() is one line.
#pragma once

#include <filesystem>
#include <optional>
#include <ostream>
#include <span>
#include <string>

#include "args.hpp"
#include "qgan/io/file_checks.hpp"
#include "qgan/nn/packed/layer.hpp"

namespace qgan_cli {

struct context {
  std::ostream& out;
  std::ostream& err;
  bool stderr_is_terminal = false;
  std::filesystem::path executable = {};  ///< argv[0], to find installed weights
};

/// Runs `qgan ARGS...` (args exclude the program name). Returns the exit code: 0 on
/// success, 1 when the work failed (bad file, I/O), 2 for a usage error.
int run(std::span<const std::string> args, const context& ctx);

int command_info(std::span<const std::string> args, const context& ctx);
int command_quantize(std::span<const std::string> args, const context& ctx);
int command_sample(std::span<const std::string> args, const context& ctx);
int command_eval(std::span<const std::string> args, const context& ctx);
int command_calibrate(std::span<const std::string> args, const context& ctx);

/// Parses a command's arguments. Prints `help` and returns nothing for --help; otherwise
/// requires exactly one positional argument, called `operand` in the error message.
std::optional<parsed_args> parse_command(const std::string& command, std::span<const std::string> args,
                                         std::span<const option_spec> specs, const char* help,
                                         const std::string& operand, const context& ctx);

/// The DCGAN reference weights: --weights-dir, else $QGAN_DCGAN_WEIGHTS, else the
/// installed share/qgan/dcgan beside the executable, else the source tree's copy.
std::filesystem::path find_weights_dir(const parsed_args& parsed, const context& ctx);

/// Refuses, as a usage error, an output that is one of the inputs or another output.
void require_distinct_files(const parsed_args& parsed, std::span<const qgan::io::file_role> inputs,
                            std::span<const qgan::io::file_role> outputs);

/// Checks --arch: the only architecture the sample and eval commands know is dcgan.
void require_dcgan_arch(const parsed_args& parsed);

/// --act fp32|int8 (default fp32): the activations the generator's layers compute with.
qgan::nn::packed::activation_path activation_option(const parsed_args& parsed);

/// --threads N (default 1): threads the generator's layers use.
int threads_option(const parsed_args& parsed);

}  // namespace qgan_cli
