// Checkpoints and metrics across interruptions: `--resume latest` falls back to the newest
// checkpoint that reads whole, temporary files of killed writers are removed, and a resumed run's
// metrics.jsonl is cut back to what it held at its checkpoint.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "clip/error.h"
#include "temp_dir.h"
#include "train/checkpoint.h"
#include "train/metrics_log.h"
#include "util/file_io.h"

namespace fs = std::filesystem;
using clip::test::TempDir;
namespace train = clip::train;

namespace {

struct Trainee {
  torch::nn::Linear model{4, 3};
  torch::optim::AdamW optimizer{model->parameters(), torch::optim::AdamWOptions(0.1)};
  std::vector<torch::Tensor> extra{torch::zeros({1})};
  void step() {
    optimizer.zero_grad();
    model(torch::ones({2, 4})).square().sum().backward();
    optimizer.step();
  }
  void save(const std::string& dir, int64_t step) {
    train::CheckpointContents c;
    c.position.step = step;
    c.options_json = "{\"run\": 1}";
    c.metrics_bytes = 100 * step;
    train::save_checkpoint(train::checkpoint_path(dir, step), *model, optimizer, extra, c);
  }
};

TEST(Checkpoint, ResumeLatestFallsBackToTheNewestCheckpointThatReadsWhole) {
  TempDir tmp;
  Trainee t;
  t.step();
  t.save(tmp.path(), 1);
  const torch::Tensor weight_at_1 = t.model->weight.detach().clone();
  t.step();
  t.save(tmp.path(), 2);
  t.step();
  t.save(tmp.path(), 3);
  for (const auto& e : fs::directory_iterator(tmp.path()))
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();
  // The newest is cut short, the one before has a damaged end (its checksum fails): both are
  // reported and skipped.
  const std::string newest = train::checkpoint_path(tmp.path(), 3), middle = train::checkpoint_path(tmp.path(), 2);
  fs::resize_file(newest, fs::file_size(newest) / 2);
  std::string bytes = clip::util::read_file(middle);
  bytes.replace(bytes.size() - 64, 64, std::string(64, 'x'));
  clip::util::write_file_atomic(middle, bytes);

  Trainee resumed;
  std::string path;
  std::string warnings;  // what on_skipped is told
  const train::CheckpointContents c =
      train::load_latest_checkpoint(tmp.path(), *resumed.model, resumed.optimizer, resumed.extra, &path,
                                    [&](const std::string& why) { warnings += why + "\n"; });
  EXPECT_EQ(path, train::checkpoint_path(tmp.path(), 1));
  EXPECT_EQ(c.position.step, 1);
  EXPECT_EQ(c.metrics_bytes, 100);
  EXPECT_TRUE(torch::equal(resumed.model->weight, weight_at_1));
  EXPECT_NE(warnings.find(newest), std::string::npos) << warnings;

  // None reads: an error listing them.
  fs::resize_file(train::checkpoint_path(tmp.path(), 1), 100);
  std::string message;
  try {
    train::load_latest_checkpoint(tmp.path(), *resumed.model, resumed.optimizer, resumed.extra, &path);
  } catch (const clip::Error& e) {
    message = e.what();
  }
  EXPECT_NE(message.find("no checkpoint"), std::string::npos) << message;
  EXPECT_NE(message.find(newest), std::string::npos) << message;
  EXPECT_THROW(
      train::load_latest_checkpoint(tmp.path() + "/none", *resumed.model, resumed.optimizer, resumed.extra, &path),
      clip::Error);
}

TEST(Checkpoint, TemporaryFilesOfKilledWritersAreRemoved) {
  TempDir tmp;
  Trainee t;
  t.save(tmp.path(), 5);
  tmp.write("step-00000006.pt.tmp", "partial");       // an earlier version's name
  tmp.write("step-00000006.pt.tmp.4242", "partial");  // write_file_atomic's
  tmp.write("notes.tmp.1", "not ours");
  train::remove_stale_checkpoint_files(tmp.path());
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(tmp.path())) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"notes.tmp.1", "step-00000005.pt"}));
  EXPECT_EQ(train::latest_checkpoint(tmp.path()), train::checkpoint_path(tmp.path(), 5));
}

TEST(MetricsLog, AResumedRunCutsTheFileBackToItsCheckpoint) {
  TempDir tmp;
  const std::string path = tmp.file("metrics.jsonl");
  int64_t at_step_2 = 0;
  {
    train::MetricsLog log(path, -1, -1);
    log.append("{\"step\":1,\"loss\":3.0}");
    log.append("{\"step\":2,\"loss\":2.0}");
    at_step_2 = log.sync();
    log.append("{\"step\":2,\"skipped\":\"a.jpg\"}");  // logged for step 3's batch, after the checkpoint
    log.append("{\"step\":3,\"loss\":1.0}");
  }
  { std::ofstream(path, std::ios::app) << "{\"step\":4,\"lo"; }  // killed mid-line
  const std::string kept = "{\"step\":1,\"loss\":3.0}\n{\"step\":2,\"loss\":2.0}\n";
  EXPECT_EQ(at_step_2, static_cast<int64_t>(kept.size()));
  {
    train::MetricsLog log(path, 2, at_step_2);
    EXPECT_EQ(clip::util::read_file(path), kept);
    log.append("{\"step\":3,\"loss\":1.5}");
  }
  EXPECT_EQ(clip::util::read_file(path), kept + "{\"step\":3,\"loss\":1.5}\n");

  // A checkpoint that recorded no length: the lines past its step go, and the partial one.
  { std::ofstream(path, std::ios::app) << "{\"step\":4,\"loss\":0.5}\n{\"step\":5,\"lo"; }
  { train::MetricsLog log(path, 3, -1); }
  EXPECT_EQ(clip::util::read_file(path), kept + "{\"step\":3,\"loss\":1.5}\n");
  // A length past the file's end (lines lost with the power): what is there, up to its last whole line.
  { std::ofstream(path, std::ios::app) << "{\"step\":4,\"lo"; }
  { train::MetricsLog log(path, 4, 1 << 20); }
  EXPECT_EQ(clip::util::read_file(path), kept + "{\"step\":3,\"loss\":1.5}\n");
  // A new run starts empty.
  { train::MetricsLog log(path, -1, -1); }
  EXPECT_EQ(clip::util::read_file(path), "");
}

}  // namespace
