// The temporary files qgan's writers have open, kept where a signal handler can reach them
// without allocating or locking: a fixed table of absolute paths. atomic_file registers
// its temporary (and rollback) names here; remove_temporaries_on_signals() installs
// handlers for SIGINT, SIGTERM, SIGHUP and SIGPIPE that unlink every registered path and
// then re-raise the signal under its default action, so the process ends as the signal
// says (the exit status a shell sees is unchanged). A library does not take signals by itself: programs opt in (the qgan tool
// does at start). Whatever thread a signal lands on, pool threads included, the handler
// only reads the table, so it holds while work runs anywhere.
#pragma once

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>
#include <utility>

namespace qgan::io {

namespace temporary_files_detail {

// Enough for every writer a process plausibly has open at once; a full table only means
// the extra temporaries are not removed on a signal (they are still removed on errors).
inline constexpr std::size_t slot_count = 64;
inline constexpr std::size_t path_capacity = 4096;

enum slot_state : int { free_slot = 0, filling = 1, live = 2 };

struct slot {
  std::atomic<int> state{free_slot};
  char path[path_capacity] = {};
};

static_assert(std::atomic<int>::is_always_lock_free, "the signal handler reads slot states");

inline slot* table() noexcept {
  static slot slots[slot_count];
  return slots;
}

inline void remove_and_reraise(int signal_number) {
  const int saved_errno = errno;
  slot* slots = table();
  for (std::size_t i = 0; i < slot_count; ++i) {
    if (slots[i].state.load(std::memory_order_acquire) == live) ::unlink(slots[i].path);
  }
  errno = saved_errno;
  // SA_RESETHAND put back the default action; the raised signal stays blocked until this
  // handler returns, then ends the process as the signal would have.
  ::raise(signal_number);
}

}  // namespace temporary_files_detail

/// A registered path; unregisters itself when destroyed. Empty when the table was full
/// or the path too long.
class temporary_registration {
 public:
  temporary_registration() noexcept = default;
  explicit temporary_registration(const std::filesystem::path& path) {
    std::error_code error;
    const std::filesystem::path absolute = std::filesystem::absolute(path, error);
    const std::string text = error ? path.string() : absolute.string();
    if (text.size() >= temporary_files_detail::path_capacity) return;
    temporary_files_detail::slot* slots = temporary_files_detail::table();
    for (std::size_t i = 0; i < temporary_files_detail::slot_count; ++i) {
      int expected = temporary_files_detail::free_slot;
      if (slots[i].state.compare_exchange_strong(expected, temporary_files_detail::filling,
                                                 std::memory_order_acq_rel)) {
        std::memcpy(slots[i].path, text.c_str(), text.size() + 1);
        slots[i].state.store(temporary_files_detail::live, std::memory_order_release);
        slot_ = &slots[i];
        return;
      }
    }
  }
  temporary_registration(temporary_registration&& other) noexcept : slot_(std::exchange(other.slot_, nullptr)) {}
  temporary_registration& operator=(temporary_registration&& other) noexcept {
    if (this != &other) {
      release();
      slot_ = std::exchange(other.slot_, nullptr);
    }
    return *this;
  }
  temporary_registration(const temporary_registration&) = delete;
  temporary_registration& operator=(const temporary_registration&) = delete;
  ~temporary_registration() { release(); }

  [[nodiscard]] bool registered() const noexcept { return slot_ != nullptr; }

  /// Forgets the path (it was renamed into place or removed).
  void release() noexcept {
    if (slot_ != nullptr) slot_->state.store(temporary_files_detail::free_slot, std::memory_order_release);
    slot_ = nullptr;
  }

 private:
  temporary_files_detail::slot* slot_ = nullptr;
};

/// Installs the cleanup handlers (see the header comment). A signal the process ignores
/// (nohup's SIGHUP, a shell's SIGPIPE) stays ignored. Call once, early, from main.
inline void remove_temporaries_on_signals() {
  for (const int signal_number : {SIGINT, SIGTERM, SIGHUP, SIGPIPE}) {
    struct sigaction previous {};
    if (::sigaction(signal_number, nullptr, &previous) != 0 || previous.sa_handler == SIG_IGN) continue;
    struct sigaction action {};
    action.sa_handler = temporary_files_detail::remove_and_reraise;
    sigemptyset(&action.sa_mask);
    action.sa_flags = static_cast<int>(SA_RESETHAND);  // 0x80000000: C++20 defines the wrap
    ::sigaction(signal_number, &action, nullptr);
  }
}

}  // namespace qgan::io
