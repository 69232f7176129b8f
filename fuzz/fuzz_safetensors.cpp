// libFuzzer target: the safetensors header parser must reject any malformed input with
// clip::Error, never crash, and never accept offsets outside the buffer.
#include <cstddef>
#include <cstdint>

#include "clip/error.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const clip::io::SafetensorsHeader h = clip::io::parse_safetensors_header(data, size, "fuzz");
    for (const auto& t : h.tensors) {
      if (h.data_offset + t.end > size) __builtin_trap();
      // Touch the first and last byte of each tensor: ASan checks they are inside the input.
      if (t.end > t.begin) {
        volatile uint8_t a = data[h.data_offset + t.begin], b = data[h.data_offset + t.end - 1];
        (void)a;
        (void)b;
      }
    }
  } catch (const clip::Error&) {
  }
  return 0;
}
