// The tokenizer's shortcuts against the step-by-step definitions they replace: ftfy's quick
// check, the position skipping in its mojibake heuristic, one-character lowercasing, the
// in-place cleaning, and encode as a whole (clean_text -> pre-tokens -> BPE of each). On the
// fixture corpus and on random strings built from the characters the shortcuts hinge on.
#include <gtest/gtest.h>
#include <unicode/uchar.h>

#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "clip/tokenizer.h"
#include "test_paths.h"
#include "text/bpe.h"
#include "text/clean.h"
#include "text/ftfy.h"
#include "text/pretokenize.h"
#include "text/utf8.h"
#include "text/vocab.h"
#include "util/file_io.h"

namespace {

using nlohmann::json;
namespace text = clip::text;

std::vector<std::string> corpus_texts() {
  const json c = json::parse(clip::util::read_file(clip::test::data_dir() + "/tokenizer/corpus.json"));
  std::vector<std::string> out;
  for (const json& e : c["entries"]) out.push_back(e["text"].get<std::string>());
  return out;
}

// Characters the shortcuts treat specially, and their neighbours.
const std::u32string kPool =
    U"aAzZ09 .,?!'&;#<>|\t\n\r\f\x0b\x1b[m"  // ASCII, controls
    U"\u0080\u0085\u0091\u0093\u009d\u00a0\u00a9\u00b0\u00c2\u00c3\u00a1\u00e9\u00c9\u00d8\u00e0\u00ff"  // Latin-1
    U"\u0130\u0131\u0132\u0149\u0152\u0153\u017f\u01c5\u01f2\u02bc\u02c6"  // Latin, ligatures
    U"\u0300\u0301\u0315\u0316\u0345\u0387"                                // combining, NFC
    U"\u0392\u03a3\u03b2\u03c3\u0412\u0413\u0432\u0440\u045e"              // Greek, Cyrillic
    U"\u2018\u201a\u201c\u201d\u2020\u2026\u20ac\u2122\u2126\u2028\u206a\u221a\u2248\u2550"
    U"\u3000\u3042\u6771\uac00\ufb01\ufeff\uff21\uff76\ufffd\U0001F600\U0001D522";

// A few characters that make up most of the badness patterns' longest reach ("a Ã " style).
const std::u32string kBadnessPool = U"a ,!\u00a0\u3000\u00b0\u00c2\u00c3\u00e9\u0412\u20ac\u2122";

std::u32string random_text(std::mt19937& rng, size_t max_len, const std::u32string& pool = kPool) {
  std::uniform_int_distribution<size_t> len(0, max_len), pick(0, pool.size() - 1);
  std::u32string s(len(rng), U' ');
  for (char32_t& c : s) c = pool[pick(rng)];
  return s;
}

// Random bytes: mostly the pool as UTF-8, with stray bytes that make it invalid.
std::string random_bytes(std::mt19937& rng, size_t max_len) {
  std::string s = text::u32_to_utf8(random_text(rng, max_len));
  std::uniform_int_distribution<int> byte(0, 255), coin(0, 7);
  if (!s.empty() && coin(rng) == 0) s[static_cast<size_t>(byte(rng)) % s.size()] = static_cast<char>(byte(rng));
  return s;
}

TEST(FtfyQuickCheck, WhereItSaysUnchangedFixTextChangesNothing) {
  std::mt19937 rng(1);
  int unchanged = 0, total = 0;
  auto check = [&](const std::u32string& t) {
    ++total;
    if (!text::ftfy_leaves_unchanged(t)) return;
    ++unchanged;
    EXPECT_EQ(text::u32_to_utf8(text::detail::ftfy_fix_text_every_pass(t)), text::u32_to_utf8(t))
        << json(text::u32_to_utf8(t)).dump();
  };
  for (const std::string& t : corpus_texts()) check(text::utf8_to_u32(t));
  for (int i = 0; i < 20000; ++i) check(random_text(rng, i % 3 == 0 ? 3 : 12));
  EXPECT_GT(unchanged, total / 5);  // the check must also let text through
  // Each trigger alone, and plain non-ASCII text that passes.
  for (char32_t c : {U'&', U'\r', char32_t{0x1b}, char32_t{0x85}, char32_t{0x132}, char32_t{0x2bc}, char32_t{0x2019},
                     char32_t{0x2028}, char32_t{0x3000}, char32_t{0xfb01}, char32_t{0xfeff}, char32_t{0xff21},
                     char32_t{0xd800}, char32_t{0x110000}})
    EXPECT_FALSE(text::ftfy_leaves_unchanged(std::u32string(U"ab") + c)) << static_cast<uint32_t>(c);
  EXPECT_TRUE(text::ftfy_leaves_unchanged(U"caf\u00e9 \u6771\u4eac \U0001F600\n\u0399\u03c3"));
  EXPECT_FALSE(text::ftfy_leaves_unchanged(U"cafe\u0301"));       // not NFC
  EXPECT_FALSE(text::ftfy_leaves_unchanged(U"caf\u00c3\u00a9"));  // mojibake
}

TEST(FtfyQuickCheck, FixTextEqualsRunningEveryFixerOnEveryPass) {
  std::mt19937 rng(6);
  std::vector<std::u32string> texts;
  for (const std::string& t : corpus_texts()) texts.push_back(text::utf8_to_u32(t));
  for (int i = 0; i < 20000; ++i) texts.push_back(random_text(rng, i % 3 == 0 ? 4 : 14));
  texts.push_back(U"\u0149 \u0091x\u0092 \uff02q\uff02 a\u2028b\r\nc \u001b[1mz");
  for (const std::u32string& t : texts)
    ASSERT_EQ(text::u32_to_utf8(text::ftfy_fix_text(t)), text::u32_to_utf8(text::detail::ftfy_fix_text_every_pass(t)))
        << json(text::u32_to_utf8(t)).dump();
}

TEST(FtfyQuickCheck, BadnessSkippingAgreesWithTryingEveryPosition) {
  std::mt19937 rng(2);
  int bad = 0;
  for (int i = 0; i < 100000; ++i) {
    const std::u32string t = random_text(rng, i % 2 ? 4 : 10, i % 4 < 2 ? kPool : kBadnessPool);
    const bool every = text::detail::ftfy_is_bad(t, false);
    ASSERT_EQ(text::detail::ftfy_is_bad(t, true), every) << json(text::u32_to_utf8(t)).dump();
    bad += every;
  }
  EXPECT_GT(bad, 1000);
  for (const std::string& s : corpus_texts()) {
    const std::u32string t = text::utf8_to_u32(s);
    EXPECT_EQ(text::detail::ftfy_is_bad(t, true), text::detail::ftfy_is_bad(t, false)) << json(s).dump();
  }
}

TEST(CleanFastPath, WhiteSpaceIsIcusWhiteSpace) {
  for (char32_t c = 0; c <= 0x10FFFF; ++c)
    ASSERT_EQ(text::is_regex_space(c),
              static_cast<bool>(u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_WHITE_SPACE)))
        << static_cast<uint32_t>(c);
}

TEST(CleanFastPath, LowercasingOneCharacterAtATimeEqualsPythonLower) {
  for (char32_t c = 0; c <= 0x10FFFF; ++c) {
    if (c >= 0xD800 && c <= 0xDFFF) continue;
    std::u32string one(1, c);
    text::python_lower_in_place(one);
    ASSERT_EQ(one, text::python_lower(std::u32string(1, c))) << static_cast<uint32_t>(c);
  }
  std::mt19937 rng(3);
  for (int i = 0; i < 20000; ++i) {
    const std::u32string t = random_text(rng, 10);
    std::u32string fast = t;
    text::python_lower_in_place(fast);
    ASSERT_EQ(fast, text::python_lower(t)) << json(text::u32_to_utf8(t)).dump();
  }
}

TEST(CleanFastPath, EqualsCleanTextStepByStep) {
  std::mt19937 rng(4);
  std::vector<std::string> texts = corpus_texts();
  for (int i = 0; i < 20000; ++i) texts.push_back(random_bytes(rng, 12));
  std::u32string fast;  // reused, as encode reuses it
  for (const std::string& t : texts) {
    text::clean_text_fast(t, fast);
    ASSERT_EQ(text::u32_to_utf8(fast), text::u32_to_utf8(text::clean_text(t))) << json(t).dump();
  }
}

// encode without any shortcut: clean_text, pre-tokens, each pre-token's BPE.
std::vector<int32_t> reference_ids(const text::Vocab& vocab, const std::string& t) {
  const std::u32string cleaned = text::clean_text(t);
  std::vector<int32_t> ids;
  for (const text::Pretoken& p : text::pretokenize(cleaned)) {
    if (p.kind == text::PretokenKind::kStartOfText) ids.push_back(vocab.sot_id());
    else if (p.kind == text::PretokenKind::kEndOfText) ids.push_back(vocab.eot_id());
    else {
      const std::vector<int32_t> word = text::bpe_encode_word(
          vocab, text::u32_to_utf8(std::u32string_view(cleaned).substr(p.begin, p.end - p.begin)));
      ids.insert(ids.end(), word.begin(), word.end());
    }
  }
  return ids;
}

TEST(TokenizerFastPath, EncodeEqualsTheStepByStepReference) {
  const text::Vocab vocab = text::Vocab::from_openai_bpe(clip::Tokenizer::default_vocab_path());
  const clip::Tokenizer tok;
  std::mt19937 rng(5);
  std::vector<std::string> texts = corpus_texts();
  for (const char* t : {"  Tab\there\r\nCR  ", "\f<|endoftext|>\f", "<|STARTOFTEXT|>x", "it's 'S", "A-B_C  d..."})
    texts.push_back(t);
  for (int i = 0; i < 5000; ++i) texts.push_back(random_bytes(rng, 16));
  std::uniform_int_distribution<int> ascii(0x20, 0x7e), ws(0, 9);
  for (int i = 0; i < 5000; ++i) {  // ASCII with uneven whitespace: the fast path's texts
    std::string s;
    for (int k = 0; k < 24; ++k) s.push_back(ws(rng) == 0 ? " \t\n\f\r"[k % 5] : static_cast<char>(ascii(rng)));
    texts.push_back(s);
  }
  texts.push_back(std::string(300, 'A') + " b");  // longer than encode's stack buffer
  for (const std::string& t : texts) ASSERT_EQ(tok.encode(t), reference_ids(vocab, t)) << json(t).dump();
  // The batch path (chunks with reused buffers, several threads) gives the same rows.
  const clip::TokenBatch batch = tok.tokenize(texts, 77, true, 2);
  for (size_t r = 0; r < texts.size(); ++r) {
    const std::vector<int32_t> ids = tok.encode(texts[r]);
    const size_t keep = std::min<size_t>(ids.size(), 75);
    ASSERT_EQ(batch.row(r)[keep + 1], tok.eot_id()) << r;
    for (size_t i = 0; i < keep; ++i) ASSERT_EQ(batch.row(r)[i + 1], ids[i]) << r;
  }
}

}  // namespace
