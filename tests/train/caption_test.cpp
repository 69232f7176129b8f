// The captioning objective (--objective caption): the log-likelihood and the loss against direct
// computations on small known inputs, the logits against the Transformer written out, zero-shot
// scores against one prompt at a time, the gradient of a batch in micro-batches against the
// whole batch's and against finite differences.
#include "train/caption.h"

#include <gtest/gtest.h>

#include <cmath>

#include "clip/train.h"
#include "model/encoder_inputs.h"
#include "model/model_access.h"

namespace {

using clip::train::caption_log_likelihood;
using clip::train::caption_loss;

// Vocabulary 5: id 3 starts a caption, 4 ends it (the largest id).
TEST(Caption, LogLikelihoodSumsTheCaptionsTokensUpToItsEnd) {
  // 2 captions, 4 predicted positions.
  const torch::Tensor tokens = torch::tensor({{3, 1, 2, 4, 0}, {3, 0, 4, 0, 0}}, torch::kInt64);
  const torch::Tensor logits = torch::randn({2, 4, 5}, torch::kFloat64);
  auto log_p = [&](int n, int j, int64_t token) {  // log softmax(logits[n, j])[token], written out
    double z = 0;
    for (int v = 0; v < 5; ++v) z += std::exp(logits[n][j][v].item<double>());
    return logits[n][j][token].item<double>() - std::log(z);
  };
  // Caption 0: tokens 1, 2 and the end token 4, predicted at positions 0, 1, 2. Caption 1: 0, 4.
  const double want0 = log_p(0, 0, 1) + log_p(0, 1, 2) + log_p(0, 2, 4);
  const double want1 = log_p(1, 0, 0) + log_p(1, 1, 4);
  const torch::Tensor ll = caption_log_likelihood(logits, tokens);
  ASSERT_EQ(ll.sizes(), (std::vector<int64_t>{2}));
  EXPECT_NEAR(ll[0].item<double>(), want0, 1e-12);
  EXPECT_NEAR(ll[1].item<double>(), want1, 1e-12);
  // The loss: the mean over captions of the per-token mean.
  EXPECT_NEAR(caption_loss(logits, tokens).item<double>(), -(want0 / 3 + want1 / 2) / 2, 1e-12);
  // What the padding positions predict plays no part.
  torch::Tensor changed = logits.clone();
  changed[1][2].fill_(7.0);
  changed[1][3].fill_(-3.0);
  changed[0][3].fill_(2.0);
  EXPECT_TRUE(torch::allclose(caption_log_likelihood(changed, tokens), ll, 0, 1e-12));
}

TEST(Caption, LogLikelihoodRefusesWhatItCannotScore) {
  const torch::Tensor logits = torch::zeros({1, 2, 5});
  // The end token at position 3 is past the 2 predicted positions.
  EXPECT_THROW(caption_log_likelihood(logits, torch::tensor({{3, 1, 2, 4}}, torch::kInt64)), clip::Error);
  // An id outside the vocabulary; too few token columns; mismatched rows.
  EXPECT_THROW(caption_log_likelihood(logits, torch::tensor({{3, 7, 4}}, torch::kInt64)), clip::Error);
  EXPECT_THROW(caption_log_likelihood(logits, torch::tensor({{3, 4}}, torch::kInt64)), clip::Error);
  EXPECT_THROW(caption_log_likelihood(logits, torch::tensor({{3, 4, 0}, {3, 4, 0}}, torch::kInt64)), clip::Error);
  EXPECT_THROW(caption_loss(torch::zeros({0, 2, 5}), torch::zeros({0, 3}, torch::kInt64)), clip::Error);
}

// A tiny model with a 1-block text Transformer, in float64 (the reference modules everywhere) or
// float32 (zero-shot scoring then takes the inference plan's fast path).
clip::ModelConfig tiny_caption_config() {
  return clip::config_from_json_text(
      R"({"embed_dim": 4, "image_resolution": 8, "vision_layers": 1, "vision_width": 8, "vision_patch_size": 4,
          "vision_heads": 2, "context_length": 6, "vocab_size": 12, "transformer_width": 8,
          "transformer_heads": 2, "transformer_layers": 1})",
      "tiny");
}

struct TinyCaptionModel {
  explicit TinyCaptionModel(torch::ScalarType type = torch::kFloat64)
      : config(tiny_caption_config()), model(clip::Model::random(config, 1)), m(clip::model::module_of(model)) {
    m->to(type);
    torch::manual_seed(2);
    head = clip::train::make_caption_head(config);
    head.weight = head.weight.detach().to(type).requires_grad_(true);
    head.bias = (0.1 * torch::randn({config.transformer_width}, type)).requires_grad_(true);
  }
  clip::ModelConfig config;
  clip::Model model;
  std::shared_ptr<clip::model::ClipModuleImpl> m;
  clip::train::ObjectiveHead head;
};

// Rows end at different positions (id 11 ends, 10 starts).
torch::Tensor tiny_tokens() {
  return torch::tensor({{10, 1, 2, 11, 0, 0},
                        {10, 3, 11, 0, 0, 0},
                        {10, 4, 4, 5, 11, 0},
                        {10, 6, 11, 0, 0, 0},
                        {10, 7, 8, 9, 1, 11},
                        {10, 2, 11, 0, 0, 0}},
                       torch::kInt64);
}

TEST(Caption, LogitsAreTheTransformerConditionedOnTheImageAtTheStartToken) {
  TinyCaptionModel t;
  t.m->eval();
  torch::NoGradGuard no_grad;
  const torch::Tensor features = torch::randn({2, 4}, torch::kFloat64);
  const torch::Tensor tokens = torch::tensor({{10, 1, 2, 11, 0, 0}, {10, 3, 11, 0, 0, 0}}, torch::kInt64);
  const torch::Tensor logits = clip::train::caption_logits(*t.m, t.head, features, tokens);
  // Only the positions up to the batch's last end token (3) are computed: 3 predictions.
  ASSERT_EQ(logits.sizes(), (std::vector<int64_t>{2, 3, 12}));
  // Written out: token + position embeddings, the image's prefix added at position 0, the
  // Transformer under the causal mask, ln_final, the tied token embedding.
  const torch::Tensor cut = tokens.narrow(1, 0, 4);
  torch::Tensor x = t.m->token_embedding->weight.index_select(0, cut.reshape(-1)).view({2, 4, 8}) +
                    t.m->positional_embedding.narrow(0, 0, 4);
  const torch::Tensor f = features / features.norm(2, -1, true);
  const torch::Tensor prefix = torch::matmul(f, t.head.weight.t()) + t.head.bias;
  x.select(1, 0).add_(prefix);
  x = t.m->transformer(x, clip::model::causal_mask(4, x.options()), nullptr, "text.resblock");
  const torch::Tensor want = torch::matmul(t.m->ln_final(x).narrow(1, 0, 3), t.m->token_embedding->weight.t());
  EXPECT_LT((logits - want).abs().max().item<double>(), 1e-12);
  // The image matters: other features, other logits, at every position.
  const torch::Tensor other = clip::train::caption_logits(*t.m, t.head, torch::randn({2, 4}, torch::kFloat64), tokens);
  EXPECT_GT((other - logits).abs().amax({0, 2}).min().item<double>(), 1e-6);
}

// Scores by the batched, de-duplicated computation against one image and one prompt at a time.
void expect_scores_are_each_prompts_log_likelihood(torch::ScalarType type, double tolerance) {
  TinyCaptionModel t(type);
  t.m->eval();
  torch::NoGradGuard no_grad;
  const torch::Tensor features = torch::randn({3, 4}, type);
  // 2 classes × 3 prompts, of different lengths.
  const torch::Tensor prompts = tiny_tokens();
  const torch::Tensor scores =
      clip::train::caption_class_scores(t.model, t.head, features, prompts, 2, clip::Precision::kFP32);
  ASSERT_EQ(scores.sizes(), (std::vector<int64_t>{3, 2}));
  for (int64_t n = 0; n < 3; ++n)
    for (int64_t c = 0; c < 2; ++c) {
      double want = 0;
      for (int64_t p = 3 * c; p < 3 * c + 3; ++p) {
        // One image and one prompt alone through the reference modules, summed position by position.
        const torch::Tensor row = prompts.narrow(0, p, 1);
        const torch::Tensor logits = clip::train::caption_logits(*t.m, t.head, features.narrow(0, n, 1), row);
        const torch::Tensor log_p = torch::log_softmax(logits[0].to(torch::kFloat64), 1);
        const int64_t end = row[0].argmax().item<int64_t>();
        for (int64_t j = 1; j <= end; ++j) want += log_p[j - 1][row[0][j].item<int64_t>()].item<double>() / 3;
      }
      EXPECT_NEAR(scores[n][c].item<double>(), want, tolerance) << "image " << n << ", class " << c;
    }
}

TEST(Caption, ZeroShotScoresAverageEachPromptsLogLikelihood) {
  expect_scores_are_each_prompts_log_likelihood(torch::kFloat64, 1e-10);
}

TEST(Caption, ZeroShotScoresOnTheFastPathMatchTheReference) {
  expect_scores_are_each_prompts_log_likelihood(torch::kFloat32, 2e-5);
}

// Prompts sharing their first tokens share those states; the scores must not mix prompts up.
TEST(Caption, ZeroShotScoresOfPromptsSharingAPrefix) {
  TinyCaptionModel t;
  t.m->eval();
  torch::NoGradGuard no_grad;
  const torch::Tensor features = torch::randn({2, 4}, torch::kFloat64);
  // Class 0 "1 2 3", class 1 "1 2 4", class 2 "1 2": one template each.
  const torch::Tensor prompts = torch::tensor({{10, 1, 2, 3, 11, 0}, {10, 1, 2, 4, 11, 0}, {10, 1, 2, 11, 0, 0}},
                                              torch::kInt64);
  const torch::Tensor together = clip::train::caption_class_scores(t.model, t.head, features, prompts, 3,
                                                                    clip::Precision::kFP32);
  for (int64_t c = 0; c < 3; ++c) {
    const torch::Tensor alone = clip::train::caption_class_scores(t.model, t.head, features, prompts.narrow(0, c, 1),
                                                                   1, clip::Precision::kFP32);
    EXPECT_LT((together.select(1, c) - alone.select(1, 0)).abs().max().item<double>(), 1e-12) << "class " << c;
  }
}

TEST(Caption, MicroBatchGradientsEqualTheWholeBatchsAndFiniteDifferences) {
  TinyCaptionModel t;
  t.m->train();
  const torch::Tensor images = torch::randn({6, 3, 8, 8}, torch::kFloat64);
  const torch::Tensor tokens = tiny_tokens();
  auto gradients = [&](int64_t micro) {
    t.m->zero_grad();
    t.head.weight.mutable_grad() = torch::Tensor();
    t.head.bias.mutable_grad() = torch::Tensor();
    const double loss = clip::train::accumulate_caption_gradients(*t.m, t.head, clip::Precision::kFP32, torch::kCPU,
                                                                  images, tokens, micro);
    std::vector<torch::Tensor> g{t.head.weight.grad().clone(), t.head.bias.grad().clone(),
                                 t.m->named_parameters()["visual.conv1.weight"].grad().clone(),
                                 t.m->token_embedding->weight.grad().clone()};
    return std::make_pair(loss, g);
  };
  const auto [loss1, g1] = gradients(1);
  const auto [loss3, g3] = gradients(3);
  // The whole batch's loss, written out.
  auto direct_loss = [&] {
    torch::NoGradGuard no_grad;
    return caption_loss(clip::train::caption_logits(*t.m, t.head, t.m->encode_image(images, nullptr), tokens), tokens)
        .item<double>();
  };
  EXPECT_NEAR(loss1, direct_loss(), 1e-12);
  EXPECT_NEAR(loss3, direct_loss(), 1e-12);
  for (size_t i = 0; i < g1.size(); ++i) EXPECT_LT((g1[i] - g3[i]).abs().max().item<double>(), 1e-12) << i;
  // Central differences on a few entries of the head and of the token embedding.
  const double h = 1e-6;
  auto check = [&](torch::Tensor param, const torch::Tensor& grad, int64_t flat) {
    torch::Tensor v = param.detach().view(-1);
    const double keep = v[flat].item<double>();
    v[flat] = keep + h;
    const double up = direct_loss();
    v[flat] = keep - h;
    const double down = direct_loss();
    v[flat] = keep;
    EXPECT_NEAR(grad.view(-1)[flat].item<double>(), (up - down) / (2 * h), 1e-7) << "entry " << flat;
  };
  for (int64_t i : {0, 5, 17}) check(t.head.weight, g1[0], i);
  check(t.head.bias, g1[1], 3);
  for (int64_t i : {8 * 2 + 1, 8 * 11 + 4}) check(t.m->token_embedding->weight, g1[3], i);
  // The text projection and the temperature play no part.
  EXPECT_FALSE(t.m->text_projection.grad().defined());
}

TEST(Caption, NeedsATransformerTextTower) {
  const clip::ModelConfig cbow = clip::named_config("FMNIST-CBOW");
  EXPECT_THROW(clip::train::make_caption_head(cbow), clip::Error);
}

}  // namespace
