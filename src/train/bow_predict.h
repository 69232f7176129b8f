// The bag-of-words prediction objective (--objective bow-predict): a linear head on the image
// tower's L2-normalized features predicts each caption's bag of words (the building blocks are in
// clip/train.h); its gradients, and zero-shot by scoring the class prompts' words.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "clip/eval.h"
#include "clip/model.h"
#include "model/modules.h"
#include "train/objective_head.h"

namespace clip::train {

// The head: logits = normalize(image_features) · weightᵀ + bias; weight [V, embed_dim], bias [V].

// A head for `config` (V = vocab_size), weight ~ N(0, 1) from the global generator,
// bias 0; both require gradients.
ObjectiveHead make_bow_head(const ModelConfig& config);

// [N, V] fp32 logits of the head for image features [N, embed_dim] (not normalized).
torch::Tensor bow_logits(const ObjectiveHead& head, const torch::Tensor& image_features);

// As accumulate_gradients (train/step.h) for bow-predict: the image tower and the head get the
// gradient of bow_predict_loss over the whole batch, in micro_batches chunks (the loss is a mean
// over rows, so each chunk's part is weighted by its share of the rows). Returns the loss.
double accumulate_bow_gradients(model::ClipModuleImpl& module, const ObjectiveHead& head, Precision precision,
                                torch::Device device, const torch::Tensor& images, const torch::Tensor& tokens,
                                int64_t micro_batches);

// bag_of_words of every class × template prompt: [C, T, V].
torch::Tensor class_prompt_bags(const ModelConfig& config, const std::vector<std::string>& classes,
                                const std::vector<std::string>& templates);

// Zero-shot classification of `features` (extract_image_features) by the head:
// bow_zero_shot_scores of the images' word log-probabilities against the class prompts.
eval::ClassificationMetrics bow_zero_shot(const ObjectiveHead& head, const ModelConfig& config,
                                          const eval::FeatureSet& features, const std::vector<std::string>& classes,
                                          const std::vector<std::string>& templates);

}  // namespace clip::train
