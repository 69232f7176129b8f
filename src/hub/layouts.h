// The repository layouts a model comes in, and which files each needs, in order of preference
// (safetensors first).
#pragma once

#include <string>
#include <vector>

namespace clip::hub {

struct RepoLayout {
  const char* name;                  // "open_clip" or "transformers"
  std::string config;                // the config file
  std::vector<std::string> weights;  // the first one present is used
};

// open_clip: open_clip_config.json + open_clip_model.safetensors, else the others.
const RepoLayout& open_clip_layout();
// transformers: config.json + model.safetensors, else pytorch_model.bin.
const RepoLayout& transformers_layout();
// A local folder (open_clip's local-dir: also tries .pth and the transformers names).
const RepoLayout& local_dir_layout();

}  // namespace clip::hub
