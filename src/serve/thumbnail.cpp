#include "serve/thumbnail.h"

#include <algorithm>

#include "clip/image.h"

namespace clip::serve {

std::string make_thumbnail(const std::string& encoded, const std::string& name, int size, int64_t max_pixels) {
  image::DecodeOptions decode;
  decode.max_pixels = max_pixels;
  decode.exif_transpose = true;
  const image::Image decoded = image::decode(encoded, name, decode);
  image::Image rgb;
  rgb.mode = image::Mode::kRGB;
  image::Rgb8 converted = image::to_rgb(decoded);
  rgb.width = converted.width;
  rgb.height = converted.height;
  rgb.pixels = std::move(converted.pixels);
  const int longest = std::max(rgb.width, rgb.height);
  if (longest > size) {
    const int w = std::max(1, static_cast<int>(int64_t{rgb.width} * size / longest));
    const int h = std::max(1, static_cast<int>(int64_t{rgb.height} * size / longest));
    rgb = image::resize(rgb, w, h);
  }
  image::Rgb8 out;
  out.width = rgb.width;
  out.height = rgb.height;
  out.pixels = std::move(rgb.pixels);
  return image::encode_png(out);
}

}  // namespace clip::serve
