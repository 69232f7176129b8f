// `clip train`: errors in the options name the flags (the library names TrainOptions fields;
// src/cli/cmd_train.cpp renames them).
#include <gtest/gtest.h>

#include "cli/cli_run.h"
#include "temp_dir.h"
#include "test_paths.h"

namespace {

using clip::test::run_clip;

std::string fixture_model() { return clip::test::data_dir() + "/fixtures/models/tiny-vit-f16.safetensors"; }

TEST(CliTrain, OptionErrorsNameTheFlags) {
  clip::test::TempDir tmp;
  const std::string out = " --out " + tmp.path() + "/run";
  auto r = run_clip("train --batch-size 16 --accum-steps 3" + out + " 2>&1");
  EXPECT_NE(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("error: --accum-steps must divide the per-rank batch (16), found 3"), std::string::npos)
      << r.output;

  r = run_clip("train --lock-image --lock-text" + out + " 2>&1");
  EXPECT_NE(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("error: --lock-image and --lock-text together leave nothing to train"), std::string::npos)
      << r.output;

  // Found once the model is built: the data source, and options that only apply from scratch.
  r = run_clip("train --model " + fixture_model() + " --data nothing" + out + " 2>&1");
  EXPECT_NE(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("error: --data \"nothing\" is not a known source"), std::string::npos) << r.output;
  r = run_clip("train --model " + fixture_model() + " --vocab-size 600" + out + " 2>&1");
  EXPECT_NE(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("error: --vocab-size and --context-length apply to models trained from scratch"),
            std::string::npos)
      << r.output;
}

TEST(CliTrain, ObjectiveErrorsNameTheFlags) {
  clip::test::TempDir tmp;
  const std::string out = " --out " + tmp.path() + "/run";
  auto r = run_clip("train --objective captions" + out + " 2>&1");
  EXPECT_NE(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("--objective: captions not in {contrastive,bow-predict,caption}"), std::string::npos)
      << r.output;
  r = run_clip("train --objective caption --model FMNIST-CBOW" + out + " 2>&1");
  EXPECT_NE(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("error: the caption objective needs a Transformer text tower; this config's text tower is "
                          "CBOW"),
            std::string::npos)
      << r.output;
  r = run_clip("train --objective bow-predict --loss siglip" + out + " 2>&1");
  EXPECT_NE(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("error: --loss and --local-loss apply to the contrastive objective, not to --objective "
                          "bow-predict"),
            std::string::npos)
      << r.output;
  r = run_clip("train --objective bow-predict --lock-image" + out + " 2>&1");
  EXPECT_NE(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("error: --lock-image leaves --objective bow-predict only its head to train"),
            std::string::npos)
      << r.output;
}

}  // namespace
