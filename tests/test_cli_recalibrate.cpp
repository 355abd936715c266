// qgan quantize --recalibrate: the tool runs the library's data-free recalibration on the
// shipped generator, records it in the model, and refuses what it cannot do.
#include <catch2/catch.hpp>

#include <string>

#include "cli.hpp"
#include "cli_runner.hpp"
#include "qgan/io/qgan_reader.hpp"
#include "test_files.hpp"

using Catch::Matchers::Contains;
using qgan::test::cli_result;
using qgan::test::generator_path;
using qgan::test::run_cli;

TEST_CASE("qgan quantize --recalibrate writes a recalibrated model that info shows and eval runs", "[cli][calib]") {
  const qgan::test::temp_dir dir("qgan_cli_recal_");
  const auto plain_path = dir.path / "plain.qgan";
  const auto path = dir.path / "recalibrated.qgan";
  const std::vector<std::string> common{"--method", "em", "--bits", "2", "--per-channel", "--arch", "dcgan", "--threads", "2"};
  std::vector<std::string> plain_args{"quantize", generator_path, "-o", plain_path.string()};
  plain_args.insert(plain_args.end(), common.begin(), common.end());
  REQUIRE(run_cli(plain_args).code == 0);
  std::vector<std::string> args{"quantize", generator_path, "-o", path.string()};
  args.insert(args.end(), common.begin(), common.end());
  for (const char* word : {"--recalibrate", "bn,bias,rounding", "--calib-samples", "48", "--calib-seed", "7"}) args.push_back(word);
  const cli_result r = run_cli(args);
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Contains("recalibrated (bn,bias,rounding) on 48 latents (seed 7)") && Contains("deconv4:") &&
                        Contains("phases re-rounded") && Contains("BatchNorm statistics recalibrated"));

  const qgan::io::qgan_model plain = qgan::io::read_qgan(plain_path);
  const qgan::io::qgan_model model = qgan::io::read_qgan(path);
  CHECK(model.metadata.at("qgan.recalibration") == "bn,bias,rounding");
  CHECK(model.metadata.at("qgan.calib_samples") == "48");
  CHECK(model.metadata.at("qgan.calib_seed") == "7");
  // The last layer has no BatchNorm and no bias: correction creates one.
  CHECK(plain.find("deconv4.bias") == nullptr);
  REQUIRE(model.find("deconv4.bias") != nullptr);
  CHECK(model.floats("deconv4.bias").shape == qgan::shape_t{1});
  CHECK(model.floats("bn2.running_var").values != plain.floats("bn2.running_var").values);
  // Same grid, other codes.
  CHECK(model.packed("deconv2.weight").params == plain.packed("deconv2.weight").params);
  CHECK(model.packed("deconv2.weight").codes != plain.packed("deconv2.weight").codes);

  const cli_result info = run_cli({"info", path.string()});
  REQUIRE(info.code == 0);
  CHECK_THAT(info.out, Contains("qgan.recalibration") && Contains("bn,bias,rounding") && Contains("deconv4.bias"));
  const cli_result eval = run_cli({"eval", path.string(), "--arch", "dcgan", "--samples", "64", "--bootstrap", "2"});
  INFO(eval.err);
  CHECK(eval.code == 0);
  CHECK_THAT(eval.out, Contains("FID-FMNIST"));
}

TEST_CASE("qgan quantize refuses recalibration options it cannot honour", "[cli][calib]") {
  const qgan::test::temp_dir dir("qgan_cli_recal_");
  const std::string out = (dir.path / "m.qgan").string();
  const auto usage = [&](std::vector<std::string> extra, const std::string& message) {
    std::vector<std::string> args{"quantize", generator_path, "-o", out, "--method", "em", "--bits", "2", "--per-channel"};
    args.insert(args.end(), extra.begin(), extra.end());
    const cli_result r = run_cli(args);
    INFO(r.err);
    CHECK(r.code == 2);
    CHECK_THAT(r.err, Contains(message));
  };
  usage({"--recalibrate", "bn"}, "--recalibrate needs --arch");
  usage({"--arch", "dcgan", "--recalibrate", "bn,magic"}, "unknown recalibration step 'magic'");
  usage({"--arch", "dcgan", "--recalibrate", "bn,bn-match"}, "exclude each other");
  usage({"--arch", "dcgan", "--calib-samples", "64"}, "--calib-samples needs --recalibrate");
  usage({"--arch", "dcgan", "--recalibrate", "bn", "--rounding-inputs", "fp32"}, "--rounding-inputs needs the rounding step");
  usage({"--arch", "dcgan", "--recalibrate", "rounding", "--rounding-inputs", "all"}, "--rounding-inputs 'all' is unknown");
  usage({"--arch", "dcgan", "--recalibrate", "bias", "--bias-target", "x"}, "--bias-target 'x' is unknown");
  usage({"--arch", "dcgan", "--recalibrate", "bn", "--calib-samples", "1"}, "--calib-samples");
  CHECK_FALSE(std::filesystem::exists(out));
}

TEST_CASE("qgan quantize --recalibrate ...,act8 stores 8-bit activation ranges from the same latents", "[cli][calib]") {
  const qgan::test::temp_dir dir("qgan_cli_recal_");
  const auto path = dir.path / "w2a8.qgan";
  const cli_result r = run_cli({"quantize", generator_path, "-o", path.string(), "--method", "em", "--bits", "2",
                                "--per-channel", "--arch", "dcgan", "--recalibrate", "act8,bn", "--calib-samples", "32"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  const qgan::io::qgan_model model = qgan::io::read_qgan(path);
  CHECK(model.metadata.at("qgan.recalibration") == "bn,act8");
  CHECK_THAT(model.metadata.at("qgan.activation_calibration"), Contains("32 generator runs, latent seed 3141592653"));
  CHECK(model.find("deconv1.input_scale") != nullptr);
  const cli_result sample = run_cli({"sample", path.string(), "--arch", "dcgan", "--act", "int8", "-n", "4", "-o",
                                     (dir.path / "grid.png").string()});
  INFO(sample.err);
  CHECK(sample.code == 0);
  // A codebook cannot run with 8-bit activations: refused, naming the layer, nothing written.
  const auto lloyd = dir.path / "lloyd.qgan";
  const cli_result refused = run_cli({"quantize", generator_path, "-o", lloyd.string(), "--method", "lloyd", "--bits", "2",
                                      "--per-channel", "--arch", "dcgan", "--recalibrate", "act8", "--calib-samples", "8"});
  CHECK(refused.code == 1);
  CHECK_THAT(refused.err, Contains("deconv"));
  CHECK_FALSE(std::filesystem::exists(lloyd));
}
