// Writes the scale test's model: 12 conv weights [500, 500, 10, 10] (25M floats, 100 MB
// each) of N(0, 0.02) from a fixed seed, tensor by tensor, so writing it needs only one
// tensor's memory. Not committed: benchmarks/scale.sh generates it.
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_scale_model OUT.safetensors\n");
    return 2;
  }
  constexpr int tensors = 12;
  constexpr std::uint64_t count = 500ull * 500 * 10 * 10;
  std::string header = "{";
  for (int t = 0; t < tensors; ++t) {
    const std::uint64_t begin = t * count * 4, end = begin + count * 4;
    if (t != 0) header += ',';
    header += "\"conv";
    header += std::to_string(t);
    header += ".weight\":{\"dtype\":\"F32\",\"shape\":[500,500,10,10],\"data_offsets\":[";
    header += std::to_string(begin);
    header += ',';
    header += std::to_string(end);
    header += "]}";
  }
  header += "}";
  while (header.size() % 8 != 0) header += ' ';
  std::ofstream out(argv[1], std::ios::binary);
  const std::uint64_t header_size = header.size();
  out.write(reinterpret_cast<const char*>(&header_size), 8);
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  std::mt19937 generator(2019);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  std::vector<float> values(count);
  for (int t = 0; t < tensors; ++t) {
    for (float& value : values) value = normal(generator);
    out.write(reinterpret_cast<const char*>(values.data()), static_cast<std::streamsize>(count * 4));
  }
  return out ? 0 : 1;
}
