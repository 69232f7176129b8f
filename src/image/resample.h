// Pillow's resampling (libImaging/Resample.c, Geometry.c) re-implemented: the same coefficients,
// fixed-point rounding and pass order, so results are bit-identical. Only the output region a
// caller asks for is computed (each output pixel depends only on its own coefficients, so a
// region of the full resize is exactly the full resize cropped).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "clip/image.h"

namespace clip::image::detail {

// Which inner loops run: portable C++, AVX2 or AVX-512 (kAuto: the best the CPU has, at run
// time). All give the same bytes.
enum class Kernel { kAuto, kScalar, kAvx2, kAvx512 };
bool cpu_has_avx512();
bool cpu_has_avx2();
Kernel resolve_kernel(Kernel k);

// Pillow's bicubic (a = -0.5) or bilinear (triangle) coefficients for one axis of a resize in_size → out_size, for the
// outputs [out_begin, out_end) only.
struct AxisCoeffs {
  int in_size = 0, out_size = 0;
  int out_begin = 0, out_end = 0;
  int ksize = 0;                   // Pillow's coefficient stride: 2·ceil(support) + 1
  std::vector<int> first;          // per computed output: first input index (Pillow's xmin)
  std::vector<int> count;          // per computed output: number of taps (Pillow's xmax)
  std::vector<double> weight;      // per output, ksize normalised weights (the I-mode path)
  std::vector<int32_t> fixed;      // per output, ksize weights in Pillow's 22-bit fixed point
  int src_begin = 0, src_end = 0;  // the input range all computed outputs read

  int outputs() const { return out_end - out_begin; }
};
AxisCoeffs make_axis(int in_size, int out_size, int out_begin, int out_end, Filter filter = Filter::kBicubic);
// The same into `a`, reusing its buffers.
void make_axis(int in_size, int out_size, int out_begin, int out_end, AxisCoeffs& a, Filter filter = Filter::kBicubic);

// Pillow's nearest-neighbour source index for every output (ImagingScaleAffine's accumulated
// coordinates), for a resize in_size → out_size.
std::vector<int> nearest_table(int in_size, int out_size);

// Pillow's 8-bit two-pass resize (horizontal pass first, rounded and clipped to 8 bits, then the
// vertical pass), of an image with `channels` interleaved 8-bit channels, computing only the
// output region [ox, ox+ow) × [oy, oy+oh) of the in_w×in_h → out_w×out_h resize.
// Input rows are pushed one at a time (from a decoder or from memory), in order, for every row
// in [row_begin(), row_end()); each pushed row holds the input columns [window_begin,
// window_end), which must cover [col_begin(), col_end()).
class Resampler8 {
 public:
  Resampler8() = default;
  Resampler8(int in_w, int in_h, int out_w, int out_h, int ox, int oy, int ow, int oh, int channels,
             Kernel kernel = Kernel::kAuto, Filter filter = Filter::kBicubic);
  // Sets up a new resize, keeping the buffers of the previous one (no allocation when they are
  // large enough): a Resampler8 kept by a worker thread resizes image after image.
  void configure(int in_w, int in_h, int out_w, int out_h, int ox, int oy, int ow, int oh, int channels,
                 Kernel kernel = Kernel::kAuto, Filter filter = Filter::kBicubic);

  int row_begin() const { return row_begin_; }
  int row_end() const { return row_end_; }
  int col_begin() const { return col_begin_; }
  int col_end() const { return col_end_; }

  void set_window(int window_begin, int window_end);
  void push_row(int y, const uint8_t* row);
  // `count` consecutive rows starting at row y, `stride` bytes apart (rows outside the needed
  // range are ignored).
  void push_rows(int y, const uint8_t* rows, size_t stride, int count);
  // Writes oh rows of ow·channels bytes, `stride` bytes apart.
  void finish(uint8_t* out, size_t stride);

 private:
  int in_w_ = 0, in_h_ = 0, ow_ = 0, oh_ = 0, ox_ = 0, oy_ = 0, channels_ = 1;
  bool need_h_ = false, need_v_ = false;
  Kernel kernel_ = Kernel::kScalar;
  AxisCoeffs h_, v_;
  int row_begin_ = 0, row_end_ = 0, col_begin_ = 0, col_end_ = 0;
  int window_begin_ = 0, window_end_ = 0;
  // Horizontal kernel layout for the current window: per output, a start column (window
  // relative) and kpad_ taps (a multiple of the P = V / channels pixels a vector of V lanes
  // holds), stored as groups_ = kpad_ / P groups of V lane weights (each tap's weight repeated per
  // channel, zero outside Pillow's taps and in unused lanes).
  int kpad_ = 0, groups_ = 0;
  bool packed_ok_ = false;
  std::vector<int> pstart_;
  std::vector<int32_t> packed_;
  std::vector<uint8_t> tmp_;  // (row_end − row_begin) rows of ow·channels bytes
  std::vector<int32_t> acc_;  // the portable vertical pass's sums
};

// Pillow's Image.resize(BICUBIC or BILINEAR) for any mode, region-only (see above). Returns an
// ow×oh image in the same mode (P keeps its palette).
Image resize_region(const Image& src, int out_w, int out_h, int ox, int oy, int ow, int oh,
                    Kernel kernel = Kernel::kAuto, Filter filter = Filter::kBicubic);

// The reference's Resize(size) + CenterCrop(size) of a decoded image, in its mode: a crop when
// the size is already right, else the region of the resize.
Image resize_region_or_crop(const Image& image, int size);

// Pillow's premultiply (RGBA→RGBa, LA→La) and its inverse, in place, on `pixels` pixels whose
// alpha is the last of `channels` bytes.
void premultiply(uint8_t* data, size_t pixels, int channels);
void unpremultiply(uint8_t* data, size_t pixels, int channels);

}  // namespace clip::image::detail
