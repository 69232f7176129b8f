// Files and strings to features in C++, batch by batch, with no Python per item: decoding and
// preprocessing on a thread pool (image::preprocess_files), tokenizing likewise, then the model.
// Like clip::Embedder, but with the model's own preprocessing options (open_clip's
// preprocess_cfg) and a progress call after each batch.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "clip/image.h"
#include "clip/model.h"
#include "clip/tokenizer.h"

namespace clip::python {

// Called after each batch with the rows done and the total.
using Progress = std::function<void(int64_t done, int64_t total)>;

// [N, embed_dim] features, not normalized, rows in input order. A file that fails throws
// clip::Error naming it (its kind: not found, invalid, ...). threads <= 0: all cores.
torch::Tensor embed_image_files(const Model& model, const image::PreprocessOptions& preprocess,
                                const std::vector<std::string>& paths, int batch_size, int threads,
                                const Progress& progress);
// [N, embed_dim] text features, not normalized; over-long texts are truncated (open_clip).
torch::Tensor embed_texts(const Model& model, const Tokenizer& tokenizer, const std::vector<std::string>& texts,
                          int batch_size, int threads, const Progress& progress);

}  // namespace clip::python
