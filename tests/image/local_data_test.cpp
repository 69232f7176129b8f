// Parity with the reference on tests/data/images (shipped with the repo; made by
// tests/data/images/make_images.py with Pillow 9.4): every format, mode, bit depth and geometry
// case, EXIF orientations, and accept/reject agreement on truncated, corrupt and hostile files.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "clip/error.h"
#include "image/resample.h"
#include "image_test_util.h"
#include "sha256.h"
#include "test_paths.h"
#include "util/file_io.h"

using namespace clip;
using namespace clip::image;
using nlohmann::json;

namespace {

std::string dir() { return test::data_dir() + "/images"; }
std::string file(const std::string& name) { return dir() + "/files/" + name; }
std::string expected(const std::string& name) { return dir() + "/expected/" + name; }

json manifest() { return json::parse(util::read_file(dir() + "/manifest.json")); }
const json& files_of(const json& m) { return m["files"]; }

}  // namespace

TEST(LocalImageData, ManifestCoversEveryFormatAndMode) {
  const json m = manifest();
  std::set<std::string> formats, modes;
  int rejected = 0;
  for (const json& e : files_of(m)) {
    if (e.contains("error")) {
      ++rejected;
      continue;
    }
    formats.insert(e["format"].get<std::string>());
    modes.insert(e["mode"].get<std::string>());
  }
  EXPECT_EQ(formats, (std::set<std::string>{"BMP", "GIF", "JPEG", "PNG", "WEBP"}));
  EXPECT_EQ(modes, (std::set<std::string>{"1", "CMYK", "I", "L", "LA", "P", "RGB", "RGBA"}));
  EXPECT_GE(rejected, 15);
}

TEST(LocalImageData, DecodedPixelsEqualPillow) {
  const json m = manifest();
  int exact = 0, total = 0;
  for (const json& e : files_of(m)) {
    if (e.contains("error")) continue;
    const std::string name = e["file"];
    SCOPED_TRACE(name);
    ++total;
    const Image img = decode_file(file(name));
    EXPECT_STREQ(mode_name(img.mode), e["mode"].get<std::string>().c_str());
    EXPECT_EQ(img.width, e["width"].get<int>());
    EXPECT_EQ(img.height, e["height"].get<int>());
    const bool same = test::sha256_hex(to_rgb(img).pixels) == e["decoded_sha256"].get<std::string>();
    EXPECT_TRUE(same);
    exact += same;
  }
  std::printf("[ local decoded ] exact %d/%d\n", exact, total);
}

TEST(LocalImageData, PreprocessedRgbEqualsTheReference) {
  const json m = manifest();
  int checked = 0;
  for (const json& e : files_of(m)) {
    if (e.contains("error")) continue;
    const std::string name = e["file"];
    for (int n : e["sizes"].get<std::vector<int>>()) {
      SCOPED_TRACE(name + " @" + std::to_string(n));
      PreprocessOptions o;
      o.size = n;
      const Preprocessed p = preprocess_file(file(name), o);
      const auto ref = test::npy_u8(util::read_npy(expected(name + "." + std::to_string(n) + ".rgb8.npy")));
      EXPECT_EQ(test::max_abs_diff(p.rgb.pixels, ref), 0) << test::count_diff(p.rgb.pixels, ref) << " values differ";
      // The whole-image path and the portable kernels agree with it.
      const Image img = decode_file(file(name));
      EXPECT_EQ(resize_crop(img, n).pixels, ref);
      const Geometry g = clip_geometry(img.width, img.height, n);
      if (g.resized_width != img.width || g.resized_height != img.height) {
        EXPECT_EQ(to_rgb(detail::resize_region(img, g.resized_width, g.resized_height, g.crop_left, g.crop_top, n, n,
                                               detail::Kernel::kScalar))
                      .pixels,
                  ref);
      }
      const std::string fpath = expected(name + "." + std::to_string(n) + ".f32.npy");
      if (util::file_exists(fpath)) {
        EXPECT_LE(test::max_abs_diff(p.input, test::npy_f32(util::read_npy(fpath))), 1e-6);
        ++checked;
      }
    }
  }
  EXPECT_EQ(checked, 8);  // the float inputs copied from the fixtures
}

TEST(LocalImageData, ExifTransposeMatchesImageOps) {
  const json m = manifest();
  int n_files = 0;
  for (const json& e : files_of(m)) {
    if (!e.contains("exif_sha256")) continue;
    const std::string name = e["file"];
    SCOPED_TRACE(name);
    ++n_files;
    DecodeOptions d;
    d.exif_transpose = true;
    const Image img = decode_file(file(name), d);
    EXPECT_EQ(test::sha256_hex(to_rgb(img).pixels), e["exif_sha256"].get<std::string>());
    // Off by default: the reference ignores the tag.
    EXPECT_EQ(test::sha256_hex(to_rgb(decode_file(file(name))).pixels), e["decoded_sha256"].get<std::string>());
    for (int n : {32, 64}) {
      PreprocessOptions o;
      o.size = n;
      o.decode.exif_transpose = true;
      const Preprocessed p = preprocess_file(file(name), o);
      EXPECT_EQ(p.rgb.pixels,
                test::npy_u8(util::read_npy(expected(name + ".exif." + std::to_string(n) + ".rgb8.npy"))));
    }
  }
  EXPECT_EQ(n_files, 7);
}

// Every file Pillow refuses is refused here too, with an error naming the file; nothing
// crashes. (gif_ramp_local.gif is the one file we read and Pillow 9.4 cannot: see the manifest.)
TEST(LocalImageData, FilesThePillowReferenceRejectsAreRejected) {
  const json m = manifest();
  int n = 0;
  for (const json& e : files_of(m)) {
    if (!e.contains("error")) continue;
    const std::string path = file(e["file"].get<std::string>());
    SCOPED_TRACE(path + " (Pillow: " + e["error"].get<std::string>() + ")");
    ++n;
    for (bool whole : {true, false}) {
      try {
        if (whole) {
          decode_file(path);
        } else {
          PreprocessOptions o;
          o.size = 32;
          preprocess_file(path, o);
        }
        ADD_FAILURE() << "accepted";
      } catch (const Error& err) {
        const std::string msg = err.what();
        EXPECT_EQ(msg.rfind(path + ": ", 0), 0u) << msg;
        EXPECT_GT(msg.size(), path.size() + 12) << msg;
      }
    }
  }
  EXPECT_EQ(n, 20);
}

// Pillow's Image.resize itself, every mode, one axis only, upscaling and extreme downscaling.
TEST(LocalImageData, ResizeEqualsPillowResizeInEveryMode) {
  const json m = manifest();
  int n = 0;
  std::map<std::string, Image> cache;
  for (const json& c : m["resize_cases"]) {
    const std::string name = c["file"];
    if (!cache.count(name)) cache[name] = decode_file(file(name));
    const Image& img = cache[name];
    const int w = c["width"], h = c["height"];
    SCOPED_TRACE(name + " -> " + std::to_string(w) + "x" + std::to_string(h));
    ASSERT_STREQ(mode_name(img.mode), c["mode"].get<std::string>().c_str());
    const Image r = resize(img, w, h);
    EXPECT_EQ(r.width, w);
    EXPECT_EQ(r.height, h);
    EXPECT_EQ(test::sha256_hex(r.pixels), c["sha256"].get<std::string>());
    ++n;
  }
  EXPECT_EQ(n, 63);
}
