// Parity with the reference pipeline on every file of ../shared/fixtures/images (Pillow 9.4 +
// torchvision): decoded pixels, resized-and-cropped RGB at both fixture sizes, the float inputs,
// the batch, and the two files the reference rejects. Skips by name without the fixtures.
#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

#include "clip/error.h"
#include "image/resample.h"
#include "image_test_util.h"
#include "test_paths.h"
#include "util/file_io.h"

using namespace clip;
using namespace clip::image;
using nlohmann::json;

namespace {

json fixture_index() { return json::parse(util::read_file(test::shared_fixtures() + "/images/index.json")); }

std::string fx(const std::string& rel) { return test::shared_fixtures() + "/" + rel; }

}  // namespace

TEST(SharedImageFixtures, DecodedPixelsEqualPillowForEveryReadableFile) {
  CLIP_REQUIRE_SHARED_FIXTURES();
  const json index = fixture_index();
  int exact = 0, total = 0;
  for (const json& e : index["images"]) {
    if (e["expect_error"].get<bool>()) continue;
    const std::string file = e["file"];
    SCOPED_TRACE(file);
    ++total;
    const Image img = decode_file(fx("images/" + file));
    EXPECT_STREQ(mode_name(img.mode), e["mode"].get<std::string>().c_str());
    EXPECT_EQ(img.width, e["width"].get<int>());
    EXPECT_EQ(img.height, e["height"].get<int>());
    const util::NpyArray ref = util::read_npy(fx(e["decoded"].get<std::string>()));
    ASSERT_EQ(ref.shape, (std::vector<int64_t>{img.height, img.width, 3}));
    const Rgb8 rgb = to_rgb(img);
    const int d = test::max_abs_diff(rgb.pixels, test::npy_u8(ref));
    EXPECT_EQ(d, 0) << test::count_diff(rgb.pixels, test::npy_u8(ref)) << " values differ";
    exact += d == 0;
  }
  std::printf("[ decoded ] exact %d/%d\n", exact, total);
  EXPECT_EQ(total, 36);
}

TEST(SharedImageFixtures, PreprocessedRgbAndInputsEqualTheReferenceAtBothSizes) {
  CLIP_REQUIRE_SHARED_FIXTURES();
  const json index = fixture_index();
  for (int n : index["resolutions"].get<std::vector<int>>()) {
    PreprocessOptions o;
    o.size = n;
    int exact = 0, total = 0;
    double worst = 0;
    for (const json& e : index["images"]) {
      if (e["expect_error"].get<bool>()) continue;
      const std::string file = e["file"], stem = e["stem"];
      SCOPED_TRACE(file + " @" + std::to_string(n));
      ++total;
      const Preprocessed p = preprocess_file(fx("images/" + file), o);
      const auto rgb_ref = test::npy_u8(util::read_npy(fx("pre/" + std::to_string(n) + "/" + stem + ".rgb8.npy")));
      const int d = test::max_abs_diff(p.rgb.pixels, rgb_ref);
      EXPECT_EQ(d, 0) << test::count_diff(p.rgb.pixels, rgb_ref) << " values differ";
      exact += d == 0;
      const auto in_ref = test::npy_f32(util::read_npy(fx("pre/" + std::to_string(n) + "/" + stem + ".npy")));
      const double df = test::max_abs_diff(p.input, in_ref);
      EXPECT_LE(df, 1e-6);
      worst = std::max(worst, df);
      // Geometry as recorded by the reference.
      const json& pre = e["pre"][std::to_string(n)];
      const Geometry g = clip_geometry(e["width"].get<int>(), e["height"].get<int>(), n);
      EXPECT_EQ(g.resized_width, pre["resized_w"].get<int>());
      EXPECT_EQ(g.resized_height, pre["resized_h"].get<int>());
      EXPECT_EQ(g.crop_top, pre["crop_top"].get<int>());
      EXPECT_EQ(g.crop_left, pre["crop_left"].get<int>());
    }
    std::printf("[ rgb8 @%d ] exact %d/%d, float inputs max |diff| %.3g\n", n, exact, total, worst);
  }
}

// The whole-image path (decode, then resize) and the streaming JPEG path must agree, and the
// portable and AVX2 kernels must give the bytes of the default (AVX-512) ones.
TEST(SharedImageFixtures, DecodeThenResizeAndPortableKernelsGiveTheSamePixels) {
  CLIP_REQUIRE_SHARED_FIXTURES();
  const json index = fixture_index();
  for (int n : {32, 64, 224}) {
    for (const json& e : index["images"]) {
      if (e["expect_error"].get<bool>()) continue;
      const std::string file = e["file"];
      SCOPED_TRACE(file + " @" + std::to_string(n));
      PreprocessOptions o;
      o.size = n;
      const Preprocessed p = preprocess_file(fx("images/" + file), o);
      const Image img = decode_file(fx("images/" + file));
      EXPECT_EQ(resize_crop(img, n).pixels, p.rgb.pixels);
      const Geometry g = clip_geometry(img.width, img.height, n);
      if (g.resized_width == img.width && g.resized_height == img.height) continue;
      for (detail::Kernel k : {detail::Kernel::kScalar, detail::Kernel::kAvx2}) {
        if (k == detail::Kernel::kAvx2 && !detail::cpu_has_avx2()) continue;
        const Image r = detail::resize_region(img, g.resized_width, g.resized_height, g.crop_left, g.crop_top, n, n, k);
        EXPECT_EQ(to_rgb(r).pixels, p.rgb.pixels) << (k == detail::Kernel::kAvx2 ? "AVX2" : "portable");
      }
    }
  }
}

TEST(SharedImageFixtures, TheTwoFilesTheReferenceRejectsAreRejected) {
  CLIP_REQUIRE_SHARED_FIXTURES();
  const json index = fixture_index();
  int rejected = 0;
  for (const json& e : index["images"]) {
    if (!e["expect_error"].get<bool>()) continue;
    const std::string path = fx("images/" + e["file"].get<std::string>());
    SCOPED_TRACE(path);
    for (int n : {32, 64}) {
      PreprocessOptions o;
      o.size = n;
      try {
        preprocess_file(path, o);
        ADD_FAILURE() << "accepted";
      } catch (const Error& err) {
        const std::string msg = err.what();
        EXPECT_NE(msg.find(path), std::string::npos) << msg;
        EXPECT_TRUE(msg.find("truncated") != std::string::npos || msg.find("empty") != std::string::npos) << msg;
      }
    }
    EXPECT_THROW(decode_file(path), Error);
    ++rejected;
  }
  EXPECT_EQ(rejected, 2);
}

TEST(SharedImageFixtures, BatchInReferenceOrderEqualsBatchNpyAndReportsFailures) {
  CLIP_REQUIRE_SHARED_FIXTURES();
  const json index = fixture_index();
  for (int n : {32, 64}) {
    const json pre = json::parse(util::read_file(fx("pre/" + std::to_string(n) + "/index.json")));
    std::vector<std::string> paths;
    for (const json& f : index["valid_images_in_batch_order"]) paths.push_back(fx("images/" + f.get<std::string>()));
    // Failing files in the middle must not stop or reorder the batch.
    paths.insert(paths.begin() + 3, fx("images/empty.png"));
    paths.insert(paths.begin() + 10, fx("images/chelsea_truncated.jpg"));
    PreprocessOptions o;
    o.size = n;
    const auto items = preprocess_files(paths, o, 2);
    ASSERT_EQ(items.size(), paths.size());
    std::vector<float> batch;
    for (size_t i = 0; i < items.size(); ++i) {
      EXPECT_EQ(items[i].path, paths[i]);
      if (i == 3 || i == 10) {
        EXPECT_FALSE(items[i].ok());
        EXPECT_NE(items[i].error.find(paths[i]), std::string::npos) << items[i].error;
        continue;
      }
      ASSERT_TRUE(items[i].ok()) << items[i].error;
      EXPECT_TRUE(items[i].result.rgb.pixels.empty());
      batch.insert(batch.end(), items[i].result.input.begin(), items[i].result.input.end());
    }
    const util::NpyArray ref = util::read_npy(fx("pre/" + std::to_string(n) + "/batch.npy"));
    EXPECT_EQ(ref.shape, (std::vector<int64_t>{36, 3, n, n}));
    EXPECT_LE(test::max_abs_diff(batch, test::npy_f32(ref)), 1e-6);
    (void)pre;
  }
}
