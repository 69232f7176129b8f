// The training job: data, model, optimizer, the step loop with accumulation, checkpoints and
// resume, logging and periodic held-out evaluation.
#include <ATen/autocast_mode.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "clip/data.h"
#include "clip/error.h"
#include "clip/eval.h"
#include "clip/train.h"
#include "data/loader.h"
#include "data/prompts.h"
#include "model/model_access.h"
#include "model/modules.h"
#include "train/checkpoint.h"
#include "train/curves.h"
#include "train/distributed.h"
#include "train/final_report.h"
#include "train/metrics_log.h"
#include "train/step.h"
#include "util/file_io.h"
#include "util/progress.h"

namespace clip::train {
namespace {

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

void make_dirs(const std::string& path) {
  std::string partial;
  for (size_t i = 0; i <= path.size(); ++i) {
    if (i == path.size() || path[i] == '/') {
      if (!partial.empty() && ::mkdir(partial.c_str(), 0755) != 0 && errno != EEXIST)
        throw Error(partial + ": cannot create the folder");
    }
    if (i < path.size()) partial += path[i];
  }
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// A named config or config JSON → a fresh model; anything else → a checkpoint to fine-tune.
Model build_model(const TrainOptions& o, bool& from_scratch) {
  ModelConfig config;
  from_scratch = true;
  if (ends_with(o.model, ".json")) {
    config = config_from_file(o.model);
  } else if (util::file_exists(o.model) || o.model.find('/') != std::string::npos) {
    from_scratch = false;
    if (o.vocab_size || o.context_length)
      throw Error("--vocab-size and --context-length apply to models trained from scratch, not to the checkpoint " + o.model);
    return Model::load(o.model);
  } else {
    config = named_config(o.model);
  }
  if (o.vocab_size) config.vocab_size = o.vocab_size;
  if (o.context_length) config.context_length = o.context_length;
  config.validate("model " + o.model);
  return Model::random(config, o.seed);
}

// What the run must keep the same across a resume.
json run_identity(const TrainOptions& o, const ModelConfig& c) {
  return json{{"data", o.data},           {"model", o.model},         {"config", json::parse(config_to_json(c))},
              {"batch_size", o.batch_size}, {"epochs", o.epochs},      {"lr", o.optimizer.lr},
              {"warmup_steps", o.warmup_steps}, {"seed", o.seed},      {"loss", o.loss == LossKind::kSigLip ? "siglip" : "contrastive"},
              {"lock_image", o.lock_image}, {"lock_text", o.lock_text}, {"val_size", o.val_size}};
}

struct DataSetup {
  std::unique_ptr<data::BatchSource> loader;
  std::shared_ptr<const data::Dataset> held_out;  // labelled held-out split (zero-shot), or null
  data::ClassPrompts prompts;                      // when the data is labelled
  bool labelled = false;
};

DataSetup build_data(const TrainOptions& o, const Model& model, const Tokenizer& tokenizer, int rank, int world_size) {
  DataSetup d;
  data::LoaderOptions lo;
  lo.image_size = model.config().image_resolution;
  lo.context_length = model.config().context_length;
  lo.batch_size = o.batch_size / world_size;  // per rank; validate() checked the division
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
  } else if (starts_with(o.data, "csv:") || starts_with(o.data, "tsv:")) {
    data::TableOptions t;
    t.image_column = o.image_column;
    t.caption_column = o.caption_column;
    if (starts_with(o.data, "tsv:")) t.separator = '\t';
    d.loader = data::make_loader(data::open_table(o.data.substr(4), t), data::any_caption(), tokenizer, lo);
  } else if (starts_with(o.data, "wds:")) {
    d.loader = data::make_shard_loader(data::expand_braces(o.data.substr(4)), data::any_caption(), tokenizer, lo);
  } else {
    throw Error("--data \"" + o.data + "\" is not a known source (expected fashion-mnist, csv:FILE, tsv:FILE or wds:PATTERN)");
  }
  return d;
}

void validate(const TrainOptions& o, int world_size) {
  auto require = [](bool ok, const std::string& what) {
    if (!ok) throw Error(what);
  };
  require(o.batch_size > 0, "--batch-size must be positive, found " + std::to_string(o.batch_size));
  require(o.batch_size % world_size == 0, "--batch-size (" + std::to_string(o.batch_size) +
                                              ", the global batch) must be divisible by the world size " +
                                              std::to_string(world_size));
  const int per_rank = o.batch_size / world_size;
  require(o.accum_steps > 0 && per_rank % o.accum_steps == 0,
          "--accum-steps must divide the per-rank batch (" + std::to_string(per_rank) + "), found " + std::to_string(o.accum_steps));
  require(o.dist_timeout_s > 0, "--dist-timeout must be positive");
  require(!(o.local_loss && o.loss == LossKind::kSigLip), "--local-loss applies to the contrastive loss, not to siglip");
  require(o.epochs > 0 && std::isfinite(o.epochs), "--epochs must be a positive number, found " + c10::str(o.epochs));
  require(o.max_steps >= 0, "--steps must not be negative");
  require(o.warmup_steps >= 0, "--warmup must not be negative");
  require(o.grad_clip_norm >= 0, "--grad-clip must not be negative");
  require(o.keep_checkpoints >= 1, "--keep must be at least 1");
  require(o.save_every >= 0 && o.eval_every >= 0 && o.log_every > 0, "--save-every/--eval-every must be >= 0, --log-every > 0");
  require(!(o.lock_image && o.lock_text), "--lock-image and --lock-text together leave nothing to train");
  require(!o.out_dir.empty(), "--out must name a folder");
}

// Top-1 of zero-shot classification on a labelled set (eval's protocol: evaluation
// preprocessing, classifier from class names × evaluation templates).
double held_out_zero_shot(const Model& model, const data::Dataset& held_out, const data::ClassPrompts& prompts,
                          const TrainOptions& o) {
  eval::ExtractOptions eo;
  eo.progress = false;
  eo.threads = o.workers;
  const eval::FeatureSet features = eval::extract_image_features(model, held_out, eo);
  return eval::zero_shot(model, features, prompts.classes, prompts.templates, 5, o.workers).metrics.top1;
}

}  // namespace

TrainResult train(const TrainOptions& o, const MetricsCallback& on_metrics) {
  const DistributedEnv env = distributed_env_from_environment();
  validate(o, env.world_size);
  const bool main_rank = env.rank == 0;  // logs, evaluates and writes files
  set_threads(o.threads);
  const auto started = Clock::now();
  const std::string ckpt_dir = o.out_dir + "/checkpoints";
  if (main_rank) {
    make_dirs(ckpt_dir);
    // Temporary files of writers that were killed (the names they publish are complete).
    remove_stale_checkpoint_files(ckpt_dir);
    for (const char* name : {"metrics.jsonl", "model.safetensors", "summary.json", "curves.svg", "results.json", "report.html"})
      util::remove_temp_files_of(o.out_dir + "/" + name);
  }

  bool from_scratch = true;
  Model model = build_model(o, from_scratch);
  model.set_precision(o.precision);
  model.set_gradient_checkpointing(o.grad_checkpointing);
  model::ClipModuleImpl& m = *model::module_of(model);
  m.train();
  for (auto& p : m.named_parameters(true)) {
    const bool image = starts_with(p.key(), "visual.");
    if ((image && o.lock_image) || (!image && o.lock_text && p.key() != "logit_scale")) p.value().set_requires_grad(false);
  }
  torch::Tensor logit_bias = torch::zeros({1});
  if (o.loss == LossKind::kSigLip) {
    torch::NoGradGuard g;
    if (from_scratch) m.logit_scale.fill_(std::log(10.0));
    logit_bias.fill_(-10.0);
    logit_bias.set_requires_grad(true);
  }
  std::unique_ptr<DistributedContext> dist;
  if (env.world_size > 1) {
    dist = std::make_unique<DistributedContext>(
        env, std::chrono::seconds(static_cast<int64_t>(std::ceil(o.dist_timeout_s))), model.device());
    // The same start everywhere, whatever each rank's initialisation did.
    std::vector<torch::Tensor> state_tensors;
    for (const auto& p : m.named_parameters(true)) state_tensors.push_back(p.value());
    for (const auto& b : m.named_buffers(true)) state_tensors.push_back(b.value());
    state_tensors.push_back(logit_bias);
    dist->broadcast(state_tensors);
    dist->reset_comm_counters();  // the per-step figures count the steps only
  }
  const Tokenizer tokenizer = tokenizer_for_model(model.config());
  DataSetup data = build_data(o, model, tokenizer, env.rank, env.world_size);

  NamedParameters named;
  for (const auto& p : m.named_parameters(true)) named.emplace_back(p.key(), p.value());
  if (o.loss == LossKind::kSigLip) named.emplace_back("logit_bias", logit_bias);
  auto optimizer = make_optimizer(named, o.optimizer);

  const int64_t per_epoch = data.loader->batches_per_epoch();
  if (per_epoch < 0 && o.max_steps == 0)
    throw Error("streamed data (" + data.loader->description() + ") has no known epoch length: give --steps");
  const int64_t epoch_steps = std::max<int64_t>(1, std::llround(o.epochs * static_cast<double>(per_epoch)));
  const int64_t total_steps = o.max_steps > 0 ? (per_epoch > 0 ? std::min(o.max_steps, epoch_steps) : o.max_steps) : epoch_steps;
  const int64_t schedule_steps = per_epoch > 0 ? epoch_steps : o.max_steps;

  CheckpointContents state;
  state.config_json = config_to_json(model.config());
  state.options_json = run_identity(o, model.config()).dump();
  std::vector<torch::Tensor> extra{logit_bias};
  if (!o.resume.empty()) {
    std::string path = o.resume;
    const CheckpointContents loaded = o.resume == "latest" ? load_latest_checkpoint(ckpt_dir, m, *optimizer, extra, &path)
                                                           : load_checkpoint(path, m, *optimizer, extra);
    if (loaded.options_json != state.options_json)
      throw Error(path + ": the checkpoint belongs to a run with other settings:\n  checkpoint: " + loaded.options_json +
                  "\n  now:        " + state.options_json);
    state.position = loaded.position;
    state.metrics_bytes = loaded.metrics_bytes;
    if (main_rank) std::fprintf(stderr, "resumed from %s at step %lld\n", path.c_str(), static_cast<long long>(state.position.step));
  }

  const std::string metrics_path = o.out_dir + "/metrics.jsonl";
  std::unique_ptr<MetricsLog> metrics;
  if (main_rank)  // a resumed run drops the lines written after its checkpoint
    metrics = std::make_unique<MetricsLog>(metrics_path, o.resume.empty() ? -1 : state.position.step, state.metrics_bytes);
  auto log = [&](const json& line) {
    if (!main_rank) return;
    metrics->append(line.dump());
    if (on_metrics) on_metrics(line.dump());
  };

  util::ProgressBar progress("train", total_steps, o.progress && main_rank);
  TrainResult result;
  auto save = [&] {
    if (!main_rank) return;
    state.metrics_bytes = metrics->sync();  // the lines up to this step, durable, and their length
    save_checkpoint(checkpoint_path(ckpt_dir, state.position.step), m, *optimizer, extra, state);
    prune_checkpoints(ckpt_dir, o.keep_checkpoints);
  };
  // Held-out zero-shot top-1 with the evaluation prompts (the classifier is rebuilt each time:
  // the text tower is training too).
  int64_t last_eval_step = -1;
  auto evaluate = [&] {
    last_eval_step = state.position.step;
    if (!data.held_out || !main_rank) return;
    m.eval();
    const double top1 = held_out_zero_shot(model, *data.held_out, data.prompts, o);
    at::autocast::clear_cache();  // bf16 weight copies made under inference mode cannot train
    m.train();
    result.val_top1 = top1;
    log(json{{"step", state.position.step}, {"epoch", state.position.epoch}, {"val_zeroshot_top1", top1},
             {"elapsed_s", std::chrono::duration<double>(Clock::now() - started).count()}});
    char line[96];
    std::snprintf(line, sizeof line, "step %lld: held-out zero-shot top-1 %.2f%%", static_cast<long long>(state.position.step),
                  100 * top1);
    progress.note(line);
  };

  double window_loss = 0;
  int64_t window_steps = 0, window_samples = 0;
  auto window_start = Clock::now();
  bool stop = false;
  for (int64_t epoch = state.position.epoch; !stop && epoch < o.epochs; ++epoch) {
    data.loader->start(epoch, epoch == state.position.epoch ? state.position.batch_in_epoch : 0);
    state.position.epoch = epoch;
    while (!stop) {
      if (state.position.step >= total_steps) {
        stop = true;
        break;
      }
      std::optional<data::Batch> batch = data.loader->next();
      int64_t global_rows = batch ? batch->rows : 0;
      bool skip_step = global_rows < 2;
      if (dist) {
        // The ranks agree on the step: an epoch ends for all when one rank's data ends (streamed
        // shards), and a step is skipped by all when a rank has no rows left.
        const int64_t rows = global_rows;
        const std::vector<double> agreed = dist->sum({batch ? 0.0 : 1.0, rows < 1 ? 1.0 : 0.0, static_cast<double>(rows)});
        if (agreed[0] > 0) break;
        global_rows = static_cast<int64_t>(agreed[2]);
        skip_step = agreed[1] > 0 || global_rows < 2;
      }
      if (!batch) break;
      for (const std::string& s : batch->skipped) {
        ++result.skipped;
        log(json{{"step", state.position.step}, {"skipped", s}});
      }
      const int64_t rows = batch->rows;
      if (skip_step) continue;
      const int64_t size = model.config().image_resolution, length = model.config().context_length;
      const torch::Tensor images = torch::from_blob(batch->images.data(), {rows, 3, size, size}, torch::kFloat32);
      const torch::Tensor tokens = torch::from_blob(batch->tokens.data(), {rows, length}, torch::kInt64);

      const double lr = cosine_lr(state.position.step, o.optimizer.lr, o.warmup_steps, schedule_steps);
      set_learning_rate(*optimizer, lr);
      clear_gradients(*optimizer);
      const LossFn loss_fn = [&](const torch::Tensor& i, const torch::Tensor& t, const torch::Tensor& scale) {
        if (dist) {
          // Every rank's features: the global batch's loss (or this rank's rows of it).
          const GatheredFeatures all = dist->gather_features(i, t);
          if (o.local_loss) return contrastive_loss_local(i, t, all.image, all.text, all.offset, scale);
          return o.loss == LossKind::kSigLip ? siglip_loss(all.image, all.text, scale, logit_bias)
                                             : contrastive_loss(all.image, all.text, scale);
        }
        return o.loss == LossKind::kSigLip ? siglip_loss(i, t, scale, logit_bias) : contrastive_loss(i, t, scale);
      };
      double loss_value =
          accumulate_gradients(m, model.precision(), model.device(), images, tokens, o.accum_steps, loss_fn);
      std::vector<torch::Tensor> params;
      for (const auto& [name, p] : named)
        if (p.requires_grad()) params.push_back(p);
      if (dist) dist->average_gradients(params);
      if (o.grad_clip_norm > 0) torch::nn::utils::clip_grad_norm_(params, o.grad_clip_norm);
      optimizer->step();
      at::autocast::clear_cache();  // the bf16 copies of the weights are stale now
      {
        torch::NoGradGuard g;
        m.logit_scale.clamp_(0, std::log(100.0));
      }
      const double elapsed = std::chrono::duration<double>(Clock::now() - started).count();
      bool stop_requested = (o.stop_after_seconds > 0 && elapsed >= o.stop_after_seconds) || (o.stop_flag && o.stop_flag->load());
      if (dist) {
        // The logged loss is the ranks' mean (they differ with --local-loss), and one rank's stop
        // request (time limit, signal) stops all at the same step.
        const std::vector<double> agreed = dist->sum({loss_value, stop_requested ? 1.0 : 0.0});
        loss_value = agreed[0] / dist->world_size();
        stop_requested = agreed[1] > 0;
      }
      ++state.position.step;
      state.position.samples += global_rows;
      state.position.batch_in_epoch = batch->index + 1;
      result.final_loss = loss_value;
      window_loss += loss_value;
      ++window_steps;
      window_samples += global_rows;

      const double window_s = std::chrono::duration<double>(Clock::now() - window_start).count();
      const double rate = window_s > 0 ? window_samples / window_s : 0;
      const double eta = rate > 0 ? (total_steps - state.position.step) * static_cast<double>(o.batch_size) / rate : 0;
      char fields[128];
      std::snprintf(fields, sizeof fields, "loss %.4f  lr %.2e  T %.1f  %.0f samples/s", loss_value, lr,
                    m.logit_scale.exp().item<double>(), rate);
      progress.update(state.position.step, fields, eta);
      if (state.position.step % o.log_every == 0 || state.position.step == total_steps) {
        json line{{"step", state.position.step}, {"epoch", epoch}, {"loss", window_loss / window_steps}, {"lr", lr},
                  {"temperature", m.logit_scale.exp().item<double>()}, {"samples_per_s", rate}, {"elapsed_s", elapsed}};
        if (dist) {
          line["comm_s_per_step"] = dist->comm_seconds() / window_steps;
          line["comm_bytes_per_step"] = dist->comm_bytes() / window_steps;
          dist->reset_comm_counters();
        }
        log(line);
        window_loss = 0;
        window_steps = 0;
        window_samples = 0;
        window_start = Clock::now();
      }
      if (o.eval_every > 0 && state.position.step % o.eval_every == 0) evaluate();
      if (o.save_every > 0 && state.position.step % o.save_every == 0) save();
      if (stop_requested) {
        result.interrupted = state.position.step < total_steps;
        stop = true;
      }
    }
    if (!stop) {
      state.position.epoch = epoch + 1;
      state.position.batch_in_epoch = 0;
      if (o.eval_every == 0) evaluate();
    }
  }
  // The end of the schedule can fall on an epoch's last batch, where the loop stops before its
  // end-of-epoch check: evaluate the final weights once.
  if (!result.interrupted && last_eval_step != state.position.step) evaluate();
  progress.finish();
  save();
  result.steps = state.position.step;
  result.samples = state.position.samples;
  result.seconds = std::chrono::duration<double>(Clock::now() - started).count();
  m.eval();
  if (!main_rank) return result;
  if (!result.interrupted) {
    result.model_path = o.out_dir + "/model.safetensors";
    model.save_safetensors(result.model_path);
  }
  write_curves_svg(metrics_path, o.out_dir + "/curves.svg");
  if (o.final_eval && data.labelled && !result.interrupted) {
    FinalEvalOptions fo;
    fo.probe_train_limit = static_cast<size_t>(o.probe_train_limit);
    fo.threads = o.workers;
    fo.seed = o.seed;
    const std::string dir = o.data_dir.empty() ? data::kFashionMnistDir : o.data_dir;
    const nlohmann::json r = final_evaluation(model, *data::open_fashion_mnist("train", dir), *data::open_fashion_mnist("test", dir),
                                              data.prompts, o.out_dir, fo);
    result.test_zeroshot_top1 = r["zero_shot"]["top1"].get<double>();
    result.linear_probe_accuracy = r["linear_probe"]["test_accuracy"].get<double>();
  }
  json summary{{"steps", result.steps},     {"samples", result.samples},       {"seconds", result.seconds},
               {"final_loss", result.final_loss}, {"skipped_samples", result.skipped}, {"interrupted", result.interrupted},
               {"model", result.model_path}, {"config", json::parse(state.config_json)}};
  if (result.val_top1 >= 0) summary["val_zeroshot_top1"] = result.val_top1;
  if (result.test_zeroshot_top1 >= 0) {
    summary["test_zeroshot_top1"] = result.test_zeroshot_top1;
    summary["linear_probe_accuracy"] = result.linear_probe_accuracy;
  }
  util::write_file_atomic(o.out_dir + "/summary.json", summary.dump(2) + "\n");
  return result;
}

}  // namespace clip::train
