#include "train/fused_adamw.h"

#include <ATen/Parallel.h>
#include <c10/util/string_utils.h>

#include <cmath>

namespace clip::train {
namespace {

// The factors of one AdamW step of one parameter, as libtorch's AdamW computes them.
struct StepFactors {
  double decay;         // the weight is multiplied by this first (1 − lr·wd)
  double beta1, beta2;  // moment decay
  double sqrt_bc2;      // √(1 − β₂ᵗ)
  double eps;
  double step_size;  // lr / (1 − β₁ᵗ)
};

bool fusable(const torch::Tensor& p, const torch::Tensor& grad) {
  return p.device().is_cpu() && p.scalar_type() == torch::kFloat32 && p.is_contiguous() && grad.device().is_cpu() &&
         grad.scalar_type() == torch::kFloat32 && grad.is_contiguous() && !grad.is_sparse() &&
         grad.numel() == p.numel();
}

// One pass: w ← w·decay; m ← m·β₁ + g·(1−β₁); v ← v·β₂ + g·g·(1−β₂);
// w ← w − step_size · m / (√v / √(1−β₂ᵗ) + ε).
void fused_update(float* w, const float* g, float* m, float* v, int64_t n, const StepFactors& f) {
  const float decay = static_cast<float>(f.decay), b1 = static_cast<float>(f.beta1), b2 = static_cast<float>(f.beta2);
  const float one_minus_b1 = static_cast<float>(1 - f.beta1), one_minus_b2 = static_cast<float>(1 - f.beta2);
  const float sqrt_bc2 = static_cast<float>(f.sqrt_bc2), eps = static_cast<float>(f.eps);
  const float neg_step = static_cast<float>(-f.step_size);
  at::parallel_for(0, n, 16384, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const float gi = g[i];
      const float mi = m[i] * b1 + gi * one_minus_b1;
      const float vi = v[i] * b2 + gi * gi * one_minus_b2;
      m[i] = mi;
      v[i] = vi;
      w[i] = w[i] * decay + neg_step * (mi / (std::sqrt(vi) / sqrt_bc2 + eps));
    }
  });
}

// The same step with tensor operations (libtorch's AdamW), for any other parameter and amsgrad.
void tensor_update(torch::Tensor& p, const torch::Tensor& grad, torch::optim::AdamWParamState& s, const StepFactors& f,
                   bool amsgrad) {
  p.mul_(f.decay);
  s.exp_avg().mul_(f.beta1).add_(grad, 1 - f.beta1);
  s.exp_avg_sq().mul_(f.beta2).addcmul_(grad, grad, 1 - f.beta2);
  torch::Tensor second = s.exp_avg_sq();
  if (amsgrad) {
    torch::max_out(s.max_exp_avg_sq(), s.max_exp_avg_sq(), s.exp_avg_sq());
    second = s.max_exp_avg_sq();
  }
  p.addcdiv_(s.exp_avg(), (second.sqrt() / f.sqrt_bc2).add_(f.eps), -f.step_size);
}

}  // namespace

torch::Tensor FusedAdamW::step(LossClosure closure) {
  torch::NoGradGuard no_grad;
  torch::Tensor loss;
  if (closure) {
    torch::AutoGradMode enable_grad(true);
    loss = closure();
  }
  for (auto& group : param_groups()) {
    auto& o = static_cast<torch::optim::AdamWOptions&>(group.options());
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      const torch::Tensor& grad = p.grad();
      auto& slot = state_[c10::guts::to_string(p.unsafeGetTensorImpl())];
      if (!slot) {
        auto fresh = std::make_unique<torch::optim::AdamWParamState>();
        fresh->step(0);
        fresh->exp_avg(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        fresh->exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        if (o.amsgrad()) fresh->max_exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        slot = std::move(fresh);
      }
      auto& s = static_cast<torch::optim::AdamWParamState&>(*slot);
      s.step(s.step() + 1);
      const double beta1 = std::get<0>(o.betas()), beta2 = std::get<1>(o.betas());
      StepFactors f;
      f.decay = 1 - o.lr() * o.weight_decay();
      f.beta1 = beta1;
      f.beta2 = beta2;
      f.sqrt_bc2 = std::sqrt(1 - std::pow(beta2, static_cast<double>(s.step())));
      f.eps = o.eps();
      f.step_size = o.lr() / (1 - std::pow(beta1, static_cast<double>(s.step())));
      if (!o.amsgrad() && fusable(p, grad) && s.exp_avg().is_contiguous() && s.exp_avg_sq().is_contiguous()) {
        fused_update(p.data_ptr<float>(), grad.data_ptr<float>(), s.exp_avg().data_ptr<float>(),
                     s.exp_avg_sq().data_ptr<float>(), p.numel(), f);
        // Writes through raw pointers do not count as in-place operations: bump the version
        // counters by hand, or whatever caches by version (the packed inference weights of
        // FastLinear) would go on using the weights from before the step.
        for (const torch::Tensor* t : {&p, &s.exp_avg(), &s.exp_avg_sq()}) t->unsafeGetTensorImpl()->bump_version();
      } else tensor_update(p, grad, s, f, o.amsgrad());
    }
  }
  return loss;
}

}  // namespace clip::train
