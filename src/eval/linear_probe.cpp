// Linear probes: multinomial logistic regression on frozen features, L2 strength chosen on a
// validation split carved from train, then refit on train + validation and scored on test.
#include <chrono>
#include <cmath>
#include <random>

#include "clip/error.h"
#include "clip/eval.h"

namespace clip::eval {
namespace {

struct Classifier {
  torch::Tensor w, b;
};

// Minimizes mean cross-entropy + λ/2·‖W‖² with L-BFGS (strong Wolfe), from `init` when given.
Classifier fit(const torch::Tensor& x, const torch::Tensor& y, int64_t classes, double lambda, int max_iter,
               const Classifier* init) {
  torch::Tensor w = init ? init->w.clone() : torch::zeros({x.size(1), classes}, x.options());
  torch::Tensor b = init ? init->b.clone() : torch::zeros({classes}, x.options());
  w.set_requires_grad(true);
  b.set_requires_grad(true);
  torch::optim::LBFGS opt({w, b}, torch::optim::LBFGSOptions(1)
                                      .max_iter(max_iter)
                                      .max_eval(max_iter * 5 / 4)
                                      .history_size(20)
                                      .tolerance_grad(1e-6)
                                      .tolerance_change(1e-10)
                                      .line_search_fn("strong_wolfe"));
  auto closure = [&] {
    opt.zero_grad();
    torch::Tensor loss =
        torch::nn::functional::cross_entropy(torch::addmm(b, x, w), y) + (0.5 * lambda) * w.pow(2).sum();
    loss.backward();
    return loss;
  };
  opt.step(closure);
  return {w.detach(), b.detach()};
}

double accuracy(const Classifier& c, const torch::Tensor& x, const torch::Tensor& y) {
  if (x.size(0) == 0) return 0;
  torch::NoGradGuard no_grad;
  const torch::Tensor pred = torch::addmm(c.b, x, c.w).argmax(1);
  return pred.eq(y).to(torch::kFloat64).mean().item<double>();
}

void check_xy(const torch::Tensor& x, const torch::Tensor& y, const char* name) {
  if (!x.defined() || x.dim() != 2) throw Error(std::string("linear probe: ") + name + " features must be [N, D]");
  if (!y.defined() || y.dim() != 1 || y.size(0) != x.size(0))
    throw Error(std::string("linear probe: ") + name + " labels must be [N] with N = " + std::to_string(x.size(0)));
  if (y.numel() > 0 && y.min().item<int64_t>() < 0)
    throw Error(std::string("linear probe: ") + name +
                " labels must be class indices >= 0 (found -1: unlabelled data?)");
}

}  // namespace

LinearProbeResult linear_probe(const torch::Tensor& train_x_in, const torch::Tensor& train_y_in,
                               const torch::Tensor& test_x_in, const torch::Tensor& test_y_in,
                               const LinearProbeOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  check_xy(train_x_in, train_y_in, "train");
  check_xy(test_x_in, test_y_in, "test");
  if (train_x_in.size(1) != test_x_in.size(1))
    throw Error("linear probe: train features have " + std::to_string(train_x_in.size(1)) +
                " dimensions, test features " + std::to_string(test_x_in.size(1)));
  if (!(o.validation_fraction > 0 && o.validation_fraction < 1))
    throw Error("linear probe: validation fraction must be in (0, 1), found " + std::to_string(o.validation_fraction));
  if (o.max_iterations < 1) throw Error("linear probe: max_iterations must be >= 1");
  for (double l : o.lambdas)
    if (!(l >= 0) || !std::isfinite(l))
      throw Error("linear probe: λ must be finite and >= 0, found " + std::to_string(l));
  const torch::Tensor train_x = train_x_in.to(torch::kCPU, torch::kFloat32).contiguous();
  const torch::Tensor train_y = train_y_in.to(torch::kCPU, torch::kInt64).contiguous();
  const torch::Tensor test_x = test_x_in.to(torch::kCPU, torch::kFloat32).contiguous();
  const torch::Tensor test_y = test_y_in.to(torch::kCPU, torch::kInt64).contiguous();
  const int64_t n = train_x.size(0);
  if (n < 2) throw Error("linear probe: needs at least 2 training examples, found " + std::to_string(n));
  int64_t classes = train_y.max().item<int64_t>() + 1;
  if (test_y.numel() > 0) classes = std::max(classes, test_y.max().item<int64_t>() + 1);

  // A deterministic shuffle (our own Fisher–Yates: std::shuffle's sequence is not specified).
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
  std::mt19937_64 rng(o.seed);
  for (size_t i = order.size() - 1; i > 0; --i) std::swap(order[i], order[rng() % (i + 1)]);
  int64_t n_val =
      std::max<int64_t>(1, static_cast<int64_t>(std::llround(o.validation_fraction * static_cast<double>(n))));
  if (o.max_validation > 0) n_val = std::min<int64_t>(n_val, static_cast<int64_t>(o.max_validation));
  n_val = std::min<int64_t>(n_val, n - 1);
  const torch::Tensor perm = torch::tensor(order, torch::kInt64);
  const torch::Tensor val_idx = perm.slice(0, 0, n_val), fit_idx = perm.slice(0, n_val);
  const torch::Tensor fx = train_x.index_select(0, fit_idx), fy = train_y.index_select(0, fit_idx);
  const torch::Tensor vx = train_x.index_select(0, val_idx), vy = train_y.index_select(0, val_idx);

  LinearProbeResult r;
  r.train_count = fx.size(0);
  r.validation_count = n_val;
  r.test_count = test_x.size(0);
  r.classes = classes;
  // Each λ starts from the solution of the nearest λ tried so far (warm start: far fewer steps).
  std::vector<std::pair<double, Classifier>> solved;
  double best_lambda = 0, best_acc = -1;
  auto try_lambda = [&](double lambda) {
    for (const auto& [l, c] : r.sweep)
      if (std::abs(std::log(l) - std::log(lambda)) < 1e-9) return;
    const Classifier* init = nullptr;
    double dist = 1e300;
    for (const auto& [l, c] : solved)
      if (std::abs(std::log(l) - std::log(lambda)) < dist) {
        dist = std::abs(std::log(l) - std::log(lambda));
        init = &c;
      }
    Classifier c = fit(fx, fy, classes, lambda, o.max_iterations, init);
    const double acc = accuracy(c, vx, vy);
    if (o.on_lambda) o.on_lambda(lambda, acc);
    r.sweep.emplace_back(lambda, acc);
    // Ties go to the stronger regularization (the simpler model).
    if (acc > best_acc || (acc == best_acc && lambda > best_lambda)) {
      best_acc = acc;
      best_lambda = lambda;
    }
    solved.emplace_back(lambda, std::move(c));
  };
  if (!o.lambdas.empty()) {
    for (double l : o.lambdas) try_lambda(std::max(l, 1e-12));
  } else {
    for (double e = 2; e >= -6; e -= 2) try_lambda(std::pow(10.0, e));  // strong to weak: warm starts help
  }
  if (o.refine) {
    for (double step : {10.0, std::sqrt(10.0)}) {
      const double center = best_lambda;
      try_lambda(center * step);
      try_lambda(center / step);
    }
  }
  r.lambda = best_lambda;
  r.validation_accuracy = best_acc;
  // Refit on all of train with the chosen λ, from its validation-time solution.
  const Classifier* init = nullptr;
  for (const auto& [l, c] : solved)
    if (l == best_lambda) init = &c;
  const Classifier final_c = fit(train_x, train_y, classes, best_lambda, o.max_iterations, init);
  r.test_accuracy = accuracy(final_c, test_x, test_y);
  r.weight = final_c.w;
  r.bias = final_c.b;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace clip::eval
