// The in-place inference path of a residual block (LayerNorm straight to the linears' input type,
// residual adds fused into the products) against the module's plain forward, and the transformer
// running it without touching its caller's tensor.
#include <gtest/gtest.h>

#include <limits>

#include "clip/model.h"
#include "model/modules.h"
#include "tensor_compare.h"

namespace {

using clip::model::ResidualBlock;
using clip::model::Transformer;
using clip::test::relative_error;

// Random weights of a realistic scale (LayerNorm affine parameters too, so they are exercised).
void randomize(torch::nn::Module& m) {
  torch::NoGradGuard no_grad;
  for (auto& p : m.parameters()) p.normal_(0, p.dim() == 1 ? 0.5 : 0.05);
}

torch::Tensor causal_mask(int64_t L) {
  return torch::full({L, L}, -std::numeric_limits<float>::infinity()).triu(1);
}

TEST(ResidualBlockInPlace, MatchesTheForwardInFp32AndBf16) {
  torch::manual_seed(11);
  ResidualBlock block(64, 4, 256, /*quick_gelu=*/true, 1e-5);
  randomize(*block);
  block->eval();
  torch::NoGradGuard no_grad;
  // A prompt (short attention), a longer sequence (general attention), no mask.
  for (const auto& [n, L, masked] : std::vector<std::tuple<int64_t, int64_t, bool>>{{1, 7, true}, {3, 40, true}, {2, 9, false}}) {
    const torch::Tensor x = torch::randn({n, L, 64});
    const torch::Tensor mask = masked ? causal_mask(L) : torch::Tensor();
    const torch::Tensor want = block->forward(x, mask);
    torch::Tensor h = x.clone();
    ASSERT_TRUE(block->in_place_applies(h));
    block->forward_in_place(h, mask);
    EXPECT_LT(relative_error(h, want), 1e-5) << "n " << n << " L " << L;

    clip::AutocastScope bf16(clip::Precision::kBF16, torch::kCPU);
    const torch::Tensor want16 = block->forward(x, mask);
    torch::Tensor h16 = x.clone();
    block->forward_in_place(h16, mask);
    EXPECT_EQ(h16.scalar_type(), torch::kFloat32);
    // Both round the same operands to bf16; they differ by where the residual add rounds.
    EXPECT_LT(relative_error(h16, want16), 1e-2) << "n " << n << " L " << L;
    EXPECT_LT(relative_error(h16, want), 2e-2) << "n " << n << " L " << L;
  }
}

TEST(ResidualBlockInPlace, NotInTrainingOrWithAutograd) {
  ResidualBlock block(32, 2, 64, false, 1e-5);
  const torch::Tensor x = torch::randn({1, 5, 32});
  EXPECT_FALSE(block->in_place_applies(x));  // grad mode on
  torch::NoGradGuard no_grad;
  EXPECT_FALSE(block->in_place_applies(x));  // training mode
  block->eval();
  EXPECT_TRUE(block->in_place_applies(x));
  EXPECT_FALSE(block->in_place_applies(x.to(torch::kFloat64)));
  EXPECT_FALSE(block->in_place_applies(torch::randn({1, 5, 64}).narrow(-1, 0, 32)));  // not contiguous
}

TEST(TransformerInference, LeavesTheInputUntouchedAndMatchesTheBlocks) {
  torch::manual_seed(12);
  Transformer t(64, 3, 4, 256, true, 1e-5);
  randomize(*t);
  t->eval();
  torch::NoGradGuard no_grad;
  const torch::Tensor x = torch::randn({2, 7, 64}), mask = causal_mask(7), before = x.clone();
  clip::Intermediates record;
  const torch::Tensor y = t->forward(x, mask, &record, "block");
  EXPECT_TRUE(torch::equal(x, before));
  torch::Tensor want = x;
  for (size_t i = 0; i < t->resblocks->size(); ++i) {
    want = t->resblocks[i]->as<clip::model::ResidualBlockImpl>()->forward(want, mask);
    // Each recorded output is its own copy, not the stream updated later.
    EXPECT_LT(relative_error(record.at("block" + std::to_string(i)), want), 1e-5) << "block " << i;
  }
  EXPECT_LT(relative_error(y, want), 1e-5);
}

}  // namespace
