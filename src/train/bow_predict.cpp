#include "train/bow_predict.h"

#include <cmath>

#include "clip/embedder.h"
#include "clip/error.h"
#include "clip/train.h"
#include "train/precision.h"

namespace clip::train {

torch::Tensor bag_of_words(const torch::Tensor& tokens_in, int64_t vocab_size) {
  if (tokens_in.dim() != 2 || vocab_size < 1)
    throw Error("bag of words: expected token rows [N, L] and a vocabulary size > 0, found " +
                c10::str(tokens_in.sizes()) + " and " + std::to_string(vocab_size));
  const torch::Tensor tokens = tokens_in.to(torch::kInt64);
  if (tokens.numel() > 0 && (tokens.min().item<int64_t>() < 0 || tokens.max().item<int64_t>() >= vocab_size))
    throw Error("bag of words: token ids must lie in [0, " + std::to_string(vocab_size) + ")");
  torch::Tensor bags = torch::zeros({tokens.size(0), vocab_size}, torch::kFloat32);
  if (tokens.numel() == 0) return bags;
  const torch::Tensor end = tokens.argmax(1, /*keepdim=*/true);  // the first largest id
  const torch::Tensor positions = torch::arange(tokens.size(1), torch::kInt64).unsqueeze(0);
  const torch::Tensor words = ((positions >= 1) & (positions < end)).to(torch::kFloat32);  // [N, L]
  bags.scatter_add_(1, tokens, words);
  return bags / words.sum(1, true).clamp_min(1);
}

torch::Tensor bow_predict_loss(const torch::Tensor& logits, const torch::Tensor& targets) {
  if (logits.dim() != 2 || logits.sizes() != targets.sizes() || logits.size(0) == 0)
    throw Error("bag-of-words loss: expected logits and targets of the same shape [N > 0, V], found " +
                c10::str(logits.sizes()) + " and " + c10::str(targets.sizes()));
  const torch::Tensor log_probs = torch::log_softmax(at_least_fp32(logits), 1);
  return -(targets.to(log_probs.scalar_type()) * log_probs).sum(1).mean();
}

torch::Tensor bow_zero_shot_scores(const torch::Tensor& log_probs, const torch::Tensor& prompt_bags) {
  if (log_probs.dim() != 2 || prompt_bags.dim() != 3 || prompt_bags.size(2) != log_probs.size(1) ||
      prompt_bags.size(1) == 0)
    throw Error("bag-of-words zero-shot: expected log-probabilities [N, V] and prompt bags [C, T > 0, V], found " +
                c10::str(log_probs.sizes()) + " and " + c10::str(prompt_bags.sizes()));
  const int64_t c = prompt_bags.size(0), t = prompt_bags.size(1);
  const torch::Tensor bags = prompt_bags.to(log_probs.scalar_type()).reshape({c * t, -1});
  return torch::matmul(log_probs, bags.t()).view({log_probs.size(0), c, t}).mean(2);
}

ObjectiveHead make_bow_head(const ModelConfig& config) {
  ObjectiveHead head;
  head.weight = torch::empty({config.vocab_size, config.embed_dim});
  // Unit-variance logits at the start (the features are normalized): with a smaller weight the
  // head's image-dependent part starts too small to steer the image tower.
  torch::nn::init::normal_(head.weight, 0.0, 1.0);
  head.weight.set_requires_grad(true);
  head.bias = torch::zeros({config.vocab_size}).set_requires_grad(true);
  return head;
}

torch::Tensor bow_logits(const ObjectiveHead& head, const torch::Tensor& image_features) {
  const torch::Tensor f = at_least_fp32(image_features);
  return torch::addmm(head.bias.to(f.scalar_type()), f / f.norm(2, -1, true), head.weight.to(f.scalar_type()).t());
}

double accumulate_bow_gradients(model::ClipModuleImpl& m, const ObjectiveHead& head, Precision precision,
                                torch::Device device, const torch::Tensor& images, const torch::Tensor& tokens,
                                int64_t micro_batches) {
  return accumulate_mean_loss(images, tokens, micro_batches, [&](const torch::Tensor& x, const torch::Tensor& t) {
    torch::Tensor features;
    {
      AutocastScope autocast(precision, device);
      features = m.encode_image(x, nullptr);
    }
    return bow_predict_loss(bow_logits(head, features), bag_of_words(t, m.config.vocab_size).to(device));
  });
}

torch::Tensor class_prompt_bags(const ModelConfig& config, const std::vector<std::string>& classes,
                                const std::vector<std::string>& templates) {
  if (classes.empty() || templates.empty())
    throw Error("bag-of-words zero-shot needs at least one class name and one template");
  std::vector<std::string> prompts;
  for (const std::string& c : classes)
    for (const std::string& t : templates) prompts.push_back(fill_template(t, c));
  const TokenBatch batch = tokenizer_for_model(config).tokenize(prompts, config.context_length);
  const torch::Tensor tokens = torch::from_blob(batch.ids.get(), {batch.rows, batch.context_length}, torch::kInt64);
  return bag_of_words(tokens, config.vocab_size)
      .view({static_cast<int64_t>(classes.size()), static_cast<int64_t>(templates.size()), config.vocab_size});
}

eval::ClassificationMetrics bow_zero_shot(const ObjectiveHead& head, const ModelConfig& config,
                                          const eval::FeatureSet& features, const std::vector<std::string>& classes,
                                          const std::vector<std::string>& templates) {
  if (features.features.size(0) == 0) throw Error("bag-of-words zero-shot: no examples to classify");
  torch::NoGradGuard no_grad;
  const torch::Tensor log_probs = torch::log_softmax(bow_logits(head, features.features.to(head.weight.device())), 1);
  const torch::Tensor scores = bow_zero_shot_scores(log_probs, class_prompt_bags(config, classes, templates));
  return eval::classification_metrics(scores.cpu(), features.labels, 5);
}

}  // namespace clip::train
