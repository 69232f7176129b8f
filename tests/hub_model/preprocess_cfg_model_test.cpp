// A model resolved by name brings its preprocessing: open_clip_config.json's preprocess_cfg
// (here bilinear + squash, mean and std 0.5) reaches clip::Embedder through the C++ API, so the
// features of a JPEG are those of the pixels Pillow gives for that cfg
// (tools/make_preprocess_cfg_fixtures.py). With CLIP's default preprocessing they differ, so the
// comparison can fail.
#include <gtest/gtest.h>
#include <stdlib.h>  // setenv

#include <filesystem>
#include <nlohmann/json.hpp>

#include "clip/embedder.h"
#include "clip/hub.h"
#include "clip/image.h"
#include "hub/hub_test_util.h"
#include "temp_dir.h"
#include "test_paths.h"
#include "util/npy.h"

namespace clip {
namespace {

const std::string kRepo = "laion/CLIP-ViT-B-32-laion2B-s34B-b79K";

// Pillow's 32x32 pixels of astronaut_q95.jpg for bilinear + squash, as the model's input.
torch::Tensor pillow_input(const image::PreprocessOptions& pre) {
  const util::NpyArray a =
      util::read_npy(test::data_dir() + "/images/expected_cfg/astronaut_q95.jpg.bilinear.squash.32.rgb8.npy");
  EXPECT_EQ(a.shape, (std::vector<int64_t>{32, 32, 3}));
  image::Rgb8 rgb;
  rgb.width = rgb.height = 32;
  rgb.pixels.assign(a.data.begin(), a.data.end());
  std::vector<float> v = image::normalize(rgb, pre.mean, pre.std);
  return torch::from_blob(v.data(), {1, 3, 32, 32}, torch::kFloat32).clone();
}

std::string jpeg() { return test::data_dir() + "/images/files/astronaut_q95.jpg"; }

float max_diff(const torch::Tensor& a, const torch::Tensor& b) { return (a - b).abs().max().item<float>(); }

hub::HubOptions offline_cache(const test::TempDir& dir) {
  hub::HubOptions o;
  o.cache_dir = dir.file("hub");
  o.openai_cache_dir = dir.file("clip");
  o.endpoint = "http://127.0.0.1:1";
  o.offline = true;
  o.progress = false;
  return o;
}

TEST(HubModel, ResolvedNameBringsItsPreprocessingToTheEmbedder) {
  test::TempDir dir;
  const hub::HubOptions o = offline_cache(dir);
  test::put_in_cache(o.cache_dir, kRepo, "open_clip_config.json", test::fixture_open_clip_config());
  test::put_in_cache(o.cache_dir, kRepo, "open_clip_model.safetensors", test::fixture_weights());

  for (const std::string& name : {std::string("ViT-B-32/laion2b_s34b_b79k"), "hf-hub:" + kRepo}) {
    SCOPED_TRACE(name);
    const hub::ResolvedModel m = hub::resolve_model(name, o);
    ASSERT_TRUE(m.preprocess.has_value());
    EXPECT_EQ(m.preprocess->interpolation, "bilinear");
    LoadOptions lo;
    lo.config_path = m.config;
    lo.preprocess = m.preprocess;
    const Model model = Model::load(m.weights, lo);
    const image::PreprocessOptions pre = model.image_preprocess();
    EXPECT_EQ(pre.filter, image::Filter::kBilinear);
    EXPECT_EQ(pre.resize_mode, image::ResizeMode::kSquash);
    EXPECT_EQ(pre.mean[0], 0.5f);
    const Embedder embedder(model, 1);
    EXPECT_LT(max_diff(embedder.embed_image_files({jpeg()}), model.encode_image(pillow_input(pre))), 1e-5f);
  }
}

TEST(HubModel, TheWeightsAloneFindTheirOpenClipConfig) {
  // A snapshot's weights file loaded by path takes open_clip_config.json beside it, preprocessing too.
  test::TempDir dir;
  const hub::HubOptions o = offline_cache(dir);
  test::put_in_cache(o.cache_dir, kRepo, "open_clip_config.json", test::fixture_open_clip_config());
  test::put_in_cache(o.cache_dir, kRepo, "open_clip_model.safetensors", test::fixture_weights());
  const Model model = Model::load(hub::resolve_model("hf-hub:" + kRepo, o).weights);
  EXPECT_EQ(model.config().preprocess.resize_mode, "squash");
  const Embedder embedder(model, 1);
  EXPECT_LT(max_diff(embedder.embed_image_files({jpeg()}), model.encode_image(pillow_input(model.image_preprocess()))),
            1e-5f);
}

TEST(HubModel, DefaultPreprocessingGivesOtherFeatures) {
  // The same weights with an empty preprocess_cfg: CLIP's bicubic shortest-side resize and
  // OpenAI's mean/std, whose features of the JPEG are not those of Pillow's squash pixels.
  test::TempDir dir;
  dir.write("m/open_clip_model.safetensors", test::fixture_weights());
  dir.write("m/open_clip_config.json", test::fixture_open_clip_config("{}"));
  const hub::ResolvedModel m = hub::resolve_model("local-dir:" + dir.file("m"), offline_cache(dir));
  LoadOptions lo;
  lo.config_path = m.config;
  lo.preprocess = m.preprocess;
  const Model model = Model::load(m.weights, lo);
  EXPECT_EQ(model.image_preprocess().filter, image::Filter::kBicubic);
  const Embedder embedder(model, 1);
  EXPECT_GT(max_diff(embedder.embed_image_files({jpeg()}), model.encode_image(pillow_input(model.image_preprocess()))),
            1e-3f);
}

TEST(HubModel, ConfigJsonKeepsThePreprocessing) {
  // Our JSON (what convert and the index save) carries it, and reading it back gives it again.
  test::TempDir dir;
  const std::string path = dir.write("open_clip_config.json", test::fixture_open_clip_config());
  const ModelConfig c = config_from_file(path);
  EXPECT_EQ(c.preprocess.interpolation, "bilinear");
  const ModelConfig back = config_from_json_text(config_to_json(c), "round trip");
  EXPECT_TRUE(back.preprocess == c.preprocess);
  // A preprocess size the model cannot take is refused.
  nlohmann::json j = nlohmann::json::parse(config_to_json(c));
  j["preprocess"]["size"] = 64;
  EXPECT_THROW(config_from_json_text(j.dump(), "bad size"), Error);
}

}  // namespace
}  // namespace clip
