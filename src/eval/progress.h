// A one-line progress bar with rate and ETA on stderr, drawn only when stderr is a terminal
// (logs and pipes stay clean). Not thread-safe: one owner updates it.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

namespace clip::eval {

class ProgressBar {
 public:
  ProgressBar(std::string label, size_t total, bool enabled);
  ~ProgressBar();  // ends the line if anything was drawn
  void update(size_t done);

 private:
  std::string label_;
  size_t total_;
  bool enabled_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_, last_;
};

}  // namespace clip::eval
