// Real training runs on Fashion-MNIST (Debian's dataset-fashion-mnist, installed by
// scripts/setup.sh): the loss falls and held-out zero-shot accuracy rises far above chance; an
// interrupted and resumed run ends with the same weights as one that never stopped.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "clip/data.h"
#include "clip/error.h"
#include "clip/model.h"
#include "clip/train.h"
#include "test_paths.h"
#include "util/file_io.h"
#include "util/strings.h"

namespace {

// A small model: 16 patches of 7×7, one block per tower.
std::string tiny_config(const std::string& dir, int layers, int width) {
  const std::string path = dir + "/tiny.json";
  nlohmann::json c{{"embed_dim", 64},
                   {"image_resolution", 28},
                   {"vision_layers", layers},
                   {"vision_width", width},
                   {"vision_patch_size", 7},
                   {"context_length", 16},
                   {"vocab_size", 1024},
                   {"transformer_width", width},
                   {"transformer_heads", 2},
                   {"transformer_layers", layers},
                   {"vision_head_width", width / 2}};
  clip::util::write_file_atomic(path, c.dump());
  return path;
}

clip::train::TrainOptions base_options(const std::string& dir, int layers, int width) {
  clip::train::TrainOptions o;
  o.model = tiny_config(dir, layers, width);
  o.out_dir = dir + "/run";
  o.batch_size = 64;
  o.epochs = 1;
  o.warmup_steps = 5;
  o.optimizer.lr = 2e-3;
  o.val_size = 1000;
  o.threads = 2;
  o.workers = 2;
  o.final_eval = false;  // tested on its own below
  o.log_every = 5;
  return o;
}

std::vector<nlohmann::json> metric_lines(const std::string& path) {
  std::vector<nlohmann::json> out;
  for (const std::string& line : clip::util::split_lines(clip::util::read_file(path)))
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

TEST(TrainRun, LossFallsAndZeroShotBeatsChanceByFar) {
  CLIP_REQUIRE_FASHION_MNIST();
  const std::string dir = clip::test::fresh_temp_dir("train_learn");
  clip::train::TrainOptions o = base_options(dir, 2, 64);
  o.max_steps = 400;
  o.eval_every = 400;
  const clip::train::TrainResult r = clip::train::train(o);
  EXPECT_EQ(r.steps, 400);
  EXPECT_FALSE(r.interrupted);
  double first_loss = -1, last_loss = -1;
  for (const auto& j : metric_lines(o.out_dir + "/metrics.jsonl"))
    if (j.contains("loss")) (first_loss < 0 ? first_loss : last_loss) = j["loss"].get<double>();
  EXPECT_GT(first_loss, 0);
  // Same-class captions in a batch of 64 (10 classes) keep the loss well above 0: ask for a clear fall.
  EXPECT_LT(last_loss, first_loss - 0.5) << "first " << first_loss << ", last " << last_loss;
  EXPECT_GT(r.val_top1, 0.5) << "held-out zero-shot top-1 (chance: 0.1)";
  // The saved model loads as any checkpoint does, with the config in its metadata.
  const clip::Model loaded = clip::Model::load(r.model_path);
  EXPECT_EQ(loaded.config().image_resolution, 28);
  EXPECT_EQ(loaded.config().vocab_size, 1024);
  EXPECT_TRUE(clip::util::file_exists(o.out_dir + "/curves.svg"));
}

TEST(TrainRun, ResumedRunEndsWithTheSameWeights) {
  CLIP_REQUIRE_FASHION_MNIST();
  const std::string dir = clip::test::fresh_temp_dir("train_resume");
  clip::train::TrainOptions o = base_options(dir, 1, 32);
  o.val_size = 0;
  o.accum_steps = 2;
  o.max_steps = 12;
  const clip::train::TrainResult whole = clip::train::train(o);

  clip::train::TrainOptions first = o;
  first.out_dir = dir + "/split";
  first.max_steps = 5;  // stops after step 5 with a checkpoint, as an interruption would
  clip::train::train(first);
  clip::train::TrainOptions rest = first;
  rest.max_steps = 12;
  rest.resume = "latest";
  const clip::train::TrainResult resumed = clip::train::train(rest);
  EXPECT_EQ(resumed.steps, 12);
  EXPECT_EQ(resumed.samples, whole.samples);

  const clip::Model a = clip::Model::load(whole.model_path), b = clip::Model::load(resumed.model_path);
  const clip::StateDict sa = a.state_dict(), sb = b.state_dict();
  ASSERT_EQ(sa.size(), sb.size());
  double worst = 0;
  for (size_t i = 0; i < sa.size(); ++i)
    worst = std::max(worst, (sa[i].second - sb[i].second).abs().max().item<double>());
  EXPECT_EQ(worst, 0.0) << "resumed weights differ by up to " << worst;
  // Resuming with other settings is refused, naming the checkpoint.
  clip::train::TrainOptions other = rest;
  other.optimizer.lr = 1.0;
  EXPECT_THROW(clip::train::train(other), clip::Error);
}

}  // namespace

namespace {

// --epochs 1.4 over a 10-pair CSV at batch 2 (5 steps an epoch): 7 steps, the schedule spanning
// exactly those.
TEST(TrainRun, FractionalEpochsEndPartWay) {
  const std::string dir = clip::test::fresh_temp_dir("train_fraction");
  std::string csv = "filepath,title\n";
  for (int i = 0; i < 10; ++i)
    csv +=
        clip::test::data_dir() + "/images/files/astronaut_224x224.png,an astronaut number " + std::to_string(i) + "\n";
  clip::util::write_file_atomic(dir + "/pairs.csv", csv);
  clip::train::TrainOptions o = base_options(dir, 1, 32);
  o.data = "csv:" + dir + "/pairs.csv";
  o.val_size = 0;
  o.batch_size = 2;
  o.warmup_steps = 1;
  o.epochs = 1.4;
  o.log_every = 1;
  const clip::train::TrainResult r = clip::train::train(o);
  EXPECT_EQ(r.steps, 7);
  double last_lr = -1;
  for (const auto& j : metric_lines(o.out_dir + "/metrics.jsonl"))
    if (j.contains("lr")) last_lr = j["lr"].get<double>();
  // The last step's rate is that of a 7-step schedule (5 or 10 would give another value).
  EXPECT_NEAR(last_lr, clip::train::cosine_lr(6, o.optimizer.lr, 1, 7), 1e-12);
  o.epochs = 0;
  EXPECT_THROW(clip::train::train(o), clip::Error);
}

}  // namespace
