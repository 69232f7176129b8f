// `clip index duplicates`: exact copies (same sha256) and near duplicates (a re-encode, resized
// copies) of one photo are grouped, other photos are not (docs/search.md).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "clip/error.h"
#include "clip/image.h"
#include "clip/index.h"
#include "search_check.h"
#include "temp_dir.h"
#include "tiny_model.h"
#include "util/file_io.h"

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

  const index::Duplicates d = index::find_duplicates(index, 0.95f);
  ASSERT_EQ(d.exact.size(), 1u);
  EXPECT_EQ(names(d.exact[0]), (std::vector<std::string>{"chelsea.png", "copy-of-chelsea.png"}));
  ASSERT_EQ(d.near.size(), 1u) << "near groups: " << d.near.size();
  EXPECT_EQ(names(d.near[0]), (std::vector<std::string>{"chelsea.png", "chelsea_120x80.png", "chelsea_half.png",
                                                        "chelsea_q75.jpg", "copy-of-chelsea.png"}));
  for (const auto& m : d.near[0].members) {
    EXPECT_GE(m.best_score, 0.95f) << m.path;
    EXPECT_EQ(index.record(m.id).path, m.path);
  }

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
