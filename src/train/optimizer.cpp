// AdamW with open_clip's weight-decay exclusions, and the warmup + cosine schedule.
#include <cmath>

#include "clip/error.h"
#include "clip/train.h"
#include "train/fused_adamw.h"

namespace clip::train {

bool gets_weight_decay(const std::string& name, const torch::Tensor& parameter) {
  if (parameter.dim() < 2) return false;  // gains, biases, the temperature, class embedding
  for (const char* part : {"embedding", ".ln_", "ln_pre", "ln_post", "ln_final", ".bn", "bias", "logit_"})
    if (name.find(part) != std::string::npos) return false;
  return true;
}

std::unique_ptr<torch::optim::AdamW> make_optimizer(const NamedParameters& parameters, const OptimizerOptions& o) {
  if (!(o.lr >= 0) || !(o.eps > 0) || !(o.beta1 >= 0 && o.beta1 < 1) || !(o.beta2 >= 0 && o.beta2 < 1) ||
      !(o.weight_decay >= 0))
    throw Error("optimizer: expected lr >= 0, 0 <= beta1, beta2 < 1, eps > 0 and weight decay >= 0");
  std::vector<torch::Tensor> decay, no_decay;
  for (const auto& [name, p] : parameters) {
    if (!p.requires_grad()) continue;  // locked towers
    (gets_weight_decay(name, p) ? decay : no_decay).push_back(p);
  }
  if (decay.empty() && no_decay.empty()) throw Error("optimizer: no parameter to train (are both towers locked?)");
  auto options = [&](double wd) {
    return std::make_unique<torch::optim::AdamWOptions>(
        torch::optim::AdamWOptions(o.lr).betas({o.beta1, o.beta2}).eps(o.eps).weight_decay(wd));
  };
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, options(o.weight_decay));
  groups.emplace_back(no_decay, options(0.0));
  return std::make_unique<FusedAdamW>(groups, torch::optim::AdamWOptions(o.lr));
}

void set_learning_rate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
}

void clear_gradients(torch::optim::Optimizer& optimizer) {
  for (auto& group : optimizer.param_groups())
    for (auto& p : group.params()) p.mutable_grad().reset();
}

double cosine_lr(int64_t step, double base_lr, int64_t warmup_steps, int64_t total_steps) {
  if (step < warmup_steps) return base_lr * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
  const double e = static_cast<double>(step - warmup_steps);
  const double es = static_cast<double>(std::max<int64_t>(1, total_steps - warmup_steps));
  return 0.5 * (1.0 + std::cos(M_PI * std::min(e, es) / es)) * base_lr;
}

}  // namespace clip::train
