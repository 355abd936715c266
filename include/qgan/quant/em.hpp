// EM quantizer (QGAN §4.1, Eq. 6-10): fit w ~ alpha*z + beta by alternating the E-step
// z = clamp(round((w - beta)/alpha), 0, 2^k-1) and the least-squares M-step
// alpha = cov(w, z)/var(z), beta = mean(w) - alpha*mean(z), starting from minmax.
// Defaults are the paper's algorithm ("EM (paper)"); `plus()` turns on the improvements
// the tables show as "EM+": exact 2-means at k = 1 and restarts from clipped ranges.
//
// Every pass goes through the selected kernel set (qgan/simd/select.hpp): one fused pass
// per iteration computes the E-step, the MSE of the float grid exactly as qgan::mse
// measures a fake-quantized tensor, and the M-step's sums, in the fixed order of
// qgan/simd/kernel_types.hpp, so every kernel set and thread count fits the same grid. The
// best grid seen is returned, so the result's MSE is never above minmax's even where
// rounding makes an M-step a hair worse.
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
#include "qgan/core/parallel.hpp"
#include "qgan/quant/reductions_ref.hpp"
#include "qgan/simd/reference_set.hpp"
#include "qgan/simd/select.hpp"

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

  int threads = 1;  ///< threads splitting each pass of a long tensor; never changes the result

  template <class Arch = xsimd::default_arch>
  params fit(std::span<const float> values, int bits, std::string_view tensor_name = {}) const {
    return fit_traced<Arch>(values, bits, tensor_name).params;
  }

  /// fit() with the MSE of every step of the paper's run.
  template <class Arch = xsimd::default_arch>
  em_fit_result fit_traced(std::span<const float> values, int bits,
                           std::string_view tensor_name = {}) const {
    return fit_with<Arch>(simd::active_kernels<Arch>(), values, bits, tensor_name);
  }

  /// The same fit on the scalar reference kernels: what every kernel set must reproduce
  /// bit for bit, and the baseline the benchmarks time.
  em_fit_result fit_reference(std::span<const float> values, int bits,
                              std::string_view tensor_name = {}) const {
    return fit_with<simd::scalar_tag>(simd::reference_kernel_set<>(), values, bits, tensor_name);
  }

  /// The fit on a given kernel set.
  template <class Arch = xsimd::default_arch>
  em_fit_result fit_with(const simd::kernel_set& kernels, std::span<const float> values, int bits,
                         std::string_view tensor_name = {}) const {
    detail::require_bits(bits, name);
    if (max_iters < 0) detail::throw_error(name, ": max_iters = ", max_iters, " is negative");
    if (!(tol >= 0.0)) detail::throw_error(name, ": tol = ", tol, " must be >= 0");
    if (values.empty()) {
      require_finite(values, tensor_name);
      return em_fit_result{.params = detail::minmax_grid(0.0, 0.0, bits, tensor_name)};
    }
    const bool restarting = bits >= 2 && !restart_clips.empty();
    const moments stats = measure<Arch>(kernels, values, restarting, tensor_name);
    const uniform_params start = detail::minmax_grid(stats.lowest, stats.highest, bits, tensor_name);
    em_fit_result result = run<Arch>(kernels, values, start, stats.mean, true);
    if (bits == 1 && exact_one_bit) {
      keep_better<Arch>(kernels, result, values, detail::optimal_two_means<Arch>(values, tensor_name));
    }
    if (bits >= 2) {
      for (const double clip : restart_clips) {
        const double lo = std::max(stats.lowest, stats.mean - clip * stats.deviation);
        const double hi = std::min(stats.highest, stats.mean + clip * stats.deviation);
        if (!(lo < hi)) continue;
        const em_fit_result restart = run<Arch>(kernels, values, detail::minmax_grid(lo, hi, bits), stats.mean, false);
        if (restart.mse < result.mse) {
          result.params = restart.params;
          result.mse = restart.mse;
        }
      }
    }
    return result;
  }

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

  /// Runs part(first, length) on every reduction_chunk piece, on up to `threads` threads,
  /// and returns the parts in piece order.
  // Every helper below is a template on the caller's architecture, like the front doors:
  // their bodies (and the lambdas parallel_for instantiates) are compiled with the
  // caller's flags, so units built with different flags must not share them.
  template <class Arch, class Part, class Function>
  std::vector<Part> over_chunks(std::span<const float> values, Function&& part) const {
    std::vector<Part> parts((values.size() + simd::reduction_chunk - 1) / simd::reduction_chunk);
    parallel_for(parts.size(), threads, [&](std::size_t c) {
      const std::size_t first = c * simd::reduction_chunk;
      const std::size_t length = std::min(simd::reduction_chunk, values.size() - first);
      parts[c] = part(values.data() + first, length);
    });
    return parts;
  }

  // One pass over min, max and sum (a NaN or Inf makes the sum non-finite, and the
  // scalar check then names it); the deviation only when restarts need it.
  template <class Arch>
  moments measure(const simd::kernel_set& kernels, std::span<const float> values, bool with_deviation,
                  std::string_view tensor_name) const {
    const auto parts = over_chunks<Arch, simd::value_summary>(
        values, [&](const float* first, std::size_t length) { return kernels.reductions.summarize(first, length); });
    double sum = 0.0;
    float lowest = parts.front().lowest, highest = parts.front().highest;
    for (const auto& part : parts) {
      sum += part.sum;
      lowest = std::min(lowest, part.lowest);
      highest = std::max(highest, part.highest);
    }
    if (!std::isfinite(sum)) require_finite(values, tensor_name);
    moments stats;
    stats.lowest = detail::positive_zero(lowest);
    stats.highest = detail::positive_zero(highest);
    stats.mean = sum / static_cast<double>(values.size());
    if (with_deviation) {
      const auto squares = over_chunks<Arch, double>(values, [&](const float* first, std::size_t length) {
        return kernels.reductions.centred_square_sum(first, length, stats.mean);
      });
      double total = 0.0;
      for (const double part : squares) total += part;
      stats.deviation = std::sqrt(total / static_cast<double>(values.size()));
    }
    return stats;
  }

  template <class Arch>
  pass_result pass(const simd::kernel_set& kernels, std::span<const float> values,
                   const uniform_params& grid, double mean) const {
    const auto parts = over_chunks<Arch, simd::em_sums>(
        values, [&](const float* first, std::size_t length) { return kernels.em.em_pass(first, length, grid); });
    simd::em_sums sums;
    for (const auto& part : parts) sums += part;
    const double count = static_cast<double>(values.size());
    pass_result result;
    result.mse = sums.squared_error / count;
    result.code_mean = sums.code_sum / count;
    result.code_variance = sums.code_square_sum - sums.code_sum * result.code_mean;
    if (result.code_variance < 0.0) result.code_variance = 0.0;
    result.covariance = sums.cross - mean * sums.code_sum;  // sum (w - mean) z
    return result;
  }

  template <class Arch>
  void keep_better(const simd::kernel_set& kernels, em_fit_result& result,
                   std::span<const float> values, const uniform_params& candidate) const {
    const double candidate_mse = pass<Arch>(kernels, values, candidate, 0.0).mse;
    if (candidate_mse < result.mse) {
      result.params = candidate;
      result.mse = candidate_mse;
    }
  }

  // One EM run from `grid`: each pass is an E-step that also measures the current grid's
  // MSE and the sums the least-squares M-step needs.
  template <class Arch>
  em_fit_result run(const simd::kernel_set& kernels, std::span<const float> values,
                    uniform_params grid, double mean, bool record_trace) const {
    em_fit_result best{.params = grid, .mse = std::numeric_limits<double>::infinity()};
    for (int step = 0;; ++step) {
      const pass_result step_result = pass<Arch>(kernels, values, grid, mean);
      if (record_trace) best.mse_trace.push_back(step_result.mse);
      if (!(step_result.mse < best.mse)) break;  // fixed point reached, or rounding made it worse
      const double previous = best.mse;
      best.params = grid;
      best.mse = step_result.mse;
      if (step == max_iters || previous - step_result.mse < tol * previous) break;

      // M-step: alpha = cov(w, z) / var(z), beta = mean(w) - alpha * mean(z). With every
      // weight on one level any alpha fits: keep it and centre that level.
      double alpha = grid.alpha;
      if (step_result.code_variance > 0.0) alpha = step_result.covariance / step_result.code_variance;
      const double beta = mean - alpha * step_result.code_mean;
      if (!(alpha > 0.0) || !std::isfinite(alpha) || !std::isfinite(beta)) break;
      grid.alpha = static_cast<float>(alpha);
      grid.beta = static_cast<float>(beta);
      if (record_trace) best.m_steps = step + 1;
    }
    return best;
  }
};

}  // namespace qgan
