// libFuzzer target for the qgan tool's argument parser, parsing only: a command run here
// would read and write files (as root, in CI). The first byte picks a command and its real
// option table (examples/cli/option_specs.hpp), and one of the integer ranges the commands
// use; the rest, split at NUL bytes (which no argv word can hold), are its words. Every
// value is then read the ways the commands read them (parsed_args::integer, and
// parse_pattern_value for PATTERN=N rules), and so are the first few words on their own.
// One range per input, not all of them: each refusal is a C++ throw, which under the
// sanitizers costs more than the parse.
// usage_error is the one expected outcome for bad words; anything else, or a result that
// breaks what the parser promises (checked below), is a bug. Seeds: fuzz/corpus/cli_args;
// tokens: cli_args.dict.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "args.hpp"
#include "option_specs.hpp"

namespace {

using qgan_cli::option_spec;
using qgan_cli::usage_error;

void require(bool condition) {
  if (!condition) __builtin_trap();
}

struct range {
  std::int64_t min;
  std::int64_t max;
};

// The ranges the commands pass to parsed_args::integer and parse_pattern_value, and the
// widest one.
constexpr range ranges[] = {
    {std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::int64_t>::max()},
    {0, std::numeric_limits<std::int64_t>::max()},
    {-8, 7},
    {1, 8},
    {1, 256},
    {2, 100'000},
};

void check_integer(const std::string& text, const range& r) {
  try {
    const std::int64_t value = qgan_cli::parse_integer(text, "fuzz", r.min, r.max);
    require(value >= r.min && value <= r.max);
  } catch (const usage_error&) {
  }
}

void check_pattern_value(const std::string& text, const range& r) {
  const auto narrow = [](std::int64_t v) {
    return static_cast<int>(std::clamp<std::int64_t>(v, INT32_MIN, INT32_MAX));
  };
  try {
    const auto [pattern, value] =
        qgan_cli::parse_pattern_value(text, "--fuzz", narrow(r.min), narrow(r.max));
    require(!pattern.empty() && pattern == text.substr(0, text.rfind('=')));
    require(value >= narrow(r.min) && value <= narrow(r.max));
  } catch (const usage_error&) {
  }
}

const option_spec* spec_named(std::span<const option_spec> specs, const std::string& name) {
  for (const auto& spec : specs) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

void check_parse(const char* command, std::span<const option_spec> specs,
                 const std::vector<std::string>& words, const range& r) {
  qgan_cli::parsed_args parsed;
  try {
    parsed = qgan_cli::parse_args(command, words, specs);
  } catch (const usage_error&) {
    return;
  }
  std::size_t consumed = parsed.positionals.size();
  for (const auto& [name, values] : parsed.values_) {
    consumed += values.size();
    if (name == "--help") continue;
    const option_spec* spec = spec_named(specs, name);
    require(spec != nullptr);  // stored under its canonical name, never an alias
    require(spec->repeatable || values.size() <= 1);
    for (const auto& value : values) require(spec->takes_value || value.empty());
  }
  require(consumed <= words.size());

  for (const auto& spec : specs) {
    (void)parsed.has(spec.name);
    (void)parsed.values(spec.name);
    try {
      (void)parsed.required(spec.name);
    } catch (const usage_error&) {
      require(!parsed.value(spec.name).has_value());
    }
    try {
      const std::int64_t value = parsed.integer(spec.name, r.min, r.min, r.max);
      require(value >= r.min && value <= r.max);
    } catch (const usage_error&) {
    }
    if (spec.repeatable) {
      for (const auto& value : parsed.values(spec.name)) check_pattern_value(value, r);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const auto& commands = qgan_cli::all_command_options;
  const auto& command = commands[data[0] % std::size(commands)];
  const range& r = ranges[data[0] / std::size(commands) % std::size(ranges)];
  std::vector<std::string> words;
  const std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  for (std::size_t start = 0; !rest.empty() && start <= rest.size();) {
    const std::size_t end = std::min(rest.find('\0', start), rest.size());
    words.emplace_back(rest.substr(start, end - start));
    start = end + 1;
  }
  check_parse(command.command, command.specs, words, r);
  constexpr std::size_t max_single_words = 8;
  for (std::size_t i = 0; i < std::min(words.size(), max_single_words); ++i) {
    check_integer(words[i], r);
    check_pattern_value(words[i], r);
  }
  return 0;
}
