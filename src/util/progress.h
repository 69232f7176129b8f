// Progress: StageProgress, how library jobs count a stage and report it to their caller's
// clip::ProgressCallback; and ProgressBar, the front ends' one-line bar on stderr — done/total, a
// bar, caller fields (loss, rate...), ETA — drawn only when stderr is a terminal, so logs and pipes
// stay clean. Redraws at most 10 times a second. Not thread-safe: one owner updates each.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>

#include "clip/progress.h"

namespace clip::util {

// Counts the units of one stage and tells `callback` (when set): done = 0 at construction, then
// after each advance.
class StageProgress {
 public:
  StageProgress(const ProgressCallback& callback, std::string stage, int64_t total)
      : callback_(callback), stage_(std::move(stage)), total_(total) {
    if (callback_) callback_(stage_, 0, total_);
  }
  void advance(int64_t n) {
    done_ += n;
    if (callback_) callback_(stage_, done_, total_);
  }

 private:
  const ProgressCallback& callback_;
  std::string stage_;
  int64_t total_, done_ = 0;
};

class ProgressBar {
 public:
  ProgressBar(std::string label, int64_t total, bool enabled);
  ~ProgressBar();  // ends the line if anything was drawn
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  // `fields` is shown after the bar; the ETA comes from the mean rate so far (or `eta_s` >= 0).
  void update(int64_t done, const std::string& fields = "", double eta_s = -1);
  // update(done so far + n).
  void advance(int64_t n) { update(done_ + n); }
  // Prints a line above the bar (the bar is redrawn on the next update).
  void note(const std::string& line);
  void finish();
  bool enabled() const { return enabled_; }

 private:
  std::string label_;
  int64_t total_, done_ = 0;
  bool enabled_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_, last_;
};

// "1:02:03" / "4:05"
std::string format_duration(double seconds);

}  // namespace clip::util
