// The CLIP preprocessing: torchvision's Resize(n, bicubic) → CenterCrop(n) geometry over Pillow's
// resize, convert("RGB"), ToTensor, Normalize. JPEGs stream from libjpeg into the resize.
#include <algorithm>
#include <cmath>
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
  if (size < 1 || size > 65536) throw Error("preprocess: size " + std::to_string(size) + " is out of range 1..65536");
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

Rgb8 preprocess_jpeg(std::string_view bytes, const std::string& name, const PreprocessOptions& o) {
  detail::JpegReader r(bytes, name, o.decode);
  if (o.decode.exif_transpose && r.exif_orientation() >= 2) {
    const Image img = read_whole(r);
    return resize_crop(apply_orientation(img, img.exif_orientation), o.size);
  }
  int scale = 8;
  if (o.fast_jpeg) {
    const int short_side = std::min(r.width(), r.height());
    for (int m = 1; m <= 8; ++m) {
      if (scaled(short_side, m) >= 2 * o.size) {
        scale = m;
        break;
      }
    }
  }
  r.start(scale);
  const int W = r.output_width(), H = r.output_height(), C = r.channels();
  const Geometry g = clip_geometry(W, H, o.size);
  const int n = o.size;
  detail::Resampler8 rs(W, H, g.resized_width, g.resized_height, g.crop_left, g.crop_top, n, n, C);

  // Decode only the needed columns and rows, with a margin so that libjpeg's edge handling of
  // a cropped or skipped region (upsampling context) never reaches a pixel we use.
  constexpr int kMargin = 32;
  int x0 = std::max(0, rs.col_begin() - kMargin);
  int xw = std::min(W, rs.col_end() + kMargin) - x0;
  if (x0 > 0 || xw < W) r.crop_columns(x0, xw);
  else xw = W;
  rs.set_window(x0, x0 + xw);
  const int y_first = std::max(0, rs.row_begin() - kMargin);
  r.skip_rows(y_first);
  constexpr int kChunk = 16;
  std::vector<uint8_t> chunk(static_cast<size_t>(kChunk) * xw * C);
  const size_t rb = static_cast<size_t>(xw) * C;
  for (int y = y_first; y < rs.row_end(); y += kChunk) {
    const int k = std::min(kChunk, rs.row_end() - y);
    r.read_rows(chunk.data(), rb, k);
    for (int i = 0; i < k; ++i) rs.push_row(y + i, chunk.data() + i * rb);
  }
  r.finish();
  Image out = detail::new_image(r.mode(), n, n, Format::kJpeg);
  rs.finish(out.pixels.data(), out.row_bytes());
  return to_rgb(out);
}

}  // namespace

Geometry clip_geometry(int width, int height, int size) {
  check_size(size);
  if (width <= 0 || height <= 0)
    throw Error("preprocess: image size " + std::to_string(width) + "x" + std::to_string(height) + " is empty");
  Geometry g;
  g.size = size;
  const int64_t s = std::min(width, height), l = std::max(width, height);
  // int(size * long / short): an exact integer product, a correctly rounded division, truncated.
  const double lf = static_cast<double>(static_cast<int64_t>(size) * l) / static_cast<double>(s);
  if (lf > 1e9) throw Error("preprocess: a " + std::to_string(width) + "x" + std::to_string(height) +
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

Rgb8 resize_crop(const Image& image, int size) {
  const Geometry g = clip_geometry(image.width, image.height, size);
  if (g.resized_width == image.width && g.resized_height == image.height)
    return to_rgb(crop(image, g.crop_left, g.crop_top, size, size));
  return to_rgb(detail::resize_region(image, g.resized_width, g.resized_height, g.crop_left, g.crop_top, size, size));
}

std::vector<float> normalize(const Rgb8& rgb, const std::array<float, 3>& mean, const std::array<float, 3>& std) {
  for (int c = 0; c < 3; ++c)
    if (!(std[c] != 0.0f) || !std::isfinite(std[c]) || !std::isfinite(mean[c]))
      throw Error("normalize: std must be finite and non-zero and mean finite (channel " + std::to_string(c) + ")");
  // Only 256 values per channel: a table of torchvision's float32 steps (x/255 − m) / s.
  float lut[3][256];
  for (int c = 0; c < 3; ++c)
    for (int v = 0; v < 256; ++v) {
      const float x = static_cast<float>(v) / 255.0f;
      lut[c][v] = (x - mean[c]) / std[c];
    }
  const size_t plane = static_cast<size_t>(rgb.width) * rgb.height;
  std::vector<float> out(plane * 3);
  const uint8_t* p = rgb.pixels.data();
  for (size_t i = 0; i < plane; ++i) {
    out[i] = lut[0][p[3 * i]];
    out[plane + i] = lut[1][p[3 * i + 1]];
    out[2 * plane + i] = lut[2][p[3 * i + 2]];
  }
  return out;
}

Preprocessed preprocess(std::string_view bytes, const std::string& name, const PreprocessOptions& options) {
  check_size(options.size);
  if (bytes.empty()) detail::fail(name, "empty file (0 bytes); expected an image");
  Preprocessed p;
  if (detect_format(bytes) == Format::kJpeg) {
    p.rgb = preprocess_jpeg(bytes, name, options);
  } else {
    p.rgb = resize_crop(decode(bytes, name, options.decode), options.size);
  }
  p.input = normalize(p.rgb, options.mean, options.std);
  return p;
}

Preprocessed preprocess_file(const std::string& path, const PreprocessOptions& options) {
  return preprocess(util::read_file(path), path, options);
}

std::vector<BatchItem> preprocess_files(const std::vector<std::string>& paths, const PreprocessOptions& options,
                                        int threads, bool keep_rgb) {
  check_size(options.size);
  std::vector<BatchItem> items(paths.size());
  util::ThreadPool pool(threads);
  pool.parallel_for(paths.size(), [&](size_t i) {
    BatchItem& it = items[i];
    it.path = paths[i];
    try {
      it.result = preprocess_file(paths[i], options);
      if (!keep_rgb) it.result.rgb = Rgb8{};
    } catch (const std::exception& e) {
      it.error = e.what();
      if (it.error.empty()) it.error = paths[i] + ": unknown error";
    } catch (...) {
      it.error = paths[i] + ": unknown error";
    }
  });
  return items;
}

}  // namespace clip::image
