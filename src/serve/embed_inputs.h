// Embeddings of the inputs the HTTP APIs take (OpenAI's /v1/embeddings, immich's /predict):
// texts, token id arrays and encoded images, computed with one loaded model and L2-normalized
// (unit length, as OpenAI's and immich's embeddings are). Bad inputs are HttpError 400 (413
// beyond a limit) naming the input.
#pragma once

#include <string>
#include <vector>

#include "clip/image.h"
#include "serve/http_util.h"
#include "serve/loaded.h"
#include "serve/server.h"

namespace clip::serve {

// [N, embed_dim], normalized; over-long texts are truncated to the model's context (open_clip).
torch::Tensor embed_texts_normalized(const LoadedModel& m, const std::vector<std::string>& texts);

// Token ids as given (without start and end tokens, which are added): each id in
// [0, vocab_size), at most context_length - 2 of them, else 400 naming `what`[i].
torch::Tensor embed_token_ids_normalized(const LoadedModel& m, const std::vector<std::vector<int64_t>>& ids,
                                         const std::string& what);

// The number of tokens the model reads for `text`: its ids plus start and end, at most the context.
int64_t text_token_count(const LoadedModel& m, const std::string& text);

// Encoded image files (`labels[i]` names each in errors): decoded within o.max_pixels (checked from
// the header, before the pixels are allocated), preprocessed for the model, encoded, normalized.
// `sources` (optional) receives each image's decoded size.
torch::Tensor embed_images_normalized(const LoadedModel& m, const ServerOptions& o,
                                      const std::vector<std::string>& encoded, const std::vector<std::string>& labels,
                                      std::vector<image::SourceInfo>* sources = nullptr);

// A row as JSON text with float32's shortest round-trip digits: "[0.0123,-0.5,...]".
std::string float_array_text(const float* values, size_t n);

}  // namespace clip::serve
