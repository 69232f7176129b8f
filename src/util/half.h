// IEEE 754 half precision (binary16) to float, for files that store float16 (checkpoints, .npy).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace clip::util {

inline float half_to_float(uint16_t h) {
  const uint32_t sign = (h >> 15) & 1, exp = (h >> 10) & 0x1F, mant = h & 0x3FF;
  float v;
  if (exp == 0) v = std::ldexp(static_cast<float>(mant), -24);
  else if (exp == 31) v = mant ? NAN : INFINITY;
  else v = std::ldexp(static_cast<float>(mant | 0x400), static_cast<int>(exp) - 25);
  return sign ? -v : v;
}

// Round to nearest, ties to even (as NumPy's astype(float16)); overflow gives infinity.
inline uint16_t float_to_half(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000);
  const uint32_t abs = x & 0x7FFFFFFF;
  if (abs > 0x7F800000) return sign | 0x7E00;   // NaN
  if (abs >= 0x47800000) return sign | 0x7C00;  // 65536 and more (and infinity): infinity
  if (abs < 0x38800000) {                       // below 2^-14: a subnormal half, value · 2^24 rounded
    float a;
    std::memcpy(&a, &abs, 4);
    return sign | static_cast<uint16_t>(std::nearbyint(a * 16777216.0f));
  }
  uint32_t h = ((abs >> 23) - 112) << 10 | ((abs & 0x7FFFFF) >> 13);
  const uint32_t rest = abs & 0x1FFF;
  if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) ++h;  // a carry moves to the next binade (or infinity): correct
  return sign | static_cast<uint16_t>(h);
}

}  // namespace clip::util
