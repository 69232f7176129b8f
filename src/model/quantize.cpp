#include "model/quantize.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>

#include "clip/error.h"

namespace clip::model {
namespace {

constexpr float kQmax = 127.0f;

// Row by row, rows spread over the threads: each row's scale, then its values.
template <class T>
void quantize_rows(const T* x, int64_t rows, int64_t k, float* scales, int8_t* q) {
  const int64_t grain = std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(k, 1));
  at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const T* row = x + r * k;
      float m[16] = {0};
      int64_t i = 0;
      for (; i + 16 <= k; i += 16)
        for (int j = 0; j < 16; ++j) m[j] = std::max(m[j], std::fabs(static_cast<float>(row[i + j])));
      for (; i < k; ++i) m[0] = std::max(m[0], std::fabs(static_cast<float>(row[i])));
      const float amax = *std::max_element(m, m + 16);
      const float scale = amax > 0 ? amax / kQmax : 1.0f;
      const float inverse = 1.0f / scale;
      int8_t* out = q + r * k;
      for (i = 0; i < k; ++i) {
        const float v = std::nearbyint(static_cast<float>(row[i]) * inverse);
        out[i] = static_cast<int8_t>(std::min(kQmax, std::max(-kQmax, v)));
      }
      scales[r] = scale;
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
  // The same rows-by-rows quantization as the activations', so a row's largest weight maps to
  // exactly ±127.
  torch::Tensor values;
  torch::Tensor scales = quantize_per_row(w32, values);
  return {values, scales};
}

torch::Tensor quantize_per_row(const torch::Tensor& x, torch::Tensor& q) {
  if (!x.is_contiguous() || !x.device().is_cpu() || x.dim() < 1 ||
      (x.scalar_type() != torch::kFloat32 && x.scalar_type() != torch::kBFloat16))
    throw Error("quantize_per_row: expected a contiguous fp32 or bf16 CPU tensor");
  q = torch::empty(x.sizes(), x.options().dtype(torch::kInt8));
  const int64_t k = x.size(-1), rows = c10::multiply_integers(x.sizes().slice(0, x.dim() - 1));
  torch::Tensor scales = torch::ones({rows}, x.options().dtype(torch::kFloat32));
  if (x.scalar_type() == torch::kBFloat16)
    quantize_rows(x.data_ptr<c10::BFloat16>(), rows, k, scales.data_ptr<float>(), q.data_ptr<int8_t>());
  else
    quantize_rows(x.data_ptr<float>(), rows, k, scales.data_ptr<float>(), q.data_ptr<int8_t>());
  return scales;
}

}  // namespace clip::model
