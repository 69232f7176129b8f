// The logging window and the metrics log of a run.
#include "train/log_window.h"

namespace clip::train {

void log_metrics(Run& run, const TrainCallbacks& callbacks, const nlohmann::json& line) {
  if (!run.main_rank) return;
  run.metrics->append(line.dump());
  if (callbacks.on_metrics) callbacks.on_metrics(line.dump());
}

TrainProgress LogWindow::add_step(const Run& run, double loss, double lr, int64_t rows) {
  loss_ += loss;
  ++steps_;
  samples_ += rows;
  TrainProgress p;
  p.step = run.state.position.step;
  p.total_steps = run.total_steps;
  p.loss = loss;
  p.lr = lr;
  p.temperature = run.module().logit_scale.exp().item<double>();
  const double window_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  p.samples_per_s = window_s > 0 ? samples_ / window_s : 0;
  p.eta_s = p.samples_per_s > 0
                ? (run.total_steps - p.step) * static_cast<double>(run.options.batch_size) / p.samples_per_s
                : 0;
  return p;
}

bool LogWindow::line_due(const Run& run) const {
  const int64_t step = run.state.position.step;
  return step % run.options.log_every == 0 || step == run.total_steps;
}

nlohmann::json LogWindow::close(Run& run, const TrainProgress& p, int64_t epoch, double elapsed_s) {
  nlohmann::json line{{"step", p.step},
                      {"epoch", epoch},
                      {"loss", loss_ / steps_},
                      {"lr", p.lr},
                      {"temperature", p.temperature},
                      {"samples_per_s", p.samples_per_s},
                      {"elapsed_s", elapsed_s}};
  if (run.dist) {
    line["comm_s_per_step"] = run.dist->comm_seconds() / steps_;
    line["comm_bytes_per_step"] = run.dist->comm_bytes() / steps_;  // whole bytes, as always written
    run.dist->reset_comm_counters();
  }
  loss_ = 0;
  steps_ = 0;
  samples_ = 0;
  start_ = std::chrono::steady_clock::now();
  return line;
}

}  // namespace clip::train
