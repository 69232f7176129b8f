// open_clip's preprocess_cfg variants (bilinear, squash, longest + fill) give the pixels Pillow
// gives: expectations made by tools/make_preprocess_cfg_fixtures.py with Pillow 9.4.
#include <gtest/gtest.h>

#include "clip/image.h"
#include "image_test_util.h"
#include "util/npy.h"

namespace clip::image {
namespace {

const std::string kDir = std::string(CLIP_TEST_DATA_DIR) + "/images/";

struct Case {
  const char* interpolation;
  const char* mode;
  int fill;
};

TEST(PreprocessCfg, BilinearSquashAndLongestArePillowExact) {
  const std::vector<std::string> files{"astronaut_q95.jpg",  "chelsea_457x300.png", "jpeg_portrait_420.jpg",
                                       "astronaut_rgba.png", "camera_la.png",       "camera_gray.png",
                                       "chelsea_120x80.png"};
  const std::vector<Case> cases{{"bilinear", "shortest", 0},
                                {"bilinear", "squash", 0},
                                {"bicubic", "squash", 0},
                                {"bilinear", "longest", 0},
                                {"bicubic", "longest", 128}};
  int checked = 0;
  for (const std::string& file : files) {
    for (const Case& c : cases) {
      for (int n : {32, 45}) {
        PreprocessOptions o;
        o.size = n;
        o.filter = std::string(c.interpolation) == "bilinear" ? Filter::kBilinear : Filter::kBicubic;
        o.resize_mode = std::string(c.mode) == "squash"    ? ResizeMode::kSquash
                        : std::string(c.mode) == "longest" ? ResizeMode::kLongest
                                                           : ResizeMode::kShortest;
        o.fill = static_cast<uint8_t>(c.fill);
        const std::string tag = std::string(c.mode) == "longest" ? ".fill" + std::to_string(c.fill) : "";
        const std::string expected = kDir + "expected_cfg/" + file + "." + c.interpolation + "." + c.mode + tag + "." +
                                     std::to_string(n) + ".rgb8.npy";
        const Preprocessed p = preprocess_file(kDir + "files/" + file, o);
        const std::vector<uint8_t> ref = test::npy_u8(util::read_npy(expected));
        ASSERT_EQ(p.rgb.width, n);
        EXPECT_EQ(test::count_diff(p.rgb.pixels, ref), 0u)
            << expected << ": max diff " << test::max_abs_diff(p.rgb.pixels, ref);
        ++checked;
      }
    }
  }
  EXPECT_EQ(checked, 70);
}

TEST(PreprocessCfg, DefaultsAreClipsBicubicShortestSide) {
  const PreprocessOptions o;
  EXPECT_EQ(o.filter, Filter::kBicubic);
  EXPECT_EQ(o.resize_mode, ResizeMode::kShortest);
}

}  // namespace
}  // namespace clip::image
