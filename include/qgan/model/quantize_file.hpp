// Whole-model quantization: a safetensors state dict in, a .qgan model out, under
// qgan::model::quantize_rules. quantize_file streams: it plans every tensor and checks
// every rule before writing a byte, then reads one tensor at a time with pread into one
// buffer (the mapping's pages are never touched, so they never count as resident),
// quantizes it and hands it to io::qgan_stream_writer, so peak memory stays near the
// largest tensor (its floats, one byte per code, the packed codes). Threads split the work
// inside a tensor (channels, or EM's fixed reduction chunks), so the file is byte-identical
// for any thread count and any kernel set. quantize_model does the same in memory.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <set>
#include <filesystem>
#include <functional>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include "qgan/core/error.hpp"
#include "qgan/core/finite.hpp"
#include "qgan/io/file_checks.hpp"
#include "qgan/io/input_file.hpp"
#include "qgan/io/qgan_model.hpp"
#include "qgan/io/qgan_writer.hpp"
#include "qgan/io/safetensors.hpp"
#include "qgan/model/rules.hpp"
#include "qgan/pack/quantize.hpp"
#include "qgan/quant/policy_registry.hpp"
#include "qgan/version.hpp"

namespace qgan::model {

/// Reported after each tensor: how many are done of how many, and the last one's name.
struct progress_event {
  std::size_t done = 0;
  std::size_t total = 0;
  std::string_view tensor{};
  bool quantized = false;      ///< whether that tensor was quantized
  int bits = 0;                ///< quantized: its bit width
  double signal_energy = 0.0;  ///< quantized: sum of w^2 over its weights
  double error_energy = 0.0;   ///< quantized: sum of (w - decoded w)^2
};
using progress_callback = std::function<void(const progress_event&)>;

QGAN_BEGIN_FUNCTIONS

/// Every tensor's plan and its .qgan declaration, in the source's order; throws (naming
/// the file and the tensor) for a rule that cannot apply, before anything is written.
struct model_plan {
  std::vector<tensor_plan> tensors;
  std::vector<io::qgan_declaration> declarations;
};

inline model_plan plan_model(const io::safetensors_file& file, const quantize_rules& rules) {
  validate(rules);
  const policy_id policy = find_method(rules.method)->policy();
  const int min_policy_bits = find_policy(policy)->min_bits;
  rule_usage used;
  model_plan plan;
  for (const auto& tensor : file.tensors()) {
    if (tensor.name.empty()) {
      detail::throw_error(file.source(), ": a tensor has an empty name, which a .qgan file cannot store");
    }
    tensor_plan entry = plan_tensor(rules, file.source(), tensor.name, tensor.type, tensor.shape, used);
    io::qgan_declaration declaration;
    declaration.name = tensor.name;
    declaration.shape = tensor.shape;
    switch (entry.what) {
      case tensor_plan::action::quantize:
        if (entry.bits < min_policy_bits) {
          detail::throw_error(file.source(), ": tensor '", tensor.name, "': ", rules.method, " needs at least ",
                              min_policy_bits, " bits, not ", entry.bits);
        }
        declaration.kind = io::entry_kind::packed;
        declaration.bits = entry.bits;
        declaration.policy = policy;
        declaration.grain = entry.grain;
        break;
      case tensor_plan::action::keep_float: declaration.kind = io::entry_kind::float32; break;
      case tensor_plan::action::pass_raw:
        declaration.kind = io::entry_kind::raw;
        declaration.type = tensor.type;
        break;
    }
    plan.tensors.push_back(entry);
    plan.declarations.push_back(std::move(declaration));
  }
  require_all_rules_used(rules, used);
  return plan;
}

/// Bit widths ascending and comma-separated: "2", "2,4".
inline std::string join_bit_widths(const std::set<int>& widths) {
  std::string text;
  for (const int bits : widths) {
    // Appended piece by piece: GCC 12 reports a false -Wrestrict for "literal" + string&&.
    if (!text.empty()) text += ',';
    text += std::to_string(bits);
  }
  return text;
}

/// The bit widths the plan quantizes at (join_bit_widths); the default width when nothing
/// is quantized.
inline std::string bits_used(const quantize_rules& rules, const model_plan& plan) {
  std::set<int> widths;
  for (const auto& tensor : plan.tensors) {
    if (tensor.what == tensor_plan::action::quantize) widths.insert(tensor.bits);
  }
  return widths.empty() ? std::to_string(rules.bits) : join_bit_widths(widths);
}

/// The .qgan metadata of a quantized model: the rules (qgan.*; qgan.bits is bits_used) and the source's own
/// metadata under source.* (it describes the fp32 model, its FID for one).
inline io::qgan_metadata quantize_metadata(const quantize_rules& rules, const model_plan& plan,
                                           const io::safetensors_metadata& source_metadata,
                                           const std::string& source_name) {
  io::qgan_metadata metadata;
  for (const auto& [key, value] : source_metadata) metadata["source." + key] = value;
  metadata["qgan.tool"] = "qgan quantize " QGAN_VERSION_STRING;
  metadata["qgan.source"] = source_name;
  metadata["qgan.method"] = rules.method;
  // The widths the tensors got, so --bits-for rules that cover every tensor are not
  // reported as the default they overrode.
  metadata["qgan.bits"] = bits_used(rules, plan);
  metadata["qgan.granularity"] = rules.per_channel ? "per-channel" : "per-tensor";
  if (!rules.arch.empty()) metadata["qgan.arch"] = rules.arch;
  if (!rules.axes.empty()) metadata["qgan.axis"] = join_rules(rules.axes);
  if (!rules.bits_for.empty()) metadata["qgan.bits_for"] = join_rules(rules.bits_for);
  if (!rules.keep.empty()) {
    std::string keep;
    for (const auto& pattern : rules.keep) keep += (keep.empty() ? "" : " ") + pattern;
    metadata["qgan.keep"] = keep;
  }
  return metadata;
}

/// A tensor kept in float must be finite too: the model it goes into would refuse to
/// run, and the error belongs here, where the source file is named.
inline void require_finite_kept(const std::string& source, const std::string& name, std::span<const float> values) {
  try {
    require_finite(values, name, "a model's tensors must be finite");
  } catch (const qgan::error& e) {
    detail::throw_error(source, ": ", e.what());
  }
}

/// Quantizes one tensor's floats under its plan, with the caller's instruction set.
template <class Arch = xsimd::default_arch>
packed_tensor quantize_tensor(const quantize_rules& rules, const tensor_plan& plan, const std::string& source,
                              const std::string& name, std::span<const float> values, const shape_t& shape) {
  const quantize_options options{.bits = plan.bits, .grain = plan.grain, .name = name, .threads = rules.threads};
  try {
    return with_method(rules.method, [&](const auto& policy) {
      return quantize<std::decay_t<decltype(policy)>, Arch>(policy, values, shape, options);
    });
  } catch (const qgan::error& e) {
    detail::throw_error(source, ": ", e.what());
  }
}

/// Adds a quantized tensor's signal and error energies (in element order, in double),
/// decoding 4096 codes at a time so that no decoded copy of the tensor exists.
template <class Arch = xsimd::default_arch>
void add_weight_error(const packed_tensor& packed, std::span<const float> values, progress_event& event) {
  const channel_layout layout = make_channel_layout(packed.shape, packed.grain);
  detail::channel_decoder<Arch> decoder(packed);
  constexpr std::size_t chunk = 4096;
  float decoded[chunk];
  event.quantized = true;
  event.bits = packed.bits;
  for (std::size_t channel = 0; channel < layout.channels; ++channel) {
    decoder.select_channel(channel);
    for (std::size_t outer = 0; outer < layout.outer; ++outer) {
      const std::size_t first = layout.index(outer, channel, 0);
      for (std::size_t done = 0; done < layout.inner; done += chunk) {
        const std::size_t length = std::min(chunk, layout.inner - done);
        decoder.decode(first + done, length, decoded);
        for (std::size_t i = 0; i < length; ++i) {
          const double w = values[first + done + i], e = w - static_cast<double>(decoded[i]);
          event.signal_energy += w * w;
          event.error_energy += e * e;
        }
      }
    }
  }
}

/// The whole model in memory (what write_qgan would store); for small models and tests.
template <class Arch = xsimd::default_arch>
io::qgan_model quantize_model(const io::safetensors_file& file, const quantize_rules& rules,
                              const std::string& source_name, const progress_callback& progress = {}) {
  const model_plan plan = plan_model(file, rules);
  io::qgan_model model;
  const auto tensors = file.tensors();
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const auto& tensor = tensors[i];
    progress_event event{i + 1, tensors.size(), tensor.name};
    switch (plan.tensors[i].what) {
      case tensor_plan::action::quantize: {
        const std::vector<float> values = file.read_float(tensor);
        packed_tensor packed = quantize_tensor<Arch>(rules, plan.tensors[i], file.source(), tensor.name, values, tensor.shape);
        if (progress) add_weight_error<Arch>(packed, values, event);
        model.tensors.push_back({tensor.name, std::move(packed)});
        break;
      }
      case tensor_plan::action::keep_float:
        model.tensors.push_back({tensor.name, io::float_tensor{tensor.shape, file.read_float(tensor)}});
        require_finite_kept(file.source(), tensor.name, std::get<io::float_tensor>(model.tensors.back().tensor).values);
        break;
      case tensor_plan::action::pass_raw:
        if (io::is_float_readable(tensor.type)) require_finite_kept(file.source(), tensor.name, file.read_float(tensor));
        model.tensors.push_back({tensor.name, io::raw_tensor{tensor.type, tensor.shape,
                                                             std::vector<std::byte>(tensor.bytes.begin(), tensor.bytes.end())}});
        break;
    }
    if (progress) progress(event);
  }
  model.metadata = quantize_metadata(rules, plan, file.metadata(), source_name);
  return model;
}


/// Streams `input` (safetensors) to `output` (.qgan): see the header comment. Refuses an
/// output that is the input (by any path). source_name goes into the metadata (the
/// input's file name when empty). Returns the size of the file it wrote (another process
/// may replace the output at once after; this is the size of this call's file).
template <class Arch = xsimd::default_arch>
std::uint64_t quantize_file(const std::filesystem::path& input, const std::filesystem::path& output,
                   const quantize_rules& rules, const progress_callback& progress = {},
                   std::string source_name = {}) {
  const io::file_role input_role{"input", input}, output_role{"output", output};
  io::require_distinct_files({&input_role, 1}, {&output_role, 1});
  const io::safetensors_file file = io::safetensors_file::open(input);
  const model_plan plan = plan_model(file, rules);
  if (source_name.empty()) source_name = input.filename().string();
  const io::input_file in(input);
  io::qgan_stream_writer writer(output, plan.declarations, quantize_metadata(rules, plan, file.metadata(), source_name));
  std::vector<float> floats;   // one buffer for every tensor: peak memory = the largest
  std::vector<std::byte> raw;
  const auto tensors = file.tensors();
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const auto& tensor = tensors[i];
    const std::uint64_t offset = file.file_offset(tensor);
    const bool quantized = plan.tensors[i].what == tensor_plan::action::quantize;
    progress_event event{i + 1, tensors.size(), tensor.name};
    const auto write_quantized = [&](std::span<const float> values) {
      const packed_tensor packed = quantize_tensor<Arch>(rules, plan.tensors[i], file.source(), tensor.name, values, tensor.shape);
      if (progress) add_weight_error<Arch>(packed, values, event);
      writer.write(i, packed);
    };
    if (tensor.type == io::dtype::f32 && plan.tensors[i].what != tensor_plan::action::pass_raw) {
      floats.resize(tensor.bytes.size() / sizeof(float));
      in.read_at(offset, std::as_writable_bytes(std::span(floats)));
      if (quantized) {
        write_quantized(floats);
      } else {
        require_finite_kept(file.source(), tensor.name, floats);
        writer.write(i, std::span<const float>(floats));
      }
    } else {
      raw.resize(tensor.bytes.size());
      in.read_at(offset, raw);
      if (quantized) {
        const io::safetensors_tensor view{tensor.name, tensor.type, tensor.shape, raw};
        write_quantized(file.read_float(view));
      } else {
        if (io::is_float_readable(tensor.type)) {
          const io::safetensors_tensor view{tensor.name, tensor.type, tensor.shape, raw};
          require_finite_kept(file.source(), tensor.name, file.read_float(view));
        }
        writer.write(i, std::span<const std::byte>(raw));
      }
    }
    if (progress) progress(event);
  }
  writer.commit();
  return writer.file_size();
}

QGAN_END_FUNCTIONS

}  // namespace qgan::model
