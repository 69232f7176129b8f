#include "eval/progress.h"

#include <unistd.h>

#include <cstdio>

namespace clip::eval {

ProgressBar::ProgressBar(std::string label, size_t total, bool enabled)
    : label_(std::move(label)), total_(total), enabled_(enabled && ::isatty(STDERR_FILENO)),
      start_(std::chrono::steady_clock::now()), last_(start_) {}

ProgressBar::~ProgressBar() {
  if (drawn_) std::fputc('\n', stderr);
}

void ProgressBar::update(size_t done) {
  if (!enabled_ || total_ == 0) return;
  const auto now = std::chrono::steady_clock::now();
  // At most ~10 redraws a second, but always the last one.
  if (done < total_ && now - last_ < std::chrono::milliseconds(100)) return;
  last_ = now;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0;
  const double eta = rate > 0 ? static_cast<double>(total_ - done) / rate : 0;
  constexpr int kWidth = 30;
  const int filled = static_cast<int>(kWidth * done / total_);
  std::string bar(static_cast<size_t>(filled), '#');
  bar.resize(kWidth, '.');
  const long s = static_cast<long>(eta + 0.5);
  std::fprintf(stderr, "\r%s [%s] %zu/%zu  %.1f/s  ETA %ld:%02ld:%02ld ", label_.c_str(), bar.c_str(), done, total_, rate,
               s / 3600, s / 60 % 60, s % 60);
  std::fflush(stderr);
  drawn_ = true;
}

}  // namespace clip::eval
