// Command-line parsing for the qgan tool: each command declares its options, and anything
// else (an unknown option, a missing or malformed value, a repeated single option) is a
// usage_error whose message names the command and the option. Exit code 2 for those,
// 1 for failures while working.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace qgan_cli {

struct usage_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct option_spec {
  std::string name;          ///< "--bits" or "-n"
  bool takes_value = true;
  bool repeatable = false;
  std::string alias = {};    ///< another spelling, e.g. "--output" for "-o"
};

class parsed_args {
 public:
  std::vector<std::string> positionals;

  [[nodiscard]] bool has(const std::string& name) const { return values_.count(name) != 0; }
  [[nodiscard]] std::optional<std::string> value(const std::string& name) const;
  [[nodiscard]] std::vector<std::string> values(const std::string& name) const;

  /// Integer value in [min, max]; `fallback` when the option is absent.
  [[nodiscard]] std::int64_t integer(const std::string& name, std::int64_t fallback, std::int64_t min,
                                     std::int64_t max) const;
  [[nodiscard]] std::string required(const std::string& name) const;

  std::string command;
  std::map<std::string, std::vector<std::string>> values_;
};

/// Parses args (after the command word). "--help"/"-h" is always accepted.
parsed_args parse_args(const std::string& command, std::span<const std::string> args,
                       std::span<const option_spec> specs);

/// Parses "text" as a whole integer in [min, max]; what names the value in the message.
std::int64_t parse_integer(const std::string& text, const std::string& what, std::int64_t min, std::int64_t max);

/// Splits "PATTERN=N" at the last '=' and parses N in [min, max].
std::pair<std::string, int> parse_pattern_value(const std::string& text, const std::string& flag, int min, int max);

}  // namespace qgan_cli
