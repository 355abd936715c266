// Checks of one kernel set's packed-compute tiles (qgan/simd/conv_types.hpp) against the
// scalar references, bit for bit: random tiles of every storage width, 1..8 positions,
// 1..16 live lanes, odd channel counts, taps skipped, zero points 0 and not, u8 outputs
// channel-last and planar, float outputs with and without ReLU; row tiles with
// consecutive and scattered pixels and border lanes; fp32 tiles.
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "qgan/simd/conv_ref.hpp"
#include "qgan/simd/tables.hpp"

namespace qgan::test {

// A tile's taps: each of the kernel's taps kept with probability 3/4 (possibly none).
template <class Uniform>
std::vector<std::uint16_t> random_taps(std::size_t kernel_taps, Uniform& uniform) {
  std::vector<std::uint16_t> taps;
  for (std::size_t t = 0; t < kernel_taps; ++t) {
    if (uniform(0, 3) != 0) taps.push_back(static_cast<std::uint16_t>(t));
  }
  return taps;
}

// Runs an fp32 tile through a kernel and through its reference, each into its own
// `positions` x `stride` floats (filled with -7 first), and requires the same bits.
using f32_tile_function = void (*)(const qgan::simd::f32_channel_tile&) noexcept;
inline void require_same_f32_tile(qgan::simd::f32_channel_tile tile, std::size_t stride, f32_tile_function kernel,
                                  f32_tile_function reference) {
  std::vector<float> simd_out(tile.positions * stride, -7.0f), ref_out(tile.positions * stride, -7.0f);
  std::vector<float*> simd_ptrs(tile.positions), ref_ptrs(tile.positions);
  for (std::size_t p = 0; p < tile.positions; ++p) simd_ptrs[p] = simd_out.data() + p * stride, ref_ptrs[p] = ref_out.data() + p * stride;
  tile.outputs = simd_ptrs.data();
  kernel(tile);
  tile.outputs = ref_ptrs.data();
  reference(tile);
  REQUIRE(std::memcmp(simd_out.data(), ref_out.data(), simd_out.size() * sizeof(float)) == 0);
}

inline void check_a8_channel_tiles(const qgan::simd::kernel_set& kernels) {
  using namespace qgan::simd;
  std::mt19937 rng(7);
  const auto uniform = [&](int low, int high) { return std::uniform_int_distribution<int>(low, high)(rng); };
  for (int round = 0; round < 400; ++round) {
    const int storage_bits = std::vector<int>{1, 2, 3, 4, 8}[static_cast<std::size_t>(round % 5)];
    const auto positions = static_cast<std::size_t>(uniform(1, 8));
    const auto blocks = static_cast<std::size_t>(uniform(1, 5));
    const auto lanes = static_cast<std::size_t>(uniform(1, 16));
    const auto vectors = static_cast<std::size_t>(uniform(1, 20));
    const auto kernel_taps = static_cast<std::size_t>(uniform(1, 6));
    const std::size_t chunks = (vectors + 7) / 8, tap_bytes = chunks * chunk_bytes(storage_bits);
    const std::size_t block_bytes = kernel_taps * tap_bytes + 64 * static_cast<std::size_t>(uniform(0, 1));
    std::vector<std::uint8_t> weights(blocks * block_bytes);
    for (auto& b : weights) b = static_cast<std::uint8_t>(uniform(0, 255));
    const std::vector<std::uint16_t> taps = random_taps(kernel_taps, uniform);
    std::vector<std::uint8_t> pixels(positions * taps.size() * (vectors * 4 + 8) + 64);
    for (auto& b : pixels) b = static_cast<std::uint8_t>(uniform(0, 255));
    std::vector<const std::uint8_t*> inputs(std::max<std::size_t>(taps.size(), 1) * positions, pixels.data());
    for (std::size_t i = 0; i < taps.size() * positions; ++i) inputs[i] = pixels.data() + i * (vectors * 4 + 8) + static_cast<std::size_t>(uniform(0, 7));
    std::vector<std::int32_t> q_sums(positions), counts(positions), code_sums(blocks * positions * 16);
    for (auto& v : q_sums) v = uniform(0, 100000);
    for (auto& v : counts) v = uniform(0, 400);
    for (auto& v : code_sums) v = uniform(0, 5000);
    const std::int32_t zero_point = uniform(0, 1) != 0 ? uniform(1, 255) : 0;
    std::vector<float> sa(blocks * 16), sb(blocks * 16), bias(blocks * 16);
    for (std::size_t o = 0; o < blocks * 16; ++o) {
      sa[o] = std::uniform_real_distribution<float>(-1e-3f, 1e-3f)(rng);
      sb[o] = std::uniform_real_distribution<float>(-1e-3f, 1e-3f)(rng);
      bias[o] = std::uniform_real_distribution<float>(-1.0f, 1.0f)(rng);
    }
    tile_output output;
    output.to_u8 = round % 3 != 0;
    output.relu = round % 2 == 0;
    output.inverse_scale = std::uniform_real_distribution<float>(0.5f, 40.0f)(rng);
    output.zero_point = uniform(0, 1) != 0 ? uniform(0, 255) : 0;
    output.quad_stride = round % 4 == 1 ? 4 : 4 + 4 * static_cast<std::size_t>(uniform(1, 9));
    const std::size_t block_region = output.to_u8 ? 4 * output.quad_stride + 16 : 16 * sizeof(float);
    const std::size_t region = blocks * block_region;
    std::vector<std::uint8_t> simd_out(positions * region, 0xCD), ref_out(positions * region, 0xCD);
    std::vector<void*> simd_ptrs(positions), ref_ptrs(positions);
    for (std::size_t p = 0; p < positions; ++p) simd_ptrs[p] = simd_out.data() + p * region, ref_ptrs[p] = ref_out.data() + p * region;
    a8_channel_tile tile{weights.data(), tap_bytes, taps.data(), taps.size(), inputs.data(), positions, vectors,
                         storage_bits, q_sums.data(), counts.data(), zero_point != 0 ? code_sums.data() : nullptr,
                         {sa.data(), sb.data(), bias.data(), storage_bits == 8 ? 128 : 0, zero_point}, lanes, simd_ptrs.data(), output};
    tile.blocks = blocks;
    tile.block_bytes = block_bytes;
    tile.block_output_bytes = block_region;
    tile.terms_stride = 16;
    kernels.conv.a8_channel(tile);
    tile.outputs = ref_ptrs.data();
    conv_ref::a8_channel_tile_ref(tile);
    INFO("set " << kernels.name << ", round " << round << ", storage bits " << storage_bits << ", positions " << positions
                << ", blocks " << blocks << ", lanes " << lanes << ", vectors " << vectors << ", taps " << taps.size() << ", u8 " << output.to_u8);
    REQUIRE(simd_out == ref_out);
  }
}

inline void check_a8_row_tiles(const qgan::simd::kernel_set& kernels) {
  using namespace qgan::simd;
  std::mt19937 rng(11);
  const auto uniform = [&](int low, int high) { return std::uniform_int_distribution<int>(low, high)(rng); };
  for (int round = 0; round < 300; ++round) {
    const auto outputs = static_cast<std::size_t>(uniform(1, 4));
    const auto lanes = static_cast<std::size_t>(uniform(1, 16));
    const auto vectors = static_cast<std::size_t>(uniform(1, 9));
    const auto kernel_taps = static_cast<std::size_t>(uniform(1, 9));
    const std::size_t height = 6, width = 20, plane = height * width * 4;
    std::vector<std::uint8_t> input(plane * vectors + 64);
    for (auto& b : input) b = static_cast<std::uint8_t>(uniform(0, 255));
    std::vector<std::int8_t> weights(outputs * kernel_taps * vectors * 4);
    for (auto& b : weights) b = static_cast<std::int8_t>(uniform(-128, 127));
    std::vector<std::uint16_t> taps;
    std::vector<std::int32_t> pixels;
    for (std::size_t t = 0; t < kernel_taps; ++t) {
      if (uniform(0, 2) == 0) continue;
      taps.push_back(static_cast<std::uint16_t>(t));
      const bool consecutive = uniform(0, 2) != 0;
      const int start = uniform(-1, static_cast<int>(height * width) - 17);
      for (std::size_t lane = 0; lane < 16; ++lane) {
        int pixel = consecutive ? start + static_cast<int>(lane) : uniform(0, static_cast<int>(height * width) - 1);
        if (uniform(0, 5) == 0 || pixel < 0) pixel = -1;
        pixels.push_back(pixel);
      }
    }
    std::vector<std::int32_t> code_sums(outputs * 16), out_pixels(16);
    for (auto& v : code_sums) v = uniform(-5000, 5000);
    for (std::size_t lane = 0; lane < 16; ++lane) out_pixels[lane] = static_cast<std::int32_t>((lane * 7) % 16);
    const std::int32_t zero_point = uniform(0, 1) != 0 ? uniform(1, 255) : 0;
    alignas(64) float sa[4], sb[4], bias[4];
    for (int o = 0; o < 4; ++o) {
      sa[o] = std::uniform_real_distribution<float>(-1e-3f, 1e-3f)(rng);
      sb[o] = std::uniform_real_distribution<float>(-1e-3f, 1e-3f)(rng);
      bias[o] = std::uniform_real_distribution<float>(-1.0f, 1.0f)(rng);
    }
    tile_output output;
    output.to_u8 = round % 2 == 0;
    output.relu = round % 3 == 0;
    output.inverse_scale = std::uniform_real_distribution<float>(0.5f, 40.0f)(rng);
    output.zero_point = uniform(0, 1) != 0 ? uniform(0, 255) : 0;
    const std::size_t pixel_stride = 4 + static_cast<std::size_t>(uniform(0, 3));
    const std::size_t bytes = 16 * pixel_stride * (output.to_u8 ? 1 : sizeof(float));
    std::vector<std::uint8_t> simd_out(bytes, 0xCD), ref_out(bytes, 0xCD);
    a8_row_tile tile{weights.data(), kernel_taps, outputs, taps.data(), pixels.data(), taps.size(), input.data(), plane,
                     vectors, static_cast<std::size_t>(uniform(1, 36)), lanes, zero_point != 0 ? code_sums.data() : nullptr,
                     {sa, sb, bias, round % 5 == 0 ? 128 : 0, zero_point}, simd_out.data(), out_pixels.data(), pixel_stride, 1,
                     output};
    kernels.conv.a8_row(tile);
    tile.output_base = ref_out.data();
    conv_ref::a8_row_tile_ref(tile);
    INFO("set " << kernels.name << ", round " << round << ", outputs " << outputs << ", lanes " << lanes << ", vectors " << vectors);
    REQUIRE(simd_out == ref_out);
  }
}

inline void check_f32_channel_tiles(const qgan::simd::kernel_set& kernels) {
  using namespace qgan::simd;
  std::mt19937 rng(13);
  const auto uniform = [&](int low, int high) { return std::uniform_int_distribution<int>(low, high)(rng); };
  std::normal_distribution<float> normal;
  for (int round = 0; round < 200; ++round) {
    const auto positions = static_cast<std::size_t>(uniform(1, 8));
    const auto lanes = static_cast<std::size_t>(uniform(1, 16));
    const auto channels = static_cast<std::size_t>(uniform(1, 70));
    const auto kernel_taps = static_cast<std::size_t>(uniform(1, 5));
    std::vector<float> weights(kernel_taps * channels * 16);
    for (auto& w : weights) w = normal(rng);
    const std::vector<std::uint16_t> taps = random_taps(kernel_taps, uniform);
    std::vector<float> x(std::max<std::size_t>(taps.size(), 1) * positions * channels);
    for (auto& v : x) v = normal(rng);
    std::vector<const float*> inputs(std::max<std::size_t>(taps.size(), 1) * positions);
    for (std::size_t i = 0; i < inputs.size(); ++i) inputs[i] = x.data() + i * channels;
    std::vector<float> input_sums(positions), scale(16), beta(16), bias(16);
    for (auto* v : {&input_sums, &scale, &beta, &bias}) {
      for (auto& f : *v) f = normal(rng);
    }
    const f32_channel_tile tile{weights.data(), channels, taps.data(), taps.size(), inputs.data(), positions, input_sums.data(),
                                scale.data(), beta.data(), bias.data(), lanes, nullptr, round % 2 == 0, 0};
    INFO("set " << kernels.name << ", round " << round << ", positions " << positions << ", channels " << channels);
    require_same_f32_tile(tile, 16, kernels.conv.f32_channel, conv_ref::f32_channel_tile_ref);
  }
}

// Dot tiles: channel counts around multiples of 16 (whole chunks, tails), every output
// count, inputs of exactly `channels` floats each (a tail read past them would show under
// ASan), -0 and infinities (whose sums make NaN) among the inputs in some rounds.
inline void check_f32_dot_tiles(const qgan::simd::kernel_set& kernels) {
  using namespace qgan::simd;
  std::mt19937 rng(17);
  const auto uniform = [&](int low, int high) { return std::uniform_int_distribution<int>(low, high)(rng); };
  std::normal_distribution<float> normal;
  for (int round = 0; round < 300; ++round) {
    const auto positions = static_cast<std::size_t>(uniform(1, 8));
    const auto outputs = static_cast<std::size_t>(uniform(1, 15));
    const std::size_t channels = round % 3 == 0 ? static_cast<std::size_t>(16 * uniform(1, 4) + uniform(-1, 1))
                                                : static_cast<std::size_t>(uniform(1, 70));
    const auto kernel_taps = static_cast<std::size_t>(uniform(1, 5));
    const std::size_t padded = dot_padded_channels(channels);
    std::vector<float> weights(outputs * kernel_taps * padded, 0.0f);
    for (std::size_t i = 0; i < weights.size(); ++i) {
      if (i % padded < channels) weights[i] = normal(rng);
    }
    const std::vector<std::uint16_t> taps = random_taps(kernel_taps, uniform);
    std::vector<std::vector<float>> x(std::max<std::size_t>(taps.size(), 1) * positions, std::vector<float>(channels));
    for (auto& pixel : x) {
      for (auto& v : pixel) {
        v = normal(rng);
        if (round % 50 == 7 && uniform(0, 20) == 0) v = -0.0f;
        if (round % 50 == 9 && uniform(0, 40) == 0) v = uniform(0, 1) == 0 ? INFINITY : -INFINITY;
      }
    }
    std::vector<const float*> inputs;
    for (const auto& pixel : x) inputs.push_back(pixel.data());
    std::vector<float> input_sums(positions), scale(outputs), beta(outputs), bias(outputs);
    for (auto* v : {&input_sums, &scale, &beta, &bias}) {
      for (auto& f : *v) f = normal(rng);
    }
    const f32_channel_tile tile{weights.data(), channels, taps.data(), taps.size(), inputs.data(), positions, input_sums.data(),
                                scale.data(), beta.data(), bias.data(), outputs, nullptr, round % 2 == 0, kernel_taps * padded};
    INFO("set " << kernels.name << ", round " << round << ", positions " << positions << ", outputs " << outputs
                << ", channels " << channels << ", taps " << taps.size());
    require_same_f32_tile(tile, outputs, kernels.conv.f32_dot, conv_ref::f32_dot_tile_ref);
  }
}

// Random floats of every magnitude, and the values tanh_approx treats apart.
inline void check_tanh(const qgan::simd::kernel_set& kernels) {
  std::mt19937 rng(29);
  std::vector<float> in;
  for (int i = 0; i < 5000; ++i) in.push_back(std::bit_cast<float>(static_cast<std::uint32_t>(rng())));
  std::normal_distribution<float> normal(0.0f, 4.0f);
  for (int i = 0; i < 5000; ++i) in.push_back(normal(rng));
  for (const float x : {0.0f, -0.0f, 10.0f, -10.0f, 9.999999f, 10.000001f, INFINITY, -INFINITY,
                        std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::denorm_min()}) {
    in.push_back(x);
  }
  for (const std::size_t count : {in.size(), std::size_t{0}, std::size_t{1}, std::size_t{15}, std::size_t{17}, std::size_t{33}}) {
    std::vector<float> simd_out(count, -7.0f), ref_out(count, -7.0f);
    kernels.conv.tanh(in.data() + 3, simd_out.data(), count - std::min<std::size_t>(count, 3));
    qgan::simd::conv_ref::tanh_ref(in.data() + 3, ref_out.data(), count - std::min<std::size_t>(count, 3));
    INFO("set " << kernels.name << ", count " << count);
    // memcmp takes no null pointer, not even for 0 bytes (an empty vector may give one).
    REQUIRE((count == 0 || std::memcmp(simd_out.data(), ref_out.data(), count * sizeof(float)) == 0));
  }
  std::vector<float> in_place = in;  // out may be in
  kernels.conv.tanh(in_place.data(), in_place.data(), in_place.size());
  std::vector<float> ref_out(in.size());
  qgan::simd::conv_ref::tanh_ref(in.data(), ref_out.data(), in.size());
  REQUIRE(std::memcmp(in_place.data(), ref_out.data(), in.size() * sizeof(float)) == 0);
}

inline void check_conv_tiles(const qgan::simd::kernel_set& kernels) {
  check_tanh(kernels);
  check_a8_channel_tiles(kernels);
  check_a8_row_tiles(kernels);
  check_f32_channel_tiles(kernels);
  check_f32_dot_tiles(kernels);
}

}  // namespace qgan::test
