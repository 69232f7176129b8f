// `clip eval`: usage and input errors, and one real run on the fixture model writing the JSON
// report.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "cli/cli_run.h"
#include "test_paths.h"
#include "util/file_io.h"

namespace {

using clip::test::run_clip;

std::string fx() { return clip::test::data_dir() + "/fixtures"; }
std::string model_flag() { return "--model " + fx() + "/models/tiny-vit-f16.safetensors"; }
std::string tmp(const std::string& name) { return std::string(::testing::TempDir()) + "/" + name; }

TEST(CliEval, UsageErrorsExitTwo) {
  auto r = run_clip("eval 2>&1");
  EXPECT_EQ(r.status, 2) << r.output;
  r = run_clip("eval zeroshot " + model_flag() + " 2>&1");  // no --dataset
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("--dataset"), std::string::npos) << r.output;
  r = run_clip("eval zeroshot " + model_flag() + " --dataset fashion-mnist --split dev 2>&1");
  EXPECT_EQ(r.status, 2) << r.output;
  r = run_clip("eval linear-probe " + model_flag() + " --dataset fashion-mnist --lambdas 1e-3,abc 2>&1");
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("\"abc\""), std::string::npos) << r.output;
  r = run_clip("eval retrieval " + model_flag() + " --dataset x --batch-size 0 2>&1");
  EXPECT_EQ(r.status, 2) << r.output;
}

TEST(CliEval, InputErrorsNameTheInput) {
  auto r = run_clip("eval zeroshot " + model_flag() + " --dataset imagenet-21k 2>&1");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("error: unknown data set \"imagenet-21k\""), std::string::npos) << r.output;
  r = run_clip("eval zeroshot " + model_flag() + " --dataset folder:/nonexistent/images 2>&1");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("/nonexistent/images: not a folder"), std::string::npos) << r.output;
  r = run_clip("eval zeroshot " + model_flag() + " --dataset mnist 2>&1");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("--data-dir"), std::string::npos) << r.output;
  r = run_clip("eval retrieval " + model_flag() + " --dataset csv:/nonexistent.csv 2>&1");
  EXPECT_EQ(r.status, 3) << r.output;  // not found
  EXPECT_NE(r.output.find("/nonexistent.csv"), std::string::npos) << r.output;
}

TEST(CliEval, ZeroShotOnAnImageFolderWritesTheReport) {
  const std::string root = tmp("eval_cli_folder");
  std::filesystem::remove_all(root);
  std::filesystem::create_directories(root + "/astronaut");
  std::filesystem::create_directories(root + "/cat");
  std::filesystem::copy_file(fx() + "/images/astronaut_224x224.png", root + "/astronaut/a.png");
  std::filesystem::copy_file(fx() + "/images/chelsea_120x80.png", root + "/cat/c.png");
  std::filesystem::copy_file(fx() + "/images/empty.png", root + "/cat/empty.png");  // skipped, reported
  const std::string out = tmp("eval_cli_report.json");
  const auto r = run_clip("eval zeroshot " + model_flag() + " --dataset folder:" + root + " --no-progress --json " +
                          out + " 2>&1");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("top-1"), std::string::npos) << r.output;
  const nlohmann::json j = nlohmann::json::parse(clip::util::read_file(out));
  EXPECT_EQ(j["task"], "zeroshot");
  for (const char* key : {"dataset", "model", "metrics", "settings", "versions", "skipped"})
    EXPECT_TRUE(j.contains(key)) << key;
  EXPECT_EQ(j["metrics"]["count"], 2);
  EXPECT_EQ(j["settings"]["classes"], (nlohmann::json{"astronaut", "cat"}));
  EXPECT_EQ(j["settings"]["image_resolution"], 32);
  ASSERT_EQ(j["skipped"].size(), 1u);
  EXPECT_NE(j["skipped"][0]["source"].get<std::string>().find("empty.png"), std::string::npos);
  EXPECT_TRUE(j["versions"]["libtorch"].is_string());
  std::filesystem::remove_all(root);
}

TEST(CliEval, RetrievalOnACsvWithCaptions) {
  const std::string dir = tmp("eval_cli_csv");
  std::filesystem::create_directories(dir);
  clip::util::write_file_atomic(dir + "/pairs.csv", "filepath,title\n" + fx() +
                                                        "/images/astronaut_224x224.png,an astronaut\n" + fx() +
                                                        "/images/chelsea_120x80.png,\"a cat, sitting\"\n");
  const std::string out = tmp("eval_cli_retrieval.json");
  const auto r = run_clip("eval retrieval " + model_flag() + " --dataset csv:" + dir +
                          "/pairs.csv --no-progress --json " + out + " 2>&1");
  ASSERT_EQ(r.status, 0) << r.output;
  const nlohmann::json j = nlohmann::json::parse(clip::util::read_file(out));
  EXPECT_EQ(j["task"], "retrieval");
  EXPECT_EQ(j["metrics"]["image_to_text"]["count"], 2);
  EXPECT_EQ(j["metrics"]["text_to_image"]["count"], 2);
  // With two candidates, everything is within 5.
  EXPECT_EQ(j["metrics"]["text_to_image"]["r5"], 1.0);
}

}  // namespace
