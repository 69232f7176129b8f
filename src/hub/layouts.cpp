#include "hub/layouts.h"

namespace clip::hub {

const RepoLayout& open_clip_layout() {
  static const RepoLayout layout{
      "open_clip",
      "open_clip_config.json",
      {"open_clip_model.safetensors", "open_clip_pytorch_model.safetensors", "open_clip_pytorch_model.bin"}};
  return layout;
}

const RepoLayout& transformers_layout() {
  static const RepoLayout layout{"transformers", "config.json", {"model.safetensors", "pytorch_model.bin"}};
  return layout;
}

const RepoLayout& local_dir_layout() {
  static const RepoLayout layout{
      "open_clip",
      "open_clip_config.json",
      {"open_clip_model.safetensors", "open_clip_pytorch_model.safetensors", "open_clip_pytorch_model.bin",
       "open_clip_pytorch_model.pth", "model.safetensors", "pytorch_model.bin"}};
  return layout;
}

}  // namespace clip::hub
