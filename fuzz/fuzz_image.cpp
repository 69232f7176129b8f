// libFuzzer target for every image decoder (JPEG, PNG, WebP, BMP, GIF) and the preprocessing
// behind them: whole-image decoding, mode conversion, Pillow-exact resizing in every mode, and
// the streaming JPEG path (column crop, row skipping, DCT scaling). A small pixel limit keeps
// each input cheap. Anything but clip::Error escaping, or any sanitizer report, is a bug.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "clip/error.h"
#include "clip/image.h"

namespace {

using namespace clip::image;

// Option bits from the input's length and last byte, so the corpus explores them too.
struct Knobs {
  bool allow_truncated, exif_transpose, fast_jpeg;
  int size;
};

Knobs knobs(const uint8_t* data, size_t size) {
  const unsigned b = size ? data[size - 1] : 0;
  return {(b & 1) != 0, (b & 2) != 0, (b & 4) != 0, 8 + static_cast<int>((b >> 3) % 5) * 13};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const Knobs k = knobs(data, size);
  DecodeOptions d;
  d.max_pixels = 1 << 20;
  d.allow_truncated = k.allow_truncated;
  d.exif_transpose = k.exif_transpose;
  try {
    const Image img = decode(bytes, "fuzz", d);
    (void)to_rgb(img);
    // Pillow's resize in the image's own mode, down and up, one axis at a time too.
    (void)resize(img, 1 + img.width / 3, 1 + img.height / 2);
    (void)resize(img, img.width, 1 + img.height % 7);
    if (static_cast<int64_t>(img.width) * img.height <= 4096) (void)resize(img, img.width * 3 + 1, img.height * 2 + 1);
    (void)resize_crop(img, k.size);
  } catch (const clip::Error&) {
  }
  try {
    PreprocessOptions o;
    o.size = k.size;
    o.decode = d;
    o.fast_jpeg = k.fast_jpeg;
    Preprocessor p(o);
    std::vector<float> input(p.input_size());
    Rgb8 rgb;
    SourceInfo info;
    p.run(bytes, "fuzz", input.data(), &rgb, &info);
  } catch (const clip::Error&) {
  }
  return 0;
}
