// A small pool of worker threads for the layers' forward passes. A generator image takes
// tens of microseconds, so starting threads per call (qgan::parallel_for) would cost more
// than the work: the workers stay alive, spin for a short while after each job (the next
// layer usually follows within microseconds) and then sleep on an atomic wait. Tasks write
// disjoint outputs, so results do not depend on the thread count or on who ran what.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace qgan {

class thread_pool {
 public:
  /// threads counts the caller: 1 runs everything on the calling thread.
  explicit thread_pool(int threads = 1) {
    const int helpers = threads > 1 ? threads - 1 : 0;
    // Workers start from generation 0, not from whatever they read when they first run:
    // a job may begin before a new thread gets that far, and it must take part in it.
    for (int i = 0; i < helpers; ++i) workers_.emplace_back([this] { work(0); });
  }
  thread_pool(const thread_pool&) = delete;
  thread_pool& operator=(const thread_pool&) = delete;
  ~thread_pool() {
    stopping_.store(true);
    generation_.fetch_add(1);
    generation_.notify_all();
    for (auto& worker : workers_) worker.join();
  }

  [[nodiscard]] int threads() const noexcept { return static_cast<int>(workers_.size()) + 1; }

  /// Calls task(i) for every i in [0, count); rethrows the first exception a task threw,
  /// after all have stopped. One job at a time: concurrent callers take turns.
  void run(std::size_t count, const std::function<void(std::size_t)>& task) {
    if (workers_.empty() || count <= 1) {
      for (std::size_t i = 0; i < count; ++i) task(i);
      return;
    }
    const std::lock_guard turn(job_mutex_);
    task_ = &task;
    count_ = count;
    next_.store(0);
    error_ = nullptr;
    active_.store(static_cast<int>(workers_.size()));
    generation_.fetch_add(1, std::memory_order_release);
    generation_.notify_all();
    drain();
    while (active_.load(std::memory_order_acquire) != 0) std::this_thread::yield();
    task_ = nullptr;
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void drain() {
    for (std::size_t i = next_.fetch_add(1); i < count_; i = next_.fetch_add(1)) {
      try {
        (*task_)(i);
      } catch (...) {
        const std::lock_guard lock(error_mutex_);
        if (!error_) error_ = std::current_exception();
        next_.store(count_);
      }
    }
  }

  void work(unsigned seen) {
    for (;;) {
      // Spin about 200 microseconds for the next job before sleeping, reading the clock
      // every 64th turn (on every turn the clock was most of an idle worker's time) and
      // pausing between turns, which frees the core's execution units for a sibling thread.
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(200);
      for (unsigned turn = 1; generation_.load(std::memory_order_acquire) == seen; ++turn) {
        if (turn % 64 == 0 && std::chrono::steady_clock::now() >= deadline) break;
        spin_pause();
      }
      generation_.wait(seen);
      seen = generation_.load(std::memory_order_acquire);
      if (stopping_.load()) return;
      drain();
      active_.fetch_sub(1, std::memory_order_acq_rel);
    }
  }

  static void spin_pause() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
  }

  std::vector<std::thread> workers_;
  std::mutex job_mutex_, error_mutex_;
  std::atomic<unsigned> generation_{0};
  std::atomic<bool> stopping_{false};
  std::atomic<std::size_t> next_{0};
  std::atomic<int> active_{0};
  const std::function<void(std::size_t)>* task_ = nullptr;
  std::size_t count_ = 0;
  std::exception_ptr error_;
};

}  // namespace qgan
