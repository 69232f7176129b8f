// From a checkpoint's tensors to OpenAI-named float tensors: key-name maps (OpenAI, open_clip,
// Hugging Face), config inference from shapes, and reading any supported checkpoint file.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "clip/config.h"
#include "clip/model.h"

namespace clip::model {

// Renames a checkpoint's tensors to OpenAI's keys: strips "module." (DDP), open_clip's "text."
// tower prefix, and maps Hugging Face CLIPModel names (q/k/v joined into in_proj, projections
// transposed). Entries no CLIP model uses (position_ids, TorchScript's int scalars) are kept; the
// loader lists what it does not expect.
StateDict to_openai_names(StateDict tensors, const std::string& source);

// The architecture implied by OpenAI-named tensor shapes (as OpenAI's build_model). Head counts
// cannot be inferred: width / 64 is assumed, so pass an explicit config when that is wrong.
ModelConfig infer_config(const StateDict& tensors, const std::string& source);

// Everything a checkpoint file or folder holds: tensors (original names and dtypes) and, when
// the file carries one, a config (safetensors metadata "config", or a Hugging Face config.json).
// A quantized file's (clip convert --dtype int8) int8 weights are dequantized to float32, unless
// keep_int8: they then stay int8 in `tensors` and their scales, validated, are in int8_scales by
// the weight's name (for an int8-only model, inference_plan.h).
struct Checkpoint {
  StateDict tensors;
  std::optional<ModelConfig> config;
  std::map<std::string, torch::Tensor> int8_scales;
};
Checkpoint read_checkpoint(const std::string& path, bool keep_int8 = false);

}  // namespace clip::model
