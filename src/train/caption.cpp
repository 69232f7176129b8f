#include "train/caption.h"

#include <algorithm>

#include "clip/embedder.h"
#include "clip/error.h"
#include "clip/train.h"
#include "model/encoder_inputs.h"
#include "model/matmul.h"
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

torch::Tensor caption_logits(model::ClipModuleImpl& m, const ObjectiveHead& head, const torch::Tensor& image_features,
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
  x = torch::cat({(x.narrow(1, 0, 1) + prefix.to(x.scalar_type()).unsqueeze(1)), x.narrow(1, 1, length - 1)}, 1);
  x = m.transformer(x, model::causal_mask(length, x.options()), nullptr, "text.resblock");
  x = m.ln_final(x);
  return model::trainable_matmul(x.narrow(1, 0, length - 1), m.token_embedding->weight.t());
}

double accumulate_caption_gradients(model::ClipModuleImpl& m, const ObjectiveHead& head, Precision precision,
                                    torch::Device device, const torch::Tensor& images, const torch::Tensor& tokens,
                                    int64_t micro_batches) {
  const int64_t rows = images.size(0);
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(micro_batches, rows));
  const std::vector<torch::Tensor> image_chunks = images.chunk(chunks), token_chunks = tokens.chunk(chunks);
  double total = 0;
  for (size_t j = 0; j < image_chunks.size(); ++j) {
    const torch::Tensor chunk_tokens = token_chunks[j].to(device);
    torch::Tensor logits;
    {
      AutocastScope autocast(precision, device);
      logits = caption_logits(m, head, m.encode_image(image_chunks[j].to(device), nullptr), chunk_tokens);
    }
    const double share = static_cast<double>(image_chunks[j].size(0)) / static_cast<double>(rows);
    const torch::Tensor loss = caption_loss(logits, chunk_tokens);
    (loss * share).backward();
    total += loss.item<double>() * share;
  }
  return total;
}

torch::Tensor caption_class_scores(model::ClipModuleImpl& m, const ObjectiveHead& head,
                                   const torch::Tensor& image_features, const torch::Tensor& prompt_tokens,
                                   int64_t classes, Precision precision) {
  const int64_t prompts = prompt_tokens.size(0);
  if (image_features.dim() != 2 || prompt_tokens.dim() != 2 || classes < 1 || prompts == 0 || prompts % classes)
    throw Error("caption zero-shot: expected image features [N, D] and C·T prompt rows [C·T > 0, L], found " +
                c10::str(image_features.sizes()) + ", " + c10::str(prompt_tokens.sizes()) + " and C = " +
                std::to_string(classes));
  torch::NoGradGuard no_grad;
  const torch::Device device = head.weight.device();
  // The prompts' positions past their last end token are never needed: cut them once.
  const torch::Tensor tokens = model::text_batch(m.config, prompt_tokens, false).tokens.to(device);
  // Images per chunk: about 2^24 logits (64 MB in fp32) at a time.
  const int64_t per_image = prompts * std::max<int64_t>(1, tokens.size(1) - 1) * m.config.vocab_size;
  const int64_t chunk = std::max<int64_t>(1, (int64_t{1} << 24) / per_image);
  std::vector<torch::Tensor> scores;
  for (int64_t i = 0; i < image_features.size(0); i += chunk) {
    const int64_t n = std::min(chunk, image_features.size(0) - i);
    const torch::Tensor f = image_features.narrow(0, i, n).to(device).repeat_interleave(prompts, 0);
    const torch::Tensor rows = tokens.repeat({n, 1});
    torch::Tensor logits;
    {
      AutocastScope autocast(precision, device);
      logits = caption_logits(m, head, f, rows);
    }
    scores.push_back(caption_log_likelihood(logits, rows).view({n, classes, prompts / classes}).mean(2));
  }
  return torch::cat(scores).cpu();
}

eval::ClassificationMetrics caption_zero_shot(model::ClipModuleImpl& m, const ObjectiveHead& head,
                                              Precision precision, const eval::FeatureSet& features,
                                              const std::vector<std::string>& classes,
                                              const std::vector<std::string>& templates) {
  if (features.features.size(0) == 0) throw Error("caption zero-shot: no examples to classify");
  if (classes.empty() || templates.empty())
    throw Error("caption zero-shot needs at least one class name and one template");
  std::vector<std::string> prompts;
  for (const std::string& c : classes)
    for (const std::string& t : templates) prompts.push_back(fill_template(t, c));
  const TokenBatch batch = tokenizer_for_model(m.config).tokenize(prompts, m.config.context_length);
  const torch::Tensor tokens = torch::from_blob(batch.ids.get(), {batch.rows, batch.context_length}, torch::kInt64);
  const torch::Tensor scores = caption_class_scores(m, head, features.features, tokens,
                                                    static_cast<int64_t>(classes.size()), precision);
  return eval::classification_metrics(scores, features.labels, 5);
}

}  // namespace clip::train
