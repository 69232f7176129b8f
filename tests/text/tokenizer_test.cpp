// Parity of the tokenizer with OpenAI's SimpleTokenizer on the fixture corpus, the two
// vocabulary formats, decoding, and hostile input.
#include <gtest/gtest.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "clip/error.h"
#include "clip/tokenizer.h"
#include "test_paths.h"
#include "text/clean.h"
#include "text/pretokenize.h"
#include "text/utf8.h"
#include "util/file_io.h"

namespace {

using clip::Tokenizer;
using nlohmann::json;

const json& corpus() {
  static const json c = json::parse(clip::util::read_file(clip::test::data_dir() + "/tokenizer/corpus.json"));
  return c;
}

const Tokenizer& shipped() {
  static const Tokenizer t;
  return t;
}

std::string show(const json& e) { return e["text"].dump(); }

TEST(TokenizerCorpus, HasTheWholeCorpus) { EXPECT_EQ(corpus()["entries"].size(), 309u); }

TEST(TokenizerCorpus, CleanedTextMatchesReference) {
  int mismatches = 0;
  for (const json& e : corpus()["entries"]) {
    const std::string got = shipped().clean(e["text"].get<std::string>());
    if (got != e["cleaned"].get<std::string>()) {
      ++mismatches;
      ADD_FAILURE() << show(e) << ": cleaned " << json(got).dump() << ", expected " << e["cleaned"].dump();
    }
  }
  EXPECT_EQ(mismatches, 0);
}

TEST(TokenizerCorpus, PretokensOfCleanedTextMatchReference) {
  for (const json& e : corpus()["entries"]) {
    const std::u32string cleaned = clip::text::utf8_to_u32(e["cleaned"].get<std::string>());
    std::vector<std::string> got;
    for (const auto& p : clip::text::pretokenize(cleaned))
      got.push_back(clip::text::u32_to_utf8(cleaned.substr(p.begin, p.end - p.begin)));
    EXPECT_EQ(json(got), e["pretokens"]) << show(e);
  }
}

TEST(TokenizerCorpus, IdsMatchReference) {
  int same = 0;
  for (const json& e : corpus()["entries"]) {
    const std::vector<int32_t> got = shipped().encode(e["text"].get<std::string>());
    if (json(got) == e["ids"]) ++same;
    else ADD_FAILURE() << show(e) << ": ids " << json(got).dump() << "\nexpected " << e["ids"].dump();
  }
  EXPECT_EQ(same, 309);
}

TEST(TokenizerCorpus, Rows77MatchReferenceWithTruncation) {
  std::vector<std::string> texts;
  for (const json& e : corpus()["entries"]) texts.push_back(e["text"]);
  for (int threads : {1, 2}) {
    const clip::TokenBatch b = shipped().tokenize(texts, 77, true, threads);
    ASSERT_EQ(b.rows, 309);
    ASSERT_EQ(b.context_length, 77);
    for (size_t r = 0; r < texts.size(); ++r) {
      const std::vector<int64_t> row(b.row(static_cast<int64_t>(r)), b.row(static_cast<int64_t>(r)) + 77);
      EXPECT_EQ(json(row), corpus()["entries"][r]["row77"]) << show(corpus()["entries"][r]) << " threads=" << threads;
    }
  }
}

TEST(TokenizerCorpus, NoTruncateFailsExactlyOnTooLongTexts) {
  int too_long = 0;
  for (const json& e : corpus()["entries"]) {
    const std::vector<std::string> one{e["text"].get<std::string>()};
    if (e["fits"].get<bool>()) {
      EXPECT_NO_THROW(shipped().tokenize(one, 77, false)) << show(e);
    } else {
      ++too_long;
      try {
        shipped().tokenize(one, 77, false);
        ADD_FAILURE() << show(e) << " should not fit";
      } catch (const clip::Error& err) {
        const std::string msg = err.what();
        EXPECT_NE(msg.find("text 0"), std::string::npos) << msg;
        EXPECT_NE(msg.find(std::to_string(e["n_ids"].get<int>()) + " tokens"), std::string::npos) << msg;
      }
    }
  }
  EXPECT_EQ(too_long, corpus()["meta"]["n_too_long"].get<int>());
}

TEST(TokenizerCorpus, DecodeMatchesReference) {
  for (const json& e : corpus()["entries"])
    EXPECT_EQ(shipped().decode(e["ids"].get<std::vector<int32_t>>()), e["decoded"].get<std::string>()) << show(e);
}

TEST(Tokenizer, DecodeOfEncodeIsTheCleanedTextForAsciiCaptions) {
  int checked = 0;
  for (const json& e : corpus()["entries"]) {
    const std::string cleaned = e["cleaned"];
    if (!clip::text::is_ascii(cleaned) || e["category"] == "special_token") continue;
    // Decoding puts a space after every word end; the cleaned text has spaces only between
    // words, so compare up to that spacing rule.
    std::string decoded = shipped().decode(shipped().encode(e["text"].get<std::string>()));
    std::string a, b;
    for (char c : decoded)
      if (c != ' ') a += c;
    for (char c : cleaned)
      if (c != ' ') b += c;
    EXPECT_EQ(a, b) << show(e);
    ++checked;
  }
  EXPECT_GT(checked, 200);
}

TEST(Tokenizer, DecodeOfEncodeRoundTripsSimpleCaption) {
  EXPECT_EQ(shipped().decode(shipped().encode("A photo of a Dog.")), "a photo of a dog . ");
}

TEST(Tokenizer, HuggingFaceFilesGiveIdenticalIds) {
  const std::string dir = clip::test::data_dir() + "/tokenizer/hf";
  const Tokenizer hf = Tokenizer::from_hf(dir + "/vocab.json", dir + "/merges.txt");
  EXPECT_EQ(hf.vocab_size(), 49408u);
  EXPECT_EQ(hf.sot_id(), 49406);
  EXPECT_EQ(hf.eot_id(), 49407);
  for (const json& e : corpus()["entries"]) {
    const std::string text = e["text"];
    EXPECT_EQ(hf.encode(text), shipped().encode(text)) << show(e);
    EXPECT_EQ(json(hf.encode(text)), e["ids"]) << show(e);
  }
  // from_path recognizes both the folder and the vocab.json path.
  EXPECT_EQ(Tokenizer::from_path(dir).encode("a dog"), shipped().encode("a dog"));
  EXPECT_EQ(Tokenizer::from_path(dir + "/vocab.json").encode("a dog"), shipped().encode("a dog"));
}

TEST(Tokenizer, ContextLengthAndPadding) {
  const clip::TokenBatch b = shipped().tokenize({"a dog", ""}, 8);
  const std::vector<int64_t> dog(b.row(0), b.row(0) + 8), empty(b.row(1), b.row(1) + 8);
  EXPECT_EQ(dog, (std::vector<int64_t>{49406, 320, 1929, 49407, 0, 0, 0, 0}));
  EXPECT_EQ(empty, (std::vector<int64_t>{49406, 49407, 0, 0, 0, 0, 0, 0}));
  // Truncation to 4: [sot, a, dog, eot] fits exactly; 3 keeps one id.
  const clip::TokenBatch t = shipped().tokenize({"a dog"}, 3);
  EXPECT_EQ(std::vector<int64_t>(t.row(0), t.row(0) + 3), (std::vector<int64_t>{49406, 320, 49407}));
  EXPECT_THROW(shipped().tokenize({"a"}, 1), clip::Error);
}

TEST(TokenizerHostileInput, InvalidUtf8BecomesReplacementCharacter) {
  // Python: b"caf\xe9 \xed\xa0\x80".decode("utf-8", "replace") == "caf\ufffd \ufffd\ufffd\ufffd"
  EXPECT_EQ(shipped().encode("caf\xe9 \xed\xa0\x80"),
            shipped().encode("caf\xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"));
  EXPECT_EQ(clip::text::utf8_to_u32("\xe2\x82"), std::u32string(U"\uFFFD"));
  EXPECT_EQ(clip::text::utf8_to_u32("\xed\xa0\x80"), std::u32string(U"\uFFFD\uFFFD\uFFFD"));
  EXPECT_EQ(clip::text::utf8_to_u32("\xf0\x80\x80"), std::u32string(U"\uFFFD\uFFFD\uFFFD"));
  EXPECT_EQ(clip::text::utf8_to_u32("\xc0\xaf"), std::u32string(U"\uFFFD\uFFFD"));
  EXPECT_EQ(clip::text::utf8_to_u32("\xf4\x90\x80\x80"), std::u32string(U"\uFFFD\uFFFD\uFFFD\uFFFD"));
  EXPECT_EQ(clip::text::utf8_to_u32("\xe2\x82\xacx\xe2"), std::u32string(U"\u20ACx\uFFFD"));
}

TEST(TokenizerHostileInput, NulBytesAreRemovedLikeOtherControlCharacters) {
  EXPECT_EQ(shipped().encode(std::string("null\0byte", 9)), shipped().encode("nullbyte"));
}

TEST(TokenizerHostileInput, MegabyteTextsWork) {
  // One megabyte-long word (a single pre-token) and a megabyte of short words.
  const std::string word(1 << 20, 'a');
  const std::vector<int32_t> ids = shipped().encode(word);
  EXPECT_FALSE(ids.empty());
  EXPECT_EQ(shipped().decode(ids), word + " ");
  std::string words;
  while (words.size() < (1u << 20)) words += "the quick brown fox jumps over the lazy dog ";
  const clip::TokenBatch b = shipped().tokenize({words});
  EXPECT_EQ(b.row(0)[76], 49407);
}

TEST(TokenizerVocab, MissingFileIsNamed) {
  try {
    Tokenizer::from_openai_bpe("/nonexistent/vocab.txt.gz");
    FAIL() << "expected an error";
  } catch (const clip::Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/vocab.txt.gz"), std::string::npos) << e.what();
  }
}

std::string temp_path(const std::string& name) { return std::string(::testing::TempDir()) + "/" + name; }

TEST(TokenizerVocab, CorruptGzipIsNamed) {
  std::string bytes = clip::util::read_file(Tokenizer::default_vocab_path());
  bytes.resize(bytes.size() / 2);  // cut in half: a truncated gzip stream
  for (size_t i = 100; i < 200; ++i) bytes[i] = static_cast<char>(bytes[i] ^ 0x5A);
  const std::string path = temp_path("corrupt_vocab.txt.gz");
  clip::util::write_file_atomic(path, bytes);
  try {
    Tokenizer::from_openai_bpe(path);
    FAIL() << "expected an error";
  } catch (const clip::Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

TEST(TokenizerVocab, BadMergeLineIsNamedByLine) {
  std::string text = "#version: test\n";
  for (int i = 0; i < 48894; ++i) text += (i == 6 ? "a b c\n" : "a b\n");
  const std::string path = temp_path("bad_merges.txt");
  clip::util::write_file_atomic(path, text);
  try {
    Tokenizer::from_openai_bpe(path);
    FAIL() << "expected an error";
  } catch (const clip::Error& e) {
    EXPECT_NE(std::string(e.what()).find(path + ":8:"), std::string::npos) << e.what();
  }
}

TEST(TokenizerVocab, TooFewMergesIsAnError) {
  const std::string path = temp_path("short_merges.txt");
  clip::util::write_file_atomic(path, "#version\nh e\n");
  EXPECT_THROW(Tokenizer::from_openai_bpe(path), clip::Error);
}

TEST(TokenizerVocab, HfMergeWithUnknownSymbolIsNamed) {
  const std::string dir = clip::test::data_dir() + "/tokenizer/hf";
  const std::string merges = temp_path("hf_bad_merges.txt");
  clip::util::write_file_atomic(merges, "#version: 0.2\ni n\nzzzq xxyy\n");
  try {
    Tokenizer::from_hf(dir + "/vocab.json", merges);
    FAIL() << "expected an error";
  } catch (const clip::Error& e) {
    EXPECT_NE(std::string(e.what()).find(merges + ":3"), std::string::npos) << e.what();
  }
}

TEST(Tokenizer, DecodeRejectsIdsOutsideTheVocabulary) {
  EXPECT_THROW(shipped().decode({49408}), clip::Error);
  EXPECT_THROW(shipped().decode({-1}), clip::Error);
}

TEST(Tokenizer, SharedAcrossThreadsGivesTheSameIds) {
  std::vector<std::string> texts;
  for (const json& e : corpus()["entries"]) texts.push_back(e["text"]);
  const clip::TokenBatch one = shipped().tokenize(texts, 77, true, 1);
  const Tokenizer fresh;  // cold cache, filled concurrently
  const clip::TokenBatch many = fresh.tokenize(texts, 77, true, 4);
  EXPECT_TRUE(std::equal(one.begin(), one.end(), many.begin(), many.end()));
}

// tokenize() leaves its matrix unset and writes each row whole: the padding must be zeros even
// in memory that held other values (freed blocks of the same size are handed out again).
TEST(Tokenizer, PaddingIsZeroInReusedMemory) {
  for (size_t rows : {1, 3, 8, 40, 130}) {
    const std::vector<std::string> texts(rows, "a photo of a cat.");
    { std::vector<int64_t> junk(rows * 77, -7); }
    const clip::TokenBatch batch = shipped().tokenize(texts, 77, true, 2);
    for (size_t r = 0; r < rows; ++r) {
      const int64_t* row = batch.row(static_cast<int64_t>(r));
      EXPECT_EQ(row[0], 49406);
      EXPECT_EQ(row[7], 49407) << "row " << r;
      for (int i = 8; i < 77; ++i) ASSERT_EQ(row[i], 0) << "rows " << rows << ", row " << r << ", position " << i;
    }
  }
}

}  // namespace

namespace {
TEST(TokenizerFastPath, AsciiFastPathEqualsTheGeneralPath) {
  int fast = 0;
  std::vector<std::string> texts;
  for (const json& e : corpus()["entries"]) texts.push_back(e["text"]);
  for (const char* t : {"  Tab\there\r\nCR  ", "\f<|endoftext|>\f", "it's 'S", "A-B_C  d..."}) texts.push_back(t);
  for (const std::string& t : texts) {
    std::string out;
    if (!clip::text::clean_ascii_fast(t, out)) continue;
    ++fast;
    EXPECT_EQ(out, clip::text::u32_to_utf8(clip::text::clean_text(t))) << json(t).dump();
  }
  EXPECT_GT(fast, 200);
  std::string out;
  EXPECT_FALSE(clip::text::clean_ascii_fast("fish &amp; chips", out));
  EXPECT_FALSE(clip::text::clean_ascii_fast("bell\x07", out));
  EXPECT_FALSE(clip::text::clean_ascii_fast("v\x0btab", out));
  EXPECT_FALSE(clip::text::clean_ascii_fast("caf\xc3\xa9", out));
}
}  // namespace

// A smaller vocabulary keeps OpenAI's first merges. BPE makes every symbol from symbols made
// before it, so where the reference's ids all fall inside the smaller vocabulary, the smaller
// tokenizer must give exactly those ids; elsewhere it must still spell the same text.
TEST(TokenizerVocabSize, SmallerVocabularyKeepsTheFirstMerges) {
  const int vocab_size = 4096;
  const Tokenizer small = Tokenizer::with_vocab_size(vocab_size);
  EXPECT_EQ(small.vocab_size(), static_cast<size_t>(vocab_size));
  EXPECT_EQ(small.sot_id(), vocab_size - 2);
  EXPECT_EQ(small.eot_id(), vocab_size - 1);
  int exact = 0;
  for (const json& e : corpus()["entries"]) {
    const std::string text = e["text"].get<std::string>();
    const std::vector<int32_t> ids = small.encode(text);
    for (int32_t id : ids) ASSERT_LT(id, vocab_size) << show(e);  // special tokens in the text included
    const std::vector<int32_t> reference = e["ids"].get<std::vector<int32_t>>();
    const bool inside =
        std::all_of(reference.begin(), reference.end(), [&](int32_t id) { return id < vocab_size - 2; });
    if (inside) {
      EXPECT_EQ(ids, reference) << show(e);
      ++exact;
    }
    EXPECT_EQ(small.decode(ids), shipped().decode(shipped().encode(text))) << show(e);
  }
  EXPECT_GT(exact, 20) << "too few corpus texts inside the small vocabulary to test the ids";
  const clip::TokenBatch rows = small.tokenize({"a photo of a cat"}, 16);
  EXPECT_EQ(rows.row(0)[0], vocab_size - 2);
}

TEST(TokenizerVocabSize, OutOfRangeIsAnError) {
  EXPECT_THROW(Tokenizer::with_vocab_size(513), clip::Error);
  EXPECT_THROW(Tokenizer::with_vocab_size(49409), clip::Error);
  EXPECT_EQ(Tokenizer::with_vocab_size(514).vocab_size(), 514u);
}
