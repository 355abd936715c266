// Lookup-table (T-MAC style) against multiply (VNNI) kernels for 1- and 2-bit weights
// with 8-bit activations, batch 1 (a matrix-vector product, where tables may win): y[n] =
// sum_k z[n][k] * x[k] exactly, z in 0..2^bits-1, x unsigned bytes.
//   multiply: the packed layers' own scheme: 16 outputs x 4 inputs of codes per register,
//     decoded from the chunk layout (shift, mask) and multiplied with vpdpbusd against the
//     4 broadcast activations, 4 output blocks per pass.
//   lookup: per group of 4 activations, a 16-entry table of every subset sum (<= 1020,
//     built with SIMD and split into low and high bytes); each output's 4 bits of one bit
//     plane pick its entry with vpshufb, 64 outputs per instruction; bytes rejoined into
//     16-bit sums (flushed to 32 bits every 64 groups); 2 bits are two planes (z = b0 +
//     2 b1). Table building is timed with the lookups.
// Both are checked against a scalar loop before timing. Rounds alternate the two kernels;
// medians; the ratio is multiply time / lookup time (above 1: lookup faster).
// Needs AVX-512 BW and VNNI at compile time (-march=native on such a CPU).
//
//   bench_lut [--rounds R]
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "bench_common.hpp"

#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
#include <immintrin.h>

namespace {

using clock_type = std::chrono::steady_clock;

using qgan_bench::median;

// Multiply path. Codes in the chunk layout: per 16-output block and 32-input chunk,
// 64 * bits bytes; byte j of vector u (4 inputs) is output j / 4, input j % 4, bit planes
// as the packed layers store them (1 bit: bit u of byte j; 2 bits: bits 2(u%4) of byte
// 64(u/4) + j).
template <int Bits>
std::vector<std::uint8_t> chunk_layout(const std::vector<std::uint8_t>& z, std::size_t n_out, std::size_t k_in) {
  const std::size_t chunks = k_in / 32, blocks = n_out / 16;
  std::vector<std::uint8_t> w(blocks * chunks * 64 * Bits, 0);
  for (std::size_t b = 0; b < blocks; ++b) {
    for (std::size_t c = 0; c < chunks; ++c) {
      std::uint8_t* chunk = w.data() + (b * chunks + c) * 64 * Bits;
      for (std::size_t u = 0; u < 8; ++u) {
        for (std::size_t j = 0; j < 64; ++j) {
          const std::uint8_t code = z[(b * 16 + j / 4) * k_in + 32 * c + 4 * u + j % 4];
          if (Bits == 1) chunk[j] = static_cast<std::uint8_t>(chunk[j] | (code << u));
          else chunk[64 * (u / 4) + j] = static_cast<std::uint8_t>(chunk[64 * (u / 4) + j] | (code << (2 * (u % 4))));
        }
      }
    }
  }
  return w;
}

template <int Bits>
__m512i decode(const std::uint8_t* chunk, std::size_t u) {
  if constexpr (Bits == 1) {
    return _mm512_and_si512(_mm512_srli_epi16(_mm512_loadu_si512(chunk), static_cast<unsigned>(u)), _mm512_set1_epi8(1));
  } else {
    return _mm512_and_si512(_mm512_srli_epi16(_mm512_loadu_si512(chunk + 64 * (u / 4)), static_cast<unsigned>(2 * (u % 4))),
                            _mm512_set1_epi8(3));
  }
}

template <int Bits>
void gemv_multiply(const std::uint8_t* w, const std::uint8_t* x, std::size_t k_in, std::size_t n_out, std::int32_t* y) {
  const std::size_t chunks = k_in / 32, bytes = 64 * Bits;
  for (std::size_t b0 = 0; b0 < n_out / 16; b0 += 4) {
    __m512i acc[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512()};
    for (std::size_t c = 0; c < chunks; ++c) {
#pragma GCC unroll 8
      for (std::size_t u = 0; u < 8; ++u) {
        std::int32_t four;
        std::memcpy(&four, x + 32 * c + 4 * u, 4);
        const __m512i xs = _mm512_set1_epi32(four);
#pragma GCC unroll 4
        for (std::size_t j = 0; j < 4; ++j) {
          acc[j] = _mm512_dpbusd_epi32(acc[j], xs, decode<Bits>(w + ((b0 + j) * chunks + c) * bytes, u));
        }
      }
    }
    for (std::size_t j = 0; j < 4; ++j) _mm512_storeu_si512(y + (b0 + j) * 16, acc[j]);
  }
}

// Lookup path. Per 64-output block, group of 4 inputs and bit plane: 32 bytes, byte i
// holding output i's 4 bits (bit j: input 4g + j) in its low nibble and output i + 32's in
// its high nibble.
template <int Bits>
std::vector<std::uint8_t> nibble_layout(const std::vector<std::uint8_t>& z, std::size_t n_out, std::size_t k_in) {
  const std::size_t groups = k_in / 4, blocks = n_out / 64;
  std::vector<std::uint8_t> w(blocks * groups * Bits * 32, 0);
  for (std::size_t b = 0; b < blocks; ++b) {
    for (std::size_t g = 0; g < groups; ++g) {
      for (int plane = 0; plane < Bits; ++plane) {
        std::uint8_t* out = w.data() + ((b * groups + g) * Bits + static_cast<std::size_t>(plane)) * 32;
        for (std::size_t i = 0; i < 64; ++i) {
          unsigned nibble = 0;
          for (std::size_t j = 0; j < 4; ++j) nibble |= ((z[(b * 64 + i) * k_in + 4 * g + j] >> plane) & 1u) << j;
          out[i % 32] = static_cast<std::uint8_t>(out[i % 32] | (i < 32 ? nibble : nibble << 4));
        }
      }
    }
  }
  return w;
}

// Tables of every group: 64 bytes of low bytes and 64 of high bytes (the 16 entries in
// each 128-bit lane).
void build_tables(const std::uint8_t* x, std::size_t groups, std::uint8_t* tables) {
  // Bit j of each entry index, as 16-bit lanes.
  const __m256i bit0 = _mm256_setr_epi16(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1);
  const __m256i bit1 = _mm256_setr_epi16(0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1);
  const __m256i bit2 = _mm256_setr_epi16(0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1);
  const __m256i bit3 = _mm256_setr_epi16(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
  for (std::size_t g = 0; g < groups; ++g) {
    const __m256i t = _mm256_add_epi16(
        _mm256_add_epi16(_mm256_mullo_epi16(bit0, _mm256_set1_epi16(x[4 * g])), _mm256_mullo_epi16(bit1, _mm256_set1_epi16(x[4 * g + 1]))),
        _mm256_add_epi16(_mm256_mullo_epi16(bit2, _mm256_set1_epi16(x[4 * g + 2])), _mm256_mullo_epi16(bit3, _mm256_set1_epi16(x[4 * g + 3]))));
    const __m128i low = _mm256_cvtepi16_epi8(_mm256_and_si256(t, _mm256_set1_epi16(0xff)));
    const __m128i high = _mm256_cvtepi16_epi8(_mm256_srli_epi16(t, 8));
    _mm512_storeu_si512(tables + 128 * g, _mm512_broadcast_i32x4(low));
    _mm512_storeu_si512(tables + 128 * g + 64, _mm512_broadcast_i32x4(high));
  }
}

template <int Bits>
void gemv_lookup(const std::uint8_t* w, const std::uint8_t* x, std::size_t k_in, std::size_t n_out, std::int32_t* y,
                 std::uint8_t* tables) {
  const std::size_t groups = k_in / 4;
  build_tables(x, groups, tables);
  const __m512i nibble = _mm512_set1_epi8(0x0f);
  for (std::size_t b = 0; b < n_out / 64; ++b) {
    // 32-bit sums of the 64 outputs in the unpack order (see the store below).
    __m512i total[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512()};
    for (std::size_t g0 = 0; g0 < groups; g0 += 64) {
      __m512i sum[Bits][2];
      for (int plane = 0; plane < Bits; ++plane) sum[plane][0] = sum[plane][1] = _mm512_setzero_si512();
      const std::size_t g_end = std::min(groups, g0 + 64);
      for (std::size_t g = g0; g < g_end; ++g) {
        const __m512i low = _mm512_loadu_si512(tables + 128 * g), high = _mm512_loadu_si512(tables + 128 * g + 64);
#pragma GCC unroll 2
        for (int plane = 0; plane < Bits; ++plane) {
          const __m256i packed = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + ((b * groups + g) * Bits + static_cast<std::size_t>(plane)) * 32));
          const __m512i wide = _mm512_inserti64x4(_mm512_castsi256_si512(packed), _mm256_srli_epi16(packed, 4), 1);
          const __m512i index = _mm512_and_si512(wide, nibble);
          const __m512i lo = _mm512_shuffle_epi8(low, index), hi = _mm512_shuffle_epi8(high, index);
          sum[plane][0] = _mm512_add_epi16(sum[plane][0], _mm512_unpacklo_epi8(lo, hi));
          sum[plane][1] = _mm512_add_epi16(sum[plane][1], _mm512_unpackhi_epi8(lo, hi));
        }
      }
      for (int plane = 0; plane < Bits; ++plane) {
        for (int half = 0; half < 2; ++half) {
          const __m512i words = sum[plane][half];
          const __m512i a = _mm512_cvtepu16_epi32(_mm512_castsi512_si256(words));
          const __m512i c = _mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(words, 1));
          const int shift = plane;
          total[2 * half] = _mm512_add_epi32(total[2 * half], _mm512_slli_epi32(a, static_cast<unsigned>(shift)));
          total[2 * half + 1] = _mm512_add_epi32(total[2 * half + 1], _mm512_slli_epi32(c, static_cast<unsigned>(shift)));
        }
      }
    }
    // Word w of unpacklo in 128-bit lane L is byte 8L... : output 16L + w (w < 8); unpackhi
    // gives 16L + 8 + w. After widening, total[2*half] holds lanes 0-1, total[2*half+1] lanes 2-3.
    alignas(64) std::int32_t part[4][16];
    for (int i = 0; i < 4; ++i) _mm512_store_si512(part[i], total[i]);
    for (int half = 0; half < 2; ++half) {
      for (int q = 0; q < 2; ++q) {
        for (int e = 0; e < 16; ++e) {
          const int lane = 2 * q + e / 8, word = e % 8;
          y[b * 64 + static_cast<std::size_t>(16 * lane + 8 * half + word)] = part[2 * half + q][e];
        }
      }
    }
  }
}

template <int Bits>
void run_shape(std::size_t k_in, std::size_t n_out, int rounds) {
  std::mt19937 rng(static_cast<unsigned>(k_in * 131 + n_out + Bits));
  std::uniform_int_distribution<int> code(0, (1 << Bits) - 1), byte(0, 255);
  std::vector<std::uint8_t> z(n_out * k_in), x(k_in);
  for (auto& v : z) v = static_cast<std::uint8_t>(code(rng));
  for (auto& v : x) v = static_cast<std::uint8_t>(byte(rng));
  std::vector<std::int32_t> expected(n_out, 0), by_multiply(n_out), by_lookup(n_out);
  for (std::size_t n = 0; n < n_out; ++n) {
    for (std::size_t k = 0; k < k_in; ++k) expected[n] += std::int32_t{z[n * k_in + k]} * std::int32_t{x[k]};
  }
  const auto chunked = chunk_layout<Bits>(z, n_out, k_in);
  const auto nibbles = nibble_layout<Bits>(z, n_out, k_in);
  std::vector<std::uint8_t> tables(k_in / 4 * 128);
  gemv_multiply<Bits>(chunked.data(), x.data(), k_in, n_out, by_multiply.data());
  gemv_lookup<Bits>(nibbles.data(), x.data(), k_in, n_out, by_lookup.data(), tables.data());
  if (by_multiply != expected || by_lookup != expected) {
    std::printf("MISMATCH at %zu x %zu, %d bits: multiply %s, lookup %s\n", k_in, n_out, Bits,
                by_multiply == expected ? "ok" : "wrong", by_lookup == expected ? "ok" : "wrong");
    std::exit(1);
  }
  // Repetitions per measurement: about 100k multiply-adds' worth at least.
  const int inner = static_cast<int>(std::max<std::size_t>(1, (1u << 22) / (k_in * n_out)));
  std::vector<double> multiply, lookup;
  for (int r = 0; r < rounds; ++r) {
    auto start = clock_type::now();
    for (int i = 0; i < inner; ++i) gemv_multiply<Bits>(chunked.data(), x.data(), k_in, n_out, by_multiply.data());
    multiply.push_back(std::chrono::duration<double>(clock_type::now() - start).count() / inner);
    start = clock_type::now();
    for (int i = 0; i < inner; ++i) gemv_lookup<Bits>(nibbles.data(), x.data(), k_in, n_out, by_lookup.data(), tables.data());
    lookup.push_back(std::chrono::duration<double>(clock_type::now() - start).count() / inner);
  }
  const double m = median(multiply), l = median(lookup);
  std::printf("| %d | %zu | %zu | %.2f | %.2f | %.2fx |\n", Bits, k_in, n_out, m * 1e6, l * 1e6, m / l);
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 15;
  if (argc == 3 && std::string(argv[1]) == "--rounds") rounds = std::stoi(argv[2]);
  else if (argc != 1) {
    std::fprintf(stderr, "usage: bench_lut [--rounds R]\n");
    return 2;
  }
  std::printf("batch 1, 1 thread, median of %d alternating rounds; results checked against a scalar loop\n\n", rounds);
  std::printf("| bits | inputs K | outputs N | multiply (VNNI) us | lookup (T-MAC style) us | multiply / lookup |\n");
  std::printf("| ---: | ---: | ---: | ---: | ---: | ---: |\n");
  for (const std::size_t k : {128u, 256u, 1024u, 4096u}) {
    for (const std::size_t n : {64u, 256u, 1024u}) {
      run_shape<1>(k, n, rounds);
      run_shape<2>(k, n, rounds);
    }
  }
  return 0;
}
#else
int main() {
  std::puts("bench_lut: needs AVX-512 BW and VNNI at compile time (build with -march=native on such a CPU)");
  return 0;
}
#endif
