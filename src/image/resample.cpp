#include "image/resample.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "clip/error.h"

#if defined(__x86_64__) || defined(__i386__)
// GCC 12's AVX-512 headers trip -Wmaybe-uninitialized on their own _mm512_undefined_*() (GCC
// bug 105593, fixed in GCC 13); the warning is about the header, not this code.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#define CLIP_IMAGE_X86 1
#endif

namespace clip::image::detail {
namespace {

// Pillow: "8 bits for result. Filter can have negative areas ... two extra bits for overflow".
constexpr int kPrecisionBits = 32 - 8 - 2;
constexpr int32_t kHalf = 1 << (kPrecisionBits - 1);

// Pillow's bicubic kernel with a = -0.5, evaluated in the same order.
inline double bicubic(double x) {
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((-0.5 + 2.0) * x - (-0.5 + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * -0.5;
  return 0.0;
}

// Pillow's bilinear (triangle) kernel, support 1.
inline double bilinear(double x) {
  if (x < 0.0) x = -x;
  if (x < 1.0) return 1.0 - x;
  return 0.0;
}

// Pillow's clip8: the sum already holds the rounding half.
inline uint8_t clip8(int32_t v) {
  if (v >= (256 << kPrecisionBits)) return 255;
  if (v <= 0) return 0;
  return static_cast<uint8_t>(v >> kPrecisionBits);
}

// Pillow's ROUND_UP for the 32-bit integer path.
inline int32_t round_up(double f) { return static_cast<int32_t>(f >= 0.0 ? f + 0.5F : f - 0.5F); }

// ---- portable kernels --------------------------------------------------------------------------

template <int C>
void hpass_scalar(const uint8_t* row, uint8_t* dst, const AxisCoeffs& a, int window_begin) {
  const int n_out = a.outputs();
  for (int o = 0; o < n_out; ++o) {
    const uint8_t* s = row + static_cast<size_t>(a.first[o] - window_begin) * C;
    const int32_t* k = &a.fixed[static_cast<size_t>(o) * a.ksize];
    const int n = a.count[o];
    int32_t acc[C];
    for (int c = 0; c < C; ++c) acc[c] = kHalf;
    for (int t = 0; t < n; ++t) {
      const int32_t w = k[t];
      for (int c = 0; c < C; ++c) acc[c] += static_cast<int32_t>(s[t * C + c]) * w;
    }
    for (int c = 0; c < C; ++c) dst[o * C + c] = clip8(acc[c]);
  }
}

void hpass_scalar_any(int channels, const uint8_t* row, uint8_t* dst, const AxisCoeffs& a, int window_begin) {
  switch (channels) {
    case 1: return hpass_scalar<1>(row, dst, a, window_begin);
    case 2: return hpass_scalar<2>(row, dst, a, window_begin);
    case 3: return hpass_scalar<3>(row, dst, a, window_begin);
    case 4: return hpass_scalar<4>(row, dst, a, window_begin);
  }
}

void vpass_scalar(const uint8_t* tmp, size_t tmp_stride, int tmp_row0, size_t width_bytes, const AxisCoeffs& a,
                  uint8_t* out, size_t stride, std::vector<int32_t>& acc) {
  acc.resize(width_bytes);
  for (int o = 0; o < a.outputs(); ++o) {
    const int32_t* k = &a.fixed[static_cast<size_t>(o) * a.ksize];
    const int f = a.first[o] - tmp_row0;
    std::fill(acc.begin(), acc.end(), kHalf);
    for (int t = 0; t < a.count[o]; ++t) {
      const uint8_t* s = tmp + static_cast<size_t>(f + t) * tmp_stride;
      const int32_t w = k[t];
      for (size_t x = 0; x < width_bytes; ++x) acc[x] += static_cast<int32_t>(s[x]) * w;
    }
    uint8_t* d = out + static_cast<size_t>(o) * stride;
    for (size_t x = 0; x < width_bytes; ++x) d[x] = clip8(acc[x]);
  }
}

// ---- AVX-512 kernels ---------------------------------------------------------------------------
// Integer arithmetic, so any summation order gives Pillow's exact sums.
#ifdef CLIP_IMAGE_X86
#define CLIP_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))

// One output pixel of R rows per step: a vector holds P = 16 / C whole pixels (C·P lanes),
// multiplied by the P weights each repeated C times (pre-expanded, zero in unused lanes; loaded
// once for the R rows), accumulated over the padded taps; then lane shifts sum the lanes of each
// channel into lanes 0 .. C−1.
template <int C>
CLIP_AVX512 inline __m512i reduce_channels(__m512i acc, __m512i zero) {
  if constexpr (C == 3) {  // lanes 3j + c, j < 5
    const __m512i a = _mm512_add_epi32(acc, _mm512_alignr_epi32(zero, acc, 3));
    const __m512i b = _mm512_add_epi32(a, _mm512_alignr_epi32(zero, a, 6));
    return _mm512_add_epi32(b, _mm512_alignr_epi32(zero, acc, 12));
  } else {
    acc = _mm512_add_epi32(acc, _mm512_alignr_epi32(zero, acc, 8));
    if constexpr (C <= 4) acc = _mm512_add_epi32(acc, _mm512_alignr_epi32(zero, acc, 4));
    if constexpr (C <= 2) acc = _mm512_add_epi32(acc, _mm512_alignr_epi32(zero, acc, 2));
    if constexpr (C <= 1) acc = _mm512_add_epi32(acc, _mm512_alignr_epi32(zero, acc, 1));
    return acc;
  }
}

template <int C, int R>
CLIP_AVX512 void hpass_avx512(const uint8_t* const* rows, uint8_t* const* dst, int n_out, const int* start,
                              const int32_t* lanes, int groups) {
  constexpr int P = 16 / C;
  constexpr int L = P * C;
  const __mmask16 lane_mask = static_cast<__mmask16>((1u << L) - 1);
  const __mmask16 out_mask = static_cast<__mmask16>((1u << C) - 1);
  const __m512i zero = _mm512_setzero_si512();
  const __m512i half = _mm512_set1_epi32(kHalf);
  for (int o = 0; o < n_out; ++o) {
    const size_t off = static_cast<size_t>(start[o]) * C;
    const int32_t* k = lanes + static_cast<size_t>(o) * groups * 16;
    __m512i acc[R];
    for (int r = 0; r < R; ++r) acc[r] = zero;
    for (int g = 0; g < groups; ++g) {
      const __m512i kv = _mm512_loadu_si512(k + 16 * g);
      for (int r = 0; r < R; ++r) {
        const __m512i px = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(lane_mask, rows[r] + off + g * L));
        acc[r] = _mm512_add_epi32(acc[r], _mm512_mullo_epi32(px, kv));
      }
    }
    for (int r = 0; r < R; ++r) {
      __m512i v = _mm512_add_epi32(reduce_channels<C>(acc[r], zero), half);
      v = _mm512_max_epi32(_mm512_srai_epi32(v, kPrecisionBits), zero);
      _mm_mask_storeu_epi8(dst[r] + o * C, out_mask, _mm512_cvtusepi32_epi8(v));
    }
  }
}

template <int C>
CLIP_AVX512 void hpass_avx512_rows(const uint8_t* const* rows, uint8_t* const* dst, int n_rows, int n_out,
                                   const int* start, const int32_t* lanes, int groups) {
  int r = 0;
  for (; r + 4 <= n_rows; r += 4) hpass_avx512<C, 4>(rows + r, dst + r, n_out, start, lanes, groups);
  for (; r < n_rows; ++r) hpass_avx512<C, 1>(rows + r, dst + r, n_out, start, lanes, groups);
}

CLIP_AVX512 void hpass_avx512_any(int channels, const uint8_t* const* rows, uint8_t* const* dst, int n_rows, int n_out,
                                  const int* start, const int32_t* lanes, int groups) {
  switch (channels) {
    case 1: return hpass_avx512_rows<1>(rows, dst, n_rows, n_out, start, lanes, groups);
    case 2: return hpass_avx512_rows<2>(rows, dst, n_rows, n_out, start, lanes, groups);
    case 3: return hpass_avx512_rows<3>(rows, dst, n_rows, n_out, start, lanes, groups);
    case 4: return hpass_avx512_rows<4>(rows, dst, n_rows, n_out, start, lanes, groups);
  }
}

CLIP_AVX512 inline __m512i load16_u8(const uint8_t* p, __mmask16 m) {
  return _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, p));
}

CLIP_AVX512 inline void store16_clip8(uint8_t* p, __m512i acc, __mmask16 m) {
  const __m512i v = _mm512_max_epi32(_mm512_srai_epi32(acc, kPrecisionBits), _mm512_setzero_si512());
  _mm512_mask_cvtusepi32_storeu_epi8(p, m, v);
}

CLIP_AVX512 void vpass_avx512(const uint8_t* tmp, size_t tmp_stride, int tmp_row0, size_t width_bytes,
                              const AxisCoeffs& a, uint8_t* out, size_t stride) {
  const __m512i half = _mm512_set1_epi32(kHalf);
  for (int o = 0; o < a.outputs(); ++o) {
    const int32_t* k = &a.fixed[static_cast<size_t>(o) * a.ksize];
    const int f = a.first[o] - tmp_row0;
    const int n = a.count[o];
    const uint8_t* base = tmp + static_cast<size_t>(f) * tmp_stride;
    uint8_t* d = out + static_cast<size_t>(o) * stride;
    size_t x = 0;
    for (; x + 64 <= width_bytes; x += 64) {
      __m512i a0 = half, a1 = half, a2 = half, a3 = half;
      const uint8_t* s = base + x;
      for (int t = 0; t < n; ++t, s += tmp_stride) {
        const __m512i w = _mm512_set1_epi32(k[t]);
        a0 = _mm512_add_epi32(a0, _mm512_mullo_epi32(load16_u8(s, 0xFFFF), w));
        a1 = _mm512_add_epi32(a1, _mm512_mullo_epi32(load16_u8(s + 16, 0xFFFF), w));
        a2 = _mm512_add_epi32(a2, _mm512_mullo_epi32(load16_u8(s + 32, 0xFFFF), w));
        a3 = _mm512_add_epi32(a3, _mm512_mullo_epi32(load16_u8(s + 48, 0xFFFF), w));
      }
      store16_clip8(d + x, a0, 0xFFFF);
      store16_clip8(d + x + 16, a1, 0xFFFF);
      store16_clip8(d + x + 32, a2, 0xFFFF);
      store16_clip8(d + x + 48, a3, 0xFFFF);
    }
    for (; x < width_bytes; x += 16) {
      const size_t left = width_bytes - x;
      const __mmask16 m = left >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << left) - 1);
      __m512i acc = half;
      const uint8_t* s = base + x;
      for (int t = 0; t < n; ++t, s += tmp_stride)
        acc = _mm512_add_epi32(acc, _mm512_mullo_epi32(load16_u8(s, m), _mm512_set1_epi32(k[t])));
      store16_clip8(d + x, acc, m);
    }
  }
}

// ---- AVX2 kernels: the same scheme with 8 lanes --------------------------------------------
#define CLIP_AVX2 __attribute__((target("avx2")))

template <int C>
CLIP_AVX2 inline __m256i reduce_channels_avx2(__m256i acc) {
  if constexpr (C == 3) {  // lanes 0..5 = R G B R G B
    const __m256i shift3 = _mm256_setr_epi32(3, 4, 5, 7, 7, 7, 7, 7);
    return _mm256_add_epi32(acc, _mm256_permutevar8x32_epi32(acc, shift3));
  } else {
    __m128i v = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    if constexpr (C <= 2) v = _mm_add_epi32(v, _mm_shuffle_epi32(v, _MM_SHUFFLE(1, 0, 3, 2)));
    if constexpr (C <= 1) v = _mm_add_epi32(v, _mm_shuffle_epi32(v, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm256_castsi128_si256(v);
  }
}

// Lanes 0 .. C−1 of acc (sums without the rounding half) → C clipped bytes at dst.
template <int C>
CLIP_AVX2 inline void store_channels_avx2(uint8_t* dst, __m256i acc) {
  __m128i v = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm_set1_epi32(kHalf));
  v = _mm_max_epi32(_mm_srai_epi32(v, kPrecisionBits), _mm_setzero_si128());
  v = _mm_packus_epi16(_mm_packus_epi32(v, v), v);  // saturates at 255
  const uint32_t bytes = static_cast<uint32_t>(_mm_cvtsi128_si32(v));
  std::memcpy(dst, &bytes, C);
}

// P = 8 / C whole pixels a vector. For C = 3 a group is 6 bytes: an 8-byte load except for the
// last group, which loads exactly its 6 (it may end at the end of the row).
template <int C>
CLIP_AVX2 inline __m256i load_group_avx2(const uint8_t* p, bool last) {
  if constexpr (C == 3) {
    if (last) {
      uint32_t lo;
      uint16_t hi;
      std::memcpy(&lo, p, 4);
      std::memcpy(&hi, p + 4, 2);
      return _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<long long>(lo | (static_cast<uint64_t>(hi) << 32))));
    }
  }
  (void)last;
  return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
}

template <int C, int R>
CLIP_AVX2 void hpass_avx2(const uint8_t* const* rows, uint8_t* const* dst, int n_out, const int* start,
                          const int32_t* lanes, int groups) {
  constexpr int P = 8 / C;
  constexpr int L = P * C;
  for (int o = 0; o < n_out; ++o) {
    const size_t off = static_cast<size_t>(start[o]) * C;
    const int32_t* k = lanes + static_cast<size_t>(o) * groups * 8;
    __m256i acc[R];
    for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_si256();
    for (int g = 0; g < groups; ++g) {
      const __m256i kv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(k + 8 * g));
      const bool last = g == groups - 1;
      for (int r = 0; r < R; ++r)
        acc[r] = _mm256_add_epi32(acc[r], _mm256_mullo_epi32(load_group_avx2<C>(rows[r] + off + g * L, last), kv));
    }
    for (int r = 0; r < R; ++r) store_channels_avx2<C>(dst[r] + o * C, reduce_channels_avx2<C>(acc[r]));
  }
}

template <int C>
CLIP_AVX2 void hpass_avx2_rows(const uint8_t* const* rows, uint8_t* const* dst, int n_rows, int n_out, const int* start,
                               const int32_t* lanes, int groups) {
  int r = 0;
  for (; r + 4 <= n_rows; r += 4) hpass_avx2<C, 4>(rows + r, dst + r, n_out, start, lanes, groups);
  for (; r < n_rows; ++r) hpass_avx2<C, 1>(rows + r, dst + r, n_out, start, lanes, groups);
}

CLIP_AVX2 void hpass_avx2_any(int channels, const uint8_t* const* rows, uint8_t* const* dst, int n_rows, int n_out,
                              const int* start, const int32_t* lanes, int groups) {
  switch (channels) {
    case 1: return hpass_avx2_rows<1>(rows, dst, n_rows, n_out, start, lanes, groups);
    case 2: return hpass_avx2_rows<2>(rows, dst, n_rows, n_out, start, lanes, groups);
    case 3: return hpass_avx2_rows<3>(rows, dst, n_rows, n_out, start, lanes, groups);
    case 4: return hpass_avx2_rows<4>(rows, dst, n_rows, n_out, start, lanes, groups);
  }
}

CLIP_AVX2 inline __m256i load8_u8(const uint8_t* p) {
  return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
}

CLIP_AVX2 inline void store8_clip8(uint8_t* p, __m256i acc) {
  __m256i v = _mm256_max_epi32(_mm256_srai_epi32(acc, kPrecisionBits), _mm256_setzero_si256());
  const __m128i lo = _mm256_castsi256_si128(v), hi = _mm256_extracti128_si256(v, 1);
  const __m128i b = _mm_packus_epi16(_mm_packus_epi32(lo, hi), _mm_setzero_si128());
  _mm_storel_epi64(reinterpret_cast<__m128i*>(p), b);
}

CLIP_AVX2 void vpass_avx2(const uint8_t* tmp, size_t tmp_stride, int tmp_row0, size_t width_bytes, const AxisCoeffs& a,
                          uint8_t* out, size_t stride) {
  const __m256i half = _mm256_set1_epi32(kHalf);
  for (int o = 0; o < a.outputs(); ++o) {
    const int32_t* k = &a.fixed[static_cast<size_t>(o) * a.ksize];
    const int n = a.count[o];
    const uint8_t* base = tmp + static_cast<size_t>(a.first[o] - tmp_row0) * tmp_stride;
    uint8_t* d = out + static_cast<size_t>(o) * stride;
    size_t x = 0;
    for (; x + 32 <= width_bytes; x += 32) {
      __m256i a0 = half, a1 = half, a2 = half, a3 = half;
      const uint8_t* s = base + x;
      for (int t = 0; t < n; ++t, s += tmp_stride) {
        const __m256i w = _mm256_set1_epi32(k[t]);
        a0 = _mm256_add_epi32(a0, _mm256_mullo_epi32(load8_u8(s), w));
        a1 = _mm256_add_epi32(a1, _mm256_mullo_epi32(load8_u8(s + 8), w));
        a2 = _mm256_add_epi32(a2, _mm256_mullo_epi32(load8_u8(s + 16), w));
        a3 = _mm256_add_epi32(a3, _mm256_mullo_epi32(load8_u8(s + 24), w));
      }
      store8_clip8(d + x, a0);
      store8_clip8(d + x + 8, a1);
      store8_clip8(d + x + 16, a2);
      store8_clip8(d + x + 24, a3);
    }
    for (; x + 8 <= width_bytes; x += 8) {
      __m256i acc = half;
      const uint8_t* s = base + x;
      for (int t = 0; t < n; ++t, s += tmp_stride)
        acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(load8_u8(s), _mm256_set1_epi32(k[t])));
      store8_clip8(d + x, acc);
    }
    for (; x < width_bytes; ++x) {  // the last few bytes
      int32_t acc = kHalf;
      for (int t = 0; t < n; ++t) acc += static_cast<int32_t>(base[static_cast<size_t>(t) * tmp_stride + x]) * k[t];
      d[x] = clip8(acc);
    }
  }
}
#endif  // CLIP_IMAGE_X86

}  // namespace

bool cpu_has_avx512() {
#ifdef CLIP_IMAGE_X86
  // libgcc/compiler-rt initialise the CPU model before main; no __builtin_cpu_init needed here.
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
#else
  return false;
#endif
}

bool cpu_has_avx2() {
#ifdef CLIP_IMAGE_X86
  return __builtin_cpu_supports("avx2");
#else
  return false;
#endif
}

Kernel resolve_kernel(Kernel k) {
  if (k == Kernel::kAuto) return cpu_has_avx512() ? Kernel::kAvx512 : cpu_has_avx2() ? Kernel::kAvx2 : Kernel::kScalar;
  if (k == Kernel::kAvx512 && !cpu_has_avx512())
    throw Error("image resize: the AVX-512 kernel was requested but this CPU lacks AVX-512");
  if (k == Kernel::kAvx2 && !cpu_has_avx2())
    throw Error("image resize: the AVX2 kernel was requested but this CPU lacks AVX2");
  return k;
}

void make_axis(int in_size, int out_size, int out_begin, int out_end, AxisCoeffs& a, Filter filter) {
  if (in_size <= 0 || out_size <= 0 || out_begin < 0 || out_end > out_size || out_begin >= out_end)
    throw Error("image resize: bad axis " + std::to_string(in_size) + " -> " + std::to_string(out_size) + " [" +
                std::to_string(out_begin) + ", " + std::to_string(out_end) + ")");
  a.in_size = in_size;
  a.out_size = out_size;
  a.out_begin = out_begin;
  a.out_end = out_end;
  // Pillow takes the box as floats: (in1 - in0) is a float difference, then a double division.
  const float in0 = 0.0f, in1 = static_cast<float>(in_size);
  const double scale = static_cast<double>(in1 - in0) / out_size;
  const double filterscale = scale < 1.0 ? 1.0 : scale;
  const bool cubic = filter == Filter::kBicubic;
  const double support = (cubic ? 2.0 : 1.0) * filterscale;
  a.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  const int n = out_end - out_begin;
  a.first.resize(n);
  a.count.resize(n);
  a.weight.assign(static_cast<size_t>(n) * a.ksize, 0.0);
  a.fixed.assign(static_cast<size_t>(n) * a.ksize, 0);
  a.src_begin = in_size;
  a.src_end = 0;
  for (int i = 0; i < n; ++i) {
    const int xx = out_begin + i;
    const double center = in0 + (xx + 0.5) * scale;
    double ww = 0.0;
    const double ss = 1.0 / filterscale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double* k = &a.weight[static_cast<size_t>(i) * a.ksize];
    for (int x = 0; x < xmax; ++x) {
      const double w = cubic ? bicubic((x + xmin - center + 0.5) * ss) : bilinear((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (int x = 0; x < xmax; ++x)
      if (ww != 0.0) k[x] /= ww;
    int32_t* q = &a.fixed[static_cast<size_t>(i) * a.ksize];
    for (int x = 0; x < a.ksize; ++x)
      q[x] = k[x] < 0 ? static_cast<int32_t>(-0.5 + k[x] * (1 << kPrecisionBits))
                      : static_cast<int32_t>(0.5 + k[x] * (1 << kPrecisionBits));
    a.first[i] = xmin;
    a.count[i] = std::max(xmax, 0);
    a.src_begin = std::min(a.src_begin, xmin);
    a.src_end = std::max(a.src_end, xmin + std::max(xmax, 0));
  }
  if (a.src_end <= a.src_begin) a.src_end = a.src_begin = 0;
}

AxisCoeffs make_axis(int in_size, int out_size, int out_begin, int out_end, Filter filter) {
  AxisCoeffs a;
  make_axis(in_size, out_size, out_begin, out_end, a, filter);
  return a;
}

std::vector<int> nearest_table(int in_size, int out_size) {
  std::vector<int> tab(out_size, -1);
  const float box0 = 0.0f, box1 = static_cast<float>(in_size);
  const double a0 = static_cast<double>(box1 - box0) / out_size;
  double xo = static_cast<double>(box0) + a0 * 0.5;
  for (int x = 0; x < out_size; ++x) {
    const int xin = xo < 0.0 ? -1 : static_cast<int>(xo);
    if (xin >= 0 && xin < in_size) tab[x] = xin;
    xo += a0;
  }
  return tab;
}

// ---- Resampler8 --------------------------------------------------------------------------------

Resampler8::Resampler8(int in_w, int in_h, int out_w, int out_h, int ox, int oy, int ow, int oh, int channels,
                       Kernel kernel, Filter filter) {
  configure(in_w, in_h, out_w, out_h, ox, oy, ow, oh, channels, kernel, filter);
}

void Resampler8::configure(int in_w, int in_h, int out_w, int out_h, int ox, int oy, int ow, int oh, int channels,
                           Kernel kernel, Filter filter) {
  if (channels < 1 || channels > 4) throw Error("image resize: unsupported channel count");
  if (in_w <= 0 || in_h <= 0 || ow <= 0 || oh <= 0 || ox < 0 || oy < 0 || ox + ow > out_w || oy + oh > out_h)
    throw Error("image resize: output region outside the resized image");
  in_w_ = in_w;
  in_h_ = in_h;
  ow_ = ow;
  oh_ = oh;
  ox_ = ox;
  oy_ = oy;
  channels_ = channels;
  kernel_ = resolve_kernel(kernel);
  need_h_ = out_w != in_w;
  need_v_ = out_h != in_h;
  if (need_h_) {
    make_axis(in_w, out_w, ox, ox + ow, h_, filter);
    col_begin_ = h_.src_begin;
    col_end_ = h_.src_end;
  } else {
    col_begin_ = ox;
    col_end_ = ox + ow;
  }
  if (need_v_) {
    make_axis(in_h, out_h, oy, oy + oh, v_, filter);
    row_begin_ = v_.src_begin;
    row_end_ = v_.src_end;
  } else {
    row_begin_ = oy;
    row_end_ = oy + oh;
  }
  tmp_.resize(static_cast<size_t>(row_end_ - row_begin_) * ow_ * channels_);
  set_window(0, in_w_);
}

void Resampler8::set_window(int window_begin, int window_end) {
  if (window_begin > col_begin_ || window_end < col_end_ || window_begin < 0 || window_end > in_w_)
    throw Error("image resize: the row window does not cover the needed columns");
  window_begin_ = window_begin;
  window_end_ = window_end;
  packed_ok_ = false;
  if (!need_h_ || kernel_ == Kernel::kScalar) return;
  const int C = channels_, V = kernel_ == Kernel::kAvx512 ? 16 : 8, P = V / C;
  int maxn = 0;
  for (int n : h_.count) maxn = std::max(maxn, n);
  kpad_ = std::max(P, (maxn + P - 1) / P * P);
  const int W = window_end - window_begin;
  if (kpad_ > W) return;  // tiny rows: the portable kernel
  const int n_out = h_.outputs();
  groups_ = kpad_ / P;
  pstart_.resize(n_out);
  packed_.assign(static_cast<size_t>(n_out) * groups_ * V, 0);
  for (int o = 0; o < n_out; ++o) {
    // The taps start at f; the window read starts at s <= f so that it stays inside the row.
    const int f = h_.first[o] - window_begin;
    const int s = std::min(f, W - kpad_);
    pstart_[o] = s;
    const int32_t* q = &h_.fixed[static_cast<size_t>(o) * h_.ksize];
    int32_t* lanes = &packed_[static_cast<size_t>(o) * groups_ * V];
    for (int t = 0; t < h_.count[o]; ++t) {
      const int j = f - s + t;  // tap position within the padded window
      for (int c = 0; c < C; ++c) lanes[(j / P) * V + (j % P) * C + c] = q[t];
    }
  }
  packed_ok_ = true;
}

void Resampler8::push_row(int y, const uint8_t* row) { push_rows(y, row, 0, 1); }

void Resampler8::push_rows(int y, const uint8_t* rows, size_t stride, int count) {
  // Keep only the rows in [row_begin_, row_end_).
  if (y < row_begin_) {
    const int skip = std::min(count, row_begin_ - y);
    y += skip;
    rows += skip * stride;
    count -= skip;
  }
  count = std::min(count, row_end_ - y);
  if (count <= 0) return;
  const size_t rb = static_cast<size_t>(ow_) * channels_;
  uint8_t* dst = tmp_.data() + static_cast<size_t>(y - row_begin_) * rb;
  if (!need_h_) {
    for (int i = 0; i < count; ++i)
      std::memcpy(dst + i * rb, rows + i * stride + static_cast<size_t>(ox_ - window_begin_) * channels_, rb);
    return;
  }
#ifdef CLIP_IMAGE_X86
  if (packed_ok_) {
    constexpr int kBlock = 16;
    const uint8_t* src_rows[kBlock];
    uint8_t* dst_rows[kBlock];
    for (int i = 0; i < count; i += kBlock) {
      const int n = std::min(kBlock, count - i);
      for (int j = 0; j < n; ++j) {
        src_rows[j] = rows + (i + j) * stride;
        dst_rows[j] = dst + (i + j) * rb;
      }
      if (kernel_ == Kernel::kAvx512)
        hpass_avx512_any(channels_, src_rows, dst_rows, n, h_.outputs(), pstart_.data(), packed_.data(), groups_);
      else hpass_avx2_any(channels_, src_rows, dst_rows, n, h_.outputs(), pstart_.data(), packed_.data(), groups_);
    }
    return;
  }
#endif
  for (int i = 0; i < count; ++i) hpass_scalar_any(channels_, rows + i * stride, dst + i * rb, h_, window_begin_);
}

void Resampler8::finish(uint8_t* out, size_t stride) {
  const size_t rb = static_cast<size_t>(ow_) * channels_;
  if (!need_v_) {
    for (int r = 0; r < oh_; ++r) std::memcpy(out + r * stride, tmp_.data() + r * rb, rb);
    return;
  }
#ifdef CLIP_IMAGE_X86
  if (kernel_ == Kernel::kAvx512) {
    vpass_avx512(tmp_.data(), rb, row_begin_, rb, v_, out, stride);
    return;
  }
  if (kernel_ == Kernel::kAvx2) {
    vpass_avx2(tmp_.data(), rb, row_begin_, rb, v_, out, stride);
    return;
  }
#endif
  vpass_scalar(tmp_.data(), rb, row_begin_, rb, v_, out, stride, acc_);
}

// ---- whole-image helpers -----------------------------------------------------------------------

namespace {

inline uint8_t muldiv255(unsigned a, unsigned b) {
  const unsigned tmp = a * b + 128;
  return static_cast<uint8_t>(((tmp >> 8) + tmp) >> 8);
}

Image resize_u8(const Image& src, int channels, int out_w, int out_h, int ox, int oy, int ow, int oh, Kernel kernel,
                Filter filter, const uint8_t* pixels) {
  Resampler8 r(src.width, src.height, out_w, out_h, ox, oy, ow, oh, channels, kernel, filter);
  const size_t rb = static_cast<size_t>(src.width) * channels;
  r.push_rows(r.row_begin(), pixels + r.row_begin() * rb, rb, r.row_end() - r.row_begin());
  Image out;
  out.mode = src.mode;
  out.width = ow;
  out.height = oh;
  out.format = src.format;
  out.pixels.resize(static_cast<size_t>(ow) * oh * channels);
  r.finish(out.pixels.data(), static_cast<size_t>(ow) * channels);
  return out;
}

Image resize_nearest(const Image& src, int out_w, int out_h, int ox, int oy, int ow, int oh) {
  const std::vector<int> xt = nearest_table(src.width, out_w);
  const std::vector<int> yt = nearest_table(src.height, out_h);
  const int bpp = bytes_per_pixel(src.mode);
  Image out;
  out.mode = src.mode;
  out.width = ow;
  out.height = oh;
  out.format = src.format;
  out.palette = src.palette;
  out.pixels.assign(static_cast<size_t>(ow) * oh * bpp, 0);
  const size_t rb = src.row_bytes();
  for (int y = 0; y < oh; ++y) {
    const int sy = yt[oy + y];
    if (sy < 0) continue;
    const uint8_t* s = src.pixels.data() + sy * rb;
    uint8_t* d = out.pixels.data() + static_cast<size_t>(y) * ow * bpp;
    for (int x = 0; x < ow; ++x) {
      const int sx = xt[ox + x];
      if (sx >= 0) std::memcpy(d + x * bpp, s + static_cast<size_t>(sx) * bpp, bpp);
    }
  }
  return out;
}

// Pillow's 32-bit integer path: double weights, sums in tap order, ROUND_UP after each pass.
Image resize_i32(const Image& src, int out_w, int out_h, int ox, int oy, int ow, int oh, Filter filter) {
  const bool need_h = out_w != src.width, need_v = out_h != src.height;
  AxisCoeffs h, v;
  int r0 = oy, r1 = oy + oh;
  if (need_h) h = make_axis(src.width, out_w, ox, ox + ow, filter);
  if (need_v) {
    v = make_axis(src.height, out_h, oy, oy + oh, filter);
    r0 = v.src_begin;
    r1 = v.src_end;
  }
  auto in = [&](int x, int y) {
    int32_t val;
    std::memcpy(&val, src.pixels.data() + (static_cast<size_t>(y) * src.width + x) * 4, 4);
    return val;
  };
  std::vector<int32_t> tmp(static_cast<size_t>(r1 - r0) * ow);
  for (int y = r0; y < r1; ++y) {
    int32_t* d = &tmp[static_cast<size_t>(y - r0) * ow];
    for (int o = 0; o < ow; ++o) {
      if (!need_h) {
        d[o] = in(ox + o, y);
        continue;
      }
      const double* k = &h.weight[static_cast<size_t>(o) * h.ksize];
      double ss = 0.0;
      for (int t = 0; t < h.count[o]; ++t) ss += in(h.first[o] + t, y) * k[t];
      d[o] = round_up(ss);
    }
  }
  Image out;
  out.mode = src.mode;
  out.width = ow;
  out.height = oh;
  out.format = src.format;
  out.pixels.resize(static_cast<size_t>(ow) * oh * 4);
  for (int o = 0; o < oh; ++o) {
    for (int x = 0; x < ow; ++x) {
      int32_t val;
      if (!need_v) {
        val = tmp[static_cast<size_t>(o) * ow + x];
      } else {
        const double* k = &v.weight[static_cast<size_t>(o) * v.ksize];
        double ss = 0.0;
        for (int t = 0; t < v.count[o]; ++t) ss += tmp[static_cast<size_t>(v.first[o] + t - r0) * ow + x] * k[t];
        val = round_up(ss);
      }
      std::memcpy(out.pixels.data() + (static_cast<size_t>(o) * ow + x) * 4, &val, 4);
    }
  }
  return out;
}

}  // namespace

void premultiply(uint8_t* data, size_t pixels, int channels) {
  for (size_t i = 0; i < pixels; ++i, data += channels) {
    const unsigned a = data[channels - 1];
    for (int c = 0; c < channels - 1; ++c) data[c] = muldiv255(data[c], a);
  }
}

void unpremultiply(uint8_t* data, size_t pixels, int channels) {
  for (size_t i = 0; i < pixels; ++i, data += channels) {
    const unsigned a = data[channels - 1];
    if (a == 255 || a == 0) continue;
    for (int c = 0; c < channels - 1; ++c) {
      const unsigned v = (255u * data[c]) / a;
      data[c] = static_cast<uint8_t>(v > 255 ? 255 : v);
    }
  }
}

Image resize_region(const Image& src, int out_w, int out_h, int ox, int oy, int ow, int oh, Kernel kernel,
                    Filter filter) {
  if (src.width <= 0 || src.height <= 0) throw Error("image resize: empty image");
  if (out_w <= 0 || out_h <= 0) throw Error("image resize: target size must be positive");
  if (ox < 0 || oy < 0 || ow <= 0 || oh <= 0 || ox + ow > out_w || oy + oh > out_h)
    throw Error("image resize: output region outside the resized image");
  if (out_w == src.width && out_h == src.height) return crop(src, ox, oy, ow, oh);
  switch (src.mode) {
    case Mode::k1:
    case Mode::kP: return resize_nearest(src, out_w, out_h, ox, oy, ow, oh);
    case Mode::kI: return resize_i32(src, out_w, out_h, ox, oy, ow, oh, filter);
    case Mode::kLA:
    case Mode::kRGBA: {
      const int c = bytes_per_pixel(src.mode);
      std::vector<uint8_t> pre(src.pixels);
      premultiply(pre.data(), static_cast<size_t>(src.width) * src.height, c);
      Image out = resize_u8(src, c, out_w, out_h, ox, oy, ow, oh, kernel, filter, pre.data());
      unpremultiply(out.pixels.data(), static_cast<size_t>(ow) * oh, c);
      return out;
    }
    case Mode::kL:
    case Mode::kRGB:
    case Mode::kCMYK:
      return resize_u8(src, bytes_per_pixel(src.mode), out_w, out_h, ox, oy, ow, oh, kernel, filter, src.pixels.data());
  }
  throw Error("image resize: unknown mode");
}

}  // namespace clip::image::detail
