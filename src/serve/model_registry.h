// The models one `clip serve` process serves, by name. Each is loaded once, on its first request
// (the default one when the server starts), and kept within a budget: at most `max_models`
// loaded and at most `max_memory_bytes` of weights; beyond it the least recently used model is
// unloaded. Requests hold a shared_ptr to the model they use, so an unloaded model is freed only
// when the last request using it ends. A pinned model (the one an index was built with) is never
// unloaded. Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "serve/loaded.h"

namespace clip::serve {

struct ModelSpec {
  std::string name;  // what requests call it (OpenAI "model", immich "modelName")
  std::string path;  // the checkpoint
  std::string config_path;
};

// "NAME=PATH", or "PATH" named by its file stem ("ViT-B-32.pt" → "ViT-B-32"; a folder by its
// name). An existing file, or text starting with '/' or '.', is a PATH even if it holds '=';
// otherwise the text splits at the first '=' (a NAME may hold '/', as "ViT-B/32" does). An empty name or path is an
// error naming the flag value.
ModelSpec parse_model_spec(const std::string& text);

// The served name a request's model name stands for, or "" when none. Today an exact match of
// the names given with --model (then case-insensitive); this is the one place where the hub's
// name resolution (ViT-B-32__openai ≡ ViT-B/32 ≡ openai ...) will plug in.
std::string resolve_served_model(const std::vector<std::string>& served_names, const std::string& requested);

struct ModelBudget {
  size_t max_models = 0;          // 0: no limit
  uint64_t max_memory_bytes = 0;  // 0: no limit; counts the weights (parameters and buffers)
};

// The weights' bytes of a model: what the memory budget counts.
uint64_t model_weight_bytes(const Model& model);

class ModelRegistry {
 public:
  using Loader = std::function<std::shared_ptr<const LoadedModel>(const ModelSpec&)>;

  // `specs` non-empty with distinct names; the first is the default. `loader` loads one spec.
  ModelRegistry(std::vector<ModelSpec> specs, ModelBudget budget, Loader loader);

  // The model named `name` (a served name), loading it if needed and unloading others to stay
  // within the budget. Throws clip::Error: kNotFound for an unknown name, kTooLarge when the
  // model cannot fit the budget even alone (beside the pinned one), or the loader's error.
  // Concurrent requests for a model being loaded wait for that one load.
  std::shared_ptr<const LoadedModel> acquire(const std::string& name);
  // Registers an already loaded model as `name` (added if unknown) and pins it.
  void pin(const std::string& name, std::shared_ptr<const LoadedModel> model);

  const std::string& default_name() const { return default_name_; }
  std::vector<std::string> names() const;
  // The served name for a request's model name ("" when none): resolve_served_model over names().
  std::string resolve(const std::string& requested) const;
  // [{name, path, loaded, pinned, weight_bytes, embed_dim}] for /healthz.
  nlohmann::json describe() const;
  size_t loaded_count() const;

 private:
  struct Entry;
  void evict_locked(const Entry* keep);

  std::string default_name_;
  ModelBudget budget_;
  Loader loader_;
  mutable std::mutex mutex_;
  std::vector<std::shared_ptr<Entry>> entries_;  // in --model order
  uint64_t clock_ = 0;                           // use counter: the LRU order
};

}  // namespace clip::serve
