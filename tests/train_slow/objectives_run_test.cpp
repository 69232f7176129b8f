// Short real runs on Fashion-MNIST of the paper's other variants: the contrastive objective with a
// CBOW text encoder, bag-of-words prediction (--objective bow-predict) and caption prediction
// (--objective caption); each must raise the held-out zero-shot accuracy far above chance (0.1),
// and saves what it trained.
#include <gtest/gtest.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "clip/error.h"
#include "clip/model.h"
#include "clip/train.h"
#include "io/safetensors.h"
#include "test_paths.h"
#include "util/file_io.h"

namespace {

// A small ViT (16 patches of 7×7, two blocks of width 64) with a CBOW text tower.
clip::train::TrainOptions cbow_options(const std::string& dir) {
  const nlohmann::json c{{"embed_dim", 64},         {"image_resolution", 28}, {"vision_layers", 2},
                         {"vision_width", 64},      {"vision_patch_size", 7}, {"vision_head_width", 32},
                         {"context_length", 16},    {"vocab_size", 1024},     {"text_encoder", "cbow"},
                         {"transformer_width", 64}, {"transformer_layers", 0}};
  clip::util::write_file_atomic(dir + "/cbow.json", c.dump());
  clip::train::TrainOptions o;
  o.model = dir + "/cbow.json";
  o.out_dir = dir + "/run";
  o.batch_size = 64;
  o.epochs = 1;
  o.max_steps = 400;
  o.eval_every = 400;
  o.warmup_steps = 5;
  o.optimizer.lr = 2e-3;
  o.val_size = 1000;
  o.threads = 2;
  o.workers = 2;
  o.log_every = 50;
  return o;
}

TEST(ObjectivesRun, ContrastiveWithCbowTextEncoderBeatsChanceByFar) {
  CLIP_REQUIRE_FASHION_MNIST();
  const std::string dir = clip::test::fresh_temp_dir("train_cbow");
  clip::train::TrainOptions o = cbow_options(dir);
  o.final_eval = false;
  const clip::train::TrainResult r = clip::train::train(o);
  EXPECT_EQ(r.steps, 400);
  EXPECT_GT(r.val_top1, 0.5) << "held-out zero-shot top-1 (chance: 0.1)";
  const clip::Model loaded = clip::Model::load(r.model_path);
  EXPECT_TRUE(loaded.config().is_cbow());
}

TEST(ObjectivesRun, BowPredictBeatsChanceByFarAndEvaluatesOnTheTestSplit) {
  CLIP_REQUIRE_FASHION_MNIST();
  const std::string dir = clip::test::fresh_temp_dir("train_bow");
  clip::train::TrainOptions o = cbow_options(dir);
  o.objective = clip::train::Objective::kBowPredict;
  const clip::train::TrainResult r = clip::train::train(o);
  EXPECT_EQ(r.steps, 400);
  EXPECT_GT(r.val_top1, 0.4) << "held-out zero-shot top-1 (chance: 0.1)";
  EXPECT_GT(r.test_zeroshot_top1, 0.4) << "test zero-shot top-1 (chance: 0.1)";
  EXPECT_LT(r.linear_probe_accuracy, 0) << "bow-predict's final evaluation is zero-shot alone";
  // The head is saved beside the model: one row per vocabulary entry.
  const clip::io::SafetensorsFile head(o.out_dir + "/bow_head.safetensors");
  ASSERT_NE(head.find("weight"), nullptr);
  EXPECT_EQ(head.find("weight")->shape, (std::vector<int64_t>{1024, 64}));
  ASSERT_NE(head.find("bias"), nullptr);
  const nlohmann::json summary = nlohmann::json::parse(clip::util::read_file(o.out_dir + "/summary.json"));
  EXPECT_EQ(summary["objective"], "bow-predict");
}

// The head is part of the run's state: a bow-predict run stopped and resumed ends with the same
// model and head as one that never stopped, and its checkpoint does not resume a contrastive run.
TEST(ObjectivesRun, ResumedBowPredictRunEndsWithTheSameModelAndHead) {
  CLIP_REQUIRE_FASHION_MNIST();
  const std::string dir = clip::test::fresh_temp_dir("train_bow_resume");
  clip::train::TrainOptions o = cbow_options(dir);
  o.objective = clip::train::Objective::kBowPredict;
  o.val_size = 0;
  o.final_eval = false;
  o.max_steps = 12;
  const clip::train::TrainResult whole = clip::train::train(o);

  clip::train::TrainOptions first = o;
  first.out_dir = dir + "/split";
  first.max_steps = 5;
  clip::train::train(first);
  clip::train::TrainOptions rest = first;
  rest.max_steps = 12;
  rest.resume = "latest";
  const clip::train::TrainResult resumed = clip::train::train(rest);
  EXPECT_EQ(resumed.steps, 12);

  const clip::StateDict a = clip::Model::load(whole.model_path).state_dict();
  const clip::StateDict b = clip::Model::load(resumed.model_path).state_dict();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i].second, b[i].second)) << a[i].first;
  const clip::io::SafetensorsFile head_a(o.out_dir + "/bow_head.safetensors");
  const clip::io::SafetensorsFile head_b(rest.out_dir + "/bow_head.safetensors");
  for (const char* name : {"weight", "bias"}) {
    const clip::io::TensorInfo* ta = head_a.find(name);
    const clip::io::TensorInfo* tb = head_b.find(name);
    ASSERT_TRUE(ta && tb) << name;
    ASSERT_EQ(ta->end - ta->begin, tb->end - tb->begin) << name;
    EXPECT_EQ(std::memcmp(head_a.data(*ta), head_b.data(*tb), ta->end - ta->begin), 0) << name << " differs";
  }
  // The same folder with the contrastive objective: other settings, refused.
  clip::train::TrainOptions contrastive = rest;
  contrastive.objective = clip::train::Objective::kContrastive;
  EXPECT_THROW(clip::train::train(contrastive), clip::Error);
}

TEST(ObjectivesRun, CaptionBeatsChanceByFarAndEvaluatesOnTheTestSplit) {
  CLIP_REQUIRE_FASHION_MNIST();
  const std::string dir = clip::test::fresh_temp_dir("train_caption");
  // cbow_options' image tower with a one-block text Transformer.
  const nlohmann::json c{{"embed_dim", 64},         {"image_resolution", 28}, {"vision_layers", 2},
                         {"vision_width", 64},      {"vision_patch_size", 7}, {"vision_head_width", 32},
                         {"context_length", 16},    {"vocab_size", 1024},     {"transformer_width", 64},
                         {"transformer_heads", 2},  {"transformer_layers", 1}};
  clip::train::TrainOptions o = cbow_options(dir);
  clip::util::write_file_atomic(dir + "/caption.json", c.dump());
  o.model = dir + "/caption.json";
  o.objective = clip::train::Objective::kCaption;
  const clip::train::TrainResult r = clip::train::train(o);
  EXPECT_EQ(r.steps, 400);
  EXPECT_GT(r.val_top1, 0.3) << "held-out zero-shot top-1 (chance: 0.1)";
  EXPECT_GT(r.test_zeroshot_top1, 0.3) << "test zero-shot top-1 (chance: 0.1)";
  EXPECT_LT(r.linear_probe_accuracy, 0) << "caption's final evaluation is zero-shot alone";
  // The image-prefix head is saved beside the model: text width × embedding width.
  const clip::io::SafetensorsFile head(o.out_dir + "/caption_head.safetensors");
  ASSERT_NE(head.find("weight"), nullptr);
  EXPECT_EQ(head.find("weight")->shape, (std::vector<int64_t>{64, 64}));
  ASSERT_NE(head.find("bias"), nullptr);
  const nlohmann::json summary = nlohmann::json::parse(clip::util::read_file(o.out_dir + "/summary.json"));
  EXPECT_EQ(summary["objective"], "caption");
}

}  // namespace
