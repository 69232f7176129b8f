// libFuzzer target: any byte sequence through cleaning, pre-tokenization, BPE, padding and
// decoding must neither crash nor trip ASan/UBSan.
#include <cstddef>
#include <cstdint>
#include <string>

#include "clip/error.h"
#include "clip/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const clip::Tokenizer tokenizer;  // loaded once per fuzzing process
  const std::string text(reinterpret_cast<const char*>(data), size);
  const std::vector<int32_t> ids = tokenizer.encode(text);
  (void)tokenizer.decode(ids);
  const clip::TokenBatch batch = tokenizer.tokenize({text, text}, 16, true);
  if (batch.row(0)[0] != tokenizer.sot_id()) __builtin_trap();
  try {
    tokenizer.tokenize({text}, 77, false);
  } catch (const clip::Error&) {
    // too long without truncation: a clean, expected error
  }
  return 0;
}
