// The objectives other than the contrastive one (bow-predict, caption) as a run uses them: their
// head, a step's gradients, and zero-shot classification through the head.
#pragma once

#include <torch/torch.h>

#include "clip/eval.h"
#include "train/run_setup.h"

namespace clip::train {

// The head run.options.objective trains (undefined for the contrastive objective).
ObjectiveHead make_objective_head(Objective objective, const ModelConfig& config);

// A step's gradients and loss for bow-predict or caption (accumulate_bow_gradients,
// accumulate_caption_gradients) in run.options.accum_steps micro-batches.
double accumulate_head_gradients(Run& run, const torch::Tensor& images, const torch::Tensor& tokens);

// Zero-shot classification of `features` by the head, with the run's class names and templates.
eval::ClassificationMetrics head_zero_shot(Run& run, const eval::FeatureSet& features);

}  // namespace clip::train
