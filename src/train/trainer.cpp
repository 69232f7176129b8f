// The training job: set up the run, then epochs of steps — each step logged in its window, with
// held-out evaluations and checkpoints at their intervals — and the finish.
#include <optional>

#include "clip/train.h"
#include "train/held_out_eval.h"
#include "train/log_window.h"
#include "train/run_finish.h"
#include "train/run_setup.h"
#include "train/run_step.h"

namespace clip::train {
namespace {

// A checkpoint of the run now (rank 0), with the metrics lines up to this step made durable.
void save(Run& run) {
  if (!run.main_rank) return;
  run.state.metrics_bytes = run.metrics->sync();
  save_checkpoint(checkpoint_path(run.checkpoint_dir, run.state.position.step), run.module(), *run.optimizer, run.extra,
                  run.state);
  prune_checkpoints(run.checkpoint_dir, run.options.keep_checkpoints);
}

}  // namespace

TrainResult train(const TrainOptions& o, const TrainCallbacks& callbacks) {
  Run run = set_up_run(o, callbacks);
  const LossFn loss = make_run_loss(run);
  TrainPosition& at = run.state.position;
  TrainResult result;
  int64_t last_eval_step = -1;
  auto evaluate = [&] {
    last_eval_step = at.step;
    if (const std::optional<double> top1 = evaluate_held_out(run, callbacks)) result.val_top1 = *top1;
  };

  LogWindow window;
  bool stop = false;
  for (int64_t epoch = at.epoch; !stop && epoch < o.epochs; ++epoch) {
    run.data.loader->start(epoch, epoch == at.epoch ? at.batch_in_epoch : 0);
    at.epoch = epoch;
    while (!stop) {
      if (at.step >= run.total_steps) {
        stop = true;
        break;
      }
      std::optional<data::Batch> batch = run.data.loader->next();
      const BatchAgreement agreed = agree_on_batch(run, batch);
      if (agreed.epoch_over) break;
      for (const std::string& s : batch->skipped) {
        ++result.skipped;
        log_metrics(run, callbacks, nlohmann::json{{"step", at.step}, {"skipped", s}});
      }
      if (agreed.skip) continue;
      const StepOutcome step = run_step(run, *batch, agreed.global_rows, loss);
      result.final_loss = step.loss;
      const TrainProgress progress = window.add_step(run, step.loss, step.lr, agreed.global_rows);
      if (run.main_rank && callbacks.on_progress) callbacks.on_progress(progress);
      if (window.line_due(run)) log_metrics(run, callbacks, window.close(run, progress, epoch, step.elapsed_s));
      if (o.eval_every > 0 && at.step % o.eval_every == 0) evaluate();
      if (o.save_every > 0 && at.step % o.save_every == 0) save(run);
      if (step.stop) {
        result.interrupted = at.step < run.total_steps;
        stop = true;
      }
    }
    if (!stop) {
      at.epoch = epoch + 1;
      at.batch_in_epoch = 0;
      if (o.eval_every == 0) evaluate();
    }
  }
  // The end of the schedule can fall on an epoch's last batch, where the loop stops before its
  // end-of-epoch check: evaluate the final weights once.
  if (!result.interrupted && last_eval_step != at.step) evaluate();
  if (run.main_rank && callbacks.on_steps_done) callbacks.on_steps_done();
  save(run);
  result.steps = at.step;
  result.samples = at.samples;
  result.seconds = run.seconds();
  run.module().eval();
  if (run.main_rank) finish_run(run, result, callbacks);
  return result;
}

}  // namespace clip::train
