// `clip preprocess`: outputs against the reference's arrays, file order, PNG crops, errors and
// exit codes.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "cli/cli_run.h"
#include "test_paths.h"
#include "util/file_io.h"
#include "util/npy.h"

using clip::test::run_clip;

namespace {

std::string data(const std::string& name) { return clip::test::data_dir() + "/images/files/" + name; }
std::string expected(const std::string& name) { return clip::test::data_dir() + "/images/expected/" + name; }

// A fresh folder, removed when the test ends.
struct TempDir {
  std::string path;
  TempDir() {
    std::string tmpl = "/tmp/clip_preprocess_cli_XXXXXX";
    if (mkdtemp(tmpl.data())) path = tmpl;
  }
  ~TempDir() {
    if (!path.empty()) std::filesystem::remove_all(path);
  }
};

std::vector<float> floats(const clip::util::NpyArray& a) {
  std::vector<float> v(a.data.size() / 4);
  std::memcpy(v.data(), a.data.data(), v.size() * 4);
  return v;
}

// The cropped PNG written by --png, read back through `clip preprocess` at its own size with
// mean 0 and std 1 (no resize: exactly the pixels / 255), compared with a reference rgb8 array.
::testing::AssertionResult png_equals_rgb8(const std::string& png, const std::string& rgb8_npy, int n) {
  const std::string out = png + ".npy";
  const auto r = run_clip("preprocess -q --size " + std::to_string(n) + " --mean 0,0,0 --std 1,1,1 " + png + " --out " +
                          out + " 2>&1");
  if (r.status != 0) return ::testing::AssertionFailure() << r.output;
  const std::vector<float> chw = floats(clip::util::read_npy(out));
  const std::string hwc = clip::util::read_npy(rgb8_npy).data;
  if (chw.size() != hwc.size()) return ::testing::AssertionFailure() << "sizes differ";
  const size_t plane = static_cast<size_t>(n) * n;
  for (size_t i = 0; i < plane; ++i)
    for (int c = 0; c < 3; ++c)
      if (chw[c * plane + i] != static_cast<float>(static_cast<unsigned char>(hwc[3 * i + c])) / 255.0f)
        return ::testing::AssertionFailure() << "pixel " << i << " channel " << c << " differs";
  return ::testing::AssertionSuccess();
}

double max_diff(const std::vector<float>& a, const std::vector<float>& b, size_t b_offset = 0) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(double(a[i]) - b[b_offset + i]));
  return m;
}

}  // namespace

TEST(CliPreprocess, WritesTheReferenceModelInputInFileOrder) {
  const TempDir tmp;
  const std::string dir = tmp.path;
  ASSERT_FALSE(dir.empty());
  const auto r = run_clip("preprocess --size 32 " + data("astronaut_q95.jpg") + " " + data("camera_16bit.png") + " " +
                          data("chelsea_cmyk.jpg") + " --out " + dir + "/x.npy 2>&1");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("astronaut_q95.jpg: JPEG RGB 512x512 -> resized 32x32, crop at (0, 0), 32x32"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("camera_16bit.png: PNG I 512x512"), std::string::npos) << r.output;
  const clip::util::NpyArray a = clip::util::read_npy(dir + "/x.npy");
  EXPECT_EQ(a.dtype, "<f4");
  ASSERT_EQ(a.shape, (std::vector<int64_t>{3, 3, 32, 32}));
  const std::vector<float> got = floats(a);
  const char* refs[] = {"astronaut_q95.jpg.32.f32.npy", "camera_16bit.png.32.f32.npy", "chelsea_cmyk.jpg.32.f32.npy"};
  for (int i = 0; i < 3; ++i) {
    const std::vector<float> ref = floats(clip::util::read_npy(expected(refs[i])));
    ASSERT_EQ(ref.size(), 3u * 32 * 32);
    EXPECT_LE(max_diff(ref, got, i * ref.size()), 1e-6) << refs[i];
  }
}

TEST(CliPreprocess, PngCropsAreTheReferenceRgb) {
  const TempDir tmp;
  const std::string dir = tmp.path;
  ASSERT_FALSE(dir.empty());
  const auto r = run_clip("preprocess -q --size 64 --png " + dir + "/crop.png " + data("jpeg_big_portrait.jpg") + " " +
                          data("webp_lossy_alpha.webp") + " 2>&1");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output, "");
  const char* names[] = {"jpeg_big_portrait.jpg", "webp_lossy_alpha.webp"};
  for (int i = 0; i < 2; ++i)
    EXPECT_TRUE(png_equals_rgb8(dir + "/crop_" + std::to_string(i) + ".png",
                                expected(std::string(names[i]) + ".64.rgb8.npy"), 64))
        << names[i];
  EXPECT_FALSE(clip::util::file_exists(dir + "/crop.png"));
}

TEST(CliPreprocess, FailingFilesAreNamedAndNothingIsWrittenUnlessSkipped) {
  const TempDir tmp;
  const std::string dir = tmp.path;
  ASSERT_FALSE(dir.empty());
  auto r = run_clip("preprocess --size 32 " + data("rocket.jpg") + " " + data("empty.png") + " " +
                    data("chelsea_truncated.jpg") + " --out " + dir + "/x.npy 2>&1");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("error: " + data("empty.png") + ": empty file (0 bytes)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("error: " + data("chelsea_truncated.jpg") + ": truncated JPEG"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("error: 2 of 3 files failed"), std::string::npos) << r.output;
  EXPECT_FALSE(clip::util::file_exists(dir + "/x.npy"));

  r = run_clip("preprocess --skip-errors --size 32 " + data("rocket.jpg") + " " + data("empty.png") + " --out " + dir +
               "/x.npy 2>&1");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("skipped: " + data("empty.png")), std::string::npos) << r.output;
  EXPECT_EQ(clip::util::read_npy(dir + "/x.npy").shape, (std::vector<int64_t>{1, 3, 32, 32}));

  r = run_clip("preprocess --allow-truncated --size 32 " + data("chelsea_truncated.jpg") + " 2>&1");
  EXPECT_EQ(r.status, 0) << r.output;

  r = run_clip("preprocess " + data("no_such.jpg") + " 2>&1");
  EXPECT_EQ(r.status, 3);  // not found
  EXPECT_NE(r.output.find(data("no_such.jpg") + ": cannot open"), std::string::npos) << r.output;

  r = run_clip("preprocess --max-pixels 1000 " + data("rocket.jpg") + " 2>&1");
  EXPECT_EQ(r.status, 6);  // too large
  EXPECT_NE(r.output.find("over the limit of 1000"), std::string::npos) << r.output;

  r = run_clip("preprocess " + data("png_bomb.png") + " 2>&1");
  EXPECT_EQ(r.status, 6);  // too large
  EXPECT_NE(r.output.find("decompression bomb"), std::string::npos) << r.output;
}

TEST(CliPreprocess, OptionsReachTheLibrary) {
  const TempDir tmp;
  const std::string dir = tmp.path;
  ASSERT_FALSE(dir.empty());
  auto r = run_clip("preprocess -q --size 32 --mean 0,0,0 --std 1,1,1 " + data("pixel_1x1.png") + " --png " + dir +
                    "/p.png --out " + dir + "/p.npy 2>&1");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(png_equals_rgb8(dir + "/p.png", expected("pixel_1x1.png.32.rgb8.npy"), 32));
  const std::vector<float> v = floats(clip::util::read_npy(dir + "/p.npy"));
  const std::string ref = clip::util::read_npy(expected("pixel_1x1.png.32.rgb8.npy")).data;
  EXPECT_EQ(v[0], static_cast<unsigned char>(ref[0]) / 255.0f);
  EXPECT_EQ(v[32 * 32], static_cast<unsigned char>(ref[1]) / 255.0f);

  r = run_clip("preprocess --size 64 --exif-transpose --png " + dir + "/e.png " + data("jpeg_exif8.jpg") + " 2>&1");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(png_equals_rgb8(dir + "/e.png", expected("jpeg_exif8.jpg.exif.64.rgb8.npy"), 64));

  r = run_clip("preprocess --size 64 --fast-jpeg " + data("jpeg_big_portrait.jpg") + " 2>&1");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("(JPEG decoded at 2/8)"), std::string::npos) << r.output;  // 600·2/8 = 150 ≥ 2·64

  EXPECT_EQ(run_clip("preprocess --size 0 " + data("rocket.jpg") + " 2>&1").status, 2);
  EXPECT_EQ(run_clip("preprocess --mean 1,2 " + data("rocket.jpg") + " 2>&1").status, 2);
  EXPECT_EQ(run_clip("preprocess 2>&1").status, 2);
}
