// qgan info FILE: what a .safetensors or .qgan file holds and what it costs in bytes.
#include <cstdio>
#include <iomanip>
#include <sstream>
#include <string_view>
#include <variant>

#include "cli.hpp"
#include "dcgan/weights.hpp"
#include "qgan/io/file_checks.hpp"
#include "qgan/io/qgan_file.hpp"
#include "qgan/io/safetensors.hpp"
#include "qgan/qgan.hpp"

namespace qgan_cli {

namespace {

constexpr const char* info_help =
    "usage: qgan info FILE\n"
    "\n"
    "Lists the tensors of a .safetensors or .qgan file: name, shape, dtype or bits and\n"
    "policy, granularity, bytes; then the totals, the compression against fp32 storage of\n"
    "the same tensors, and the file's metadata.\n";

// Names and metadata come from the file: a control character (ESC[2J clears the screen)
// must reach the terminal as text. C0, DEL and the UTF-8 encodings of C1 are escaped.
std::string printable(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    const bool c1 = byte == 0xC2 && i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) >= 0x80 &&
                    static_cast<unsigned char>(text[i + 1]) <= 0x9F;
    if (byte < 0x20 || byte == 0x7F || c1) {
      const unsigned code = c1 ? static_cast<unsigned char>(text[++i]) : byte;
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\x%02x", code);
      out += escaped;
    } else {
      out += static_cast<char>(byte);
    }
  }
  return out;
}

std::string human(std::uint64_t bytes) {
  std::ostringstream text;
  text << bytes << " B";
  if (bytes >= 1024) text << " (" << std::fixed << std::setprecision(1) << double(bytes) / 1024.0 << " KiB)";
  return text.str();
}

void print_row(std::ostream& out, const std::string& name, const std::string& shape, const std::string& type,
               const std::string& detail, const std::string& bytes) {
  out << std::left << std::setw(28) << printable(name) << ' ' << std::setw(16) << shape << ' ' << std::setw(10) << type << ' '
      << std::setw(26) << detail << ' ' << std::right << std::setw(10) << bytes << '\n';
}

template <class Map>
void print_metadata(std::ostream& out, const Map& metadata) {
  if (metadata.empty()) return;
  out << "metadata:\n";
  for (const auto& [key, value] : metadata) {
    std::string shown = printable(value);
    if (shown.size() > 120) shown = shown.substr(0, 117) + "...";
    out << "  " << printable(key) << ": " << shown << '\n';
  }
}

}  // namespace

int command_info(std::span<const std::string> args, const context& ctx) {
  const std::optional<parsed_args> maybe_parsed = parse_command("info", args, {}, info_help, "FILE", ctx);
  if (!maybe_parsed) return 0;
  const parsed_args& parsed = *maybe_parsed;
  const std::filesystem::path path = parsed.positionals[0];
  const std::uint64_t file_bytes = qgan::io::regular_file_size(path);
  // Printed only once the whole file has been read: an error leaves stdout empty.
  std::ostringstream out;
  std::uint64_t fp32_bytes = 0;
  print_row(out, "tensor", "shape", "type", "quantization", "bytes");
  if (dcgan::is_qgan_file(path)) {
    const qgan::io::qgan_model model = qgan::io::read_qgan(path);
    std::size_t packed_count = 0;
    for (const auto& entry : model.tensors) {
      if (const auto* p = std::get_if<qgan::packed_tensor>(&entry.tensor)) {
        ++packed_count;
        std::string grain = "per-tensor";
        if (const auto* c = std::get_if<qgan::per_channel>(&p->grain)) grain = "per-channel axis " + std::to_string(c->axis);
        print_row(out, entry.name, qgan::to_string(p->shape), std::to_string(p->bits) + "-bit",
                  std::string(qgan::policy_name(p->policy)) + ", " + grain, std::to_string(p->codes.size() + p->params.size() * 4));
        fp32_bytes += p->element_count() * 4;
      } else if (const auto* f = std::get_if<qgan::io::float_tensor>(&entry.tensor)) {
        print_row(out, entry.name, qgan::to_string(f->shape), "F32", "-", std::to_string(f->values.size() * 4));
        fp32_bytes += f->values.size() * 4;
      } else if (const auto* r = std::get_if<qgan::io::raw_tensor>(&entry.tensor)) {
        print_row(out, entry.name, qgan::to_string(r->shape), std::string(qgan::io::dtype_name(r->type)), "-", std::to_string(r->bytes.size()));
        fp32_bytes += qgan::io::is_float_readable(r->type) ? qgan::element_count(r->shape) * 4 : r->bytes.size();
      }
    }
    out << "\n" << path.string() << ": qgan model, " << model.tensors.size() << " tensors (" << packed_count
        << " quantized), file " << human(file_bytes) << "\n";
    print_metadata(out, model.metadata);
  } else {
    const auto file = qgan::io::safetensors_file::open(path);
    for (const auto& t : file.tensors()) {
      print_row(out, t.name, qgan::to_string(t.shape), std::string(qgan::io::dtype_name(t.type)), "-", std::to_string(t.bytes.size()));
      fp32_bytes += qgan::io::is_float_readable(t.type) ? qgan::element_count(t.shape) * 4 : t.bytes.size();
    }
    out << "\n" << path.string() << ": safetensors, " << file.tensors().size() << " tensors, file " << human(file_bytes) << "\n";
    print_metadata(out, file.metadata());
  }
  out << "fp32 size of the same tensors: " << human(fp32_bytes) << "; compression " << std::fixed
      << std::setprecision(2) << double(fp32_bytes) / double(file_bytes) << "x\n";
  ctx.out << out.str();
  return 0;
}

}  // namespace qgan_cli
