// Setting up a run and its state: the model (locked towers, SigLIP's bias), the ranks with one
// start, the data, the optimizer, the length of the schedule, the position (from a checkpoint
// when resumed) and the metrics log.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "clip/model.h"
#include "clip/train.h"
#include "model/model_access.h"
#include "model/modules.h"
#include "train/objective_head.h"
#include "train/checkpoint.h"
#include "train/distributed.h"
#include "train/metrics_log.h"
#include "train/train_data.h"

namespace clip::train {

struct Run {
  Run(const TrainOptions& options, Model model) : options(options), model(std::move(model)) {}

  const TrainOptions& options;
  std::chrono::steady_clock::time_point started;
  bool main_rank = true;  // rank 0: logs, evaluates and writes files
  std::string checkpoint_dir;
  Model model;
  torch::Tensor logit_bias;                  // SigLIP's bias (trained with the siglip loss only)
  ObjectiveHead head;                        // bow-predict, caption: the objective's head (else undefined)
  std::unique_ptr<DistributedContext> dist;  // null in a single process
  TrainData data;
  NamedParameters named;                 // the model's parameters, then logit_bias (siglip)
  std::vector<torch::Tensor> trainable;  // those of `named` that require gradients
  std::unique_ptr<torch::optim::AdamW> optimizer;
  std::vector<torch::Tensor> extra;     // tensors checkpointed beside the model: {logit_bias}
  int64_t total_steps = 0;              // the steps this run does (--steps may stop it early)
  int64_t schedule_steps = 0;           // the steps the learning-rate schedule spans
  CheckpointContents state;             // the position, and what a checkpoint records
  std::unique_ptr<MetricsLog> metrics;  // rank 0
  std::string metrics_path;

  model::ClipModuleImpl& module() const { return *model::module_of(model); }
  double seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(); }
};

// Checks the options, prepares out_dir, and builds the run's state as above; on resume, notes
// the checkpoint it continues from (and any newer one skipped) through callbacks.on_note.
Run set_up_run(const TrainOptions& options, const TrainCallbacks& callbacks);

}  // namespace clip::train
