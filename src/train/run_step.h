// One step of a run: the ranks agree on the batch, then the weights move — the learning rate of
// the schedule, the gradients of the run's loss (with accumulation), averaged over the ranks,
// clipped, AdamW, the temperature clamped — and the position advances.
#pragma once

#include <optional>

#include "data/loader.h"
#include "train/run_setup.h"
#include "train/step.h"

namespace clip::train {

// The run's loss, built once: the options' kind over this rank's features, or when distributed
// over every rank's (with local_loss, this rank's rows and columns of it).
LossFn make_run_loss(const Run& run);

// What the ranks agree on before a step: the epoch ends for all when one rank's data ends
// (streamed shards), and a step is skipped by all when a rank has no rows left or the global
// batch has fewer than 2.
struct BatchAgreement {
  bool epoch_over = false;
  bool skip = false;
  int64_t global_rows = 0;  // the rows of this step over all ranks
};
BatchAgreement agree_on_batch(Run& run, const std::optional<data::Batch>& batch);

struct StepOutcome {
  double loss = 0;  // the ranks' mean (they differ with local_loss)
  double lr = 0;
  double elapsed_s = 0;  // since the run started, when the step ended
  bool stop = false;     // a stop was requested (time limit, stop_flag) on any rank: all stop here
};
StepOutcome run_step(Run& run, data::Batch& batch, int64_t global_rows, const LossFn& loss);

}  // namespace clip::train
