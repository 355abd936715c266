#include "dcgan/quantize_model.hpp"

#include <fnmatch.h>

#include <cmath>
#include <limits>
#include <utility>
#include <variant>

#include "qgan/qgan.hpp"
#include "qgan/version.hpp"

namespace dcgan {

/// "em" (the paper's EM), "em+", "minmax", "log", "tanh", "lloyd".
const std::vector<std::string>& method_names() {
  static const std::vector<std::string> names{"minmax", "log", "tanh", "em", "em+", "lloyd"};
  return names;
}



bool glob_match(const std::string& pattern, const std::string& name) {
  return ::fnmatch(pattern.c_str(), name.c_str(), 0) == 0;
}

/// The known architectures' output-channel axis of a weight: ConvTranspose2d stores
/// (in, out, kh, kw), so its output channels are axis 1; Conv2d and Linear use axis 0.
std::optional<int> arch_axis(const std::string& arch, const std::string& name) {
  if (arch == "dcgan") return glob_match("deconv*", name) ? 1 : 0;
  return std::nullopt;
}

namespace {

template <class Function>
decltype(auto) with_policy(const std::string& method, Function&& function) {
  if (method == "em") return function(qgan::em_quantizer{});
  if (method == "em+") return function(qgan::em_quantizer::plus());
  if (method == "minmax") return function(qgan::minmax_quantizer{});
  if (method == "log") return function(qgan::log_quantizer{});
  if (method == "tanh") return function(qgan::tanh_quantizer{});
  if (method == "lloyd") return function(qgan::lloyd_max_quantizer{});
  std::string choices;
  for (const std::string& name : method_names()) choices += (choices.empty() ? "" : ", ") + name;
  qgan::detail::throw_error("unknown method '", method, "' (choose one of ", choices, ")");
}

std::string join_rules(const std::vector<pattern_value>& rules) {
  std::string text;
  for (const auto& rule : rules) text += (text.empty() ? "" : " ") + rule.pattern + "=" + std::to_string(rule.value);
  return text;
}

}  // namespace

/// Checks the settings alone (before any file is read), so bad flags fail fast.
void validate(const quantize_settings& s) {
  with_policy(s.method, [](const auto&) { return 0; });
  if (s.bits < qgan::min_bits || s.bits > qgan::max_bits) {
    qgan::detail::throw_error("--bits ", s.bits, " is outside ", qgan::min_bits, "..", qgan::max_bits);
  }
  for (const auto& rule : s.bits_for) {
    if (rule.value < qgan::min_bits || rule.value > qgan::max_bits) {
      qgan::detail::throw_error("--bits-for ", rule.pattern, "=", rule.value, ": bits outside ",
                                qgan::min_bits, "..", qgan::max_bits);
    }
  }
  if (!s.arch.empty() && s.arch != "dcgan") {
    qgan::detail::throw_error("--arch '", s.arch, "' is unknown (known: dcgan)");
  }
  if (!s.axes.empty() && !s.per_channel) {
    qgan::detail::throw_error("--axis only applies with --per-channel");
  }
}

/// Quantizes `file` into a model ready for write_qgan. source_name is recorded in the
/// metadata (normally the input's file name).
qgan::io::qgan_model quantize_model(const qgan::io::safetensors_file& file, const quantize_settings& s,
                                           const std::string& source_name,
                                           const std::function<void(std::size_t)>& progress) {
  validate(s);
  const auto fail = [&](const std::string& name, const auto&... parts) {
    qgan::detail::throw_error(file.source(), ": tensor '", name, "': ", parts...);
  };
  std::vector<bool> keep_used(s.keep.size()), axis_used(s.axes.size()), bits_used(s.bits_for.size());
  qgan::io::qgan_model model;
  for (const auto& tensor : file.tensors()) {
    if (progress) progress(model.tensors.size());
    bool kept = false;
    for (std::size_t i = 0; i < s.keep.size(); ++i) {
      if (glob_match(s.keep[i], tensor.name)) kept = keep_used[i] = true;
    }
    const bool floating = qgan::io::is_float_readable(tensor.type);
    if (!floating || tensor.shape.size() < 2 || kept) {
      if (tensor.type == qgan::io::dtype::f32) {
        model.tensors.push_back({tensor.name, qgan::io::float_tensor{tensor.shape, file.read_float(tensor)}});
      } else {
        model.tensors.push_back({tensor.name, qgan::io::raw_tensor{tensor.type, tensor.shape,
                                 std::vector<std::byte>(tensor.bytes.begin(), tensor.bytes.end())}});
      }
      continue;
    }
    int bits = s.bits;
    for (std::size_t i = 0; i < s.bits_for.size(); ++i) {
      if (glob_match(s.bits_for[i].pattern, tensor.name)) {
        bits = s.bits_for[i].value;
        bits_used[i] = true;
      }
    }
    qgan::granularity grain = qgan::per_tensor{};
    if (s.per_channel) {
      std::optional<int> axis;
      for (std::size_t i = 0; i < s.axes.size() && !axis; ++i) {
        if (glob_match(s.axes[i].pattern, tensor.name)) {
          axis = s.axes[i].value;
          axis_used[i] = true;
        }
      }
      if (!axis) axis = arch_axis(s.arch, tensor.name);
      if (!axis && tensor.shape.size() == 2) axis = 0;  // Linear (out, in): unambiguous
      if (!axis) {
        fail(tensor.name, "shape ", qgan::to_string(tensor.shape),
             ": per-channel needs its output-channel axis (a safetensors file does not say "
             "whether a 4-D weight is a Conv2d, axis 0, or a ConvTranspose2d, axis 1); give "
             "--arch dcgan or --axis PATTERN=N");
      }
      const int rank = static_cast<int>(tensor.shape.size());
      if (*axis < -rank || *axis >= rank) {
        fail(tensor.name, "--axis ", *axis, " is out of range for shape ", qgan::to_string(tensor.shape));
      }
      grain = qgan::per_channel{*axis < 0 ? *axis + rank : *axis};
    }
    const std::vector<float> values = file.read_float(tensor);
    const qgan::quantize_options options{.bits = bits, .grain = grain, .name = tensor.name};
    try {
      model.tensors.push_back({tensor.name, with_policy(s.method, [&](const auto& policy) {
                                 return qgan::quantize(policy, values, tensor.shape, options);
                               })});
    } catch (const qgan::error& e) {
      // A policy's own limits (log at 1 bit) do not know which tensor asked.
      fail(tensor.name, e.what());
    }
  }
  const auto unused = [](const char* flag, const auto& patterns, const std::vector<bool>& used, auto pattern_of) {
    for (std::size_t i = 0; i < used.size(); ++i) {
      if (!used[i]) {
        qgan::detail::throw_error(flag, " pattern '", pattern_of(patterns[i]),
                                  "' matches no tensor that it could apply to");
      }
    }
  };
  unused("--keep", s.keep, keep_used, [](const std::string& p) { return p; });
  unused("--axis", s.axes, axis_used, [](const pattern_value& p) { return p.pattern; });
  unused("--bits-for", s.bits_for, bits_used, [](const pattern_value& p) { return p.pattern; });

  // The source's metadata describes the fp32 model (its FID, for one), so it is kept
  // under "source." rather than passed off as this model's.
  for (const auto& [key, value] : file.metadata()) model.metadata["source." + key] = value;
  model.metadata["qgan.tool"] = "qgan quantize " QGAN_VERSION_STRING;
  model.metadata["qgan.source"] = source_name;
  model.metadata["qgan.method"] = s.method;
  model.metadata["qgan.bits"] = std::to_string(s.bits);
  model.metadata["qgan.granularity"] = s.per_channel ? "per-channel" : "per-tensor";
  if (!s.arch.empty()) model.metadata["qgan.arch"] = s.arch;
  if (!s.axes.empty()) model.metadata["qgan.axis"] = join_rules(s.axes);
  if (!s.bits_for.empty()) model.metadata["qgan.bits_for"] = join_rules(s.bits_for);
  if (!s.keep.empty()) {
    std::string keep;
    for (const auto& pattern : s.keep) keep += (keep.empty() ? "" : " ") + pattern;
    model.metadata["qgan.keep"] = keep;
  }
  return model;
}


weight_error measure_weight_error(const qgan::io::safetensors_file& file, const qgan::io::qgan_model& model) {
  weight_error total;
  for (const auto& entry : model.tensors) {
    const auto* packed = std::get_if<qgan::packed_tensor>(&entry.tensor);
    if (packed == nullptr) continue;
    const std::vector<float> original = file.read_float(entry.name);
    const std::vector<float> decoded = qgan::dequantize(*packed, entry.name);
    for (std::size_t i = 0; i < original.size(); ++i) {
      const double w = original[i];
      const double e = w - static_cast<double>(decoded[i]);
      total.signal += w * w;
      total.error += e * e;
    }
  }
  return total;
}

}  // namespace dcgan
