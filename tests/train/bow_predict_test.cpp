// The bag-of-words objective (--objective bow-predict): the caption bags, the loss and the
// zero-shot scores against direct computations on small known inputs, the gradient of a batch in
// micro-batches against the whole batch's, and the option checks.
#include "train/bow_predict.h"

#include <gtest/gtest.h>

#include <cmath>

#include "clip/train.h"
#include "model/model_access.h"

namespace {

using clip::train::bag_of_words;
using clip::train::bow_predict_loss;
using clip::train::bow_zero_shot_scores;

// Vocabulary 10: id 8 starts a caption and 9 ends it (the largest id, as the tokenizer's specials).
TEST(BowPredict, BagOfWordsCountsTheWordsBetweenStartAndEnd) {
  const torch::Tensor tokens = torch::tensor(
      {{8, 3, 5, 3, 9, 0, 0}, {8, 0, 9, 0, 0, 0, 0}, {8, 9, 0, 0, 0, 0, 0}, {8, 1, 2, 4, 6, 7, 9}}, torch::kInt64);
  const torch::Tensor bags = bag_of_words(tokens, 10);
  ASSERT_EQ(bags.sizes(), (std::vector<int64_t>{4, 10}));
  torch::Tensor want = torch::zeros({4, 10});
  want[0][3] = 2.0 / 3;  // "3 5 3"
  want[0][5] = 1.0 / 3;
  want[1][0] = 1.0;  // id 0 as a word (before the end token) counts; the padding after it does not
  // row 2: no words, all zero
  for (int id : {1, 2, 4, 6, 7}) want[3][id] = 1.0 / 5;
  EXPECT_TRUE(torch::allclose(bags, want, 0, 1e-7)) << bags;
  EXPECT_THROW(bag_of_words(torch::tensor({{8, 10, 9}}, torch::kInt64), 10), clip::Error);
}

TEST(BowPredict, LossIsTheCrossEntropyAgainstTheBags) {
  const torch::Tensor logits = torch::tensor({{1.0, 2.0, 0.5}, {-1.0, 0.0, 3.0}}, torch::kFloat64);
  const torch::Tensor targets = torch::tensor({{0.5, 0.5, 0.0}, {0.0, 0.25, 0.75}}, torch::kFloat64);
  double want = 0;
  const double l[2][3] = {{1.0, 2.0, 0.5}, {-1.0, 0.0, 3.0}};
  const double t[2][3] = {{0.5, 0.5, 0.0}, {0.0, 0.25, 0.75}};
  for (int n = 0; n < 2; ++n) {
    const double log_z = std::log(std::exp(l[n][0]) + std::exp(l[n][1]) + std::exp(l[n][2]));
    for (int v = 0; v < 3; ++v) want -= t[n][v] * (l[n][v] - log_z) / 2;
  }
  EXPECT_NEAR(bow_predict_loss(logits, targets).item<double>(), want, 1e-12);
  EXPECT_THROW(bow_predict_loss(logits, targets.narrow(1, 0, 2)), clip::Error);
}

TEST(BowPredict, ZeroShotScoresAverageThePromptsLogLikelihoods) {
  // 2 images, vocabulary 4, 2 classes × 3 prompts.
  const torch::Tensor log_probs = torch::log(torch::tensor({{0.1, 0.2, 0.3, 0.4}, {0.7, 0.1, 0.1, 0.1}}));
  const torch::Tensor bags = torch::tensor({{{1.0, 0.0, 0.0, 0.0}, {0.5, 0.5, 0.0, 0.0}, {0.0, 0.0, 0.5, 0.5}},
                                            {{0.0, 0.0, 0.0, 1.0}, {0.0, 1.0, 0.0, 0.0}, {0.25, 0.25, 0.25, 0.25}}});
  const double p[2][4] = {{0.1, 0.2, 0.3, 0.4}, {0.7, 0.1, 0.1, 0.1}};
  const torch::Tensor scores = bow_zero_shot_scores(log_probs, bags);
  ASSERT_EQ(scores.sizes(), (std::vector<int64_t>{2, 2}));
  for (int n = 0; n < 2; ++n)
    for (int c = 0; c < 2; ++c) {
      double want = 0;
      for (int t = 0; t < 3; ++t)
        for (int v = 0; v < 4; ++v) want += bags[c][t][v].item<double>() * std::log(p[n][v]) / 3;
      EXPECT_NEAR(scores[n][c].item<double>(), want, 1e-6) << "image " << n << ", class " << c;
    }
  // Image 0 leans to ids 2 and 3 (class 1's words by more), image 1 to id 0 (class 0's).
  EXPECT_EQ(scores.argmax(1)[0].item<int64_t>(), 1);
  EXPECT_EQ(scores.argmax(1)[1].item<int64_t>(), 0);
}

TEST(BowPredict, ClassPromptBagsHoldTheClassWords) {
  clip::ModelConfig c = clip::named_config("FMNIST-CBOW");
  const torch::Tensor bags = clip::train::class_prompt_bags(c, {"shirt", "bag"}, {"a photo of a {}.", "a {}"});
  ASSERT_EQ(bags.sizes(), (std::vector<int64_t>{2, 2, c.vocab_size}));
  // Each prompt's bag is a distribution; the two classes' bags of one template differ.
  EXPECT_TRUE(torch::allclose(bags.sum(2), torch::ones({2, 2})));
  EXPECT_FALSE(torch::equal(bags[0][1], bags[1][1]));
}

TEST(BowPredict, MicroBatchGradientsEqualTheWholeBatchs) {
  const clip::ModelConfig config = clip::config_from_json_text(
      R"({"embed_dim": 4, "image_resolution": 8, "vision_layers": 1, "vision_width": 8, "vision_patch_size": 4,
          "vision_heads": 2, "context_length": 6, "vocab_size": 12, "text_encoder": "cbow", "transformer_width": 6,
          "transformer_layers": 0})",
      "tiny");
  const clip::Model model = clip::Model::random(config, 1);
  auto m = clip::model::module_of(model);
  m->to(torch::kFloat64);
  m->train();
  torch::manual_seed(2);
  clip::train::ObjectiveHead head = clip::train::make_bow_head(config);
  head.weight = head.weight.detach().to(torch::kFloat64).requires_grad_(true);
  head.bias = head.bias.detach().to(torch::kFloat64).requires_grad_(true);
  const torch::Tensor images = torch::randn({6, 3, 8, 8}, torch::kFloat64);
  const torch::Tensor tokens = torch::tensor({{10, 1, 2, 11, 0, 0},
                                              {10, 3, 11, 0, 0, 0},
                                              {10, 4, 4, 5, 11, 0},
                                              {10, 6, 11, 0, 0, 0},
                                              {10, 7, 8, 9, 1, 11},
                                              {10, 2, 11, 0, 0, 0}},
                                             torch::kInt64);
  auto gradients = [&](int64_t micro) {
    m->zero_grad();
    head.weight.mutable_grad() = torch::Tensor();
    head.bias.mutable_grad() = torch::Tensor();
    const double loss =
        clip::train::accumulate_bow_gradients(*m, head, clip::Precision::kFP32, torch::kCPU, images, tokens, micro);
    std::vector<torch::Tensor> g{head.weight.grad().clone(), head.bias.grad().clone(),
                                 m->named_parameters()["visual.conv1.weight"].grad().clone()};
    return std::make_pair(loss, g);
  };
  const auto [loss1, g1] = gradients(1);
  const auto [loss3, g3] = gradients(3);
  // The whole batch's loss, written out: the head on the normalized image features.
  torch::Tensor f;
  {
    torch::NoGradGuard no_grad;
    f = m->encode_image(images, nullptr);
    f = f / f.norm(2, -1, true);
  }
  const torch::Tensor logits = torch::matmul(f, head.weight.detach().t()) + head.bias.detach();
  const double direct =
      -(bag_of_words(tokens, 12).to(torch::kFloat64) * torch::log_softmax(logits, 1)).sum(1).mean().item<double>();
  EXPECT_NEAR(loss1, direct, 1e-12);
  EXPECT_NEAR(loss3, direct, 1e-12);
  for (size_t i = 0; i < g1.size(); ++i) EXPECT_LT((g1[i] - g3[i]).abs().max().item<double>(), 1e-12) << i;
  // The text tower plays no part.
  EXPECT_FALSE(m->token_embedding->weight.grad().defined());
}

TEST(BowPredict, OptionsOfTheContrastiveObjectiveAreRefused) {
  clip::train::TrainOptions o;
  o.objective = clip::train::Objective::kBowPredict;
  o.loss = clip::train::LossKind::kSigLip;
  o.out_dir = "/nonexistent/never-created";
  try {
    clip::train::train(o);
    FAIL() << "bow-predict with the siglip loss was accepted";
  } catch (const clip::train::OptionError& e) {
    EXPECT_NE(std::string(e.what()).find("objective"), std::string::npos) << e.what();
  }
}

}  // namespace
