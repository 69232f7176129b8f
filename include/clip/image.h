// Image input for CLIP: decoding (JPEG, PNG, WebP, BMP, GIF) and the reference preprocessing
// (`Resize(n, bicubic)` on the short side → `CenterCrop(n)` → `convert("RGB")` → /255 →
// normalize), pixel-identical to Pillow 9.4 + torchvision on the same files. See docs/image.md.
//
// Everything is re-entrant: no global state, every knob is an explicit option.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "clip/error.h"

namespace clip::image {

// ---- formats and modes ------------------------------------------------------------------------

enum class Format { kUnknown, kJpeg, kPng, kWebp, kBmp, kGif };
const char* format_name(Format f);
// The format from the first bytes (magic numbers), never from a file name.
Format detect_format(std::string_view bytes);

// Pillow's image modes. A decoded image keeps the mode Pillow opens it in, because the reference
// resizes in that mode: "1" and P with nearest neighbour, LA/RGBA premultiplied, I in 32-bit.
enum class Mode {
  k1,     // bilevel, one byte a pixel holding 0 or 255
  kL,     // 8-bit grey
  kLA,    // grey + alpha, 2 bytes a pixel
  kP,     // palette indices, 1 byte a pixel; Image::palette holds 256 RGB entries
  kRGB,   // 3 bytes a pixel
  kRGBA,  // 4 bytes a pixel, not premultiplied
  kCMYK,  // 4 bytes a pixel, as Pillow stores JPEG CMYK (Adobe-inverted on read)
  kI,     // 32-bit signed integers (16-bit grey PNGs), native byte order
};
const char* mode_name(Mode m);  // "1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I"
int bytes_per_pixel(Mode m);

// Pillow's DecompressionBombError threshold (2 × Image.MAX_IMAGE_PIXELS).
inline constexpr int64_t kDefaultMaxPixels = 178956970;

struct DecodeOptions {
  // Images with more pixels (width × height, before any scaling) are refused before their
  // pixels are allocated. Must be > 0.
  int64_t max_pixels = kDefaultMaxPixels;
  // Accept a JPEG, PNG or BMP whose data ends early (what is missing is decoded as the codec
  // fills it: grey for JPEG, zeros otherwise). Off: such files are an error, as in Pillow.
  bool allow_truncated = false;
  // Apply the EXIF Orientation tag (JPEG APP1, PNG eXIf, WebP EXIF) like
  // ImageOps.exif_transpose. Off by default: the reference ignores it.
  bool exif_transpose = false;
};

struct Image {
  Mode mode = Mode::kRGB;
  int width = 0;
  int height = 0;
  std::vector<uint8_t> pixels;   // row-major, bytes_per_pixel(mode) bytes a pixel, no padding
  std::vector<uint8_t> palette;  // mode P only: 768 bytes (entries past the file's are i,i,i)
  Format format = Format::kUnknown;
  int exif_orientation = 0;  // 1..8 when the file has the tag (and it was looked for), else 0

  size_t row_bytes() const { return static_cast<size_t>(width) * bytes_per_pixel(mode); }
};

// An 8-bit RGB image, HWC.
struct Rgb8 {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> pixels;
};

// Decodes a whole image in its Pillow mode (JPEG: first frame; GIF, WebP: first frame).
// Throws clip::Error naming `name` and the reason on any failure.
Image decode(std::string_view bytes, const std::string& name, const DecodeOptions& options = {});
Image decode_file(const std::string& path, const DecodeOptions& options = {});

// Pillow's convert("RGB") for every mode above.
Rgb8 to_rgb(const Image& image);

// Pillow's resampling filters that CLIP models use (open_clip's preprocess_cfg "interpolation").
enum class Filter { kBicubic, kBilinear };

// Pillow's Image.resize((width, height), BICUBIC or BILINEAR), with its mode rules (P/1: nearest;
// LA/RGBA: premultiplied; I: 32-bit with double coefficients; others 8-bit fixed point).
Image resize(const Image& image, int width, int height, Filter filter = Filter::kBicubic);
Image crop(const Image& image, int left, int top, int width, int height);
// ImageOps.exif_transpose on the decoded pixels (orientation 2..8; others: a copy).
Image apply_orientation(const Image& image, int orientation);

// ---- the CLIP preprocessing -------------------------------------------------------------------

// torchvision's geometry: short side → size, long side int(size·long/short); centre crop
// offsets round((resized − size) / 2) with round-half-to-even.
struct Geometry {
  int resized_width = 0, resized_height = 0;
  int crop_left = 0, crop_top = 0;
  int size = 0;
};
Geometry clip_geometry(int width, int height, int size);

inline constexpr std::array<float, 3> kClipMean{0.48145466f, 0.4578275f, 0.40821073f};
inline constexpr std::array<float, 3> kClipStd{0.26862954f, 0.26130258f, 0.27577711f};

// open_clip's preprocess_cfg "resize_mode": kShortest is CLIP's Resize(size) + CenterCrop(size);
// kSquash is Resize((size, size)); kLongest is ResizeKeepRatio(size, longest=1) (sides
// round(side / max(w, h) · size)) + CenterCropOrPad(size) with `fill` in every channel.
enum class ResizeMode { kShortest, kLongest, kSquash };

struct PreprocessOptions {
  int size = 224;  // the model's input resolution, 1..8192
  Filter filter = Filter::kBicubic;
  ResizeMode resize_mode = ResizeMode::kShortest;
  uint8_t fill = 0;  // kLongest's padding (open_clip's fill_color)
  std::array<float, 3> mean = kClipMean;
  std::array<float, 3> std = kClipStd;
  DecodeOptions decode;
  // Fast path for large JPEGs (not Pillow-exact): libjpeg-turbo decodes at the smallest DCT
  // scale (k/8) whose short side is still ≥ 2·size, then the exact resize runs on that.
  bool fast_jpeg = false;
};

// What a preprocessed file was: its format, Pillow mode and size, the geometry applied, and the
// JPEG DCT scale used (8/8 unless the fast path scaled it).
struct SourceInfo {
  Format format = Format::kUnknown;
  Mode mode = Mode::kRGB;
  int width = 0, height = 0;
  Geometry geometry;   // computed on the decoded (possibly DCT-scaled) size
  int jpeg_scale = 8;  // k of k/8
};

struct Preprocessed {
  Rgb8 rgb;                  // the cropped size×size RGB image (after convert("RGB"))
  std::vector<float> input;  // float32 [3, size, size]: (x/255 − mean) / std
  SourceInfo source;
};

// Resize + centre crop + convert("RGB") of a decoded image (steps 2–4 of the reference).
Rgb8 resize_crop(const Image& image, int size);
// The same with the options' filter, resize mode and fill (a model's preprocess_cfg).
Rgb8 resize_crop(const Image& image, const PreprocessOptions& options);
// Step 5: x/255, CHW, (x − mean) / std, in float32.
std::vector<float> normalize(const Rgb8& rgb, const std::array<float, 3>& mean, const std::array<float, 3>& std);

// The whole pipeline on one file's bytes (JPEGs are decoded straight into the resize, only the
// rows and columns the crop needs, without a full-size copy).
Preprocessed preprocess(std::string_view bytes, const std::string& name, const PreprocessOptions& options);
Preprocessed preprocess_file(const std::string& path, const PreprocessOptions& options);

// Reusable preprocessing: keeps its scratch buffers (file bytes, resize buffers, the cropped
// image) between images, so a loop over many files does not allocate, and page-fault, per image.
// Not thread-safe: one per thread.
class Preprocessor {
 public:
  explicit Preprocessor(const PreprocessOptions& options);
  ~Preprocessor();
  Preprocessor(Preprocessor&&) noexcept;
  Preprocessor& operator=(Preprocessor&&) noexcept;

  const PreprocessOptions& options() const { return options_; }
  size_t input_size() const;  // 3 · size · size floats

  // Writes the model input (input_size() floats, [3, size, size]) to `input`, and the cropped
  // RGB image to *rgb when rgb is not null.
  // *info, when given, receives what the file was.
  void run(std::string_view bytes, const std::string& name, float* input, Rgb8* rgb = nullptr,
           SourceInfo* info = nullptr);
  void run_file(const std::string& path, float* input, Rgb8* rgb = nullptr, SourceInfo* info = nullptr);
  // The same from an image already decoded (e.g. a Python PIL image's pixels in its own mode):
  // resized in that mode as Pillow does, so the result equals the file's. The pixels, palette
  // and size are checked against the mode (clip::Error naming `name`).
  void run_image(const Image& image, const std::string& name, float* input, Rgb8* rgb = nullptr);

 private:
  void resize_decoded(const Image& image, SourceInfo& src);
  struct Scratch;
  PreprocessOptions options_;
  std::unique_ptr<Scratch> scratch_;
};

// A batch on a thread pool (threads <= 0: all cores). Results come back in input order; a file
// that fails sets `error` (naming the file and the reason) and does not stop the others.
struct BatchItem {
  std::string path;
  std::string error;                                // empty when ok
  ErrorKind error_kind = ErrorKind::kInvalidInput;  // the failure's kind, when not ok
  Preprocessed result;
  bool ok() const { return error.empty(); }
};
std::vector<BatchItem> preprocess_files(const std::vector<std::string>& paths, const PreprocessOptions& options,
                                        int threads = 0, bool keep_rgb = false);

// PNG encoding of an RGB image (for inspection: `clip preprocess --png`), and an atomic write.
std::string encode_png(const Rgb8& rgb);
void write_png(const std::string& path, const Rgb8& rgb);

}  // namespace clip::image
