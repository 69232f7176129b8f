// Text repairs that CLIP's tokenizer applies before BPE: ftfy.fix_text (ftfy 6.3.1 defaults)
// and Python's html.unescape. Both work on code points; inputs never hold surrogates.
#pragma once

#include <string>
#include <string_view>

namespace clip::text {

// ftfy.fix_text(text) with ftfy 6.3.1's default configuration: per line, HTML entities unescaped
// (unless the line holds '<'), mojibake repaired, C1 controls fixed, Latin ligatures split,
// full-width forms folded, curly quotes straightened, line breaks unified, terminal escapes and
// control characters removed, NFC; repeated until nothing changes.
std::u32string ftfy_fix_text(std::u32string_view text);

// A quick, conservative test that ftfy_fix_text(text) == text: true only when no fixer has
// anything to act on (no character any of them changes, nothing mojibake-like, already NFC).
// Most real text passes, and skipping the fixers' passes is most of the cleaning's speed.
bool ftfy_leaves_unchanged(std::u32string_view text);

namespace detail {
// For tests: ftfy's mojibake heuristic (badness.is_bad), trying every position or skipping
// those that no alternative can match at; both must agree.
bool ftfy_is_bad(std::u32string_view text, bool skip_unclassified);
// For tests: ftfy_fix_text running every fixer on every pass, without the quick checks.
std::u32string ftfy_fix_text_every_pass(std::u32string_view text);
}  // namespace detail

// Python's html.unescape: all HTML5 named entities (with the legacy forms that need no ';'),
// decimal and hex character references with the HTML5 replacement rules.
std::u32string html_unescape(std::u32string_view text);

}  // namespace clip::text
