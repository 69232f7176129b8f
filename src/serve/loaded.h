// What the service loads in the background: the model, its embedder and the optional index.
// Built once, then shared read-only by every request thread (Model, Tokenizer and ImageIndex
// searches are thread-safe).
#pragma once

#include <memory>
#include <optional>

#include "clip/embedder.h"
#include "clip/image.h"
#include "clip/index.h"
#include "clip/model.h"

namespace clip::serve {

struct Loaded {
  Loaded(Model m, std::optional<index::ImageIndex> i)
      : model(std::move(m)), embedder(model, 1), index(std::move(i)) {}
  Loaded(const Loaded&) = delete;
  Loaded& operator=(const Loaded&) = delete;

  Model model;
  Embedder embedder;  // refers to `model`: Loaded never moves (held by shared_ptr)
  std::optional<index::ImageIndex> index;
};

}  // namespace clip::serve
