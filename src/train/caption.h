// The captioning objective (--objective caption): the model's causal text Transformer predicts
// each caption token by token, conditioned on the image (the building blocks of the loss are in
// clip/train.h); its gradients, and zero-shot by the log-likelihood of each class prompt.
//
// Conditioning: a linear head maps the image tower's L2-normalized features to the text width, and
// the result is added to the start token's input (token plus position embedding); the causal mask
// lets every later position attend to it. Output: ln_final's states times the token embedding
// (tied weights, as GPT-2 and VirTex). The paper's captioning model cross-attends to the image
// grid (VirTex); one prefix vector is the simplest image-conditioned Transformer on CLIP's towers.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "clip/eval.h"
#include "clip/model.h"
#include "model/modules.h"
#include "train/objective_head.h"

namespace clip::train {

// The image-prefix head for `config`: weight [transformer_width, embed_dim] ~ N(0, 1) from the
// global generator (the normalized features then give a prefix of unit-variance entries, which
// LayerNorm rescales: the image dominates the start position, whose other inputs are constant),
// bias 0; both require gradients. Throws clip::Error for a CBOW text tower (no Transformer).
ObjectiveHead make_caption_head(const ModelConfig& config);

// Next-token logits [N, L' − 1, V] of the captions `tokens` [N, L] given image features
// [N, embed_dim]: positions after the batch's last end token are not computed (L' ≤ L), as the
// contrastive text tower does. Differentiable; under bf16 autocast the products run in bf16.
torch::Tensor caption_logits(model::ClipModuleImpl& module, const ObjectiveHead& head,
                             const torch::Tensor& image_features, const torch::Tensor& tokens);

// As accumulate_gradients (train/step.h) for the caption objective: the image tower, the text
// Transformer and the head get the gradient of caption_loss over the whole batch, in
// micro_batches chunks (each chunk's part weighted by its share of the rows). Returns the loss.
double accumulate_caption_gradients(model::ClipModuleImpl& module, const ObjectiveHead& head, Precision precision,
                                    torch::Device device, const torch::Tensor& images, const torch::Tensor& tokens,
                                    int64_t micro_batches);

// Zero-shot scores [N, C]: for each image (features [N, embed_dim]) and class, the mean over the
// class's T prompts of caption_log_likelihood of the prompt given the image. prompt_tokens:
// [C·T, L], class-major (class c's prompts are rows c·T .. c·T + T − 1). No gradients; the text
// Transformer on the model's inference path (fast when the model is in eval mode on the CPU in
// fp32), the products in bf16 when precision is bf16.
torch::Tensor caption_class_scores(const Model& model, const ObjectiveHead& head,
                                   const torch::Tensor& image_features, const torch::Tensor& prompt_tokens,
                                   int64_t classes, Precision precision);

// Zero-shot classification of `features` (extract_image_features) by caption_class_scores of
// the classes × templates prompts.
eval::ClassificationMetrics caption_zero_shot(const Model& model, const ObjectiveHead& head,
                                              Precision precision, const eval::FeatureSet& features,
                                              const std::vector<std::string>& classes,
                                              const std::vector<std::string>& templates);

}  // namespace clip::train
