// One step of a run (gradient accumulation itself is train/step.cpp).
#include "train/run_step.h"

#include <ATen/autocast_mode.h>

#include <cmath>

#include "train/objectives.h"

namespace clip::train {

LossFn make_run_loss(const Run& run) {
  DistributedContext* dist = run.dist.get();
  const bool local = run.options.local_loss, siglip = run.options.loss == LossKind::kSigLip;
  const torch::Tensor logit_bias = run.logit_bias;
  return [dist, local, siglip, logit_bias](const torch::Tensor& i, const torch::Tensor& t, const torch::Tensor& scale) {
    if (dist) {
      // Every rank's features: the global batch's loss (or this rank's rows of it).
      const GatheredFeatures all = dist->gather_features(i, t);
      if (local) return contrastive_loss_local(i, t, all.image, all.text, all.offset, scale);
      return siglip ? siglip_loss(all.image, all.text, scale, logit_bias)
                    : contrastive_loss(all.image, all.text, scale);
    }
    return siglip ? siglip_loss(i, t, scale, logit_bias) : contrastive_loss(i, t, scale);
  };
}

BatchAgreement agree_on_batch(Run& run, const std::optional<data::Batch>& batch) {
  BatchAgreement a;
  a.global_rows = batch ? batch->rows : 0;
  a.skip = a.global_rows < 2;
  a.epoch_over = !batch;
  if (run.dist) {
    const int64_t rows = a.global_rows;
    const std::vector<double> agreed =
        run.dist->sum({batch ? 0.0 : 1.0, rows < 1 ? 1.0 : 0.0, static_cast<double>(rows)});
    a.epoch_over = agreed[0] > 0;
    a.global_rows = static_cast<int64_t>(agreed[2]);
    a.skip = agreed[1] > 0 || a.global_rows < 2;
  }
  return a;
}

StepOutcome run_step(Run& run, data::Batch& batch, int64_t global_rows, const LossFn& loss) {
  const TrainOptions& o = run.options;
  TrainPosition& at = run.state.position;
  model::ClipModuleImpl& m = run.module();
  const int64_t rows = batch.rows;
  const int64_t size = run.model.config().image_resolution, length = run.model.config().context_length;
  const torch::Tensor images = torch::from_blob(batch.images.data(), {rows, 3, size, size}, torch::kFloat32);
  const torch::Tensor tokens = torch::from_blob(batch.tokens.data(), {rows, length}, torch::kInt64);

  StepOutcome out;
  out.lr = cosine_lr(at.step, o.optimizer.lr, o.warmup_steps, run.schedule_steps);
  set_learning_rate(*run.optimizer, out.lr);
  clear_gradients(*run.optimizer);
  out.loss = o.objective == Objective::kContrastive
                 ? accumulate_gradients(m, run.model.precision(), run.model.device(), images, tokens, o.accum_steps, loss)
                 : accumulate_head_gradients(run, images, tokens);
  if (run.dist) run.dist->average_gradients(run.trainable);
  if (o.grad_clip_norm > 0) torch::nn::utils::clip_grad_norm_(run.trainable, o.grad_clip_norm);
  run.optimizer->step();
  at::autocast::clear_cache();  // the bf16 copies of the weights are stale now
  {
    torch::NoGradGuard g;
    m.logit_scale.clamp_(0, std::log(100.0));
  }
  out.elapsed_s = run.seconds();
  out.stop =
      (o.stop_after_seconds > 0 && out.elapsed_s >= o.stop_after_seconds) || (o.stop_flag && o.stop_flag->load());
  if (run.dist) {
    // The logged loss is the ranks' mean, and one rank's stop request stops all at the same step.
    const std::vector<double> agreed = run.dist->sum({out.loss, out.stop ? 1.0 : 0.0});
    out.loss = agreed[0] / run.dist->world_size();
    out.stop = agreed[1] > 0;
  }
  ++at.step;
  at.samples += global_rows;
  at.batch_in_epoch = batch.index + 1;
  return out;
}

}  // namespace clip::train
