// JPEG through libjpeg(-turbo)'s own API, set up as Pillow's JpegDecode.c sets it up (library
// defaults: ISLOW IDCT, fancy upsampling; out_color_space GRAYSCALE / RGB / CMYK from the number
// of components; CMYK inverted like Pillow's "CMYK;I" raw mode).
//
// libjpeg reports errors through longjmp. Every method that calls into libjpeg sets its own
// jump point and holds no C++ objects that need destruction between setjmp and the libjpeg
// call; after a jump it throws clip::Error.
#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <vector>

#include <jerror.h>
#include <jpeglib.h>

#include "image/decoders.h"

namespace clip::image::detail {

namespace {

struct ErrorManager {
  jpeg_error_mgr pub;  // first: libjpeg casts cinfo->err to this
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
  int eof_warnings;  // "Premature end of JPEG file": the data ran out
};

void on_error_exit(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<ErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

void on_emit_message(j_common_ptr cinfo, int level) {
  auto* err = reinterpret_cast<ErrorManager*>(cinfo->err);
  if (level < 0) {
    if (cinfo->err->msg_code == JWRN_JPEG_EOF) ++err->eof_warnings;
    ++cinfo->err->num_warnings;
  }
}

void on_output_message(j_common_ptr) {}

}  // namespace

struct JpegReader::Impl {
  jpeg_decompress_struct cinfo;
  ErrorManager err;
  bool created = false;
  bool started = false;
  std::string name;
  DecodeOptions options;
  std::string_view bytes;
  Mode mode = Mode::kRGB;
  int channels = 3;
  int orientation = 0;
  std::vector<JSAMPROW> rows;
  std::vector<uint8_t> scratch;

  [[noreturn]] void fail_from_libjpeg() {
    if (err.eof_warnings > 0) fail(name, std::string("truncated JPEG: the data ends early (") + err.message + ")");
    fail(name, std::string("corrupt JPEG: ") + err.message);
  }
  // Called after each step that decodes rows: running out of data before the last row is
  // Pillow's "image file is truncated".
  void check_truncated() {
    if (err.eof_warnings > 0 && !options.allow_truncated)
      fail(name,
           "truncated JPEG: the data ends before the last row (Premature end of JPEG file); "
           "expected a complete image (allow_truncated / --allow-truncated accepts it)");
  }
};

JpegReader::JpegReader(std::string_view bytes, const std::string& name, const DecodeOptions& options)
    : impl_(std::make_unique<Impl>()) {
  Impl& s = *impl_;
  s.name = name;
  s.options = options;
  s.bytes = bytes;
  s.cinfo.err = jpeg_std_error(&s.err.pub);
  s.err.pub.error_exit = on_error_exit;
  s.err.pub.emit_message = on_emit_message;
  s.err.pub.output_message = on_output_message;
  s.err.eof_warnings = 0;
  s.err.message[0] = 0;
  if (setjmp(s.err.jump)) {
    if (s.created) jpeg_destroy_decompress(&s.cinfo);
    s.created = false;
    s.fail_from_libjpeg();
  }
  jpeg_create_decompress(&s.cinfo);
  s.created = true;
  jpeg_mem_src(&s.cinfo, reinterpret_cast<const unsigned char*>(bytes.data()),
               static_cast<unsigned long>(bytes.size()));
  if (options.exif_transpose) jpeg_save_markers(&s.cinfo, JPEG_APP0 + 1, 0xFFFF);
  int rc;
  do {
    rc = jpeg_read_header(&s.cinfo, FALSE);
  } while (rc == JPEG_HEADER_TABLES_ONLY);
  if (rc != JPEG_HEADER_OK) {
    jpeg_destroy_decompress(&s.cinfo);
    s.created = false;
    fail(name, "JPEG has no image (only tables, or the data ends in the headers)");
  }
  const int comps = s.cinfo.num_components;
  if (comps == 1) {
    s.mode = Mode::kL;
    s.cinfo.out_color_space = JCS_GRAYSCALE;
  } else if (comps == 3) {
    s.mode = Mode::kRGB;
    s.cinfo.out_color_space = JCS_RGB;
  } else if (comps == 4) {
    s.mode = Mode::kCMYK;
    s.cinfo.out_color_space = JCS_CMYK;
  } else {
    jpeg_destroy_decompress(&s.cinfo);
    s.created = false;
    fail(name, "JPEG with " + std::to_string(comps) + " components; expected 1 (grey), 3 (colour) or 4 (CMYK)");
  }
  s.channels = comps;
  s.cinfo.dct_method = JDCT_ISLOW;
  s.cinfo.do_fancy_upsampling = TRUE;
  if (options.exif_transpose) {
    for (jpeg_saved_marker_ptr m = s.cinfo.marker_list; m; m = m->next) {
      if (m->marker == JPEG_APP0 + 1 && m->data_length >= 6 && std::memcmp(m->data, "Exif\0\0", 6) == 0) {
        s.orientation = detail::exif_orientation(m->data, m->data_length);
        break;
      }
    }
  }
  // Pillow checks the size when it opens the file, before any pixel is decoded.
  try {
    check_dimensions(name, "JPEG", s.cinfo.image_width, s.cinfo.image_height, options);
  } catch (...) {
    jpeg_destroy_decompress(&s.cinfo);
    s.created = false;
    throw;
  }
}

JpegReader::~JpegReader() {
  if (impl_ && impl_->created) jpeg_destroy_decompress(&impl_->cinfo);
}

int JpegReader::width() const { return static_cast<int>(impl_->cinfo.image_width); }
int JpegReader::height() const { return static_cast<int>(impl_->cinfo.image_height); }
Mode JpegReader::mode() const { return impl_->mode; }
int JpegReader::channels() const { return impl_->channels; }
int JpegReader::exif_orientation() const { return impl_->orientation; }
int JpegReader::output_width() const { return static_cast<int>(impl_->cinfo.output_width); }
int JpegReader::output_height() const { return static_cast<int>(impl_->cinfo.output_height); }

void JpegReader::start(int scale_num) {
  Impl& s = *impl_;
  if (scale_num < 1 || scale_num > 8) fail(s.name, "JPEG scale must be 1/8 .. 8/8");
  s.cinfo.scale_num = static_cast<unsigned>(scale_num);
  s.cinfo.scale_denom = 8;
  if (setjmp(s.err.jump)) s.fail_from_libjpeg();
  jpeg_start_decompress(&s.cinfo);  // a progressive file is read whole here
  s.started = true;
  s.check_truncated();
}

void JpegReader::crop_columns(int& x0, int& w) {
  Impl& s = *impl_;
  JDIMENSION xoff = static_cast<JDIMENSION>(x0), width = static_cast<JDIMENSION>(w);
  if (setjmp(s.err.jump)) s.fail_from_libjpeg();
  jpeg_crop_scanline(&s.cinfo, &xoff, &width);
  x0 = static_cast<int>(xoff);
  w = static_cast<int>(width);
}

void JpegReader::skip_rows(int n) {
  Impl& s = *impl_;
  if (n <= 0) return;
  if (setjmp(s.err.jump)) s.fail_from_libjpeg();
  jpeg_skip_scanlines(&s.cinfo, static_cast<JDIMENSION>(n));
  s.check_truncated();
}

void JpegReader::read_rows(uint8_t* dst, size_t stride, int n) {
  Impl& s = *impl_;
  if (n <= 0) return;
  s.rows.resize(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) s.rows[i] = dst + static_cast<size_t>(i) * stride;
  if (setjmp(s.err.jump)) s.fail_from_libjpeg();
  int done = 0;
  while (done < n) {
    const JDIMENSION got = jpeg_read_scanlines(&s.cinfo, s.rows.data() + done, static_cast<JDIMENSION>(n - done));
    if (got == 0) break;
    done += static_cast<int>(got);
  }
  s.check_truncated();
  if (done < n) fail(s.name, "JPEG: the decoder returned fewer rows than the image has");
  if (s.mode == Mode::kCMYK) {
    const size_t rb = static_cast<size_t>(s.cinfo.output_width) * 4;
    for (int i = 0; i < n; ++i) {
      uint8_t* p = dst + static_cast<size_t>(i) * stride;
      for (size_t x = 0; x < rb; ++x) p[x] = static_cast<uint8_t>(255 - p[x]);
    }
  }
}

void JpegReader::finish() {
  Impl& s = *impl_;
  const int left = static_cast<int>(s.cinfo.output_height) - static_cast<int>(s.cinfo.output_scanline);
  // Skipping to the very end would not decode the rest; skip all but one row, then read it, so
  // the entropy data is consumed as a full decode consumes it.
  if (left > 1) skip_rows(left - 1);
  if (left > 0) {
    s.scratch.resize(static_cast<size_t>(s.cinfo.output_width) * s.channels + 64);
    read_rows(s.scratch.data(), 0, 1);
  }
  if (setjmp(s.err.jump)) s.fail_from_libjpeg();
  jpeg_finish_decompress(&s.cinfo);  // running out of data while looking for EOI is fine (Pillow)
}

Image decode_jpeg(std::string_view bytes, const std::string& name, const DecodeOptions& options) {
  JpegReader r(bytes, name, options);
  r.start(8);
  Image img = new_image(r.mode(), r.output_width(), r.output_height(), Format::kJpeg);
  img.exif_orientation = r.exif_orientation();
  const size_t rb = img.row_bytes();
  int y = 0;
  while (y < img.height) {
    const int n = std::min(16, img.height - y);
    r.read_rows(img.pixels.data() + static_cast<size_t>(y) * rb, rb, n);
    y += n;
  }
  r.finish();
  return img;
}

}  // namespace clip::image::detail
