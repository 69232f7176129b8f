#include "index/progress.h"

#include <cstdio>

namespace clip::index {
namespace {

std::string format_duration(double seconds) {
  const long s = static_cast<long>(seconds + 0.5);
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof buf, "%ldh%02ldm", s / 3600, (s / 60) % 60);
  else if (s >= 60) std::snprintf(buf, sizeof buf, "%ldm%02lds", s / 60, s % 60);
  else std::snprintf(buf, sizeof buf, "%lds", s);
  return buf;
}

}  // namespace

ProgressBar::ProgressBar(int64_t total, std::string label, bool enabled)
    : total_(total), label_(std::move(label)), enabled_(enabled && total > 0),
      start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

ProgressBar::~ProgressBar() {
  if (!enabled_) return;
  draw(true);
  if (drawn_) std::fputc('\n', stderr);
}

void ProgressBar::advance(int64_t n) {
  done_ += n;
  if (enabled_) draw(false);
}

void ProgressBar::draw(bool force) {
  const auto now = std::chrono::steady_clock::now();
  if (!force && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  drawn_ = true;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double rate = elapsed > 0 ? done_ / elapsed : 0;
  const int width = 30;
  const int filled = total_ > 0 ? static_cast<int>(width * done_ / total_) : width;
  std::string bar(static_cast<size_t>(filled), '=');
  bar.resize(width, ' ');
  const std::string eta = rate > 0 && done_ < total_ ? "ETA " + format_duration((total_ - done_) / rate) : format_duration(elapsed);
  std::fprintf(stderr, "\r%s [%s] %lld/%lld  %.1f/s  %s   ", label_.c_str(), bar.c_str(), static_cast<long long>(done_),
               static_cast<long long>(total_), rate, eta.c_str());
  std::fflush(stderr);
}

}  // namespace clip::index
