// The end of a run: final weights, curves, final evaluation, summary.
#include "train/run_finish.h"

#include <nlohmann/json.hpp>

#include "clip/data.h"
#include "train/curves.h"
#include "train/final_report.h"
#include "train/objectives.h"
#include "util/file_io.h"

namespace clip::train {
namespace {

// bow-predict's and caption's final evaluation: zero-shot on the test split through the head (by
// the prompts' words, or their log-likelihood); the linear probe and retrieval of the contrastive
// report are not run.
double head_test_zero_shot(Run& run, const std::string& dir, const TrainCallbacks& callbacks) {
  if (callbacks.on_note)
    callbacks.on_note(std::string("final evaluation: ") + objective_name(run.options.objective) +
                      " zero-shot on the test split");
  eval::ExtractOptions eo;
  eo.threads = run.options.workers;
  eo.progress = false;
  const eval::FeatureSet features = eval::extract_image_features(run.model, *data::open_fashion_mnist("test", dir), eo);
  run.module().eval();
  return head_zero_shot(run, features).top1;
}

}  // namespace

void finish_run(Run& run, TrainResult& result, const TrainCallbacks& callbacks) {
  using json = nlohmann::json;
  const TrainOptions& o = run.options;
  if (!result.interrupted) {
    result.model_path = o.out_dir + "/model.safetensors";
    run.model.save_safetensors(result.model_path);
    if (run.head.defined())
      save_objective_head(run.head, o.objective, o.out_dir + "/" + objective_head_file(o.objective));
  }
  write_curves_svg(run.metrics_path, o.out_dir + "/curves.svg");
  if (o.final_eval && run.data.labelled && !result.interrupted && run.head.defined()) {
    result.test_zeroshot_top1 =
        head_test_zero_shot(run, o.data_dir.empty() ? data::kFashionMnistDir : o.data_dir, callbacks);
  } else if (o.final_eval && run.data.labelled && !result.interrupted) {
    FinalEvalOptions fo;
    fo.probe_train_limit = static_cast<size_t>(o.probe_train_limit);
    fo.threads = o.workers;
    fo.seed = o.seed;
    fo.on_note = callbacks.on_note;
    const std::string dir = o.data_dir.empty() ? data::kFashionMnistDir : o.data_dir;
    const json r = final_evaluation(run.model, *data::open_fashion_mnist("train", dir),
                                    *data::open_fashion_mnist("test", dir), run.data.prompts, o.out_dir, fo);
    result.test_zeroshot_top1 = r["zero_shot"]["top1"].get<double>();
    result.linear_probe_accuracy = r["linear_probe"]["test_accuracy"].get<double>();
  }
  json summary{{"steps", result.steps},
               {"samples", result.samples},
               {"seconds", result.seconds},
               {"final_loss", result.final_loss},
               {"skipped_samples", result.skipped},
               {"interrupted", result.interrupted},
               {"model", result.model_path},
               {"config", json::parse(run.state.config_json)},
               {"objective", objective_name(o.objective)}};
  if (result.val_top1 >= 0) summary["val_zeroshot_top1"] = result.val_top1;
  if (result.test_zeroshot_top1 >= 0) {
    summary["test_zeroshot_top1"] = result.test_zeroshot_top1;
    if (result.linear_probe_accuracy >= 0) summary["linear_probe_accuracy"] = result.linear_probe_accuracy;
  }
  util::write_file_atomic(o.out_dir + "/summary.json", summary.dump(2) + "\n");
}

}  // namespace clip::train
