// Which tensors of a state dict a model quantization touches, and how: the method, the
// bits (with per-pattern overrides), per-tensor or per-channel with the output-channel
// axis from a pattern or an architecture preset, and what stays float. Patterns are shell
// globs over tensor names (fnmatch). quantize_file (qgan/model/quantize_file.hpp) applies
// them; the `qgan quantize` tool only parses flags into them.
#pragma once

#include <fnmatch.h>

#include <optional>
#include <string>
#include <vector>

#include "qgan/core/error.hpp"
#include "qgan/core/shape.hpp"
#include "qgan/io/dtype.hpp"
#include "qgan/quant/concepts.hpp"
#include "qgan/quant/granularity.hpp"
#include "qgan/quant/policy_registry.hpp"

namespace qgan::model {

struct pattern_value {
  std::string pattern;  ///< shell glob over tensor names, e.g. "deconv*.weight"
  int value = 0;
};

struct quantize_rules {
  std::string method = "em";  ///< a name of qgan::method_names(): minmax log tanh em em+ lloyd
  int bits = 4;
  bool per_channel = false;
  std::string arch{};                     ///< "" or a preset of arch_presets(), e.g. "dcgan"
  std::vector<pattern_value> axes{};      ///< per-channel axis by pattern; first match wins
  std::vector<std::string> keep{};        ///< left in float
  std::vector<pattern_value> bits_for{};  ///< bits by pattern; last match wins
  int threads = 1;                        ///< work split inside a tensor; never changes the output
};

/// What happens to one tensor of the source.
struct tensor_plan {
  enum class action { quantize, keep_float, pass_raw } what = action::keep_float;
  int bits = 0;
  granularity grain = per_tensor{};
};

QGAN_BEGIN_FUNCTIONS

inline bool glob_match(const std::string& pattern, const std::string& name) {
  return ::fnmatch(pattern.c_str(), name.c_str(), 0) == 0;
}

/// Architecture presets: a safetensors file does not say whether a 4-D weight is a Conv2d
/// (output channels on axis 0) or a ConvTranspose2d (axis 1); a preset knows its names.
inline const std::vector<std::string>& arch_presets() {
  static const std::vector<std::string> names{"dcgan"};
  return names;
}

/// The preset's output-channel axis of a weight (dcgan: deconv* are ConvTranspose2d).
inline std::optional<int> arch_axis(const std::string& arch, const std::string& name) {
  if (arch == "dcgan") return glob_match("deconv*", name) ? 1 : 0;
  return std::nullopt;
}

/// Checks the rules alone, before any file is read, so bad options fail fast.
inline void validate(const quantize_rules& rules) {
  with_method(rules.method, [](const auto&) { return 0; });  // throws, listing the methods
  if (rules.bits < min_bits || rules.bits > max_bits) {
    detail::throw_error("bits ", rules.bits, " is outside ", min_bits, "..", max_bits);
  }
  for (const auto& rule : rules.bits_for) {
    if (rule.value < min_bits || rule.value > max_bits) {
      detail::throw_error("bits-for ", rule.pattern, "=", rule.value, ": bits outside ", min_bits,
                          "..", max_bits);
    }
  }
  if (!rules.arch.empty() && !arch_axis(rules.arch, "").has_value()) {
    std::string known;
    for (const auto& name : arch_presets()) known += (known.empty() ? "" : ", ") + name;
    detail::throw_error("arch '", rules.arch, "' is unknown (known: ", known, ")");
  }
  if (!rules.axes.empty() && !rules.per_channel) {
    detail::throw_error("an axis rule only applies per channel");
  }
  if (rules.threads < 1) detail::throw_error("threads = ", rules.threads, " must be >= 1");
}

/// Which rules matched at least one tensor (a pattern that matches nothing is an error:
/// it is almost always a typo).
struct rule_usage {
  std::vector<bool> keep, axes, bits_for;
  /// For an axis rule that matched only tensors an earlier rule had taken: that rule.
  std::vector<std::optional<std::size_t>> axis_shadowed_by;
};

/// The plan for one tensor: quantize every floating-point tensor of rank >= 2 that no
/// keep pattern names; keep other floats; pass integer and bool tensors through.
inline tensor_plan plan_tensor(const quantize_rules& rules, const std::string& source,
                               const std::string& name, io::dtype type, const shape_t& shape,
                               rule_usage& used) {
  used.keep.resize(rules.keep.size());
  used.axes.resize(rules.axes.size());
  used.bits_for.resize(rules.bits_for.size());
  bool kept = false;
  for (std::size_t i = 0; i < rules.keep.size(); ++i) {
    if (glob_match(rules.keep[i], name)) kept = used.keep[i] = true;
  }
  tensor_plan plan;
  if (!io::is_float_readable(type)) {
    plan.what = tensor_plan::action::pass_raw;
    return plan;
  }
  if (shape.size() < 2 || kept) {
    plan.what = type == io::dtype::f32 ? tensor_plan::action::keep_float : tensor_plan::action::pass_raw;
    return plan;
  }
  if (element_count(shape) == 0) {
    // The .qgan format stores params for every channel, so a [0, 10^7] tensor would cost
    // gigabytes of params for no weights at all.
    detail::throw_error(source, ": tensor '", name, "': shape ", to_string(shape),
                        " has an empty axis and no weights to quantize; keep it in float with --keep '", name, "'");
  }
  plan.what = tensor_plan::action::quantize;
  plan.bits = rules.bits;
  for (std::size_t i = 0; i < rules.bits_for.size(); ++i) {
    if (glob_match(rules.bits_for[i].pattern, name)) {
      plan.bits = rules.bits_for[i].value;
      used.bits_for[i] = true;
    }
  }
  if (!rules.per_channel) return plan;
  used.axis_shadowed_by.resize(rules.axes.size());
  std::optional<int> axis;
  std::size_t winner = 0;
  for (std::size_t i = 0; i < rules.axes.size(); ++i) {
    if (!glob_match(rules.axes[i].pattern, name)) continue;
    if (!axis) {
      axis = rules.axes[i].value;
      winner = i;
      used.axes[i] = true;
    } else if (!used.axes[i]) {
      used.axis_shadowed_by[i] = winner;
    }
  }
  if (!axis) axis = arch_axis(rules.arch, name);
  if (!axis && shape.size() == 2) axis = 0;  // Linear (out, in): unambiguous
  if (!axis) {
    detail::throw_error(source, ": tensor '", name, "': shape ", to_string(shape),
                        ": per-channel needs its output-channel axis (a safetensors file does "
                        "not say whether a 4-D weight is a Conv2d, axis 0, or a "
                        "ConvTranspose2d, axis 1); give an arch preset (dcgan) or an axis rule");
  }
  const int rank = static_cast<int>(shape.size());
  if (*axis < -rank || *axis >= rank) {
    detail::throw_error(source, ": tensor '", name, "': axis ", *axis, " is out of range for shape ",
                        to_string(shape));
  }
  plan.grain = per_channel{*axis < 0 ? *axis + rank : *axis};
  return plan;
}

/// Throws for the first rule that matched no tensor it could apply to.
inline void require_all_rules_used(const quantize_rules& rules, const rule_usage& used) {
  const auto check = [](const char* what, std::size_t count, const std::vector<bool>& flags,
                        const auto& pattern_of) {
    for (std::size_t i = 0; i < count; ++i) {
      if (i >= flags.size() || !flags[i]) {
        detail::throw_error(what, " pattern '", pattern_of(i), "' matches no tensor that it could apply to");
      }
    }
  };
  for (std::size_t i = 0; i < rules.axes.size(); ++i) {
    if (i < used.axes.size() && !used.axes[i] && i < used.axis_shadowed_by.size() && used.axis_shadowed_by[i]) {
      detail::throw_error("axis pattern '", rules.axes[i].pattern, "' is shadowed: every tensor it matches is taken by "
                          "the earlier axis pattern '", rules.axes[*used.axis_shadowed_by[i]].pattern,
                          "' (the first match wins)");
    }
  }
  check("keep", rules.keep.size(), used.keep, [&](std::size_t i) { return rules.keep[i]; });
  check("axis", rules.axes.size(), used.axes, [&](std::size_t i) { return rules.axes[i].pattern; });
  check("bits-for", rules.bits_for.size(), used.bits_for,
        [&](std::size_t i) { return rules.bits_for[i].pattern; });
}

/// The rules as the .qgan metadata records them (qgan.*).
inline std::string join_rules(const std::vector<pattern_value>& rules) {
  std::string text;
  for (const auto& rule : rules) text += (text.empty() ? "" : " ") + rule.pattern + "=" + std::to_string(rule.value);
  return text;
}

QGAN_END_FUNCTIONS

}  // namespace qgan::model
