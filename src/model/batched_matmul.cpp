#include "model/batched_matmul.h"

#include <ATen/autocast_mode.h>

#include <oneapi/dnnl/dnnl.hpp>
#include <unordered_map>

#include "model/fast_linear.h"

namespace clip::model {
namespace {

dnnl::memory::desc strided_desc(const torch::Tensor& t, dnnl::memory::data_type type) {
  return dnnl::memory::desc(dnnl::memory::dims(t.sizes().begin(), t.sizes().end()), type,
                            dnnl::memory::dims(t.strides().begin(), t.strides().end()));
}

bool onednn_applies(const torch::Tensor& a, const torch::Tensor& b) {
  if (!a.device().is_cpu() || !b.device().is_cpu() || a.scalar_type() != b.scalar_type()) return false;
  if (a.scalar_type() != torch::kFloat32 && a.scalar_type() != torch::kBFloat16) return false;
  if (a.dim() < 3 || a.dim() != b.dim() || a.size(-1) != b.size(-2) || a.numel() == 0 || b.numel() == 0) return false;
  for (int64_t d = 0; d + 2 < a.dim(); ++d)
    if (a.size(d) != b.size(d)) return false;
  return true;
}

// Primitive descriptors are created per call: oneDNN keeps its own cache of compiled primitives
// (keyed by the descriptor), so a repeated shape costs a lookup, and nothing here is shared.
torch::Tensor onednn_matmul(const torch::Tensor& a, const torch::Tensor& b) {
  const auto type = a.scalar_type() == torch::kBFloat16 ? dnnl::memory::data_type::bf16 : dnnl::memory::data_type::f32;
  std::vector<int64_t> out_sizes(a.sizes().begin(), a.sizes().end());
  out_sizes.back() = b.size(-1);
  torch::Tensor y = torch::empty(out_sizes, a.options());
  const dnnl::engine& engine = onednn_cpu_engine();
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  const dnnl::memory::desc a_md = strided_desc(a, type), b_md = strided_desc(b, type), y_md = strided_desc(y, type);
  const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_md, b_md, y_md), attr, engine);
  std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, dnnl::memory(a_md, engine, a.data_ptr())},
                                             {DNNL_ARG_WEIGHTS, dnnl::memory(b_md, engine, b.data_ptr())},
                                             {DNNL_ARG_DST, dnnl::memory(y_md, engine, y.data_ptr())}};
  torch::Tensor scratch;
  const size_t scratch_bytes = pd.scratchpad_desc().get_size();
  if (scratch_bytes > 0) {
    scratch = torch::empty({static_cast<int64_t>(scratch_bytes)}, torch::kUInt8);
    args.emplace(DNNL_ARG_SCRATCHPAD, dnnl::memory(pd.scratchpad_desc(), engine, scratch.data_ptr()));
  }
  dnnl::stream stream(engine);
  dnnl::matmul(pd).execute(stream, args);
  stream.wait();
  return y;
}

struct AttentionMatmul : public torch::autograd::Function<AttentionMatmul> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& a, const torch::Tensor& b) {
    ctx->save_for_backward({a, b});
    return batched_matmul(a, b);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor& a = saved[0];
    const torch::Tensor& b = saved[1];
    const torch::Tensor g = grads[0].to(a.scalar_type());
    // y = a·b: dL/da = g·bᵀ, dL/db = aᵀ·g (transposed views, no copies).
    return {batched_matmul(g, b.transpose(-2, -1)), batched_matmul(a.transpose(-2, -1), g)};
  }
};

}  // namespace

torch::Tensor batched_matmul(const torch::Tensor& a, const torch::Tensor& b) {
  if (onednn_applies(a, b)) {
    try {
      return onednn_matmul(a, b);
    } catch (const dnnl::error&) {
      // A layout this oneDNN build has no kernel for: libtorch computes it below.
    }
  }
  return torch::matmul(a, b);
}

torch::Tensor attention_matmul(const torch::Tensor& a, const torch::Tensor& b) {
  if (cpu_autocast_bf16() && a.device().is_cpu())
    return AttentionMatmul::apply(a.to(torch::kBFloat16), b.to(torch::kBFloat16));
  if (a.scalar_type() != b.scalar_type()) {
    const auto common = torch::promote_types(a.scalar_type(), b.scalar_type());
    return AttentionMatmul::apply(a.to(common), b.to(common));
  }
  return AttentionMatmul::apply(a, b);
}

}  // namespace clip::model
