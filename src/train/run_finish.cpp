// The end of a run: final weights, curves, final evaluation, summary.
#include "train/run_finish.h"

#include <nlohmann/json.hpp>

#include "clip/data.h"
#include "train/curves.h"
#include "train/final_report.h"
#include "util/file_io.h"

namespace clip::train {

void finish_run(Run& run, TrainResult& result, const TrainCallbacks& callbacks) {
  using json = nlohmann::json;
  const TrainOptions& o = run.options;
  if (!result.interrupted) {
    result.model_path = o.out_dir + "/model.safetensors";
    run.model.save_safetensors(result.model_path);
  }
  write_curves_svg(run.metrics_path, o.out_dir + "/curves.svg");
  if (o.final_eval && run.data.labelled && !result.interrupted) {
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
               {"config", json::parse(run.state.config_json)}};
  if (result.val_top1 >= 0) summary["val_zeroshot_top1"] = result.val_top1;
  if (result.test_zeroshot_top1 >= 0) {
    summary["test_zeroshot_top1"] = result.test_zeroshot_top1;
    summary["linear_probe_accuracy"] = result.linear_probe_accuracy;
  }
  util::write_file_atomic(o.out_dir + "/summary.json", summary.dump(2) + "\n");
}

}  // namespace clip::train
