#include "model/layer_norm.h"

#include <ATen/Parallel.h>

#include <cmath>

namespace clip::model {
namespace {

// A sum with sixteen partial sums, so the compiler can keep it in vector registers without
// reassociating a single sum.
template <class F>
float sum16(int64_t n, F&& term) {
  float s[16] = {0};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; ++j) s[j] += term(i + j);
  for (int width = 8; width >= 1; width /= 2)
    for (int j = 0; j < width; ++j) s[j] += s[j + width];
  float total = s[0];
  for (; i < n; ++i) total += term(i);
  return total;
}

template <class T>
void normalize_row(const float* x, const float* gamma, const float* beta, int64_t d, float eps, T* y) {
  const float mean = sum16(d, [&](int64_t i) { return x[i]; }) / static_cast<float>(d);
  const float var = sum16(d, [&](int64_t i) { return (x[i] - mean) * (x[i] - mean); }) / static_cast<float>(d);
  const float rstd = 1.0f / std::sqrt(var + eps);
  for (int64_t i = 0; i < d; ++i) y[i] = static_cast<T>((x[i] - mean) * rstd * gamma[i] + beta[i]);
}

}  // namespace

bool layer_norm_rows_applies(const torch::Tensor& x, const torch::Tensor& gamma, const torch::Tensor& beta) {
  const bool inference = c10::InferenceMode::is_enabled() || !torch::GradMode::is_enabled();
  if (!inference || x.dim() < 1 || !x.device().is_cpu() || x.scalar_type() != torch::kFloat32 || !x.is_contiguous() ||
      x.size(-1) < 1 || x.requires_grad())
    return false;
  for (const torch::Tensor* p : {&gamma, &beta})
    if (!p->defined() || !p->device().is_cpu() || p->scalar_type() != torch::kFloat32 || p->dim() != 1 ||
        p->size(0) != x.size(-1) || !p->is_contiguous())
      return false;
  return true;
}

torch::Tensor layer_norm_rows(const torch::Tensor& x, const torch::Tensor& gamma, const torch::Tensor& beta, double eps,
                              torch::ScalarType out) {
  TORCH_CHECK(layer_norm_rows_applies(x, gamma, beta), "layer_norm_rows: inputs it does not serve");
  TORCH_CHECK(out == torch::kFloat32 || out == torch::kBFloat16, "layer_norm_rows: output must be fp32 or bf16");
  const int64_t d = x.size(-1), rows = x.numel() / d;
  torch::Tensor y = torch::empty(x.sizes(), x.options().dtype(out));
  const float* xp = x.data_ptr<float>();
  const float *g = gamma.data_ptr<float>(), *b = beta.data_ptr<float>();
  const float e = static_cast<float>(eps);
  // Rows of ~64 KiB per task: a prompt's few rows stay on the calling thread.
  const int64_t grain = std::max<int64_t>(1, 16384 / d);
  c10::BFloat16* y16 = out == torch::kBFloat16 ? y.data_ptr<c10::BFloat16>() : nullptr;
  float* y32 = out == torch::kFloat32 ? y.data_ptr<float>() : nullptr;
  at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      if (y16) normalize_row(xp + r * d, g, b, d, e, y16 + r * d);
      else normalize_row(xp + r * d, g, b, d, e, y32 + r * d);
    }
  });
  return y;
}

}  // namespace clip::model
