// CLIP models in libtorch: load any checkpoint users hold, encode images and texts.
#pragma once

#include <torch/torch.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "clip/config.h"
#include "clip/tokenizer.h"

namespace clip {

namespace image {
struct PreprocessOptions;  // clip/image.h
}  // namespace image

namespace model {
class ClipModuleImpl;  // the libtorch module (src/model/modules.h), not part of the public API
class InferencePlan;   // src/model/inference_plan.h: the CPU inference path, built once per model
struct ModelAccess;    // src/model/model_access.h: the module for the library's own training and tests
}  // namespace model

// Named layer outputs recorded on request, for locating a mismatch (NLD for token sequences,
// NCHW for ResNet maps): "image.conv1", "image.ln_pre", "image.resblock0", ..., "text.ln_final".
using Intermediates = std::map<std::string, torch::Tensor>;

// Tensors by OpenAI key name (the canonical naming), in a stable order.
using StateDict = std::vector<std::pair<std::string, torch::Tensor>>;

enum class Precision { kFP32, kBF16, kInt8 };
// "fp32" / "bf16" / "int8"; throws clip::Error naming the value otherwise.
Precision precision_from_name(const std::string& name);
// The name precision_from_name reads.
std::string precision_name(Precision p);

struct LoadOptions {
  std::string config_path;  // explicit architecture (our JSON, open_clip_config.json or an HF config.json)
  // The model's image preprocessing when it comes from elsewhere than the config (a model
  // resolved by name: hub::ResolvedModel::preprocess); replaces the config's.
  std::optional<PreprocessConfig> preprocess;
  torch::Device device = torch::kCPU;
  // Weights stay fp32; kBF16 runs under libtorch's autocast: the transformer linears go through
  // our oneDNN path with bf16 packed weights (model/inference_plan.h), other matrix products through
  // autocast; LayerNorm, softmax and the outputs stay fp32. kInt8 (CPU inference only): the
  // transformer linears and projections in int8 (weights per output channel, activations per
  // token, quantized when first used), the rest in fp32; a ResNet image tower in bf16.
  Precision precision = Precision::kFP32;
  // kInt8 on a quantized checkpoint (clip convert --dtype int8) loads the model int8-only: the
  // file's int8 weights go straight into the int8 packs, and no float copy of them is made, so
  // it loads faster and holds about a quarter of those weights' memory. Such a model runs
  // precision int8 only; other precisions, state_dict, saving and training refuse (clip::Error).
  // true keeps the float weights (dequantized) as for any other file.
  bool keep_float_weights = false;
};

class Model {
 public:
  // Loads a checkpoint (file or folder, format detected from its bytes): safetensors, torch.save
  // zip (incl. open_clip training checkpoints), TorchScript archives, Hugging Face folders. Key
  // names (OpenAI, open_clip, HF) are recognized whatever the container. The config comes from
  // options.config_path, else the checkpoint's metadata or HF config.json, else a
  // `<stem>.config.json` or (open_clip's folders) `open_clip_config.json` beside the file, else
  // the tensor shapes. The config carries the image preprocessing (options.preprocess replaces it).
  static Model load(const std::string& path, const LoadOptions& options = {});
  // A model with CLIP's random initialisation (seeded), e.g. for training from scratch.
  static Model random(const ModelConfig& config, uint64_t seed, torch::Device device = torch::kCPU);
  // Builds a model from tensors already in OpenAI naming (shapes and names are checked). Each
  // tensor is released once copied, so moving a checkpoint in lets its memory go as loading goes.
  static Model from_state_dict(const ModelConfig& config, StateDict tensors, const std::string& source,
                               torch::Device device = torch::kCPU);

  const ModelConfig& config() const { return config_; }
  // The pipeline options every image for this model goes through: config().preprocess (open_clip's
  // preprocess_cfg: filter, resize mode, fill, mean, std) at image_resolution. Include clip/image.h.
  image::PreprocessOptions image_preprocess() const;
  torch::Device device() const { return device_; }
  Precision precision() const { return precision_; }
  // kInt8 on a model not on the CPU is refused (ErrorKind::kUnsupported), and any other than kInt8
  // on an int8-only model (LoadOptions::keep_float_weights).
  void set_precision(Precision p);
  // Whether the model was loaded int8-only (LoadOptions::keep_float_weights).
  bool int8_only() const;

  // images: float [N, 3, R, R] (preprocessed); returns [N, embed_dim], not normalized.
  torch::Tensor encode_image(const torch::Tensor& images, Intermediates* record = nullptr) const;
  // tokens: int64 [N, L] rows as Tokenizer::tokenize makes them; returns [N, embed_dim], not
  // normalized. Positions after the batch's last end token are not computed (the causal mask
  // makes them irrelevant to the pooled output).
  torch::Tensor encode_text(const torch::Tensor& tokens, Intermediates* record = nullptr) const;
  // exp(logit_scale) * normalize(image) @ normalize(text)^T: [N_images, N_texts].
  torch::Tensor logits(const torch::Tensor& image_features, const torch::Tensor& text_features) const;
  float logit_scale() const;

  // The weights with OpenAI key names (for saving and conversion). Refused on an int8-only model.
  StateDict state_dict() const;
  // The bytes the weights take in memory (parameters and buffers; an int8-only model's int8
  // weights and scales in place of the float weights it does not hold).
  uint64_t weight_bytes() const;
  // Writes the weights (OpenAI key names, floating-point tensors converted to `dtype`: kFloat32,
  // kFloat16 or kBFloat16; kInt8 stores the weights int8 inference quantizes as int8 with their
  // scales and the rest as float16/float32, docs/checkpoints.md) and the config (metadata "config")
  // to one safetensors file, atomically. Returns the number of tensors written.
  size_t save_safetensors(const std::string& path, torch::ScalarType dtype = torch::kFloat32) const;

  // Training: recompute each transformer block in the backward pass instead of keeping its
  // activations (less memory, about a third more compute). Off by default. Refused on an
  // int8-only model.
  void set_gradient_checkpointing(bool on);

 private:
  friend struct model::ModelAccess;
  Model(ModelConfig config, std::shared_ptr<model::ClipModuleImpl> module, torch::Device device);
  // The model `config` describes with the weights of `tensors` (checked against the config
  // before the model is built; released one by one as copied), in eval mode on `device`.
  // int8_scales (read_checkpoint with keep_int8): the int8 weights the int8 path runs go into
  // its packs (int8-only), any other is dequantized.
  static Model from_tensors(const ModelConfig& config, StateDict tensors,
                            const std::map<std::string, torch::Tensor>& int8_scales, const std::string& source,
                            const std::string& config_origin, torch::Device device);
  // Throws clip::Error naming `what` when the model is int8-only.
  void refuse_if_int8_only(const std::string& what) const;
  ModelConfig config_;
  std::shared_ptr<model::ClipModuleImpl> module_;
  std::shared_ptr<model::InferencePlan> inference_;  // the CPU fast path and its packed weights
  torch::Device device_;
  Precision precision_ = Precision::kFP32;
};

// glibc returns every large freed block to the system, so a loop of inference calls page-faults
// its activations on every call (up to 4x slower here). This keeps freed memory in the process
// (mallopt: no mmap for large blocks, no trimming). It changes process-wide allocator settings,
// so it is the application's choice: the `clip` command calls it at start-up.
void keep_freed_memory_for_reuse();

// Sets libtorch's intra-op threads (threads <= 0: all cores). Debian's libtorch starts with 1.
void set_threads(int threads);

// The tokenizer a model was trained with: OpenAI's vocabulary, cut to the model's vocab_size
// when that is smaller (models trained from scratch with a smaller vocabulary).
Tokenizer tokenizer_for_model(const ModelConfig& config);

// Runs a scope under CPU/CUDA autocast to bf16 when asked (Precision::kBF16); restores the
// previous state on exit. Training uses it around its forward passes.
class AutocastScope {
 public:
  AutocastScope(Precision p, torch::Device device);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool active_, cpu_ = true, was_enabled_ = false;
};

// L2-normalizes rows.
torch::Tensor normalize_rows(const torch::Tensor& x);

}  // namespace clip
