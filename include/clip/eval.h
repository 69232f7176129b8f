// Evaluation of CLIP models (src/eval): image features of a data set, zero-shot classification
// (class names × prompt templates), linear probes (L2-regularized logistic regression with
// L-BFGS), and image↔text retrieval recall. The metric functions are pure functions of tensors,
// so a trainer can call them on a model it holds in memory. Protocols: docs/eval.md.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "clip/data.h"
#include "clip/image.h"
#include "clip/model.h"
#include "clip/progress.h"

namespace clip::eval {

// ---- features -----------------------------------------------------------------------------

struct ExtractOptions {
  int batch_size = 64;
  int threads = 0;               // decoding / preprocessing threads (<= 0: all cores)
  ProgressCallback on_progress;  // stage "features", after each batch (null: not reported)
  bool progress = true;          // false: on_progress is not called
  size_t limit = 0;              // > 0: only the first `limit` examples
  image::DecodeOptions decode;
  // Non-empty: features are cached in this folder, keyed by model_identity, the data set's
  // description, `limit` and the model's resolution and precision. Needs model_identity.
  std::string cache_dir;
  std::string model_identity;  // e.g. model_file_identity(path)
};

struct SkippedExample {
  size_t index = 0;    // in the data set
  std::string source;  // Example::source
  std::string reason;
};

struct FeatureSet {
  torch::Tensor features;                          // float32 [N, D] on the CPU, rows L2-normalized
  torch::Tensor labels;                            // int64 [N]; -1 where the data set has no label
  std::vector<size_t> indices;                     // the data set index of each row
  std::vector<std::vector<std::string>> captions;  // each row's captions (may be empty)
  std::vector<SkippedExample> skipped;             // bad records and images that failed to decode
  bool from_cache = false;
};

// Decodes and preprocesses on a thread pool at the model's image_resolution (decode →
// resize_crop → normalize; grey images become RGB), double-buffered: batch k+1 is prepared
// while the model encodes batch k. Bad examples are skipped and listed, never fatal.
FeatureSet extract_image_features(const Model& model, const data::Dataset& dataset, const ExtractOptions& options = {});

// "path|size|mtime" of a checkpoint file (for a folder: of each file in it), for cache keys.
std::string model_file_identity(const std::string& path);

// ---- classification metrics -----------------------------------------------------------------

struct ClassificationMetrics {
  int64_t count = 0;  // examples scored
  int k = 5;          // the k of top-k (min(k, classes))
  double top1 = 0, topk = 0;
  double mean_per_class_recall = 0;      // over classes that have examples
  std::vector<double> per_class_recall;  // NaN for a class without examples
  std::vector<int64_t> class_counts;
  torch::Tensor confusion;  // int64 [C, C]: row = true class, column = predicted
};

// logits [N, C] (any scale), labels int64 [N] in [0, C). Ties are broken towards the lower
// class index, so results never depend on the sort: the rank of the true class is the number of
// classes scoring higher, plus those scoring equal with a lower index.
ClassificationMetrics classification_metrics(const torch::Tensor& logits, const torch::Tensor& labels, int k = 5);

// ---- zero-shot ------------------------------------------------------------------------------

// [D, C]: per class, the templates filled with its name, each embedding normalized, averaged,
// renormalized (CLIP's prompt ensembling).
torch::Tensor zero_shot_classifier(const Model& model, const std::vector<std::string>& class_names,
                                   const std::vector<std::string>& templates, int threads = 0);

struct ZeroShotResult {
  ClassificationMetrics metrics;
  torch::Tensor logits;  // [N, C] = exp(logit_scale) · features @ classifier
};
ZeroShotResult zero_shot(const Model& model, const FeatureSet& features, const std::vector<std::string>& class_names,
                         const std::vector<std::string>& templates, int k = 5, int threads = 0);

// ---- retrieval ------------------------------------------------------------------------------

struct RecallAtK {
  double r1 = 0, r5 = 0, r10 = 0;
  double mean_rank = 0, median_rank = 0;  // 1-based rank of the first correct item
  int64_t count = 0;                      // queries scored
};
struct RetrievalMetrics {
  RecallAtK image_to_text;  // query: an image; a hit when any of its captions is within K
  RecallAtK text_to_image;  // query: a caption; a hit when its image is within K
};

// similarity [N_images, N_texts]; text_to_image[t] is the image caption t belongs to. Ties are
// broken towards the lower index (deterministic). Images with no caption are not scored.
RetrievalMetrics retrieval_metrics(const torch::Tensor& similarity, const std::vector<int64_t>& text_to_image);

// Image↔text retrieval with a model: the captions embedded and L2-normalized, scored against
// image_features [N_images, D] (rows L2-normalized, as extract_image_features gives them) and
// ranked by retrieval_metrics. captions[t] belongs to the image row text_to_image[t]. Used by
// `clip eval retrieval` and the training report alike.
RetrievalMetrics retrieval(const Model& model, const torch::Tensor& image_features,
                           const std::vector<std::string>& captions, const std::vector<int64_t>& text_to_image,
                           int threads = 0);

// ---- linear probe ---------------------------------------------------------------------------

struct LinearProbeOptions {
  // λ values to try (loss = mean cross-entropy + λ/2·‖W‖², bias not penalized). Empty: a coarse
  // sweep 1e-6, 1e-4, ..., 1e2, then refined around the best by factors 10 and √10 (as the CLIP
  // paper sweeps, with fewer steps).
  std::vector<double> lambdas;
  bool refine = true;
  double validation_fraction = 0.2;  // of train, carved out with `seed`
  size_t max_validation = 0;         // > 0: at most this many validation examples
  uint64_t seed = 0;
  int max_iterations = 1000;  // L-BFGS iterations per fit
  // Called after each λ is tried with its validation accuracy (null: not reported).
  std::function<void(double lambda, double validation_accuracy)> on_lambda;
};

struct LinearProbeResult {
  double test_accuracy = 0;
  double lambda = 0;                             // the chosen one
  double validation_accuracy = 0;                // at the chosen λ
  std::vector<std::pair<double, double>> sweep;  // (λ, validation accuracy) in the order tried
  int64_t train_count = 0, validation_count = 0, test_count = 0, classes = 0;
  double seconds = 0;
  torch::Tensor weight, bias;  // the final classifier, refit on train + validation: [D, C], [C]
};

// train_x [N, D] float, train_y int64 [N] in [0, C); the same for test. Multinomial logistic
// regression fit with torch::optim::LBFGS (strong Wolfe line search).
LinearProbeResult linear_probe(const torch::Tensor& train_x, const torch::Tensor& train_y, const torch::Tensor& test_x,
                               const torch::Tensor& test_y, const LinearProbeOptions& options = {});

// ---- data sets and prompts by name --------------------------------------------------------------

struct DatasetOptions {
  std::string data_dir;      // mnist, cifar10, cifar100 (and fashion-mnist, default: Debian's folder)
  data::TableOptions table;  // csv:FILE
};

// "fashion-mnist", "mnist", "cifar10", "cifar100" (with split "train" / "test"), "folder:DIR",
// "csv:FILE" / "tsv:FILE", "wds:PATTERN" (brace-expanded shards, read into memory).
std::unique_ptr<data::Dataset> open_dataset(const std::string& spec, const std::string& split,
                                            const DatasetOptions& options = {});

struct ClassPrompts {
  std::vector<std::string> classes, templates;
  std::string source;  // the file they came from
};
// The shipped assets/datasets/<name>.json ("classes", "templates"); throws naming the file.
ClassPrompts shipped_class_prompts(const std::string& name);
// True when assets/datasets/<name>.json exists.
bool has_shipped_class_prompts(const std::string& name);
// A list file: a JSON array of strings, a JSON object with `key` ("classes" / "templates"), or
// plain text with one entry a line (blank lines skipped). Throws naming the file.
std::vector<std::string> read_name_list(const std::string& path, const std::string& key);

}  // namespace clip::eval
