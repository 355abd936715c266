// Codec kernels over xsimd's batch<T, Arch>: encode floats to codes, the canonical bit
// packing (qgan/pack/canonical.hpp) and decoding straight from it. No #include and no
// namespace (see reductions_body.inl). Codes are bit-exact with the references on every
// set; decoded floats too: sets with a fused multiply-add decode alpha*z + beta in one
// rounding as the reference's std::fma does, and sets without one (SSE2, SSE4.2) look the
// levels up in a table the reference decoded.
//
// Bit extraction uses no per-lane variable shift (xsimd 8.1 falls back to scalar code
// for it on AVX-512): code j of a 32-bit word is (word * 2^(32-k-s_j)) >> (32-k) with
// s_j = j*k mod 32, a multiply and a uniform shift.

template <class Arch>
struct codec_kernels {
  using float_batch = xsimd::batch<float, Arch>;
  using u32_batch = xsimd::batch<std::uint32_t, Arch>;
  using i32_batch = xsimd::batch<std::int32_t, Arch>;
  static constexpr std::size_t lanes = float_batch::size;

  static void encode_uniform(const float* values, std::size_t count, const uniform_params& grid,
                             std::uint8_t* codes) noexcept {
    std::size_t i = 0;
    if (grid.alpha > 0.0f) {
      const float_batch alpha(grid.alpha), beta(grid.beta), zero(0.0f);
      const float_batch top(static_cast<float>(detail::top_code(grid.bits)));
      for (; i + lanes <= count; i += lanes) {
        const float_batch position =
            xsimd::nearbyint(isa::divide<Arch>(float_batch::load_unaligned(values + i) - beta, alpha));
        isa::store_low_bytes<Arch>(
            codes + i, xsimd::batch_cast<std::int32_t>(xsimd::min(xsimd::max(position, zero), top)));
      }
    }
    detail::encode_uniform_ref<Arch>(values + i, count - i, grid, codes + i);
  }

  /// Lane multipliers that move code (chunk*lanes + j) of a word to the top k bits.
  static u32_batch extract_multipliers(int bits, std::size_t chunk) noexcept {
    alignas(64) std::uint32_t multipliers[lanes];
    for (std::size_t j = 0; j < lanes; ++j) {
      const std::size_t shift = ((chunk * lanes + j) * static_cast<std::size_t>(bits)) % 32;
      multipliers[j] = std::uint32_t{1} << (32 - static_cast<std::size_t>(bits) - shift);
    }
    return u32_batch::load_aligned(multipliers);
  }

  // The SIMD body covers k in {1, 2, 4, 8}, where codes never straddle a 32-bit word; other
  // widths, and the unaligned head and the tail of every range, go to the reference.
  static bool word_aligned_width(int bits) noexcept {
    return bits == 1 || bits == 2 || bits == 4 || bits == 8;
  }

  /// Calls emit(offset, codes as i32 batch) for each register of codes in
  /// [first, first + count) whose word is whole, and returns how many codes it covered
  /// starting from `head` (elements before `head` are the caller's to handle).
  template <int Bits, class Emit>
  static std::size_t for_each_code_batch_of(const std::uint8_t* packed, std::size_t first,
                                            std::size_t count, std::size_t head, Emit&& emit) noexcept {
    constexpr std::size_t codes_per_word = 32 / Bits;
    constexpr std::size_t chunks_per_word = codes_per_word >= lanes ? codes_per_word / lanes : 1;
    constexpr std::size_t words_per_batch = codes_per_word >= lanes ? 1 : lanes / codes_per_word;
    constexpr std::size_t group = chunks_per_word * lanes;  // codes per step, whole words
    u32_batch multipliers[chunks_per_word];
    for (std::size_t c = 0; c < chunks_per_word; ++c) multipliers[c] = extract_multipliers(Bits, c);
    // Lane j of a multi-word register reads word (j * k) / 32 of the group.
    alignas(64) std::uint32_t lane_word[lanes];
    for (std::size_t j = 0; j < lanes; ++j) lane_word[j] = static_cast<std::uint32_t>((j * Bits) / 32);
    const u32_batch lane_word_batch = u32_batch::load_aligned(lane_word);
    std::size_t i = head;
    for (; i + group <= count; i += group) {
      const std::uint8_t* source = packed + ((first + i) * Bits) / 8;
      std::uint32_t words[words_per_batch];
      std::memcpy(words, source, sizeof(words));
      u32_batch word(words[0]);
      for (std::size_t w = 1; w < words_per_batch; ++w) {
        word = xsimd::select(lane_word_batch == u32_batch(static_cast<std::uint32_t>(w)),
                             u32_batch(words[w]), word);
      }
      for (std::size_t c = 0; c < chunks_per_word; ++c) {
        const u32_batch codes = (word * multipliers[c]) >> (32 - Bits);
        emit(i + c * lanes, xsimd::bitwise_cast<i32_batch>(codes));
      }
    }
    return i;
  }

  template <class Emit>
  static std::size_t for_each_code_batch(const std::uint8_t* packed, std::size_t first,
                                         std::size_t count, int bits, std::size_t head,
                                         Emit&& emit) noexcept {
    switch (bits) {
      case 1: return for_each_code_batch_of<1>(packed, first, count, head, emit);
      case 2: return for_each_code_batch_of<2>(packed, first, count, head, emit);
      case 4: return for_each_code_batch_of<4>(packed, first, count, head, emit);
      default: return for_each_code_batch_of<8>(packed, first, count, head, emit);
    }
  }

  // Elements before the first whole word: the head the references take.
  static std::size_t head_length(std::size_t first, std::size_t count, int bits) noexcept {
    const std::size_t codes_per_word = 32 / static_cast<std::size_t>(bits);
    const std::size_t head = (codes_per_word - first % codes_per_word) % codes_per_word;
    return head < count ? head : count;
  }

  /// Outputs of at least this many floats (16 MiB, half of a 32 MiB L3) are written with
  /// non-temporal stores: they cannot stay in cache anyway, and ordinary stores would
  /// first read every output line (read-for-ownership), doubling the memory traffic.
  static constexpr std::size_t streaming_threshold =
      isa::has_streaming_stores<Arch> ? std::size_t{1} << 22 : ~std::size_t{0};
  static constexpr std::size_t chunk_floats = 4096;  ///< floats decoded per L1-sized chunk

  static bool register_aligned(const float* pointer) noexcept {
    return reinterpret_cast<std::uintptr_t>(pointer) % (lanes * sizeof(float)) == 0;
  }

  /// dst[i] = src[i] with non-temporal stores for the register-aligned body of dst.
  static void stream_copy(float* dst, const float* src, std::size_t count) noexcept {
    std::size_t i = 0;
    while (i < count && !register_aligned(dst + i)) {
      dst[i] = src[i];
      ++i;
    }
    for (; i + lanes <= count; i += lanes) isa::stream_store<Arch>(dst + i, float_batch::load_unaligned(src + i));
    for (; i < count; ++i) dst[i] = src[i];
  }

  /// values[i] = alpha * code(first + i) + beta, straight from the canonical layout.
  static void dequantize_uniform(const std::uint8_t* packed, std::size_t first, std::size_t count,
                                 int bits, const uniform_params& grid, float* values) noexcept {
    if (count < streaming_threshold) {
      dequantize_uniform_cached(packed, first, count, bits, grid, values);
      return;
    }
    if constexpr (isa::has_fused_multiply_add<Arch>) {
      const std::size_t head = head_length(first, count, bits);
      if (word_aligned_width(bits) && register_aligned(values + head)) {
        // The first whole code word lands on a register boundary of the output: stream
        // each decoded register straight out.
        pack::dequantize_uniform_ref<Arch>(packed, first, head, bits, grid, values);
        const float_batch alpha(grid.alpha), beta(grid.beta);
        const std::size_t done = for_each_code_batch(
            packed, first, count, bits, head, [&](std::size_t at, const i32_batch& codes) {
              isa::stream_store<Arch>(values + at,
                                      isa::fused_multiply_add<Arch>(alpha, xsimd::batch_cast<float>(codes), beta));
            });
        pack::dequantize_uniform_ref<Arch>(packed, first + done, count - done, bits, grid, values + done);
        isa::store_fence<Arch>();
        return;
      }
    }
    // Otherwise decode L1-sized chunks and stream them out from there.
    alignas(64) float chunk[chunk_floats];
    for (std::size_t done = 0; done < count; done += chunk_floats) {
      const std::size_t length = count - done < chunk_floats ? count - done : chunk_floats;
      dequantize_uniform_cached(packed, first + done, length, bits, grid, chunk);
      stream_copy(values + done, chunk, length);
    }
    isa::store_fence<Arch>();
  }

  static void dequantize_uniform_cached(const std::uint8_t* packed, std::size_t first,
                                        std::size_t count, int bits, const uniform_params& grid,
                                        float* values) noexcept {
    if constexpr (!isa::has_fused_multiply_add<Arch>) {
      // Unpack with SIMD, then look the reference's own decoded levels up.
      float level_of[256];
      for (std::uint32_t z = 0; z < detail::level_count(bits); ++z) level_of[z] = detail::uniform_decode<Arch>(z, grid);
      alignas(64) std::uint8_t codes[chunk_floats];
      for (std::size_t done = 0; done < count; done += chunk_floats) {
        const std::size_t length = count - done < chunk_floats ? count - done : chunk_floats;
        unpack(packed, first + done, length, bits, codes);
        for (std::size_t i = 0; i < length; ++i) values[done + i] = level_of[codes[i]];
      }
    } else {
      if (!word_aligned_width(bits) || lanes * static_cast<std::size_t>(bits) > 8 * 32) {
        pack::dequantize_uniform_ref<Arch>(packed, first, count, bits, grid, values);
        return;
      }
      const std::size_t head = head_length(first, count, bits);
      pack::dequantize_uniform_ref<Arch>(packed, first, head, bits, grid, values);
      const float_batch alpha(grid.alpha), beta(grid.beta);
      const std::size_t done = for_each_code_batch(
          packed, first, count, bits, head, [&](std::size_t at, const i32_batch& codes) {
            isa::fused_multiply_add<Arch>(alpha, xsimd::batch_cast<float>(codes), beta).store_unaligned(values + at);
          });
      pack::dequantize_uniform_ref<Arch>(packed, first + done, count - done, bits, grid, values + done);
    }
  }

  /// One byte per code for elements [first, first + count).
  static void unpack(const std::uint8_t* packed, std::size_t first, std::size_t count, int bits,
                     std::uint8_t* codes) noexcept {
    if (!word_aligned_width(bits)) {
      pack::unpack_ref<Arch>(packed, first, count, bits, codes);
      return;
    }
    const std::size_t head = head_length(first, count, bits);
    pack::unpack_ref<Arch>(packed, first, head, bits, codes);
    const std::size_t done = for_each_code_batch(
        packed, first, count, bits, head,
        [&](std::size_t at, const i32_batch& batch_codes) { isa::store_low_bytes<Arch>(codes + at, batch_codes); });
    pack::unpack_ref<Arch>(packed, first + done, count - done, bits, codes + done);
  }

  /// Canonical packing of count codes; one register of codes becomes one word's bits.
  static void pack_codes(const std::uint8_t* codes, std::size_t count, int bits,
                         std::uint8_t* packed) noexcept {
    const std::size_t codes_per_word = 32 / static_cast<std::size_t>(bits);
    if (!word_aligned_width(bits) || codes_per_word < lanes) {
      pack::pack_ref<Arch>(codes, count, bits, packed);
      return;
    }
    // Code j of a chunk moves to bit (chunk*lanes + j)*k of its word: a multiply by a
    // power of two. The shifted codes share no bits, so their sum is their OR.
    alignas(64) std::uint32_t shift_up[32];
    const std::size_t chunks = codes_per_word / lanes;
    for (std::size_t j = 0; j < codes_per_word; ++j) {
      shift_up[j] = std::uint32_t{1} << (j * static_cast<std::size_t>(bits));
    }
    const u32_batch mask((std::uint32_t{1} << bits) - 1);
    std::size_t i = 0;
    for (; i + codes_per_word <= count; i += codes_per_word) {
      std::uint32_t word = 0;
      for (std::size_t c = 0; c < chunks; ++c) {
        const u32_batch lane_codes = u32_batch::load_unaligned(codes + i + c * lanes) & mask;
        word += xsimd::hadd(lane_codes * u32_batch::load_aligned(shift_up + c * lanes));
      }
      std::memcpy(packed + (i * static_cast<std::size_t>(bits)) / 8, &word, 4);
    }
    pack::pack_ref<Arch>(codes + i, count - i, bits, packed + (i * static_cast<std::size_t>(bits)) / 8);
  }
};
