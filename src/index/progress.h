// A one-line progress bar with rate and ETA on stderr, redrawn at most ten times a second. The
// caller decides whether to show it (the CLI: only when stderr is a terminal).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace clip::index {

class ProgressBar {
 public:
  ProgressBar(int64_t total, std::string label, bool enabled);
  ~ProgressBar();  // ends the line if anything was drawn
  void advance(int64_t n);

 private:
  void draw(bool force);
  int64_t total_, done_ = 0;
  std::string label_;
  bool enabled_, drawn_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace clip::index
