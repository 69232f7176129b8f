// The run's data sources, as the loader (src/data/loader.h) reads them.
#include "train/train_data.h"

#include "util/strings.h"

namespace clip::train {

TrainData open_train_data(const TrainOptions& o, const ModelConfig& config, const Tokenizer& tokenizer, int rank,
                          int world_size) {
  TrainData d;
  data::LoaderOptions lo;
  lo.image_size = config.image_resolution;
  // The model's normalization (open_clip's preprocess_cfg); the augmentation has its own resize.
  lo.mean = config.preprocess.mean;
  lo.std = config.preprocess.std;
  lo.context_length = config.context_length;
  lo.batch_size = o.batch_size / world_size;  // per rank; validate_options() checked the division
  lo.rank = rank;
  lo.world_size = world_size;
  lo.workers = o.workers;
  lo.seed = o.seed;
  lo.augment.enabled = true;
  if (o.data == "fashion-mnist") {
    d.labelled = true;
    d.prompts = data::load_class_prompts(o.prompts.empty() ? "fashion-mnist" : o.prompts);
    std::shared_ptr<const data::Dataset> all =
        data::open_fashion_mnist("train", o.data_dir.empty() ? data::kFashionMnistDir : o.data_dir);
    std::shared_ptr<const data::Dataset> train = all;
    if (o.val_size > 0) {
      auto [rest, held] = data::split_held_out(all, static_cast<size_t>(o.val_size), o.seed ^ 0x5eed);
      train = std::move(rest);
      d.held_out = std::move(held);
    }
    const data::ClassPrompts prompts = d.prompts;
    data::CaptionFn captions = [prompts](const data::Example& e, std::mt19937_64& rng) {
      return data::class_caption(prompts, e.label, rng());
    };
    d.loader = data::make_loader(train, captions, tokenizer, lo);
  } else if (util::starts_with(o.data, "csv:") || util::starts_with(o.data, "tsv:")) {
    data::TableOptions t;
    t.image_column = o.image_column;
    t.caption_column = o.caption_column;
    if (util::starts_with(o.data, "tsv:")) t.separator = '\t';
    d.loader = data::make_loader(data::open_table(o.data.substr(4), t), data::any_caption(), tokenizer, lo);
  } else if (util::starts_with(o.data, "wds:")) {
    d.loader = data::make_shard_loader(data::expand_braces(o.data.substr(4)), data::any_caption(), tokenizer, lo);
  } else {
    throw OptionError(
        {option("data"),
         {" \"" + o.data + "\" is not a known source (expected fashion-mnist, csv:FILE, tsv:FILE or wds:PATTERN)"}});
  }
  return d;
}

}  // namespace clip::train
