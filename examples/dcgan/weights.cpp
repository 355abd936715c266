#include "dcgan/weights.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <fstream>
#include <variant>

#include "qgan/io/input_file.hpp"
#include "qgan/io/qgan_file.hpp"
#include "qgan/io/safetensors.hpp"
#include "qgan/qgan.hpp"

namespace dcgan {

weight_set weights_from_safetensors(const qgan::io::safetensors_file& file) {
  weight_set weights(file.source());
  for (const auto& tensor : file.tensors()) {
    using qgan::io::dtype;
    if (tensor.type != dtype::f32 && tensor.type != dtype::f16 && tensor.type != dtype::bf16 &&
        tensor.type != dtype::f64) {
      weights.add_other(tensor.name, std::string(qgan::io::dtype_name(tensor.type)));
      continue;
    }
    weights.add(tensor.name, {tensor.shape, file.read_float(tensor)});
  }
  return weights;
}

/// F16, BF16 and F64 tensors that `qgan quantize` kept byte for byte, as float.
std::vector<float> decode_floats(const qgan::io::raw_tensor& raw) {
  using qgan::io::dtype;
  const std::size_t width = qgan::io::dtype_bits(raw.type) / 8;
  std::vector<float> out(raw.bytes.size() / width);
  for (std::size_t i = 0; i < out.size(); ++i) {
    const std::byte* in = raw.bytes.data() + i * width;
    if (raw.type == dtype::f64) {
      double value = 0;
      std::memcpy(&value, in, sizeof value);
      out[i] = static_cast<float>(value);
    } else if (raw.type == dtype::f32) {
      std::memcpy(&out[i], in, sizeof(float));
    } else {
      std::uint16_t bits = 0;
      std::memcpy(&bits, in, sizeof bits);
      out[i] = raw.type == dtype::bf16 ? qgan::io::bf16_to_float(bits) : qgan::io::f16_to_float(bits);
    }
  }
  return out;
}

/// Float tensors as stored, packed tensors decoded with qgan::dequantize.
weight_set weights_from_qgan(const qgan::io::qgan_model& model) {
  weight_set weights(model.source.empty() ? std::string("qgan model") : model.source);
  for (const auto& entry : model.tensors) {
    if (const auto* packed = std::get_if<qgan::packed_tensor>(&entry.tensor)) {
      weights.add(entry.name, {packed->shape, qgan::dequantize(*packed, entry.name)});
    } else if (const auto* floats = std::get_if<qgan::io::float_tensor>(&entry.tensor)) {
      weights.add(entry.name, {floats->shape, floats->values});
    } else if (const auto* raw = std::get_if<qgan::io::raw_tensor>(&entry.tensor)) {
      if (qgan::io::is_float_readable(raw->type)) {
        weights.add(entry.name, {raw->shape, decode_floats(*raw)});
      } else {
        weights.add_other(entry.name, std::string(qgan::io::dtype_name(raw->type)));
      }
    }
  }
  return weights;
}

/// True when the file starts with the .qgan magic (or one byte off it); the extension is
/// not trusted.
namespace {

// One damaged byte still makes it a .qgan file, so the .qgan reader reports the damage
// (a safetensors parse of it would complain about a header length instead).
bool has_qgan_magic(std::span<const std::byte> head) {
  const auto& magic = qgan::io::qgan_file_detail::magic;
  if (head.size() < magic.size()) return false;
  std::size_t differences = 0;
  for (std::size_t i = 0; i < magic.size(); ++i) differences += head[i] != magic[i] ? 1 : 0;
  return differences <= 1;
}

}  // namespace

bool is_qgan_file(const std::filesystem::path& path) {
  const qgan::io::input_file in(path);
  std::array<std::byte, 8> head{};
  try {
    in.read_at(0, head);
  } catch (const qgan::error&) {
    return false;  // shorter than a magic: the safetensors reader will say what it is
  }
  return has_qgan_magic(head);
}

/// A model file of either kind; errors name the path.
namespace {

// A NaN or infinity in a weight would flow through every layer into garbage images and
// NaN metrics; refuse it where the file is named.
void require_finite_weights(const weight_set& weights) {
  for (const auto& [name, tensor] : weights.tensors()) {
    for (std::size_t i = 0; i < tensor.values.size(); ++i) {
      if (!std::isfinite(tensor.values[i])) {
        qgan::detail::throw_error(weights.source(), ": tensor '", name, "': element ", i, " is ",
                                  std::isnan(tensor.values[i]) ? "NaN" : "infinite", " (weights must be finite)");
      }
    }
  }
}

}  // namespace

weight_set load_weights(const std::filesystem::path& path) {
  // Read with pread into memory, not mapped: a file truncated while it loads is an error
  // naming it, not SIGBUS. The float copies below are as large anyway.
  const std::vector<std::byte> image = qgan::io::input_file(path).read_all();
  weight_set weights = has_qgan_magic(image)
                           ? weights_from_qgan(qgan::io::parse_qgan(image, path.string()))
                           : weights_from_safetensors(qgan::io::safetensors_file::parse(image, path.string()));
  require_finite_weights(weights);
  return weights;
}

packed_weight_set load_packed_weights(const std::filesystem::path& path) {
  const std::vector<std::byte> image = qgan::io::input_file(path).read_all();
  packed_weight_set out;
  if (!has_qgan_magic(image)) {
    out.floats = weights_from_safetensors(qgan::io::safetensors_file::parse(image, path.string()));
    require_finite_weights(out.floats);
    return out;
  }
  return packed_weights_from_qgan(qgan::io::parse_qgan(image, path.string()));
}

packed_weight_set packed_weights_from_qgan(qgan::io::qgan_model model) {
  packed_weight_set out;
  qgan::io::qgan_model rest;
  rest.source = model.source;
  for (auto& entry : model.tensors) {
    if (auto* packed = std::get_if<qgan::packed_tensor>(&entry.tensor)) {
      out.packed.emplace(entry.name, std::move(*packed));
    } else {
      rest.tensors.push_back(std::move(entry));
    }
  }
  out.floats = weights_from_qgan(rest);
  require_finite_weights(out.floats);
  return out;
}

}  // namespace dcgan
