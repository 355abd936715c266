// A progress bar on stderr for work that takes longer than a second, drawn only when
// stderr is a terminal (never into logs or pipes), and erased when the work ends.
#pragma once

#include <chrono>
#include <cstddef>
#include <ostream>
#include <string>

namespace qgan_cli {

class progress_bar {
 public:
  progress_bar(std::ostream& err, bool terminal, std::string label, std::size_t total)
      : err_(err), terminal_(terminal), label_(std::move(label)), total_(total),
        start_(std::chrono::steady_clock::now()) {}
  progress_bar(const progress_bar&) = delete;
  progress_bar& operator=(const progress_bar&) = delete;
  ~progress_bar() {
    if (drawn_) err_ << "\r\033[K" << std::flush;
  }

  void set_total(std::size_t total) noexcept { total_ = total; }

  void update(std::size_t done) {
    if (!terminal_ || total_ == 0) return;
    const auto now = std::chrono::steady_clock::now();
    if (now - start_ < std::chrono::seconds(1)) return;
    if (drawn_ && now - last_ < std::chrono::milliseconds(100) && done < total_) return;
    last_ = now;
    drawn_ = true;
    constexpr std::size_t width = 30;
    const std::size_t filled = done * width / total_;
    err_ << "\r" << label_ << " [" << std::string(filled, '#') << std::string(width - filled, '.') << "] "
         << done << "/" << total_ << std::flush;
  }

 private:
  std::ostream& err_;
  bool terminal_;
  std::string label_;
  std::size_t total_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_{};
  bool drawn_ = false;
};

}  // namespace qgan_cli
