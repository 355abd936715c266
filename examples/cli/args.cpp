#include "args.hpp"

#include <charconv>

namespace qgan_cli {

namespace {

const option_spec* find_spec(std::span<const option_spec> specs, const std::string& name) {
  for (const auto& spec : specs) {
    if (spec.name == name || (!spec.alias.empty() && spec.alias == name)) return &spec;
  }
  return nullptr;
}

}  // namespace

std::optional<std::string> parsed_args::value(const std::string& name) const {
  const auto found = values_.find(name);
  if (found == values_.end() || found->second.empty()) return std::nullopt;
  return found->second.back();
}

std::vector<std::string> parsed_args::values(const std::string& name) const {
  const auto found = values_.find(name);
  return found == values_.end() ? std::vector<std::string>{} : found->second;
}

std::int64_t parsed_args::integer(const std::string& name, std::int64_t fallback, std::int64_t min,
                                  std::int64_t max) const {
  const std::optional<std::string> text = value(name);
  return text ? parse_integer(*text, "qgan " + command + ": " + name, min, max) : fallback;
}

std::string parsed_args::required(const std::string& name) const {
  const std::optional<std::string> text = value(name);
  if (!text) throw usage_error("qgan " + command + ": " + name + " is required (see qgan " + command + " --help)");
  return *text;
}

std::int64_t parse_integer(const std::string& text, const std::string& what, std::int64_t min, std::int64_t max) {
  std::int64_t number = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, number);
  if (text.empty() || ec != std::errc{} || ptr != end) {
    throw usage_error(what + ": '" + text + "' is not a whole number");
  }
  if (number < min || number > max) {
    throw usage_error(what + ": " + text + " is outside " + std::to_string(min) + ".." + std::to_string(max));
  }
  return number;
}

std::pair<std::string, int> parse_pattern_value(const std::string& text, const std::string& flag, int min, int max) {
  const std::size_t equals = text.rfind('=');
  if (equals == std::string::npos || equals == 0) {
    throw usage_error(flag + ": '" + text + "' is not PATTERN=N");
  }
  const auto number = parse_integer(text.substr(equals + 1), flag + " " + text.substr(0, equals), min, max);
  return {text.substr(0, equals), static_cast<int>(number)};
}

parsed_args parse_args(const std::string& command, std::span<const std::string> args,
                       std::span<const option_spec> specs) {
  parsed_args parsed;
  parsed.command = command;
  const std::string see = " (see qgan " + command + " --help)";
  bool options_ended = false;  // after "--" every word is positional, even "-file"
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string word = args[i];
    if (options_ended) {
      parsed.positionals.push_back(word);
      continue;
    }
    if (word == "--") {
      options_ended = true;
      continue;
    }
    if (word == "--help" || word == "-h") {
      parsed.values_["--help"].push_back("");
      continue;
    }
    if (word.size() < 2 || word[0] != '-') {
      parsed.positionals.push_back(word);
      continue;
    }
    std::optional<std::string> inline_value;
    if (const std::size_t equals = word.find('='); word.rfind("--", 0) == 0 && equals != std::string::npos) {
      inline_value = word.substr(equals + 1);
      word = word.substr(0, equals);
    }
    const option_spec* spec = find_spec(specs, word);
    if (spec == nullptr) throw usage_error("qgan " + command + ": unknown option '" + word + "'" + see);
    std::vector<std::string>& slot = parsed.values_[spec->name];
    if (!slot.empty() && !spec->repeatable) {
      throw usage_error("qgan " + command + ": " + spec->name + " given more than once");
    }
    if (!spec->takes_value) {
      if (inline_value) throw usage_error("qgan " + command + ": " + spec->name + " takes no value");
      slot.push_back("");
      continue;
    }
    if (inline_value) {
      slot.push_back(*inline_value);
    } else if (i + 1 < args.size()) {
      slot.push_back(args[++i]);
    } else {
      throw usage_error("qgan " + command + ": " + spec->name + " needs a value" + see);
    }
  }
  return parsed;
}

}  // namespace qgan_cli
