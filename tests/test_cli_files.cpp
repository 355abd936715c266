// The qgan tool against a hostile but realistic user (issue: "the tool never destroys a
// user's file"): one case per finding, named like the corrupt-file generators. Each ran
// wrong before the fix: a user's file replaced, a tensor silently ignored, a number
// invented, a message that named the wrong thing.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cli_runner.hpp"
#include "qgan/io/qgan_file.hpp"
#include "qgan/io/safetensors.hpp"
#include "test_files.hpp"

namespace fs = std::filesystem;
namespace io = qgan::io;
using qgan::test::generator_path;
using qgan::test::run_cli;

namespace {

struct tensor_copy {
  std::string name;
  io::dtype type;
  qgan::shape_t shape;
  std::vector<std::byte> bytes;
};

std::vector<tensor_copy> shipped_generator() {
  const auto file = io::safetensors_file::open(generator_path);
  std::vector<tensor_copy> out;
  for (const auto& t : file.tensors()) out.push_back({t.name, t.type, t.shape, {t.bytes.begin(), t.bytes.end()}});
  return out;
}

tensor_copy f32_tensor(std::string name, qgan::shape_t shape, const std::vector<float>& values) {
  const auto bytes = std::as_bytes(std::span(values));
  return {std::move(name), io::dtype::f32, std::move(shape), {bytes.begin(), bytes.end()}};
}

tensor_copy& find(std::vector<tensor_copy>& tensors, const std::string& name) {
  for (auto& t : tensors) {
    if (t.name == name) return t;
  }
  FAIL("no tensor " << name);
  throw;
}

std::vector<float> floats_of(const tensor_copy& t) {
  std::vector<float> values(t.bytes.size() / sizeof(float));
  std::memcpy(values.data(), t.bytes.data(), t.bytes.size());
  return values;
}

void write_model(const fs::path& path, const std::vector<tensor_copy>& tensors) {
  std::vector<io::safetensors_tensor> views;
  for (const auto& t : tensors) views.push_back({t.name, t.type, t.shape, t.bytes});
  io::write_safetensors(path, views);
}

std::vector<std::byte> bytes_of(const fs::path& path) { return qgan::test::read_bytes(path); }

std::vector<float> raw_floats(const fs::path& path) {
  const auto bytes = bytes_of(path);
  std::vector<float> values(bytes.size() / sizeof(float));
  std::memcpy(values.data(), bytes.data(), values.size() * sizeof(float));
  return values;
}

struct quantized_model {
  qgan::test::temp_dir dir{"qgan_cli_files_"};
  fs::path model = dir.path / "m.qgan";
  quantized_model() {
    REQUIRE(run_cli({"quantize", generator_path, "-o", model.string(), "--method", "em", "--bits", "2",
                     "--per-channel", "--arch", "dcgan"})
                .code == 0);
  }
};

}  // namespace

TEST_CASE("SAMPLE_OUTPUT_IS_AN_INPUT: every alias of an input or another output is refused", "[cli][file_safety]") {
  const quantized_model m;
  const auto model_bytes = bytes_of(m.model);
  const std::string model = m.model.string();
  const std::string z = (m.dir.path / "z.f32").string();
  {
    std::vector<float> latents(100, 0.5f);
    std::ofstream(z, std::ios::binary).write(reinterpret_cast<const char*>(latents.data()), 400);
  }
  const auto z_bytes = bytes_of(z);
  const std::string png = (m.dir.path / "g.png").string();
  struct alias {
    const char* name;
    std::vector<std::string> args;
    const char* says;
  };
  const std::vector<alias> cases{
      {"PNG_OVER_MODEL", {"sample", model, "--arch", "dcgan", "-o", model}, "-o"},
      {"RAW_OVER_MODEL", {"sample", model, "--arch", "dcgan", "-o", png, "--raw", model}, "--raw"},
      {"RAW_OVER_Z", {"sample", model, "--arch", "dcgan", "--z", z, "-o", png, "--raw", z}, "--raw"},
      {"PNG_AND_RAW_SAME", {"sample", model, "--arch", "dcgan", "-o", png, "--raw", png}, "--raw"},
      {"PNG_OVER_MODEL_VIA_DOTDOT", {"sample", model, "--arch", "dcgan", "-o", (m.dir.path / "." / "m.qgan").string()}, "-o"},
  };
  for (const alias& c : cases) {
    INFO(c.name);
    const auto r = run_cli(c.args);
    CHECK(r.code == 2);
    CHECK_THAT(r.err, Catch::Contains(c.says) && Catch::Contains("is the same file as"));
  }
  CHECK(bytes_of(m.model) == model_bytes);
  CHECK(bytes_of(z) == z_bytes);
  CHECK_FALSE(fs::exists(png));
}

TEST_CASE("SAMPLE_FAILING_OUTPUT_WRITES_NOTHING: -o a directory leaves --raw as it was", "[cli][file_safety]") {
  const quantized_model m;
  const fs::path raw = m.dir.path / "old.f32";
  qgan::test::temp_dir other("qgan_cli_files_dir_");
  std::ofstream(raw) << "precious";
  const auto r = run_cli({"sample", m.model.string(), "--arch", "dcgan", "-n", "2", "-o", other.path.string(), "--raw",
                          raw.string()});
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Catch::Contains("is a directory"));
  std::ifstream in(raw);
  CHECK(std::string(std::istreambuf_iterator<char>(in), {}) == "precious");
  CHECK(m.dir.names() == (std::vector<std::string>{"m.qgan", "old.f32"}));
}

TEST_CASE("SAMPLE_OUTPUT_KEEPS_MODE: a 0600 PNG stays 0600", "[cli][file_safety]") {
  const quantized_model m;
  const fs::path png = m.dir.path / "g.png";
  std::ofstream(png) << "old";
  REQUIRE(::chmod(png.c_str(), 0600) == 0);
  REQUIRE(run_cli({"sample", m.model.string(), "--arch", "dcgan", "-n", "2", "-o", png.string()}).code == 0);
  struct stat info {};
  REQUIRE(::stat(png.c_str(), &info) == 0);
  CHECK((info.st_mode & 07777) == 0600);
}

TEST_CASE("GENERATOR_WITH_BIASES: conv biases are used, not dropped", "[cli][model]") {
  const qgan::test::temp_dir dir("qgan_cli_files_");
  auto tensors = shipped_generator();
  const std::vector<std::pair<std::string, std::int64_t>> biases{
      {"deconv1.bias", 256}, {"deconv2.bias", 128}, {"deconv3.bias", 64}, {"deconv4.bias", 1}};
  const auto sample_raw = [&](const char* name, float bias_value) {
    auto with = tensors;
    for (const auto& [bias, channels] : biases) {
      with.push_back(f32_tensor(bias, {channels}, std::vector<float>(static_cast<std::size_t>(channels), bias_value)));
    }
    const fs::path model = dir.path / (std::string(name) + ".safetensors");
    const fs::path raw = dir.path / (std::string(name) + ".f32");
    write_model(model, with);
    const auto r = run_cli({"sample", model.string(), "--arch", "dcgan", "-n", "3", "-o",
                            (dir.path / (std::string(name) + ".png")).string(), "--raw", raw.string()});
    REQUIRE(r.code == 0);
    return raw_floats(raw);
  };
  const fs::path plain_raw = dir.path / "plain.f32";
  REQUIRE(run_cli({"sample", generator_path, "--arch", "dcgan", "-n", "3", "-o", (dir.path / "plain.png").string(),
                   "--raw", plain_raw.string()})
              .code == 0);
  const std::vector<float> plain = raw_floats(plain_raw);
  CHECK(sample_raw("zero_bias", 0.0f) == plain);  // a zero bias changes nothing
  const std::vector<float> biased = sample_raw("biased", 0.05f);
  REQUIRE(biased.size() == plain.size());
  float largest = 0.0f;
  for (std::size_t i = 0; i < plain.size(); ++i) largest = std::max(largest, std::fabs(biased[i] - plain[i]));
  CHECK(largest > 0.01f);
}

TEST_CASE("UNKNOWN_TENSOR_REFUSED: an extra layer is named, not ignored", "[cli][model]") {
  const qgan::test::temp_dir dir("qgan_cli_files_");
  auto tensors = shipped_generator();
  tensors.push_back(f32_tensor("deconv5.weight", {1, 1, 4, 4}, std::vector<float>(16, 0.1f)));
  const fs::path model = dir.path / "extra.safetensors";
  write_model(model, tensors);
  const auto r = run_cli({"sample", model.string(), "--arch", "dcgan", "-n", "2", "-o", (dir.path / "g.png").string()});
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Catch::Contains("extra.safetensors") && Catch::Contains("'deconv5.weight'") &&
                        Catch::Contains("does not use"));
  CHECK_FALSE(fs::exists(dir.path / "g.png"));
  // Through quantize too: the .qgan keeps it, and sample still refuses.
  const fs::path quantized = dir.path / "extra.qgan";
  REQUIRE(run_cli({"quantize", model.string(), "-o", quantized.string(), "--method", "em", "--bits", "2"}).code == 0);
  CHECK_THAT(run_cli({"sample", quantized.string(), "--arch", "dcgan", "-o", (dir.path / "g.png").string()}).err,
             Catch::Contains("'deconv5.weight'"));
}

TEST_CASE("LATENT_WIDTH_MISMATCH: eval says the widths differ", "[cli][model]") {
  const qgan::test::temp_dir dir("qgan_cli_files_");
  auto tensors = shipped_generator();
  tensor_copy& first = find(tensors, "deconv1.weight");
  // The first 64 of nz = 100 input rows: a generator for 64-wide latents.
  first.bytes.resize(first.bytes.size() / 100 * 64);
  first.shape[0] = 64;
  const fs::path model = dir.path / "nz64.safetensors";
  write_model(model, tensors);
  const auto r = run_cli({"eval", model.string(), "--arch", "dcgan", "--samples", "4", "--bootstrap", "0"});
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Catch::Contains("nz = 64") && Catch::Contains("takes 100"));
}

TEST_CASE("OVERFLOWING_WEIGHTS: NaN outputs are refused, never clamped to pixels", "[cli][model]") {
  const qgan::test::temp_dir dir("qgan_cli_files_");
  auto tensors = shipped_generator();
  for (const char* name : {"deconv1.weight", "deconv2.weight", "deconv3.weight", "deconv4.weight"}) {
    tensor_copy& weight = find(tensors, name);
    std::vector<float> values = floats_of(weight);
    for (float& value : values) value = std::copysign(3e38f, value);
    weight = f32_tensor(weight.name, weight.shape, values);
  }
  const fs::path model = dir.path / "huge.safetensors";
  write_model(model, tensors);
  const auto r = run_cli({"sample", model.string(), "--arch", "dcgan", "-n", "2", "-o", (dir.path / "g.png").string(),
                          "--raw", (dir.path / "g.f32").string()});
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Catch::Contains("not finite") || Catch::Contains("NaN") || Catch::Contains("infinite"));
  CHECK(dir.names() == std::vector<std::string>{"huge.safetensors"});
}

TEST_CASE("BAD_RUNNING_VAR: named with file and tensor, by quantize and sample alike", "[cli][model]") {
  const qgan::test::temp_dir dir("qgan_cli_files_");
  for (const float bad : {-1.0f, std::nanf("")}) {
    auto tensors = shipped_generator();
    tensor_copy& variance = find(tensors, "bn2.running_var");
    std::vector<float> values = floats_of(variance);
    values[3] = bad;
    variance = f32_tensor(variance.name, variance.shape, values);
    const fs::path model = dir.path / "bad_var.safetensors";
    write_model(model, tensors);
    INFO("running_var[3] = " << bad);
    const auto sampled = run_cli({"sample", model.string(), "--arch", "dcgan", "-o", (dir.path / "g.png").string()});
    CHECK(sampled.code == 1);
    CHECK_THAT(sampled.err, Catch::Contains("bad_var.safetensors") && Catch::Contains("bn2.running_var"));
    if (std::isnan(bad)) {
      const auto quantized = run_cli({"quantize", model.string(), "-o", (dir.path / "q.qgan").string(), "--method",
                                      "em", "--bits", "2"});
      CHECK(quantized.code == 1);
      CHECK_THAT(quantized.err, Catch::Contains("bn2.running_var") && Catch::Contains("NaN"));
    }
  }
}

TEST_CASE("BITS_FOR_COVERS_ALL: summary and metadata give the widths used", "[cli]") {
  const qgan::test::temp_dir dir("qgan_cli_files_");
  const fs::path out = dir.path / "m.qgan";
  const auto r = run_cli({"quantize", generator_path, "-o", out.string(), "--method", "em", "--bits", "2", "--bits-for",
                          "deconv*=4"});
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("em, 4 bits"));
  CHECK(io::read_qgan(out).metadata.at("qgan.bits") == "4");
  CHECK_THAT(r.out, Catch::Contains("x smaller than generator.safetensors"));
}

TEST_CASE("OUTPUT_LARGER_THAN_INPUT: said as larger, not 0.24x smaller", "[cli]") {
  const qgan::test::temp_dir dir("qgan_cli_files_");
  const fs::path in = dir.path / "tiny.safetensors";
  write_model(in, {f32_tensor("w", {2, 2}, {0.1f, -0.2f, 0.3f, 0.4f})});
  const auto r = run_cli({"quantize", in.string(), "-o", (dir.path / "t.qgan").string(), "--method", "minmax",
                          "--bits", "2"});
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("x larger than tiny.safetensors"));
}

TEST_CASE("EMPTY_AXIS_TENSOR: refused before any params are written", "[cli][model]") {
  const qgan::test::temp_dir dir("qgan_cli_files_");
  const fs::path in = dir.path / "empty.safetensors";
  write_model(in, {f32_tensor("w", {0, 1000000}, {})});
  const fs::path out = dir.path / "e.qgan";
  const auto r = run_cli({"quantize", in.string(), "-o", out.string(), "--method", "lloyd", "--bits", "8",
                          "--per-channel", "--axis", "w=1"});
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Catch::Contains("tensor 'w'") && Catch::Contains("empty axis"));
  CHECK_FALSE(fs::exists(out));
  // Kept in float it costs nothing and is allowed.
  CHECK(run_cli({"quantize", in.string(), "-o", out.string(), "--method", "lloyd", "--bits", "8", "--keep", "w"}).code ==
        0);
}

TEST_CASE("SHADOWED_AXIS_RULE: reported as shadowed, not as matching nothing", "[cli]") {
  const qgan::test::temp_dir dir("qgan_cli_files_");
  const auto r = run_cli({"quantize", generator_path, "-o", (dir.path / "m.qgan").string(), "--method", "em", "--bits",
                          "2", "--per-channel", "--axis", "deconv*=1", "--axis", "deconv1.*=0"});
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Catch::Contains("'deconv1.*' is shadowed") && Catch::Contains("'deconv*'"));
}

TEST_CASE("NON_REGULAR_INPUTS: directories and FIFOs are named, never waited on", "[cli][file_safety]") {
  const qgan::test::temp_dir dir("qgan_cli_files_");
  const fs::path fifo = dir.path / "pipe";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  for (const fs::path& input : {dir.path, fifo}) {
    INFO(input);
    for (const auto& r : {run_cli({"info", input.string()}),
                          run_cli({"sample", input.string(), "--arch", "dcgan", "-o", (dir.path / "g.png").string()}),
                          run_cli({"quantize", input.string(), "-o", (dir.path / "m.qgan").string(), "--method", "em",
                                   "--bits", "2"})}) {
      CHECK(r.code == 1);
      CHECK_THAT(r.err, Catch::Contains("is a directory") || Catch::Contains("is a FIFO"));
      CHECK(r.out.empty());
    }
  }
  CHECK_THAT(run_cli({"quantize", generator_path, "-o", "", "--method", "em", "--bits", "2"}).err,
             Catch::Contains("output path is empty"));
}

TEST_CASE("INFO_CONTROL_CHARACTERS: names and metadata are escaped, errors print no table", "[cli]") {
  const qgan::test::temp_dir dir("qgan_cli_files_");
  const fs::path in = dir.path / "esc.safetensors";
  const std::vector<float> values{1.0f};
  const std::vector<io::safetensors_tensor> tensors{io::make_f32_tensor("bad\x1b[2Jname", {1}, values)};
  io::write_safetensors(in, tensors, {{"note", "clear\x1b[2J\x07"}});
  const auto r = run_cli({"info", in.string()});
  REQUIRE(r.code == 0);
  CHECK(r.out.find('\x1b') == std::string::npos);
  CHECK(r.out.find('\x07') == std::string::npos);
  CHECK_THAT(r.out, Catch::Contains("bad\\x1b[2Jname") && Catch::Contains("clear\\x1b[2J\\x07"));

  const fs::path broken = dir.path / "broken.safetensors";
  std::ofstream(broken, std::ios::binary) << "not a model at all";
  const auto failed = run_cli({"info", broken.string()});
  CHECK(failed.code == 1);
  CHECK(failed.out.empty());
}

TEST_CASE("DAMAGED_QGAN_MAGIC: reported as a damaged .qgan, not a safetensors header", "[cli]") {
  const quantized_model m;
  auto bytes = bytes_of(m.model);
  bytes[0] = std::byte{0x00};
  const fs::path damaged = m.dir.path / "damaged.qgan";
  std::ofstream(damaged, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()),
                                                  static_cast<std::streamsize>(bytes.size()));
  for (const auto& r : {run_cli({"info", damaged.string()}),
                        run_cli({"sample", damaged.string(), "--arch", "dcgan", "-o", (m.dir.path / "g.png").string()})}) {
    CHECK(r.code == 1);
    CHECK_THAT(r.err, Catch::Contains("damaged.qgan") && Catch::Contains("magic"));
    CHECK_THAT(r.err, !Catch::Contains("safetensors"));
  }
}

TEST_CASE("EMPTY_TENSOR_NAME: refused when planned, before any output", "[cli]") {
  const qgan::test::temp_dir dir("qgan_cli_files_");
  const fs::path in = dir.path / "unnamed.safetensors";
  write_model(in, {f32_tensor("", {2, 2}, {0.1f, -0.2f, 0.3f, 0.4f})});
  const fs::path out = dir.path / "u.qgan";
  const auto r = run_cli({"quantize", in.string(), "-o", out.string(), "--method", "em", "--bits", "2"});
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Catch::Contains("unnamed.safetensors") && Catch::Contains("empty name"));
  CHECK(dir.names() == std::vector<std::string>{"unnamed.safetensors"});
}

TEST_CASE("ONE_TENSOR_PREFIX: a message names its tensor once", "[cli]") {
  const qgan::test::temp_dir dir("qgan_cli_files_");
  const auto write_raw = [&](const std::string& name, const std::string& header, std::size_t data_bytes) {
    const fs::path path = dir.path / name;
    std::ofstream out(path, std::ios::binary);
    const std::uint64_t size = header.size();
    out.write(reinterpret_cast<const char*>(&size), 8);
    out << header << std::string(data_bytes, '\0');
    return path;
  };
  const std::vector<fs::path> files{
      write_raw("overflow.safetensors", R"({"x":{"dtype":"F32","shape":[0,9223372036854775807,9223372036854775807],"data_offsets":[0,0]}})", 0),
      write_raw("short.safetensors", R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", 4),
      write_raw("nan.safetensors", R"({"x":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}})", 0),
  };
  {
    // The last file's data: a NaN among the weights.
    std::ofstream out(files.back(), std::ios::binary | std::ios::app);
    const float values[4] = {1.0f, std::nanf(""), 2.0f, 3.0f};
    out.write(reinterpret_cast<const char*>(values), sizeof values);
  }
  for (const fs::path& file : files) {
    std::vector<qgan::test::cli_result> results{run_cli({"quantize", file.string(), "-o", (dir.path / "o.qgan").string(),
                                                         "--method", "em", "--bits", "2", "--per-channel", "--axis", "x=0"})};
    if (file != files.back()) results.push_back(run_cli({"info", file.string()}));  // info reads NaN fine
    for (const auto& r : results) {
      INFO(r.err);
      CHECK(r.code != 0);
      const auto first = r.err.find("tensor 'x");
      REQUIRE(first != std::string::npos);
      CHECK(r.err.find("tensor 'x", first + 1) == std::string::npos);
    }
  }
}
