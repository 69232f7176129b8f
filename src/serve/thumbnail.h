// Thumbnails of indexed images for the web page: decoded (EXIF orientation applied, for people),
// shrunk to fit a square, encoded as PNG.
#pragma once

#include <cstdint>
#include <string>

namespace clip::serve {

// PNG bytes of the file at most `size` pixels on its longest side (smaller images keep their
// size). Throws clip::Error naming the file when it cannot be read or decoded.
std::string make_thumbnail(const std::string& path, int size, int64_t max_pixels);

}  // namespace clip::serve
