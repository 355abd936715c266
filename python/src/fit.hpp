// What the bridge returns from a fit: the policy's params for every channel, with the
// method that fitted them, so that encode and decode can be called on other arrays later
// (and so that a learned grid, built from its own alpha and beta, encodes like EM's).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "qgan/core/shape.hpp"
#include "qgan/quant/granularity.hpp"
#include "qgan/quant/policy_registry.hpp"

namespace qgan_python {

struct fit_result {
  std::string method;  ///< "em", "em+", ... or "grid" for a grid given by its params
  qgan::policy_id policy = qgan::policy_id::em;
  int bits = 0;
  qgan::shape_t shape{};
  qgan::granularity grain = qgan::per_tensor{};
  std::vector<float> params{};  ///< channels x params_per_channel, in the .qgan order

  [[nodiscard]] std::size_t per_channel() const { return qgan::params_per_channel(policy, bits); }
  [[nodiscard]] std::size_t channels() const { return params.size() / per_channel(); }
};

}  // namespace qgan_python
