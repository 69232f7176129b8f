// The fused short-sequence attention (model/short_attention.h) against softmax(q·kᵀ/√d + mask)·v
// computed by libtorch in double: strided heads as the qkv projection gives them, a causal mask and
// none, lengths 1 to the limit, fp32 and bf16 inputs, and the cases it must leave to the general path.
#include "model/short_attention.h"

#include <gtest/gtest.h>

#include <limits>

#include "tensor_compare.h"

namespace {

using clip::model::kShortAttentionMaxLength;
using clip::model::short_attention;
using clip::model::short_attention_applies;
using clip::test::relative_error;

// [N, L, 3·H·D] -> q, k, v as [N, H, L, D] views (what split_heads makes of the qkv projection).
std::vector<torch::Tensor> heads_of(const torch::Tensor& qkv, int64_t heads) {
  std::vector<torch::Tensor> out;
  for (const torch::Tensor& t : qkv.chunk(3, -1))
    out.push_back(t.view({t.size(0), t.size(1), heads, t.size(2) / heads}).transpose(1, 2));
  return out;
}

torch::Tensor causal_mask(int64_t L) { return torch::full({L, L}, -std::numeric_limits<float>::infinity()).triu(1); }

// The definition, in double, heads merged to [N, L, H·D].
torch::Tensor reference(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const torch::Tensor& mask) {
  const torch::Tensor q64 = q.to(torch::kFloat64), k64 = k.to(torch::kFloat64), v64 = v.to(torch::kFloat64);
  torch::Tensor s = torch::matmul(q64, k64.transpose(-2, -1)) / std::sqrt(static_cast<double>(q.size(-1)));
  if (mask.defined()) s = s + mask.to(torch::kFloat64);
  const torch::Tensor o = torch::matmul(torch::softmax(s, -1), v64);
  return o.transpose(1, 2).reshape({q.size(0), q.size(2), q.size(1) * q.size(3)});
}

TEST(ShortAttention, MatchesTheDefinitionInFp32) {
  c10::InferenceMode inference;
  torch::manual_seed(3);
  for (int64_t L : {int64_t{1}, int64_t{2}, int64_t{7}, int64_t{11}, kShortAttentionMaxLength}) {
    for (const bool masked : {true, false}) {
      const torch::Tensor qkv = 2 * torch::randn({3, L, 3 * 4 * 16});
      const auto h = heads_of(qkv, 4);
      const torch::Tensor mask = masked ? causal_mask(L) : torch::Tensor();
      ASSERT_TRUE(short_attention_applies(h[0], h[1], h[2], mask)) << "L " << L;
      const torch::Tensor y = short_attention(h[0], h[1], h[2], mask);
      EXPECT_EQ(y.scalar_type(), torch::kFloat32);
      ASSERT_EQ(y.sizes(), (std::vector<int64_t>{3, L, 64}));
      EXPECT_LT(relative_error(y, reference(h[0], h[1], h[2], mask)), 1e-6) << "L " << L << " masked " << masked;
    }
  }
}

// q, k, v of 8 heads of 64 in bf16, as the bf16 qkv projection gives them.
std::vector<torch::Tensor> bf16_heads(uint64_t seed, int64_t batch, int64_t L) {
  torch::manual_seed(seed);
  return heads_of(torch::randn({batch, L, 3 * 8 * 64}).to(torch::kBFloat16), 8);
}

TEST(ShortAttention, Bf16InputsAreWidenedExactly) {
  c10::InferenceMode inference;
  const auto h = bf16_heads(4, 2, 9);
  const torch::Tensor mask = causal_mask(9);
  ASSERT_TRUE(short_attention_applies(h[0], h[1], h[2], mask));
  // fp32 arithmetic on the bf16 values: as close to the double result as the fp32 path is.
  EXPECT_LT(relative_error(short_attention(h[0], h[1], h[2], mask), reference(h[0], h[1], h[2], mask)), 1e-6);
}

TEST(ShortAttention, Bf16OutputIsTheFp32OutputRounded) {
  c10::InferenceMode inference;
  const auto h = bf16_heads(5, 1, 7);
  const torch::Tensor mask = causal_mask(7);
  const torch::Tensor y16 = short_attention(h[0], h[1], h[2], mask, torch::kBFloat16);
  EXPECT_EQ(y16.scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(torch::equal(y16, short_attention(h[0], h[1], h[2], mask).to(torch::kBFloat16)));
}

TEST(ShortAttention, LeavesOtherCasesToTheGeneralPath) {
  c10::InferenceMode inference;
  const auto long_heads = heads_of(torch::randn({1, kShortAttentionMaxLength + 1, 3 * 64}), 2);
  EXPECT_FALSE(short_attention_applies(long_heads[0], long_heads[1], long_heads[2], torch::Tensor()));
  const auto many_heads = heads_of(torch::randn({clip::model::kShortAttentionMaxHeads / 2 + 1, 5, 3 * 64}), 2);
  EXPECT_FALSE(short_attention_applies(many_heads[0], many_heads[1], many_heads[2], torch::Tensor()));
  const auto h = heads_of(torch::randn({1, 5, 3 * 64}), 2);
  EXPECT_FALSE(short_attention_applies(h[0], h[1], h[2].to(torch::kBFloat16), torch::Tensor()));
  EXPECT_FALSE(short_attention_applies(h[0], h[1], h[2], causal_mask(4)));
  EXPECT_FALSE(short_attention_applies(h[0], h[1], h[2].to(torch::kFloat64), torch::Tensor()));
  const torch::Tensor d_strided = h[0].transpose(2, 3).contiguous().transpose(2, 3);  // same shape, stride 5 along D
  ASSERT_NE(d_strided.stride(3), 1);
  EXPECT_FALSE(short_attention_applies(d_strided, h[1], h[2], torch::Tensor()));
}

TEST(ShortAttention, NotWithAutograd) {
  const auto h = heads_of(torch::randn({1, 5, 3 * 64}), 2);
  EXPECT_FALSE(short_attention_applies(h[0], h[1], h[2], torch::Tensor()));  // grad mode on: training
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(short_attention_applies(h[0], h[1], h[2], torch::Tensor()));
}

}  // namespace
