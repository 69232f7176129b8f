// Attention over short sequences at inference, in one fused pass.
//
// Why: a prompt of ~10 tokens makes every attention product tiny (8 heads × 10 × 10), so the
// per-call costs of the unfused path (scale, q·kᵀ, mask add, softmax, ·v, head merge: ~8 library
// calls of ~10 µs each per layer) outweigh the arithmetic, and at batch 1 they are about a tenth
// of a text encoding. Here each (batch, head) pair is one task: its q, k and v rows are read once
// (strided, straight from the fused qkv projection), the scores, softmax and weighted sum of
// values stay in a few KiB, and the output is written with the heads already merged.
#pragma once

#include <torch/torch.h>

namespace clip::model {

// The fused path serves sequences up to this length, and up to this many (batch, head) pairs:
// its scalar loops beat the batched products only while the per-call costs dominate. Measured
// (text tower shapes, L = 11, 8 heads, 2 threads): batch 1 20 µs against 37 µs (fp32) and 23
// against 47 (bf16); batch 8 159 against 139 and 177 against 142. So batches of 1 to 4 prompts.
constexpr int64_t kShortAttentionMaxLength = 32;
constexpr int64_t kShortAttentionMaxHeads = 32;

// Whether short_attention serves these inputs: inference (no autograd), CPU, q/k/v of the same
// shape [N, H, L, D] with L <= kShortAttentionMaxLength and N·H <= kShortAttentionMaxHeads, all
// fp32 or all bf16, unit stride along D; mask undefined or [L, L] (additive, e.g. 0 / -inf for a
// causal mask).
bool short_attention_applies(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                             const torch::Tensor& mask);

// softmax(q·kᵀ / √D + mask)·v with the heads merged: returns [N, L, H·D] of type `out` (kFloat32
// or kBFloat16: the type the next linear reads). Computed in fp32 (bf16 inputs are widened), the
// softmax as libtorch's (maximum subtracted before exp).
torch::Tensor short_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                              const torch::Tensor& mask, torch::ScalarType out = torch::kFloat32);

}  // namespace clip::model
