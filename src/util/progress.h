// A one-line progress bar on stderr — done/total, a bar, caller fields (loss, rate...), ETA —
// drawn only when stderr is a terminal, so logs and pipes stay clean. Redraws at most 10 times a
// second. Not thread-safe: one owner updates it.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace clip::util {

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
