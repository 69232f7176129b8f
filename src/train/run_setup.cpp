// Setting up a run: from options (and a checkpoint on resume) to the state the steps advance.
#include "train/run_setup.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <nlohmann/json.hpp>

#include "train/objectives.h"
#include "train/options.h"
#include "util/file_io.h"
#include "util/strings.h"

namespace clip::train {
namespace {

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

// A named config or config JSON → a fresh model; anything else → a checkpoint to fine-tune.
Model build_model(const TrainOptions& o, bool& from_scratch) {
  ModelConfig config;
  from_scratch = true;
  if (util::ends_with(o.model, ".json")) {
    config = config_from_file(o.model);
  } else if (util::file_exists(o.model) || o.model.find('/') != std::string::npos) {
    from_scratch = false;
    if (o.vocab_size || o.context_length)
      throw OptionError({option("vocab_size"),
                         {" and "},
                         option("context_length"),
                         {" apply to models trained from scratch, not to the checkpoint " + o.model}});
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
  return json{{"data", o.data},
              {"model", o.model},
              {"config", json::parse(config_to_json(c))},
              {"batch_size", o.batch_size},
              {"epochs", o.epochs},
              {"lr", o.optimizer.lr},
              {"warmup_steps", o.warmup_steps},
              {"seed", o.seed},
              {"loss", o.loss == LossKind::kSigLip ? "siglip" : "contrastive"},
              {"lock_image", o.lock_image},
              {"lock_text", o.lock_text},
              {"val_size", o.val_size}};
}

// Runs of the contrastive objective keep the identity they had before objectives existed.
json run_identity_with_objective(const TrainOptions& o, const ModelConfig& c) {
  json j = run_identity(o, c);
  if (o.objective != Objective::kContrastive) j["objective"] = objective_name(o.objective);
  return j;
}

// Locks the towers the options freeze (bow-predict: the text tower and the temperature, which it
// does not use; caption: the text projection and the temperature), gives SigLIP its initial
// temperature and bias, and bow-predict and caption their head.
void prepare_parameters(Run& run, bool from_scratch) {
  const TrainOptions& o = run.options;
  model::ClipModuleImpl& m = run.module();
  m.train();
  for (auto& p : m.named_parameters(true)) {
    const bool image = util::starts_with(p.key(), "visual.");
    if ((image && o.lock_image) || (!image && o.lock_text && p.key() != "logit_scale") ||
        (!image && o.objective == Objective::kBowPredict) ||
        (o.objective == Objective::kCaption && (p.key() == "text_projection" || p.key() == "logit_scale")))
      p.value().set_requires_grad(false);
  }
  run.head = make_objective_head(o.objective, run.model.config());
  run.logit_bias = torch::zeros({1});
  if (o.loss == LossKind::kSigLip) {
    torch::NoGradGuard g;
    if (from_scratch) m.logit_scale.fill_(std::log(10.0));
    run.logit_bias.fill_(-10.0);
    run.logit_bias.set_requires_grad(true);
  }
}

// Joins the other ranks and starts from rank 0's weights, whatever each rank's initialisation did.
void join_ranks(Run& run, const DistributedEnv& env) {
  run.dist = std::make_unique<DistributedContext>(
      env, std::chrono::seconds(static_cast<int64_t>(std::ceil(run.options.dist_timeout_s))), run.model.device());
  model::ClipModuleImpl& m = run.module();
  std::vector<torch::Tensor> state_tensors;
  for (const auto& p : m.named_parameters(true)) state_tensors.push_back(p.value());
  for (const auto& b : m.named_buffers(true)) state_tensors.push_back(b.value());
  state_tensors.push_back(run.logit_bias);
  if (run.head.defined()) {
    state_tensors.push_back(run.head.weight);
    state_tensors.push_back(run.head.bias);
  }
  run.dist->broadcast(state_tensors);
  run.dist->reset_comm_counters();  // the per-step figures count the steps only
}

void build_optimizer(Run& run) {
  for (const auto& p : run.module().named_parameters(true)) run.named.emplace_back(p.key(), p.value());
  if (run.options.loss == LossKind::kSigLip) run.named.emplace_back("logit_bias", run.logit_bias);
  if (run.head.defined()) {
    const std::string prefix = objective_head_file(run.options.objective);  // "bow_head.safetensors"
    const std::string name = prefix.substr(0, prefix.find('.'));
    run.named.emplace_back(name + ".weight", run.head.weight);
    run.named.emplace_back(name + ".bias", run.head.bias);
  }
  run.optimizer = make_optimizer(run.named, run.options.optimizer);
  // Which parameters train is settled now (the locks above): the steps reuse this list.
  for (const auto& [name, p] : run.named)
    if (p.requires_grad()) run.trainable.push_back(p);
  run.extra = {run.logit_bias};
  if (run.head.defined()) run.extra.insert(run.extra.end(), {run.head.weight, run.head.bias});
}

// The steps of this run and of its schedule: whole epochs (a fraction ends the last part way),
// or --steps for streamed data without a known epoch length.
void set_lengths(Run& run) {
  const TrainOptions& o = run.options;
  const int64_t per_epoch = run.data.loader->batches_per_epoch();
  if (per_epoch < 0 && o.max_steps == 0)
    throw OptionError({{"streamed data (" + run.data.loader->description() + ") has no known epoch length: give "},
                       option("max_steps")});
  const int64_t epoch_steps = std::max<int64_t>(1, std::llround(o.epochs * static_cast<double>(per_epoch)));
  run.total_steps = o.max_steps > 0 ? (per_epoch > 0 ? std::min(o.max_steps, epoch_steps) : o.max_steps) : epoch_steps;
  run.schedule_steps = per_epoch > 0 ? epoch_steps : o.max_steps;
}

void resume(Run& run, const TrainCallbacks& callbacks) {
  const TrainOptions& o = run.options;
  auto note = [&](const std::string& line) {
    if (callbacks.on_note) callbacks.on_note(line);
  };
  std::string path = o.resume;
  const CheckpointContents loaded =
      o.resume == "latest"
          ? load_latest_checkpoint(run.checkpoint_dir, run.module(), *run.optimizer, run.extra, &path,
                                   [&](const std::string& why) {
                                     // Every rank reads the checkpoints for itself, and says so.
                                     note("warning: skipping a checkpoint that does not read whole: " + why);
                                   })
          : load_checkpoint(path, run.module(), *run.optimizer, run.extra);
  if (loaded.options_json != run.state.options_json)
    throw Error(path + ": the checkpoint belongs to a run with other settings:\n  checkpoint: " + loaded.options_json +
                "\n  now:        " + run.state.options_json);
  run.state.position = loaded.position;
  run.state.metrics_bytes = loaded.metrics_bytes;
  if (run.main_rank) note("resumed from " + path + " at step " + std::to_string(run.state.position.step));
}

}  // namespace

Run set_up_run(const TrainOptions& o, const TrainCallbacks& callbacks) {
  const DistributedEnv env = distributed_env_from_environment();
  validate_options(o, env.world_size);
  set_threads(o.threads);
  const auto started = std::chrono::steady_clock::now();
  const bool main_rank = env.rank == 0;
  const std::string checkpoint_dir = o.out_dir + "/checkpoints";
  if (main_rank) {
    make_dirs(checkpoint_dir);
    // Temporary files of writers that were killed (the names they publish are complete).
    remove_stale_checkpoint_files(checkpoint_dir);
    for (const char* name :
         {"metrics.jsonl", "model.safetensors", "summary.json", "curves.svg", "results.json", "report.html"})
      util::remove_temp_files_of(o.out_dir + "/" + name);
  }

  bool from_scratch = true;
  Run run(o, build_model(o, from_scratch));
  run.started = started;
  run.main_rank = main_rank;
  run.checkpoint_dir = checkpoint_dir;
  run.model.set_precision(o.precision);
  run.model.set_gradient_checkpointing(o.grad_checkpointing);
  prepare_parameters(run, from_scratch);
  if (env.world_size > 1) join_ranks(run, env);
  const Tokenizer tokenizer = tokenizer_for_model(run.model.config());
  run.data = open_train_data(o, run.model.config(), tokenizer, env.rank, env.world_size);
  build_optimizer(run);
  set_lengths(run);

  run.state.config_json = config_to_json(run.model.config());
  run.state.options_json = run_identity_with_objective(o, run.model.config()).dump();
  if (!o.resume.empty()) resume(run, callbacks);

  run.metrics_path = o.out_dir + "/metrics.jsonl";
  if (main_rank)  // a resumed run drops the lines written after its checkpoint
    run.metrics = std::make_unique<MetricsLog>(run.metrics_path, o.resume.empty() ? -1 : run.state.position.step,
                                               run.state.metrics_bytes);
  return run;
}

}  // namespace clip::train
