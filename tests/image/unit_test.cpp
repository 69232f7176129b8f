// Unit tests: geometry, normalization, kernels, bad input, the pixel limit, truncation, threads,
// the fast JPEG path.
#include <gtest/gtest.h>

#include <sys/resource.h>
#include <chrono>
#include <cmath>
#include <functional>
#include <random>
#include <thread>

#include "clip/error.h"
#include "image/decoders.h"
#include "image/resample.h"
#include "image_test_util.h"
#include "test_paths.h"
#include "util/file_io.h"

using namespace clip;
using namespace clip::image;

namespace {

std::string file(const std::string& name) { return test::data_dir() + "/images/files/" + name; }

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

Image random_image(Mode mode, int w, int h, std::mt19937& rng) {
  Image img = detail::new_image(mode, w, h, Format::kUnknown);
  for (auto& v : img.pixels) v = static_cast<uint8_t>(rng());
  if (mode == Mode::kP) img.palette = detail::make_palette(nullptr, 0, 3, false);
  return img;
}

long max_rss_kb() {
  rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

}  // namespace

TEST(ImageGeometry, ShortSideToSizeLongSideTruncatedCropHalfEven) {
  Geometry g = clip_geometry(457, 300, 224);
  EXPECT_EQ(g.resized_width, 341);  // int(224 * 457 / 300) = int(341.21)
  EXPECT_EQ(g.resized_height, 224);
  EXPECT_EQ(g.crop_left, 58);                            // 58.5 → 58
  EXPECT_EQ(clip_geometry(457, 300, 64).crop_left, 16);  // int(97.49) = 97 → 16.5 → 16
  g = clip_geometry(300, 457, 224);
  EXPECT_EQ(g.resized_width, 224);
  EXPECT_EQ(g.resized_height, 341);
  EXPECT_EQ(g.crop_top, 58);
  EXPECT_EQ(g.crop_left, 0);
  g = clip_geometry(4000, 10, 32);
  EXPECT_EQ(g.resized_width, 12800);
  EXPECT_EQ(g.crop_left, 6384);
  // 119 → 59.5 → 60 (even); 117 → 58.5 → 58.
  EXPECT_EQ(clip_geometry(224 + 119, 224, 224).crop_left, 60);
  EXPECT_EQ(clip_geometry(224 + 117, 224, 224).crop_left, 58);
  g = clip_geometry(224, 224, 224);
  EXPECT_EQ(g.resized_width, 224);
  EXPECT_EQ(g.crop_left, 0);
  EXPECT_THROW(clip_geometry(0, 10, 224), Error);
  EXPECT_THROW(clip_geometry(10, 10, 0), Error);
  EXPECT_THROW(clip_geometry(10, 10, 8193), Error);
}

TEST(ImageNormalize, DividesAsTorchvisionInFloat32WithCustomMeanStd) {
  Rgb8 rgb;
  rgb.width = 2;
  rgb.height = 1;
  rgb.pixels = {0, 128, 255, 17, 34, 51};
  const std::array<float, 3> mean{0.5f, 0.25f, 0.0f}, sd{0.5f, 2.0f, 1.0f};
  const std::vector<float> v = normalize(rgb, mean, sd);
  ASSERT_EQ(v.size(), 6u);
  // CHW: channel 0 = pixels' R.
  EXPECT_EQ(v[0], (0.0f / 255.0f - 0.5f) / 0.5f);
  EXPECT_EQ(v[1], (17.0f / 255.0f - 0.5f) / 0.5f);
  EXPECT_EQ(v[2], (128.0f / 255.0f - 0.25f) / 2.0f);
  EXPECT_EQ(v[5], (51.0f / 255.0f - 0.0f) / 1.0f);
  EXPECT_THROW(normalize(rgb, mean, {1.0f, 0.0f, 1.0f}), Error);
}

TEST(ImageResample, CoefficientsFollowPillow) {
  // Upscaling keeps support 2 (ksize 5); downscaling by s widens it to 2s (antialiasing).
  const detail::AxisCoeffs up = detail::make_axis(80, 224, 0, 224);
  EXPECT_EQ(up.ksize, 5);
  const detail::AxisCoeffs down = detail::make_axis(4000, 298, 0, 298);
  EXPECT_EQ(down.ksize, 2 * static_cast<int>(std::ceil(2.0 * 4000 / 298)) + 1);
  for (int o = 0; o < down.outputs(); ++o) {
    double sum = 0;
    int64_t fixed = 0;
    for (int t = 0; t < down.count[o]; ++t) {
      sum += down.weight[o * down.ksize + t];
      fixed += down.fixed[o * down.ksize + t];
    }
    EXPECT_NEAR(sum, 1.0, 1e-12);
    EXPECT_NEAR(static_cast<double>(fixed), 1 << 22, down.count[o]);
  }
  // Pillow's nearest neighbour: floor((x + 0.5) · in / out), accumulated.
  EXPECT_EQ(detail::nearest_table(10, 4), (std::vector<int>{1, 3, 6, 8}));
  EXPECT_EQ(detail::nearest_table(3, 7), (std::vector<int>{0, 0, 1, 1, 1, 2, 2}));
}

// The AVX2 and AVX-512 kernels must give the portable kernels' bytes for any size, channel
// count, region and row window (integer arithmetic: any summation order is exact).
TEST(ImageResample, SimdAndPortableKernelsAgreeOnRandomCases) {
  std::vector<detail::Kernel> simd;
  if (detail::cpu_has_avx2()) simd.push_back(detail::Kernel::kAvx2);
  if (detail::cpu_has_avx512()) simd.push_back(detail::Kernel::kAvx512);
  if (simd.empty()) GTEST_SKIP() << "this CPU has neither AVX2 nor AVX-512";
  std::mt19937 rng(12345);
  const Mode modes[] = {Mode::kL, Mode::kLA, Mode::kRGB, Mode::kRGBA, Mode::kCMYK};
  for (int iter = 0; iter < 400; ++iter) {
    const Mode mode = modes[iter % 5];
    const int w = 1 + rng() % 300, h = 1 + rng() % 120;
    const Image img = random_image(mode, w, h, rng);
    const int ow = 1 + rng() % 200, oh = 1 + rng() % 90;
    const int rw = rng() % 4 == 0 ? w : ow, rh = rng() % 4 == 0 ? h : oh;
    const int cw = 1 + rng() % rw, ch = 1 + rng() % rh;
    const int cx = rng() % (rw - cw + 1), cy = rng() % (rh - ch + 1);
    SCOPED_TRACE(std::string(mode_name(mode)) + " " + std::to_string(w) + "x" + std::to_string(h) + " -> " +
                 std::to_string(rw) + "x" + std::to_string(rh));
    const Image a = detail::resize_region(img, rw, rh, cx, cy, cw, ch, detail::Kernel::kScalar);
    // A region equals the same pixels of the full resize.
    if (iter % 10 == 0) {
      const Image full = resize(img, rw, rh);
      EXPECT_EQ(crop(full, cx, cy, cw, ch).pixels, a.pixels);
    }
    const int C = bytes_per_pixel(mode);
    for (detail::Kernel k : simd) {
      SCOPED_TRACE(k == detail::Kernel::kAvx2 ? "AVX2" : "AVX-512");
      ASSERT_EQ(detail::resize_region(img, rw, rh, cx, cy, cw, ch, k).pixels, a.pixels);
      // A narrower row window (as the JPEG decoder's column crop gives) changes nothing.
      detail::Resampler8 r(w, h, rw, rh, cx, cy, cw, ch, C, k);
      const int wb = r.col_begin() - static_cast<int>(rng() % (r.col_begin() + 1));
      const int we = r.col_end() + static_cast<int>(rng() % (w - r.col_end() + 1));
      r.set_window(wb, we);
      for (int y = r.row_begin(); y < r.row_end(); ++y) {
        // an exactly sized row: a read past it shows under ASan
        std::vector<uint8_t> src(img.pixels.begin() + (static_cast<size_t>(y) * w + wb) * C,
                                 img.pixels.begin() + (static_cast<size_t>(y) * w + we) * C);
        r.push_row(y, src.data());
      }
      std::vector<uint8_t> out(static_cast<size_t>(cw) * ch * C);
      r.finish(out.data(), static_cast<size_t>(cw) * C);
      if (mode == Mode::kL || mode == Mode::kRGB || mode == Mode::kCMYK) {
        EXPECT_EQ(out, a.pixels);
      }
    }
  }
}

TEST(ImageOrientation, AppliesTheEightExifOrientations) {
  Image img = detail::new_image(Mode::kL, 3, 2, Format::kUnknown);
  img.pixels = {1, 2, 3, 4, 5, 6};  // rows: 1 2 3 / 4 5 6
  const std::vector<std::vector<uint8_t>> want = {{1, 2, 3, 4, 5, 6}, {3, 2, 1, 6, 5, 4}, {6, 5, 4, 3, 2, 1},
                                                  {4, 5, 6, 1, 2, 3}, {1, 4, 2, 5, 3, 6}, {4, 1, 5, 2, 6, 3},
                                                  {6, 3, 5, 2, 4, 1}, {3, 6, 2, 5, 1, 4}};
  for (int o = 1; o <= 8; ++o) {
    const Image r = apply_orientation(img, o);
    EXPECT_EQ(r.pixels, want[o - 1]) << o;
    EXPECT_EQ(r.width, o >= 5 ? 2 : 3) << o;
  }
}

TEST(ImageBadInput, ErrorsNameTheFileAndTheReason) {
  const std::string missing = test::data_dir() + "/images/files/no_such_file.png";
  EXPECT_NE(error_of([&] { decode_file(missing); }).find(missing + ": cannot open"), std::string::npos);
  PreprocessOptions o;
  o.size = 32;
  EXPECT_NE(error_of([&] { preprocess_file(missing, o); }).find(missing), std::string::npos);
  const std::string folder = test::data_dir() + "/images/files";
  EXPECT_NE(error_of([&] { preprocess_file(folder, o); }).find(folder), std::string::npos);
  EXPECT_NE(error_of([&] { decode_file(file("empty.png")); }).find("empty file (0 bytes)"), std::string::npos);
  EXPECT_NE(error_of([&] {
              decode_file(file("not_an_image.txt"));
            }).find("cannot identify the image format: the file starts with 74 68 69 73"),
            std::string::npos);
  EXPECT_NE(error_of([&] { decode_file(file("chelsea_truncated.jpg")); }).find("truncated JPEG"), std::string::npos);
  EXPECT_NE(error_of([&] { decode_file(file("png_truncated.png")); }).find("truncated PNG"), std::string::npos);
  EXPECT_NE(error_of([&] { decode_file(file("bmp_truncated.bmp")); }).find("truncated BMP"), std::string::npos);
  EXPECT_NE(error_of([&] { decode_file(file("png_bad_crc.png")); }).find("corrupt PNG"), std::string::npos);
  // The name does not matter, the bytes do.
  EXPECT_EQ(decode_file(file("png_named.jpg")).format, Format::kPng);
  EXPECT_EQ(decode_file(file("jpeg_named.png")).format, Format::kJpeg);
  // Every prefix of a valid file is either decoded or refused cleanly.
  for (const char* name : {"jpeg_portrait_420.jpg", "png_pal4_interlaced.png", "gif_interlaced.gif",
                           "webp_lossy_alpha.webp", "bmp_rle4.bmp", "astronaut_progressive.jpg"}) {
    const std::string bytes = util::read_file(file(name));
    for (size_t cut = 0; cut < bytes.size(); cut += 1 + bytes.size() / 97) {
      for (int n : {8, 64}) {
        PreprocessOptions p;
        p.size = n;
        try {
          preprocess(std::string_view(bytes.data(), cut), name, p);
        } catch (const Error& e) {
          EXPECT_EQ(std::string(e.what()).rfind(std::string(name) + ": ", 0), 0u) << e.what();
        }
      }
    }
  }
}

TEST(ImageBadInput, DecompressionBombsAreRefusedBeforeAllocating) {
  const long rss0 = max_rss_kb();
  for (const char* name : {"png_bomb.png", "jpeg_bomb.jpg", "gif_bomb.gif", "bmp_bomb.bmp"}) {
    const auto t0 = std::chrono::steady_clock::now();
    const std::string msg = error_of([&] { decode_file(file(name)); });
    EXPECT_NE(msg.find("over the limit of 178956970"), std::string::npos) << name << ": " << msg;
    PreprocessOptions o;
    o.size = 224;
    EXPECT_NE(error_of([&] { preprocess_file(file(name), o); }).find("decompression bomb"), std::string::npos) << name;
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 1.0) << name;
  }
  EXPECT_LT(max_rss_kb() - rss0, 200 * 1024);  // none of the 1.2 to 13 GB was allocated
  // The limit is an option.
  DecodeOptions small;
  small.max_pixels = 512 * 512 - 1;
  EXPECT_NE(error_of([&] {
              decode_file(file("camera_gray.png"), small);
            }).find("512x512 = 262144 pixels, over the limit of 262143"),
            std::string::npos);
  small.max_pixels = 512 * 512;
  EXPECT_EQ(decode_file(file("camera_gray.png"), small).width, 512);
  for (const char* name : {"webp_lossy.webp", "gif_palette.gif", "bmp_rgb24.bmp", "jpeg_gray_odd.jpg"}) {
    DecodeOptions tiny;
    tiny.max_pixels = 100;
    EXPECT_NE(error_of([&] { decode_file(file(name), tiny); }).find("over the limit of 100"), std::string::npos)
        << name;
  }
}

TEST(ImageBadInput, AllowTruncatedReturnsTheWholeImageSize) {
  DecodeOptions d;
  d.allow_truncated = true;
  const Image j = decode_file(file("chelsea_truncated.jpg"), d);
  EXPECT_EQ(j.width, 451);
  EXPECT_EQ(j.height, 300);
  // The rows before the cut decode as in the complete file.
  const std::string whole = util::read_file(file("jpeg_portrait_420.jpg"));
  const Image full = decode(whole, "whole");
  const Image cut = decode(std::string_view(whole.data(), whole.size() * 6 / 10), "cut", d);
  ASSERT_EQ(cut.pixels.size(), full.pixels.size());
  const size_t top = full.row_bytes() * 64;
  EXPECT_EQ(std::vector<uint8_t>(cut.pixels.begin(), cut.pixels.begin() + top),
            std::vector<uint8_t>(full.pixels.begin(), full.pixels.begin() + top));
  EXPECT_NE(cut.pixels, full.pixels);
  EXPECT_THROW(decode(std::string_view(whole.data(), whole.size() * 6 / 10), "cut"), Error);
  EXPECT_EQ(decode_file(file("png_truncated.png"), d).height, 61);
  EXPECT_EQ(decode_file(file("bmp_truncated.bmp"), d).height, 37);
  EXPECT_EQ(decode_file(file("jpeg_progressive_truncated.jpg"), d).height, 603);
  PreprocessOptions o;
  o.size = 64;
  o.decode.allow_truncated = true;
  EXPECT_EQ(preprocess_file(file("chelsea_truncated.jpg"), o).input.size(), 3u * 64 * 64);
  // Truncated headers stay an error.
  EXPECT_THROW(decode_file(file("jpeg_cut_header.jpg"), d), Error);
}

TEST(ImageBatch, ThreadsGiveTheSameResultsInOrder) {
  std::vector<std::string> paths;
  for (const char* n :
       {"rocket.jpg", "empty.png", "chelsea_palette.png", "webp_lossy_alpha.webp", "gif_offset_trns.gif",
        "not_an_image.txt", "camera_16bit.png", "jpeg_big_portrait.jpg", "bmp_rle4.bmp"})
    paths.push_back(file(n));
  const std::vector<std::string> first9 = paths;
  for (int i = 0; i < 3; ++i) paths.insert(paths.end(), first9.begin(), first9.end());
  PreprocessOptions o;
  o.size = 48;
  const auto one = preprocess_files(paths, o, 1, true);
  const auto many = preprocess_files(paths, o, 8, true);
  ASSERT_EQ(one.size(), paths.size());
  ASSERT_EQ(many.size(), paths.size());
  for (size_t i = 0; i < paths.size(); ++i) {
    EXPECT_EQ(one[i].path, paths[i]);
    EXPECT_EQ(many[i].path, paths[i]);
    EXPECT_EQ(one[i].ok(), many[i].ok());
    EXPECT_EQ(one[i].ok(), i % 9 != 1 && i % 9 != 5) << paths[i];
    EXPECT_EQ(one[i].result.input, many[i].result.input);
    EXPECT_EQ(one[i].result.rgb.pixels, many[i].result.rgb.pixels);
    if (one[i].ok()) {
      EXPECT_EQ(one[i].result.input, preprocess_file(paths[i], o).input);
    }
  }
  EXPECT_TRUE(preprocess_files({}, o, 4).empty());
}

TEST(ImageFastJpeg, DctScalingStaysCloseToTheExactPath) {
  struct Case {
    const char* name;
    int size;
    bool scaled;  // a scale k/8 < 1 keeps the short side >= 2·size
  };
  for (const Case& c :
       {Case{"jpeg_big_portrait.jpg", 224, true}, Case{"jpeg_big_portrait.jpg", 64, true}, Case{"rocket.jpg", 64, true},
        Case{"chelsea_q75.jpg", 64, true}, Case{"chelsea_q75.jpg", 224, false}, Case{"png_exif6.png", 32, false}}) {
    SCOPED_TRACE(std::string(c.name) + " @" + std::to_string(c.size));
    PreprocessOptions exact, fast;
    exact.size = fast.size = c.size;
    fast.fast_jpeg = true;
    const std::vector<float> a = preprocess_file(file(c.name), exact).input;
    const std::vector<float> b = preprocess_file(file(c.name), fast).input;
    double dot = 0, na = 0, nb = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      dot += double(a[i]) * b[i];
      na += double(a[i]) * a[i];
      nb += double(b[i]) * b[i];
    }
    EXPECT_GT(dot / std::sqrt(na * nb), 0.995);
    EXPECT_EQ(a != b, c.scaled);
  }
}

TEST(ImagePreprocessor, ReusedAcrossImagesGivesTheSameAsFreshCalls) {
  PreprocessOptions o;
  o.size = 40;
  Preprocessor p(o);
  std::vector<float> in(p.input_size());
  for (int round = 0; round < 2; ++round) {
    for (const char* n :
         {"jpeg_big_portrait.jpg", "pixel_1x1.png", "strip_4000x10.png", "camera_la.png", "rocket.jpg"}) {
      Rgb8 rgb;
      p.run_file(file(n), in.data(), &rgb);
      const Preprocessed fresh = preprocess_file(file(n), o);
      EXPECT_EQ(in, fresh.input) << n;
      EXPECT_EQ(rgb.pixels, fresh.rgb.pixels) << n;
    }
  }
  PreprocessOptions bad;
  bad.size = 0;
  EXPECT_THROW(Preprocessor{bad}, Error);
  bad.size = 32;
  bad.decode.max_pixels = 0;
  EXPECT_THROW(Preprocessor{bad}, Error);
}

TEST(ImagePng, EncodeDecodeRoundTripsAndSourceInfoDescribesTheFile) {
  PreprocessOptions o;
  o.size = 64;
  const Preprocessed p = preprocess_file(file("jpeg_big_portrait.jpg"), o);
  EXPECT_EQ(p.source.format, Format::kJpeg);
  EXPECT_EQ(p.source.mode, Mode::kRGB);
  EXPECT_EQ(p.source.width, 600);
  EXPECT_EQ(p.source.height, 1400);
  EXPECT_EQ(p.source.geometry.resized_height, 149);  // int(64 · 1400 / 600)
  EXPECT_EQ(p.source.geometry.crop_top, 42);         // 85 / 2 = 42.5 → 42
  EXPECT_EQ(p.source.jpeg_scale, 8);
  const std::string png = encode_png(p.rgb);
  const Image back = decode(png, "round trip");
  EXPECT_EQ(back.mode, Mode::kRGB);
  EXPECT_EQ(back.pixels, p.rgb.pixels);
  EXPECT_THROW(encode_png(Rgb8{}), Error);
  o.fast_jpeg = true;
  EXPECT_EQ(preprocess_file(file("jpeg_big_portrait.jpg"), o).source.jpeg_scale, 2);
}

// The streaming JPEG path (column crop, row skipping, rows resized as they arrive) at every DCT
// scale the fast path picks gives the pixels of a whole decode at that scale, then the resize.
TEST(ImageFastJpeg, StreamingDecodeEqualsAWholeDecodeAtEachScale) {
  const std::string bytes = util::read_file(file("jpeg_big_portrait.jpg"));  // 600x1400, 4:2:0
  const std::string wide = util::read_file(file("jpeg_wide_444.jpg"));       // 700x233
  struct Case {
    const std::string* bytes;
    int size, scale;
  };
  for (const Case& c : {Case{&bytes, 37, 1}, Case{&bytes, 64, 2}, Case{&bytes, 100, 3}, Case{&bytes, 140, 4},
                        Case{&bytes, 200, 6}, Case{&bytes, 290, 8}, Case{&wide, 40, 3}, Case{&wide, 29, 2}}) {
    SCOPED_TRACE(std::to_string(c.size) + " px");
    PreprocessOptions o;
    o.size = c.size;
    o.fast_jpeg = true;
    const Preprocessed p = preprocess(*c.bytes, "x.jpg", o);
    EXPECT_EQ(p.source.jpeg_scale, c.scale);
    detail::JpegReader r(*c.bytes, "x.jpg", DecodeOptions{});
    r.start(c.scale);
    Image whole = detail::new_image(r.mode(), r.output_width(), r.output_height(), Format::kJpeg);
    r.read_rows(whole.pixels.data(), whole.row_bytes(), whole.height);
    r.finish();
    EXPECT_EQ(resize_crop(whole, c.size).pixels, p.rgb.pixels);
  }
}

// Found by fuzz_image: a BMP header whose sides read as 4294901821 × 2516582497 made the error
// message multiply the sides in int64 (undefined behaviour). It must be a plain, named error.
TEST(ImageLimits, HugeSidesAreRefusedWithoutOverflow) {
  clip::image::DecodeOptions options;
  try {
    clip::image::detail::check_dimensions("huge.bmp", "BMP", 4294901821LL, 2516582497LL, options);
    FAIL() << "expected an error";
  } catch (const clip::Error& e) {
    EXPECT_NE(std::string(e.what()).find("huge.bmp: BMP is 4294901821x2516582497, over the limit"), std::string::npos)
        << e.what();
  }
  const std::string seed =
      clip::util::read_file(clip::test::source_dir() + "/fuzz/seeds/image/bmp_huge_size_overflow.bmp");
  EXPECT_THROW(clip::image::decode(seed, "fuzz seed"), clip::Error);
}
