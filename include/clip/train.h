// Contrastive training of CLIP (src/train): the loss, the optimizer with open_clip's decay
// exclusions, the learning-rate schedule, and the training job (`clip train`) with checkpoints,
// resume, gradient accumulation, bf16 autocast and gradient checkpointing. See docs/train.md.
#pragma once

#include <torch/torch.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "clip/error.h"
#include "clip/model.h"

namespace clip::train {

// ---- building blocks ------------------------------------------------------------------------

// CLIP's loss: logits = exp(logit_scale) · I · Tᵀ over L2-normalized features [N, D]; the mean of
// the cross-entropy over rows (image → text) and over columns (text → image), pair i ↔ i.
torch::Tensor contrastive_loss(const torch::Tensor& image_features, const torch::Tensor& text_features,
                               const torch::Tensor& logit_scale);
// The rows [offset, offset + n) of the same loss, for a rank that holds n of the N pairs
// (--local-loss): its images against all texts and its texts against all images, each
// cross-entropy averaged over n; the ranks' losses average to contrastive_loss.
torch::Tensor contrastive_loss_local(const torch::Tensor& local_image, const torch::Tensor& local_text,
                                     const torch::Tensor& all_image, const torch::Tensor& all_text, int64_t offset,
                                     const torch::Tensor& logit_scale);
// SigLIP's loss: −mean over images of Σ_texts log σ(z · (exp(t) · I · Tᵀ + b)), z = +1 on the
// diagonal and −1 elsewhere (init t = ln 10, b = −10).
torch::Tensor siglip_loss(const torch::Tensor& image_features, const torch::Tensor& text_features,
                          const torch::Tensor& logit_scale, const torch::Tensor& logit_bias);

// The bag-of-words baseline of CLIP's paper (--objective bow-predict, src/train/bow_predict.cpp):
// each caption's words are the tokens after its start token and before its end token (the row's
// largest id, the first if repeated; padding after it). bag_of_words: [N, L] token rows → [N, V]
// float, each row the counts of its words divided by their number (all zero for a caption with
// no words).
torch::Tensor bag_of_words(const torch::Tensor& tokens, int64_t vocab_size);
// Softmax cross-entropy against target distributions: −mean_n Σ_v targets[n, v] · log_softmax(logits[n])_v.
torch::Tensor bow_predict_loss(const torch::Tensor& logits, const torch::Tensor& targets);
// Zero-shot by scoring each class prompt's words: log_probs [N, V] (an image's log-probabilities of
// the words), prompt_bags [C, T, V] (bag_of_words of class c's prompt t) → [N, C], the mean over
// the class's T prompts of Σ_v prompt_bags[c, t, v] · log_probs[n, v].
torch::Tensor bow_zero_shot_scores(const torch::Tensor& log_probs, const torch::Tensor& prompt_bags);

// The captioning baseline (--objective caption, src/train/caption.cpp): next-token logits
// [N, M, V] (position j predicts token j + 1) and the captions' token rows [N, L ≥ M + 1] → [N],
// each caption's log-likelihood: Σ over its tokens after the start token up to and including its
// end token (the row's largest id, the first if repeated; it must lie within the M predicted
// positions) of log_softmax(logits[n, j − 1])[token j]. Padding after the end token is ignored.
torch::Tensor caption_log_likelihood(const torch::Tensor& logits, const torch::Tensor& tokens);
// The loss: the mean over captions of each caption's mean negative log-likelihood per token.
torch::Tensor caption_loss(const torch::Tensor& logits, const torch::Tensor& tokens);

// Whether a parameter gets weight decay: matrices and convolution kernels do; gains, biases,
// embeddings (token, positional, class) and the temperature do not (open_clip's rule, with the
// embeddings added).
bool gets_weight_decay(const std::string& name, const torch::Tensor& parameter);

struct OptimizerOptions {
  double lr = 5e-4;
  double beta1 = 0.9, beta2 = 0.98, eps = 1e-6;
  double weight_decay = 0.2;
};
using NamedParameters = std::vector<std::pair<std::string, torch::Tensor>>;
// AdamW over the parameters that require gradients, in two groups: with decay (group 0) and
// without (group 1). A torch::optim::AdamW whose step is fused into one pass over memory
// (src/train/fused_adamw.h); its state and checkpoints are libtorch's.
std::unique_ptr<torch::optim::AdamW> make_optimizer(const NamedParameters& parameters, const OptimizerOptions& options);
void set_learning_rate(torch::optim::Optimizer& optimizer, double lr);
// Drops every parameter's gradient (PyTorch's zero_grad(set_to_none=True); libtorch 1.13's
// zero_grad() fills them with zeros instead, a pass over every gradient that the next backward
// then adds into): the next backward stores its gradients as they come.
void clear_gradients(torch::optim::Optimizer& optimizer);

// open_clip's cosine_lr: step < warmup: base·(step+1)/warmup; then base·½(1 + cos(π·e/E)) with
// e = step − warmup, E = total − warmup.
double cosine_lr(int64_t step, double base_lr, int64_t warmup_steps, int64_t total_steps);

// ---- the training job -------------------------------------------------------------------------

enum class LossKind { kContrastive, kSigLip };
// What the image tower learns from the captions: matching them (the CLIP loss, --loss),
// predicting their bag of words through a linear head on the image features (the paper's
// baseline; the text tower is not used), or predicting them token by token with the text
// Transformer conditioned on the image (the paper's first, captioning, baseline).
enum class Objective { kContrastive, kBowPredict, kCaption };

struct TrainOptions {
  // Data: "fashion-mnist" (captions from class synonyms × training templates), "csv:FILE" /
  // "tsv:FILE" (image path and caption columns), "wds:PATTERN" (brace-expanded tar shards).
  std::string data = "fashion-mnist";
  std::string image_column = "filepath", caption_column = "title";
  std::string prompts;      // class names/synonyms/templates (name or JSON); default: the data set's
  int64_t val_size = 2000;  // held-out examples carved from labelled training data (0: none)
  std::string data_dir;     // fashion-mnist folder (default: Debian's)

  // Model: a named config or config JSON (from scratch), or a checkpoint (fine-tuning).
  std::string model = "FMNIST-ViT";
  int vocab_size = 0, context_length = 0;  // from scratch only: override the config (0: keep)
  bool lock_image = false, lock_text = false;

  // Optimization.
  int batch_size = 256;   // global batch (all ranks, all micro-batches)
  int accum_steps = 1;    // micro-batches per step (features cached: the loss of the full batch)
  double epochs = 10;     // a fraction ends the last epoch part way (the schedule spans it exactly)
  int64_t max_steps = 0;  // > 0: stop after this many steps (the schedule still spans `epochs`)
  OptimizerOptions optimizer;
  int64_t warmup_steps = 100;
  double grad_clip_norm = 0;  // > 0: clip the gradients' global norm
  Precision precision = Precision::kBF16;
  bool grad_checkpointing = false;
  LossKind loss = LossKind::kContrastive;
  Objective objective = Objective::kContrastive;
  bool local_loss = false;      // distributed: each rank computes only its rows and columns
  double dist_timeout_s = 300;  // distributed: rendezvous and every collective must finish in this time

  // Run.
  std::string out_dir = "runs/train";
  int64_t save_every = 0;    // steps between checkpoints (0: only at the end)
  int keep_checkpoints = 2;  // newest kept; older ones pruned
  std::string resume;        // "", "latest", or a checkpoint file
  uint64_t seed = 0;
  int threads = 0, workers = 0;  // libtorch threads; decoding threads (<= 0: all cores)
  int64_t eval_every = 0;        // steps between held-out zero-shot evaluations (0: each epoch)
  int64_t log_every = 10;        // steps between metric lines in metrics.jsonl
  // Labelled data (Fashion-MNIST): at the end, zero-shot on the test split with the held-out
  // templates, a linear probe, retrieval, and report.html (train/final_report.h).
  bool final_eval = true;
  int64_t probe_train_limit = 0;                 // > 0: linear-probe training examples used (speed)
  double stop_after_seconds = 0;                 // > 0: stop (with a checkpoint) once this much time has passed
  const std::atomic<bool>* stop_flag = nullptr;  // set (e.g. by SIGINT): stop with a checkpoint
};

struct TrainResult {
  int64_t steps = 0, samples = 0, skipped = 0;
  double seconds = 0, final_loss = 0, val_top1 = -1;
  double test_zeroshot_top1 = -1, linear_probe_accuracy = -1;  // the final evaluation, when run
  bool interrupted = false;  // stopped early (stop_after_seconds or a signal), resumable
  std::string model_path;    // the final weights (safetensors, config in the metadata)
};

// Where a run stands after a step, for a progress display.
struct TrainProgress {
  int64_t step = 0, total_steps = 0;
  double loss = 0, lr = 0, temperature = 0;
  double samples_per_s = 0;  // over the current logging window
  double eta_s = 0;          // the remaining steps at that rate
};

// What a run tells as it goes, on rank 0 (a checkpoint skipped on resume: on every rank, each
// reading the checkpoints for itself); the library itself prints nothing. Each may be empty.
struct TrainCallbacks {
  // Each metrics line (a JSON object), as appended to metrics.jsonl.
  std::function<void(const std::string& json_line)> on_metrics;
  // A line for the person running it: the checkpoint resumed from, a checkpoint skipped because
  // it does not read whole, the held-out accuracy, the stages of the final evaluation.
  std::function<void(const std::string& line)> on_note;
  // After each step.
  std::function<void(const TrainProgress& progress)> on_progress;
  // Once the steps are over (before the final save and evaluation).
  std::function<void()> on_steps_done;
};

// A TrainOptions value (or combination) the run cannot use. The message names the options by
// their TrainOptions field ("batch_size must be positive, found 0"); a front end names them its
// own way with message(), e.g. as command-line flags.
class OptionError : public Error {
 public:
  // A piece of the message: literal text, or a TrainOptions field's name (option("batch_size")).
  struct Piece {
    std::string text;
    bool is_option = false;
  };
  explicit OptionError(std::vector<Piece> pieces, ErrorKind kind = ErrorKind::kInvalidInput);
  const std::vector<Piece>& pieces() const { return pieces_; }
  // The message with each option named by name_of(field).
  std::string message(const std::function<std::string(const std::string& field)>& name_of) const;

 private:
  std::vector<Piece> pieces_;
};
inline OptionError::Piece option(const std::string& field) { return {field, true}; }

// Trains as the options say, writing into out_dir: checkpoints/, metrics.jsonl, model.safetensors,
// summary.json and curves.svg. Throws OptionError on a bad option, clip::Error on a bad file.
// Distributed (docs/distributed.md): when the environment has torchrun's WORLD_SIZE > 1 (with
// RANK, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT), this process is one rank of a
// data-parallel run: each rank takes batch_size / WORLD_SIZE rows of every global batch, and only
// rank 0 logs, evaluates and writes files (the others return a result without model_path).
TrainResult train(const TrainOptions& options, const TrainCallbacks& callbacks = {});

}  // namespace clip::train
