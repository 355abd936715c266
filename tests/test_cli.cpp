// The qgan tool, run in-process on temporary files: quantize -> sample through a .qgan
// file gives the very bytes that quantizing in memory gives, and every bad flag or file
// ends in a clear message and a non-zero exit code.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

#include "cli.hpp"
#include "dcgan/evaluation.hpp"
#include "dcgan/images.hpp"
#include "dcgan/latent.hpp"
#include "dcgan/quantize_model.hpp"
#include "cli_runner.hpp"
#include "test_files.hpp"
#include "qgan/io/qgan_writer.hpp"
#include "qgan/io/qgan_reader.hpp"

using Catch::Matchers::Contains;

namespace {

using qgan::test::generator_path;
using qgan::test::run_cli;
using qgan::test::weights_dir;
using qgan::test::cli_result;

std::vector<std::byte> file_bytes(const std::filesystem::path& path) { return qgan::test::read_bytes(path); }

std::vector<float> source_values(const std::string& path, const char* name) {
  return qgan::io::safetensors_file::open(path).read_float(name);
}

void write_bytes(const std::filesystem::path& path, const void* data, std::size_t size) {
  std::ofstream(path, std::ios::binary).write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
}

}  // namespace

TEST_CASE("qgan quantize then qgan sample equals quantizing in memory, bit for bit", "[cli]") {
  const qgan::test::temp_dir dir("qgan_cli_");
  const auto source = qgan::io::safetensors_file::open(generator_path);
  struct config {
    std::string method;
    int bits;
    bool per_channel;
  };
  for (const config& c : {config{"em", 2, true}, config{"lloyd", 3, false}, config{"log", 4, false},
                          config{"minmax", 1, true}}) {
    DYNAMIC_SECTION(c.method << " " << c.bits << " bits" << (c.per_channel ? " per channel" : "")) {
      const auto model_path = dir.path / "g.qgan";
      const auto png_path = dir.path / "g.png";
      const auto raw_path = dir.path / "g.raw";
      std::vector<std::string> quantize{"quantize", generator_path, "-o", model_path.string(), "--method", c.method,
                                        "--bits", std::to_string(c.bits), "--arch", "dcgan"};
      if (c.per_channel) quantize.push_back("--per-channel");
      std::ostringstream out, err;
      REQUIRE(qgan_cli::run(quantize, {out, err}) == 0);
      const cli_result sample = run_cli({"sample", model_path.string(), "--arch", "dcgan", "-n", "24", "--seed", "3",
                                         "-o", png_path.string(), "--raw", raw_path.string()});
      REQUIRE(sample.code == 0);

      dcgan::quantize_settings settings{.method = c.method, .bits = c.bits, .per_channel = c.per_channel, .arch = "dcgan"};
      const qgan::io::qgan_model model = dcgan::quantize_model(source, settings, "generator.safetensors");
      // The tool runs the packed layers (fp32 activations by default) on the codes.
      const dcgan::packed_generator G(dcgan::packed_weights_from_qgan(model), qgan::nn::packed::activation_path::fp32, 1);
      const std::vector<float> z = dcgan::normal_latents(24 * 100, 3);
      const dcgan::tensor4 images = dcgan::run_generator(G, z, 24);
      // Within float rounding of the fp32 reference layers on the dequantized weights. The
      // packed path sums alpha*sum(z*x) + beta*sum(x), whose two terms nearly cancel for a
      // 1-bit grid (w is alpha + beta or beta), so its rounding is that of the larger terms.
      const dcgan::generator reference(dcgan::weights_from_qgan(model));
      const dcgan::tensor4 reference_images = dcgan::run_generator(reference, z, 24);
      float largest = 0.0f;
      for (Eigen::Index i = 0; i < images.size(); ++i) largest = std::max(largest, std::abs(images.data()[i] - reference_images.data()[i]));
      CHECK(largest < 2e-3f);
      const std::vector<std::byte> raw = file_bytes(raw_path);
      REQUIRE(raw.size() == static_cast<std::size_t>(images.size()) * sizeof(float));
      CHECK(std::memcmp(raw.data(), images.data(), raw.size()) == 0);
      CHECK(file_bytes(png_path) == dcgan::encode_png(dcgan::image_grid(images, 8)));
      // And the file is the in-memory model, serialized.
      CHECK(file_bytes(model_path) == qgan::io::serialize_qgan(model));
    }
  }
}

TEST_CASE("qgan calibrate, then qgan sample --act int8 on any thread count", "[cli]") {
  const qgan::test::temp_dir dir("qgan_cli_");
  const std::string model = (dir.path / "g.qgan").string(), calibrated = (dir.path / "g8.qgan").string();
  REQUIRE(run_cli({"quantize", generator_path, "-o", model, "--method", "em", "--bits", "2", "--per-channel", "--arch", "dcgan"})
              .code == 0);
  // Without stored ranges, 8-bit activations are refused with what to do.
  const cli_result missing = run_cli({"sample", model, "--arch", "dcgan", "--act", "int8", "-o", (dir.path / "x.png").string()});
  CHECK(missing.code == 1);
  CHECK_THAT(missing.err, Contains("deconv1.input_scale") && Contains("qgan calibrate"));
  const cli_result calibrate = run_cli({"calibrate", model, "--arch", "dcgan", "-o", calibrated, "--samples", "256"});
  REQUIRE(calibrate.code == 0);
  CHECK_THAT(calibrate.out, Contains("deconv4 scale"));
  std::vector<std::vector<std::byte>> raws;
  for (const char* threads : {"1", "2", "3"}) {
    const std::string raw = (dir.path / (std::string("r") + threads)).string();
    REQUIRE(run_cli({"sample", calibrated, "--arch", "dcgan", "--act", "int8", "--threads", threads, "-n", "20", "--seed", "3",
                     "-o", (dir.path / "p.png").string(), "--raw", raw})
                .code == 0);
    raws.push_back(file_bytes(raw));
  }
  CHECK(raws[0] == raws[1]);
  CHECK(raws[0] == raws[2]);
  // The 8-bit images stay close to the same codes run with fp32 activations.
  const std::string raw32 = (dir.path / "r32").string();
  REQUIRE(run_cli({"sample", calibrated, "--arch", "dcgan", "-n", "20", "--seed", "3", "-o", (dir.path / "p.png").string(),
                   "--raw", raw32})
              .code == 0);
  const std::vector<std::byte> fp32_bytes = file_bytes(raw32);
  REQUIRE(fp32_bytes.size() == raws[0].size());
  std::vector<float> a(fp32_bytes.size() / 4), b(a.size());
  std::memcpy(a.data(), raws[0].data(), raws[0].size());
  std::memcpy(b.data(), fp32_bytes.data(), fp32_bytes.size());
  double total = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) total += std::abs(a[i] - b[i]);
  CHECK(total / static_cast<double>(a.size()) < 0.05);
  CHECK(a != b);  // 8-bit activations do change the images
  // fp32 weights have no codes to run with 8-bit activations; codebooks have no grid.
  const cli_result fp32_model = run_cli({"sample", generator_path, "--arch", "dcgan", "--act", "int8", "-o", (dir.path / "x.png").string()});
  CHECK(fp32_model.code == 1);
  CHECK_THAT(fp32_model.err, Contains("not quantized"));
  const cli_result unquantized = run_cli({"calibrate", generator_path, "--arch", "dcgan", "-o", (dir.path / "u.qgan").string()});
  CHECK(unquantized.code == 1);
  CHECK_THAT(unquantized.err, Contains("not a .qgan model") && Contains("quantize it first"));
  const std::string lloyd = (dir.path / "lloyd.qgan").string();
  REQUIRE(run_cli({"quantize", generator_path, "-o", lloyd, "--method", "lloyd", "--bits", "2", "--arch", "dcgan"}).code == 0);
  const cli_result codebook = run_cli({"calibrate", lloyd, "--arch", "dcgan", "-o", (dir.path / "l8.qgan").string()});
  CHECK(codebook.code == 1);
  CHECK_THAT(codebook.err, Contains("uniform grid"));
  CHECK_FALSE(std::filesystem::exists(dir.path / "l8.qgan"));
  const cli_result bad_act = run_cli({"sample", model, "--arch", "dcgan", "--act", "int4", "-o", (dir.path / "x.png").string()});
  CHECK(bad_act.code == 2);
  CHECK_THAT(bad_act.err, Contains("--act 'int4'"));
}

TEST_CASE("qgan sample --act int8 refuses stored ranges that are not 8-bit ranges", "[cli]") {
  const qgan::test::temp_dir dir("qgan_cli_");
  const std::string model = (dir.path / "g.qgan").string(), calibrated = (dir.path / "g8.qgan").string();
  REQUIRE(run_cli({"quantize", generator_path, "-o", model, "--method", "em", "--bits", "2", "--per-channel", "--arch", "dcgan"})
              .code == 0);
  REQUIRE(run_cli({"calibrate", model, "--arch", "dcgan", "-o", calibrated, "--samples", "64"}).code == 0);
  struct damage {
    const char* tensor;
    float value;
    const char* message;
  };
  for (const damage d : {damage{"deconv1.input_scale", -1.0f, "are not an 8-bit range"},
                         damage{"deconv1.input_zero_point", 3.5f, "are not an 8-bit range"},
                         damage{"deconv2.input_zero_point", 7.0f, "input follows a ReLU"}}) {
    qgan::io::qgan_model damaged = qgan::io::read_qgan(calibrated);
    for (auto& entry : damaged.tensors) {
      if (entry.name == d.tensor) std::get<qgan::io::float_tensor>(entry.tensor).values[0] = d.value;
    }
    const std::string path = (dir.path / "bad.qgan").string();
    qgan::io::write_qgan(path, damaged);
    const cli_result sample = run_cli({"sample", path, "--arch", "dcgan", "--act", "int8", "-o", (dir.path / "x.png").string()});
    INFO(d.tensor << " = " << d.value);
    CHECK(sample.code == 1);
    CHECK_THAT(sample.err, Contains(d.message) && Contains(d.tensor == std::string("deconv2.input_zero_point") ? "deconv2" : d.tensor));
    CHECK_FALSE(std::filesystem::exists(dir.path / "x.png"));
  }
}

TEST_CASE("qgan sample --z reads the latent vectors a seed would give", "[cli]") {
  const qgan::test::temp_dir dir("qgan_cli_");
  const std::vector<float> z = dcgan::normal_latents(5 * 100, 11);
  write_bytes(dir.path / "z.bin", z.data(), z.size() * sizeof(float));
  const auto a = dir.path / "a.raw";
  const auto b = dir.path / "b.raw";
  REQUIRE(run_cli({"sample", generator_path, "--arch", "dcgan", "-n", "5", "--seed", "11", "-o",
                   (dir.path / "a.png").string(), "--raw", a.string()}).code == 0);
  REQUIRE(run_cli({"sample", generator_path, "--arch", "dcgan", "--z", (dir.path / "z.bin").string(), "-o",
                   (dir.path / "b.png").string(), "--raw", b.string()}).code == 0);
  CHECK(file_bytes(a) == file_bytes(b));
  CHECK(file_bytes(a).size() == 5 * 32 * 32 * sizeof(float));
}

TEST_CASE("qgan quantize records its options and applies --keep, --bits-for and --axis", "[cli]") {
  const qgan::test::temp_dir dir("qgan_cli_");
  const auto path = dir.path / "m.qgan";
  const cli_result r = run_cli({"quantize", generator_path, "-o", path.string(), "--method", "em+", "--bits", "3",
                                "--per-channel", "--axis", "deconv*=1", "--keep", "deconv4.weight", "--bits-for",
                                "deconv1.*=1"});
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("3 of 19 tensors quantized") && Catch::Contains("weight SQNR"));
  const qgan::io::qgan_model model = qgan::io::read_qgan(path);
  CHECK(model.metadata.at("qgan.method") == "em+");
  CHECK(model.metadata.at("qgan.bits") == "1,3");  // the widths used
  CHECK(model.metadata.at("qgan.granularity") == "per-channel");
  CHECK(model.metadata.at("qgan.keep") == "deconv4.weight");
  CHECK(model.metadata.at("qgan.source") == "generator.safetensors");
  CHECK(model.metadata.count("source.architecture") == 1);
  CHECK(model.packed("deconv1.weight").bits == 1);
  CHECK(model.packed("deconv2.weight").bits == 3);
  CHECK(model.packed("deconv2.weight").grain == qgan::granularity{qgan::per_channel{1}});
  CHECK(model.floats("deconv4.weight").values == source_values(generator_path, "deconv4.weight"));
  CHECK(model.raw("bn1.num_batches_tracked").type == qgan::io::dtype::i64);

  const cli_result info = run_cli({"info", path.string()});
  REQUIRE(info.code == 0);
  CHECK_THAT(info.out, Catch::Contains("deconv2.weight") && Catch::Contains("3-bit") &&
                           Catch::Contains("per-channel axis 1") && Catch::Contains("compression"));
  CHECK_THAT(run_cli({"info", generator_path}).out, Catch::Contains("safetensors, 19 tensors"));
}

TEST_CASE("qgan eval scores a model against the fp32 generator", "[cli]") {
  const qgan::test::temp_dir dir("qgan_cli_");
  const cli_result fp32 = run_cli({"eval", generator_path, "--arch", "dcgan", "--samples", "300", "--bootstrap", "4", "--json"});
  REQUIRE(fp32.code == 0);
  const auto j = nlohmann::json::parse(fp32.out);
  CHECK(j.at("identical_to_fp32") == true);
  CHECK(j.at("psnr_db_vs_fp32").is_null());
  CHECK(j.at("samples") == 300);
  CHECK(j.at("fid_fmnist_bootstrap_std").get<double>() > 0);

  const auto path = dir.path / "m.qgan";
  REQUIRE(run_cli({"quantize", generator_path, "-o", path.string(), "--method", "minmax", "--bits", "1"}).code == 0);
  const auto q = nlohmann::json::parse(run_cli({"eval", path.string(), "--arch", "dcgan", "--samples", "300",
                                                 "--bootstrap", "4", "--json"}).out);
  CHECK(q.at("identical_to_fp32") == false);
  CHECK(q.at("psnr_db_vs_fp32").get<double>() < 30);
  // 1-bit minmax per tensor wrecks the generator: far from the real images.
  CHECK(q.at("fid_fmnist").get<double>() > j.at("fid_fmnist").get<double>() + 10);
}

TEST_CASE("Bad flags are usage errors (exit 2) that name the option", "[cli]") {
  const std::string g = generator_path;
  const std::string o = "/nonexistent-dir/x.qgan";
  struct bad {
    std::vector<std::string> args;
    std::string says;
  };
  const std::vector<bad> cases{
      {{"frobnicate"}, "unknown command 'frobnicate'"},
      {{"quantize", g, "-o", o, "--method", "foo", "--bits", "2"}, "unknown method 'foo'"},
      {{"quantize", g, "-o", o, "--method", "em", "--bits", "9"}, "--bits: 9 is outside 1..8"},
      {{"quantize", g, "-o", o, "--method", "em", "--bits", "two"}, "'two' is not a whole number"},
      {{"quantize", g, "-o", o, "--method", "em"}, "--bits is required"},
      {{"quantize", g, "--method", "em", "--bits", "2"}, "-o is required"},
      {{"quantize", g, "-o", o, "--method", "em", "--bits", "2", "--frob"}, "unknown option '--frob'"},
      {{"quantize", g, "-o", o, "--method", "em", "--bits", "2", "--bits", "3"}, "--bits given more than once"},
      {{"quantize", g, "-o", o, "--method", "em", "--bits", "2", "--axis", "deconv*=1"}, "an axis rule only applies per channel"},
      {{"quantize", g, "-o", o, "--method", "em", "--bits", "2", "--bits-for", "deconv1*"}, "is not PATTERN=N"},
      {{"quantize", g, "-o", o, "--method", "em", "--bits", "2", "--bits-for", "deconv1*=0"}, "outside 1..8"},
      {{"quantize", g, "-o", o, "--method", "em", "--bits", "2", "--arch", "vgg"}, "arch 'vgg' is unknown"},
      {{"quantize", "-o", o, "--method", "em", "--bits", "2"}, "needs exactly one input file"},
      {{"sample", g, "-o", "x.png"}, "--arch is required"},
      {{"sample", g, "--arch", "resnet", "-o", "x.png"}, "--arch 'resnet' is unknown"},
      {{"sample", g, "--arch", "dcgan", "-o", "x.png", "-n", "0"}, "-n: 0 is outside"},
      {{"sample", g, "--arch", "dcgan", "-o", "x.png", "-n"}, "-n needs a value"},
      {{"sample", g, "--arch", "dcgan", "-o", "x.png", "--z", "z.bin", "--seed", "1"}, "--z or --seed, not both"},
      {{"eval", g, "--arch", "dcgan", "--bootstrap", "1"}, "--bootstrap 1 gives no spread"},
      {{"info"}, "needs exactly one FILE"},
      {{"quantize", g, "-o", g, "--method", "em", "--bits", "2"}, "is the same file as IN"},
  };
  for (const bad& b : cases) {
    INFO(b.says);
    std::ostringstream out, err;
    CHECK(qgan_cli::run(b.args, {out, err}) == 2);
    CHECK_THAT(err.str(), Catch::Contains(b.says));
  }
  CHECK(run_cli({}).code == 2);  // no command: prints the overview, fails
  for (const std::string command : {"info", "quantize", "sample", "eval"}) {
    const cli_result help = run_cli({command, "--help"});
    CHECK(help.code == 0);
    CHECK_THAT(help.out, Catch::StartsWith("usage: qgan " + command));
  }
}

TEST_CASE("Bad files fail (exit 1) with a message naming the file and tensor", "[cli]") {
  const qgan::test::temp_dir dir("qgan_cli_");
  const std::string g = generator_path;
  const auto out = (dir.path / "out.qgan").string();
  const auto png = (dir.path / "out.png").string();
  const auto good = dir.path / "good.qgan";
  REQUIRE(run_cli({"quantize", g, "-o", good.string(), "--method", "em", "--bits", "2"}).code == 0);
  std::vector<std::byte> bytes = file_bytes(good);
  const auto truncated = dir.path / "truncated.qgan";
  write_bytes(truncated, bytes.data(), bytes.size() / 2);
  const auto garbage = dir.path / "garbage.safetensors";
  write_bytes(garbage, "not a model at all, just some text", 34);
  const std::vector<float> few(150, 0.5f);
  const auto short_z = dir.path / "z.bin";
  write_bytes(short_z, few.data(), few.size() * sizeof(float));
  const auto nan_z = dir.path / "nan.bin";
  std::vector<float> nan_values(100, 0.0f);
  nan_values[7] = std::numeric_limits<float>::quiet_NaN();
  write_bytes(nan_z, nan_values.data(), nan_values.size() * sizeof(float));

  struct bad {
    std::vector<std::string> args;
    std::vector<std::string> says;
  };
  const std::vector<bad> cases{
      {{"quantize", "/no/such.safetensors", "-o", out, "--method", "em", "--bits", "2"}, {"/no/such.safetensors", "no such file"}},
      {{"quantize", good.string(), "-o", out, "--method", "em", "--bits", "2"}, {"good.qgan", "already a .qgan"}},
      {{"quantize", garbage.string(), "-o", out, "--method", "em", "--bits", "2"}, {"garbage.safetensors"}},
      {{"quantize", g, "-o", out, "--method", "em", "--bits", "2", "--per-channel"}, {"deconv1.weight", "give an arch preset (dcgan) or an axis rule"}},
      {{"quantize", g, "-o", out, "--method", "log", "--bits", "1"}, {"deconv1.weight"}},
      {{"quantize", g, "-o", out, "--method", "em", "--bits", "2", "--keep", "decon9*"}, {"keep pattern 'decon9*' matches no tensor"}},
      {{"quantize", g, "-o", out, "--method", "em", "--bits", "2", "--per-channel", "--axis", "deconv*=4"}, {"deconv1.weight", "axis 4 is out of range"}},
      {{"sample", truncated.string(), "--arch", "dcgan", "-o", png}, {"truncated.qgan"}},
      {{"sample", garbage.string(), "--arch", "dcgan", "-o", png}, {"garbage.safetensors"}},
      {{"sample", weights_dir + "/classifier.safetensors", "--arch", "dcgan", "-o", png}, {"classifier.safetensors", "deconv1.weight", "missing"}},
      {{"sample", g, "--arch", "dcgan", "-o", png, "--z", short_z.string()}, {"z.bin", "not a whole number of 100-float latent vectors"}},
      {{"sample", g, "--arch", "dcgan", "-o", png, "--z", nan_z.string()}, {"nan.bin", "value 7 is not finite"}},
      {{"sample", g, "--arch", "dcgan", "-o", png, "-n", "3", "--z", nan_z.string()}, {"holds 1 latent vectors but -n is 3"}},
      {{"sample", g, "--arch", "dcgan", "-o", "/nonexistent-dir/x.png"}, {"/nonexistent-dir"}},
      {{"info", "/no/such.qgan"}, {"/no/such.qgan", "no such file"}},
      {{"info", truncated.string()}, {"truncated.qgan"}},
      {{"eval", g, "--arch", "dcgan", "--weights-dir", dir.path.string()}, {"--weights-dir", "no classifier.safetensors"}},
  };
  for (const bad& b : cases) {
    INFO(b.args[0] + " " + b.args[1]);
    std::ostringstream o, e;
    CHECK(qgan_cli::run(b.args, {o, e}) == 1);
    for (const std::string& part : b.says) CHECK_THAT(e.str(), Catch::Contains(part));
  }
  CHECK_FALSE(std::filesystem::exists(out));  // nothing half-written under the final name
  CHECK_FALSE(std::filesystem::exists(png));
}

TEST_CASE("A weight that is NaN is refused naming the file and tensor", "[cli]") {
  const qgan::test::temp_dir dir("qgan_cli_");
  const auto source = qgan::io::safetensors_file::open(generator_path);
  std::vector<std::vector<float>> values;
  std::vector<qgan::io::safetensors_tensor> tensors;
  for (const auto& t : source.tensors()) {
    if (t.type != qgan::io::dtype::f32) continue;
    values.push_back(source.read_float(t));
    if (t.name == "bn2.running_mean") values.back()[5] = std::numeric_limits<float>::quiet_NaN();
  }
  std::size_t k = 0;
  for (const auto& t : source.tensors()) {
    if (t.type == qgan::io::dtype::f32) tensors.push_back(qgan::io::make_f32_tensor(t.name, t.shape, values[k++]));
  }
  const auto bad = dir.path / "nan.safetensors";
  qgan::io::write_safetensors(bad, tensors);
  const cli_result r = run_cli({"sample", bad.string(), "--arch", "dcgan", "-o", (dir.path / "x.png").string()});
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Catch::Contains("nan.safetensors") && Catch::Contains("bn2.running_mean") &&
                        Catch::Contains("element 5 is NaN"));
  // "--" ends the options, so a file name may start with '-'.
  std::filesystem::copy_file(generator_path, dir.path / "-g.safetensors");
  const auto previous = std::filesystem::current_path();
  std::filesystem::current_path(dir.path);
  const int code = run_cli({"info", "--", "-g.safetensors"}).code;
  std::filesystem::current_path(previous);
  CHECK(code == 0);
}
