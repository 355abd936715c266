#include "cli.hpp"

#include <cstdlib>
#include <exception>

#include "qgan/core/error.hpp"
#include "qgan/simd/dispatch.hpp"
#include "qgan/version.hpp"

namespace qgan_cli {

namespace {

constexpr const char* overview =
    "qgan " QGAN_VERSION_STRING " - low-bit quantization of GAN generators\n"
    "\n"
    "usage: qgan COMMAND [OPTIONS]\n"
    "\n"
    "commands:\n"
    "  info FILE                       tensors, shapes, dtypes or bits, policy, bytes, compression\n"
    "  quantize IN.safetensors -o OUT.qgan --method M --bits K [...]\n"
    "                                  quantize every conv/linear weight of a model\n"
    "  calibrate MODEL.qgan --arch dcgan -o OUT.qgan [--samples N] [--seed S]\n"
    "                                  store the 8-bit activation ranges --act int8 needs\n"
    "  sample MODEL --arch dcgan -o grid.png [-n N] [--seed S] [--act fp32|int8] [--threads N]\n"
    "                                  generate images from a .safetensors or .qgan generator\n"
    "  eval MODEL --arch dcgan [--samples N] [--act fp32|int8] [--threads N] [--json]\n"
    "                                  FID-FMNIST, IS-FMNIST and PSNR against the fp32 generator\n"
    "\n"
    "Run 'qgan COMMAND --help' for a command's options.\n";

}  // namespace

std::optional<parsed_args> parse_command(const std::string& command, std::span<const std::string> args,
                                         std::span<const option_spec> specs, const char* help,
                                         const std::string& operand, const context& ctx) {
  parsed_args parsed = parse_args(command, args, specs);
  if (parsed.has("--help")) {
    ctx.out << help;
    return std::nullopt;
  }
  if (parsed.positionals.size() != 1) {
    throw usage_error("qgan " + command + ": needs exactly one " + operand + " (see qgan " + command + " --help)");
  }
  return parsed;
}

std::filesystem::path find_weights_dir(const parsed_args& parsed, const context& ctx) {
  namespace fs = std::filesystem;
  const auto usable = [](const fs::path& dir) { return fs::exists(dir / "classifier.safetensors"); };
  if (const auto flag = parsed.value("--weights-dir")) {
    if (!usable(*flag)) {
      throw qgan::error("--weights-dir " + *flag + ": no classifier.safetensors there");
    }
    return *flag;
  }
  if (const char* env = std::getenv("QGAN_DCGAN_WEIGHTS"); env != nullptr && *env != '\0') {
    if (!usable(env)) throw qgan::error(std::string("$QGAN_DCGAN_WEIGHTS=") + env + ": no classifier.safetensors there");
    return env;
  }
  if (!ctx.executable.empty()) {
    const fs::path installed = ctx.executable.parent_path() / ".." / "share" / "qgan" / "dcgan";
    if (usable(installed)) return installed;
  }
#ifdef QGAN_DCGAN_WEIGHTS_DIR
  if (usable(QGAN_DCGAN_WEIGHTS_DIR)) return QGAN_DCGAN_WEIGHTS_DIR;
#endif
  throw qgan::error("cannot find the DCGAN reference weights (classifier.safetensors, "
                    "fid_reference.safetensors, generator.safetensors): pass --weights-dir DIR "
                    "or set QGAN_DCGAN_WEIGHTS");
}

void require_distinct_files(const parsed_args& parsed, std::span<const qgan::io::file_role> inputs,
                            std::span<const qgan::io::file_role> outputs) {
  try {
    qgan::io::require_distinct_files(inputs, outputs);
  } catch (const qgan::error& e) {
    throw usage_error("qgan " + parsed.command + ": " + e.what());
  }
}

void require_dcgan_arch(const parsed_args& parsed) {
  const std::string arch = parsed.required("--arch");
  if (arch != "dcgan") {
    throw usage_error("qgan " + parsed.command + ": --arch '" + arch + "' is unknown (known: dcgan)");
  }
}

qgan::nn::packed::activation_path activation_option(const parsed_args& parsed) {
  const std::string act = parsed.value("--act").value_or("fp32");
  if (act == "fp32") return qgan::nn::packed::activation_path::fp32;
  if (act == "int8") return qgan::nn::packed::activation_path::int8;
  throw usage_error("qgan " + parsed.command + ": --act '" + act + "' is unknown (fp32 or int8)");
}

int threads_option(const parsed_args& parsed) { return static_cast<int>(parsed.integer("--threads", 1, 1, 256)); }

int run(std::span<const std::string> args, const context& ctx) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    ctx.out << overview;
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "--version") {
    ctx.out << "qgan " QGAN_VERSION_STRING "\n";
    // The kernel set every command runs (run-time dispatch, or QGAN_KERNELS) and the
    // others this CPU could run.
    try {
      ctx.out << "kernels: " << qgan::simd::active_kernels<>().name;
      if (qgan::simd::kernels_dispatched()) {
        ctx.out << " (run-time dispatch; this CPU runs:";
        for (const auto* set : qgan::simd::available_kernel_sets()) ctx.out << " " << set->name;
        ctx.out << "; QGAN_KERNELS=NAME forces one)";
      } else {
        ctx.out << " (static, from the build flags)";
      }
      ctx.out << "\n";
    } catch (const std::exception& e) {
      ctx.err << "qgan: error: " << e.what() << "\n";
      return 1;
    }
    return 0;
  }
  const std::string& command = args[0];
  const auto rest = args.subspan(1);
  try {
    if (command == "info") return command_info(rest, ctx);
    if (command == "quantize") return command_quantize(rest, ctx);
    if (command == "sample") return command_sample(rest, ctx);
    if (command == "eval") return command_eval(rest, ctx);
    if (command == "calibrate") return command_calibrate(rest, ctx);
    throw usage_error("qgan: unknown command '" + command + "' (commands: info, quantize, calibrate, sample, eval; see qgan --help)");
  } catch (const usage_error& e) {
    ctx.err << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    ctx.err << "qgan " << command << ": error: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace qgan_cli
