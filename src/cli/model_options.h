// Flags shared by every `clip` subcommand that loads a model, and the loading itself.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "clip/hub.h"
#include "clip/model.h"

namespace clip::cli {

struct ModelOptions {
  std::string model;       // --model NAME or PATH (docs/models.md: names, the Hugging Face cache)
  std::string pretrained;  // --pretrained TAG (open_clip's separate tag)
  bool offline = false;    // --offline (also HF_HUB_OFFLINE=1): the cache only, no download
  std::string config;      // --config FILE
  int threads = 0;         // --threads (0: all cores)
  std::string device = "cpu";
  std::string precision = "fp32";
};

// Adds --model (required), --pretrained, --offline, --config, --threads, --device, --precision.
void add_model_options(CLI::App* cmd, ModelOptions& o);
// Adds only --pretrained and --offline (for commands with their own --model flag).
void add_model_name_options(CLI::App* cmd, std::string& pretrained, bool& offline);

// The hub's options from the environment, with --offline applied.
hub::HubOptions hub_options(bool offline);

// Resolves --model (a path, or a name through the cache and downloads) to the files to load.
hub::ResolvedModel resolve_model_files(const std::string& model, const std::string& pretrained, bool offline);

// Sets threads and the allocator policy, then loads the model as the flags say, with the
// preprocessing the name brings. *resolved, when given, receives the files loaded.
Model load_model(const ModelOptions& o, hub::ResolvedModel* resolved = nullptr);

}  // namespace clip::cli
