// Zero-shot classification through the whole pipeline (image files → data set → features →
// classifier → metrics) on the fixture model, checked against the reference logits that the
// original OpenAI code computed for the same images and captions (ref/tiny-vit-f16).
//
// The captions serve as the class names with the template "{}", so the zero-shot classifier is
// exactly the normalized caption embeddings and our logits are the reference's logits_per_image.
// Labels are given by what each picture shows; the expected accuracy is computed here from the
// reference logits alone.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "clip/eval.h"
#include "test_paths.h"
#include "util/file_io.h"
#include "util/npy.h"

namespace clip::eval {
namespace {

// The caption a picture shows, by the image's stem (index into the 20 reference captions):
// 0 astronaut, 1 cat, 2 coffee, 3 rocket, 4 motorcycle, 5 man with a camera, 6 hubble,
// 7 stained tissue, 9 horse, 10 retina, 12 "a diagram" for the synthetic patterns.
int label_of(const std::string& file) {
  const std::vector<std::pair<std::string, int>> prefixes = {
      {"astronaut", 0}, {"chelsea", 1},  {"coffee", 2}, {"rocket", 3}, {"motorcycle", 4},
      {"camera", 5},    {"hubble", 6},   {"ihc", 7},    {"horse", 9},  {"retina", 10},
      {"palette", 12},  {"bilevel", 12}, {"pixel", 12}, {"strip", 12}};
  for (const auto& [p, l] : prefixes)
    if (file.rfind(p, 0) == 0) return l;
  return -1;
}

// The rank of `label` in a row, ties to the lower index (the rule the metrics document).
int64_t rank_of(const float* row, int64_t n, int64_t label) {
  int64_t r = 0;
  for (int64_t j = 0; j < n; ++j) r += row[j] > row[label] || (row[j] == row[label] && j < label);
  return r;
}

TEST(ZeroShotFixture, PredictionsAndAccuracyMatchTheReferenceLogits) {
  const std::string local = test::data_dir() + "/fixtures";
  const std::string shared = test::shared_fixtures();
  // The full image set when ../shared/fixtures is there, else the two images mirrored locally.
  const std::string image_dir = (shared.empty() ? local : shared) + "/images";
  const nlohmann::json index = nlohmann::json::parse(util::read_file(local + "/ref/tiny-vit-f16/index.json"));
  const std::vector<std::string> captions = index.at("captions").get<std::vector<std::string>>();
  const std::vector<std::string> batch = index.at("images").get<std::vector<std::string>>();
  const util::NpyArray ref = util::read_npy(local + "/ref/tiny-vit-f16/logits_per_image.npy");
  ASSERT_EQ(ref.shape,
            (std::vector<int64_t>{static_cast<int64_t>(batch.size()), static_cast<int64_t>(captions.size())}));
  const float* ref_logits = reinterpret_cast<const float*>(ref.data.data());
  const int64_t nc = static_cast<int64_t>(captions.size());

  // A CSV data set of the reference images found here, labelled by content.
  const std::string dir = ::testing::TempDir() + "/zero_shot_fixture";
  std::string csv = "filepath,label\n";
  std::vector<size_t> rows;  // the reference row of each CSV row
  for (size_t i = 0; i < batch.size(); ++i) {
    if (!util::file_exists(image_dir + "/" + batch[i])) continue;
    const int label = label_of(batch[i]);
    ASSERT_GE(label, 0) << batch[i];
    csv += image_dir + "/" + batch[i] + "," + std::to_string(label) + "\n";
    rows.push_back(i);
  }
  ASSERT_GE(rows.size(), 2u);
  if (shared.empty()) std::printf("(shared fixtures absent: %zu mirrored images)\n", rows.size());
  const std::string csv_path = dir + "/images.csv";
  std::filesystem::create_directories(dir);
  util::write_file_atomic(csv_path, csv);
  data::TableOptions table;
  table.caption_column = "";
  table.label_column = "label";
  table.class_names = captions;
  const auto ds = data::open_table(csv_path, table);

  const Model model =
      Model::load(local + "/models/tiny-vit-f16.safetensors", {local + "/models/tiny-vit-f16.config.json", {}});
  ExtractOptions eo;
  eo.batch_size = 5;  // several batches, the last one partial: exercises the double buffering
  eo.progress = false;
  const FeatureSet f = extract_image_features(model, *ds, eo);
  ASSERT_TRUE(f.skipped.empty()) << f.skipped[0].reason;
  ASSERT_EQ(f.features.size(0), static_cast<int64_t>(rows.size()));
  const ZeroShotResult r = zero_shot(model, f, captions, {"{}"}, 5);
  const torch::Tensor ours = r.logits.contiguous();

  // Expected from the reference logits: argmax per image, top-1 and top-5 accuracy.
  int64_t top1 = 0, top5 = 0, compared = 0;
  float max_diff = 0;
  for (size_t k = 0; k < rows.size(); ++k) {
    const float* row = ref_logits + rows[k] * nc;
    const int64_t label = f.labels[static_cast<int64_t>(k)].item<int64_t>();
    const int64_t rank = rank_of(row, nc, label);
    top1 += rank == 0;
    top5 += rank < 5;
    int64_t ref_pred = 0;
    for (int64_t j = 1; j < nc; ++j)
      if (row[j] > row[ref_pred]) ref_pred = j;
    for (int64_t j = 0; j < nc; ++j)
      max_diff = std::max(max_diff, std::abs(ours[static_cast<int64_t>(k)][j].item<float>() - row[j]));
    EXPECT_EQ(ours[static_cast<int64_t>(k)].argmax().item<int64_t>(), ref_pred) << batch[rows[k]];
    ++compared;
  }
  const double n = static_cast<double>(compared);
  EXPECT_DOUBLE_EQ(r.metrics.top1, static_cast<double>(top1) / n);
  EXPECT_DOUBLE_EQ(r.metrics.topk, static_cast<double>(top5) / n);
  // JPEG decoding may differ from Pillow's by a level here and there (fixtures README); the
  // logits (scale exp(logit_scale)) still agree closely.
  EXPECT_LT(max_diff, 1e-3f);
  std::printf("zero-shot on %lld fixture images: top-1 %.4f, top-5 %.4f (reference), max |logit diff| %.2g\n",
              static_cast<long long>(compared), r.metrics.top1, r.metrics.topk, max_diff);
}

}  // namespace
}  // namespace clip::eval
