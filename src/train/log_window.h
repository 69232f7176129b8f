// The logging window: the steps since the last metrics line, whose mean loss and throughput the
// progress display shows after every step and metrics.jsonl records every log_every steps. And
// the run's metrics log itself: the file, and the callback that sees each line.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>

#include "clip/train.h"
#include "train/run_setup.h"

namespace clip::train {

// Appends the line to metrics.jsonl and passes it to callbacks.on_metrics (rank 0; a no-op on
// the other ranks).
void log_metrics(Run& run, const TrainCallbacks& callbacks, const nlohmann::json& line);

class LogWindow {
 public:
  // After each step: its loss, learning rate and global rows. Returns the progress (the rate and
  // ETA over the window so far).
  TrainProgress add_step(const Run& run, double loss, double lr, int64_t rows);
  // Every log_every steps, and at the last step.
  bool line_due(const Run& run) const;
  // The window's metrics line (the mean loss over its steps; communication per step when
  // distributed), then a new window starts.
  nlohmann::json close(Run& run, const TrainProgress& progress, int64_t epoch, double elapsed_s);

 private:
  double loss_ = 0;
  int64_t steps_ = 0, samples_ = 0;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

}  // namespace clip::train
