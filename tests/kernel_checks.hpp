// Checks of one kernel set (qgan/simd/tables.hpp) against the scalar references: sizes
// 0..4099 (every size up to 300, then a stride), unaligned starts, every bit width 1..8,
// and one output long enough for streaming stores. Everything is compared bit for bit:
// codes, decoded floats and every sum (qgan/simd/kernel_types.hpp fixes their order).
// Used by the static-selection tests (test_kernels.cpp) and by the run-time-dispatch
// tests (test_dispatch.cpp).
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "qgan/pack/canonical.hpp"
#include "qgan/quant/reductions_ref.hpp"
#include "qgan/simd/tables.hpp"
#include "conv_tile_checks.hpp"
#include "weights.hpp"

namespace qgan::test {

inline std::vector<std::size_t> sweep_sizes() {
  std::vector<std::size_t> sizes;
  for (std::size_t n = 0; n <= 300; ++n) sizes.push_back(n);
  for (std::size_t n = 301; n <= 4099; n += 97) sizes.push_back(n);
  sizes.push_back(4095);
  sizes.push_back(4096);
  sizes.push_back(4099);
  return sizes;
}

inline bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

inline std::vector<std::uint8_t> random_codes(std::size_t count, int bits, std::uint32_t seed) {
  std::mt19937 generator(seed);
  std::uniform_int_distribution<int> code(0, (1 << bits) - 1);
  std::vector<std::uint8_t> codes(count);
  for (auto& value : codes) value = static_cast<std::uint8_t>(code(generator));
  return codes;
}

inline void check_pack_unpack(const qgan::simd::kernel_set& kernels) {
  INFO("kernel set " << kernels.name);
  for (int bits = 1; bits <= 8; ++bits) {
    for (const std::size_t count : sweep_sizes()) {
      const auto codes = random_codes(count, bits, static_cast<std::uint32_t>(count * 8 + std::size_t(bits)));
      const std::size_t bytes = qgan::pack::packed_size(count, bits);
      std::vector<std::uint8_t> simd_packed(bytes + 1, 0xAB), ref_packed(bytes + 1, 0xAB);
      kernels.codec.pack_codes(codes.data(), count, bits, simd_packed.data());
      qgan::pack::pack_ref(codes.data(), count, bits, ref_packed.data());
      INFO(bits << " bits, " << count << " codes");
      REQUIRE(simd_packed == ref_packed);  // the guard byte past the end is untouched too
      const std::size_t first = count % 7;  // an unaligned start
      const std::size_t length = count - first;
      std::vector<std::uint8_t> simd_codes(length), ref_codes(length);
      kernels.codec.unpack(ref_packed.data(), first, length, bits, simd_codes.data());
      qgan::pack::unpack_ref(ref_packed.data(), first, length, bits, ref_codes.data());
      REQUIRE(simd_codes == ref_codes);
      REQUIRE(std::equal(ref_codes.begin(), ref_codes.end(), codes.begin() + std::ptrdiff_t(first)));
    }
  }
}

inline void check_dequantize(const qgan::simd::kernel_set& kernels) {
  INFO("kernel set " << kernels.name);
  for (int bits = 1; bits <= 8; ++bits) {
    const qgan::uniform_params grid{.alpha = 0.00731f, .beta = -0.0917f, .bits = bits};
    for (const std::size_t count : sweep_sizes()) {
      const auto codes = random_codes(count, bits, static_cast<std::uint32_t>(count + 1000));
      std::vector<std::uint8_t> packed(qgan::pack::packed_size(count, bits));
      qgan::pack::pack_ref(codes.data(), count, bits, packed.data());
      const std::size_t first = (count * 3) % 11 < count ? (count * 3) % 11 : 0;
      const std::size_t length = count - first;
      std::vector<float> simd_values(length + 1, -7.0f), ref_values(length + 1, -7.0f);
      kernels.codec.dequantize_uniform(packed.data(), first, length, bits, grid, simd_values.data());
      qgan::pack::dequantize_uniform_ref(packed.data(), first, length, bits, grid, ref_values.data());
      INFO(bits << " bits, " << count << " codes from " << first);
      REQUIRE(same_bits(simd_values, ref_values));  // the guard float past the end included
    }
  }
}

inline void check_streaming_dequantize(const qgan::simd::kernel_set& kernels) {
  INFO("kernel set " << kernels.name);
  const std::size_t count = kernels.codec.streaming_threshold + 77;
  for (const int bits : {2, 3}) {
    const auto codes = random_codes(count + 5, bits, 3);
    std::vector<std::uint8_t> packed(qgan::pack::packed_size(count + 5, bits));
    qgan::pack::pack_ref(codes.data(), count + 5, bits, packed.data());
    const qgan::uniform_params grid{.alpha = 0.0131f, .beta = -0.02f, .bits = bits};
    std::vector<float> ref_values(count);
    qgan::pack::dequantize_uniform_ref(packed.data(), 5, count, bits, grid, ref_values.data());
    // Every output offset within a register: both the direct streaming path (a code word
    // starts on a register boundary) and the chunked one are taken.
    std::vector<float> simd_values(count + 64);
    const std::size_t boundary = (64 - reinterpret_cast<std::uintptr_t>(simd_values.data()) % 64) % 64 / 4;
    for (std::size_t shift = 0; shift < 16; shift += 3) {
      float* out = simd_values.data() + boundary + shift;
      kernels.codec.dequantize_uniform(packed.data(), 5, count, bits, grid, out);
      INFO(bits << " bits, output shifted " << shift);
      CHECK(std::memcmp(out, ref_values.data(), count * sizeof(float)) == 0);
    }
  }
}

inline void check_encode_minmax(const qgan::simd::kernel_set& kernels) {
  INFO("kernel set " << kernels.name);
  for (const std::size_t count : sweep_sizes()) {
    auto values = qgan::test::make_weights(qgan::test::family::laplacian, count + 3, 77);
    const float* start = values.data() + 3;  // not aligned to a register
    for (int bits = 1; bits <= 8; ++bits) {
      const qgan::uniform_params grid{.alpha = 0.011f, .beta = -0.043f, .bits = bits};
      std::vector<std::uint8_t> simd_codes(count), ref_codes(count);
      kernels.codec.encode_uniform(start, count, grid, simd_codes.data());
      qgan::detail::encode_uniform_ref(start, count, grid, ref_codes.data());
      INFO(bits << " bits, " << count << " values");
      REQUIRE(simd_codes == ref_codes);
    }
    if (count == 0) continue;
    float simd_low = start[0], simd_high = start[0], ref_low = start[0], ref_high = start[0];
    kernels.reductions.minmax(start, count, simd_low, simd_high);
    qgan::detail::minmax_ref(start, count, ref_low, ref_high);
    REQUIRE(simd_low == ref_low);
    REQUIRE(simd_high == ref_high);
  }
}

// Every sum bit for bit: the reference fixes the order (16 virtual lanes, one tree).
inline void require_em_sums_match(const qgan::simd::em_sums& fast, const qgan::simd::em_sums& exact) {
  REQUIRE(fast.code_sum == exact.code_sum);
  REQUIRE(fast.code_square_sum == exact.code_square_sum);
  REQUIRE(std::memcmp(&fast.squared_error, &exact.squared_error, sizeof(double)) == 0);
  REQUIRE(std::memcmp(&fast.cross, &exact.cross, sizeof(double)) == 0);
}

inline void check_reductions(const qgan::simd::kernel_set& kernels) {
  INFO("kernel set " << kernels.name);
  for (const std::size_t count : sweep_sizes()) {
    const auto values = qgan::test::make_weights(qgan::test::family::laplacian, count + 1, 31);
    const float* start = values.data() + 1;
    const auto fast = kernels.reductions.summarize(start, count);
    const auto exact = qgan::detail::summarize_ref(start, count);
    INFO(count << " values");
    REQUIRE(fast.lowest == exact.lowest);
    REQUIRE(fast.highest == exact.highest);
    REQUIRE(std::memcmp(&fast.sum, &exact.sum, sizeof(double)) == 0);
    const double mean = 0.00123;
    const double fast_squares = kernels.reductions.centred_square_sum(start, count, mean);
    const double exact_squares = qgan::detail::centred_square_sum_ref(start, count, mean);
    REQUIRE(std::memcmp(&fast_squares, &exact_squares, sizeof(double)) == 0);
  }
}

inline void check_em_pass(const qgan::simd::kernel_set& kernels) {
  INFO("kernel set " << kernels.name);
  for (const std::size_t count : sweep_sizes()) {
    const auto values = qgan::test::make_weights(qgan::test::family::gaussian, count, 5);
    for (int bits = 1; bits <= 8; bits += 1) {
      const qgan::uniform_params grid{.alpha = 0.04f / float((1 << bits) - 1), .beta = -0.02f, .bits = bits};
      const auto fast = kernels.em.em_pass(values.data(), count, grid);
      INFO(bits << " bits, " << count << " values");
      require_em_sums_match(fast, qgan::detail::em_pass_ref(values.data(), count, grid));
    }
  }
}

// Every weight on the top code of an 8-bit grid: the largest code sums a kernel can meet,
// long enough that a float accumulator kept too long would lose bits.
inline void check_em_pass_top_codes(const qgan::simd::kernel_set& kernels) {
  INFO("kernel set " << kernels.name);
  const qgan::uniform_params grid{.alpha = 0.01f, .beta = -1.0f, .bits = 8};
  const std::vector<float> values(70001, 1.55f);
  require_em_sums_match(kernels.em.em_pass(values.data(), values.size(), grid),
                        qgan::detail::em_pass_ref(values.data(), values.size(), grid));
}

// Weights within a few ulp of the decision boundaries z + 1/2 of a grid whose step is not
// a power of two: there the multiply by 1/alpha and the reference's division can round to
// different codes, so this drives every register through em_pass's division fallback.
inline void check_em_pass_near_ties(const qgan::simd::kernel_set& kernels) {
  INFO("kernel set " << kernels.name);
  std::mt19937 generator(17);
  for (int bits = 1; bits <= 8; ++bits) {
    const qgan::uniform_params grid{.alpha = 0.04f / float((1 << bits) - 1) * 1.0001f, .beta = -0.02f,
                                    .bits = bits};
    std::uniform_int_distribution<std::uint32_t> boundary(0, qgan::detail::top_code(bits) - 1);
    std::uniform_int_distribution<int> ulps(-3, 3);
    std::vector<float> values(1000 + std::size_t(bits));  // and a tail
    for (float& value : values) {
      value = std::fma(grid.alpha, float(boundary(generator)) + 0.5f, grid.beta);
      for (int step = ulps(generator); step != 0; step += step > 0 ? -1 : 1) {
        value = std::nextafter(value, step > 0 ? 1.0f : -1.0f);
      }
    }
    const auto fast = kernels.em.em_pass(values.data(), values.size(), grid);
    INFO(bits << " bits");
    require_em_sums_match(fast, qgan::detail::em_pass_ref(values.data(), values.size(), grid));
  }
}

inline void check_all_kernels(const qgan::simd::kernel_set& kernels) {
  check_pack_unpack(kernels);
  check_dequantize(kernels);
  check_streaming_dequantize(kernels);
  check_encode_minmax(kernels);
  check_reductions(kernels);
  check_em_pass(kernels);
  check_em_pass_top_codes(kernels);
  check_em_pass_near_ties(kernels);
  check_conv_tiles(kernels);
}

}  // namespace qgan::test
