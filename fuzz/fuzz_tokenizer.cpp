// libFuzzer target: any byte sequence through cleaning, pre-tokenization, BPE, padding and
// decoding must neither crash nor trip ASan/UBSan, and the cleaning's shortcuts must give what
// the step-by-step definitions give.
#include <cstddef>
#include <cstdint>
#include <string>

#include "clip/error.h"
#include "clip/tokenizer.h"
#include "text/clean.h"
#include "text/ftfy.h"
#include "text/utf8.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const clip::Tokenizer tokenizer;  // loaded once per fuzzing process
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::u32string cleaned;
  clip::text::clean_text_fast(text, cleaned);
  if (cleaned != clip::text::clean_text(text)) __builtin_trap();
  const std::u32string code_points = clip::text::utf8_to_u32(text);
  if (clip::text::ftfy_fix_text(code_points) != clip::text::detail::ftfy_fix_text_every_pass(code_points))
    __builtin_trap();
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
