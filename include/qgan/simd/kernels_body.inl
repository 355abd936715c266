// qgan's SIMD kernels, written once over xsimd's batch<T, Arch>. This file has no
// #include and no namespace: qgan/simd/kernels.hpp includes it inside namespace
// qgan::simd for static dispatch, and each run-time-dispatch translation unit includes it
// inside an anonymous namespace of its own, so no symbol compiled for one instruction set
// can be merged with another's. Everything here is a template on Arch and calls only
// xsimd, memcpy and the Tag-templated scalar references it mirrors (qgan/pack/canonical.hpp,
// qgan/quant/uniform_grid.hpp, qgan/quant/minmax.hpp), which also take its tails.
//
// Bit extraction uses no per-lane variable shift (xsimd 8.1 falls back to scalar code
// for it on AVX-512): code j of a 32-bit word is (word * 2^(32-k-s_j)) >> (32-k) with
// s_j = j*k mod 32, a multiply and a uniform shift.

template <class Arch>
struct kernels {
  using float_batch = xsimd::batch<float, Arch>;
  using u32_batch = xsimd::batch<std::uint32_t, Arch>;
  using i32_batch = xsimd::batch<std::int32_t, Arch>;
  using double_batch = xsimd::batch<double, Arch>;
  static constexpr std::size_t lanes = float_batch::size;  ///< floats per register
  static constexpr std::size_t double_lanes = double_batch::size;

  /// a*b + c rounded once, as std::fma in the references. xsimd 8.1 has no AVX-512 fma
  /// and falls back to a*b + c, which GCC happens to fuse and clang does not.
  static float_batch fused_multiply_add(const float_batch& a, const float_batch& b,
                                        const float_batch& c) noexcept {
    if constexpr (std::is_base_of_v<xsimd::avx512f, Arch>) {
      return float_batch(_mm512_fmadd_ps(a, b, c));
    } else {
      return xsimd::fma(a, b, c);
    }
  }

  /// min and max of count values into lowest/highest (which the caller seeds).
  static void minmax(const float* values, std::size_t count, float& lowest,
                     float& highest) noexcept {
    std::size_t i = 0;
    if (count >= lanes) {
      float_batch low = float_batch::load_unaligned(values), high = low;
      for (i = lanes; i + lanes <= count; i += lanes) {
        const float_batch x = float_batch::load_unaligned(values + i);
        low = xsimd::min(low, x);
        high = xsimd::max(high, x);
      }
      alignas(64) float low_lanes[lanes], high_lanes[lanes];
      low.store_aligned(low_lanes);
      high.store_aligned(high_lanes);
      qgan::minmax_ref<Arch>(low_lanes, lanes, lowest, highest);
      qgan::minmax_ref<Arch>(high_lanes, lanes, lowest, highest);
    }
    qgan::minmax_ref<Arch>(values + i, count - i, lowest, highest);
  }

  /// codes[i] = clamp(round_half_even((values[i] - beta) / alpha), 0, 2^k - 1).
  static void encode_uniform(const float* values, std::size_t count, const uniform_params& grid,
                             std::uint8_t* codes) noexcept {
    std::size_t i = 0;
    if (grid.alpha > 0.0f) {
      const float_batch alpha(grid.alpha), beta(grid.beta), zero(0.0f);
      const float_batch top(static_cast<float>(detail::top_code(grid.bits)));
      alignas(64) std::int32_t lane_codes[lanes];
      for (; i + lanes <= count; i += lanes) {
        const float_batch position =
            xsimd::nearbyint((float_batch::load_unaligned(values + i) - beta) / alpha);
        xsimd::batch_cast<std::int32_t>(xsimd::min(xsimd::max(position, zero), top))
            .store_aligned(lane_codes);
        for (std::size_t j = 0; j < lanes; ++j) codes[i + j] = static_cast<std::uint8_t>(lane_codes[j]);
      }
    }
    detail::encode_uniform_ref<Arch>(values + i, count - i, grid, codes + i);
  }

  // Without a fused multiply-add the SIMD decode would round twice and disagree with the
  // reference's fma; on those instruction sets the pass runs the exact scalar loop.
  static constexpr bool has_fused_multiply_add =
      std::is_base_of_v<xsimd::avx512f, Arch> || std::is_base_of_v<xsimd::fma3<xsimd::avx2>, Arch> ||
      std::is_base_of_v<xsimd::fma3<xsimd::sse4_2>, Arch> || std::is_base_of_v<xsimd::fma3<xsimd::avx>, Arch>;

  static simd::em_sums em_pass(const float* values, std::size_t count, const uniform_params& grid,
                         float mean) noexcept {
    simd::em_sums sums;
    if constexpr (!has_fused_multiply_add) return em_pass_tail(values, count, grid, mean, sums);
    const float_batch alpha(grid.alpha), beta(grid.beta), zero(0.0f);
    const float_batch top(static_cast<float>(detail::top_code(grid.bits)));
    // Codes and decoded levels come from float registers exactly as the reference makes
    // them; the error and cross terms are then formed and summed in double lanes, because
    // EM's trajectory amplifies float-sum noise in the M-step into different grids.
    const double_batch centre(static_cast<double>(mean));
    double_batch error_acc(0.0), cross_acc(0.0);
    float_batch code_acc(0.0f), square_acc(0.0f);
    alignas(64) float x_lanes[lanes], z_lanes[lanes], q_lanes[lanes];
    std::size_t i = 0, registers = 0;
    for (; i + lanes <= count; i += lanes) {
      const float_batch x = float_batch::load_unaligned(values + i);
      float_batch z = zero;
      if (grid.alpha > 0.0f) z = xsimd::min(xsimd::max(xsimd::nearbyint((x - beta) / alpha), zero), top);
      const float_batch q = fused_multiply_add(alpha, z, beta);
      code_acc += z;
      square_acc += z * z;  // exact: small integers
      x.store_aligned(x_lanes);
      z.store_aligned(z_lanes);
      q.store_aligned(q_lanes);
      for (std::size_t h = 0; h < lanes; h += double_lanes) {
        const double_batch xd = double_batch::load_aligned(x_lanes + h);
        const double_batch error = xd - double_batch::load_aligned(q_lanes + h);
        error_acc = xsimd::fma(error, error, error_acc);
        cross_acc = xsimd::fma(xd - centre, double_batch::load_aligned(z_lanes + h), cross_acc);
      }
      // Float code sums, lanes added together included, stay exact below 2^24.
      constexpr std::size_t exact_registers = (std::size_t{1} << 24) / (lanes * 255 * 255);
      if (++registers == exact_registers) {
        sums.code_sum += static_cast<double>(xsimd::hadd(code_acc));
        sums.code_square_sum += static_cast<double>(xsimd::hadd(square_acc));
        code_acc = square_acc = float_batch(0.0f);
        registers = 0;
      }
    }
    sums.code_sum += static_cast<double>(xsimd::hadd(code_acc));
    sums.code_square_sum += static_cast<double>(xsimd::hadd(square_acc));
    sums.squared_error += xsimd::hadd(error_acc);
    sums.centred_cross += xsimd::hadd(cross_acc);
    return em_pass_tail(values + i, count - i, grid, mean, sums);
  }

  static simd::em_sums em_pass_tail(const float* values, std::size_t count,
                                    const uniform_params& grid, float mean,
                                    simd::em_sums sums) noexcept {
    for (std::size_t i = 0; i < count; ++i) {
      const float z = static_cast<float>(detail::uniform_encode<Arch>(values[i], grid));
      const double error = static_cast<double>(values[i]) - detail::uniform_decode<Arch>(
                                                                static_cast<std::uint32_t>(z), grid);
      sums.squared_error += error * error;
      sums.code_sum += z;
      sums.code_square_sum += static_cast<double>(z) * z;
      sums.centred_cross += (static_cast<double>(values[i]) - mean) * z;
    }
    return sums;
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
  template <class Emit>
  static std::size_t for_each_code_batch(const std::uint8_t* packed, std::size_t first,
                                         std::size_t count, int bits, std::size_t head,
                                         Emit&& emit) noexcept {
    const std::size_t codes_per_word = 32 / static_cast<std::size_t>(bits);
    const std::size_t chunks_per_word = codes_per_word >= lanes ? codes_per_word / lanes : 1;
    const std::size_t words_per_batch = codes_per_word >= lanes ? 1 : lanes / codes_per_word;
    const std::size_t group = chunks_per_word * lanes;  // codes per step, whole words
    u32_batch multipliers[8];  // chunks_per_word <= 32 codes / 4 lanes
    for (std::size_t c = 0; c < chunks_per_word; ++c) multipliers[c] = extract_multipliers(bits, c);
    // Lane j of a multi-word register reads word (j * k) / 32 of the group.
    alignas(64) std::uint32_t lane_word[lanes];
    for (std::size_t j = 0; j < lanes; ++j) lane_word[j] = static_cast<std::uint32_t>((j * static_cast<std::size_t>(bits)) / 32);
    const u32_batch lane_word_batch = u32_batch::load_aligned(lane_word);
    const int drop = 32 - bits;
    std::size_t i = head;
    for (; i + group <= count; i += group) {
      const std::uint8_t* source = packed + ((first + i) * static_cast<std::size_t>(bits)) / 8;
      std::uint32_t words[8];
      std::memcpy(words, source, words_per_batch * 4);
      u32_batch word(words[0]);
      for (std::size_t w = 1; w < words_per_batch; ++w) {
        word = xsimd::select(lane_word_batch == u32_batch(static_cast<std::uint32_t>(w)), u32_batch(words[w]), word);
      }
      for (std::size_t c = 0; c < chunks_per_word; ++c) {
        const u32_batch codes = (word * multipliers[c]) >> drop;
        emit(i + c * lanes, xsimd::bitwise_cast<i32_batch>(codes));
      }
    }
    return i;
  }

  // Elements before the first whole word: the head the references take.
  static std::size_t head_length(std::size_t first, std::size_t count, int bits) noexcept {
    const std::size_t codes_per_word = 32 / static_cast<std::size_t>(bits);
    const std::size_t head = (codes_per_word - first % codes_per_word) % codes_per_word;
    return head < count ? head : count;
  }

  /// values[i] = alpha * code(first + i) + beta, straight from the canonical layout.
  static void dequantize_uniform(const std::uint8_t* packed, std::size_t first, std::size_t count,
                                 int bits, const uniform_params& grid, float* values) noexcept {
    if (!word_aligned_width(bits) || lanes * static_cast<std::size_t>(bits) > 8 * 32) {
      pack::dequantize_uniform_ref<Arch>(packed, first, count, bits, grid, values);
      return;
    }
    const std::size_t head = head_length(first, count, bits);
    pack::dequantize_uniform_ref<Arch>(packed, first, head, bits, grid, values);
    const float_batch alpha(grid.alpha), beta(grid.beta);
    const std::size_t done = for_each_code_batch(
        packed, first, count, bits, head, [&](std::size_t at, const i32_batch& codes) {
          fused_multiply_add(alpha, xsimd::batch_cast<float>(codes), beta).store_unaligned(values + at);
        });
    pack::dequantize_uniform_ref<Arch>(packed, first + done, count - done, bits, grid, values + done);
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
    alignas(64) std::int32_t lane_codes[lanes];
    const std::size_t done = for_each_code_batch(
        packed, first, count, bits, head, [&](std::size_t at, const i32_batch& batch_codes) {
          batch_codes.store_aligned(lane_codes);
          for (std::size_t j = 0; j < lanes; ++j) codes[at + j] = static_cast<std::uint8_t>(lane_codes[j]);
        });
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
