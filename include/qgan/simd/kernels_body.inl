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

  /// The two halves of a float register widened to double registers (lanes/2 each).
  static void to_double_halves(const float_batch& x, double_batch& low, double_batch& high) noexcept {
    if constexpr (std::is_base_of_v<xsimd::avx512f, Arch>) {
      const __m512 v = x;
      low = double_batch(_mm512_cvtps_pd(_mm512_castps512_ps256(v)));
      high = double_batch(_mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))));
    } else if constexpr (std::is_base_of_v<xsimd::avx, Arch>) {
      const __m256 v = x;
      low = double_batch(_mm256_cvtps_pd(_mm256_castps256_ps128(v)));
      high = double_batch(_mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
    } else {
      const __m128 v = x;
      low = double_batch(_mm_cvtps_pd(v));
      high = double_batch(_mm_cvtps_pd(_mm_movehl_ps(v, v)));
    }
  }

  /// acc += both halves of x, widened to double.
  static void widen_into(const float_batch& x, double_batch& acc) noexcept {
    double_batch low, high;
    to_double_halves(x, low, high);
    acc += low + high;
  }

  /// Smallest, largest and sum (in double) of count values, in one pass. A NaN or an
  /// infinity makes the sum non-finite, which is how callers detect one.
  struct summary {
    float lowest = 0.0f, highest = 0.0f;
    double sum = 0.0;
  };

  static summary summarize(const float* values, std::size_t count) noexcept {
    summary result;
    if (count == 0) return result;
    result.lowest = result.highest = values[0];
    std::size_t i = 0;
    if (count >= lanes) {
      float_batch low = float_batch::load_unaligned(values), high = low;
      double_batch sum_low(0.0), sum_high(0.0);
      for (; i + lanes <= count; i += lanes) {
        const float_batch x = float_batch::load_unaligned(values + i);
        low = xsimd::min(low, x);
        high = xsimd::max(high, x);
        double_batch x_low, x_high;
        to_double_halves(x, x_low, x_high);
        sum_low += x_low;
        sum_high += x_high;
      }
      alignas(64) float low_lanes[lanes], high_lanes[lanes];
      low.store_aligned(low_lanes);
      high.store_aligned(high_lanes);
      qgan::minmax_ref<Arch>(low_lanes, lanes, result.lowest, result.highest);
      qgan::minmax_ref<Arch>(high_lanes, lanes, result.lowest, result.highest);
      result.sum = xsimd::hadd(sum_low + sum_high);
    }
    qgan::minmax_ref<Arch>(values + i, count - i, result.lowest, result.highest);
    for (; i < count; ++i) result.sum += values[i];
    return result;
  }

  /// Sum of (value - mean)^2 in double.
  static double centred_square_sum(const float* values, std::size_t count, double mean) noexcept {
    double_batch acc_low(0.0), acc_high(0.0);
    const double_batch centre(mean);
    std::size_t i = 0;
    for (; i + lanes <= count; i += lanes) {
      double_batch x_low, x_high;
      to_double_halves(float_batch::load_unaligned(values + i), x_low, x_high);
      acc_low = xsimd::fma(x_low - centre, x_low - centre, acc_low);
      acc_high = xsimd::fma(x_high - centre, x_high - centre, acc_high);
    }
    double total = xsimd::hadd(acc_low + acc_high);
    for (; i < count; ++i) total += (values[i] - mean) * (values[i] - mean);
    return total;
  }

  /// round_half_even((x - beta) / alpha), as the reference computes it, but with a
  /// multiply by 1/alpha. For a quotient q, s * RN(1/alpha) rounded lies within 3 ulp-units
  /// (3 * 2^-24 * |q|) of the rounded division, so the two round to different integers
  /// only where q lies that close to a half-integer; codes that matter have |q| <= 2^k.
  /// Registers with a lane inside near_tie_distance(k), 21 times that bound, take the
  /// division.
  static float_batch grid_position(const float_batch& x, const float_batch& beta,
                                   const float_batch& alpha, const float_batch& inverse_alpha,
                                   const float_batch& near_tie) noexcept {
    const float_batch shifted = x - beta;
    const float_batch scaled = shifted * inverse_alpha;
    const float_batch rounded = xsimd::nearbyint(scaled);
    if (xsimd::any(xsimd::abs(scaled - rounded) > near_tie)) {
      return xsimd::nearbyint(shifted / alpha);
    }
    return rounded;
  }

  /// The distance from an integer beyond which grid_position checks a lane against the
  /// division: 0.5 - 2^(k-18). A tighter window than needed costs a division and a
  /// mispredicted branch per register it catches (about 3% of registers at 2 bits with
  /// a fixed 1e-3 window).
  static float near_tie_distance(int bits) noexcept {
    return 0.5f - static_cast<float>(std::uint32_t{1} << bits) / static_cast<float>(1 << 18);
  }

  /// Whether the multiply by 1/alpha keeps the bound above: 1/alpha must be a normal
  /// float (an alpha below 2^-128 or above 2^126 goes to the scalar loop).
  static bool reciprocal_is_normal(float alpha) noexcept {
    const float inverse = 1.0f / alpha;
    return inverse >= 0x1p-126f && inverse <= 0x1.fffffep127f;
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
      for (; i + lanes <= count; i += lanes) {
        const float_batch position =
            xsimd::nearbyint((float_batch::load_unaligned(values + i) - beta) / alpha);
        store_bytes(codes + i, xsimd::batch_cast<std::int32_t>(xsimd::min(xsimd::max(position, zero), top)));
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
    // A degenerate grid (alpha = 0: every code 0) is rare enough for the scalar loop, and
    // keeping it out leaves the SIMD loop without a branch on alpha.
    if (!has_fused_multiply_add || !(grid.alpha > 0.0f) || !reciprocal_is_normal(grid.alpha)) {
      return em_pass_tail(values, count, grid, mean, sums);
    }
    if constexpr (std::is_base_of_v<xsimd::avx512f, Arch>) {
      if (grid.bits <= 4) return em_pass_few_levels(values, count, grid, mean);
    }
    const float_batch alpha(grid.alpha), beta(grid.beta), zero(0.0f);
    const float_batch top(static_cast<float>(detail::top_code(grid.bits)));
    // Codes and decoded levels come from float registers exactly as the reference makes
    // them. The sums are formed exactly as the reference forms them, in double lanes: EM's
    // trajectory amplifies float-sum noise in the M-step into different grids, and near
    // the optimum the MSE is so flat that noise in the squared error makes EM stop a step
    // early or late. The cross sum is sum x*z minus mean * sum z at the end (in double
    // that centring loses nothing measurable).
    // Separate accumulators per register half: one chain of dependent FMAs per register
    // would bound the loop by the FMA latency instead of its throughput.
    double_batch cross_low(0.0), cross_high(0.0), error_low_acc(0.0), error_high_acc(0.0);
    double_batch code_sum_acc(0.0), square_sum_acc(0.0);
    float_batch code_acc(0.0f), square_acc(0.0f);
    const float_batch inverse_alpha(1.0f / grid.alpha), near_tie(near_tie_distance(grid.bits));
    // Float code sums stay exact per lane below 2^24 (65025 per register at most), so
    // they move to double lanes after every 256 registers, without a horizontal add.
    constexpr std::size_t block = 256 * lanes;
    std::size_t i = 0;
    while (i + lanes <= count) {
      const std::size_t block_end = count - i >= block ? i + block : count - (count - i) % lanes;
      for (; i < block_end; i += lanes) {
        const float_batch x = float_batch::load_unaligned(values + i);
        const float_batch z =
            xsimd::min(xsimd::max(grid_position(x, beta, alpha, inverse_alpha, near_tie), zero), top);
        const float_batch level = fused_multiply_add(alpha, z, beta);
        code_acc += z;
        square_acc = fused_multiply_add(z, z, square_acc);  // exact: small integers
        double_batch x_low, x_high, z_low, z_high, level_low, level_high;
        to_double_halves(x, x_low, x_high);
        to_double_halves(z, z_low, z_high);
        to_double_halves(level, level_low, level_high);
        const double_batch error_low = x_low - level_low, error_high = x_high - level_high;
        cross_low = xsimd::fma(x_low, z_low, cross_low);
        cross_high = xsimd::fma(x_high, z_high, cross_high);
        error_low_acc = xsimd::fma(error_low, error_low, error_low_acc);
        error_high_acc = xsimd::fma(error_high, error_high, error_high_acc);
      }
      widen_into(code_acc, code_sum_acc);
      widen_into(square_acc, square_sum_acc);
      code_acc = square_acc = float_batch(0.0f);
    }
    sums.code_sum += xsimd::hadd(code_sum_acc);
    sums.code_square_sum += xsimd::hadd(square_sum_acc);
    sums.squared_error += xsimd::hadd(error_low_acc + error_high_acc);
    const double cross = xsimd::hadd(cross_low + cross_high);
    sums.centred_cross += cross - static_cast<double>(mean) * sums.code_sum;
    return em_pass_tail(values + i, count - i, grid, mean, sums);
  }

  /// em_pass for grids of at most 16 levels on AVX-512: the same terms, summed the same
  /// way, with fewer instructions. Widening z and the decoded level to double took four of
  /// the six float->double conversions per register (each two micro-ops on the two
  /// 512-bit ports, plus a lane extract); here both come from 16-entry double tables
  /// indexed by the code, one two-register permute (vpermt2pd) each, and the decoded float
  /// level is never formed. The table holds exactly the float the reference decodes, so
  /// every error and cross term is bit-identical to em_pass's. AVX2 has no variable
  /// permute of doubles across lanes, so the other instruction sets keep em_pass's loop.
  static simd::em_sums em_pass_few_levels(const float* values, std::size_t count,
                                          const uniform_params& grid, float mean) noexcept
    requires std::is_base_of_v<xsimd::avx512f, Arch>
  {
    const std::uint32_t top_level = detail::top_code(grid.bits);
    alignas(64) double level_table[16], code_table[16];
    for (std::uint32_t z = 0; z < 16; ++z) {
      const std::uint32_t code = z < top_level ? z : top_level;
      level_table[z] = detail::uniform_decode<Arch>(code, grid);
      code_table[z] = code;
    }
    const __m512d levels_low = _mm512_load_pd(level_table);
    const __m512d levels_high = _mm512_load_pd(level_table + 8);
    const __m512d codes_low = _mm512_load_pd(code_table), codes_high = _mm512_load_pd(code_table + 8);
    const __m512 alpha = _mm512_set1_ps(grid.alpha), beta = _mm512_set1_ps(grid.beta);
    const __m512 inverse_alpha = _mm512_set1_ps(1.0f / grid.alpha), zero = _mm512_setzero_ps();
    const __m512 top = _mm512_set1_ps(static_cast<float>(top_level));
    const __m512 near_tie = _mm512_set1_ps(near_tie_distance(grid.bits));
    const __m512 magnitude_mask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
    // The E-step works on elements j and j + 8 side by side in 64-bit lane j, so the
    // code of element j is the index in the low half of lane j and that of j + 8 (after
    // one shift) in the high half: the double-table permutes read them without a widening
    // of the codes. Elements 0-7 and 8-15 are widened to double straight from memory.
    const __m512i pairing = _mm512_setr_epi32(0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15);
    constexpr int nearest = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
    __m512d cross_low = _mm512_setzero_pd(), cross_high = _mm512_setzero_pd();
    __m512d error_low_acc = _mm512_setzero_pd(), error_high_acc = _mm512_setzero_pd();
    double_batch code_sum_acc(0.0), square_sum_acc(0.0);
    // Exact in float below 2^24 per lane (225 * 256 at most for the squares).
    constexpr std::size_t block = 256 * 16;
    const std::size_t body = count - count % 16, blocks = (body + block - 1) / block;
    for (std::size_t b = 0; b < blocks; ++b) {
      const std::size_t block_start = b * block;
      const std::size_t block_end = body - block_start >= block ? block_start + block : body;
      __m512 code_acc = _mm512_setzero_ps(), square_acc = _mm512_setzero_ps();
      for (std::size_t i = block_start; i < block_end; i += 16) {
        const __m512 x = _mm512_permutexvar_ps(pairing, _mm512_loadu_ps(values + i));
        const __m512 shifted = _mm512_sub_ps(x, beta);
        // Clamping before rounding gives the reference's clamp(round(q)), as 0 and top
        // are integers; clamped lanes then never look like ties.
        __m512 position =
            _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(shifted, inverse_alpha), zero), top);
        __m512i code = _mm512_cvt_roundps_epi32(position, nearest);
        __m512 z = _mm512_cvtepi32_ps(code);
        // As grid_position: a register with a lane close to a tie takes the reference's
        // division (rare with near_tie_distance's window, so the branch predicts well).
        const __m512 distance = _mm512_and_ps(_mm512_sub_ps(position, z), magnitude_mask);
        if (_mm512_cmp_ps_mask(distance, near_tie, _CMP_GT_OQ) != 0) {
          position = _mm512_min_ps(_mm512_max_ps(_mm512_div_ps(shifted, alpha), zero), top);
          code = _mm512_cvt_roundps_epi32(position, nearest);
          z = _mm512_cvtepi32_ps(code);
        }
        code_acc = _mm512_add_ps(code_acc, z);
        square_acc = _mm512_fmadd_ps(z, z, square_acc);
        const __m512i code_of_high = _mm512_srli_epi64(code, 32);
        const __m512d x_low = _mm512_cvtps_pd(_mm256_loadu_ps(values + i));
        const __m512d x_high = _mm512_cvtps_pd(_mm256_loadu_ps(values + i + 8));
        const __m512d level_low = _mm512_permutex2var_pd(levels_low, code, levels_high);
        const __m512d level_high = _mm512_permutex2var_pd(levels_low, code_of_high, levels_high);
        const __m512d z_low = _mm512_permutex2var_pd(codes_low, code, codes_high);
        const __m512d z_high = _mm512_permutex2var_pd(codes_low, code_of_high, codes_high);
        const __m512d error_low = _mm512_sub_pd(x_low, level_low);
        const __m512d error_high = _mm512_sub_pd(x_high, level_high);
        error_low_acc = _mm512_fmadd_pd(error_low, error_low, error_low_acc);
        error_high_acc = _mm512_fmadd_pd(error_high, error_high, error_high_acc);
        cross_low = _mm512_fmadd_pd(x_low, z_low, cross_low);
        cross_high = _mm512_fmadd_pd(x_high, z_high, cross_high);
      }
      widen_into(float_batch(code_acc), code_sum_acc);
      widen_into(float_batch(square_acc), square_sum_acc);
    }
    simd::em_sums sums;
    sums.code_sum = xsimd::hadd(code_sum_acc);
    sums.code_square_sum = xsimd::hadd(square_sum_acc);
    sums.squared_error = _mm512_reduce_add_pd(_mm512_add_pd(error_low_acc, error_high_acc));
    const double cross = _mm512_reduce_add_pd(_mm512_add_pd(cross_low, cross_high));
    sums.centred_cross = cross - static_cast<double>(mean) * sums.code_sum;
    return em_pass_tail(values + body, count - body, grid, mean, sums);
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
  /// starting from `head` (elements before `head` are the caller's to handle). The width
  /// is a template parameter so every loop bound and load size is a constant.
  template <int Bits, class Emit>
  static std::size_t for_each_code_batch_of(const std::uint8_t* packed, std::size_t first,
                                            std::size_t count, std::size_t head,
                                            Emit&& emit) noexcept {
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
  static constexpr std::size_t streaming_threshold = std::size_t{1} << 22;
  static constexpr std::size_t streaming_chunk = 4096;  ///< floats decoded per L1-sized chunk

  /// Non-temporal store of one register to register-aligned memory (xsimd 8.1 has none).
  static void stream_store(float* aligned_dst, const float_batch& x) noexcept {
    if constexpr (std::is_base_of_v<xsimd::avx512f, Arch>) {
      _mm512_stream_ps(aligned_dst, x);
    } else if constexpr (std::is_base_of_v<xsimd::avx, Arch>) {
      _mm256_stream_ps(aligned_dst, x);
    } else {
      _mm_stream_ps(aligned_dst, x);
    }
  }

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
    for (; i + lanes <= count; i += lanes) stream_store(dst + i, float_batch::load_unaligned(src + i));
    for (; i < count; ++i) dst[i] = src[i];
  }

  /// values[i] = alpha * code(first + i) + beta, straight from the canonical layout.
  static void dequantize_uniform(const std::uint8_t* packed, std::size_t first, std::size_t count,
                                 int bits, const uniform_params& grid, float* values) noexcept {
    if (count < streaming_threshold) {
      dequantize_uniform_cached(packed, first, count, bits, grid, values);
      return;
    }
    const std::size_t head = head_length(first, count, bits);
    if (word_aligned_width(bits) && register_aligned(values + head)) {
      // The first whole code word lands on a register boundary of the output: stream
      // each decoded register straight out.
      pack::dequantize_uniform_ref<Arch>(packed, first, head, bits, grid, values);
      const float_batch alpha(grid.alpha), beta(grid.beta);
      const std::size_t done = for_each_code_batch(
          packed, first, count, bits, head, [&](std::size_t at, const i32_batch& codes) {
            stream_store(values + at, fused_multiply_add(alpha, xsimd::batch_cast<float>(codes), beta));
          });
      pack::dequantize_uniform_ref<Arch>(packed, first + done, count - done, bits, grid, values + done);
      _mm_sfence();
      return;
    }
    // Otherwise decode L1-sized chunks and stream them out from there.
    alignas(64) float chunk[streaming_chunk];
    for (std::size_t done = 0; done < count; done += streaming_chunk) {
      const std::size_t length = count - done < streaming_chunk ? count - done : streaming_chunk;
      dequantize_uniform_cached(packed, first + done, length, bits, grid, chunk);
      stream_copy(values + done, chunk, length);
    }
    _mm_sfence();  // order the streaming stores before anything the caller does next
  }

  static void dequantize_uniform_cached(const std::uint8_t* packed, std::size_t first,
                                        std::size_t count, int bits, const uniform_params& grid,
                                        float* values) noexcept {
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

  /// Stores the low byte of every lane (values 0..255) to `out`.
  static void store_bytes(std::uint8_t* out, const i32_batch& lanes_in) noexcept {
    if constexpr (std::is_base_of_v<xsimd::avx512f, Arch>) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm512_cvtepi32_epi8(lanes_in));
    } else {
      alignas(64) std::int32_t lane_values[lanes];
      lanes_in.store_aligned(lane_values);
      for (std::size_t j = 0; j < lanes; ++j) out[j] = static_cast<std::uint8_t>(lane_values[j]);
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
        [&](std::size_t at, const i32_batch& batch_codes) { store_bytes(codes + at, batch_codes); });
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
