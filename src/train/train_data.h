// The data of a run: the batch loader of its source (Fashion-MNIST, CSV/TSV, tar shards), and for
// labelled data the held-out split and the class prompts.
#pragma once

#include <memory>

#include "clip/data.h"
#include "clip/tokenizer.h"
#include "clip/train.h"
#include "data/loader.h"
#include "data/prompts.h"

namespace clip::train {

struct TrainData {
  std::unique_ptr<data::BatchSource> loader;
  std::shared_ptr<const data::Dataset> held_out;  // labelled held-out split (zero-shot), or null
  data::ClassPrompts prompts;                     // when the data is labelled
  bool labelled = false;
};

// This rank's share (batch_size / world_size rows of each global batch) of the source options.data
// names, at the model's resolution and context length. Throws OptionError for an unknown source.
TrainData open_train_data(const TrainOptions& options, const ModelConfig& config, const Tokenizer& tokenizer, int rank,
                          int world_size);

}  // namespace clip::train
