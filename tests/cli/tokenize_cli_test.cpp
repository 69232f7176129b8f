// `clip tokenize`: output formats, stdin, errors and exit codes.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli/cli_run.h"

using clip::test::run_clip;

TEST(CliTokenize, PrintsRowsWithoutPadding) {
  const auto r = run_clip("tokenize 'a photo of a cat' 'A Dog!'");
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.output, "49406 320 1125 539 320 2368 49407\n49406 320 1929 256 49407\n");
}

TEST(CliTokenize, ReadsOneTextPerLineFromStdin) {
  const auto r =
      run_clip("tokenize - < /dev/null; printf 'a cat\\r\\na dog\\n' | " + std::string(CLIP_EXE) + " tokenize -");
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.output, "49406 320 2368 49407\n49406 320 1929 49407\n");
}

TEST(CliTokenize, JsonHasIdsAndPaddedRows) {
  const auto r = run_clip("tokenize --json --context-length 8 'a cat'");
  ASSERT_EQ(r.status, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output);
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(j[0]["ids"], nlohmann::json({320, 2368}));
  EXPECT_EQ(j[0]["row"], nlohmann::json({49406, 320, 2368, 49407}));
  const auto padded = nlohmann::json::parse(run_clip("tokenize --json --pad --context-length 6 'a cat'").output);
  EXPECT_EQ(padded[0]["row"], nlohmann::json({49406, 320, 2368, 49407, 0, 0}));
}

TEST(CliTokenize, NoTruncateNamesTheTextAndItsLength) {
  const auto r = run_clip("tokenize --no-truncate --context-length 4 'ok' 'one two three' 2>&1");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("error: text 1 has 3 tokens"), std::string::npos) << r.output;
}

TEST(CliTokenize, TruncatesByDefault) {
  const auto r = run_clip("tokenize --context-length 4 'one two three'");
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.output, "49406 637 1237 49407\n");
}

TEST(CliTokenize, MissingVocabularyIsNamed) {
  const auto r = run_clip("tokenize --vocab /nonexistent/bpe.txt.gz 'a' 2>&1");
  EXPECT_EQ(r.status, 3);  // not found
  EXPECT_NE(r.output.find("/nonexistent/bpe.txt.gz"), std::string::npos) << r.output;
}

TEST(CliTokenize, UsageErrorsExitWithTwo) {
  EXPECT_EQ(run_clip("tokenize --context-length 1 a 2>&1").status, 2);
  EXPECT_EQ(run_clip("tokenize --bogus a 2>&1").status, 2);
  EXPECT_EQ(run_clip("tokenize 2>&1").status, 2);
  EXPECT_EQ(run_clip("2>&1").status, 2);
}
