// Reduction kernels over xsimd's batch<T, Arch>: min/max, and the sums in the 16 virtual
// lanes of qgan/simd/kernel_types.hpp. No #include and no namespace: kernels.hpp and the
// run-time dispatch units include this inside a namespace of their own. Mirrors
// qgan/quant/reductions_ref.hpp, which takes every tail.

template <class Arch>
struct reduction_kernels {
  using float_batch = xsimd::batch<float, Arch>;
  using double_batch = xsimd::batch<double, Arch>;
  static constexpr std::size_t float_lanes = float_batch::size;
  static constexpr std::size_t double_lanes = double_batch::size;
  /// Double registers that hold the 16 virtual lanes (2 on AVX-512, 8 on SSE2 and NEON).
  static constexpr std::size_t lane_registers = virtual_lanes / double_lanes;
  static constexpr std::size_t floats_per_block = virtual_lanes;
  static_assert(virtual_lanes % float_lanes == 0 && 2 * double_lanes == float_lanes);

  static void minmax(const float* values, std::size_t count, float& lowest, float& highest) noexcept {
    std::size_t i = 0;
    if (count >= float_lanes) {
      float_batch low = float_batch::load_unaligned(values), high = low;
      for (i = float_lanes; i + float_lanes <= count; i += float_lanes) {
        const float_batch x = float_batch::load_unaligned(values + i);
        low = xsimd::min(low, x);
        high = xsimd::max(high, x);
      }
      alignas(64) float low_lanes[float_lanes], high_lanes[float_lanes];
      low.store_aligned(low_lanes);
      high.store_aligned(high_lanes);
      detail::minmax_ref<Arch>(low_lanes, float_lanes, lowest, highest);
      detail::minmax_ref<Arch>(high_lanes, float_lanes, lowest, highest);
    }
    detail::minmax_ref<Arch>(values + i, count - i, lowest, highest);
  }

  /// Adds the lane registers into `lanes` (element order = virtual lane order).
  static void store_lanes(const double_batch (&registers)[lane_registers],
                          double (&lanes)[virtual_lanes]) noexcept {
    for (std::size_t r = 0; r < lane_registers; ++r) registers[r].store_unaligned(lanes + r * double_lanes);
  }

  static value_summary summarize(const float* values, std::size_t count) noexcept {
    value_summary result;
    if (count == 0) return result;
    result.lowest = result.highest = values[0];
    minmax(values, count, result.lowest, result.highest);
    double_batch sums[lane_registers];
    for (auto& sum : sums) sum = double_batch(0.0);
    const std::size_t body = count - count % floats_per_block;
    for (std::size_t i = 0; i < body; i += floats_per_block) {
      for (std::size_t r = 0; r < floats_per_block / float_lanes; ++r) {
        double_batch low, high;
        isa::to_double_halves<Arch>(float_batch::load_unaligned(values + i + r * float_lanes), low, high);
        sums[2 * r] += low;
        sums[2 * r + 1] += high;
      }
    }
    double lanes[virtual_lanes];
    store_lanes(sums, lanes);
    for (std::size_t i = body; i < count; ++i) lanes[i - body] += values[i];
    result.sum = fold_lanes<Arch>(lanes);
    return result;
  }

  static double centred_square_sum(const float* values, std::size_t count, double mean) noexcept {
    double_batch sums[lane_registers];
    for (auto& sum : sums) sum = double_batch(0.0);
    const double_batch centre(mean);
    const std::size_t body = count - count % floats_per_block;
    for (std::size_t i = 0; i < body; i += floats_per_block) {
      for (std::size_t r = 0; r < floats_per_block / float_lanes; ++r) {
        double_batch low, high;
        isa::to_double_halves<Arch>(float_batch::load_unaligned(values + i + r * float_lanes), low, high);
        low -= centre;
        high -= centre;
        sums[2 * r] += low * low;  // rounded, then added: no fused multiply-add
        sums[2 * r + 1] += high * high;
      }
    }
    double lanes[virtual_lanes];
    store_lanes(sums, lanes);
    for (std::size_t i = body; i < count; ++i) {
      const double offset = static_cast<double>(values[i]) - mean;
      const double square = offset * offset;
      lanes[i - body] += square;
    }
    return fold_lanes<Arch>(lanes);
  }
};
