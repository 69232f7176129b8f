// Training checkpoints: the model, the optimizer state, the schedule and data position, the RNG
// state and the run's options, in one safetensors file (read by our own validating reader:
// nothing in a checkpoint ever runs) with a checksum, written atomically and durably (temporary
// file, fsync, rename, fsync of the folder), so a checkpoint that exists under its name is
// complete, also after a power cut, and a damaged one is refused.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace clip::train {

struct TrainPosition {
  int64_t step = 0;            // optimizer steps done
  int64_t epoch = 0;           // the epoch of the next batch
  int64_t batch_in_epoch = 0;  // the index of the next batch within that epoch
  int64_t samples = 0;         // samples seen
};

struct CheckpointContents {
  TrainPosition position;
  std::string config_json;     // the model's architecture
  std::string options_json;    // the options that shape the run (checked on resume)
  int64_t metrics_bytes = -1;  // the length of metrics.jsonl when it was saved (-1: not recorded)
};

// checkpoints/step-00000100.pt
std::string checkpoint_path(const std::string& dir, int64_t step);
// The checkpoint with the most steps in `dir`, or "" when there is none.
std::string latest_checkpoint(const std::string& dir);
// The checkpoints in `dir`, newest first.
std::vector<std::string> checkpoints_newest_first(const std::string& dir);
// Deletes all but the `keep` newest checkpoints (keep >= 1).
void prune_checkpoints(const std::string& dir, int keep);
// Deletes the temporary files of checkpoints whose writer was killed (step-*.pt.tmp*). Only for
// the process that writes checkpoints into `dir`.
void remove_stale_checkpoint_files(const std::string& dir);

// `extra` holds trainer tensors outside the model (SigLIP's logit bias).
void save_checkpoint(const std::string& path, torch::nn::Module& model, torch::optim::Optimizer& optimizer,
                     const std::vector<torch::Tensor>& extra, const CheckpointContents& contents);
// Restores into a model and AdamW optimizer built the same way; throws clip::Error naming the
// file when it is unreadable, damaged, of an earlier version's format (a libtorch archive) or does
// not match, in which case nothing has been changed.
CheckpointContents load_checkpoint(const std::string& path, torch::nn::Module& model,
                                   torch::optim::Optimizer& optimizer, std::vector<torch::Tensor>& extra);
// `--resume latest`: loads the newest checkpoint in `dir` that reads whole. A newer one that does
// not (truncated or damaged, e.g. by a power cut before this version synced its writes) is
// skipped, and on_skipped(why) told; *path receives the one loaded. Throws OptionError (about
// `resume`) when there is none, or none reads.
CheckpointContents load_latest_checkpoint(const std::string& dir, torch::nn::Module& model,
                                          torch::optim::Optimizer& optimizer, std::vector<torch::Tensor>& extra,
                                          std::string* path,
                                          const std::function<void(const std::string& why)>& on_skipped = {});

}  // namespace clip::train
