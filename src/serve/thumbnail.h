// Thumbnails of indexed images for the web page: decoded (EXIF orientation applied, for people),
// shrunk to fit a square, encoded as PNG.
#pragma once

#include <cstdint>
#include <string>

namespace clip::serve {

// PNG bytes of the encoded image at most `size` pixels on its longest side (smaller images keep
// their size). Throws clip::Error naming the image (`name`: its path) when it cannot be decoded.
std::string make_thumbnail(const std::string& encoded, const std::string& name, int size, int64_t max_pixels);

}  // namespace clip::serve
