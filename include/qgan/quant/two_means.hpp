// Exact 1-D 2-means, the MSE-optimal 1-bit quantizer: any two levels form a uniform grid,
// so EM+ at k = 1 can skip EM's local search. In one dimension the optimal clusters are a
// split of the sorted data, so sorting once and trying every split with prefix sums is
// exact in O(N log N).
#pragma once

#include <algorithm>
#include <cstddef>
#include <span>
#include <string_view>
#include <vector>

#include "qgan/quant/minmax.hpp"
#include "qgan/quant/uniform_grid.hpp"

namespace qgan::detail {

// Levels of the best split as a 1-bit uniform grid (beta = lower mean, alpha = gap).
template <class Tag = void>
inline uniform_params optimal_two_means(std::span<const float> values,
                                        std::string_view tensor_name = {}) {
  std::vector<double> sorted(values.begin(), values.end());
  std::sort(sorted.begin(), sorted.end());
  const std::size_t count = sorted.size();
  if (count < 2 || sorted.front() == sorted.back()) {
    return minmax_grid(count ? sorted.front() : 0.0, count ? sorted.back() : 0.0, 1, tensor_name);
  }
  double mean = 0.0;
  for (const double value : sorted) mean += value;
  mean /= static_cast<double>(count);
  double total = 0.0;
  for (double& value : sorted) {
    value -= mean;  // centred: the between-cluster term below then cancels far less
    total += value;
  }
  // SSE(split) = const - left_sum^2/left_n - right_sum^2/right_n; maximise the subtracted part.
  double best_gain = -1.0, left_sum = 0.0, best_left_mean = 0.0, best_right_mean = 0.0;
  for (std::size_t split = 1; split < count; ++split) {
    left_sum += sorted[split - 1];
    if (sorted[split - 1] == sorted[split]) continue;  // equal values stay together
    const double left_n = static_cast<double>(split);
    const double right_n = static_cast<double>(count - split);
    const double right_sum = total - left_sum;
    const double gain = left_sum * left_sum / left_n + right_sum * right_sum / right_n;
    if (gain > best_gain) {
      best_gain = gain;
      best_left_mean = left_sum / left_n;
      best_right_mean = right_sum / right_n;
    }
  }
  return minmax_grid(mean + best_left_mean, mean + best_right_mean, 1, tensor_name);
}

}  // namespace qgan::detail
