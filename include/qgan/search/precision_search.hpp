// Bit-width search over a quality callback (QGAN section 4.2, and mixed precision beyond
// it). The callbacks do the expensive part (quantize, maybe fine-tune, score); these
// functions decide what to try and record the path taken, so a C++ user can search
// post-training with their own metric, and the Python fine-tuning search follows the
// same rules.
//
//   lowest_passing_bits(candidates, score, target)   the paper's search for one network:
//       tries widths in ascending order, stops at the first whose score <= target
//   layer_bits_under_budget(layers, widths, cost, budget_bytes)   per-layer widths that
//       minimize the summed measured cost (e.g. a layer's FID increase at that width)
//       with the packed weights within a byte budget: exact for small problems, greedy by
//       cost saved per byte otherwise
//   pbgen_binarize(layers, min_fan_in, min_outputs)   PBGen's shape rule (see below)
#pragma once

#include "qgan/core/isa_namespace.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "qgan/core/error.hpp"

namespace qgan::search {

struct search_step {
  int bits = 0;
  double score = 0;  ///< lower is better (e.g. FID); NaN counts as failing
  bool passed = false;
};

struct search_result {
  std::optional<int> bits;          ///< the lowest width that passed, if any
  std::vector<search_step> path{};  ///< every width tried, in order
};

/// One layer as the allocation sees it.
struct layer_shape {
  std::string name;
  std::size_t elements = 0;          ///< weights
  std::size_t channels = 1;          ///< per-channel params (2 floats each for a uniform grid)
  std::size_t fan_in = 0;            ///< inputs reaching one output (in/groups x taps per output)
  std::size_t output_channels = 0;
};

struct layer_allocation {
  std::vector<int> bits{};  ///< per layer, in the order given
  double cost = 0;
  std::uint64_t bytes = 0;
  bool exact = false;  ///< searched every combination
};

QGAN_BEGIN_FUNCTIONS

/// Packed bytes of a layer at `bits`: the codes plus two float params per channel.
inline std::uint64_t packed_bytes(const layer_shape& layer, int bits) {
  return (static_cast<std::uint64_t>(layer.elements) * static_cast<std::uint64_t>(bits) + 7) / 8 +
         8 * static_cast<std::uint64_t>(layer.channels);
}

/// The paper's search: candidates in ascending order; score(bits) runs once per width tried.
inline search_result lowest_passing_bits(std::span<const int> candidates, const std::function<double(int)>& score,
                                         double target) {
  if (candidates.empty()) detail::throw_error("lowest_passing_bits: no candidate widths");
  if (!std::is_sorted(candidates.begin(), candidates.end()) ||
      std::adjacent_find(candidates.begin(), candidates.end()) != candidates.end()) {
    detail::throw_error("lowest_passing_bits: candidate widths must be strictly ascending");
  }
  if (!std::isfinite(target)) detail::throw_error("lowest_passing_bits: the target ", target, " is not finite");
  search_result result;
  for (const int bits : candidates) {
    const double s = score(bits);
    const bool passed = s <= target;  // false for NaN
    result.path.push_back({bits, s, passed});
    if (passed) {
      result.bits = bits;
      break;
    }
  }
  return result;
}

/// cost(layer, width index) is what putting that layer at that width costs (measured;
/// lower is better; the costs of layers are assumed to add up). Returns the widths with
/// the least total cost whose packed bytes fit the budget: every combination when there
/// are at most `exact_limit` of them, else greedily from the cheapest widths, taking the
/// upgrade with the most cost saved per extra byte while it fits.
inline layer_allocation layer_bits_under_budget(std::span<const layer_shape> layers, std::span<const int> widths,
                                                const std::function<double(std::size_t, std::size_t)>& cost,
                                                std::uint64_t budget_bytes, std::size_t exact_limit = 1u << 20) {
  if (layers.empty() || widths.empty()) detail::throw_error("layer_bits_under_budget: no layers or no widths");
  const std::size_t n = layers.size(), w = widths.size();
  std::vector<std::vector<double>> costs(n, std::vector<double>(w));
  for (std::size_t l = 0; l < n; ++l) {
    for (std::size_t i = 0; i < w; ++i) {
      costs[l][i] = cost(l, i);
      if (!std::isfinite(costs[l][i])) {
        detail::throw_error("layer_bits_under_budget: cost of ", layers[l].name, " at ", widths[i], " bits is not finite");
      }
    }
  }
  const auto bytes_of = [&](std::size_t l, std::size_t i) { return packed_bytes(layers[l], widths[i]); };
  std::uint64_t smallest = 0;
  std::size_t narrowest = 0;
  for (std::size_t i = 1; i < w; ++i) {
    if (widths[i] < widths[narrowest]) narrowest = i;
  }
  for (std::size_t l = 0; l < n; ++l) smallest += bytes_of(l, narrowest);
  if (smallest > budget_bytes) {
    detail::throw_error("layer_bits_under_budget: even ", widths[narrowest], " bits everywhere takes ", smallest,
                        " bytes, over the budget of ", budget_bytes);
  }
  double combinations = 1;
  for (std::size_t l = 0; l < n; ++l) combinations *= static_cast<double>(w);
  layer_allocation best;
  if (combinations <= static_cast<double>(exact_limit)) {
    best.cost = std::numeric_limits<double>::infinity();
    std::vector<std::size_t> choice(n, 0);
    for (;;) {
      std::uint64_t bytes = 0;
      double total = 0;
      for (std::size_t l = 0; l < n; ++l) {
        bytes += bytes_of(l, choice[l]);
        total += costs[l][choice[l]];
      }
      if (bytes <= budget_bytes && (total < best.cost || (total == best.cost && bytes < best.bytes))) {
        best.cost = total;
        best.bytes = bytes;
        best.bits.assign(n, 0);
        for (std::size_t l = 0; l < n; ++l) best.bits[l] = widths[choice[l]];
      }
      std::size_t l = 0;
      while (l < n && ++choice[l] == w) choice[l++] = 0;
      if (l == n) break;
    }
    best.exact = true;
    return best;
  }
  std::vector<std::size_t> choice(n, narrowest);
  std::uint64_t bytes = smallest;
  for (;;) {
    double best_ratio = 0;
    std::size_t best_layer = n, best_width = 0;
    for (std::size_t l = 0; l < n; ++l) {
      for (std::size_t i = 0; i < w; ++i) {
        const std::uint64_t now = bytes_of(l, choice[l]), then = bytes_of(l, i);
        const double saved = costs[l][choice[l]] - costs[l][i];
        if (then <= now || saved <= 0 || bytes - now + then > budget_bytes) continue;
        const double ratio = saved / static_cast<double>(then - now);
        if (ratio > best_ratio) best_ratio = ratio, best_layer = l, best_width = i;
      }
    }
    if (best_layer == n) break;
    bytes = bytes - bytes_of(best_layer, choice[best_layer]) + bytes_of(best_layer, best_width);
    choice[best_layer] = best_width;
  }
  best.bytes = bytes;
  for (std::size_t l = 0; l < n; ++l) {
    best.bits.push_back(widths[choice[l]]);
    best.cost += costs[l][choice[l]];
  }
  return best;
}

/// PBGen's rule, made exact: binarize a layer when each output sums at least `min_fan_in`
/// inputs and the layer has at least `min_outputs` output channels. A binary weight's
/// error is a large share of each product, but it averages out over many summed inputs
/// and many channels feeding the next layer; the layer next to the latent (few inputs per
/// output) and the one writing the image (one channel) have neither, so they stay wider.
/// For the reference DCGAN (fan-in 100, 1024, 512, 256; outputs 256, 128, 64, 1) the
/// defaults pick deconv2 and deconv3.
inline std::vector<bool> pbgen_binarize(std::span<const layer_shape> layers, std::size_t min_fan_in = 512,
                                        std::size_t min_outputs = 64) {
  std::vector<bool> binarize;
  for (const layer_shape& layer : layers) {
    binarize.push_back(layer.fan_in >= min_fan_in && layer.output_channels >= min_outputs);
  }
  return binarize;
}

QGAN_END_FUNCTIONS
}  // namespace qgan::search
