// From files and strings to embeddings: preprocessing on a thread pool, tokenizing, batched
// encoding, and zero-shot classifier weights (prompt ensembling).
#pragma once

#include <string>
#include <vector>

#include "clip/image.h"
#include "clip/model.h"
#include "clip/tokenizer.h"

namespace clip {

class Embedder {
 public:
  // threads <= 0: all cores (used for decoding; libtorch's own threads are set by set_threads).
  // Without a tokenizer, the model's own (tokenizer_for_model).
  explicit Embedder(const Model& model, int threads = 0);
  Embedder(const Model& model, Tokenizer tokenizer, int threads = 0);

  const Model& model() const { return model_; }
  const Tokenizer& tokenizer() const { return tokenizer_; }

  // Image features [N, embed_dim] (not normalized), rows in input order. Files are decoded and
  // preprocessed at the model's resolution on the thread pool, then encoded `batch_size` at a
  // time. A file that fails throws clip::Error naming it (nothing is returned half-done);
  // use preprocess_files directly to skip failures instead.
  torch::Tensor embed_image_files(const std::vector<std::string>& paths, int batch_size = 32) const;
  // Text features [N, embed_dim] (not normalized); over-long texts are truncated (open_clip).
  torch::Tensor embed_texts(const std::vector<std::string>& texts, int batch_size = 256) const;
  // Zero-shot weights [embed_dim, C]: for each class, the mean of the normalized embeddings of
  // every template with "{}" replaced by the class name, renormalized.
  torch::Tensor zero_shot_weights(const std::vector<std::string>& class_names,
                                  const std::vector<std::string>& templates) const;

  image::PreprocessOptions preprocess_options() const;

 private:
  const Model& model_;
  Tokenizer tokenizer_;
  int threads_;
};

// "a photo of a {}." with "{}" replaced (every occurrence); a template without "{}" is an error.
std::string fill_template(const std::string& templ, const std::string& class_name);

}  // namespace clip
