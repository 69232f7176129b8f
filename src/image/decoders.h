// Internal decoder interfaces. Every decoder reproduces what Pillow 9.4 opens the file as: its
// mode, its pixels, and the files it refuses. Errors are clip::Error naming the file.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "clip/error.h"
#include "clip/image.h"

namespace clip::image::detail {

[[noreturn]] void fail(const std::string& name, const std::string& what, ErrorKind kind = ErrorKind::kInvalidInput);
// Refuses non-positive sizes and images over options.max_pixels (before any allocation).
void check_dimensions(const std::string& name, const char* format, int64_t width, int64_t height,
                      const DecodeOptions& options);
// An image of the given mode and size with zeroed pixels (dimensions already checked).
Image new_image(Mode mode, int width, int height, Format format);
// A 768-byte palette: the first n entries from `rgb` (3 bytes each, or 4 with `stride` 4 in BGRX
// order when bgr is set), the rest Pillow's default ramp (i, i, i).
std::vector<uint8_t> make_palette(const uint8_t* entries, int n, int stride, bool bgr);

// Pillow's convert("RGB") into `out`, reusing its buffer.
void to_rgb_into(const Image& image, Rgb8& out);

// The Orientation tag (1..8) of an EXIF block (optionally starting with "Exif\0\0"), or 0.
int exif_orientation(const uint8_t* data, size_t size);

Image decode_png(std::string_view bytes, const std::string& name, const DecodeOptions& options);
Image decode_webp(std::string_view bytes, const std::string& name, const DecodeOptions& options);
Image decode_gif(std::string_view bytes, const std::string& name, const DecodeOptions& options);
Image decode_bmp(std::string_view bytes, const std::string& name, const DecodeOptions& options);
Image decode_jpeg(std::string_view bytes, const std::string& name, const DecodeOptions& options);

// libjpeg(-turbo) with Pillow's settings (ISLOW IDCT, fancy upsampling, CMYK read inverted),
// exposed row by row so the preprocessing can decode only the rows and columns it needs and
// resize them as they arrive. A JPEG whose data ends before the last row is an error unless
// options.allow_truncated; libjpeg's corrupt-data warnings are ignored, as in Pillow.
class JpegReader {
 public:
  JpegReader(std::string_view bytes, const std::string& name, const DecodeOptions& options);
  ~JpegReader();
  JpegReader(const JpegReader&) = delete;
  JpegReader& operator=(const JpegReader&) = delete;

  int width() const;  // from the frame header
  int height() const;
  Mode mode() const;  // L, RGB or CMYK
  int channels() const;
  int exif_orientation() const;  // 0 unless options.exif_transpose asked for it

  // Starts decompression at DCT scale scale_num/8 (8: full size).
  void start(int scale_num = 8);
  int output_width() const;
  int output_height() const;
  // Restricts the decoded columns to at least [x0, x0+w); returns the actual window (libjpeg
  // widens it to whole iMCU columns).
  void crop_columns(int& x0, int& w);
  void skip_rows(int n);
  // Reads n rows of output_width()·channels() bytes (after any crop), `stride` bytes apart.
  void read_rows(uint8_t* dst, size_t stride, int n);
  // Consumes the rest of the image (so a truncated file is noticed as Pillow notices it) and
  // finishes the decompression.
  void finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace clip::image::detail
