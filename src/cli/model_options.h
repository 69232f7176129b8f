// Flags shared by every `clip` subcommand that loads a model, and the loading itself.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "clip/model.h"

namespace clip::cli {

struct ModelOptions {
  std::string model;      // --model PATH (file or folder; format from its bytes)
  std::string config;     // --config FILE
  int threads = 0;        // --threads (0: all cores)
  std::string device = "cpu";
  std::string precision = "fp32";
};

// Adds --model (required), --config, --threads, --device, --precision to `cmd`.
void add_model_options(CLI::App* cmd, ModelOptions& o);

// Sets threads and the allocator policy, then loads the model as the flags say.
Model load_model(const ModelOptions& o);

}  // namespace clip::cli
