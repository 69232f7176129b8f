// The in-place inference path of a residual block (model/inference_plan.h: LayerNorm straight to the
// linears' input type, residual adds fused into the products) against the reference module's forward.
#include <gtest/gtest.h>

#include <limits>

#include "clip/model.h"
#include "model/inference_plan.h"
#include "model/modules.h"
#include "model/short_attention.h"
#include "tensor_compare.h"

namespace {

using clip::model::BlockPath;
using clip::model::LinearCompute;
using clip::model::PackedBlock;
using clip::model::ResidualBlock;
using clip::model::run_block_in_place;
using clip::test::relative_error;

// Random weights of a realistic scale (LayerNorm affine parameters too, so they are exercised).
void randomize(torch::nn::Module& m) {
  torch::NoGradGuard no_grad;
  for (auto& p : m.parameters()) p.normal_(0, p.dim() == 1 ? 0.5 : 0.05);
}

torch::Tensor causal_mask(int64_t L) { return torch::full({L, L}, -std::numeric_limits<float>::infinity()).triu(1); }

TEST(ResidualBlockInPlace, MatchesTheForwardInFp32AndBf16) {
  torch::manual_seed(11);
  ResidualBlock block(64, 4, 256, /*quick_gelu=*/true, 1e-5);
  randomize(*block);
  block->eval();
  torch::NoGradGuard no_grad;
  // A prompt (short attention), a longer sequence (general attention), no mask.
  for (const auto& [n, L, masked] :
       std::vector<std::tuple<int64_t, int64_t, bool>>{{1, 7, true}, {3, 40, true}, {2, 9, false}}) {
    const torch::Tensor x = torch::randn({n, L, 64});
    const torch::Tensor mask = masked ? causal_mask(L) : torch::Tensor();
    const torch::Tensor want = block->forward(x, mask);
    // The fused attention where the plan would choose it (prompts), the batched one otherwise.
    const bool short_attention =
        L <= clip::model::kShortAttentionMaxLength && n * 4 <= clip::model::kShortAttentionMaxHeads;
    PackedBlock packed;
    torch::Tensor h = x.clone();
    run_block_in_place(*block, packed, h, mask, BlockPath{LinearCompute::kFP32, short_attention});
    EXPECT_LT(relative_error(h, want), 1e-5) << "n " << n << " L " << L;

    clip::AutocastScope bf16(clip::Precision::kBF16, torch::kCPU);
    const torch::Tensor want16 = block->forward(x, mask);
    torch::Tensor h16 = x.clone();
    run_block_in_place(*block, packed, h16, mask, BlockPath{LinearCompute::kBF16, short_attention});
    EXPECT_EQ(h16.scalar_type(), torch::kFloat32);
    // Both round the same operands to bf16; they differ by where the residual add rounds.
    EXPECT_LT(relative_error(h16, want16), 1e-2) << "n " << n << " L " << L;
    EXPECT_LT(relative_error(h16, want), 2e-2) << "n " << n << " L " << L;
  }
}

}  // namespace
