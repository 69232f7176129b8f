// The training checkpoint file: a safetensors file our own reader validates. A saved checkpoint
// restores the model, the trainer's tensors, AdamW's state and hyper-parameters, the position and
// the RNG; a truncated, altered, foreign or earlier-format file is refused with an error naming it,
// and leaves the model as it was.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>

#include "clip/error.h"
#include "io/safetensors.h"
#include "temp_dir.h"
#include "train/checkpoint.h"
#include "util/file_io.h"

namespace fs = std::filesystem;
using clip::test::TempDir;
namespace train = clip::train;

namespace {

// Two parameter groups as the trainer builds them (one with amsgrad, for max_exp_avg_sq), a buffer
// and a trainer tensor that the optimizer trains too.
struct Trainee {
  torch::nn::Sequential model{torch::nn::Linear(4, 3), torch::nn::BatchNorm1d(3)};
  torch::Tensor bias = torch::zeros({1}, torch::requires_grad());
  std::vector<torch::Tensor> extra{bias};
  std::unique_ptr<torch::optim::AdamW> optimizer;
  Trainee() {
    std::vector<torch::Tensor> linear = model[0]->parameters(), rest = model[1]->parameters();
    rest.push_back(bias);
    std::vector<torch::optim::OptimizerParamGroup> groups;
    groups.emplace_back(
        linear, std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(0.1).weight_decay(0.2)));
    groups.emplace_back(rest, std::make_unique<torch::optim::AdamWOptions>(
                                  torch::optim::AdamWOptions(0.05).betas({0.8, 0.9}).eps(1e-6).amsgrad(true)));
    optimizer = std::make_unique<torch::optim::AdamW>(groups, torch::optim::AdamWOptions(0.1));
  }
  void step(const torch::Tensor& input = torch::randn({5, 4})) {
    optimizer->zero_grad();
    (model->forward(input).square().sum() + bias.square().sum() * 3).backward();
    optimizer->step();
  }
  train::CheckpointContents contents() const {
    train::CheckpointContents c;
    c.position = {7, 2, 3, 41};
    c.config_json = "{\"embed_dim\": 3}";
    c.options_json = "{\"run\": 1}";
    c.metrics_bytes = 1234;
    return c;
  }
  std::vector<torch::Tensor> state() {
    std::vector<torch::Tensor> all;
    for (const auto& t : model->parameters()) all.push_back(t.detach().clone());
    for (const auto& t : model->buffers()) all.push_back(t.detach().clone());
    all.push_back(bias.detach().clone());
    return all;
  }
};

void expect_equal(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << i;
}

std::string load_error(const std::string& path, Trainee& t) {
  try {
    train::load_checkpoint(path, *t.model, *t.optimizer, t.extra);
  } catch (const clip::Error& e) {
    return e.what();
  }
  return "(loaded)";
}

TEST(CheckpointFormat, RoundTripsModelOptimizerPositionAndRng) {
  TempDir tmp;
  Trainee a;
  torch::manual_seed(3);
  a.step();
  a.step();
  const std::string path = tmp.file("step-00000007.pt");
  train::save_checkpoint(path, *a.model, *a.optimizer, a.extra, a.contents());
  EXPECT_EQ(clip::util::read_file(path).substr(8, 1), "{");  // safetensors: a length, then JSON
  const torch::Tensor drawn_after_save = torch::rand({16});

  Trainee b;  // fresh: different weights, no optimizer state
  torch::manual_seed(99);
  const train::CheckpointContents c = train::load_checkpoint(path, *b.model, *b.optimizer, b.extra);
  EXPECT_TRUE(torch::equal(torch::rand({16}), drawn_after_save));  // the RNG continues where it was saved
  EXPECT_EQ(c.position.step, 7);
  EXPECT_EQ(c.position.epoch, 2);
  EXPECT_EQ(c.position.batch_in_epoch, 3);
  EXPECT_EQ(c.position.samples, 41);
  EXPECT_EQ(c.config_json, "{\"embed_dim\": 3}");
  EXPECT_EQ(c.options_json, "{\"run\": 1}");
  EXPECT_EQ(c.metrics_bytes, 1234);
  expect_equal(b.state(), a.state());

  // AdamW's state and hyper-parameters, parameter by parameter.
  ASSERT_EQ(b.optimizer->param_groups().size(), 2u);
  for (size_t g = 0; g < 2; ++g) {
    const auto& oa = static_cast<torch::optim::AdamWOptions&>(a.optimizer->param_groups()[g].options());
    const auto& ob = static_cast<torch::optim::AdamWOptions&>(b.optimizer->param_groups()[g].options());
    EXPECT_EQ(oa, ob) << g;
    const auto& pa = a.optimizer->param_groups()[g].params();
    const auto& pb = b.optimizer->param_groups()[g].params();
    for (size_t i = 0; i < pa.size(); ++i) {
      const auto key = [](const torch::Tensor& t) { return c10::guts::to_string(t.unsafeGetTensorImpl()); };
      const auto& sa = static_cast<torch::optim::AdamWParamState&>(*a.optimizer->state().at(key(pa[i])));
      const auto& sb = static_cast<torch::optim::AdamWParamState&>(*b.optimizer->state().at(key(pb[i])));
      EXPECT_EQ(sa.step(), sb.step());
      EXPECT_TRUE(torch::equal(sa.exp_avg(), sb.exp_avg()));
      EXPECT_TRUE(torch::equal(sa.exp_avg_sq(), sb.exp_avg_sq()));
      EXPECT_EQ(sa.max_exp_avg_sq().defined(), g == 1);
      if (g == 1) {
        EXPECT_TRUE(torch::equal(sa.max_exp_avg_sq(), sb.max_exp_avg_sq()));
      }
    }
  }
  EXPECT_EQ(b.optimizer->state().size(), a.optimizer->state().size());

  // The next steps match exactly.
  const torch::Tensor input = torch::randn({5, 4});
  a.step(input);
  b.step(input);
  expect_equal(b.state(), a.state());
}

TEST(CheckpointFormat, DamagedForeignAndEarlierFilesAreRefusedAndChangeNothing) {
  TempDir tmp;
  Trainee a;
  a.step();
  const std::string path = tmp.file("step-00000001.pt");
  train::save_checkpoint(path, *a.model, *a.optimizer, a.extra, a.contents());
  const std::string bytes = clip::util::read_file(path);

  Trainee b;
  const std::vector<torch::Tensor> before = b.state();
  auto refused = [&](const std::string& name, const std::string& content, const std::string& expected) {
    const std::string p = tmp.file(name);
    clip::util::write_file_atomic(p, content);
    const std::string message = load_error(p, b);
    EXPECT_NE(message.find(p), std::string::npos) << message;
    EXPECT_NE(message.find(expected), std::string::npos) << name << ": " << message;
    expect_equal(b.state(), before);
    EXPECT_TRUE(b.optimizer->state().empty()) << name;
  };
  refused("truncated.pt", bytes.substr(0, bytes.size() - 10), "outside the data section");
  refused("cut-header.pt", bytes.substr(0, 100), "runs past the end of the file");
  std::string flipped = bytes;
  flipped[flipped.size() - 3] ^= 0x10;  // the RNG state, the last tensor
  refused("flipped.pt", flipped, "damaged");
  std::string edited = bytes;  // metadata the header check alone would accept
  const size_t at = edited.find("{\\\"run\\\": 1}");
  ASSERT_NE(at, std::string::npos);
  edited.replace(at, 11, "{\\\"run\\\": 2}");
  refused("edited.pt", edited, "damaged");

  // Model weights, not a training checkpoint.
  const float w = 1;
  clip::io::write_safetensors(tmp.file("weights.safetensors"), {{"w", clip::io::DType::kF32, {1}, &w, 4}}, {});
  refused("weights.pt", clip::util::read_file(tmp.file("weights.safetensors")), "lacks the metadata \"format\"");

  // A checkpoint of an earlier version: a libtorch archive, never opened.
  torch::serialize::OutputArchive archive;
  archive.write("position", torch::zeros({4}, torch::kInt64), true);
  archive.save_to(tmp.file("archive.pt"));
  refused("earlier.pt", clip::util::read_file(tmp.file("archive.pt")), "earlier version");

  // Another model: named tensors with other shapes.
  Trainee other;
  other.model = torch::nn::Sequential(torch::nn::Linear(4, 2), torch::nn::BatchNorm1d(2));
  std::string message;
  try {
    train::load_checkpoint(path, *other.model, *other.optimizer, other.extra);
  } catch (const clip::Error& e) {
    message = e.what();
  }
  EXPECT_NE(message.find("model/0.weight"), std::string::npos) << message;
  EXPECT_NE(message.find("shape"), std::string::npos) << message;
}

}  // namespace
