// The architecture of a CLIP model: the arguments of OpenAI's CLIP(...) constructor plus what
// open_clip made configurable. Kept as data (JSON), never as code.
#pragma once

#include <array>
#include <map>
#include <string>
#include <vector>

#include "clip/preprocess_config.h"

namespace clip {

enum class TextEncoder { kTransformer, kCbow };
// "transformer" / "cbow"; text_encoder_from_name throws clip::Error naming `where` otherwise.
std::string text_encoder_name(TextEncoder e);
TextEncoder text_encoder_from_name(const std::string& name, const std::string& where);

struct ModelConfig {
  std::string name;  // e.g. "ViT-B-32"; empty when inferred
  int embed_dim = 0;
  // Vision tower: a ViT when vision_patch_size > 0, else a ModifiedResNet.
  int image_resolution = 0;
  int vision_layers = 0;                      // ViT: transformer blocks
  std::array<int, 4> vision_resnet_layers{};  // ModifiedResNet: blocks per stage
  int vision_width = 0;
  int vision_patch_size = 0;
  int vision_heads = 0;  // 0: derived (ViT width/head_width, ResNet width*32/64)
  int vision_head_width = 64;
  double vision_mlp_ratio = 4.0;
  // Text tower: CLIP's causal Transformer, or a continuous bag of words (CBOW: the mean of the
  // caption's token embeddings, padding excluded, then a linear projection; no positions, no
  // attention; the paper's cheapest text encoder). JSON "text_encoder": "transformer" | "cbow".
  TextEncoder text_encoder = TextEncoder::kTransformer;
  int context_length = 77;
  int vocab_size = 49408;
  int transformer_width = 0;
  int transformer_heads = 0;   // 0: derived (width / 64)
  int transformer_layers = 0;  // CBOW: 0 (transformer_width is its embedding width)
  double text_mlp_ratio = 4.0;
  double layer_norm_eps = 1e-5;
  bool quick_gelu = true;  // OpenAI models: QuickGELU; most open_clip ones: GELU
  // How images are prepared for it (open_clip's preprocess_cfg; size 0 or image_resolution).
  // The default is CLIP's: bicubic shortest-side resize, centre crop, OpenAI's mean and std.
  PreprocessConfig preprocess;

  bool is_vit() const { return vision_patch_size > 0; }
  bool is_cbow() const { return text_encoder == TextEncoder::kCbow; }
  int resolved_vision_heads() const;
  int resolved_text_heads() const;
  int vision_grid() const { return is_vit() ? image_resolution / vision_patch_size : image_resolution / 32; }
  // Throws clip::Error naming `where` and the field when something is missing or inconsistent.
  void validate(const std::string& where) const;
};

// Our JSON (OpenAI constructor argument names; "vision_layers" an int for ViT or a list of 4 for
// ResNet; optional "preprocess" as open_clip's preprocess_cfg), open_clip's open_clip_config.json
// ("model_cfg" and "preprocess_cfg"), or a Hugging Face CLIPModel config.json (recognized by
// "text_config"/"vision_config").
ModelConfig config_from_json_text(const std::string& json_text, const std::string& where);
ModelConfig config_from_file(const std::string& path);
std::string config_to_json(const ModelConfig& c);

// Named configs shipped with CLIP++ (RN50 ... ViT-L/14@336px, ViT-H/14, ViT-g/14, ViT-bigG/14).
// Names are matched ignoring case and '/', '-', '@' differences ("ViT-B/32" == "vit-b-32").
std::vector<std::string> named_config_names();
ModelConfig named_config(const std::string& name);

}  // namespace clip
