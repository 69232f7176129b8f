// Models by name: every spelling users have (OpenAI, open_clip, hf-hub:, local-dir:,
// clip-retrieval, clip-as-service, immich), resolved to files through the shared Hugging Face
// cache, downloading what is missing unless offline. Torch-free (src/hub/); docs/models.md.
//
//   clip::hub::ResolvedModel m = clip::hub::resolve_model("ViT-B-32/laion2b_s34b_b79k");
//   clip::LoadOptions lo;
//   lo.config_path = m.config;                // may be empty: the loader then reads the weights
//   clip::Model model = clip::Model::load(m.weights, lo);
#pragma once

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "clip/preprocess_config.h"

namespace clip::hub {

// open_clip's preprocess_cfg (include/clip/preprocess_config.h). size 0: the model's image_resolution.
using PreprocessConfig = clip::PreprocessConfig;

// One row of assets/models/pretrained.json.
struct PretrainedEntry {
  std::string arch;  // open_clip architecture, e.g. "ViT-B-32"
  std::string tag;   // open_clip pretrained tag, e.g. "laion2b_s34b_b79k"
  std::string repo;  // Hugging Face repo holding open_clip_config.json and the weights
  bool quick_gelu = false;
  PreprocessConfig preprocess;
  std::string openai_name;  // "ViT-B/32" for OpenAI's nine (tag openai), else empty
  std::string openai_file;  // the file openai/CLIP caches in ~/.cache/clip, e.g. "ViT-B-32.pt"
};

// The table, in open_clip's order (loaded once from the shipped asset).
const std::vector<PretrainedEntry>& pretrained_table();

enum class SourceKind {
  kPath,        // a file or folder given directly (also local-dir:PATH)
  kHubRepo,     // hf-hub:ORG/REPO[@REVISION]
  kPretrained,  // a known architecture + tag (all other spellings)
};

struct ModelSpec {
  SourceKind kind = SourceKind::kPath;
  std::string path;                      // kPath
  std::string repo;                      // kHubRepo and kPretrained
  std::string revision = "main";         // kHubRepo and kPretrained
  std::optional<PretrainedEntry> entry;  // kPretrained
  std::string name;                      // as the user wrote it, for messages
};

// Parses a model name without touching the file system. `pretrained` is open_clip's separate
// tag (--pretrained), empty when not given. Unknown names throw clip::Error (kNotFound) that
// suggests the closest known names; malformed repo ids, revisions or paths throw kInvalidInput.
ModelSpec parse_model_name(const std::string& name, const std::string& pretrained = "");

// Up to `count` known spellings closest to `name` (edit distance), best first.
std::vector<std::string> closest_names(const std::string& name, size_t count = 3);

// Where files come from and go. Defaults follow huggingface_hub's environment variables.
struct HubOptions {
  std::string cache_dir;                            // $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub
  std::string endpoint = "https://huggingface.co";  // $HF_ENDPOINT
  std::string token;             // $HF_TOKEN, else the file $HF_HOME/token (~/.cache/huggingface/token)
  bool offline = false;          // $HF_HUB_OFFLINE=1 (or --offline): never touch the network
  std::string openai_cache_dir;  // openai/CLIP's cache: ~/.cache/clip
  bool progress = true;          // a progress line on stderr when it is a terminal
  // Retries of a failed transfer (5xx, connection reset) and the first backoff (doubled each try).
  int retries = 4;
  double backoff_seconds = 1.0;
};
HubOptions hub_options_from_environment();

struct ResolvedModel {
  std::string weights;                         // the checkpoint file to load
  std::string config;                          // open_clip_config.json or config.json; empty when the weights carry it
  std::optional<PreprocessConfig> preprocess;  // from open_clip_config.json or the table
  std::string description;                     // e.g. "laion/CLIP-ViT-B-32-laion2B-s34B-b79K@main (cache)"
};

// Resolution order: an existing path; the Hugging Face cache (and openai/CLIP's cache for
// OpenAI's names); a download into the Hugging Face cache unless options.offline.
ResolvedModel resolve_model(const std::string& name, const HubOptions& options = hub_options_from_environment(),
                            const std::string& pretrained = "");
ResolvedModel resolve_model(const ModelSpec& spec, const HubOptions& options);

}  // namespace clip::hub
