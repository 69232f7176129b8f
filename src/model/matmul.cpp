#include "model/matmul.h"

#include <oneapi/dnnl/dnnl.hpp>
#include <unordered_map>
#include <vector>

#include "model/cpu_support.h"
#include "model/fast_linear.h"

namespace clip::model {
namespace {

using dt = dnnl::memory::data_type;

dt onednn_type(torch::ScalarType type) { return type == torch::kBFloat16 ? dt::bf16 : dt::f32; }

dnnl::memory::desc strided_desc(const torch::Tensor& t, dt type) {
  return dnnl::memory::desc(dnnl::memory::dims(t.sizes().begin(), t.sizes().end()), type,
                            dnnl::memory::dims(t.strides().begin(), t.strides().end()));
}

bool onednn_applies(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& bias, torch::ScalarType out) {
  if (!a.device().is_cpu() || !b.device().is_cpu() || a.scalar_type() != b.scalar_type()) return false;
  if (a.scalar_type() != torch::kFloat32 && a.scalar_type() != torch::kBFloat16) return false;
  if ((a.scalar_type() == torch::kBFloat16 || out == torch::kBFloat16) && !onednn_bf16_available()) return false;
  if (out != torch::kFloat32 && out != torch::kBFloat16) return false;
  if (a.dim() < 2 || a.dim() != b.dim() || a.size(-1) != b.size(-2) || a.numel() == 0 || b.numel() == 0) return false;
  for (int64_t d = 0; d + 2 < a.dim(); ++d)
    if (a.size(d) != b.size(d)) return false;
  return !bias.defined() || (bias.device().is_cpu() && bias.scalar_type() == torch::kFloat32 && bias.dim() == 1 &&
                             bias.size(0) == b.size(-1) && bias.is_contiguous());
}

// Primitive descriptors are made per call: oneDNN keeps its own cache of compiled primitives
// (keyed by the descriptor), so a repeated shape costs a lookup, and nothing here is shared.
torch::Tensor onednn_compute(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& bias,
                             torch::ScalarType out) {
  const dt type = onednn_type(a.scalar_type());
  std::vector<int64_t> out_sizes(a.sizes().begin(), a.sizes().end());
  out_sizes.back() = b.size(-1);
  torch::Tensor y = torch::empty(out_sizes, a.options().dtype(out));
  const dnnl::engine& engine = onednn_cpu_engine();
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  const dnnl::memory::desc a_md = strided_desc(a, type), b_md = strided_desc(b, type),
                           y_md = strided_desc(y, onednn_type(out));
  std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, dnnl::memory(a_md, engine, a.data_ptr())},
                                             {DNNL_ARG_WEIGHTS, dnnl::memory(b_md, engine, b.data_ptr())},
                                             {DNNL_ARG_DST, dnnl::memory(y_md, engine, y.data_ptr())}};
  std::unique_ptr<dnnl::matmul::desc> desc;
  if (bias.defined()) {
    // [1, ..., 1, N]: one row broadcast over the batch and the rows.
    dnnl::memory::dims bias_dims(static_cast<size_t>(a.dim() - 1), 1),
        bias_strides(static_cast<size_t>(a.dim() - 1), bias.size(0));
    bias_dims.push_back(bias.size(0));
    bias_strides.push_back(1);
    const dnnl::memory::desc bias_strided(bias_dims, dt::f32, bias_strides);
    desc = std::make_unique<dnnl::matmul::desc>(a_md, b_md, bias_strided, y_md);
    args.emplace(DNNL_ARG_BIAS, dnnl::memory(bias_strided, engine, bias.data_ptr()));
  } else {
    desc = std::make_unique<dnnl::matmul::desc>(a_md, b_md, y_md);
  }
  const dnnl::matmul::primitive_desc pd(*desc, attr, engine);
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

struct TrainableMatmul : public torch::autograd::Function<TrainableMatmul> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& a, const torch::Tensor& b) {
    ctx->save_for_backward({a, b});
    return onednn_matmul(a, b, torch::Tensor(), a.scalar_type());
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor& a = saved[0];
    const torch::Tensor& b = saved[1];
    const torch::Tensor g = grads[0].to(a.scalar_type());
    // y = a·b: dL/da = g·bᵀ, dL/db = aᵀ·g (transposed views, no copies).
    return {ctx->needs_input_grad(0) ? onednn_matmul(g, b.transpose(-2, -1), torch::Tensor(), a.scalar_type())
                                     : torch::Tensor(),
            ctx->needs_input_grad(1) ? onednn_matmul(a.transpose(-2, -1), g, torch::Tensor(), b.scalar_type())
                                     : torch::Tensor()};
  }
};

// x: [..., K] fp32 or bf16; weight [N, K] and bias [N] fp32 (an empty tensor for none: a custom
// Function's inputs must be defined); bf16: the product runs in bf16. The casts happen inside, so the weight's gradient
// comes out of oneDNN in fp32 directly and only the bf16 copies of x and W are kept for the backward.
struct TrainableLinear : public torch::autograd::Function<TrainableLinear> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& weight, const torch::Tensor& bias, bool bf16) {
    const auto compute = bf16 ? torch::kBFloat16 : torch::kFloat32;
    const torch::Tensor x2 = x.reshape({-1, x.size(-1)}).to(compute);
    const torch::Tensor w = weight.to(compute);
    ctx->save_for_backward({x2, w});
    ctx->saved_data["x_type"] = static_cast<int64_t>(x.scalar_type());
    ctx->saved_data["x_sizes"] = x.sizes().vec();
    ctx->saved_data["has_bias"] = bias.numel() > 0;
    std::vector<int64_t> out_sizes = x.sizes().vec();
    out_sizes.back() = weight.size(0);
    return onednn_matmul(x2, w.t(), bias.numel() > 0 ? bias : torch::Tensor(), compute).view(out_sizes);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor& x2 = saved[0];
    const torch::Tensor& w = saved[1];
    const torch::Tensor g = grads[0].reshape({-1, w.size(0)}).to(w.scalar_type());
    const auto x_type = static_cast<torch::ScalarType>(ctx->saved_data["x_type"].toInt());
    torch::Tensor gx, gw, gb;
    // y = x·Wᵀ + b: dL/dx = g·W, dL/dW = gᵀ·x, dL/db = Σ rows of g.
    if (ctx->needs_input_grad(0))
      gx = onednn_matmul(g, w, torch::Tensor(), x_type).view(ctx->saved_data["x_sizes"].toIntVector());
    if (ctx->needs_input_grad(1)) gw = onednn_matmul(g.t(), x2, torch::Tensor(), torch::kFloat32);
    if (ctx->saved_data["has_bias"].toBool() && ctx->needs_input_grad(2)) gb = g.sum(0, false, torch::kFloat32);
    return {gx, gw, gb, torch::Tensor()};
  }
};

}  // namespace

torch::Tensor onednn_matmul(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& bias,
                            torch::ScalarType out) {
  if (onednn_applies(a, b, bias, out)) {
    try {
      return onednn_compute(a, b, bias, out);
    } catch (const dnnl::error&) {
      // A layout this oneDNN build has no kernel for: libtorch computes it below.
    }
  }
  // bf16 on a CPU without oneDNN's bf16 product: summed in fp32 as oneDNN would (the products of
  // bf16 values are exact in fp32), not in libtorch's bf16 kernels.
  const bool widen = a.device().is_cpu() && a.scalar_type() == torch::kBFloat16;
  torch::Tensor y = widen ? torch::matmul(a.to(torch::kFloat32), b.to(torch::kFloat32)) : torch::matmul(a, b);
  if (bias.defined()) y = y + bias;
  return y.to(out);
}

torch::Tensor trainable_matmul(const torch::Tensor& a, const torch::Tensor& b) {
  if (cpu_autocast_bf16() && a.device().is_cpu())
    return TrainableMatmul::apply(a.to(torch::kBFloat16), b.to(torch::kBFloat16));
  if (a.scalar_type() != b.scalar_type()) {
    const auto common = torch::promote_types(a.scalar_type(), b.scalar_type());
    return TrainableMatmul::apply(a.to(common), b.to(common));
  }
  return TrainableMatmul::apply(a, b);
}

torch::Tensor trainable_linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  const bool cpu = x.device().is_cpu() && weight.device().is_cpu() && (!bias.defined() || bias.device().is_cpu());
  const bool types = (x.scalar_type() == torch::kFloat32 || x.scalar_type() == torch::kBFloat16) &&
                     weight.scalar_type() == torch::kFloat32 &&
                     (!bias.defined() || bias.scalar_type() == torch::kFloat32);
  if (!cpu || !types || weight.dim() != 2 || x.dim() < 1 || x.size(-1) != weight.size(1))
    return torch::linear(x, weight, bias);
  const bool bf16 = cpu_autocast_bf16() || x.scalar_type() == torch::kBFloat16;
  return TrainableLinear::apply(x, weight, bias.defined() ? bias : torch::empty({0}), bf16);
}

}  // namespace clip::model
