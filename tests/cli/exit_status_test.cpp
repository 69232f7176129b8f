// The exit status of the real `clip` binary says the kind of failure (README.md, "Exit status"):
// one command per status, each failing for a reason of that kind.
#include <gtest/gtest.h>

#include <set>

#include "cli/cli_run.h"
#include "cli/exit_status.h"
#include "temp_dir.h"
#include "test_paths.h"

using clip::test::run_clip;

namespace {

std::string image(const std::string& name) { return clip::test::data_dir() + "/images/files/" + name; }

}  // namespace

TEST(CliExitStatus, SuccessIsZero) { EXPECT_EQ(run_clip("tokenize 'a cat' 2>&1").status, 0); }

TEST(CliExitStatus, InvalidInputIsOne) {
  const auto r = run_clip("tokenize --no-truncate --context-length 4 'one two three' 2>&1");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("error: "), std::string::npos) << r.output;
}

TEST(CliExitStatus, UsageErrorIsTwo) {
  EXPECT_EQ(run_clip("tokenize --no-such-flag 'a' 2>&1").status, 2);
  EXPECT_EQ(run_clip("no-such-command 2>&1").status, 2);
}

TEST(CliExitStatus, NotFoundIsThree) {
  auto r = run_clip("tokenize --vocab /nonexistent/bpe.txt.gz 'a' 2>&1");
  EXPECT_EQ(r.status, 3) << r.output;
  EXPECT_NE(r.output.find("/nonexistent/bpe.txt.gz"), std::string::npos) << r.output;
  r = run_clip("preprocess " + image("no_such.jpg") + " 2>&1");
  EXPECT_EQ(r.status, 3) << r.output;
}

TEST(CliExitStatus, IoErrorIsFour) {
  // The output's folder is a regular file: the write fails for a reason outside the input.
  const clip::test::TempDir tmp;
  const std::string not_a_folder = tmp.write("file", "x");
  const auto r = run_clip("preprocess -q --size 32 " + image("rocket.jpg") + " --out " + not_a_folder + "/x.npy 2>&1");
  EXPECT_EQ(r.status, 4) << r.output;
  EXPECT_NE(r.output.find(not_a_folder + "/x.npy"), std::string::npos) << r.output;
}

TEST(CliExitStatus, UnsupportedIsFive) {
  const clip::test::TempDir tmp;
  const std::string text = tmp.write("notes.jpg", "these are notes, not an image\n");
  const auto r = run_clip("preprocess " + text + " 2>&1");
  EXPECT_EQ(r.status, 5) << r.output;
  EXPECT_NE(r.output.find("cannot identify the image format"), std::string::npos) << r.output;
}

TEST(CliExitStatus, TooLargeIsSix) {
  auto r = run_clip("preprocess --max-pixels 1000 " + image("rocket.jpg") + " 2>&1");
  EXPECT_EQ(r.status, 6) << r.output;
  EXPECT_NE(r.output.find("over the limit of 1000"), std::string::npos) << r.output;
}

// No input reaches an internal error (that would be a bug), so the table is checked directly:
// every kind has its own status, none of them 0 or the usage status.
TEST(CliExitStatus, EveryKindHasItsOwnStatus) {
  using clip::ErrorKind;
  std::set<int> seen;
  for (ErrorKind kind : {ErrorKind::kInvalidInput, ErrorKind::kTooLarge, ErrorKind::kNotFound, ErrorKind::kIo,
                         ErrorKind::kUnsupported, ErrorKind::kInternal}) {
    const int status = clip::cli::exit_status_for(kind);
    EXPECT_NE(status, 0);
    EXPECT_NE(status, clip::cli::kExitUsage);
    EXPECT_TRUE(seen.insert(status).second) << clip::error_kind_name(kind);
  }
  EXPECT_EQ(clip::cli::exit_status_for(ErrorKind::kInternal), 70);
}
