#include "model/quantize.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "clip/error.h"

namespace clip::model {
namespace {

constexpr float kQmax = 127.0f;

template <class T>
float max_abs(const T* x, int64_t n) {
  // One partial maximum per task, combined after: no shared state between threads.
  const int64_t grain = 1 << 16;
  std::vector<float> partial(static_cast<size_t>(std::max<int64_t>(1, (n + grain - 1) / grain)), 0.0f);
  at::parallel_for(0, n, grain, [&](int64_t begin, int64_t end) {
    float m[16] = {0};
    int64_t i = begin;
    for (; i + 16 <= end; i += 16)
      for (int j = 0; j < 16; ++j) m[j] = std::max(m[j], std::fabs(static_cast<float>(x[i + j])));
    for (; i < end; ++i) m[0] = std::max(m[0], std::fabs(static_cast<float>(x[i])));
    partial[static_cast<size_t>(begin / grain)] = *std::max_element(m, m + 16);
  });
  return *std::max_element(partial.begin(), partial.end());
}

template <class T>
void quantize(const T* x, int64_t n, float inverse_scale, int8_t* q) {
  at::parallel_for(0, n, 1 << 16, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const float v = std::nearbyint(static_cast<float>(x[i]) * inverse_scale);
      q[i] = static_cast<int8_t>(std::min(kQmax, std::max(-kQmax, v)));
    }
  });
}

}  // namespace

QuantizedWeight quantize_per_channel(const torch::Tensor& w) {
  if (w.dim() != 2 || !w.is_floating_point() || !w.device().is_cpu())
    throw Error("quantize_per_channel: expected a floating-point [N, K] CPU tensor, found " +
                std::string(c10::toString(w.scalar_type())) + " " + c10::str(w.sizes()));
  const torch::Tensor w32 = w.detach().to(torch::kFloat32).contiguous();
  if (!torch::isfinite(w32).all().item<bool>())
    throw Error("quantize_per_channel: the weight holds non-finite values", ErrorKind::kInvalidInput);
  torch::Tensor amax = std::get<0>(w32.abs().max(1));
  torch::Tensor scales = torch::where(amax > 0, amax / kQmax, torch::ones_like(amax));
  // Divided as the activations are quantized (x · (1/s) in float), so a row's largest weight
  // maps to exactly ±127.
  const torch::Tensor inverse = 1.0f / scales;
  torch::Tensor values = torch::round(w32 * inverse.unsqueeze(1)).clamp_(-kQmax, kQmax).to(torch::kInt8);
  return {values, scales};
}

float quantize_per_tensor(const torch::Tensor& x, torch::Tensor& q) {
  if (!x.is_contiguous() || !x.device().is_cpu() ||
      (x.scalar_type() != torch::kFloat32 && x.scalar_type() != torch::kBFloat16))
    throw Error("quantize_per_tensor: expected a contiguous fp32 or bf16 CPU tensor");
  q = torch::empty(x.sizes(), x.options().dtype(torch::kInt8));
  const int64_t n = x.numel();
  const bool bf16 = x.scalar_type() == torch::kBFloat16;
  const float amax = bf16 ? max_abs(x.data_ptr<c10::BFloat16>(), n) : max_abs(x.data_ptr<float>(), n);
  const float scale = amax > 0 ? amax / kQmax : 1.0f;
  const float inverse = 1.0f / scale;
  if (bf16) quantize(x.data_ptr<c10::BFloat16>(), n, inverse, q.data_ptr<int8_t>());
  else quantize(x.data_ptr<float>(), n, inverse, q.data_ptr<int8_t>());
  return scale;
}

}  // namespace clip::model
