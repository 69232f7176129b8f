// Held-out zero-shot evaluation during a run.
#include "train/held_out_eval.h"

#include <ATen/autocast_mode.h>

#include <cstdio>

#include "clip/eval.h"
#include "train/log_window.h"
#include "train/objectives.h"

namespace clip::train {

std::optional<double> evaluate_held_out(Run& run, const TrainCallbacks& callbacks) {
  if (!run.data.held_out || !run.main_rank) return std::nullopt;
  const TrainOptions& o = run.options;
  model::ClipModuleImpl& m = run.module();
  m.eval();
  eval::ExtractOptions eo;
  eo.progress = false;
  eo.threads = o.workers;
  const eval::FeatureSet features = eval::extract_image_features(run.model, *run.data.held_out, eo);
  const double top1 =
      o.objective != Objective::kContrastive
          ? head_zero_shot(run, features).top1
          : eval::zero_shot(run.model, features, run.data.prompts.classes, run.data.prompts.templates, 5, o.workers)
                .metrics.top1;
  at::autocast::clear_cache();  // bf16 weight copies made under inference mode cannot train
  m.train();
  const TrainPosition& at = run.state.position;
  log_metrics(run, callbacks,
              nlohmann::json{
                  {"step", at.step}, {"epoch", at.epoch}, {"val_zeroshot_top1", top1}, {"elapsed_s", run.seconds()}});
  char line[96];
  std::snprintf(line, sizeof line, "step %lld: held-out zero-shot top-1 %.2f%%", static_cast<long long>(at.step),
                100 * top1);
  if (callbacks.on_note) callbacks.on_note(line);
  return top1;
}

}  // namespace clip::train
