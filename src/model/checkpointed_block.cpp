#include "model/checkpointed_block.h"

#include <ATen/autocast_mode.h>

#include "model/modules.h"

namespace clip::model {
namespace {

struct CheckpointedBlock : public torch::autograd::Function<CheckpointedBlock> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& mask,
                               int64_t block_address) {
    // An undefined mask cannot pass through a Function: an empty tensor stands for "no mask".
    ctx->save_for_backward({x});
    ctx->saved_data["mask"] = mask;
    ctx->saved_data["block"] = block_address;
    ctx->saved_data["autocast_cpu"] = at::autocast::is_cpu_enabled();
    ctx->saved_data["autocast_cuda"] = at::autocast::is_enabled();
    return block(block_address)->forward(x, mask.numel() ? mask : torch::Tensor());
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const torch::Tensor x = ctx->get_saved_variables()[0].detach().requires_grad_(true);
    torch::Tensor mask = ctx->saved_data["mask"].toTensor();
    if (mask.numel() == 0) mask = torch::Tensor();
    const bool cpu = ctx->saved_data["autocast_cpu"].toBool(), cuda = ctx->saved_data["autocast_cuda"].toBool();
    const bool was_cpu = at::autocast::is_cpu_enabled(), was_cuda = at::autocast::is_enabled();
    at::autocast::set_cpu_enabled(cpu);
    at::autocast::set_enabled(cuda);
    torch::Tensor y;
    {
      torch::AutoGradMode grad(true);
      y = block(ctx->saved_data["block"].toInt())->forward(x, mask);
    }
    at::autocast::set_cpu_enabled(was_cpu);
    at::autocast::set_enabled(was_cuda);
    torch::autograd::backward({y}, {grads[0]});
    return {x.grad(), torch::Tensor(), torch::Tensor()};
  }

  static ResidualBlockImpl* block(int64_t address) { return reinterpret_cast<ResidualBlockImpl*>(address); }
};

}  // namespace

torch::Tensor checkpointed_block(ResidualBlockImpl& block, const torch::Tensor& x, const torch::Tensor& mask) {
  return CheckpointedBlock::apply(x, mask.defined() ? mask : torch::empty({0}, x.options()),
                                  reinterpret_cast<int64_t>(&block));
}

}  // namespace clip::model
