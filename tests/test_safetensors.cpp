// The safetensors reader and writer: files written by others (a third-party sample set and
// PyTorch), every rule of the format broken once by a named corrupt file, exact F16/BF16
// widening, bit-exact write/read round trips with atomic replacement, and every truncation
// and header bit flip of real files ending in qgan::error or a clean parse.
#include <catch2/catch.hpp>


#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>


#include <nlohmann/json.hpp>

#include "qgan/io/safetensors.hpp"
#include "test_files.hpp"

namespace {

namespace io = qgan::io;
namespace fs = std::filesystem;
using bytes_t = std::vector<std::byte>;
using namespace std::string_literals;

fs::path data_dir() { return fs::path(QGAN_TEST_DATA_DIR) / "safetensors"; }

using qgan::test::read_bytes;

// An in-memory file: the 8-byte length (the header's own unless declared says otherwise),
// the header text, then data_bytes bytes of data.
bytes_t file_with(std::string_view header, std::size_t data_bytes,
                  std::optional<std::uint64_t> declared = std::nullopt) {
  const std::uint64_t length = declared.value_or(header.size());
  bytes_t out;
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<std::byte>((length >> (8 * i)) & 0xffu));
  for (const char c : header) out.push_back(static_cast<std::byte>(c));
  for (std::size_t i = 0; i < data_bytes; ++i) out.push_back(static_cast<std::byte>(i & 0xffu));
  return out;
}

// "name":{"dtype":...,"shape":...,"data_offsets":...}
std::string entry(std::string_view name, std::string_view type, std::string_view shape,
                  std::string_view offsets) {
  std::string text = "\"";
  text.append(name).append("\":{\"dtype\":\"").append(type).append("\",\"shape\":");
  text.append(shape).append(",\"data_offsets\":").append(offsets).append("}");
  return text;
}

std::string repeat(std::string_view text, std::size_t times) {
  std::string out;
  for (std::size_t i = 0; i < times; ++i) out.append(text);
  return out;
}

io::safetensors_file parse(const bytes_t& bytes) {
  return io::safetensors_file::parse(bytes, "corrupt.safetensors");
}

std::string error_of(const bytes_t& bytes) {
  try {
    (void)parse(bytes);
  } catch (const qgan::error& e) {
    return e.what();
  }
  return "(parsed without error)";
}

template <class T>
std::vector<T> decode(std::span<const std::byte> bytes) {
  std::vector<T> out(bytes.size() / sizeof(T));
  if (!out.empty()) std::memcpy(out.data(), bytes.data(), out.size() * sizeof(T));
  return out;
}

std::vector<std::uint32_t> float_bits(const std::vector<float>& values) {
  std::vector<std::uint32_t> bits;
  for (const float v : values) bits.push_back(std::bit_cast<std::uint32_t>(v));
  return bits;
}

// A fresh directory for this file's tests (tests/test_files.hpp).
struct temp_dir : qgan::test::temp_dir {
  temp_dir() : qgan::test::temp_dir("qgan_safetensors_test_") {}
};

// Parses and reads every tensor (as float where it can be). True if the bytes parsed;
// false on qgan::error; anything else escapes and fails the test.
bool exercise(const bytes_t& bytes) {
  try {
    const auto file = parse(bytes);
    for (const auto& tensor : file.tensors()) {
      if (io::is_float_readable(tensor.type)) {
        const auto values = file.read_float(tensor);
        CHECK(values.size() * io::dtype_bits(tensor.type) / 8 == tensor.bytes.size());
      }
      CHECK(io::tensor_byte_size(tensor.type, tensor.shape) == tensor.bytes.size());
    }
    return true;
  } catch (const qgan::error&) {
    return false;
  }
}

}  // namespace

TEST_CASE("dtype table: every dtype of the format, with its bit width", "[safetensors]") {
  const std::vector<std::pair<std::string, std::size_t>> expected{
      {"BOOL", 8},     {"F4", 4},          {"F6_E2M3", 6},     {"F6_E3M2", 6}, {"U8", 8},
      {"I8", 8},       {"F8_E5M2", 8},     {"F8_E4M3", 8},     {"F8_E8M0", 8}, {"F8_E4M3FNUZ", 8},
      {"F8_E5M2FNUZ", 8}, {"I16", 16},     {"U16", 16},        {"F16", 16},    {"BF16", 16},
      {"I32", 32},     {"U32", 32},        {"F32", 32},        {"C64", 64},    {"F64", 64},
      {"I64", 64},     {"U64", 64}};
  for (const auto& [name, bits] : expected) {
    INFO(name);
    const auto type = io::dtype_from_name(name);
    REQUIRE(type.has_value());
    CHECK(io::dtype_name(*type) == name);
    CHECK(io::dtype_bits(*type) == bits);
  }
  CHECK_FALSE(io::dtype_from_name("f32").has_value());
  CHECK_FALSE(io::dtype_from_name("Q4_0").has_value());
  CHECK_FALSE(io::dtype_from_name("").has_value());
  CHECK(io::is_float_readable(io::dtype::f32));
  CHECK(io::is_float_readable(io::dtype::f16));
  CHECK(io::is_float_readable(io::dtype::bf16));
  CHECK(io::is_float_readable(io::dtype::f64));
  CHECK_FALSE(io::is_float_readable(io::dtype::i64));
  CHECK_FALSE(io::is_float_readable(io::dtype::f8_e4m3));

  // Sub-byte elements are packed; the total must end on a byte boundary.
  CHECK(io::tensor_byte_size(io::dtype::f4, {2, 3}) == 3);
  CHECK(io::tensor_byte_size(io::dtype::f6_e2m3, {4}) == 3);
  CHECK(io::tensor_byte_size(io::dtype::c64, {2}) == 16);
  CHECK(io::tensor_byte_size(io::dtype::i64, {}) == 8);  // rank 0 holds one element
  CHECK(io::tensor_byte_size(io::dtype::f32, {0, 5}) == 0);
  CHECK_THROWS_WITH(io::tensor_byte_size(io::dtype::f4, {3}, "w"),
                    Catch::Contains("tensor 'w'") && Catch::Contains("12 bits"));
  CHECK_THROWS_WITH(io::tensor_byte_size(io::dtype::f6_e3m2, {5}), Catch::Contains("30 bits"));
  CHECK_THROWS_WITH(io::tensor_byte_size(io::dtype::f64, {std::int64_t{1} << 61}),
                    Catch::Contains("more bits"));
  const auto stray = static_cast<io::dtype>(200);
  CHECK(io::dtype_name(stray) == "invalid");
  CHECK(io::dtype_bits(stray) == 0);
  CHECK_THROWS_WITH(io::tensor_byte_size(stray, {1}), Catch::Contains("200"));
}

TEST_CASE("F16 widens exactly for all 65536 inputs", "[safetensors]") {
  for (std::uint32_t bits = 0; bits < 0x10000u; ++bits) {
    const auto half = static_cast<std::uint16_t>(bits);
    const float value = io::f16_to_float(half);
    const bool negative = (bits & 0x8000u) != 0;
    const int exponent = static_cast<int>((bits >> 10) & 0x1fu);
    const int mantissa = static_cast<int>(bits & 0x3ffu);
    INFO("half bits " << bits);
    REQUIRE(std::signbit(value) == negative);
    if (exponent == 0x1f) {
      if (mantissa == 0) {
        REQUIRE(std::isinf(value));
      } else {
        REQUIRE(std::isnan(value));
        // The payload moves to the top of float's mantissa.
        REQUIRE((std::bit_cast<std::uint32_t>(value) & 0x7fffffu) ==
                static_cast<std::uint32_t>(mantissa) << 13);
      }
      continue;
    }
    // An independent definition: subnormals are m * 2^-24, normals (1024 + m) * 2^(e-25).
    const double magnitude = exponent == 0 ? std::ldexp(mantissa, -24)
                                           : std::ldexp(1024 + mantissa, exponent - 25);
    REQUIRE(static_cast<double>(value) == (negative ? -magnitude : magnitude));
  }
}

TEST_CASE("BF16 widens to the top half of a float", "[safetensors]") {
  CHECK(io::bf16_to_float(0x3f80) == 1.0f);
  CHECK(io::bf16_to_float(0xc040) == -3.0f);
  CHECK(io::bf16_to_float(0x0001) == std::ldexp(1.0f, -133));  // smallest subnormal
  CHECK(io::bf16_to_float(0x7f80) == std::numeric_limits<float>::infinity());
  CHECK(io::bf16_to_float(0xff80) == -std::numeric_limits<float>::infinity());
  CHECK(std::bit_cast<std::uint32_t>(io::bf16_to_float(0x7fc1)) == 0x7fc10000u);
  CHECK(std::bit_cast<std::uint32_t>(io::bf16_to_float(0x8000)) == 0x80000000u);
  static_assert(io::bf16_to_float(0x4000) == 2.0f && io::f16_to_float(0x3c00) == 1.0f);
}

TEST_CASE("third-party sample files read back as their README says", "[safetensors]") {
  const std::vector<double> expected_float{-3, -2, -1, 0, 1, 2};
  const auto check_tensor = [&](const io::safetensors_file& file, const std::string& name) {
    INFO(file.source() << " tensor " << name);
    const auto& tensor = file.at(name);
    CHECK(tensor.name == name);
    CHECK(tensor.shape == qgan::shape_t{6});
    const std::string type{io::dtype_name(tensor.type)};
    const std::map<std::string, std::string> type_of{
        {"B", "U8"}, {"H", "U16"}, {"I", "U32"}, {"b", "I8"},  {"d", "F64"},
        {"e", "F16"}, {"f", "F32"}, {"h", "I16"}, {"i", "I32"}};
    CHECK(type == type_of.at(name));
    if (io::is_float_readable(tensor.type)) {
      const auto values = file.read_float(name);
      CHECK(std::vector<double>(values.begin(), values.end()) == expected_float);
    } else if (name == "B") {
      CHECK(decode<std::uint8_t>(tensor.bytes) ==
            std::vector<std::uint8_t>{253, 254, 255, 0, 1, 2});
    } else if (name == "H") {
      CHECK(decode<std::uint16_t>(tensor.bytes) ==
            std::vector<std::uint16_t>{65533, 65534, 65535, 0, 1, 2});
    } else if (name == "I") {
      CHECK(decode<std::uint32_t>(tensor.bytes) ==
            std::vector<std::uint32_t>{4294967293u, 4294967294u, 4294967295u, 0, 1, 2});
    } else if (name == "b") {
      CHECK(decode<std::int8_t>(tensor.bytes) == std::vector<std::int8_t>{-3, -2, -1, 0, 1, 2});
    } else if (name == "h") {
      CHECK(decode<std::int16_t>(tensor.bytes) == std::vector<std::int16_t>{-3, -2, -1, 0, 1, 2});
    } else {
      CHECK(decode<std::int32_t>(tensor.bytes) == std::vector<std::int32_t>{-3, -2, -1, 0, 1, 2});
    }
  };
  const io::safetensors_metadata test_a{{"test", "a"}};
  for (const std::string name : {"B", "H", "I", "b", "d", "e", "f", "h", "i"}) {
    const auto file = io::safetensors_file::open(data_dir() / (name + ".safetensors"));
    REQUIRE(file.tensors().size() == 1);
    CHECK(file.metadata() == test_a);
    check_tensor(file, name);
  }
  const auto overall = io::safetensors_file::open(data_dir() / "overall.safetensors");
  CHECK(overall.metadata() == test_a);
  std::vector<std::string> names;
  for (const auto& tensor : overall.tensors()) names.push_back(tensor.name);
  CHECK(names == std::vector<std::string>{"B", "H", "I", "b", "d", "e", "f", "h", "i"});
  for (const auto& name : names) check_tensor(overall, name);
}

TEST_CASE("a file PyTorch wrote reads back as PyTorch says", "[safetensors]") {
  std::ifstream expected_file(data_dir() / "torch_sample.expected.json");
  REQUIRE(expected_file.good());
  const auto expected = nlohmann::json::parse(expected_file);
  const auto file = io::safetensors_file::open(data_dir() / "torch_sample.safetensors");

  CHECK(file.tensors().size() == expected["tensors"].size());
  for (const auto& [key, value] : expected["metadata"].items()) {
    CHECK(file.metadata().at(key) == value.get<std::string>());
  }
  for (const auto& [name, record] : expected["tensors"].items()) {
    INFO("tensor " << name);
    const auto& tensor = file.at(name);
    CHECK(io::dtype_name(tensor.type) == record["dtype"].get<std::string>());
    CHECK(tensor.shape == record["shape"].get<qgan::shape_t>());
    if (record.contains("int64")) {
      CHECK(decode<std::int64_t>(tensor.bytes) == record["int64"].get<std::vector<std::int64_t>>());
    } else {
      CHECK(float_bits(file.read_float(tensor)) ==
            record["float32_bits"].get<std::vector<std::uint32_t>>());
    }
  }

  // BatchNorm's step counter: a rank-0 I64, exposed as raw bytes.
  const auto& counter = file.at("bn.num_batches_tracked");
  CHECK(counter.type == io::dtype::i64);
  CHECK(counter.shape.empty());
  CHECK(decode<std::int64_t>(counter.bytes) == std::vector<std::int64_t>{3});
  CHECK(file.read_float("conv.weight").size() == 4 * 3 * 3 * 3);
  const auto f64 = file.read_float("odd.f64");
  CHECK(f64[2] == std::numeric_limits<float>::infinity());  // 1e300 is beyond float
  CHECK(f64[5] == 1.0f);                                    // 1 + 2^-24: tie to even
  CHECK(f64[6] == 1.0f + std::ldexp(1.0f, -22));            // 1 + 3*2^-24: tie to even

  CHECK_THROWS_WITH(file.read_float("bn.num_batches_tracked"),
                    Catch::Contains("torch_sample.safetensors") &&
                        Catch::Contains("tensor 'bn.num_batches_tracked'") &&
                        Catch::Contains("dtype I64"));
  CHECK_THROWS_WITH(file.at("gen.0.weight"), Catch::Contains("torch_sample.safetensors") &&
                                                 Catch::Contains("tensor 'gen.0.weight'") &&
                                                 Catch::Contains("no such tensor"));
  CHECK(file.find("gen.0.weight") == nullptr);
  CHECK(file.find("conv.weight") == &file.at("conv.weight"));
}

TEST_CASE("valid edge cases parse", "[safetensors]") {
  SECTION("no tensors, no data, space padding") {
    CHECK(parse(file_with("{}", 0)).tensors().empty());
    CHECK(parse(file_with("{}      ", 0)).tensors().empty());
    CHECK(parse(file_with(R"({"__metadata__":{}})", 0)).metadata().empty());
  }
  SECTION("JSON whitespace inside the object, unaligned data, out-of-order entries") {
    const std::string header = "{\n  " + entry("b", "F32", "[1]", "[4, 8]") + ",\n\t" +
                               entry("a", "F32", "[]", "[0,4]") + "\r\n}   ";
    const auto bytes = file_with(header, 8);
    const auto file = parse(bytes);
    REQUIRE(file.tensors().size() == 2);
    CHECK(file.tensors()[0].name == "a");  // data-offset order
    CHECK(file.tensors()[1].name == "b");
    CHECK(file.tensors()[1].bytes.data() == bytes.data() + 8 + header.size() + 4);
  }
  SECTION("zero-size tensors share an offset; sub-byte and complex dtypes") {
    const std::string header = "{" + entry("empty1", "F32", "[0,3]", "[0,0]") + "," +
                               entry("empty2", "U8", "[0]", "[0,0]") + "," +
                               entry("fp4", "F4", "[2,3]", "[0,3]") + "," +
                               entry("fp6", "F6_E2M3", "[4]", "[3,6]") + "," +
                               entry("complex", "C64", "[2]", "[6,22]") + "," +
                               entry("", "BOOL", "[2]", "[22,24]") + "}";
    const auto file = parse(file_with(header, 24));
    CHECK(file.tensors().size() == 6);
    CHECK(file.at("fp4").bytes.size() == 3);
    CHECK(file.at("fp6").bytes.size() == 3);
    CHECK(file.at("").bytes.size() == 2);  // the format allows an empty name
    CHECK(file.read_float("empty1").empty());
  }
  SECTION("every dtype the format defines") {
    std::string header = "{";
    std::size_t offset = 0;
    for (const auto& info : io::safetensors_detail::dtype_table) {
      const std::size_t size = 8 * info.bits / 8;
      if (offset != 0) header += ",";
      header += entry(info.name, info.name, "[8]",
                      io::safetensors_detail::offsets_text(offset, offset + size));
      offset += size;
    }
    const auto file = parse(file_with(header + "}", offset));
    REQUIRE(file.tensors().size() == io::safetensors_detail::dtype_table.size());
    for (const auto& tensor : file.tensors()) {
      CHECK(io::dtype_name(tensor.type) == tensor.name);
      CHECK(tensor.bytes.size() == io::dtype_bits(tensor.type));
    }
  }
  SECTION("an empty axis beside extents whose product fits in int64") {
    // 3037000499^2 is just below 2^63: code that sizes the other axes does not overflow.
    const auto file = parse(
        file_with("{" + entry("e", "F32", "[0,3037000499,3037000499]", "[0,0]") + "}", 0));
    CHECK(file.at("e").shape == qgan::shape_t{0, 3037000499, 3037000499});
    CHECK(file.at("e").bytes.empty());
  }
  SECTION("-0 is zero") {
    const auto file = parse(file_with("{" + entry("a", "U8", "[-0]", "[-0,0]") + "}", 0));
    CHECK(file.at("a").shape == qgan::shape_t{0});
  }
}

TEST_CASE("every broken rule is a qgan::error naming file, tensor and field", "[safetensors]") {
  struct corrupt_file {
    const char* name;
    bytes_t bytes;
    std::vector<std::string> message_parts;
  };
  const std::string a8 = entry("a", "F32", "[2]", "[0,8]");
  const std::string u64_max = std::to_string(std::numeric_limits<std::uint64_t>::max());
  const std::vector<corrupt_file> cases{
      {"FILE_TOO_SHORT", bytes_t(5), {"5 bytes", "8-byte header length"}},
      {"HEADER_TOO_LARGE", file_with("{}", 0, 100'000'001), {"header length 100000001", "limit"}},
      {"HEADER_LENGTH_MAX", file_with("{}", 0, std::numeric_limits<std::uint64_t>::max()),
       {"header length " + u64_max, "limit"}},
      {"HEADER_PAST_EOF", file_with("{}", 0, 1000), {"header length 1000", "past the end"}},
      {"HEADER_ONE_PAST_EOF", file_with("{}", 0, 3), {"header length 3", "past the end"}},
      {"EMPTY_HEADER", file_with("", 0), {"JSON object"}},
      {"NOT_UTF8", file_with("{\"a\xff\":1}", 0), {"UTF-8", "byte 11"}},
      {"UTF8_OVERLONG", file_with("{\"\xc0\xaf\":1}", 0), {"UTF-8"}},
      {"UTF8_SURROGATE", file_with("{\"\xed\xa0\x80\":1}", 0), {"UTF-8"}},
      {"UTF8_TRUNCATED", file_with("{\"\xe2\x82", 0), {"UTF-8"}},
      {"ESCAPED_LONE_SURROGATE", file_with(R"({"\ud800":1})", 0), {"not valid JSON"}},
      {"NOT_AN_OBJECT", file_with("[1,2]", 0), {"JSON object"}},
      {"LEADING_SPACE", file_with(" {}", 0), {"JSON object"}},
      {"NOT_JSON", file_with(R"({"a" 1})", 0), {"not valid JSON"}},
      {"UNTERMINATED", file_with(R"({"a":{}     )", 0), {"not valid JSON"}},
      {"TWO_OBJECTS", file_with("{} {}", 0), {"not valid JSON"}},
      {"TRAILING_NEWLINE", file_with("{}\n", 0), {"space (0x20) padding"}},
      {"TRAILING_NUL", file_with("{}\0"s, 0), {"space (0x20) padding"}},
      {"COMMENT", file_with("{/*x*/}", 0), {"not valid JSON"}},
      {"ENTRY_NOT_OBJECT", file_with(R"({"w":5})", 0), {"tensor 'w'", "not an object"}},
      {"UNKNOWN_DTYPE", file_with("{" + entry("w", "Q4", "[2]", "[0,8]") + "}", 8),
       {"tensor 'w'", "field 'dtype'", "Q4"}},
      {"LOWERCASE_DTYPE", file_with("{" + entry("w", "f32", "[2]", "[0,8]") + "}", 8),
       {"tensor 'w'", "field 'dtype'", "f32"}},
      {"DTYPE_NOT_STRING",
       file_with(R"({"w":{"dtype":32,"shape":[2],"data_offsets":[0,8]}})", 8),
       {"tensor 'w'", "field 'dtype'", "32"}},
      {"MISSING_DTYPE", file_with(R"({"w":{"shape":[2],"data_offsets":[0,8]}})", 8),
       {"tensor 'w'", "missing field 'dtype'"}},
      {"MISSING_SHAPE", file_with(R"({"w":{"dtype":"F32","data_offsets":[0,8]}})", 8),
       {"tensor 'w'", "missing field 'shape'"}},
      {"MISSING_OFFSETS", file_with(R"({"w":{"dtype":"F32","shape":[2]}})", 8),
       {"tensor 'w'", "missing field 'data_offsets'"}},
      {"EXTRA_FIELD",
       file_with(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"offset":0}})", 8),
       {"tensor 'w'", "unknown field 'offset'"}},
      {"SHAPE_NOT_ARRAY", file_with("{" + entry("w", "F32", "2", "[0,8]") + "}", 8),
       {"tensor 'w'", "field 'shape'"}},
      {"SHAPE_NEGATIVE", file_with("{" + entry("w", "F32", "[2,-1]", "[0,8]") + "}", 8),
       {"tensor 'w'", "field 'shape'", "-1", "axis 1"}},
      {"SHAPE_FRACTION", file_with("{" + entry("w", "F32", "[2.5]", "[0,8]") + "}", 8),
       {"tensor 'w'", "field 'shape'", "2.5"}},
      {"SHAPE_STRING", file_with("{" + entry("w", "F32", R"(["2"])", "[0,8]") + "}", 8),
       {"tensor 'w'", "field 'shape'"}},
      {"SHAPE_BEYOND_INT64",
       file_with("{" + entry("w", "F32", "[9223372036854775808]", "[0,8]") + "}", 8),
       {"tensor 'w'", "field 'shape'", "9223372036854775808"}},
      {"SHAPE_BEYOND_UINT64",
       file_with("{" + entry("w", "F32", "[18446744073709551616]", "[0,8]") + "}", 8),
       {"tensor 'w'", "field 'shape'", "not a non-negative integer"}},
      {"SHAPE_ELEMENTS_OVERFLOW",
       file_with("{" + entry("w", "U8", "[4294967296,4294967296,2]", "[0,8]") + "}", 8),
       {"tensor 'w'", "shape [4294967296,4294967296,2]", "more elements"}},
      {"SHAPE_EMPTY_AXIS_OVERFLOW",
       file_with("{" + entry("w", "U8", "[0,9223372036854775807,9223372036854775807]", "[0,0]") +
                     "}",
                 0),
       {"tensor 'w'", "field 'shape'", "nonzero extents", "more elements than 2^63-1"}},
      {"SHAPE_PRODUCT_BEYOND_INT64",
       file_with("{" + entry("w", "U8", "[2,0,4611686018427387904]", "[0,0]") + "}", 0),
       {"tensor 'w'", "field 'shape'", "shape [2,0,4611686018427387904]", "2^63-1"}},
      {"SHAPE_BITS_OVERFLOW",
       file_with("{" + entry("w", "F64", "[2305843009213693952]", "[0,8]") + "}", 8),
       {"tensor 'w'", "F64", "more bits"}},
      {"SUB_BYTE_MISALIGNED", file_with("{" + entry("w", "F4", "[3]", "[0,1]") + "}", 1),
       {"tensor 'w'", "F4", "12 bits", "whole number of bytes"}},
      {"WRONG_SIZE", file_with("{" + entry("w", "F32", "[64,3,4,4]", "[0,1000]") + "}", 1000),
       {"tensor 'w'", "shape [64,3,4,4]", "needs 12288 bytes", "data_offsets [0,1000] span 1000"}},
      {"OFFSETS_REVERSED", file_with("{" + entry("w", "F32", "[2]", "[8,0]") + "}", 8),
       {"tensor 'w'", "field 'data_offsets' [8,0]", "begins after it ends"}},
      {"OFFSETS_ONE", file_with("{" + entry("w", "F32", "[0]", "[0]") + "}", 0),
       {"tensor 'w'", "field 'data_offsets'"}},
      {"OFFSETS_THREE", file_with("{" + entry("w", "F32", "[2]", "[0,8,8]") + "}", 8),
       {"tensor 'w'", "field 'data_offsets'"}},
      {"OFFSETS_STRING", file_with("{" + entry("w", "F32", "[2]", R"(["0",8])") + "}", 8),
       {"tensor 'w'", "field 'data_offsets'"}},
      {"OFFSETS_NEGATIVE", file_with("{" + entry("w", "F32", "[2]", "[-8,0]") + "}", 8),
       {"tensor 'w'", "field 'data_offsets'"}},
      {"OFFSETS_NOT_ARRAY", file_with("{" + entry("w", "F32", "[2]", "{}") + "}", 8),
       {"tensor 'w'", "field 'data_offsets'"}},
      {"OFFSETS_PAST_END", file_with("{" + entry("w", "F32", "[2]", "[0,8]") + "}", 4),
       {"tensor 'w'", "data_offsets [0,8]", "past the end of the data section (4 bytes)"}},
      {"OFFSETS_HUGE",
       file_with("{" + entry("w", "U8", "[8]", "[" + u64_max + "," + u64_max + "]") + "}", 0),
       {"tensor 'w'", "needs 8 bytes", "span 0"}},
      {"OFFSETS_NEAR_MAX",
       file_with("{" + entry("w", "U8", "[8]",
                             "[" + std::to_string(std::numeric_limits<std::uint64_t>::max() - 8) +
                                 "," + u64_max + "]") +
                     "}",
                 0),
       {"tensor 'w'", "past the end of the data section (0 bytes)"}},
      {"OVERLAP",
       file_with("{" + a8 + "," + entry("b", "F32", "[2]", "[4,12]") + "}", 12),
       {"tensor 'b'", "data_offsets [4,12]", "overlap tensor 'a' [0,8]"}},
      {"EMPTY_TENSOR_INSIDE_ANOTHER",
       file_with("{" + a8 + "," + entry("z", "F32", "[0]", "[4,4]") + "}", 8),
       {"tensor 'z'", "overlap tensor 'a'"}},
      {"GAP", file_with("{" + entry("a", "F32", "[1]", "[0,4]") + "," +
                            entry("b", "F32", "[1]", "[8,12]") + "}",
                        12),
       {"tensor 'b'", "gap of 4 bytes", "after tensor 'a' [0,4]"}},
      {"GAP_AT_START", file_with("{" + entry("a", "F32", "[1]", "[4,8]") + "}", 8),
       {"tensor 'a'", "gap of 4 bytes at the start"}},
      {"TRAILING_BYTE", file_with("{" + a8 + "}", 9),
       {"data section is 9 bytes", "cover 8", "1 trailing bytes"}},
      {"DATA_WITHOUT_TENSORS", file_with("{}", 3), {"3 trailing bytes"}},
      {"DUPLICATE_NAME", file_with("{" + a8 + "," + entry("a", "F32", "[2]", "[8,16]") + "}", 16),
       {"tensor 'a'", "duplicate tensor name"}},
      {"DUPLICATE_FIELD",
       file_with(R"({"a":{"dtype":"F32","dtype":"I32","shape":[2],"data_offsets":[0,8]}})", 8),
       {"tensor 'a'", "duplicate field 'dtype'"}},
      {"DUPLICATE_METADATA_KEY", file_with(R"({"__metadata__":{"k":"1","k":"2"}})", 0),
       {"__metadata__", "duplicate key 'k'"}},
      {"DUPLICATE_METADATA", file_with(R"({"__metadata__":{},"__metadata__":{}})", 0),
       {"'__metadata__' twice"}},
      {"METADATA_NOT_STRING", file_with(R"({"__metadata__":{"k":1}})", 0),
       {"__metadata__", "key 'k'", "not a string"}},
      {"METADATA_NESTED", file_with(R"({"__metadata__":{"k":{"x":"y"}}})", 0),
       {"__metadata__", "key 'k'", "not a string"}},
      {"METADATA_NOT_OBJECT", file_with(R"({"__metadata__":"x"})", 0),
       {"__metadata__", "not an object"}},
      {"DTYPE_MEGABYTE_STRING",
       file_with(R"({"w":{"dtype":")" + std::string(1'000'000, 'x') +
                     R"(","shape":[2],"data_offsets":[0,8]}})",
                 8),
       {"tensor 'w'", "field 'dtype' is \"xxxxxxxx", "...", "not a safetensors dtype"}},
      {"METADATA_LONG_ARRAY", file_with(R"({"__metadata__":{"k":[)" + repeat("0,", 99) + "0]}}", 0),
       {"__metadata__", "key 'k' is an array of 100 elements", "not a string"}},
      {"DUPLICATE_AFTER_BAD_ENTRY", file_with(R"({"a":5,"a":5})", 0),
       {"tensor 'a'", "duplicate tensor name"}},
      {"NESTED_SHAPE", file_with(R"({"w":{"dtype":"F32","shape":[[1]],"data_offsets":[0,4]}})", 4),
       {"tensor 'w'", "field 'shape' nests", "deeper than the 3 levels", "(byte 37 of"}},
      {"NESTED_OFFSETS",
       file_with(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,[4]]}})", 4),
       {"tensor 'w'", "field 'data_offsets' nests", "(byte 58 of"}},
      {"NESTED_DTYPE", file_with(R"({"w":{"dtype":{"a":{}}}})", 0),
       {"tensor 'w'", "field 'dtype' nests", "(byte 27 of"}},
      {"NESTED_ENTRY", file_with(R"({"w":[1,[2,[3]]]})", 0),
       {"tensor 'w': entry nests", "(byte 19 of"}},
      {"NESTED_METADATA_VALUE", file_with(R"({"__metadata__":{"k":{"a":{}}}})", 0),
       {"__metadata__: key 'k' nests", "(byte 34 of"}},
      {"NESTED_METADATA", file_with(R"({"__metadata__":[[[]]]})", 0),
       {"__metadata__ nests", "(byte 26 of"}},
      {"NESTED_AFTER_STRING_BRACKETS",
       file_with(R"({"[{\"w":{"dtype":"F32","shape":[["]"]],"data_offsets":[0,4]}})", 4),
       {"tensor '[{\"w'", "field 'shape' nests", "(byte 41 of"}},
  };
  for (const auto& c : cases) {
    INFO(c.name);
    const std::string message = error_of(c.bytes);
    INFO(message);
    CHECK_THAT(message, Catch::StartsWith("corrupt.safetensors: "));
    for (const auto& part : c.message_parts) CHECK_THAT(message, Catch::Contains(part));
  }
}

TEST_CASE("hostile nesting a million levels deep is an error, not a stack overflow",
          "[safetensors]") {
  const std::size_t depth = 1'000'000;
  const std::string deep = std::string(depth, '[') + std::string(depth, ']');
  const std::vector<std::pair<std::string, std::string>> cases{
      {"{" + entry("w", "F32", "[" + deep + "]", "[0,0]") + "}", "tensor 'w': field 'shape'"},
      {"{" + entry("w", "F32", "[0]", deep) + "}", "tensor 'w': field 'data_offsets'"},
      {R"({"__metadata__":{"k":)" + deep + "}}", "__metadata__: key 'k'"},
      {R"({"w":)" + deep + "}", "tensor 'w': entry"},
  };
  for (const auto& [header, field] : cases) {
    const std::string message = error_of(file_with(header, 0));
    CHECK_THAT(message, Catch::Contains(field + " nests") &&
                            Catch::Contains("deeper than the 3 levels"));
  }
}

// The reader stops at the first bracket past the format's depth, so a 10 MB header costs
// what its first few bytes cost; before, it built a DOM of the whole (723 MB for 20 MB).
TEST_CASE("10 MB of nesting is refused where it passes the format's depth", "[safetensors]") {
  const std::size_t levels = 10'000'000 / 6;
  std::string objects;
  for (std::size_t i = 0; i < levels; ++i) objects += R"({"a":)";
  objects += "{}" + std::string(levels, '}');
  struct corrupt_file {
    const char* name;
    std::string header;
    std::vector<std::string> message_parts;
  };
  const std::vector<corrupt_file> cases{
      {"NESTED_OBJECTS_10MB", "{\"a\":" + objects + "}",
       {"tensor 'a': field 'a' nests", "(byte 23 of"}},
      {"NESTED_METADATA_10MB", R"({"__metadata__":)" + objects + "}",
       {"__metadata__: key 'a' nests", "(byte 34 of"}},
      {"NESTED_SHAPE_10MB",
       R"({"w":{"dtype":"F32","shape":[)" + std::string(10'000'000, '[') +
           std::string(10'000'001, ']') + R"(,"data_offsets":[0,0]}})",
       {"tensor 'w': field 'shape' nests", "(byte 37 of"}},
  };
  for (const auto& c : cases) {
    INFO(c.name);
    REQUIRE(c.header.size() > 10'000'000);
    const std::string message = error_of(file_with(c.header, 0));
    INFO(message);
    CHECK(message.size() < 200);
    for (const auto& part : c.message_parts) CHECK_THAT(message, Catch::Contains(part));
  }
}

// 100,000 entries took 148 s when nlohmann's callback parser rescanned the root object
// after each one; benchmarks/safetensors_header.sh times this scale and larger.
TEST_CASE("100,000 one-element tensors parse, each found by name", "[safetensors]") {
  const std::size_t count = 100'000;
  // Names built by appending: GCC 12 reports a false -Wrestrict for "t" + std::string&&.
  const auto name_of = [](std::size_t i) {
    std::string name = "t";
    name += std::to_string(i);
    return name;
  };
  std::string header = "{";
  for (std::size_t i = count; i-- > 0;) {  // reverse order: the reader sorts by offset
    if (i + 1 != count) header += ",";
    header += entry(name_of(i), "F32", "[1]",
                    io::safetensors_detail::offsets_text(4 * i, 4 * i + 4));
  }
  header += "}";
  const auto bytes = file_with(header, 4 * count);
  const auto file = parse(bytes);
  REQUIRE(file.tensors().size() == count);
  for (std::size_t i = 0; i < count; i += 997) {
    const auto& tensor = file.tensors()[i];
    CHECK(tensor.name == name_of(i));
    CHECK(file.find(tensor.name) == &tensor);
    CHECK(tensor.bytes.data() == bytes.data() + 8 + header.size() + 4 * i);
  }
  CHECK(file.at("t99999").shape == qgan::shape_t{1});
}

TEST_CASE("opening files: errors name the path, and an empty file is an error", "[safetensors]") {
  const temp_dir dir;
  const fs::path missing = dir.path / "missing.safetensors";
  CHECK_THROWS_WITH(io::safetensors_file::open(missing),
                    Catch::Contains(missing.string()) && Catch::Contains("no such file"));
  CHECK_THROWS_WITH(io::safetensors_file::open(dir.path), Catch::Contains("is a directory"));
  const fs::path empty = dir.path / "empty.safetensors";
  { std::ofstream create(empty); }
  CHECK_THROWS_WITH(io::safetensors_file::open(empty),
                    Catch::Contains(empty.string()) && Catch::Contains("0 bytes"));
  CHECK(io::mapped_file::open(empty).bytes().empty());
}

TEST_CASE("write then read is bit-exact, atomic, and leaves no temporary file",
          "[safetensors]") {
  const temp_dir dir;
  const std::vector<float> weights{1.5f, -0.0f, std::bit_cast<float>(0x7fc12345u),
                                   std::numeric_limits<float>::denorm_min(),
                                   -std::numeric_limits<float>::infinity(), 3.0e38f};
  const std::vector<std::int64_t> counter{3};
  const std::vector<std::uint8_t> flags{1, 0, 1};
  const std::vector<std::uint16_t> brain{0x3f80, 0xc040, 0x7fc1};
  const std::vector<std::uint8_t> fp4{0x21, 0x43};
  const std::vector<io::safetensors_tensor> tensors{
      io::make_f32_tensor("gen.0.weight", {2, 3}, weights),
      {"bn.num_batches_tracked", io::dtype::i64, {}, std::as_bytes(std::span(counter))},
      {"mask", io::dtype::boolean, {3}, std::as_bytes(std::span(flags))},
      {"scale", io::dtype::bf16, {3}, std::as_bytes(std::span(brain))},
      {"codes", io::dtype::f4, {2, 2}, std::as_bytes(std::span(fp4))},
      {"empty", io::dtype::f32, {0}, {}},
  };
  const io::safetensors_metadata metadata{{"format", "pt"}, {"note", "gr\xc3\xbc\xc3\x9f"}};
  const fs::path first = dir.path / "model.safetensors";
  io::write_safetensors(first, tensors, metadata);
  CHECK(dir.names() == std::vector<std::string>{"model.safetensors"});

  const auto bytes = read_bytes(first);
  const std::uint64_t header_size = io::safetensors_detail::read_le64(bytes);
  CHECK(header_size % 8 == 0);  // data starts 8-byte aligned
  const auto file = io::safetensors_file::open(first);
  CHECK(file.metadata() == metadata);
  REQUIRE(file.tensors().size() == tensors.size());
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const auto& written = tensors[i];
    const auto& read = file.tensors()[i];  // the given order is the data order
    INFO(written.name);
    CHECK(read.name == written.name);
    CHECK(read.type == written.type);
    CHECK(read.shape == written.shape);
    REQUIRE(read.bytes.size() == written.bytes.size());
    CHECK(std::equal(read.bytes.begin(), read.bytes.end(), written.bytes.begin()));
  }
  CHECK(float_bits(file.read_float("gen.0.weight")) == float_bits(weights));
  CHECK(decode<std::int64_t>(file.at("bn.num_batches_tracked").bytes) == counter);

  // Writing what was read reproduces the file byte for byte.
  const fs::path second = dir.path / "copy.safetensors";
  io::write_safetensors(second, file.tensors(), file.metadata());
  CHECK(read_bytes(second) == bytes);

  // Replacing a file that is open: the open mapping keeps the old contents.
  const std::vector<float> other{7.0f};
  io::write_safetensors(first, std::vector{io::make_f32_tensor("x", {1}, other)});
  CHECK(float_bits(file.read_float("gen.0.weight")) == float_bits(weights));
  CHECK(io::safetensors_file::open(first).read_float("x") == other);

  // The third-party and torch files survive a read -> write -> read round trip too.
  for (const char* name : {"overall.safetensors", "torch_sample.safetensors"}) {
    INFO(name);
    const auto original = io::safetensors_file::open(data_dir() / name);
    const fs::path copy = dir.path / name;
    io::write_safetensors(copy, original.tensors(), original.metadata());
    const auto reread = io::safetensors_file::open(copy);
    CHECK(reread.metadata() == original.metadata());
    REQUIRE(reread.tensors().size() == original.tensors().size());
    for (std::size_t i = 0; i < reread.tensors().size(); ++i) {
      const auto& a = original.tensors()[i];
      const auto& b = reread.tensors()[i];
      CHECK(a.name == b.name);
      CHECK(a.type == b.type);
      CHECK(a.shape == b.shape);
      CHECK(std::equal(a.bytes.begin(), a.bytes.end(), b.bytes.begin(), b.bytes.end()));
    }
  }
  CHECK(dir.names() == std::vector<std::string>{"copy.safetensors", "model.safetensors",
                                                "overall.safetensors",
                                                "torch_sample.safetensors"});

  SECTION("no tensors") {
    io::write_safetensors(dir.path / "none.safetensors", {});
    CHECK(io::safetensors_file::open(dir.path / "none.safetensors").tensors().empty());
  }
}

TEST_CASE("a 16 MiB tensor goes through the mapping intact", "[safetensors]") {
  const temp_dir dir;
  std::vector<float> values(std::size_t{1} << 22);
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i) * 0.5f;
  const auto path = dir.path / "large.safetensors";
  io::write_safetensors(path, std::vector{io::make_f32_tensor(
                                  "big", {1024, static_cast<std::int64_t>(values.size() / 1024)},
                                  values)});
  const auto file = io::safetensors_file::open(path);
  CHECK(file.read_float("big") == values);
  static_assert(std::is_nothrow_move_constructible_v<io::safetensors_file>);
  static_assert(std::is_nothrow_move_assignable_v<io::safetensors_file>);
  static_assert(!std::is_copy_constructible_v<io::safetensors_file>);
  auto moved = io::safetensors_file::open(path);
  const std::byte* before = moved.at("big").bytes.data();
  const auto owner = std::move(moved);  // views stay valid: the mapping moves, not the pages
  CHECK(owner.at("big").bytes.data() == before);
}

TEST_CASE("failed writes throw naming the path and leave nothing behind", "[safetensors]") {
  const temp_dir dir;
  const std::vector<float> six(6, 1.0f);
  const std::vector<io::safetensors_tensor> good{io::make_f32_tensor("w", {2, 3}, six)};
  const auto target = dir.path / "out.safetensors";
  const auto tensor = [&](std::string name, io::dtype type, qgan::shape_t shape) {
    return io::safetensors_tensor{std::move(name), type, std::move(shape),
                                  std::as_bytes(std::span(six))};
  };

  CHECK_THROWS_WITH(io::make_f32_tensor("w", {2, 2}, six),
                    Catch::Contains("tensor 'w'") && Catch::Contains("6 values"));
  CHECK_THROWS_WITH(io::write_safetensors(target, std::vector{tensor("w", io::dtype::f32, {5})}),
                    Catch::Contains(target.string()) && Catch::Contains("tensor 'w'") &&
                        Catch::Contains("needs 20 bytes but 24 were given"));
  CHECK_THROWS_WITH(io::write_safetensors(target, std::vector{tensor("w", io::dtype::f32, {6}),
                                                              tensor("w", io::dtype::i32, {6})}),
                    Catch::Contains("tensor 'w'") && Catch::Contains("duplicate"));
  CHECK_THROWS_WITH(
      io::write_safetensors(target, std::vector{tensor("__metadata__", io::dtype::f32, {6})}),
      Catch::Contains("reserved"));
  CHECK_THROWS_WITH(io::write_safetensors(target, std::vector{tensor("w", io::dtype::f4, {47})}),
                    Catch::Contains("tensor 'w'") && Catch::Contains("whole number of bytes"));
  CHECK_THROWS_WITH(
      io::write_safetensors(target, std::vector{tensor("w\xff", io::dtype::u8, {24})}),
      Catch::Contains("not UTF-8"));
  CHECK_THROWS_WITH(io::write_safetensors(target, good, {{"k", "\xc3"}}),
                    Catch::Contains("__metadata__") && Catch::Contains("not UTF-8"));
  CHECK(dir.names().empty());

  // A directory stands where the file should go: refused before a temporary exists.
  fs::create_directory(target);
  CHECK_THROWS_WITH(io::write_safetensors(target, good),
                    Catch::Contains(target.string()) && Catch::Contains("is a directory"));
  CHECK(dir.names() == std::vector<std::string>{"out.safetensors"});
  CHECK(fs::is_directory(target));

  const auto nowhere = dir.path / "no" / "such" / "dir" / "out.safetensors";
  CHECK_THROWS_WITH(io::write_safetensors(nowhere, good),
                    Catch::Contains(nowhere.string()) && Catch::Contains("temporary file"));
  CHECK_THROWS_WITH(io::write_safetensors(dir.path / "", good), Catch::Contains("not a file name"));
}

TEST_CASE("every truncation and every header bit flip ends in qgan::error or a clean parse",
          "[safetensors]") {
  for (const char* name : {"overall.safetensors", "torch_sample.safetensors"}) {
    INFO(name);
    const auto original = read_bytes(data_dir() / name);
    REQUIRE(exercise(original));
    for (std::size_t size = 0; size < original.size(); ++size) {
      INFO("truncated to " << size << " bytes");
      const bytes_t truncated(original.begin(),
                              original.begin() + static_cast<std::ptrdiff_t>(size));
      CHECK_FALSE(exercise(truncated));  // a truncated file is never valid
    }
    const std::size_t header_end = 8 + io::safetensors_detail::read_le64(original);
    std::size_t parsed = 0;
    std::size_t rejected = 0;
    for (std::size_t bit = 0; bit < header_end * 8; ++bit) {
      INFO("bit " << bit << " flipped");
      bytes_t flipped = original;
      flipped[bit / 8] ^= static_cast<std::byte>(1u << (bit % 8));
      (exercise(flipped) ? parsed : rejected) += 1;
    }
    // Most flips break the header; some (a letter in a name or in metadata) leave it valid.
    CHECK(rejected > parsed);
    CHECK(parsed > 0);
  }
}
