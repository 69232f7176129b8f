// Decoding an example's image, whichever way the data set holds it.
#include "clip/data.h"
#include "clip/error.h"

namespace clip::data {

image::Image decode_example_image(const Example& example, const image::DecodeOptions& options) {
  if (!example.ok()) throw Error(example.source + ": bad record: " + example.error);
  try {
    if (example.pixels.width > 0) return example.pixels;
    if (!example.image_bytes.empty()) return image::decode(example.image_bytes, example.source, options);
    if (!example.image_path.empty()) return image::decode_file(example.image_path, options);
  } catch (const Error& e) {
    // The decoder names the file or the bytes' name; say which record it was when that differs.
    const std::string what = e.what();
    if (what.find(example.source) != std::string::npos) throw;
    throw Error(example.source + ": " + what);
  }
  throw Error(example.source + ": the example holds no image (no path, bytes or pixels)");
}

}  // namespace clip::data
