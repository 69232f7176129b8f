// `clip index duplicates`: exact copies (same sha256) and near duplicates (a re-encode, resized
// copies) of one photo are grouped, other photos are not (docs/search.md).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "clip/error.h"
#include "clip/image.h"
#include "clip/index.h"
#include "index/generation_rows.h"
#include "search_check.h"
#include "temp_dir.h"
#include "tiny_model.h"
#include "util/file_io.h"
#include "util/npy.h"

namespace clip {
namespace {

using test::TempDir;

std::vector<std::string> names(const index::DuplicateGroup& g) {
  std::vector<std::string> out;
  for (const auto& m : g.members) out.push_back(std::filesystem::path(m.path).filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(IndexDuplicates, GroupsCopiesReencodesAndResizedCopies) {
  TempDir dir;
  const std::string photos = dir.file("photos");
  std::filesystem::create_directories(photos);
  const std::string original = util::read_file(test::image_file("chelsea.png"));
  std::filesystem::create_directories(photos + "/sub");
  util::write_file_atomic(photos + "/chelsea.png", original);
  util::write_file_atomic(photos + "/sub/copy-of-chelsea.png", original);  // an exact copy
  // A re-encode (JPEG quality 75, from the fixtures) and two resized copies: one from the
  // fixtures, one made here with our own resampling and PNG encoder.
  std::filesystem::copy_file(test::image_file("chelsea_q75.jpg"), photos + "/chelsea_q75.jpg");
  std::filesystem::copy_file(test::image_file("chelsea_120x80.png"), photos + "/chelsea_120x80.png");
  const image::Image decoded = image::decode_file(test::image_file("chelsea.png"));
  image::write_png(photos + "/chelsea_half.png",
                   image::to_rgb(image::resize(decoded, decoded.width / 2, decoded.height / 2)));
  // Other photos.
  for (const char* other : {"coffee_q90_444.jpg", "astronaut_q95.jpg", "camera_gray.png", "horse_rgba.png"})
    std::filesystem::copy_file(test::image_file(other), photos + "/" + other);
  const std::string idx = dir.file("idx");
  index::build_index(test::tiny_model(),
                     index::identify_model(test::tiny_model(), test::model_path(), Precision::kFP32),
                     index::source_from_argument(photos, ""), idx, test::quiet_options());
  const index::ImageIndex index = index::ImageIndex::open(idx);

  // The threshold: between the lowest cosine among the versions of the photo and the highest
  // between a version and another photo, computed here from the stored embeddings (the tiny test
  // model is random, so its cosines are not those of a real CLIP model).
  const std::vector<float> stored = index::read_generation_embeddings(idx, index.manifest());
  const float* rows = stored.data();
  auto cosine = [&](int64_t a, int64_t b) {
    double dot = 0;
    for (int j = 0; j < index.dim(); ++j) dot += double(rows[a * index.dim() + j]) * rows[b * index.dim() + j];
    return dot;
  };
  auto is_version = [&](int64_t id) {
    const std::string name = std::filesystem::path(index.record(id).path).filename().string();
    return name.find("chelsea") != std::string::npos;
  };
  double lowest_within = 2, highest_across = -2;
  for (int64_t a = 0; a < index.size(); ++a)
    for (int64_t b = 0; b < index.size(); ++b)
      if (a != b && is_version(a)) {
        if (is_version(b)) lowest_within = std::min(lowest_within, cosine(a, b));
        else highest_across = std::max(highest_across, cosine(a, b));
      }
  std::printf("cosines: versions of the photo >= %.5f, a version and another photo <= %.5f\n", lowest_within,
              highest_across);
  ASSERT_GT(lowest_within, highest_across) << "the test model does not separate the versions from other photos";
  const float threshold = static_cast<float>((lowest_within + highest_across) / 2);

  const index::Duplicates d = index::find_duplicates(index, threshold);
  ASSERT_EQ(d.exact.size(), 1u);
  EXPECT_EQ(names(d.exact[0]), (std::vector<std::string>{"chelsea.png", "copy-of-chelsea.png"}));
  const std::vector<std::string> versions{"chelsea.png", "chelsea_120x80.png", "chelsea_half.png", "chelsea_q75.jpg",
                                          "copy-of-chelsea.png"};
  int groups_with_versions = 0;
  for (const auto& g : d.near) {
    const std::vector<std::string> n = names(g);
    if (std::find(n.begin(), n.end(), "chelsea.png") != n.end()) {
      ++groups_with_versions;
      EXPECT_EQ(n, versions);
      for (const auto& m : g.members) {
        EXPECT_GE(m.best_score, threshold) << m.path;
        EXPECT_EQ(index.record(m.id).path, m.path);
      }
    } else {
      for (const std::string& name : n) EXPECT_EQ(name.find("chelsea"), std::string::npos) << name;
    }
  }
  EXPECT_EQ(groups_with_versions, 1);

  // A threshold of 1 keeps only identical embeddings: the copy (and the decoded-identical
  // re-encode, if any) but never a resized one.
  const index::Duplicates strict = index::find_duplicates(index, 1.0f);
  for (const auto& g : strict.near)
    for (const std::string& name : names(g)) EXPECT_NE(name, "chelsea_half.png");
  EXPECT_THROW(index::find_duplicates(index, 0.0f), Error);
  EXPECT_THROW(index::find_duplicates(index, 1.5f), Error);
}

}  // namespace
}  // namespace clip
