#include "model/short_attention.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace clip::model {
namespace {

// Reads row `row` of a [N, H, L, D] tensor (unit stride along D) as floats.
template <class T>
void load_rows(const torch::Tensor& t, int64_t n, int64_t h, float* out) {
  const T* base = t.data_ptr<T>() + n * t.stride(0) + h * t.stride(1);
  const int64_t L = t.size(2), D = t.size(3), row_stride = t.stride(2);
  for (int64_t i = 0; i < L; ++i)
    for (int64_t d = 0; d < D; ++d) out[i * D + d] = static_cast<float>(base[i * row_stride + d]);
}

// A dot product with eight partial sums, so the compiler can keep it in vector registers
// without reassociating a single sum.
float dot(const float* a, const float* b, int64_t n) {
  float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) s[j] += a[i + j] * b[i + j];
  float total = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
  for (; i < n; ++i) total += a[i] * b[i];
  return total;
}

template <class T, class Out>
void run(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const float* mask, Out* out) {
  const int64_t N = q.size(0), H = q.size(1), L = q.size(2), D = q.size(3);
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(D)));
  constexpr float kMasked = -std::numeric_limits<float>::infinity();
  at::parallel_for(0, N * H, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> scratch(3 * L * D + L + D);  // one block per task range: q, k, v, scores, output row
    float *qf = scratch.data(), *kf = qf + L * D, *vf = kf + L * D, *p = vf + L * D, *o = p + L;
    for (int64_t nh = begin; nh < end; ++nh) {
      const int64_t n = nh / H, h = nh % H;
      load_rows<T>(q, n, h, qf);
      load_rows<T>(k, n, h, kf);
      load_rows<T>(v, n, h, vf);
      for (int64_t i = 0; i < L; ++i) {
        // A key the mask sets to -inf gets weight exp(-inf) = 0: neither its score nor its
        // exponential is computed (half of them under a causal mask).
        float top = kMasked;
        for (int64_t j = 0; j < L; ++j) {
          const float m = mask ? mask[i * L + j] : 0.0f;
          p[j] = m == kMasked ? kMasked : dot(&qf[i * D], &kf[j * D], D) * scale + m;
          top = std::max(top, p[j]);
        }
        float sum = 0;
        for (int64_t j = 0; j < L; ++j) {
          // A row masked entirely has no finite maximum: exp(-inf - -inf) is NaN, as in softmax.
          p[j] = p[j] == kMasked && top != kMasked ? 0.0f : std::exp(p[j] - top);
          sum += p[j];
        }
        std::fill(o, o + D, 0.0f);
        for (int64_t j = 0; j < L; ++j) {
          if (mask && mask[i * L + j] == kMasked) continue;
          const float w = p[j] / sum;
          const float* vj = &vf[j * D];
          for (int64_t d = 0; d < D; ++d) o[d] += w * vj[d];
        }
        Out* dst = out + (n * L + i) * H * D + h * D;
        for (int64_t d = 0; d < D; ++d) dst[d] = static_cast<Out>(o[d]);
      }
    }
  });
}

}  // namespace

bool short_attention_applies(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                             const torch::Tensor& mask) {
  const bool inference = c10::InferenceMode::is_enabled() || !torch::GradMode::is_enabled();
  if (!inference || q.dim() != 4 || q.sizes() != k.sizes() || q.sizes() != v.sizes()) return false;
  const auto type = q.scalar_type();
  if ((type != torch::kFloat32 && type != torch::kBFloat16) || k.scalar_type() != type || v.scalar_type() != type)
    return false;
  for (const torch::Tensor* t : {&q, &k, &v})
    if (!t->device().is_cpu() || t->stride(3) != 1 || t->requires_grad()) return false;
  if (q.size(0) * q.size(1) > kShortAttentionMaxHeads) return false;
  const int64_t L = q.size(2);
  if (L < 1 || L > kShortAttentionMaxLength || q.size(3) < 1) return false;
  return !mask.defined() || (mask.device().is_cpu() && mask.dim() == 2 && mask.size(0) == L && mask.size(1) == L &&
                             mask.is_floating_point());
}

torch::Tensor short_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                              const torch::Tensor& mask, torch::ScalarType out_type) {
  TORCH_CHECK(short_attention_applies(q, k, v, mask), "short_attention: inputs it does not serve");
  TORCH_CHECK(out_type == torch::kFloat32 || out_type == torch::kBFloat16,
              "short_attention: output must be fp32 or bf16");
  const int64_t N = q.size(0), H = q.size(1), L = q.size(2), D = q.size(3);
  torch::Tensor out = torch::empty({N, L, H * D}, q.options().dtype(out_type));
  const torch::Tensor m = mask.defined() ? mask.to(torch::kFloat32).contiguous() : torch::Tensor();
  const float* mp = m.defined() ? m.data_ptr<float>() : nullptr;
  const bool bf16_in = q.scalar_type() == torch::kBFloat16;
  if (out_type == torch::kBFloat16) {
    if (bf16_in) run<c10::BFloat16>(q, k, v, mp, out.data_ptr<c10::BFloat16>());
    else run<float>(q, k, v, mp, out.data_ptr<c10::BFloat16>());
  } else {
    if (bf16_in) run<c10::BFloat16>(q, k, v, mp, out.data_ptr<float>());
    else run<float>(q, k, v, mp, out.data_ptr<float>());
  }
  return out;
}

}  // namespace clip::model
