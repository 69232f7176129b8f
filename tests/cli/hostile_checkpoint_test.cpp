// Every command that takes a model, given a TorchScript archive whose __setstate__ creates a file
// (tests/data/checkpoints/hostile_setstate.jit.pt, tools/make_hostile_torchscript.py; torch.jit.load
// creates HOSTILE_CODE_RAN in the current directory): the command runs in a fresh folder, fails
// with the message that says why and what to do instead, and the file never appears.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "cli/cli_run.h"
#include "test_paths.h"
#include "util/file_io.h"

namespace {

namespace fs = std::filesystem;
using clip::test::CliResult;

constexpr const char* kMarker = "HOSTILE_CODE_RAN";  // tools/make_hostile_torchscript.py --marker

std::string hostile() { return fs::absolute(clip::test::data_dir() + "/checkpoints/hostile_setstate.jit.pt").string(); }
std::string cat_png() { return fs::absolute(clip::test::data_dir() + "/fixtures/images/chelsea_120x80.png").string(); }

// Runs `clip <args>` (stdout and stderr merged) with `dir` as its current directory.
CliResult run_clip_in(const std::string& dir, const std::string& args) {
  CliResult r;
  const std::string cmd = "cd '" + dir + "' && timeout 120 " + std::string(CLIP_EXE) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  const int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

// A fresh folder holding one image in a class folder (images/cat/cat.png) and a CSV of it with a
// caption (pairs.csv), so that every command gets as far as loading the model.
std::string fresh_workdir(const std::string& name) {
  const std::string dir = clip::test::fresh_temp_dir("hostile_" + name);
  fs::create_directories(dir + "/images/cat");
  fs::copy_file(cat_png(), dir + "/images/cat/cat.png");
  clip::util::write_file_atomic(dir + "/pairs.csv", "filepath,caption\n" + dir + "/images/cat/cat.png,a cat\n");
  return dir;
}

void expect_refused(const std::string& name, const std::string& args) {
  const std::string dir = fresh_workdir(name);
  const CliResult r = run_clip_in(dir, args);
  EXPECT_EQ(r.status, 5) << name << ": " << r.output;
  EXPECT_NE(r.output.find("error: " + hostile() + ": data.pkl: module \"visual\" (__torch__.Hostile) is stored as"),
            std::string::npos)
      << name << ": " << r.output;
  EXPECT_NE(r.output.find("never does"), std::string::npos) << name << ": " << r.output;
  EXPECT_FALSE(clip::test::path_exists(dir + "/" + kMarker)) << name << ": code from the archive ran";
}

TEST(HostileCheckpoint, Embed) {
  expect_refused("embed", "embed --model " + hostile() + " --text 'a cat' --out out.npy");
}

TEST(HostileCheckpoint, Similarity) {
  expect_refused("similarity", "similarity --model " + hostile() + " --image images/cat/cat.png --text 'a cat'");
}

TEST(HostileCheckpoint, Classify) {
  expect_refused("classify", "classify --model " + hostile() + " --labels cat,dog images/cat/cat.png");
}

TEST(HostileCheckpoint, Convert) { expect_refused("convert", "convert " + hostile() + " out.safetensors"); }

TEST(HostileCheckpoint, IndexBuild) {
  expect_refused("index", "index build --model " + hostile() + " --images images --out index");
}

TEST(HostileCheckpoint, TrainModel) {
  expect_refused("train", "train --model " + hostile() +
                              " --data csv:pairs.csv --csv-caption-key caption --steps 1 --batch-size 1 --out run");
}

TEST(HostileCheckpoint, Serve) { expect_refused("serve", "serve --model " + hostile() + " --port 0"); }

TEST(HostileCheckpoint, EvalZeroShot) {
  expect_refused("eval", "eval zeroshot --model " + hostile() + " --dataset folder:images --no-progress");
}

// `train --resume FILE` with the archive as the training checkpoint: training checkpoints are
// safetensors files read by our own reader (src/train/checkpoint.cpp); a libtorch archive is
// refused as an earlier version's checkpoint, never opened with libtorch (whose
// torch::serialize::InputArchive is torch::jit::load underneath, and would run __setstate__).
TEST(HostileCheckpoint, TrainResume) {
  const std::string dir = fresh_workdir("resume");
  const CliResult r =
      run_clip_in(dir, "train --model " + clip::test::shared_fixtures() +
                           "/models/tiny-vit.config.json --data csv:pairs.csv --csv-caption-key caption "
                           "--steps 1 --batch-size 1 --out run --resume " +
                           hostile());
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("error: " + hostile() + ": a libtorch archive, not a training checkpoint"), std::string::npos)
      << r.output;
  EXPECT_FALSE(clip::test::path_exists(dir + "/" + kMarker)) << "code from the archive ran";
}

}  // namespace
