// Packed-compute kernels of one instruction set (math in qgan/simd/conv_types.hpp). No
// #include and no namespace (see reductions_body.inl).
//
// 8-bit activations: AVX-512 VNNI's vpdpbusd multiplies unsigned bytes (activations:
// post-ReLU values, or the latent with its zero point) by signed bytes (codes: k <= 7 bits
// as they are, 8-bit codes minus 128) and adds groups of 4 into int32 lanes, which cannot
// overflow within the reduction lengths the layer allows. Channel tiles keep 16 output
// channels in the lanes and broadcast 4 input channels of one position; row tiles keep 16
// positions in the lanes (one masked load per tap when they are consecutive pixels, a
// gather otherwise) and broadcast 4 codes of one output channel, for layers with few
// output channels. AVX2 has channel tiles of its own and NEON both kinds (below); other
// sets and tiles run the scalar reference compiled with their flags.
// fp32 activations: sums of decoded weights times activations, 16 channels x up to 8
// positions, one multiply and one add per term in a fixed order on every set.

template <class Arch>
struct conv_kernels {
#if defined(__AVX512VNNI__) && defined(__AVX512BW__) && defined(__AVX512F__)
  static constexpr bool vnni = true;

  static __m512i broadcast_dword(const std::uint8_t* at) noexcept {
    std::int32_t value;
    std::memcpy(&value, at, sizeof value);
    return _mm512_set1_epi32(value);
  }

  static __m512 int_output(__m512i acc, std::int32_t q_sum, std::int32_t count, __m512i z_sum,
                           __m512 sa, __m512 sb, __m512 bias, const int_epilogue& e) noexcept {
    __m512i a = _mm512_add_epi32(acc, _mm512_set1_epi32(e.code_offset * q_sum));
    a = _mm512_sub_epi32(a, _mm512_mullo_epi32(_mm512_set1_epi32(e.zero_point), z_sum));
    const __m512 b = _mm512_set1_ps(static_cast<float>(q_sum - e.zero_point * count));
    return _mm512_fmadd_ps(sa, _mm512_cvtepi32_ps(a), _mm512_fmadd_ps(sb, b, bias));
  }

  static __m512i requantize(__m512 y, const tile_output& out) noexcept {
    const __m512 scaled = _mm512_mul_ps(y, _mm512_set1_ps(out.inverse_scale));
    __m512 r = _mm512_add_ps(_mm512_roundscale_ps(scaled, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC),
                             _mm512_set1_ps(static_cast<float>(out.zero_point)));
    r = _mm512_max_ps(r, _mm512_setzero_ps());  // NaN -> 0, as the reference
    r = _mm512_min_ps(r, _mm512_set1_ps(255.0f));
    return _mm512_cvtps_epi32(r);
  }

  // Codes of vector u (0..7) of a chunk at storage width Bits (layout: conv_ref.hpp).
  template <int Bits>
  static __m512i chunk_vector(const std::uint8_t* chunk, std::size_t u) noexcept {
    if constexpr (Bits == 1) {
      return _mm512_and_si512(_mm512_srli_epi16(_mm512_loadu_si512(chunk), static_cast<unsigned>(u)), _mm512_set1_epi8(1));
    } else if constexpr (Bits == 2) {
      return _mm512_and_si512(_mm512_srli_epi16(_mm512_loadu_si512(chunk + 64 * (u / 4)), static_cast<unsigned>(2 * (u % 4))),
                              _mm512_set1_epi8(3));
    } else if constexpr (Bits == 3) {
      const __m512i low = _mm512_and_si512(
          _mm512_srli_epi16(_mm512_loadu_si512(chunk + 64 * (u / 4)), static_cast<unsigned>(2 * (u % 4))), _mm512_set1_epi8(3));
      const __m512i high = _mm512_loadu_si512(chunk + 128);
      // bit u of the high block to bit 2: shift left by 2 - u or right by u - 2.
      const __m512i moved = u <= 2 ? _mm512_slli_epi16(high, static_cast<unsigned>(2 - u))
                                   : _mm512_srli_epi16(high, static_cast<unsigned>(u - 2));
      return _mm512_or_si512(low, _mm512_and_si512(moved, _mm512_set1_epi8(4)));
    } else if constexpr (Bits == 4) {
      return _mm512_and_si512(_mm512_srli_epi16(_mm512_loadu_si512(chunk + 64 * (u / 2)), static_cast<unsigned>(4 * (u % 2))),
                              _mm512_set1_epi8(15));
    } else {
      return _mm512_loadu_si512(chunk + 64 * u);
    }
  }

  // One 4-channel step of every position and block: the accumulators stay in registers
  // because P, MB and the vector index are compile-time after unrolling.
  template <std::size_t P, std::size_t MB>
  static inline __attribute__((always_inline)) void dot_step(__m512i (&acc)[MB][P], const std::uint8_t* const (&in)[P],
                                                           std::size_t offset, const __m512i (&codes)[MB]) noexcept {
#pragma GCC unroll 8
    for (std::size_t p = 0; p < P; ++p) {
      std::int32_t x;
      std::memcpy(&x, in[p] + offset, sizeof x);
      const __m512i broadcast = _mm512_set1_epi32(x);
#pragma GCC unroll 4
      for (std::size_t j = 0; j < MB; ++j) acc[j][p] = _mm512_dpbusd_epi32(acc[j][p], broadcast, codes[j]);
    }
  }

  template <std::size_t P, std::size_t MB, int Bits>
  static inline __attribute__((always_inline)) void chunk_step(__m512i (&acc)[MB][P], const std::uint8_t* const (&in)[P],
                                                             const std::uint8_t* w, std::size_t block_bytes, std::size_t c,
                                                             std::size_t u) noexcept {
    constexpr std::size_t bytes_per_chunk = 64 * static_cast<std::size_t>(Bits);
    __m512i codes[MB];
#pragma GCC unroll 4
    for (std::size_t j = 0; j < MB; ++j) codes[j] = chunk_vector<Bits>(w + j * block_bytes + c * bytes_per_chunk, u);
    dot_step<P, MB>(acc, in, 32 * c + 4 * u, codes);
  }

  template <std::size_t P, std::size_t MB, int Bits>
  static inline __attribute__((always_inline)) void a8_channel_sums(const a8_channel_tile& t, const std::uint8_t* weights,
                                                                  __m512i (&acc)[MB][P]) noexcept {
    const std::size_t whole = t.vectors / 8, rest = t.vectors % 8;
    for (std::size_t tap = 0; tap < t.tap_count; ++tap) {
      const std::uint8_t* w = weights + t.taps[tap] * t.tap_bytes;
      const std::uint8_t* in[P];
#pragma GCC unroll 8
      for (std::size_t p = 0; p < P; ++p) in[p] = t.inputs[tap * P + p];
      for (std::size_t c = 0; c < whole; ++c) {
#pragma GCC unroll 8
        for (std::size_t u = 0; u < 8; ++u) chunk_step<P, MB, Bits>(acc, in, w, t.block_bytes, c, u);
      }
      for (std::size_t u = 0; u < rest; ++u) chunk_step<P, MB, Bits>(acc, in, w, t.block_bytes, whole, u);
    }
  }

  template <std::size_t P, std::size_t MB>
  static void a8_channel_group(const a8_channel_tile& t, std::size_t first_block) noexcept {
    __m512i acc[MB][P];
    for (std::size_t j = 0; j < MB; ++j) {
      for (std::size_t p = 0; p < P; ++p) acc[j][p] = _mm512_setzero_si512();
    }
    const std::uint8_t* weights = t.weights + first_block * t.block_bytes;
    switch (t.storage_bits) {
      case 1: a8_channel_sums<P, MB, 1>(t, weights, acc); break;
      case 2: a8_channel_sums<P, MB, 2>(t, weights, acc); break;
      case 3: a8_channel_sums<P, MB, 3>(t, weights, acc); break;
      case 4: a8_channel_sums<P, MB, 4>(t, weights, acc); break;
      default: a8_channel_sums<P, MB, 8>(t, weights, acc); break;
    }
    for (std::size_t j = 0; j < MB; ++j) {
      const std::size_t block = first_block + j;
      const std::size_t terms = block * t.terms_stride;
      const __m512 sa = _mm512_loadu_ps(t.epilogue.alpha_scale + terms), sb = _mm512_loadu_ps(t.epilogue.beta_scale + terms);
      const __m512 bias = _mm512_loadu_ps(t.epilogue.bias + terms);
      const std::size_t lanes = block + 1 == t.blocks ? t.lanes : tile_lanes;
      const auto lane_mask = static_cast<__mmask16>((1u << lanes) - 1u);
      for (std::size_t p = 0; p < P; ++p) {
        const __m512i z_sum = t.code_sums != nullptr ? _mm512_loadu_si512(t.code_sums + (block * P + p) * tile_lanes)
                                                     : _mm512_setzero_si512();
        const __m512 y = int_output(acc[j][p], t.input_sums[p], t.input_counts[p], z_sum, sa, sb, bias, t.epilogue);
        void* destination = static_cast<std::uint8_t*>(t.outputs[p]) + block * t.block_output_bytes;
        if (t.output.to_u8) {
          const __m128i bytes = _mm512_cvtepi32_epi8(requantize(y, t.output));
          auto* out = static_cast<std::uint8_t*>(destination);
          if (t.output.quad_stride == 4) {
            _mm_mask_storeu_epi8(out, lane_mask, bytes);
          } else {
            alignas(16) std::uint8_t quads[16];
            _mm_store_si128(reinterpret_cast<__m128i*>(quads), bytes);
            std::size_t o = 0;
            for (; o + 4 <= lanes; o += 4) std::memcpy(out + (o / 4) * t.output.quad_stride, quads + o, 4);
            for (; o < lanes; ++o) out[(o / 4) * t.output.quad_stride + o % 4] = quads[o];
          }
        } else {
          const __m512 stored =
              t.output.relu ? _mm512_maskz_mov_ps(static_cast<__mmask16>(~_mm512_cmp_ps_mask(y, _mm512_setzero_ps(), _CMP_LT_OQ)), y)
                            : y;
          _mm512_mask_storeu_ps(static_cast<float*>(destination), lane_mask, stored);
        }
      }
    }
  }

  // Blocks in groups of 2 (4 for tiles of up to 3 positions), so that every broadcast
  // feeds several dot products and short tiles still have independent accumulators.
  template <std::size_t P>
  static void a8_channel_vnni(const a8_channel_tile& t) noexcept {
    constexpr std::size_t group = P <= 3 ? 4 : 2;
    std::size_t block = 0;
    for (; block + group <= t.blocks; block += group) a8_channel_group<P, group>(t, block);
    for (; block < t.blocks; ++block) a8_channel_group<P, 1>(t, block);
  }

  // A accumulators per output (and for Q), taking the vectors in turn: one chain of
  // dependent vpdpbusd per tile left a one-output tile waiting on the instruction's
  // latency (the DCGAN's last layer ran at a third of the VNNI rate). Integer sums, so
  // the split does not change a bit.
  template <std::size_t O>
  static void a8_row_vnni(const a8_row_tile& t) noexcept {
    constexpr std::size_t A = O == 1 ? 4 : 2;
    __m512i acc[O][A], q_sums[A];
    for (std::size_t a = 0; a < A; ++a) {
      for (std::size_t o = 0; o < O; ++o) acc[o][a] = _mm512_setzero_si512();
      q_sums[a] = _mm512_setzero_si512();
    }
    __m512i count = _mm512_setzero_si512();
    const __m512i iota = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    const __m512i ones = _mm512_set1_epi8(1), group_in = _mm512_set1_epi32(static_cast<std::int32_t>(t.group_in));
    const auto lanes_mask = static_cast<__mmask16>((1u << t.lanes) - 1u);
    for (std::size_t tap = 0; tap < t.tap_count; ++tap) {
      const __m512i pixels = _mm512_loadu_si512(t.pixels + tap * 16);
      const __mmask16 valid = _mm512_mask_cmpge_epi32_mask(lanes_mask, pixels, _mm512_setzero_si512());
      if (valid == 0) continue;
      count = _mm512_mask_add_epi32(count, valid, count, group_in);
      const auto first_lane = static_cast<std::size_t>(__builtin_ctz(valid));
      const std::int32_t base = t.pixels[tap * 16 + first_lane] - static_cast<std::int32_t>(first_lane);
      const bool consecutive =
          _mm512_mask_cmpeq_epi32_mask(valid, pixels, _mm512_add_epi32(iota, _mm512_set1_epi32(base))) == valid;
      const std::int8_t* w = t.weights + t.taps[tap] * t.vectors * 4;
      const auto step = [&](std::size_t v, std::size_t a) __attribute__((always_inline)) {
        const std::uint8_t* plane = t.input + v * t.plane_bytes;
        const __m512i x = consecutive ? _mm512_maskz_loadu_epi32(valid, plane + static_cast<std::ptrdiff_t>(base) * 4)
                                      : _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), valid, pixels, plane, 4);
        q_sums[a] = _mm512_dpbusd_epi32(q_sums[a], x, ones);
        for (std::size_t o = 0; o < O; ++o) {
          acc[o][a] = _mm512_dpbusd_epi32(
              acc[o][a], x, broadcast_dword(reinterpret_cast<const std::uint8_t*>(w + (o * t.weight_tap_count * t.vectors + v) * 4)));
        }
      };
      std::size_t v = 0;
      for (; v + A <= t.vectors; v += A) {
#pragma GCC unroll 4
        for (std::size_t a = 0; a < A; ++a) step(v + a, a);
      }
      for (; v < t.vectors; ++v) step(v, 0);
    }
    __m512i q_sum = q_sums[0];
    for (std::size_t a = 1; a < A; ++a) q_sum = _mm512_add_epi32(q_sum, q_sums[a]);
    const int_epilogue& e = t.epilogue;
    const __m512 b = _mm512_cvtepi32_ps(_mm512_sub_epi32(q_sum, _mm512_mullo_epi32(_mm512_set1_epi32(e.zero_point), count)));
    alignas(64) std::int32_t out_pixels[16];
    _mm512_store_si512(out_pixels, _mm512_maskz_loadu_epi32(lanes_mask, t.out_pixels));
    for (std::size_t o = 0; o < O; ++o) {
      __m512i sum = acc[o][0];
      for (std::size_t k = 1; k < A; ++k) sum = _mm512_add_epi32(sum, acc[o][k]);
      __m512i a = _mm512_add_epi32(sum, _mm512_mullo_epi32(_mm512_set1_epi32(e.code_offset), q_sum));
      if (t.code_sums != nullptr) {
        a = _mm512_sub_epi32(a, _mm512_mullo_epi32(_mm512_set1_epi32(e.zero_point), _mm512_loadu_si512(t.code_sums + o * 16)));
      }
      const __m512 y = _mm512_fmadd_ps(_mm512_set1_ps(e.alpha_scale[o]), _mm512_cvtepi32_ps(a),
                                       _mm512_fmadd_ps(_mm512_set1_ps(e.beta_scale[o]), b, _mm512_set1_ps(e.bias[o])));
      if (t.output.to_u8) {
        alignas(64) std::int32_t q[16];
        _mm512_store_si512(q, requantize(y, t.output));
        auto* out = static_cast<std::uint8_t*>(t.output_base) + o * t.output_stride;
        for (std::size_t lane = 0; lane < t.lanes; ++lane) {
          out[static_cast<std::size_t>(out_pixels[lane]) * t.pixel_stride] = static_cast<std::uint8_t>(q[lane]);
        }
      } else {
        const __m512 stored =
            t.output.relu ? _mm512_maskz_mov_ps(static_cast<__mmask16>(~_mm512_cmp_ps_mask(y, _mm512_setzero_ps(), _CMP_LT_OQ)), y) : y;
        alignas(64) float values[16];
        _mm512_store_ps(values, stored);
        float* out = static_cast<float*>(t.output_base) + o * t.output_stride;
        for (std::size_t lane = 0; lane < t.lanes; ++lane) out[static_cast<std::size_t>(out_pixels[lane]) * t.pixel_stride] = values[lane];
      }
    }
  }
#else
  static constexpr bool vnni = false;
#endif

#if defined(__AVX2__) && !(defined(__AVX512VNNI__) && defined(__AVX512BW__) && defined(__AVX512F__))
  // AVX2: codes and activations widened to 16 bits and multiplied with vpmaddwd, which
  // adds pairs into int32 and cannot overflow for any code width (vpmaddubsw would
  // saturate at 16 bits once 2*255*(2^k - 1) > 32767, i.e. for k > 6). Each call covers
  // 8 of a block's 16 channels (a half) so the accumulators fit the 16 registers; the
  // pair sums are folded and the epilogue is the reference's, so the bits are the same.
  template <int Bits>
  static __m256i half_vector(const std::uint8_t* chunk, std::size_t half, std::size_t u) noexcept {
    const auto load = [&](std::size_t block) {
      return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(chunk + 64 * block + 32 * half));
    };
    if constexpr (Bits == 1) {
      return _mm256_and_si256(_mm256_srli_epi16(load(0), static_cast<int>(u)), _mm256_set1_epi8(1));
    } else if constexpr (Bits == 2) {
      return _mm256_and_si256(_mm256_srli_epi16(load(u / 4), static_cast<int>(2 * (u % 4))), _mm256_set1_epi8(3));
    } else if constexpr (Bits == 3) {
      const __m256i low = _mm256_and_si256(_mm256_srli_epi16(load(u / 4), static_cast<int>(2 * (u % 4))), _mm256_set1_epi8(3));
      const __m256i high = load(2);
      const __m256i moved = u <= 2 ? _mm256_slli_epi16(high, static_cast<int>(2 - u)) : _mm256_srli_epi16(high, static_cast<int>(u - 2));
      return _mm256_or_si256(low, _mm256_and_si256(moved, _mm256_set1_epi8(4)));
    } else if constexpr (Bits == 4) {
      return _mm256_and_si256(_mm256_srli_epi16(load(u / 2), static_cast<int>(4 * (u % 2))), _mm256_set1_epi8(15));
    } else {
      return load(u);
    }
  }

  // Positions p0 .. p0 + P - 1 of the tile (at most 4: 8 accumulators, codes and the
  // broadcast fill AVX2's 16 registers).
  template <std::size_t P, int Bits>
  static void a8_half_sums(const a8_channel_tile& t, const std::uint8_t* weights, std::size_t half, std::size_t p0,
                           std::int32_t (&sums)[tile_positions][tile_lanes]) noexcept {
    constexpr std::size_t bytes_per_chunk = 64 * static_cast<std::size_t>(Bits);
    __m256i acc[P][2];
    for (std::size_t p = 0; p < P; ++p) acc[p][0] = acc[p][1] = _mm256_setzero_si256();
    for (std::size_t tap = 0; tap < t.tap_count; ++tap) {
      const std::uint8_t* w = weights + t.taps[tap] * t.tap_bytes;
      const std::uint8_t* in[P];
      for (std::size_t p = 0; p < P; ++p) in[p] = t.inputs[tap * t.positions + p0 + p];
      for (std::size_t v = 0; v < t.vectors; ++v) {
        const __m256i codes = half_vector<Bits>(w + (v / 8) * bytes_per_chunk, half, v % 8);
        const __m256i low = Bits == 8 ? _mm256_cvtepi8_epi16(_mm256_castsi256_si128(codes))
                                      : _mm256_cvtepu8_epi16(_mm256_castsi256_si128(codes));
        const __m256i high = Bits == 8 ? _mm256_cvtepi8_epi16(_mm256_extracti128_si256(codes, 1))
                                       : _mm256_cvtepu8_epi16(_mm256_extracti128_si256(codes, 1));
#pragma GCC unroll 8
        for (std::size_t p = 0; p < P; ++p) {
          std::int32_t x;
          std::memcpy(&x, in[p] + 4 * v, sizeof x);
          const __m256i words = _mm256_broadcastq_epi64(_mm_cvtepu8_epi16(_mm_cvtsi32_si128(x)));
          acc[p][0] = _mm256_add_epi32(acc[p][0], _mm256_madd_epi16(low, words));
          acc[p][1] = _mm256_add_epi32(acc[p][1], _mm256_madd_epi16(high, words));
        }
      }
    }
    for (std::size_t p = 0; p < P; ++p) {
      alignas(32) std::int32_t pairs[16];
      _mm256_store_si256(reinterpret_cast<__m256i*>(pairs), acc[p][0]);
      _mm256_store_si256(reinterpret_cast<__m256i*>(pairs + 8), acc[p][1]);
      for (std::size_t lane = 0; lane < 8; ++lane) sums[p0 + p][8 * half + lane] = pairs[2 * lane] + pairs[2 * lane + 1];
    }
  }

  template <std::size_t P>
  static void a8_half_group(const a8_channel_tile& t, const std::uint8_t* weights, std::size_t half, std::size_t p0,
                            std::int32_t (&sums)[tile_positions][tile_lanes]) noexcept {
    switch (t.storage_bits) {
      case 1: a8_half_sums<P, 1>(t, weights, half, p0, sums); break;
      case 2: a8_half_sums<P, 2>(t, weights, half, p0, sums); break;
      case 3: a8_half_sums<P, 3>(t, weights, half, p0, sums); break;
      case 4: a8_half_sums<P, 4>(t, weights, half, p0, sums); break;
      default: a8_half_sums<P, 8>(t, weights, half, p0, sums); break;
    }
  }

  template <std::size_t P>
  static void a8_channel_avx2(const a8_channel_tile& t) noexcept {
    constexpr std::size_t first = P < 4 ? P : 4;
    for (std::size_t block = 0; block < t.blocks; ++block) {
      std::int32_t sums[tile_positions][tile_lanes];
      const std::uint8_t* weights = t.weights + block * t.block_bytes;
      for (std::size_t half = 0; half < 2; ++half) {
        a8_half_group<first>(t, weights, half, 0, sums);
        if constexpr (P > 4) a8_half_group<P - 4>(t, weights, half, 4, sums);
      }
      conv_ref::a8_channel_block_outputs_ref<Arch>(t, block, sums);  // P == t.positions
    }
  }
#endif

#if defined(__aarch64__)
  // NEON: codes as unsigned bytes times unsigned activations. With the dot-product
  // extension (the neon64_dotprod set), UDOT adds the 4 products of one output channel
  // into its int32 lane; without it (neon64), UMULL widens 8 products to 16 bits (255 *
  // 255 fits) and UADALP adds pairs into int32 lanes, two lanes per output channel,
  // folded at the end. 8-bit storage holds z - offset as a signed byte: flipping its top
  // bit gives that value + 128, an unsigned byte, and 128 times the sum of the
  // activations multiplied comes off again. Sums wrap modulo 2^32 where the true value,
  // which fits int32 by the layer's bound, does not need to: the result is exact. The
  // epilogue is the reference's, so every set gives the same bits.
  template <int Bits>
  static uint8x16_t neon_codes(const std::uint8_t* chunk, std::size_t u, std::size_t r) noexcept {
    const auto load = [&](std::size_t block) { return vld1q_u8(chunk + 64 * block + 16 * r); };
    const auto right = [](uint8x16_t v, std::size_t shift) { return vshlq_u8(v, vdupq_n_s8(static_cast<std::int8_t>(-static_cast<int>(shift)))); };
    if constexpr (Bits == 1) {
      return vandq_u8(right(load(0), u), vdupq_n_u8(1));
    } else if constexpr (Bits == 2) {
      return vandq_u8(right(load(u / 4), 2 * (u % 4)), vdupq_n_u8(3));
    } else if constexpr (Bits == 3) {
      const uint8x16_t low = vandq_u8(right(load(u / 4), 2 * (u % 4)), vdupq_n_u8(3));
      const uint8x16_t high = vandq_u8(right(load(2), u), vdupq_n_u8(1));
      return vorrq_u8(low, vshlq_n_u8(high, 2));
    } else if constexpr (Bits == 4) {
      return vandq_u8(right(load(u / 2), 4 * (u % 2)), vdupq_n_u8(15));
    } else {
      return veorq_u8(load(u), vdupq_n_u8(0x80));
    }
  }

  // Sums of one block for positions p0 .. p0 + P - 1 into sums[p][16].
  template <std::size_t P, int Bits>
  static void neon_block_sums(const a8_channel_tile& t, const std::uint8_t* weights, std::size_t p0,
                              std::int32_t (&sums)[tile_positions][tile_lanes]) noexcept {
    constexpr std::size_t bytes_per_chunk = 64 * static_cast<std::size_t>(Bits);
#if defined(__ARM_FEATURE_DOTPROD)
    uint32x4_t acc[P][4];
    for (std::size_t p = 0; p < P; ++p) {
      for (std::size_t r = 0; r < 4; ++r) acc[p][r] = vdupq_n_u32(0);
    }
#else
    uint32x4_t acc[P][8];
    for (std::size_t p = 0; p < P; ++p) {
      for (std::size_t r = 0; r < 8; ++r) acc[p][r] = vdupq_n_u32(0);
    }
#endif
    std::uint32_t multiplied[P] = {};  // activations multiplied, for 8-bit storage
    for (std::size_t tap = 0; tap < t.tap_count; ++tap) {
      const std::uint8_t* w = weights + t.taps[tap] * t.tap_bytes;
      const std::uint8_t* in[P];
      for (std::size_t p = 0; p < P; ++p) in[p] = t.inputs[tap * t.positions + p0 + p];
      if constexpr (Bits == 8) {
        for (std::size_t p = 0; p < P; ++p) {
          for (std::size_t i = 0; i < 4 * t.vectors; ++i) multiplied[p] += in[p][i];
        }
      }
      for (std::size_t v = 0; v < t.vectors; ++v) {
        const std::uint8_t* chunk = w + (v / 8) * bytes_per_chunk;
        uint8x16_t codes[4];
        for (std::size_t r = 0; r < 4; ++r) codes[r] = neon_codes<Bits>(chunk, v % 8, r);
#pragma GCC unroll 4
        for (std::size_t p = 0; p < P; ++p) {
          std::uint32_t x;
          std::memcpy(&x, in[p] + 4 * v, sizeof x);
          const uint8x16_t xs = vreinterpretq_u8_u32(vdupq_n_u32(x));
#if defined(__ARM_FEATURE_DOTPROD)
          for (std::size_t r = 0; r < 4; ++r) acc[p][r] = vdotq_u32(acc[p][r], codes[r], xs);
#else
          for (std::size_t r = 0; r < 4; ++r) {
            acc[p][2 * r] = vpadalq_u16(acc[p][2 * r], vmull_u8(vget_low_u8(codes[r]), vget_low_u8(xs)));
            acc[p][2 * r + 1] = vpadalq_u16(acc[p][2 * r + 1], vmull_high_u8(codes[r], xs));
          }
#endif
        }
      }
    }
    for (std::size_t p = 0; p < P; ++p) {
      for (std::size_t r = 0; r < 4; ++r) {
#if defined(__ARM_FEATURE_DOTPROD)
        const uint32x4_t four = acc[p][r];
#else
        const uint32x4_t four = vpaddq_u32(acc[p][2 * r], acc[p][2 * r + 1]);
#endif
        vst1q_s32(sums[p0 + p] + 4 * r, vreinterpretq_s32_u32(vsubq_u32(four, vdupq_n_u32(128u * multiplied[p]))));
      }
    }
  }

  template <std::size_t P>
  static void neon_block_group(const a8_channel_tile& t, const std::uint8_t* weights, std::size_t p0,
                               std::int32_t (&sums)[tile_positions][tile_lanes]) noexcept {
    switch (t.storage_bits) {
      case 1: neon_block_sums<P, 1>(t, weights, p0, sums); break;
      case 2: neon_block_sums<P, 2>(t, weights, p0, sums); break;
      case 3: neon_block_sums<P, 3>(t, weights, p0, sums); break;
      case 4: neon_block_sums<P, 4>(t, weights, p0, sums); break;
      default: neon_block_sums<P, 8>(t, weights, p0, sums); break;
    }
  }

  // Positions in groups of 4 (UDOT: 16 accumulators) or 2 (UMULL: 16 accumulators), so
  // the accumulators, 4 code registers and the broadcast fit the 32 registers.
  static void a8_channel_neon(const a8_channel_tile& t) noexcept {
#if defined(__ARM_FEATURE_DOTPROD)
    constexpr std::size_t group = 4;
#else
    constexpr std::size_t group = 2;
#endif
    for (std::size_t block = 0; block < t.blocks; ++block) {
      std::int32_t sums[tile_positions][tile_lanes];
      const std::uint8_t* weights = t.weights + block * t.block_bytes;
      std::size_t p0 = 0;
      for (; p0 + group <= t.positions; p0 += group) neon_block_group<group>(t, weights, p0, sums);
      if constexpr (group == 4) {
        if (p0 + 2 <= t.positions) {
          neon_block_group<2>(t, weights, p0, sums);
          p0 += 2;
        }
      }
      if (p0 < t.positions) neon_block_group<1>(t, weights, p0, sums);
      conv_ref::a8_channel_block_outputs_ref<Arch>(t, block, sums);
    }
  }

  // Row tiles: 16 positions in the lanes, channels split by a de-interleaving load (when
  // every lane is valid and their pixels are consecutive) or gathered lane by lane, then
  // widened to 16 bits and multiplied by each output's signed codes with SMLAL (255 * 128
  // fits 16 bits, the sums int32).
  template <std::size_t O>
  static void a8_row_neon(const a8_row_tile& t) noexcept {
    int32x4_t acc[O][4];
    for (std::size_t o = 0; o < O; ++o) {
      for (std::size_t k = 0; k < 4; ++k) acc[o][k] = vdupq_n_s32(0);
    }
    uint32x4_t q_sum[4];
    for (std::size_t k = 0; k < 4; ++k) q_sum[k] = vdupq_n_u32(0);
    std::int32_t count[16] = {};
    for (std::size_t tap = 0; tap < t.tap_count; ++tap) {
      const std::int32_t* pixels = t.pixels + tap * 16;
      bool any = false, all = true, consecutive = true;
      for (std::size_t lane = 0; lane < 16; ++lane) {
        const bool valid = lane < t.lanes && pixels[lane] >= 0;
        any = any || valid;
        all = all && valid;
        if (valid) count[lane] += static_cast<std::int32_t>(t.group_in);
        if (lane > 0 && pixels[lane] != pixels[0] + static_cast<std::int32_t>(lane)) consecutive = false;
      }
      if (!any) continue;
      const std::int8_t* w = t.weights + t.taps[tap] * t.vectors * 4;
      for (std::size_t v = 0; v < t.vectors; ++v) {
        const std::uint8_t* plane = t.input + v * t.plane_bytes;
        uint8x16x4_t x;
        if (all && consecutive) {
          x = vld4q_u8(plane + static_cast<std::size_t>(pixels[0]) * 4);
        } else {
          alignas(16) std::uint8_t gathered[64] = {};
          for (std::size_t lane = 0; lane < t.lanes; ++lane) {
            if (pixels[lane] >= 0) std::memcpy(gathered + 4 * lane, plane + static_cast<std::size_t>(pixels[lane]) * 4, 4);
          }
          x = vld4q_u8(gathered);
        }
        const uint16x8_t sum_low = vaddq_u16(vaddl_u8(vget_low_u8(x.val[0]), vget_low_u8(x.val[1])),
                                             vaddl_u8(vget_low_u8(x.val[2]), vget_low_u8(x.val[3])));
        const uint16x8_t sum_high = vaddq_u16(vaddl_high_u8(x.val[0], x.val[1]), vaddl_high_u8(x.val[2], x.val[3]));
        q_sum[0] = vaddw_u16(q_sum[0], vget_low_u16(sum_low));
        q_sum[1] = vaddw_high_u16(q_sum[1], sum_low);
        q_sum[2] = vaddw_u16(q_sum[2], vget_low_u16(sum_high));
        q_sum[3] = vaddw_high_u16(q_sum[3], sum_high);
        for (std::size_t c = 0; c < 4; ++c) {
          const int16x8_t low = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(x.val[c])));
          const int16x8_t high = vreinterpretq_s16_u16(vmovl_high_u8(x.val[c]));
          for (std::size_t o = 0; o < O; ++o) {
            const std::int16_t code = w[(o * t.weight_tap_count * t.vectors + v) * 4 + c];
            acc[o][0] = vmlal_n_s16(acc[o][0], vget_low_s16(low), code);
            acc[o][1] = vmlal_high_n_s16(acc[o][1], low, code);
            acc[o][2] = vmlal_n_s16(acc[o][2], vget_low_s16(high), code);
            acc[o][3] = vmlal_high_n_s16(acc[o][3], high, code);
          }
        }
      }
    }
    std::int32_t sums[O][16], q[16];
    for (std::size_t k = 0; k < 4; ++k) {
      vst1q_s32(q + 4 * k, vreinterpretq_s32_u32(q_sum[k]));
      for (std::size_t o = 0; o < O; ++o) vst1q_s32(sums[o] + 4 * k, acc[o][k]);
    }
    conv_ref::a8_row_outputs_ref<Arch>(t, sums, q, count);
  }
#endif

  static void a8_channel(const a8_channel_tile& t) noexcept {
#if defined(__AVX512VNNI__) && defined(__AVX512BW__) && defined(__AVX512F__)
    switch (t.positions) {
      case 1: a8_channel_vnni<1>(t); return;
      case 2: a8_channel_vnni<2>(t); return;
      case 3: a8_channel_vnni<3>(t); return;
      case 4: a8_channel_vnni<4>(t); return;
      case 5: a8_channel_vnni<5>(t); return;
      case 6: a8_channel_vnni<6>(t); return;
      case 7: a8_channel_vnni<7>(t); return;
      default: a8_channel_vnni<8>(t); return;
    }
#elif defined(__AVX2__)
    switch (t.positions) {
      case 1: a8_channel_avx2<1>(t); return;
      case 2: a8_channel_avx2<2>(t); return;
      case 3: a8_channel_avx2<3>(t); return;
      case 4: a8_channel_avx2<4>(t); return;
      case 5: a8_channel_avx2<5>(t); return;
      case 6: a8_channel_avx2<6>(t); return;
      case 7: a8_channel_avx2<7>(t); return;
      default: a8_channel_avx2<8>(t); return;
    }
#elif defined(__aarch64__)
    a8_channel_neon(t);
#else
    conv_ref::a8_channel_tile_ref<Arch>(t);
#endif
  }

  static void a8_row(const a8_row_tile& t) noexcept {
#if defined(__AVX512VNNI__) && defined(__AVX512BW__) && defined(__AVX512F__)
    switch (t.output_count) {
      case 1: a8_row_vnni<1>(t); return;
      case 2: a8_row_vnni<2>(t); return;
      case 3: a8_row_vnni<3>(t); return;
      default: a8_row_vnni<4>(t); return;
    }
#elif defined(__aarch64__)
    switch (t.output_count) {
      case 1: a8_row_neon<1>(t); return;
      case 2: a8_row_neon<2>(t); return;
      case 3: a8_row_neon<3>(t); return;
      default: a8_row_neon<4>(t); return;
    }
#else
    conv_ref::a8_row_tile_ref<Arch>(t);
#endif
  }

  // One input channel of every position: acc += x * w, a multiply and an add (no fused
  // multiply-add, so every set rounds alike), unrolled so the accumulators stay in
  // registers.
  template <std::size_t P, std::size_t R>
  static inline __attribute__((always_inline)) void f32_step(xsimd::batch<float, Arch> (&acc)[P * R],
                                                           const float* const (&in)[P], std::size_t c, const float* w) noexcept {
    using batch = xsimd::batch<float, Arch>;
    batch codes[R];
#pragma GCC unroll 4
    for (std::size_t r = 0; r < R; ++r) codes[r] = batch::load_unaligned(w + r * batch::size);
#pragma GCC unroll 8
    for (std::size_t p = 0; p < P; ++p) {
      const batch x(in[p][c]);
#pragma GCC unroll 4
      for (std::size_t r = 0; r < R; ++r) acc[p * R + r] = acc[p * R + r] + x * codes[r];
    }
  }

  template <std::size_t P>
  static void f32_channel_positions(const f32_channel_tile& t) noexcept {
    using batch = xsimd::batch<float, Arch>;
    constexpr std::size_t R = tile_lanes / batch::size;
    batch acc[P * R];
#pragma GCC unroll 32
    for (std::size_t i = 0; i < P * R; ++i) acc[i] = batch(0.0f);
    for (std::size_t tap = 0; tap < t.tap_count; ++tap) {
      const float* w = t.weights + t.taps[tap] * t.channels * tile_lanes;
      const float* in[P];
#pragma GCC unroll 8
      for (std::size_t p = 0; p < P; ++p) in[p] = t.inputs[tap * P + p];
      for (std::size_t c = 0; c < t.channels; ++c) f32_step<P, R>(acc, in, c, w + c * tile_lanes);
    }
    for (std::size_t p = 0; p < P; ++p) {
      alignas(64) float sums[tile_lanes];
      for (std::size_t r = 0; r < R; ++r) acc[p * R + r].store_aligned(sums + r * batch::size);
      for (std::size_t o = 0; o < t.lanes; ++o) {
        conv_ref::f32_store_output<Arch>(t, p, o, sums[o]);
      }
    }
  }

  // P positions of one output, each position's 16 partial sums in 16 / lanes registers:
  // P independent chains of additions, so the loop waits on throughput, not latency.
  template <std::size_t P>
  static void f32_dot_positions(const f32_channel_tile& t) noexcept {
    using batch = xsimd::batch<float, Arch>;
    constexpr std::size_t R = dot_partials / batch::size;
    const std::size_t padded = dot_padded_channels(t.channels), whole = t.channels / dot_partials * dot_partials;
    for (std::size_t o = 0; o < t.lanes; ++o) {
      batch acc[P * R];
#pragma GCC unroll 32
      for (std::size_t i = 0; i < P * R; ++i) acc[i] = batch(0.0f);
      const auto chunk = [&](const float* const* in, std::size_t c, const float* w) __attribute__((always_inline)) {
        batch weights[R];
#pragma GCC unroll 4
        for (std::size_t r = 0; r < R; ++r) weights[r] = batch::load_unaligned(w + r * batch::size);
#pragma GCC unroll 8
        for (std::size_t p = 0; p < P; ++p) {
#pragma GCC unroll 4
          for (std::size_t r = 0; r < R; ++r) {
            acc[p * R + r] = acc[p * R + r] + batch::load_unaligned(in[p] + c + r * batch::size) * weights[r];
          }
        }
      };
      for (std::size_t tap = 0; tap < t.tap_count; ++tap) {
        const float* w = t.weights + o * t.output_stride + t.taps[tap] * padded;
        const float* in[P];
#pragma GCC unroll 8
        for (std::size_t p = 0; p < P; ++p) in[p] = t.inputs[tap * P + p];
        for (std::size_t c = 0; c < whole; c += dot_partials) chunk(in, c, w + c);
        if (whole < t.channels) {
          // The last channels, zero-padded: the pixel's buffer may end before a whole chunk.
          alignas(64) float tail[P][dot_partials] = {};
          const float* tail_in[P];
          for (std::size_t p = 0; p < P; ++p) {
            std::copy(in[p] + whole, in[p] + t.channels, tail[p]);
            tail_in[p] = tail[p];
          }
          chunk(tail_in, 0, w + whole);
        }
      }
      for (std::size_t p = 0; p < P; ++p) {
        alignas(64) float partial[dot_partials];
#pragma GCC unroll 4
        for (std::size_t r = 0; r < R; ++r) acc[p * R + r].store_aligned(partial + r * batch::size);
        conv_ref::f32_store_output<Arch>(t, p, o, conv_ref::dot_partials_sum<Arch>(partial));
      }
    }
  }

  static void f32_dot(const f32_channel_tile& t) noexcept {
    if constexpr (xsimd::batch<float, Arch>::size > dot_partials || dot_partials % xsimd::batch<float, Arch>::size != 0) {
      conv_ref::f32_dot_tile_ref<Arch>(t);
    } else {
      switch (t.positions) {
        case 1: f32_dot_positions<1>(t); return;
        case 2: f32_dot_positions<2>(t); return;
        case 3: f32_dot_positions<3>(t); return;
        case 4: f32_dot_positions<4>(t); return;
        case 5: f32_dot_positions<5>(t); return;
        case 6: f32_dot_positions<6>(t); return;
        case 7: f32_dot_positions<7>(t); return;
        case 8: f32_dot_positions<8>(t); return;
        default: conv_ref::f32_dot_tile_ref<Arch>(t); return;  // outside the contract: no fixed-size path
      }
    }
  }

  // xsimd 8.1 divides floats on NEON64 by a reciprocal estimate and two Newton steps,
  // which misses the correctly rounded quotient in the last bits (the tanh check found
  // it under qemu); AArch64 has an exact vector division.
  static xsimd::batch<float, Arch> correctly_rounded_divide(const xsimd::batch<float, Arch>& a,
                                                            const xsimd::batch<float, Arch>& b) noexcept {
#if defined(__aarch64__)
    if constexpr (isa::is_neon64<Arch>) return xsimd::batch<float, Arch>(vdivq_f32(a, b));
#endif
    return a / b;
  }

  // tanh_approx (qgan/nn/packed/tanh.hpp) a register at a time: the same operations in
  // the same order (no fused multiply-add), so the same bits; the tail runs the reference.
  static void tanh(const float* in, float* out, std::size_t count) noexcept {
    using batch = xsimd::batch<float, Arch>;
    using int_batch = xsimd::batch<std::int32_t, Arch>;
    std::size_t i = 0;
    for (; i + batch::size <= count; i += batch::size) {
      const batch x = batch::load_unaligned(in + i);
      const batch magnitude = xsimd::abs(x);
      const batch a = xsimd::select(magnitude < batch(10.0f), magnitude,
                                    xsimd::select(magnitude == magnitude, batch(10.0f), magnitude));
      const batch y = batch(2.0f) * a;
      const batch round_magic(12582912.0f);
      const batch k = (y * batch(1.44269504088896341f) + round_magic) - round_magic;
      const batch r = (y - k * batch(0.693145751953125f)) - k * batch(1.428606765330187e-06f);
      batch p(1.0f / 5040.0f);
      p = p * r + batch(1.0f / 720.0f);
      p = p * r + batch(1.0f / 120.0f);
      p = p * r + batch(1.0f / 24.0f);
      p = p * r + batch(1.0f / 6.0f);
      p = p * r + batch(0.5f);
      p = p * r + batch(1.0f);
      p = p * r + batch(1.0f);
      const int_batch exponent = xsimd::to_int(xsimd::select(k == k, k, batch(0.0f)));
      const batch scale = xsimd::bitwise_cast<batch>((exponent + int_batch(127)) << 23);
      const batch t = batch(1.0f) - correctly_rounded_divide(batch(2.0f), p * scale + batch(1.0f));
      xsimd::copysign(t, x).store_unaligned(out + i);
    }
    conv_ref::tanh_ref<Arch>(in + i, out + i, count - i);
  }

  static void f32_channel(const f32_channel_tile& t) noexcept {
    if constexpr (xsimd::batch<float, Arch>::size > tile_lanes || tile_lanes % xsimd::batch<float, Arch>::size != 0) {
      conv_ref::f32_channel_tile_ref<Arch>(t);
    } else {
      switch (t.positions) {
        case 1: f32_channel_positions<1>(t); return;
        case 2: f32_channel_positions<2>(t); return;
        case 3: f32_channel_positions<3>(t); return;
        case 4: f32_channel_positions<4>(t); return;
        case 5: f32_channel_positions<5>(t); return;
        case 6: f32_channel_positions<6>(t); return;
        case 7: f32_channel_positions<7>(t); return;
        default: f32_channel_positions<8>(t); return;
      }
    }
  }
};
