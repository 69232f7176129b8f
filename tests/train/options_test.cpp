// The options' checks: an OptionError names the TrainOptions fields, and a front end can name them
// its own way (the CLI: as flags; tests/cli/train_cli_test.cpp).
#include <gtest/gtest.h>

#include <string>

#include "clip/train.h"
#include "temp_dir.h"

namespace {

using clip::train::OptionError;

// The OptionError train() throws for these options (none: the test fails).
std::string bracketed_message(const clip::train::TrainOptions& o, std::string* what) {
  try {
    clip::train::train(o);
  } catch (const OptionError& e) {
    *what = e.what();
    return e.message([](const std::string& field) { return "<" + field + ">"; });
  }
  ADD_FAILURE() << "no OptionError";
  return "";
}

TEST(Options, ErrorsNameTheFieldsAndAFrontEndRenamesThem) {
  clip::test::TempDir tmp;
  clip::train::TrainOptions o;
  o.out_dir = tmp.path() + "/run";
  o.batch_size = 16;
  o.accum_steps = 3;
  std::string what;
  EXPECT_EQ(bracketed_message(o, &what), "<accum_steps> must divide the per-rank batch (16), found 3");
  EXPECT_EQ(what, "accum_steps must divide the per-rank batch (16), found 3");

  o.accum_steps = 1;
  o.lock_image = o.lock_text = true;
  EXPECT_EQ(bracketed_message(o, &what), "<lock_image> and <lock_text> together leave nothing to train");
  EXPECT_EQ(what, "lock_image and lock_text together leave nothing to train");
}

TEST(Options, OptionErrorKeepsItsKind) {
  const OptionError e({clip::train::option("resume"), {" latest: no checkpoint in /x"}}, clip::ErrorKind::kNotFound);
  EXPECT_EQ(e.kind(), clip::ErrorKind::kNotFound);
  EXPECT_EQ(std::string(e.what()), "resume latest: no checkpoint in /x");
  EXPECT_EQ(e.message([](const std::string&) { return "--resume"; }), "--resume latest: no checkpoint in /x");
}

}  // namespace
