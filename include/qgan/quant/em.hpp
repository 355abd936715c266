// EM quantizer (QGAN §4.1, Eq. 6-10): fit w ~ alpha*z + beta by alternating the E-step
// z = clamp(round((w - beta)/alpha), 0, 2^k-1) and the least-squares M-step
// alpha = cov(w, z)/var(z), beta = mean(w) - alpha*mean(z), starting from minmax.
// Defaults are the paper's algorithm ("EM (paper)"); `plus()` turns on the improvements
// the tables show as "EM+": exact 2-means at k = 1 and restarts from clipped ranges.
//
// This is the plain reference loop: one pass over the data per iteration, M-step sums in
// double on data centred by the mean (E[wz] - E[w]E[z] cancels badly in float).
// Every iteration's MSE is measured on the float grid exactly as qgan::mse measures a
// fake-quantized tensor, and the best grid seen is returned, so the result's MSE is never
// above minmax's even where rounding makes an M-step a hair worse.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string_view>
#include <vector>

#include "qgan/core/finite.hpp"
#include "qgan/quant/minmax.hpp"
#include "qgan/quant/two_means.hpp"
#include "qgan/quant/uniform_grid.hpp"
#include "qgan/simd/kernels.hpp"

namespace qgan {

struct em_fit_result {
  uniform_params params;
  double mse = 0.0;                ///< MSE of `params` on the fitted data
  std::vector<double> mse_trace{}; ///< paper run: MSE of the grid before each M-step
  int m_steps = 0;                 ///< M-steps taken by the paper run
};

struct em_quantizer {
  using params = uniform_params;
  static constexpr std::string_view name = "em";

  int max_iters = 16;     ///< M-steps at most (the paper uses 32 at 4 bits)
  double tol = 0.0;       ///< stop when the MSE improves by less than tol * MSE (0: only
                          ///< at a fixed point, as the paper runs it)
  bool exact_one_bit = false;           ///< EM+: exact 1-D 2-means at k = 1
  std::vector<double> restart_clips{};  ///< EM+: extra starts, minmax on mean ± c·std

  /// The improved configuration the tables call "EM+". From minmax's start EM creeps at
  /// 4-6 bits (16 steps leave it 20-40% above where it converges on Gaussian and Laplacian
  /// weights), so EM+ also allows 64 steps; the paper's run is one of its candidates, so
  /// EM+ is never worse than EM (paper).
  static em_quantizer plus() {
    em_quantizer improved;
    improved.max_iters = 64;
    improved.exact_one_bit = true;
    improved.restart_clips = {1.5, 2.0, 3.0, 4.0};
    return improved;
  }

  params fit(std::span<const float> values, int bits, std::string_view tensor_name = {}) const {
    return fit_traced(values, bits, tensor_name).params;
  }

  /// fit() with the MSE of every step of the paper's run; SIMD passes.
  em_fit_result fit_traced(std::span<const float> values, int bits,
                           std::string_view tensor_name = {}) const {
    return fit_with<simd_pass>(values, bits, tensor_name);
  }

  /// The same algorithm with the plain scalar loop a user would write: the reference the
  /// SIMD path is tested and benchmarked against.
  em_fit_result fit_reference(std::span<const float> values, int bits,
                              std::string_view tensor_name = {}) const {
    return fit_with<reference_pass>(values, bits, tensor_name);
  }

 private:
  template <class Pass>
  em_fit_result fit_with(std::span<const float> values, int bits,
                         std::string_view tensor_name) const {
    detail::require_bits(bits, name);
    if (max_iters < 0) detail::throw_error(name, ": max_iters = ", max_iters, " is negative");
    if (!(tol >= 0.0)) detail::throw_error(name, ": tol = ", tol, " must be >= 0");
    if (values.empty()) {
      require_finite(values, tensor_name);
      return em_fit_result{.params = minmax_quantizer{}.fit(values, bits, tensor_name)};
    }
    const bool restarting = bits >= 2 && !restart_clips.empty();
    const moments stats = Pass::measure(values, restarting, tensor_name);
    const uniform_params start = detail::minmax_grid(stats.lowest, stats.highest, bits, tensor_name);
    em_fit_result result = run<Pass>(values, start, stats.mean, true);
    if (bits == 1 && exact_one_bit) {
      keep_better(result, values, detail::optimal_two_means(values, tensor_name));
    }
    if (bits >= 2) {
      for (const double clip : restart_clips) {
        const double lo = std::max(stats.lowest, stats.mean - clip * stats.deviation);
        const double hi = std::min(stats.highest, stats.mean + clip * stats.deviation);
        if (!(lo < hi)) continue;
        const em_fit_result restart =
            run<Pass>(values, detail::minmax_grid(lo, hi, bits), stats.mean, false);
        if (restart.mse < result.mse) {
          result.params = restart.params;
          result.mse = restart.mse;
        }
      }
    }
    return result;
  }

 public:
  std::uint32_t encode(float value, const params& grid) const noexcept {
    return detail::uniform_encode(value, grid);
  }
  float decode(std::uint32_t code, const params& grid) const noexcept {
    return detail::uniform_decode(code, grid);
  }

 private:
  struct moments {
    double mean = 0.0, deviation = 0.0, lowest = 0.0, highest = 0.0;
  };

  // What the M-step needs from one E-step pass over the data.
  struct pass_result {
    double mse = 0.0, code_mean = 0.0, code_variance = 0.0, covariance = 0.0;
  };

  // The plain loop: per-level counts and centred sums in double.
  struct reference_pass {
    static moments measure(std::span<const float> values, bool /*with_deviation*/,
                           std::string_view tensor_name) {
      require_finite(values, tensor_name);
      return measure_moments(values);
    }

    static pass_result run(std::span<const float> values, const uniform_params& grid,
                           double mean) {
      const std::uint32_t levels = detail::level_count(grid.bits);
      const double count = static_cast<double>(values.size());
      std::vector<double> level_count(levels), level_sum(levels);
      double squared_error = 0.0;
      for (const float value : values) {
        const std::uint32_t code = detail::uniform_encode(value, grid);
        const double error = static_cast<double>(value) - detail::uniform_decode(code, grid);
        squared_error += error * error;
        level_count[code] += 1.0;
        level_sum[code] += static_cast<double>(value) - mean;
      }
      pass_result result;
      result.mse = squared_error / count;
      for (std::uint32_t z = 0; z < levels; ++z) result.code_mean += z * level_count[z];
      result.code_mean /= count;
      for (std::uint32_t z = 0; z < levels; ++z) {
        const double offset = z - result.code_mean;
        result.code_variance += level_count[z] * offset * offset;
        result.covariance += offset * level_sum[z];
      }
      return result;
    }
  };

  // One fused SIMD pass (qgan/simd/kernels_body.inl: em_pass): E-step, squared error and
  // the sums of z, z^2 and (w - mean) z. Centring uses the float mean; the double
  // correction below removes what that rounding leaves.
  struct simd_pass {
    // One fused pass for min, max and sum (a NaN or Inf makes the sum non-finite, and the
    // scalar check then names it); the deviation only when restarts need it.
    static moments measure(std::span<const float> values, bool with_deviation,
                           std::string_view tensor_name) {
      const auto summary = simd::native_kernels::summarize(values.data(), values.size());
      if (!std::isfinite(summary.sum)) require_finite(values, tensor_name);
      moments stats;
      stats.lowest = summary.lowest;
      stats.highest = summary.highest;
      stats.mean = summary.sum / static_cast<double>(values.size());
      if (with_deviation) {
        stats.deviation = std::sqrt(
            simd::native_kernels::centred_square_sum(values.data(), values.size(), stats.mean) /
            static_cast<double>(values.size()));
      }
      return stats;
    }

    static pass_result run(std::span<const float> values, const uniform_params& grid,
                           double mean) {
      const float float_mean = static_cast<float>(mean);
      const simd::em_sums sums =
          simd::native_kernels::em_pass(values.data(), values.size(), grid, float_mean);
      const double count = static_cast<double>(values.size());
      pass_result result;
      result.mse = sums.squared_error / count;
      result.code_mean = sums.code_sum / count;
      result.code_variance = sums.code_square_sum - sums.code_sum * result.code_mean;
      if (result.code_variance < 0.0) result.code_variance = 0.0;
      // sum (w - float_mean) z = sum (w - mean) z + (mean - float_mean) sum z
      result.covariance =
          sums.centred_cross - (mean - static_cast<double>(float_mean)) * sums.code_sum;
      return result;
    }
  };
  static moments measure_moments(std::span<const float> values) {
    moments stats;
    double sum = 0.0;
    stats.lowest = stats.highest = values.front();
    for (const float value : values) {
      sum += value;
      stats.lowest = std::min(stats.lowest, static_cast<double>(value));
      stats.highest = std::max(stats.highest, static_cast<double>(value));
    }
    stats.mean = sum / static_cast<double>(values.size());
    double squares = 0.0;
    for (const float value : values) squares += (value - stats.mean) * (value - stats.mean);
    stats.deviation = std::sqrt(squares / static_cast<double>(values.size()));
    return stats;
  }

  static double grid_mse(std::span<const float> values, const uniform_params& grid) {
    double squared_error = 0.0;
    for (const float value : values) {
      const double error = static_cast<double>(value) -
                           detail::uniform_decode(detail::uniform_encode(value, grid), grid);
      squared_error += error * error;
    }
    return squared_error / static_cast<double>(values.size());
  }

  static void keep_better(em_fit_result& result, std::span<const float> values,
                          const uniform_params& candidate) {
    const double candidate_mse = grid_mse(values, candidate);
    if (candidate_mse < result.mse) {
      result.params = candidate;
      result.mse = candidate_mse;
    }
  }

  // One EM run from `grid`: each pass is an E-step that also measures the current grid's
  // MSE and the sums the least-squares M-step needs.
  template <class Pass>
  em_fit_result run(std::span<const float> values, uniform_params grid, double mean,
                    bool record_trace) const {
    em_fit_result best{.params = grid, .mse = std::numeric_limits<double>::infinity()};
    for (int step = 0;; ++step) {
      const pass_result pass = Pass::run(values, grid, mean);
      if (record_trace) best.mse_trace.push_back(pass.mse);
      if (!(pass.mse < best.mse)) break;  // fixed point reached, or rounding made it worse
      const double previous = best.mse;
      best.params = grid;
      best.mse = pass.mse;
      if (step == max_iters || previous - pass.mse < tol * previous) break;

      // M-step: alpha = cov(w, z) / var(z), beta = mean(w) - alpha * mean(z). With every
      // weight on one level any alpha fits: keep it and centre that level.
      double alpha = grid.alpha;
      if (pass.code_variance > 0.0) alpha = pass.covariance / pass.code_variance;
      const double beta = mean - alpha * pass.code_mean;
      if (!(alpha > 0.0) || !std::isfinite(alpha) || !std::isfinite(beta)) break;
      grid.alpha = static_cast<float>(alpha);
      grid.beta = static_cast<float>(beta);
      if (record_trace) best.m_steps = step + 1;
    }
    return best;
  }
};

}  // namespace qgan
