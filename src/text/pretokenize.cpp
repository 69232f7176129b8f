#include "text/pretokenize.h"

#include <unicode/uchar.h>

namespace clip::text {

CharClass classify_non_ascii(char32_t c) {
  if (is_regex_space(c)) return CharClass::kSpace;
  const uint32_t mask = U_GET_GC_MASK(static_cast<UChar32>(c));
  if (mask & U_GC_L_MASK) return CharClass::kLetter;
  if (mask & U_GC_N_MASK) return CharClass::kNumber;
  // Under IGNORECASE, `regex` matches U+0345 (which case-folds to a letter) by neither
  // [\p{L}] nor [^\s\p{L}\p{N}]: it falls between matches and is dropped.
  if (c == 0x345) return CharClass::kSkipped;
  return CharClass::kOther;
}

std::vector<Pretoken> pretokenize(std::u32string_view text) {
  std::vector<Pretoken> out;
  for_each_pretoken(text, [&](size_t b, size_t e, PretokenKind k) { out.push_back({b, e, k}); });
  return out;
}

}  // namespace clip::text
