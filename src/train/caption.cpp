#include "train/caption.h"

#include <algorithm>
#include <map>

#include "clip/embedder.h"
#include "clip/error.h"
#include "clip/train.h"
#include "model/encoder_inputs.h"
#include "model/inference_plan.h"
#include "model/matmul.h"
#include "model/model_access.h"
#include "train/precision.h"

namespace clip::train {

torch::Tensor caption_log_likelihood(const torch::Tensor& logits, const torch::Tensor& tokens_in) {
  if (logits.dim() != 3 || tokens_in.dim() != 2 || logits.size(0) != tokens_in.size(0) ||
      tokens_in.size(1) < logits.size(1) + 1)
    throw Error("caption log-likelihood: expected logits [N, M, V] and token rows [N, L >= M + 1], found " +
                c10::str(logits.sizes()) + " and " + c10::str(tokens_in.sizes()));
  const int64_t n = logits.size(0), m = logits.size(1), v = logits.size(2);
  const torch::Tensor tokens = tokens_in.to(logits.device(), torch::kInt64);
  if (tokens.numel() > 0 && (tokens.min().item<int64_t>() < 0 || tokens.max().item<int64_t>() >= v))
    throw Error("caption log-likelihood: token ids must lie in [0, " + std::to_string(v) + ")");
  if (n == 0) return torch::zeros({0}, at_least_fp32(logits).options());
  const torch::Tensor end = tokens.argmax(1, /*keepdim=*/true);  // [N, 1]: the first largest id
  if (end.max().item<int64_t>() > m)
    throw Error("caption log-likelihood: a caption ends at token " + std::to_string(end.max().item<int64_t>()) +
                ", past the " + std::to_string(m) + " predicted positions");
  const torch::Tensor targets = tokens.narrow(1, 1, m);  // position j - 1 predicts token j
  const torch::Tensor log_probs =
      torch::log_softmax(at_least_fp32(logits), 2).gather(2, targets.unsqueeze(2)).squeeze(2);  // [N, M]
  const torch::Tensor positions = torch::arange(1, m + 1, tokens.options()).unsqueeze(0);
  return (log_probs * (positions <= end).to(log_probs.scalar_type())).sum(1);
}

torch::Tensor caption_loss(const torch::Tensor& logits, const torch::Tensor& tokens) {
  if (logits.dim() != 3 || logits.size(0) == 0)
    throw Error("caption loss: expected logits [N > 0, M, V], found " + c10::str(logits.sizes()));
  const torch::Tensor ll = caption_log_likelihood(logits, tokens);
  // A caption's predicted tokens: positions 1 .. end.
  const torch::Tensor counts = tokens.to(ll.device(), torch::kInt64).argmax(1).clamp_min(1).to(ll.scalar_type());
  return -(ll / counts).mean();
}

ObjectiveHead make_caption_head(const ModelConfig& config) {
  if (config.is_cbow())
    throw Error("the caption objective needs a Transformer text tower; this config's text tower is CBOW");
  ObjectiveHead head;
  head.weight = torch::empty({config.transformer_width, config.embed_dim});
  torch::nn::init::normal_(head.weight, 0.0, 1.0);
  head.weight.set_requires_grad(true);
  head.bias = torch::zeros({config.transformer_width}).set_requires_grad(true);
  return head;
}

namespace {

// The text Transformer's input: token plus position embeddings of tokens [N, L] cut after the
// batch's last end token, the image's prefix added at the start position.
torch::Tensor caption_inputs(model::ClipModuleImpl& m, const ObjectiveHead& head, const torch::Tensor& image_features,
                             const torch::Tensor& tokens) {
  if (m.config.is_cbow())
    throw Error("the caption objective needs a Transformer text tower; this model's text tower is CBOW");
  if (image_features.dim() != 2 || tokens.dim() != 2 || image_features.size(0) != tokens.size(0))
    throw Error("caption logits: expected image features [N, D] and token rows [N, L], found " +
                c10::str(image_features.sizes()) + " and " + c10::str(tokens.sizes()));
  const model::TextBatch batch = model::text_batch(m.config, tokens, /*all_positions=*/false);
  const torch::Tensor f = at_least_fp32(image_features);
  const torch::Tensor prefix =
      model::trainable_linear(f / f.norm(2, -1, true), head.weight.to(f.scalar_type()), head.bias.to(f.scalar_type()));
  torch::Tensor x = m.embed_text(batch.tokens, nullptr);  // [N, L', W]
  const int64_t length = x.size(1);
  return torch::cat({(x.narrow(1, 0, 1) + prefix.to(x.scalar_type()).unsqueeze(1)), x.narrow(1, 1, length - 1)}, 1);
}

}  // namespace

torch::Tensor caption_logits(model::ClipModuleImpl& m, const ObjectiveHead& head, const torch::Tensor& image_features,
                             const torch::Tensor& tokens) {
  torch::Tensor x = caption_inputs(m, head, image_features, tokens);
  x = m.ln_final(m.transformer(x, model::causal_mask(x.size(1), x.options()), nullptr, "text.resblock"));
  return model::trainable_matmul(x.narrow(1, 0, x.size(1) - 1), m.token_embedding->weight.t());
}

double accumulate_caption_gradients(model::ClipModuleImpl& m, const ObjectiveHead& head, Precision precision,
                                    torch::Device device, const torch::Tensor& images, const torch::Tensor& tokens,
                                    int64_t micro_batches) {
  return accumulate_mean_loss(images, tokens, micro_batches, [&](const torch::Tensor& x, const torch::Tensor& t) {
    const torch::Tensor chunk_tokens = t.to(device);
    torch::Tensor logits;
    {
      AutocastScope autocast(precision, device);
      logits = caption_logits(m, head, m.encode_image(x.to(device), nullptr), chunk_tokens);
    }
    return caption_loss(logits, chunk_tokens);
  });
}

namespace {

// Which output states zero-shot scoring needs, found once for all images. Prompt p's token j
// (1 <= j <= its end) is predicted by its state at position j - 1. Where p shares its first j
// tokens with an earlier prompt (the same template before the class name), that state is the
// earlier prompt's (the causal mask: a state depends on the tokens up to it), so each distinct
// state gets the vocabulary product and log-softmax once.
struct ScoredPositions {
  torch::Tensor states;   // int64 [S]: flat indices (prompt · L' + position) of the distinct states
  torch::Tensor state;    // int64 [K]: for each scored token, its entry in `states`
  torch::Tensor target;   // int64 [K]: the token's id
  torch::Tensor prompt;   // int64 [K]: the prompt it belongs to
};

ScoredPositions scored_positions(const torch::Tensor& tokens /* [P, L'] int64, contiguous */) {
  const int64_t prompts = tokens.size(0), length = tokens.size(1);
  const int64_t* ids = tokens.data_ptr<int64_t>();
  std::vector<int64_t> states, state, target, prompt;
  std::map<std::vector<int64_t>, int64_t> seen;  // token prefix → entry in `states`
  for (int64_t p = 0; p < prompts; ++p) {
    const int64_t* row = ids + p * length;
    const int64_t end = std::max_element(row, row + length) - row;  // the first largest id
    for (int64_t j = 1; j <= end; ++j) {
      const auto [it, added] = seen.emplace(std::vector<int64_t>(row, row + j), static_cast<int64_t>(states.size()));
      if (added) states.push_back(p * length + j - 1);
      state.push_back(it->second);
      target.push_back(row[j]);
      prompt.push_back(p);
    }
  }
  auto tensor = [](const std::vector<int64_t>& v) { return torch::tensor(v, torch::kInt64); };
  return {tensor(states), tensor(state), tensor(target), tensor(prompt)};
}

}  // namespace

torch::Tensor caption_class_scores(const Model& model, const ObjectiveHead& head,
                                   const torch::Tensor& image_features, const torch::Tensor& prompt_tokens,
                                   int64_t classes, Precision precision) {
  const int64_t prompts = prompt_tokens.size(0);
  if (image_features.dim() != 2 || prompt_tokens.dim() != 2 || classes < 1 || prompts == 0 || prompts % classes)
    throw Error("caption zero-shot: expected image features [N, D] and C·T prompt rows [C·T > 0, L], found " +
                c10::str(image_features.sizes()) + ", " + c10::str(prompt_tokens.sizes()) + " and C = " +
                std::to_string(classes));
  torch::NoGradGuard no_grad;
  model::ClipModuleImpl& m = *model::module_of(model);
  model::InferencePlan& plan = *model::plan_of(model);
  const torch::Device device = head.weight.device();
  // The prompts' positions past their last end token are never needed: cut them once.
  const torch::Tensor cut = model::text_batch(m.config, prompt_tokens, false).tokens.to(torch::kCPU).contiguous();
  const ScoredPositions scored = scored_positions(cut);
  const torch::Tensor tokens = cut.to(device);
  const int64_t length = tokens.size(1), distinct = scored.states.size(0);
  // Images per chunk: about 2^24 logits (64 MB in fp32) at a time.
  const int64_t chunk = std::max<int64_t>(1, (int64_t{1} << 24) / (std::max<int64_t>(1, distinct) * m.config.vocab_size));
  const torch::Tensor states = scored.states.to(device), state = scored.state.to(device);
  const torch::Tensor target = scored.target.to(device), prompt = scored.prompt.to(device);
  std::vector<torch::Tensor> scores;
  for (int64_t i = 0; i < image_features.size(0); i += chunk) {
    const int64_t n = std::min(chunk, image_features.size(0) - i);
    const torch::Tensor f = image_features.narrow(0, i, n).to(device).repeat_interleave(prompts, 0);
    torch::Tensor log_probs;  // [n, S, V]
    {
      AutocastScope autocast(precision, device);
      const torch::Tensor x = plan.text_states(caption_inputs(m, head, f, tokens.repeat({n, 1})));  // [n·P, L', W]
      const torch::Tensor picked = x.reshape({n, prompts * length, -1}).index_select(1, states);
      log_probs = torch::log_softmax(
          at_least_fp32(model::trainable_matmul(picked.reshape({n * distinct, -1}), m.token_embedding->weight.t())),
          1).view({n, distinct, -1});
    }
    // Each scored token's log-probability, summed by prompt.
    const torch::Tensor token_log_probs = log_probs.index({torch::indexing::Slice(), state, target});  // [n, K]
    const torch::Tensor sums = torch::zeros({n, prompts}, token_log_probs.options()).index_add_(1, prompt, token_log_probs);
    scores.push_back(sums.view({n, classes, prompts / classes}).mean(2));
  }
  return torch::cat(scores).cpu();
}

eval::ClassificationMetrics caption_zero_shot(const Model& model, const ObjectiveHead& head,
                                              Precision precision, const eval::FeatureSet& features,
                                              const std::vector<std::string>& classes,
                                              const std::vector<std::string>& templates) {
  if (features.features.size(0) == 0) throw Error("caption zero-shot: no examples to classify");
  if (classes.empty() || templates.empty())
    throw Error("caption zero-shot needs at least one class name and one template");
  std::vector<std::string> prompts;
  for (const std::string& c : classes)
    for (const std::string& t : templates) prompts.push_back(fill_template(t, c));
  const TokenBatch batch = tokenizer_for_model(model.config()).tokenize(prompts, model.config().context_length);
  const torch::Tensor tokens = torch::from_blob(batch.ids.get(), {batch.rows, batch.context_length}, torch::kInt64);
  const torch::Tensor scores = caption_class_scores(model, head, features.features, tokens,
                                                    static_cast<int64_t>(classes.size()), precision);
  return eval::classification_metrics(scores, features.labels, 5);
}

}  // namespace clip::train
