// Runs independent tasks on a few threads. Callers give every task its own output slot
// and combine the slots in task order afterwards, so a result never depends on how many
// threads ran or which finished first.
#pragma once

#include <atomic>
#include <cstddef>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace qgan {

/// Calls task(i) for every i in [0, count) on at most `threads` threads (the caller's
/// included); rethrows the first exception a task threw, after every thread has stopped.
template <class Task>
void parallel_for(std::size_t count, int threads, Task&& task) {
  const std::size_t workers =
      threads <= 1 || count <= 1 ? 1 : (static_cast<std::size_t>(threads) < count ? static_cast<std::size_t>(threads) : count);
  if (workers == 1) {
    for (std::size_t i = 0; i < count; ++i) task(i);
    return;
  }
  std::atomic<std::size_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr first_error;
  std::mutex error_mutex;
  const auto work = [&] {
    for (std::size_t i = next++; i < count && !failed; i = next++) {
      try {
        task(i);
      } catch (...) {
        const std::lock_guard lock(error_mutex);
        if (!first_error) first_error = std::current_exception();
        failed = true;
      }
    }
  };
  std::vector<std::thread> helpers;
  helpers.reserve(workers - 1);
  for (std::size_t w = 1; w < workers; ++w) helpers.emplace_back(work);
  work();
  for (auto& helper : helpers) helper.join();
  if (first_error) std::rethrow_exception(first_error);
}

}  // namespace qgan
