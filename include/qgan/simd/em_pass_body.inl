// The fused EM pass over xsimd's batch<T, Arch>: E-step, squared error and the sums the
// M-step needs, in the 16 virtual lanes of qgan/simd/kernel_types.hpp, bit-identical to
// detail::em_pass_ref (qgan/quant/reductions_ref.hpp). No #include and no namespace (see
// reductions_body.inl).

template <class Arch>
struct em_kernels {
  using float_batch = xsimd::batch<float, Arch>;
  using double_batch = xsimd::batch<double, Arch>;
  static constexpr std::size_t float_lanes = float_batch::size;
  static constexpr std::size_t double_lanes = double_batch::size;
  static constexpr std::size_t lane_registers = virtual_lanes / double_lanes;

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
    if (xsimd::any(xsimd::abs(scaled - rounded) > near_tie)) return xsimd::nearbyint(isa::divide<Arch>(shifted, alpha));
    return rounded;
  }

  /// 0.5 - 2^(k-18): a tighter window than needed costs a division and a mispredicted
  /// branch per register it catches (about 3% of registers at 2 bits with 1e-3).
  static float near_tie_distance(int bits) noexcept {
    return 0.5f - static_cast<float>(std::uint32_t{1} << bits) / static_cast<float>(1 << 18);
  }

  /// The bound above needs 1/alpha to be a normal float.
  static bool reciprocal_is_normal(float alpha) noexcept {
    const float inverse = 1.0f / alpha;
    return inverse >= 0x1p-126f && inverse <= 0x1.fffffep127f;
  }

  static em_sums em_pass(const float* values, std::size_t count, const uniform_params& grid) noexcept {
    // Without a fused multiply-add the decoded level would round twice; a degenerate grid
    // (alpha = 0: every code 0) is rare. Both take the reference, which is the definition.
    if constexpr (!isa::has_fused_multiply_add<Arch>) {
      return detail::em_pass_ref<Arch>(values, count, grid);
    } else {
      if (!(grid.alpha > 0.0f) || !reciprocal_is_normal(grid.alpha)) {
        return detail::em_pass_ref<Arch>(values, count, grid);
      }
      double error_lanes[virtual_lanes], cross_lanes[virtual_lanes];
      em_sums sums;
      const std::size_t body = count - count % virtual_lanes;
#if defined(__AVX512F__) && defined(__AVX512DQ__)
      if constexpr (std::is_base_of_v<xsimd::avx512f, Arch>) {
        if (grid.bits <= 4) {
          x86::em_pass_few_levels_avx512<Arch>(values, body, grid, error_lanes, cross_lanes, sums);
          return finish(values + body, count - body, grid, error_lanes, cross_lanes, sums);
        }
      }
#endif
      generic_body(values, body, grid, error_lanes, cross_lanes, sums);
      return finish(values + body, count - body, grid, error_lanes, cross_lanes, sums);
    }
  }

  /// The remaining count < 16 elements go to lanes 0.. in order, then the lanes fold.
  static em_sums finish(const float* tail, std::size_t count, const uniform_params& grid,
                        double (&error_lanes)[virtual_lanes], double (&cross_lanes)[virtual_lanes],
                        em_sums sums) noexcept {
    for (std::size_t j = 0; j < count; ++j) {
      const std::uint32_t code = detail::uniform_encode<Arch>(tail[j], grid);
      const double value = tail[j], z = static_cast<double>(code);
      const double error = value - static_cast<double>(detail::uniform_decode<Arch>(code, grid));
      const double square = error * error;
      error_lanes[j] += square;
      cross_lanes[j] += value * z;
      sums.code_sum += z;
      sums.code_square_sum += z * z;
    }
    sums.squared_error = fold_lanes<Arch>(error_lanes);
    sums.cross = fold_lanes<Arch>(cross_lanes);
    return sums;
  }

  static void generic_body(const float* values, std::size_t body, const uniform_params& grid,
                           double (&error_lanes)[virtual_lanes], double (&cross_lanes)[virtual_lanes],
                           em_sums& sums) noexcept
    requires isa::has_fused_multiply_add<Arch>
  {
    const float_batch alpha(grid.alpha), beta(grid.beta), zero(0.0f);
    const float_batch top(static_cast<float>(detail::top_code(grid.bits)));
    const float_batch inverse_alpha(1.0f / grid.alpha), near_tie(near_tie_distance(grid.bits));
    double_batch errors[lane_registers], crosses[lane_registers];
    for (std::size_t r = 0; r < lane_registers; ++r) errors[r] = crosses[r] = double_batch(0.0);
    double_batch code_sum(0.0), square_sum(0.0);
    // Float code sums stay exact per lane below 2^24 (65025 per register at most), so they
    // move to double lanes after every 256 registers a lane has taken.
    constexpr std::size_t block = 256 * float_lanes;
    static_assert(block % virtual_lanes == 0);
    for (std::size_t block_start = 0; block_start < body; block_start += block) {
      const std::size_t block_end = body - block_start >= block ? block_start + block : body;
      float_batch code_acc(0.0f), square_acc(0.0f);
      for (std::size_t i = block_start; i < block_end; i += virtual_lanes) {
        for (std::size_t r = 0; r < virtual_lanes / float_lanes; ++r) {
          const float_batch x = float_batch::load_unaligned(values + i + r * float_lanes);
          const float_batch z =
              xsimd::min(xsimd::max(grid_position(x, beta, alpha, inverse_alpha, near_tie), zero), top);
          const float_batch level = isa::fused_multiply_add<Arch>(alpha, z, beta);
          code_acc += z;
          square_acc += z * z;  // exact: small integers
          double_batch x_low, x_high, z_low, z_high, level_low, level_high;
          isa::to_double_halves<Arch>(x, x_low, x_high);
          isa::to_double_halves<Arch>(z, z_low, z_high);
          isa::to_double_halves<Arch>(level, level_low, level_high);
          const double_batch error_low = x_low - level_low, error_high = x_high - level_high;
          errors[2 * r] += error_low * error_low;  // rounded, then added, as the reference
          errors[2 * r + 1] += error_high * error_high;
          crosses[2 * r] += x_low * z_low;  // exact products
          crosses[2 * r + 1] += x_high * z_high;
        }
      }
      double_batch low, high;
      isa::to_double_halves<Arch>(code_acc, low, high);
      code_sum += low + high;
      isa::to_double_halves<Arch>(square_acc, low, high);
      square_sum += low + high;
    }
    for (std::size_t r = 0; r < lane_registers; ++r) {
      errors[r].store_unaligned(error_lanes + r * double_lanes);
      crosses[r].store_unaligned(cross_lanes + r * double_lanes);
    }
    sums.code_sum += xsimd::hadd(code_sum);
    sums.code_square_sum += xsimd::hadd(square_sum);
  }
};
