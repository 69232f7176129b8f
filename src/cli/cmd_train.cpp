// `clip train`: contrastive training from scratch or fine-tuning (flags mirror open_clip's).
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>

#include "cli/commands.h"
#include "clip/error.h"
#include "clip/train.h"
#include "train/launcher.h"
#include "util/progress.h"

namespace clip::cli {
namespace {

// Set by SIGINT/SIGTERM: the trainer stops at the end of its step with a checkpoint. A signal
// handler can only reach a global; this is the one.
std::atomic<bool> g_stop_requested{false};
extern "C" void request_stop(int) { g_stop_requested.store(true); }

struct TrainFlags {
  train::TrainOptions o;
  std::string precision = "bf16", loss = "contrastive", objective = "contrastive";
  bool no_augment_progress = false;
  int nproc_per_node = 1;
};

// The flag of each TrainOptions field that an OptionError can name.
std::string flag_of(const std::string& field) {
  static const std::map<std::string, std::string> flags{{"accum_steps", "--accum-steps"},
                                                        {"batch_size", "--batch-size"},
                                                        {"context_length", "--context-length"},
                                                        {"data", "--data"},
                                                        {"dist_timeout_s", "--dist-timeout"},
                                                        {"epochs", "--epochs"},
                                                        {"eval_every", "--eval-every"},
                                                        {"grad_clip_norm", "--grad-clip"},
                                                        {"keep_checkpoints", "--keep"},
                                                        {"local_loss", "--local-loss"},
                                                        {"lock_image", "--lock-image"},
                                                        {"lock_text", "--lock-text"},
                                                        {"loss", "--loss"},
                                                        {"objective", "--objective"},
                                                        {"log_every", "--log-every"},
                                                        {"max_steps", "--steps"},
                                                        {"out_dir", "--out"},
                                                        {"precision", "--precision"},
                                                        {"resume", "--resume"},
                                                        {"save_every", "--save-every"},
                                                        {"vocab_size", "--vocab-size"},
                                                        {"warmup_steps", "--warmup"}};
  const auto it = flags.find(field);
  return it == flags.end() ? field : it->second;
}

// Runs the training with its notes, and the progress bar (when stderr is a terminal), on stderr;
// an option error names the flag.
train::TrainResult train_reporting_on_stderr(const train::TrainOptions& o) {
  std::unique_ptr<util::ProgressBar> bar;  // made at the first step, when the run's length is known
  train::TrainCallbacks callbacks;
  callbacks.on_note = [&](const std::string& line) {
    if (bar) bar->note(line);
    else std::fprintf(stderr, "%s\n", line.c_str());
  };
  callbacks.on_progress = [&](const train::TrainProgress& p) {
    if (!bar) bar = std::make_unique<util::ProgressBar>("train", p.total_steps, true);
    char fields[128];
    std::snprintf(fields, sizeof fields, "loss %.4f  lr %.2e  T %.1f  %.0f samples/s", p.loss, p.lr, p.temperature,
                  p.samples_per_s);
    bar->update(p.step, fields, p.eta_s);
  };
  callbacks.on_steps_done = [&] {
    if (bar) bar->finish();
  };
  try {
    return train::train(o, callbacks);
  } catch (const train::OptionError& e) {
    throw Error(e.message(flag_of), e.kind());
  }
}

void run_train(TrainFlags& f) {
  train::TrainOptions o = f.o;
  o.precision = precision_from_name(f.precision);
  if (f.loss == "contrastive") o.loss = train::LossKind::kContrastive;
  else if (f.loss == "siglip") o.loss = train::LossKind::kSigLip;
  else throw CLI::ValidationError("--loss", "expected contrastive or siglip, found \"" + f.loss + "\"");
  if (f.objective == "contrastive") o.objective = train::Objective::kContrastive;
  else if (f.objective == "bow-predict") o.objective = train::Objective::kBowPredict;
  else if (f.objective == "caption") o.objective = train::Objective::kCaption;
  else throw CLI::ValidationError("--objective", "expected contrastive, bow-predict or caption, found \"" + f.objective + "\"");
  keep_freed_memory_for_reuse();
  o.stop_flag = &g_stop_requested;
  std::signal(SIGINT, request_stop);
  std::signal(SIGTERM, request_stop);
  if (f.nproc_per_node > 1 && !std::getenv("WORLD_SIZE")) {
    // The launcher: the workers run this same command line as ranks (WORLD_SIZE set, so they
    // train instead of launching). Their exit status becomes ours.
    const int status = train::launch_local_workers(f.nproc_per_node, o.threads, o.workers, &g_stop_requested);
    std::fflush(stdout);
    if (status != 0) std::exit(status);
    return;
  }
  const train::TrainResult r = train_reporting_on_stderr(o);
  if (const char* rank = std::getenv("RANK"); rank && std::string(rank) != "0") return;  // rank 0 reports
  std::printf("steps %lld, samples %lld, %.1f s, final loss %.4f", static_cast<long long>(r.steps),
              static_cast<long long>(r.samples), r.seconds, r.final_loss);
  if (r.val_top1 >= 0) std::printf(", held-out zero-shot top-1 %.2f%%", 100 * r.val_top1);
  if (r.skipped)
    std::printf(", %lld bad samples skipped (listed in %s/metrics.jsonl)", static_cast<long long>(r.skipped),
                o.out_dir.c_str());
  std::printf("\n");
  if (r.interrupted) {
    std::printf("stopped early; continue with: clip train ... --out %s --resume latest\n", o.out_dir.c_str());
    return;
  }
  std::printf("model: %s\n", r.model_path.c_str());
  if (r.test_zeroshot_top1 >= 0 && r.linear_probe_accuracy < 0)  // bow-predict, caption: zero-shot only
    std::printf("test set: zero-shot top-1 %.2f%% (held-out templates, by the prompts' %s)\n",
                100 * r.test_zeroshot_top1, o.objective == train::Objective::kCaption ? "log-likelihood" : "words");
  else if (r.test_zeroshot_top1 >= 0)
    std::printf("test set: zero-shot top-1 %.2f%% (held-out templates), linear probe %.2f%%; report: %s/report.html\n",
                100 * r.test_zeroshot_top1, 100 * r.linear_probe_accuracy, o.out_dir.c_str());
}

}  // namespace

void register_train(CLI::App& app) {
  auto f = std::make_shared<TrainFlags>();
  train::TrainOptions& o = f->o;
  CLI::App* cmd =
      app.add_subcommand("train", "Train CLIP from scratch or fine-tune a checkpoint on image-caption pairs");
  cmd->add_option("--data", o.data, "fashion-mnist, csv:FILE, tsv:FILE or wds:SHARDS (brace lists)")
      ->capture_default_str();
  cmd->add_option("--csv-img-key", o.image_column, "Image path column of a CSV/TSV")->capture_default_str();
  cmd->add_option("--csv-caption-key", o.caption_column, "Caption column of a CSV/TSV")->capture_default_str();
  cmd->add_option("--prompts", o.prompts, "Class names, synonyms and templates (name or JSON) for labelled data");
  cmd->add_option("--val-size", o.val_size, "Held-out examples of labelled data for zero-shot checks (0: none)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--data-dir", o.data_dir, "Folder of the Fashion-MNIST files (default: Debian's)");
  cmd->add_option("--model", o.model, "A named config or config JSON (from scratch), or a checkpoint to fine-tune")
      ->capture_default_str();
  cmd->add_option("--vocab-size", o.vocab_size, "From scratch: a smaller BPE vocabulary (OpenAI's first merges)")
      ->check(CLI::Range(514, 49408));
  cmd->add_option("--context-length", o.context_length, "From scratch: the text context length")
      ->check(CLI::Range(2, 4096));
  cmd->add_flag("--lock-image", o.lock_image, "Freeze the image tower (LiT)");
  cmd->add_flag("--lock-text", o.lock_text, "Freeze the text tower");
  cmd->add_option("--batch-size", o.batch_size, "Global batch size")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--accum-steps", o.accum_steps, "Micro-batches per step (the loss stays that of the full batch)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--epochs", o.epochs, "Epochs (a fraction such as 2.5 ends part way through the last)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--steps", o.max_steps, "Stop after this many steps (needed for tar shards)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--lr", o.optimizer.lr, "Peak learning rate")->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_option("--beta1", o.optimizer.beta1, "AdamW beta1")->capture_default_str()->check(CLI::Range(0.0, 0.999999));
  cmd->add_option("--beta2", o.optimizer.beta2, "AdamW beta2")->capture_default_str()->check(CLI::Range(0.0, 0.999999));
  cmd->add_option("--eps", o.optimizer.eps, "AdamW epsilon")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--wd", o.optimizer.weight_decay, "Weight decay (not on gains, biases, embeddings, temperature)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--warmup", o.warmup_steps, "Linear warmup steps, then cosine decay")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--grad-clip", o.grad_clip_norm, "Clip the gradients' global norm (0: off)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--precision", f->precision, "fp32 or bf16 (autocast)")
      ->capture_default_str()
      ->check(CLI::IsMember({"fp32", "bf16"}));
  cmd->add_flag("--grad-checkpointing", o.grad_checkpointing, "Recompute transformer blocks in the backward pass");
  cmd->add_flag(
      "--local-loss", o.local_loss,
      "Distributed: each rank computes the loss of its own rows and columns only (same gradients, less compute)");
  cmd->add_option("--nproc-per-node", f->nproc_per_node,
                  "Start this many worker processes on this machine (one rank each)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--dist-timeout", o.dist_timeout_s,
                  "Distributed: seconds a rendezvous or collective may take before the run fails")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--loss", f->loss, "contrastive or siglip")
      ->capture_default_str()
      ->check(CLI::IsMember({"contrastive", "siglip"}));
  cmd->add_option("--objective", f->objective,
                  "contrastive (match images and captions, --loss), bow-predict (the image tower predicts each "
                  "caption's bag of words through a linear head; the text tower is unused) or caption (the text "
                  "Transformer, conditioned on the image, predicts each caption token by token)")
      ->capture_default_str()
      ->check(CLI::IsMember({"contrastive", "bow-predict", "caption"}));
  cmd->add_option("--out", o.out_dir, "Run folder (checkpoints, metrics, model, plots)")->capture_default_str();
  cmd->add_option("--save-every", o.save_every, "Steps between checkpoints (0: at the end only)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--keep", o.keep_checkpoints, "Checkpoints kept")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--resume", o.resume, "latest, or a checkpoint file");
  cmd->add_option("--seed", o.seed, "Seed of the initialisation, data order and augmentation")->capture_default_str();
  cmd->add_option("--threads", o.threads, "Compute threads (0: all cores)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--workers", o.workers, "Data loading threads (0: all cores)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--eval-every", o.eval_every, "Steps between held-out zero-shot checks (0: each epoch)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--log-every", o.log_every, "Steps between metric lines")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--time-limit", o.stop_after_seconds, "Stop with a checkpoint after this many seconds (resumable)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("!--no-final-eval", o.final_eval, "Skip the final evaluation and report of labelled data");
  cmd->add_option("--probe-train-limit", o.probe_train_limit, "Training examples for the final linear probe (0: all)")
      ->check(CLI::NonNegativeNumber);
  cmd->callback([f] { run_train(*f); });
}

}  // namespace clip::cli
