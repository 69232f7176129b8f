// ftfy_fix_text against ftfy 6.3.1 and html_unescape against Python's html.unescape: the fixture
// corpus (ftfy_fixed and basic_clean of all 309 entries), and focused cases the corpus lacks.
// Expected values of the focused cases follow from ftfy 6.3.1's and CPython 3.11's source; the
// html.unescape ones were checked with python3.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "test_paths.h"
#include "text/ftfy.h"
#include "text/utf8.h"

namespace {

using clip::text::ftfy_fix_text;
using clip::text::html_unescape;
using clip::text::u32_to_utf8;
using clip::text::utf8_to_u32;
using nlohmann::json;

std::string fix(const std::string& utf8) { return u32_to_utf8(ftfy_fix_text(utf8_to_u32(utf8))); }
std::string unescape(const std::string& utf8) { return u32_to_utf8(html_unescape(utf8_to_u32(utf8))); }
std::string quoted(const std::string& utf8) { return json(utf8).dump(); }

// Python's str.strip(): str.isspace() characters at both ends.
bool python_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}
std::u32string python_strip(std::u32string s) {
  size_t b = 0, e = s.size();
  while (b < e && python_space(s[b])) ++b;
  while (e > b && python_space(s[e - 1])) --e;
  return s.substr(b, e - b);
}

// tests/data/tokenizer/corpus.json when the repository has it, else the shared fixtures' copy.
std::string corpus_path() {
  const std::string local = clip::test::data_dir() + "/tokenizer/corpus.json";
  if (clip::test::path_exists(local)) return local;
  const std::string shared = clip::test::shared_fixtures();
  return shared.empty() ? std::string() : shared + "/tokenizer/corpus.json";
}

json load_corpus(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buf;
  buf << in.rdbuf();
  return json::parse(buf.str());
}

#define REQUIRE_CORPUS(path)                                                          \
  const std::string path = corpus_path();                                             \
  if (path.empty() || !clip::test::path_exists(path)) CLIP_REQUIRE_SHARED_FIXTURES(); \
  if (path.empty() || !clip::test::path_exists(path)) GTEST_SKIP() << "corpus.json not found"

TEST(FtfyCorpus, FixTextMatchesEveryEntry) {
  REQUIRE_CORPUS(path);
  const json corpus = load_corpus(path);
  const json& entries = corpus.at("entries");
  ASSERT_EQ(entries.size(), 309u);
  int mismatches = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    const std::string text = entries[i].at("text").get<std::string>();
    const std::string want = entries[i].at("ftfy_fixed").get<std::string>();
    const std::string got = fix(text);
    if (got != want) {
      ++mismatches;
      ADD_FAILURE() << "entry " << i << " text " << quoted(text) << "\n  got      " << quoted(got) << "\n  expected "
                    << quoted(want);
    }
  }
  EXPECT_EQ(mismatches, 0);
}

TEST(FtfyCorpus, BasicCleanMatchesEveryEntry) {
  REQUIRE_CORPUS(path);
  const json corpus = load_corpus(path);
  const json& entries = corpus.at("entries");
  ASSERT_EQ(entries.size(), 309u);
  int mismatches = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    const std::string fixed = entries[i].at("ftfy_fixed").get<std::string>();
    const std::string want = entries[i].at("basic_clean").get<std::string>();
    const std::string got = u32_to_utf8(python_strip(html_unescape(html_unescape(utf8_to_u32(fixed)))));
    if (got != want) {
      ++mismatches;
      ADD_FAILURE() << "entry " << i << " ftfy_fixed " << quoted(fixed) << "\n  got      " << quoted(got)
                    << "\n  expected " << quoted(want);
    }
  }
  EXPECT_EQ(mismatches, 0);
}

// --- ftfy: HTML --------------------------------------------------------------------------------

TEST(FtfyHtml, RepeatsUntilNothingChanges) {
  EXPECT_EQ(fix("&amp;amp;amp;"), "&");
  EXPECT_EQ(fix("&amp;amp;amp;amp; x"), "& x");
  // '<' made by unescaping does not switch unescaping off within the segment.
  EXPECT_EQ(fix("&amp;lt;b&amp;gt;"), "<b>");
}

TEST(FtfyHtml, LiteralLessThanSwitchesUnescapingOffForTheRestOfTheText) {
  EXPECT_EQ(fix("<b>fish &amp; chips</b>"), "<b>fish &amp; chips</b>");
  EXPECT_EQ(fix("a &amp; b\n<p>\n&amp; c"), "a & b\n<p>\n&amp; c");
  // '>' alone does not.
  EXPECT_EQ(fix("x &gt; y"), "x > y");
}

TEST(FtfyHtml, OnlyEntitiesWithSemicolonInFtfysTable) {
  EXPECT_EQ(fix("&copy2024"), "&copy2024");
  EXPECT_EQ(fix("this&not that"), "this&not that");
  EXPECT_EQ(fix("&notanentity;"), "&notanentity;");
  EXPECT_EQ(fix("&Jscr;ohn &HilbertSpace;ancock"), "\U0001D4A5ohn \u210Bancock");
  // All-caps forms of lower-case entities, upper-cased.
  EXPECT_EQ(fix("P&EACUTE;REZ"), "P\u00C9REZ");
  EXPECT_EQ(fix("BUNDESSTRA&SZLIG;E"), "BUNDESSTRASSE");
  EXPECT_EQ(fix("&ntilde; &Ntilde; &NTILDE; &nTILDE;"), "\u00F1 \u00D1 \u00D1 &nTILDE;");
  // At most 24 name characters.
  EXPECT_EQ(fix("&aaaaaaaaaaaaaaaaaaaaaaaaa;"), "&aaaaaaaaaaaaaaaaaaaaaaaaa;");
}

TEST(FtfyHtml, NumericReferences) {
  EXPECT_EQ(fix("&#39;x&#x27;&#X41;"), "'x'A");
  EXPECT_EQ(fix("&#x1F600;"), "\U0001F600");
  EXPECT_EQ(fix("&#128;"), "\u20AC");  // HTML5 reads the C1 range as Windows-1252
  EXPECT_EQ(fix("a&#1;b"), "ab");      // an invalid code point becomes nothing
  EXPECT_EQ(fix("&#0;"), "\uFFFD");
  EXPECT_EQ(fix("&#x110000;"), "\uFFFD");
  EXPECT_EQ(fix("&#59;"), "&#59;");      // the result holds ';': ftfy keeps the reference
  EXPECT_EQ(fix("&#12ab;"), "&#12ab;");  // html.unescape would decode only "&#12"
}

// --- ftfy: mojibake ----------------------------------------------------------------------------

TEST(FtfyEncoding, RepairsUtf8ReadAsSingleByteCodePages) {
  EXPECT_EQ(fix("sÃ³"), "s\u00F3");
  EXPECT_EQ(fix("schÃ¶n"), "sch\u00F6n");
  EXPECT_EQ(fix("âœ” No problems"), "\u2714 No problems");
  EXPECT_EQ(fix("&macr;\\_(ã\u0083\u0084)_/&macr;"), "\u00AF\\_(\u30C4)_/\u00AF");
  EXPECT_EQ(fix("This â€” should be an em dash"), "This \u2014 should be an em dash");
  // Two layers of mojibake.
  EXPECT_EQ(fix("\u00C3\u00A0\u00C2\u00B2\u00C2\u00A0_\u00C3\u00A0\u00C2\u00B2\u00C2\u00A0"), "\u0CA0_\u0CA0");
}

TEST(FtfyEncoding, RestoresA0BytesThatBecameSpaces) {
  EXPECT_EQ(fix("voilÃ  le travail"), "voil\u00E0 le travail");
  EXPECT_EQ(fix("voilÃ le travail"), "voil\u00E0 le travail");
}

TEST(FtfyEncoding, LossySequencesBecomeReplacementCharacters) {
  EXPECT_EQ(fix("â€œlossy decodingâ€\uFFFD"), "\"lossy decoding\uFFFD");
}

TEST(FtfyEncoding, LeavesPlausibleTextAlone) {
  EXPECT_EQ(fix("I'm not such a fan of Charlotte Bront\u00EB\u2026\u201D"),
            "I'm not such a fan of Charlotte Bront\u00EB\u2026\"");
  EXPECT_EQ(fix("AH\u00C5\u2122, the new sofa from IKEA"), "AH\u00C5\u2122, the new sofa from IKEA");
  EXPECT_EQ(fix("\u0412\u0406\u041A\u0406 is Ukrainian for WIKI"), "\u0412\u0406\u041A\u0406 is Ukrainian for WIKI");
  EXPECT_EQ(fix("a radius of 10 \u00C5\u2014"), "a radius of 10 \u00C5\u2014");
}

// --- ftfy: the other fixers --------------------------------------------------------------------

TEST(FtfyFixers, C1ControlsAreReadAsWindows1252) {
  EXPECT_EQ(fix("price \u0080 5"), "price \u20AC 5");
  EXPECT_EQ(fix("it\u0092s"), "it's");  // U+2019, then uncurled
  // Bytes Windows-1252 leaves undefined stay as they are.
  EXPECT_EQ(fix("a\u0081b"), "a\u0081b");
}

TEST(FtfyFixers, LineBreaks) {
  EXPECT_EQ(fix("a\r\nb\rc\u2028d\u2029e"), "a\nb\nc\nd\ne");
  EXPECT_EQ(fix("\r\r\n"), "\n\n");
  // NEL is a C1 control: fix_encoding turns it into U+2026 before fix_line_breaks sees it.
  EXPECT_EQ(fix("line\u0085next"), "line\u2026next");
}

TEST(FtfyFixers, LigaturesWidthQuotes) {
  EXPECT_EQ(fix("\uFB01ne \uFB02our \uFB03 \uFB06"), "fine flour ffi st");
  EXPECT_EQ(fix("\u01C5emal \u0132"), "D\u017Eemal IJ");
  EXPECT_EQ(fix("\u0149"), "'n");  // -> U+02BC n -> uncurled
  EXPECT_EQ(fix("\uFF21\uFF22\uFF23\uFF11\uFF12\uFF13\u3000x"), "ABC123 x");
  EXPECT_EQ(fix("\uFF76\uFF9E"), "\u30AC");  // half-width KA + voiced mark, composed by NFC
  EXPECT_EQ(fix("\u201Chere\u2019s\u201D \u201A\u201B\u201E\u201F \u02BC"), "\"here's\" ''\"\" '");
  EXPECT_EQ(fix("\u00AB\u2039\u2032"), "\u00AB\u2039\u2032");
}

TEST(FtfyFixers, ControlCharactersAndTerminalEscapes) {
  EXPECT_EQ(fix(std::string("a\0b\x07"
                            "c\x7f"
                            "d",
                            7)),
            "abcd");
  EXPECT_EQ(fix("\uFEFFBOM \u206Ax\uFFFCy\u200B\u200E"), "BOM xy\u200B\u200E");
  EXPECT_EQ(fix("\t\x0b\x0c"), "\t\x0c");
  EXPECT_EQ(fix("\x1b[36;44mblue\x1b[0m \x1b[1;2;3Xz"), "blue z");
  EXPECT_EQ(fix("\x1b[31"), "[31");  // not a whole escape: only ESC (a control) goes
}

TEST(FtfyFixers, NormalizesToNfc) {
  EXPECT_EQ(fix("cafe\u0301"), "caf\u00E9");
  EXPECT_EQ(fix("\u304B\u3099"), "\u304C");
  EXPECT_EQ(fix("\u212B"), "\u00C5");                                // singleton decomposition
  EXPECT_EQ(fix("\u2126 \u00B5 x\u00B2"), "\u03A9 \u00B5 x\u00B2");  // NFC, not NFKC
}

TEST(FtfyFixText, EdgeCases) {
  EXPECT_EQ(fix(""), "");
  EXPECT_EQ(fix("\n\n"), "\n\n");
  EXPECT_EQ(fix("plain ascii"), "plain ascii");
  // Segments are fixed separately.
  EXPECT_EQ(fix("cafÃ©\nsÃ£o\n"), "caf\u00E9\ns\u00E3o\n");
  // Surrogates and values beyond U+10FFFF (which Python cannot hold) become U+FFFD.
  EXPECT_EQ(ftfy_fix_text(std::u32string{0xD83D, 0xDE00}), std::u32string{0x1F600});
  EXPECT_EQ(ftfy_fix_text(std::u32string{U'a', 0xDC00, 0x110000}), (std::u32string{U'a', 0xFFFD, 0xFFFD}));
}

TEST(FtfyFixText, LongInputs) {
  std::string big;
  for (int i = 0; i < 20000; ++i) big += "cafÃ© \uFB01 &amp; ";
  std::string want;
  for (int i = 0; i < 20000; ++i) want += "caf\u00E9 fi & ";
  EXPECT_EQ(fix(big), want);
  const std::u32string nul(3000000, U'\0');
  EXPECT_EQ(ftfy_fix_text(nul), U"");
}

// --- html.unescape -----------------------------------------------------------------------------

TEST(HtmlUnescape, NamedEntities) {
  EXPECT_EQ(unescape("fish &amp; chips &lt;&gt;&quot;&apos;"), "fish & chips <>\"'");
  EXPECT_EQ(unescape("&amp;amp;"), "&amp;");
  EXPECT_EQ(unescape("&NotNestedGreaterGreater;"), "\u2AA2\u0338");
  EXPECT_EQ(unescape("&unknown; & &;"), "&unknown; & &;");
  EXPECT_EQ(unescape("no entities"), "no entities");
}

TEST(HtmlUnescape, LegacyNamesWithoutSemicolon) {
  EXPECT_EQ(unescape("&copy2024"), "\u00A92024");
  EXPECT_EQ(unescape("&amp"), "&");
  EXPECT_EQ(unescape("&notin"), "\u00ACin");
  EXPECT_EQ(unescape("&notin;"), "\u2209");
  EXPECT_EQ(unescape("&notit;"), "\u00ACit;");
  EXPECT_EQ(unescape("&notanentity;"), "\u00ACanentity;");
  EXPECT_EQ(unescape("&ampé"), "&\u00E9");
  EXPECT_EQ(unescape("&am"), "&am");
  // Names run over at most 32 characters; the rest stays text.
  EXPECT_EQ(unescape("&ampaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa;"), "&aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa;");
}

TEST(HtmlUnescape, NumericReferences) {
  EXPECT_EQ(unescape("&#65;&#x42;&#X43;&#0068"), "ABCD");
  EXPECT_EQ(unescape("&#0;"), "\uFFFD");
  EXPECT_EQ(unescape("&#13;"), "\r");
  EXPECT_EQ(unescape("&#128;&#x9F;&#x81;"), "\u20AC\u0178\u0081");
  EXPECT_EQ(unescape("&#x110000;&#xD800;&#99999999999999999999;"), "\uFFFD\uFFFD\uFFFD");
  EXPECT_EQ(unescape("a&#1;&#xb;&#x7F;&#xFDD0;&#xFFFE;&#x10FFFF;b"), "ab");
  EXPECT_EQ(unescape("&#x1F600;"), "\U0001F600");
  EXPECT_EQ(unescape("&#;&#x;&#xg;&#a"), "&#;&#x;&#xg;&#a");
  EXPECT_EQ(unescape("&#12ab;"), "\u000Cab;");
}

TEST(HtmlUnescape, HostileInput) {
  std::u32string s;
  for (int i = 0; i < 100000; ++i) s += U"&#x&&am;&#9999999999";
  EXPECT_FALSE(html_unescape(s).empty());
  EXPECT_EQ(html_unescape(std::u32string(5, U'\0')), std::u32string(5, U'\0'));
  EXPECT_EQ(html_unescape(std::u32string{U'&', 0x110000, U';'}), (std::u32string{U'&', 0x110000, U';'}));
}

}  // namespace
