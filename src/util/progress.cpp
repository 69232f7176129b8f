#include "util/progress.h"

#include <unistd.h>

#include <cstdio>

namespace clip::util {

std::string format_duration(double seconds) {
  if (!(seconds >= 0)) return "?";
  const long s = static_cast<long>(seconds + 0.5);
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  else std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
  return buf;
}

ProgressBar::ProgressBar(std::string label, int64_t total, bool enabled)
    : label_(std::move(label)),
      total_(total),
      enabled_(enabled && ::isatty(STDERR_FILENO)),
      start_(std::chrono::steady_clock::now()),
      last_(start_ - std::chrono::seconds(1)) {}

ProgressBar::~ProgressBar() { finish(); }

void ProgressBar::update(int64_t done, const std::string& fields, double eta_s) {
  done_ = done;
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (done < total_ && now - last_ < std::chrono::milliseconds(100)) return;
  last_ = now;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  if (eta_s < 0) eta_s = done > 0 ? elapsed * static_cast<double>(total_ - done) / static_cast<double>(done) : -1;
  const int width = 24;
  const int filled = total_ > 0 ? static_cast<int>(width * std::min<int64_t>(done, total_) / total_) : 0;
  std::string bar(static_cast<size_t>(filled), '#');
  bar.resize(width, '.');
  std::fprintf(stderr, "\r\033[K%s [%s] %lld/%lld %s  %s<%s", label_.c_str(), bar.c_str(), static_cast<long long>(done),
               static_cast<long long>(total_), fields.c_str(), format_duration(elapsed).c_str(),
               format_duration(eta_s).c_str());
  std::fflush(stderr);
  drawn_ = true;
}

void ProgressBar::note(const std::string& line) {
  if (enabled_ && drawn_) std::fprintf(stderr, "\r\033[K");
  std::fprintf(stderr, "%s\n", line.c_str());
  last_ = std::chrono::steady_clock::now() - std::chrono::seconds(1);
}

void ProgressBar::finish() {
  if (enabled_ && drawn_) std::fprintf(stderr, "\n");
  drawn_ = false;
}

}  // namespace clip::util
