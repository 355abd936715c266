// The library's whole-model API (qgan/model/): streaming quantize_file against the
// in-memory quantize_model + write_qgan, thread counts, rules checked before a byte is
// written, and the input never overwritten.
#include <catch2/catch.hpp>

#include <filesystem>
#include <thread>
#include <string>
#include <vector>

#include "qgan/io/qgan_file.hpp"
#include "qgan/io/safetensors.hpp"
#include "qgan/model/quantize_file.hpp"
#include "test_files.hpp"
#include "weights.hpp"

namespace {

// A small state dict: a ConvTranspose2d-like weight, a Linear weight, a bias, an integer
// counter, and an F32 weight long enough (> 2 reduction chunks) to split across threads.
std::filesystem::path write_state_dict(const std::filesystem::path& dir) {
  static const auto deconv = qgan::test::make_weights(qgan::test::family::gaussian, 8 * 6 * 4 * 4, 1);
  static const auto linear = qgan::test::make_weights(qgan::test::family::laplacian, 10 * 7, 2);
  static const auto big = qgan::test::make_weights(qgan::test::family::gaussian, 3 * 70000, 3);
  static const auto bias = qgan::test::make_weights(qgan::test::family::gaussian, 6, 4);
  static const std::vector<std::int64_t> counter{42};
  std::vector<qgan::io::safetensors_tensor> tensors{
      qgan::io::make_f32_tensor("deconv1.weight", {8, 6, 4, 4}, deconv),
      qgan::io::make_f32_tensor("fc.weight", {10, 7}, linear),
      qgan::io::make_f32_tensor("conv_big.weight", {3, 70000}, big),
      qgan::io::make_f32_tensor("deconv1.bias", {6}, bias),
      {"bn.num_batches_tracked", qgan::io::dtype::i64, {}, std::as_bytes(std::span(counter))}};
  const auto path = dir / "model.safetensors";
  qgan::io::write_safetensors(path, tensors, {{"fid", "15.3"}});
  return path;
}

std::vector<std::byte> file_bytes(const std::filesystem::path& path) { return qgan::test::read_bytes(path); }

}  // namespace

TEST_CASE("quantize_file streams the bytes quantize_model and write_qgan would write", "[model]") {
  const qgan::test::temp_dir dir("qgan_model");
  const auto input = write_state_dict(dir.path);
  for (const bool per_channel : {false, true}) {
    for (const std::string method : {"em", "em+", "minmax", "lloyd", "log", "tanh"}) {
      qgan::model::quantize_rules rules{.method = method, .bits = 3, .per_channel = per_channel, .arch = "dcgan"};
      INFO(method << (per_channel ? " per channel" : " per tensor"));
      const auto file = qgan::io::safetensors_file::open(input);
      qgan::io::write_qgan(dir.path / "memory.qgan", qgan::model::quantize_model(file, rules, "model.safetensors"));
      std::vector<std::string> seen;
      qgan::model::quantize_file(input, dir.path / "streamed.qgan", rules,
                                 [&](const qgan::model::progress_event& event) {
                                   CHECK(event.done == seen.size() + 1);
                                   CHECK(event.total == 5);
                                   seen.emplace_back(event.tensor);
                                 });
      CHECK(seen.size() == 5);
      CHECK(file_bytes(dir.path / "streamed.qgan") == file_bytes(dir.path / "memory.qgan"));
      for (const int threads : {2, 3}) {
        rules.threads = threads;
        qgan::model::quantize_file(input, dir.path / "threads.qgan", rules);
        CHECK(file_bytes(dir.path / "threads.qgan") == file_bytes(dir.path / "memory.qgan"));
      }
    }
  }
}

TEST_CASE("quantize_file keeps what it does not quantize and records the rules", "[model]") {
  const qgan::test::temp_dir dir("qgan_model");
  const auto input = write_state_dict(dir.path);
  qgan::model::quantize_rules rules{.method = "em", .bits = 2, .per_channel = true, .arch = "dcgan"};
  rules.keep = {"fc.*"};
  rules.bits_for = {{"conv_big.*", 4}};
  qgan::model::quantize_file(input, dir.path / "out.qgan", rules);
  const auto model = qgan::io::read_qgan(dir.path / "out.qgan");
  CHECK(model.packed("deconv1.weight").bits == 2);
  CHECK(std::get<qgan::per_channel>(model.packed("deconv1.weight").grain).axis == 1);
  CHECK(model.packed("conv_big.weight").bits == 4);
  CHECK(model.floats("fc.weight").values.size() == 70);
  CHECK(model.floats("deconv1.bias").values.size() == 6);
  CHECK(model.raw("bn.num_batches_tracked").bytes.size() == 8);
  CHECK(model.metadata.at("source.fid") == "15.3");
  CHECK(model.metadata.at("qgan.keep") == "fc.*");
  CHECK(model.metadata.at("qgan.source") == "model.safetensors");
}

TEST_CASE("quantize_file checks every rule before it writes and never replaces its input", "[model]") {
  const qgan::test::temp_dir dir("qgan_model");
  const auto input = write_state_dict(dir.path);
  const auto output = dir.path / "out.qgan";
  qgan::model::quantize_rules rules{.method = "em", .bits = 2};
  rules.keep = {"no_such_tensor*"};
  CHECK_THROWS_WITH(qgan::model::quantize_file(input, output, rules),
                    Catch::Contains("keep pattern 'no_such_tensor*' matches no tensor"));
  CHECK_FALSE(std::filesystem::exists(output));
  rules.keep.clear();
  rules.per_channel = true;  // a 4-D weight with no arch preset or axis rule
  CHECK_THROWS_WITH(qgan::model::quantize_file(input, output, rules),
                    Catch::Contains("deconv1.weight") && Catch::Contains("output-channel axis"));
  CHECK_FALSE(std::filesystem::exists(output));
  rules = {.method = "log", .bits = 1};
  CHECK_THROWS_WITH(qgan::model::quantize_file(input, output, rules), Catch::Contains("at least 2 bits"));
  rules = {.method = "em", .bits = 2};
  const auto before = file_bytes(input);
  CHECK_THROWS_WITH(qgan::model::quantize_file(input, dir.path / "." / "model.safetensors", rules),
                    Catch::Contains("is the same file as input"));
  CHECK(file_bytes(input) == before);
  rules = {.method = "em9", .bits = 2};
  CHECK_THROWS_WITH(qgan::model::quantize_file(input, output, rules), Catch::Contains("unknown method 'em9'"));
}

TEST_CASE("INPUT_TRUNCATED_DURING_QUANTIZE: a clear error naming the file, no output", "[model][file_safety]") {
  const qgan::test::temp_dir dir("qgan_model_");
  const auto input = write_state_dict(dir.path);
  const auto output = dir.path / "out.qgan";
  const qgan::model::quantize_rules rules{.method = "em", .bits = 2};
  // After the first tensor the file loses its tail, as when another program rewrites it
  // in place; a memory mapping would end the process with SIGBUS on the next tensor.
  const auto truncate_after_first = [&](const qgan::model::progress_event& event) {
    if (event.done == 1) std::filesystem::resize_file(input, 200);
  };
  CHECK_THROWS_WITH(qgan::model::quantize_file(input, output, rules, truncate_after_first),
                    Catch::Contains("model.safetensors") && Catch::Contains("the file ended"));
  CHECK_FALSE(std::filesystem::exists(output));
  CHECK(dir.names() == std::vector<std::string>{"model.safetensors"});
}

TEST_CASE("CONCURRENT_WRITERS: each run reports the size of its own file, one complete file stays", "[model][file_safety]") {
  const qgan::test::temp_dir dir("qgan_model_");
  const auto input = write_state_dict(dir.path);
  const auto output = dir.path / "out.qgan";
  const qgan::model::quantize_rules small{.method = "em", .bits = 1};
  const qgan::model::quantize_rules large{.method = "minmax", .bits = 8, .per_channel = true, .arch = "dcgan"};
  const std::uint64_t small_size = qgan::model::quantize_file(input, dir.path / "small.qgan", small);
  const std::uint64_t large_size = qgan::model::quantize_file(input, dir.path / "large.qgan", large);
  REQUIRE(small_size != large_size);
  for (int round = 0; round < 5; ++round) {
    std::uint64_t reported_small = 0, reported_large = 0;
    std::thread other([&] { reported_large = qgan::model::quantize_file(input, output, large); });
    reported_small = qgan::model::quantize_file(input, output, small);
    other.join();
    CHECK(reported_small == small_size);
    CHECK(reported_large == large_size);
    const auto size = std::filesystem::file_size(output);
    CHECK((size == small_size || size == large_size));
    CHECK_NOTHROW(qgan::io::read_qgan(output));
  }
  CHECK(dir.names() == (std::vector<std::string>{"large.qgan", "model.safetensors", "out.qgan", "small.qgan"}));
}
