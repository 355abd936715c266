// Lloyd-Max quantizer: the MSE-optimal non-uniform codebook of 2^k levels, found by 1-D
// k-means started from EM+'s grid. It is the floor the tables compare uniform grids with:
// it starts where EM+ ends and only accepts changes that lower the MSE, so its MSE is
// never above EM's. Decode is a table lookup; encode picks the nearest level.
//
// Each iteration works on the data sorted once: cells of a sorted codebook are contiguous
// runs of sorted data, so a cell's mean comes from prefix sums in O(2^k log N).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "qgan/core/finite.hpp"
#include "qgan/quant/em.hpp"

namespace qgan {

struct codebook_params {
  std::vector<float> levels{};  ///< sorted ascending, 2^bits entries
  int bits = 1;
  friend bool operator==(const codebook_params&, const codebook_params&) = default;
};

struct lloyd_max_quantizer {
  using params = codebook_params;
  static constexpr std::string_view name = "lloyd";

  int max_iters = 100;
  em_quantizer start = em_quantizer::plus();  ///< where the codebook starts

  params fit(std::span<const float> values, int bits, std::string_view tensor_name = {}) const {
    detail::require_bits(bits, name);
    if (max_iters < 0) detail::throw_error(name, ": max_iters = ", max_iters, " is negative");
    const uniform_params grid = start.fit(values, bits, tensor_name);  // checks finiteness
    params initial;
    initial.bits = bits;
    initial.levels.resize(detail::level_count(bits));
    for (std::uint32_t z = 0; z < initial.levels.size(); ++z) {
      initial.levels[z] = detail::uniform_decode(z, grid);
    }
    if (values.empty()) return initial;

    std::vector<float> sorted(values.begin(), values.end());
    std::sort(sorted.begin(), sorted.end());
    double mean = 0.0;
    for (const float value : sorted) mean += value;
    mean /= static_cast<double>(sorted.size());
    std::vector<double> prefix(sorted.size() + 1, 0.0);
    for (std::size_t i = 0; i < sorted.size(); ++i) prefix[i + 1] = prefix[i] + (sorted[i] - mean);

    params current = initial;
    std::vector<std::size_t> cell_end(current.levels.size());
    for (int iteration = 0; iteration < max_iters; ++iteration) {
      for (std::uint32_t z = 0; z < current.levels.size(); ++z) {
        cell_end[z] = static_cast<std::size_t>(
            std::partition_point(sorted.begin(), sorted.end(),
                                 [&](float value) { return encode(value, current) <= z; }) -
            sorted.begin());
      }
      params next = current;
      std::size_t cell_begin = 0;
      for (std::uint32_t z = 0; z < next.levels.size(); ++z) {
        const std::size_t members = cell_end[z] - cell_begin;
        if (members != 0) {  // an empty cell keeps its level; it stays between its neighbours
          const double cell_mean = (prefix[cell_end[z]] - prefix[cell_begin]) /
                                   static_cast<double>(members);
          next.levels[z] = static_cast<float>(mean + cell_mean);
        }
        cell_begin = cell_end[z];
      }
      if (next.levels == current.levels) break;
      current = std::move(next);
    }
    return mse_of(values, current) <= mse_of(values, initial) ? current : initial;
  }

  std::uint32_t encode(float value, const params& codebook) const noexcept {
    const auto& levels = codebook.levels;
    const auto above = std::lower_bound(levels.begin(), levels.end(), value);
    if (above == levels.begin()) return 0;
    if (above == levels.end()) return static_cast<std::uint32_t>(levels.size() - 1);
    const auto below = above - 1;
    const bool take_below = value - *below <= *above - value;
    return static_cast<std::uint32_t>((take_below ? below : above) - levels.begin());
  }

  float decode(std::uint32_t code, const params& codebook) const noexcept {
    if (codebook.levels.empty()) return 0.0f;
    return codebook.levels[std::min<std::size_t>(code, codebook.levels.size() - 1)];
  }

 private:
  double mse_of(std::span<const float> values, const params& codebook) const {
    double squared_error = 0.0;
    for (const float value : values) {
      const double error = static_cast<double>(value) - decode(encode(value, codebook), codebook);
      squared_error += error * error;
    }
    return squared_error / static_cast<double>(values.size());
  }
};

}  // namespace qgan
