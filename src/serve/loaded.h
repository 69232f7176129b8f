// What the service loads in the background: the models and their embedders, and the optional
// index (replaced when a newer generation is reloaded). A request takes one Loaded snapshot when
// it starts and keeps that generation to its end, whatever reloads happen meanwhile. Model,
// Tokenizer and ImageIndex searches are thread-safe.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "clip/embedder.h"
#include "clip/image.h"
#include "clip/index.h"
#include "clip/model.h"
#include "serve/inference_batcher.h"

namespace clip::serve {

struct LoadedModel {
  // batch_window: see InferenceBatcher (negative: every request computes on its own).
  explicit LoadedModel(Model m, std::chrono::microseconds batch_window = std::chrono::microseconds(-1))
      : model(std::move(m)), embedder(model, 1), batcher(batch_window, 256, 32) {}
  LoadedModel(const LoadedModel&) = delete;
  LoadedModel& operator=(const LoadedModel&) = delete;

  Model model;
  Embedder embedder;  // refers to `model`: LoadedModel never moves (held by shared_ptr)
  InferenceBatcher batcher;  // the API endpoints' forward passes (embed_inputs.h)
};

class ModelRegistry;

// The duplicate groups of one index generation (GET /duplicates), computed one request at a time
// and kept per threshold, so that the page's repeated asks cost one computation.
struct DuplicatesCache {
  std::mutex mutex;
  std::map<float, std::string> body_by_threshold;  // the JSON response
};

struct Loaded {
  // The default model; set for the request when it starts (the registry may have unloaded it
  // meanwhile, and loads it again). With an index, the index's model, pinned.
  std::shared_ptr<const LoadedModel> loaded_model;
  std::shared_ptr<ModelRegistry> models;           // every served model, by name (--model, repeated)
  std::shared_ptr<const index::ImageIndex> index;  // null without --index
  std::shared_ptr<DuplicatesCache> duplicates;     // with the index: one per generation

  const Model& model() const { return loaded_model->model; }
  const Embedder& embedder() const { return loaded_model->embedder; }
};

}  // namespace clip::serve
