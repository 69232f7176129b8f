// `clip embed`, `similarity`, `classify`, `convert`: outputs, formats and errors, on the tiny
// fixture model shipped in tests/data/fixtures.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli/cli_run.h"
#include "test_paths.h"
#include "util/file_io.h"
#include "util/npy.h"

namespace {

using clip::test::run_clip;

std::string fx() { return clip::test::data_dir() + "/fixtures"; }
std::string model_flag() { return "--model " + fx() + "/models/tiny-vit-f16.safetensors"; }
std::string cat_png() { return fx() + "/images/chelsea_120x80.png"; }
std::string astronaut_png() { return fx() + "/images/astronaut_224x224.png"; }
std::string tmp(const std::string& name) { return std::string(::testing::TempDir()) + "/" + name; }

TEST(CliEmbed, WritesOneRowPerInputImagesFirst) {
  const std::string out = tmp("emb.npy");
  const auto r = run_clip("embed " + model_flag() + " --image " + cat_png() + " --image " + astronaut_png() +
                          " --text 'a cat' --out " + out + " 2>&1");
  ASSERT_EQ(r.status, 0) << r.output;
  const auto a = clip::util::read_npy(out);
  EXPECT_EQ(a.dtype, "<f4");
  EXPECT_EQ(a.shape, (std::vector<int64_t>{3, 64}));
}

TEST(CliEmbed, NormalizeAndJsonLines) {
  const std::string out = tmp("emb.jsonl");
  const auto r =
      run_clip("embed " + model_flag() + " --text 'a cat' --text 'a dog' --normalize --out " + out + " 2>&1");
  ASSERT_EQ(r.status, 0) << r.output;
  const std::string text = clip::util::read_file(out);
  const auto first = nlohmann::json::parse(text.substr(0, text.find('\n')));
  EXPECT_EQ(first["type"], "text");
  EXPECT_EQ(first["input"], "a cat");
  double norm = 0;
  for (double v : first["embedding"]) norm += v * v;
  EXPECT_NEAR(norm, 1.0, 1e-5);
}

TEST(CliEmbed, BadInputsFailCleanlyAndWriteNothing) {
  const std::string out = tmp("never.npy");
  auto r = run_clip("embed " + model_flag() + " --image " + fx() + "/images/empty.png --out " + out + " 2>&1");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("empty.png"), std::string::npos) << r.output;
  EXPECT_FALSE(clip::test::path_exists(out));
  r = run_clip("embed " + model_flag() + " --text a --out " + tmp("x.csv") + " 2>&1");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("expected a file name ending in .npy or .jsonl"), std::string::npos) << r.output;
  r = run_clip("embed --model /nonexistent.safetensors --text a --out " + out + " 2>&1");
  EXPECT_EQ(r.status, 3);  // not found
  EXPECT_NE(r.output.find("/nonexistent.safetensors"), std::string::npos) << r.output;
  EXPECT_EQ(run_clip("embed " + model_flag() + " --out " + out + " 2>&1").status, 2);
  EXPECT_EQ(run_clip("embed " + model_flag() + " --text a --precision fp8 --out " + out + " 2>&1").status, 2);
}

TEST(CliSimilarity, JsonHasEveryPairAndSoftmaxSumsToOne) {
  const auto r =
      run_clip("similarity " + model_flag() + " --image " + cat_png() + " --text 'a cat' --text 'a rocket' --json");
  ASSERT_EQ(r.status, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output);
  ASSERT_EQ(j["pairs"].size(), 2u);
  EXPECT_NEAR(j["pairs"][0]["probability"].get<double>() + j["pairs"][1]["probability"].get<double>(), 1.0, 1e-5);
  EXPECT_LE(std::abs(j["pairs"][0]["cosine"].get<double>()), 1.0);
}

TEST(CliClassify, TopKWithProbabilities) {
  const std::string templates = tmp("templates.txt");
  clip::util::write_file_atomic(templates, "a photo of a {}.\na drawing of a {}.\n");
  const auto r = run_clip("classify " + model_flag() + " --labels 'cat, dog,rocket' --templates " + templates +
                          " --top-k 2 --json " + cat_png() + " " + astronaut_png());
  ASSERT_EQ(r.status, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output);
  ASSERT_EQ(j.size(), 2u);
  ASSERT_EQ(j[0]["top"].size(), 2u);
  EXPECT_GE(j[0]["top"][0]["probability"].get<double>(), j[0]["top"][1]["probability"].get<double>());
  const auto bad = run_clip("classify " + model_flag() + " " + cat_png() + " 2>&1");
  EXPECT_EQ(bad.status, 2) << bad.output;  // neither --labels nor --labels-file
}

TEST(CliConvert, ConvertedFileLoadsWithTheSameFeatures) {
  const std::string out = tmp("converted.safetensors");
  auto r = run_clip("convert " + fx() + "/models/tiny-vit-f16.safetensors " + out + " 2>&1");
  ASSERT_EQ(r.status, 0) << r.output;
  // The config travels in the metadata: no --config and no sibling config file needed.
  const std::string a = tmp("a.npy"), b = tmp("b.npy");
  ASSERT_EQ(run_clip("embed --model " + out + " --image " + cat_png() + " --text 'a cat' --out " + a + " 2>&1").status,
            0);
  ASSERT_EQ(run_clip("embed " + model_flag() + " --image " + cat_png() + " --text 'a cat' --out " + b + " 2>&1").status,
            0);
  EXPECT_EQ(clip::util::read_file(a), clip::util::read_file(b));
}

// --dtype int8: the file is smaller, loads by path alone, and int8 inference of it gives the bytes
// int8 inference of the original gives (the fixture is float16, which the rest keeps exactly).
TEST(CliConvert, Int8FileRunsInt8AsTheOriginal) {
  const std::string in = fx() + "/models/tiny-vit-f16.safetensors", out = tmp("int8.safetensors");
  auto r = run_clip("convert " + in + " " + out + " --dtype int8 2>&1");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("(int8)"), std::string::npos) << r.output;
  const std::string a = tmp("q.npy"), b = tmp("o.npy"), embed = " --precision int8 --text 'a cat' --text 'a dog' --out ";
  const auto quantized = run_clip("embed --model " + out + embed + a + " 2>&1");
  // A CPU without VNNI refuses precision int8 (src/model/cpu_support.h), naming why.
  if (quantized.status != 0 && quantized.output.find("needs a CPU with VNNI") != std::string::npos)
    GTEST_SKIP() << quantized.output;
  ASSERT_EQ(quantized.status, 0) << quantized.output;
  ASSERT_EQ(run_clip("embed --model " + in + embed + b + " 2>&1").status, 0);
  EXPECT_EQ(clip::util::read_file(a), clip::util::read_file(b));
  const auto bad = run_clip("convert " + in + " " + tmp("x.safetensors") + " --dtype int4 2>&1");
  EXPECT_EQ(bad.status, 2) << bad.output;
  EXPECT_NE(bad.output.find("--dtype"), std::string::npos) << bad.output;
}

}  // namespace
