// Feature extraction: bad examples skipped and listed, grey pixels used at the model's
// resolution, the cache round trip, and the named data sets and prompt files.
#include <gtest/gtest.h>

#include <filesystem>

#include "clip/error.h"
#include "clip/eval.h"
#include "test_paths.h"
#include "util/file_io.h"

namespace clip::eval {
namespace {

std::string fx() { return test::data_dir() + "/fixtures"; }
Model tiny() {
  return Model::load(fx() + "/models/tiny-vit-f16.safetensors", {fx() + "/models/tiny-vit-f16.config.json", {}});
}

// A data set mixing image files, a broken record, undecodable bytes and raw grey pixels.
class MixedDataset : public data::Dataset {
 public:
  size_t size() const override { return 5; }
  std::string description() const override { return "mixed test set (5 examples)"; }
  data::Example at(size_t i) const override {
    data::Example e;
    e.source = "mixed:" + std::to_string(i);
    e.label = static_cast<int>(i % 2);
    e.captions = {"caption " + std::to_string(i)};
    if (i == 0) e.image_path = fx() + "/images/chelsea_120x80.png";
    if (i == 1) e.error = "empty caption";
    if (i == 2) e.image_bytes = "not an image at all";
    if (i == 3) {
      e.pixels.mode = image::Mode::kL;
      e.pixels.width = e.pixels.height = 32;  // the model's resolution: no resize, grey → RGB
      e.pixels.pixels.assign(32 * 32, 128);
    }
    if (i == 4) e.image_path = fx() + "/images/empty.png";
    return e;
  }
};

TEST(Features, BadExamplesAreSkippedAndListed) {
  const Model model = tiny();
  MixedDataset ds;
  ExtractOptions o;
  o.batch_size = 2;
  o.progress = false;
  const FeatureSet f = extract_image_features(model, ds, o);
  ASSERT_EQ(f.features.sizes(), (std::vector<int64_t>{2, 64}));
  EXPECT_EQ(f.indices, (std::vector<size_t>{0, 3}));
  EXPECT_EQ(f.labels[1].item<int64_t>(), 1);
  EXPECT_EQ(f.captions[1], (std::vector<std::string>{"caption 3"}));
  ASSERT_EQ(f.skipped.size(), 3u);
  EXPECT_EQ(f.skipped[0].index, 1u);
  EXPECT_EQ(f.skipped[0].reason, "empty caption");
  EXPECT_EQ(f.skipped[1].source, "mixed:2");
  EXPECT_EQ(f.skipped[2].index, 4u);
  EXPECT_NEAR(f.features.norm(2, 1)[0].item<float>(), 1.f, 1e-5);

  // The grey example equals the model applied to the same grey RGB input by hand.
  const float v = (128.f / 255.f);
  torch::Tensor input = torch::empty({1, 3, 32, 32});
  for (int c = 0; c < 3; ++c) input[0][c].fill_((v - image::kClipMean[c]) / image::kClipStd[c]);
  const torch::Tensor direct = normalize_rows(model.encode_image(input));
  EXPECT_LT((direct[0] - f.features[1]).abs().max().item<float>(), 1e-5);

  // limit: only the first examples.
  o.limit = 1;
  EXPECT_EQ(extract_image_features(model, ds, o).features.size(0), 1);
}

TEST(Features, CacheRoundTripAndKey) {
  const Model model = tiny();
  MixedDataset ds;
  const std::string dir = ::testing::TempDir() + "/feature_cache_test";
  std::filesystem::remove_all(dir);
  ExtractOptions o;
  o.progress = false;
  o.cache_dir = dir;
  EXPECT_THROW(extract_image_features(model, ds, o), Error);  // no model identity
  o.model_identity = model_file_identity(fx() + "/models/tiny-vit-f16.safetensors");
  EXPECT_NE(o.model_identity.find("tiny-vit-f16.safetensors|"), std::string::npos);
  const FeatureSet a = extract_image_features(model, ds, o);
  EXPECT_FALSE(a.from_cache);
  const FeatureSet b = extract_image_features(model, ds, o);
  EXPECT_TRUE(b.from_cache);
  EXPECT_TRUE(torch::equal(a.features, b.features));
  EXPECT_TRUE(torch::equal(a.labels, b.labels));
  EXPECT_EQ(a.indices, b.indices);
  EXPECT_EQ(a.captions, b.captions);
  ASSERT_EQ(b.skipped.size(), 3u);
  EXPECT_EQ(b.skipped[0].reason, "empty caption");
  // Another model identity is another key.
  o.model_identity += "x";
  EXPECT_FALSE(extract_image_features(model, ds, o).from_cache);
  std::filesystem::remove_all(dir);
}

TEST(Prompts, ShippedFilesAndListFiles) {
  const ClassPrompts fm = shipped_class_prompts("fashion-mnist");
  EXPECT_EQ(fm.classes.size(), 10u);
  EXPECT_FALSE(fm.templates.empty());
  for (const char* name : {"mnist", "cifar10", "cifar100"}) {
    const ClassPrompts p = shipped_class_prompts(name);
    EXPECT_EQ(p.classes.size(), std::string(name) == "cifar100" ? 100u : 10u) << name;
    for (const auto& t : p.templates) EXPECT_NE(t.find("{}"), std::string::npos) << t;
  }
  EXPECT_FALSE(has_shipped_class_prompts("no-such-set"));
  EXPECT_THROW(shipped_class_prompts("no-such-set"), Error);

  const std::string dir = ::testing::TempDir();
  util::write_file_atomic(dir + "/c.txt", "cat\r\n\ndog\n");
  EXPECT_EQ(read_name_list(dir + "/c.txt", "classes"), (std::vector<std::string>{"cat", "dog"}));
  util::write_file_atomic(dir + "/c.json", R"({"classes": ["a", "b"]})");
  EXPECT_EQ(read_name_list(dir + "/c.json", "classes"), (std::vector<std::string>{"a", "b"}));
  util::write_file_atomic(dir + "/t.json", R"(["x {}"])");
  EXPECT_EQ(read_name_list(dir + "/t.json", "templates"), (std::vector<std::string>{"x {}"}));
  util::write_file_atomic(dir + "/bad.json", R"({"classes": [1]})");
  EXPECT_THROW(read_name_list(dir + "/bad.json", "classes"), Error);
  EXPECT_THROW(read_name_list(dir + "/c.json", "templates"), Error);
  util::write_file_atomic(dir + "/empty.txt", "\n\n");
  EXPECT_THROW(read_name_list(dir + "/empty.txt", "classes"), Error);
}

TEST(Datasets, SpecsAreResolvedOrRefused) {
  EXPECT_THROW(open_dataset("imagenet", "test"), Error);
  EXPECT_THROW(open_dataset("mnist", "test"), Error);  // needs --data-dir
  EXPECT_THROW(open_dataset("cifar10", "test", {"/nonexistent", {}}), Error);
  EXPECT_THROW(open_dataset("folder:/nonexistent", "test"), Error);
  EXPECT_THROW(open_dataset("wds:a{b", "test"), Error);
  if (util::file_exists(std::string(data::kFashionMnistDir) + "/t10k-images-idx3-ubyte.gz")) {
    EXPECT_EQ(open_dataset("fashion-mnist", "test")->size(), 10000u);
    EXPECT_THROW(open_dataset("fashion-mnist", "dev"), Error);
  }
}

}  // namespace
}  // namespace clip::eval
