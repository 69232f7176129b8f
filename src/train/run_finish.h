// Finishing a run on rank 0, after its last checkpoint: the final weights (model.safetensors),
// the curves, the final evaluation of labelled data (train/final_report.h) and summary.json.
#pragma once

#include "clip/train.h"
#include "train/run_setup.h"

namespace clip::train {

// Fills in result's model_path and final-evaluation figures. An interrupted run (resumable)
// writes no final weights and skips the final evaluation.
void finish_run(Run& run, TrainResult& result, const TrainCallbacks& callbacks);

}  // namespace clip::train
