// The one exception type qgan throws. Messages name what failed and where (file, tensor,
// field, index), because a loader or a fit that says only "invalid input" wastes a day.
#pragma once

#include "qgan/core/isa_namespace.hpp"

#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace qgan {

class error : public std::runtime_error {
 public:
  explicit error(const std::string& what) : std::runtime_error(what) {}
};

namespace detail {
QGAN_BEGIN_FUNCTIONS

template <class... Parts>
[[noreturn]] void throw_error(const Parts&... parts) {
  std::ostringstream message;
  (message << ... << parts);
  throw error(message.str());
}

// "tensor 'gen.0.weight': " when the caller named the tensor, "" otherwise.
inline std::string tensor_prefix(std::string_view name) {
  if (name.empty()) return {};
  std::string prefix = "tensor '";
  prefix.append(name);
  prefix += "': ";
  return prefix;
}

QGAN_END_FUNCTIONS
}  // namespace detail
}  // namespace qgan
