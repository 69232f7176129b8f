// The CLIP preprocessing: torchvision's Resize(n, bicubic) → CenterCrop(n) geometry over Pillow's
// resize, convert("RGB"), ToTensor, Normalize. JPEGs stream from libjpeg into the resize.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>

#include "clip/error.h"
#include "image/decoders.h"
#include "image/resample.h"
#include "util/file_io.h"
#include "util/thread_pool.h"

namespace clip::image {
namespace {

// Python's round(d / 2) for d >= 0: halves go to the even neighbour.
int half_round_even(int d) {
  const int q = d / 2;
  return (d % 2 != 0 && q % 2 != 0) ? q + 1 : q;
}

void check_size(int size) {
  // 8192: the float input alone is then 805 MB; CLIP models use 224..448.
  if (size < 1 || size > 8192) throw Error("preprocess: size " + std::to_string(size) + " is out of range 1..8192");
}

// libjpeg's output size at scale m/8.
int scaled(int v, int m) { return static_cast<int>((static_cast<int64_t>(v) * m + 7) / 8); }

Image read_whole(detail::JpegReader& r) {
  r.start(8);
  Image img = detail::new_image(r.mode(), r.output_width(), r.output_height(), Format::kJpeg);
  img.exif_orientation = r.exif_orientation();
  const size_t rb = img.row_bytes();
  for (int y = 0; y < img.height; y += 16)
    r.read_rows(img.pixels.data() + static_cast<size_t>(y) * rb, rb, std::min(16, img.height - y));
  r.finish();
  return img;
}

// torchvision's float32 steps (x/255 − m) / s: only 256 values per channel, so a table.
void make_lut(const std::array<float, 3>& mean, const std::array<float, 3>& std, float lut[3][256]) {
  for (int c = 0; c < 3; ++c)
    if (!(std[c] != 0.0f) || !std::isfinite(std[c]) || !std::isfinite(mean[c]))
      throw Error("normalize: std must be finite and non-zero and mean finite (channel " + std::to_string(c) + ")");
  for (int c = 0; c < 3; ++c)
    for (int v = 0; v < 256; ++v) {
      const float x = static_cast<float>(v) / 255.0f;
      lut[c][v] = (x - mean[c]) / std[c];
    }
}

void normalize_into(const Rgb8& rgb, const float lut[3][256], float* out) {
  const size_t plane = static_cast<size_t>(rgb.width) * rgb.height;
  const uint8_t* p = rgb.pixels.data();
  for (size_t i = 0; i < plane; ++i) {
    out[i] = lut[0][p[3 * i]];
    out[plane + i] = lut[1][p[3 * i + 1]];
    out[2 * plane + i] = lut[2][p[3 * i + 2]];
  }
}

// Reads a whole file into `out`, reusing its capacity.
void read_file_into(const std::string& path, std::string& out) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    throw Error(path + ": cannot open: " + std::strerror(err), util::open_error_kind(err));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(path + ": not a regular file; expected an image file");
  }
  out.resize(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (done < out.size()) {
    const ssize_t k = ::read(fd, &out[done], out.size() - done);
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) {
      const std::string why = std::strerror(errno);
      ::close(fd);
      throw Error(path + ": read error: " + why);
    }
    if (k == 0) break;  // the file shrank while being read
    done += static_cast<size_t>(k);
  }
  ::close(fd);
  out.resize(done);
}

// open_clip's preprocess_cfg variants other than CLIP's bicubic shortest-side resize (which the
// streaming path below does): the whole image decoded, then the Pillow-exact resize with the
// model's filter; kLongest pads the resized image into the square with the fill colour (after
// convert("RGB"): the fill is the same in every channel, so padding before or after is alike).
void configured_resize(const Image& img, const PreprocessOptions& o, Rgb8& scratch, Rgb8& out, Geometry& g) {
  const int n = o.size;
  g = Geometry{};
  g.size = n;
  int ow = n, oh = n;
  switch (o.resize_mode) {
    case ResizeMode::kShortest: g = clip_geometry(img.width, img.height, n); break;
    case ResizeMode::kSquash: g.resized_width = g.resized_height = n; break;
    case ResizeMode::kLongest: {
      // ResizeKeepRatio(longest=1): ratio = max(h / n, w / n), sides round(side / ratio) (Python's
      // round: halves to even, which nearbyint does in the default rounding mode).
      const double ratio = std::max(static_cast<double>(img.height) / n, static_cast<double>(img.width) / n);
      g.resized_width = static_cast<int>(std::nearbyint(img.width / ratio));
      g.resized_height = static_cast<int>(std::nearbyint(img.height / ratio));
      if (g.resized_width < 1 || g.resized_height < 1)
        throw Error("preprocess: a " + std::to_string(img.width) + "x" + std::to_string(img.height) +
                    " image is too thin to fit into " + std::to_string(n) + " px keeping its ratio");
      ow = g.resized_width;
      oh = g.resized_height;
      break;
    }
  }
  const Image region = g.resized_width == img.width && g.resized_height == img.height
                           ? crop(img, g.crop_left, g.crop_top, ow, oh)
                           : detail::resize_region(img, g.resized_width, g.resized_height, g.crop_left, g.crop_top, ow,
                                                   oh, detail::Kernel::kAuto, o.filter);
  if (o.resize_mode != ResizeMode::kLongest) {
    detail::to_rgb_into(region, out);
    return;
  }
  detail::to_rgb_into(region, scratch);
  // CenterCropOrPad: left/top get (n - side) // 2, the rest goes right/bottom.
  const int left = (n - ow) / 2, top = (n - oh) / 2;
  out.width = out.height = n;
  out.pixels.assign(static_cast<size_t>(n) * n * 3, o.fill);
  for (int y = 0; y < oh; ++y)
    std::memcpy(out.pixels.data() + (static_cast<size_t>(y + top) * n + left) * 3,
                scratch.pixels.data() + static_cast<size_t>(y) * ow * 3, static_cast<size_t>(ow) * 3);
}

}  // namespace

struct Preprocessor::Scratch {
  std::string bytes;
  detail::Resampler8 resampler;
  std::vector<uint8_t> chunk;
  Image cropped;
  Rgb8 rgb, unpadded;
  float lut[3][256];
};

Preprocessor::Preprocessor(const PreprocessOptions& options)
    : options_(options), scratch_(std::make_unique<Scratch>()) {
  check_size(options.size);
  if (options.decode.max_pixels <= 0) throw Error("preprocess: the pixel limit must be positive");
  make_lut(options.mean, options.std, scratch_->lut);
}

Preprocessor::~Preprocessor() = default;
Preprocessor::Preprocessor(Preprocessor&&) noexcept = default;
Preprocessor& Preprocessor::operator=(Preprocessor&&) noexcept = default;

size_t Preprocessor::input_size() const { return 3 * static_cast<size_t>(options_.size) * options_.size; }

void Preprocessor::run_file(const std::string& path, float* input, Rgb8* rgb, SourceInfo* info) {
  read_file_into(path, scratch_->bytes);
  run(scratch_->bytes, path, input, rgb, info);
}

void Preprocessor::run(std::string_view bytes, const std::string& name, float* input, Rgb8* rgb, SourceInfo* info) {
  Scratch& s = *scratch_;
  const PreprocessOptions& o = options_;
  const int n = o.size;
  if (bytes.empty()) detail::fail(name, "empty file (0 bytes); expected an image");
  bool done = false;
  SourceInfo src;
  src.format = detect_format(bytes);
  if (o.filter != Filter::kBicubic || o.resize_mode != ResizeMode::kShortest) {
    resize_decoded(decode(bytes, name, o.decode), src);
    done = true;
  } else if (src.format == Format::kJpeg) {
    detail::JpegReader r(bytes, name, o.decode);
    if (o.decode.exif_transpose && r.exif_orientation() >= 2) {
      const Image img = apply_orientation(read_whole(r), r.exif_orientation());
      src.mode = img.mode;
      src.width = img.width;
      src.height = img.height;
      src.geometry = clip_geometry(img.width, img.height, n);
      detail::to_rgb_into(detail::resize_region_or_crop(img, n), s.rgb);
      done = true;
    } else {
      int scale = 8;
      if (o.fast_jpeg) {
        const int short_side = std::min(r.width(), r.height());
        for (int m = 1; m <= 8; ++m) {
          if (scaled(short_side, m) >= 2 * n) {
            scale = m;
            break;
          }
        }
      }
      r.start(scale);
      const int W = r.output_width(), H = r.output_height(), C = r.channels();
      const Geometry g = clip_geometry(W, H, n);
      src.mode = r.mode();
      src.width = r.width();
      src.height = r.height();
      src.geometry = g;
      src.jpeg_scale = scale;
      detail::Resampler8& rs = s.resampler;
      rs.configure(W, H, g.resized_width, g.resized_height, g.crop_left, g.crop_top, n, n, C);
      // Decode only the needed columns and rows, with a margin so that libjpeg's edge handling
      // of a cropped or skipped region (upsampling context) never reaches a pixel we use.
      constexpr int kMargin = 32;
      int x0 = std::max(0, rs.col_begin() - kMargin);
      int xw = std::min(W, rs.col_end() + kMargin) - x0;
      if (x0 > 0 || xw < W) {
        r.crop_columns(x0, xw);
      } else {
        x0 = 0;
        xw = W;
      }
      rs.set_window(x0, x0 + xw);
      const int y_first = std::max(0, rs.row_begin() - kMargin);
      r.skip_rows(y_first);
      constexpr int kChunk = 16;
      const size_t rb = static_cast<size_t>(xw) * C;
      s.chunk.resize(kChunk * rb);
      for (int y = y_first; y < rs.row_end(); y += kChunk) {
        const int k = std::min(kChunk, rs.row_end() - y);
        r.read_rows(s.chunk.data(), rb, k);
        rs.push_rows(y, s.chunk.data(), rb, k);
      }
      r.finish();
      s.cropped.mode = r.mode();
      s.cropped.width = s.cropped.height = n;
      s.cropped.format = Format::kJpeg;
      s.cropped.pixels.resize(s.cropped.row_bytes() * n);
      rs.finish(s.cropped.pixels.data(), s.cropped.row_bytes());
      detail::to_rgb_into(s.cropped, s.rgb);
      done = true;
    }
  }
  if (!done) resize_decoded(decode(bytes, name, o.decode), src);
  normalize_into(s.rgb, s.lut, input);
  if (rgb) *rgb = s.rgb;
  if (info) *info = src;
}

void Preprocessor::run_image(const Image& image, const std::string& name, float* input, Rgb8* rgb) {
  if (image.width <= 0 || image.height <= 0)
    throw Error(name + ": image size " + std::to_string(image.width) + "x" + std::to_string(image.height) +
                ", expected a positive width and height");
  if (static_cast<int64_t>(image.width) * image.height > options_.decode.max_pixels)
    throw Error(name + ": " + std::to_string(image.width) + "x" + std::to_string(image.height) + " pixels exceed the limit of " +
                    std::to_string(options_.decode.max_pixels),
                ErrorKind::kTooLarge);
  if (image.pixels.size() != image.row_bytes() * image.height)
    throw Error(name + ": " + std::to_string(image.pixels.size()) + " bytes of pixels, expected " +
                std::to_string(image.row_bytes() * image.height) + " for a " + std::to_string(image.width) + "x" +
                std::to_string(image.height) + " image in mode " + mode_name(image.mode));
  if (image.mode == Mode::kP && image.palette.size() != 768)
    throw Error(name + ": a palette of " + std::to_string(image.palette.size()) + " bytes, expected 768 (256 RGB entries)");
  SourceInfo src;
  src.format = image.format;
  resize_decoded(image, src);
  normalize_into(scratch_->rgb, scratch_->lut, input);
  if (rgb) *rgb = scratch_->rgb;
}

// Resize, crop (or pad) and convert("RGB") of a whole decoded image into scratch_->rgb.
void Preprocessor::resize_decoded(const Image& img, SourceInfo& src) {
  Scratch& s = *scratch_;
  const PreprocessOptions& o = options_;
  const int n = o.size;
  src.mode = img.mode;
  src.width = img.width;
  src.height = img.height;
  if (o.filter != Filter::kBicubic || o.resize_mode != ResizeMode::kShortest) {
    configured_resize(img, o, s.unpadded, s.rgb, src.geometry);
    return;
  }
  const Geometry g = clip_geometry(img.width, img.height, n);
  src.geometry = g;
  const bool plain = img.mode == Mode::kL || img.mode == Mode::kRGB || img.mode == Mode::kCMYK;
  if (plain && (g.resized_width != img.width || g.resized_height != img.height)) {
    const int C = bytes_per_pixel(img.mode);
    detail::Resampler8& rs = s.resampler;
    rs.configure(img.width, img.height, g.resized_width, g.resized_height, g.crop_left, g.crop_top, n, n, C);
    const size_t rb = img.row_bytes();
    rs.push_rows(rs.row_begin(), img.pixels.data() + rs.row_begin() * rb, rb, rs.row_end() - rs.row_begin());
    s.cropped.mode = img.mode;
    s.cropped.width = s.cropped.height = n;
    s.cropped.format = img.format;
    s.cropped.pixels.resize(s.cropped.row_bytes() * n);
    rs.finish(s.cropped.pixels.data(), s.cropped.row_bytes());
    detail::to_rgb_into(s.cropped, s.rgb);
  } else {
    detail::to_rgb_into(detail::resize_region_or_crop(img, n), s.rgb);
  }
}

Geometry clip_geometry(int width, int height, int size) {
  check_size(size);
  if (width <= 0 || height <= 0)
    throw Error("preprocess: image size " + std::to_string(width) + "x" + std::to_string(height) + " is empty");
  Geometry g;
  g.size = size;
  const int64_t s = std::min(width, height), l = std::max(width, height);
  // int(size * long / short): an exact integer product, a correctly rounded division, truncated.
  const double lf = static_cast<double>(static_cast<int64_t>(size) * l) / static_cast<double>(s);
  if (lf > 1e9)
    throw Error("preprocess: a " + std::to_string(width) + "x" + std::to_string(height) +
                " image resized to short side " + std::to_string(size) + " is too long");
  const int new_long = static_cast<int>(lf);
  if (width <= height) {
    g.resized_width = size;
    g.resized_height = new_long;
  } else {
    g.resized_width = new_long;
    g.resized_height = size;
  }
  g.crop_left = half_round_even(g.resized_width - size);
  g.crop_top = half_round_even(g.resized_height - size);
  return g;
}

Rgb8 resize_crop(const Image& image, int size) { return to_rgb(detail::resize_region_or_crop(image, size)); }

Rgb8 resize_crop(const Image& image, const PreprocessOptions& options) {
  check_size(options.size);
  if (options.filter == Filter::kBicubic && options.resize_mode == ResizeMode::kShortest)
    return resize_crop(image, options.size);
  Rgb8 scratch, out;
  Geometry g;
  configured_resize(image, options, scratch, out, g);
  return out;
}

Image detail::resize_region_or_crop(const Image& image, int size) {
  const Geometry g = clip_geometry(image.width, image.height, size);
  if (g.resized_width == image.width && g.resized_height == image.height)
    return crop(image, g.crop_left, g.crop_top, size, size);
  return resize_region(image, g.resized_width, g.resized_height, g.crop_left, g.crop_top, size, size);
}

std::vector<float> normalize(const Rgb8& rgb, const std::array<float, 3>& mean, const std::array<float, 3>& std) {
  float lut[3][256];
  make_lut(mean, std, lut);
  std::vector<float> out(static_cast<size_t>(rgb.width) * rgb.height * 3);
  normalize_into(rgb, lut, out.data());
  return out;
}

Preprocessed preprocess(std::string_view bytes, const std::string& name, const PreprocessOptions& options) {
  Preprocessor p(options);
  Preprocessed out;
  out.input.resize(p.input_size());
  p.run(bytes, name, out.input.data(), &out.rgb, &out.source);
  return out;
}

Preprocessed preprocess_file(const std::string& path, const PreprocessOptions& options) {
  Preprocessor p(options);
  Preprocessed out;
  out.input.resize(p.input_size());
  p.run_file(path, out.input.data(), &out.rgb, &out.source);
  return out;
}

std::vector<BatchItem> preprocess_files(const std::vector<std::string>& paths, const PreprocessOptions& options,
                                        int threads, bool keep_rgb) {
  Preprocessor first(options);  // validates the options once, before any work
  std::vector<BatchItem> items(paths.size());
  util::ThreadPool pool(threads);
  const size_t workers = std::max<size_t>(1, std::min<size_t>(pool.size() + 1, paths.size()));
  std::atomic<size_t> next{0};
  // One Preprocessor (scratch buffers) per worker; files are handed out one at a time.
  pool.parallel_for(workers, [&](size_t w) {
    Preprocessor p = w == 0 ? std::move(first) : Preprocessor(options);
    for (size_t i = next++; i < paths.size(); i = next++) {
      BatchItem& it = items[i];
      it.path = paths[i];
      try {
        it.result.input.resize(p.input_size());
        p.run_file(paths[i], it.result.input.data(), keep_rgb ? &it.result.rgb : nullptr, &it.result.source);
      } catch (const std::exception& e) {
        it.result = Preprocessed{};
        it.error = e.what();
        if (const auto* error = dynamic_cast<const Error*>(&e)) it.error_kind = error->kind();
        if (it.error.empty()) it.error = paths[i] + ": unknown error";
      } catch (...) {
        it.result = Preprocessed{};
        it.error = paths[i] + ": unknown error";
      }
    }
  });
  return items;
}

}  // namespace clip::image
