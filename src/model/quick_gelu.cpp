#include "model/quick_gelu.h"

#include <oneapi/dnnl/dnnl.hpp>

#include "model/cpu_support.h"
#include "model/fast_linear.h"

namespace clip::model {
namespace {

constexpr float kAlpha = 1.702f;

dnnl::memory::desc flat_desc(const torch::Tensor& t) {
  return dnnl::memory::desc(
      {t.numel()}, t.scalar_type() == torch::kBFloat16 ? dnnl::memory::data_type::bf16 : dnnl::memory::data_type::f32,
      dnnl::memory::format_tag::a);
}

dnnl::eltwise_forward::primitive_desc forward_desc(const dnnl::memory::desc& md) {
  return dnnl::eltwise_forward::primitive_desc(
      dnnl::eltwise_forward::desc(dnnl::prop_kind::forward_training, dnnl::algorithm::eltwise_swish, md, kAlpha, 0.f),
      onednn_cpu_engine());
}

struct QuickGelu : public torch::autograd::Function<QuickGelu> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x_in) {
    const torch::Tensor x = x_in.contiguous();
    ctx->save_for_backward({x});
    torch::Tensor y = torch::empty_like(x);
    const dnnl::memory::desc md = flat_desc(x);
    const dnnl::engine& engine = onednn_cpu_engine();
    dnnl::stream stream(engine);
    dnnl::eltwise_forward(forward_desc(md))
        .execute(stream, {{DNNL_ARG_SRC, dnnl::memory(md, engine, x.data_ptr())},
                          {DNNL_ARG_DST, dnnl::memory(md, engine, y.data_ptr())}});
    stream.wait();
    return y;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const torch::Tensor x = ctx->get_saved_variables()[0];
    const torch::Tensor g = grads[0].to(x.scalar_type()).contiguous();
    torch::Tensor gx = torch::empty_like(x);
    const dnnl::memory::desc md = flat_desc(x);
    const dnnl::engine& engine = onednn_cpu_engine();
    const dnnl::eltwise_backward::primitive_desc pd(
        dnnl::eltwise_backward::desc(dnnl::algorithm::eltwise_swish, md, md, kAlpha, 0.f), engine, forward_desc(md));
    dnnl::stream stream(engine);
    dnnl::eltwise_backward(pd).execute(stream, {{DNNL_ARG_SRC, dnnl::memory(md, engine, x.data_ptr())},
                                                {DNNL_ARG_DIFF_DST, dnnl::memory(md, engine, g.data_ptr())},
                                                {DNNL_ARG_DIFF_SRC, dnnl::memory(md, engine, gx.data_ptr())}});
    stream.wait();
    return {gx};
  }
};

}  // namespace

torch::Tensor quick_gelu(const torch::Tensor& x) {
  const bool applies = x.device().is_cpu() &&
                       (x.scalar_type() == torch::kFloat32 ||
                        (x.scalar_type() == torch::kBFloat16 && onednn_bf16_available())) &&
                       x.numel() > 0;
  if (!applies && x.device().is_cpu() && x.scalar_type() == torch::kBFloat16) {
    // Without oneDNN's bf16 kernel: computed in fp32 and rounded once, as oneDNN's is.
    const torch::Tensor xf = x.to(torch::kFloat32);
    return (xf * torch::sigmoid(1.702 * xf)).to(torch::kBFloat16);
  }
  if (!applies) return x * torch::sigmoid(1.702 * x);
  return QuickGelu::apply(x);
}

}  // namespace clip::model
