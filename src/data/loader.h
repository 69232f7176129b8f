// Training batches: images decoded, augmented and normalized, captions chosen and tokenized, on
// worker threads ahead of the trainer (a bounded prefetch queue).
//
// Deterministic for a seed: the sample order of an epoch is a permutation drawn from (seed,
// epoch), and each sample's randomness (crop, caption choice) from (seed, epoch, sample), so the
// batches do not depend on thread timing, and a run resumed at batch k of an epoch sees the same
// batches as one that never stopped. Bad samples (unreadable image, missing file, empty caption)
// are left out of their batch and listed in Batch::skipped: never fatal, never silent.
//
// Distributed: with world_size > 1, batch k of an epoch is the k-th slice of world_size ×
// batch_size samples of the shared permutation, and rank r takes its r-th part — so together
// the ranks see exactly the batches one process would see with the global batch.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "clip/data.h"
#include "clip/image.h"
#include "clip/tokenizer.h"
#include "data/augment.h"

namespace clip::data {

struct LoaderOptions {
  int image_size = 224;
  int context_length = 77;
  int batch_size = 256;  // per rank
  int workers = 0;       // decoding threads (<= 0: all cores)
  int prefetch = 2;      // batches prepared ahead
  uint64_t seed = 0;
  AugmentOptions augment;  // off: the evaluation preprocessing (resize short side, centre crop)
  std::array<float, 3> mean = image::kClipMean, std = image::kClipStd;
  image::DecodeOptions decode;
  int rank = 0, world_size = 1;
  size_t shuffle_buffer = 2000;  // streamed shards only
};

struct Batch {
  int64_t epoch = 0, index = 0;  // the index-th batch of the epoch
  int64_t rows = 0;
  std::vector<float> images;          // rows × 3 × size × size
  std::vector<int64_t> tokens;        // rows × context_length
  std::vector<int> labels;            // rows (-1 for caption-only data)
  std::vector<std::string> captions;  // the caption each row was given
  std::vector<std::string> skipped;   // "source: reason" of the samples left out
};

// Chooses an example's training caption (one of its captions, or a class caption); an empty
// result marks the sample bad. Called on worker threads: must be thread-safe.
using CaptionFn = std::function<std::string(const Example&, std::mt19937_64& rng)>;
// A random one of the example's captions.
CaptionFn any_caption();

class BatchSource {
 public:
  virtual ~BatchSource() = default;
  // Batches per epoch (per rank); -1 when not known in advance (streamed shards).
  virtual int64_t batches_per_epoch() const = 0;
  // (Re)starts production at batch `start_batch` of `epoch`.
  virtual void start(int64_t epoch, int64_t start_batch = 0) = 0;
  // The next batch of the epoch, or nothing at its end. Rethrows a worker's failure.
  virtual std::optional<Batch> next() = 0;
  virtual std::string description() const = 0;
};

// Random access data (the last incomplete global batch of an epoch is dropped).
std::unique_ptr<BatchSource> make_loader(std::shared_ptr<const Dataset> data, CaptionFn captions, Tokenizer tokenizer,
                                         const LoaderOptions& options);
// WebDataset shards, streamed through a shuffle buffer; with world_size > 1 each rank reads the
// shards i ≡ rank (mod world_size) of a per-epoch shuffled shard order all ranks agree on.
std::unique_ptr<BatchSource> make_shard_loader(std::vector<std::string> shards, CaptionFn captions, Tokenizer tokenizer,
                                               const LoaderOptions& options);

// One example to model input: decode, augment or resize + centre crop, RGB, normalize into
// `out` (3 × size × size floats). Throws clip::Error naming the example.
void prepare_image(const Example& example, const LoaderOptions& options, std::mt19937_64& rng, float* out);

}  // namespace clip::data
