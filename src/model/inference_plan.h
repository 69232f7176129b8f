// CPU inference: the same computation as the reference modules (modules.h), by fewer passes and
// library calls. One plan per model, built with it; it owns the packed weights of every linear
// layer (fast_linear.h) and chooses its path once per encode call:
//   - the fast path, when the module is in eval mode, autograd is off, the input is on the CPU
//     and every parameter is fp32 on the CPU: packed linears with fused activations, residual
//     blocks updating the stream in place (LayerNorm straight to the linears' input type,
//     residual adds fused into the products), fused attention for short sequences
//     (short_attention.h), and channels-last ResNet maps for batches worth it;
//   - otherwise the reference modules' forward, unchanged (training, other devices and types).
// Computes in bf16 when CPU autocast to bf16 is on (Precision::kBF16), as the reference does.
// Precision::kInt8 (asked for per call): the transformer linears and the projections in int8
// (fast_linear.h, quantize.h), LayerNorm, attention and softmax in fp32; a ResNet image tower
// runs in bf16 then (its convolutions have no int8 path here), its text tower in int8.
//
// Int8-only (a quantized checkpoint loaded for precision int8 alone, Model::load): the plan takes
// the file's int8 weights straight into its packs (take_int8_weight) and the module keeps
// placeholders in place of those float weights, which then exist nowhere; such a plan runs kInt8
// on the fast path only and refuses anything else with clip::Error.
//
// Thread-safe: one plan serves concurrent calls. A call keeps its state on its own stack and
// tensors; the packs are shared, behind FastLinear's lock.
#pragma once

#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "clip/model.h"
#include "model/fast_linear.h"

namespace clip::model {

class ClipModuleImpl;
class ResidualBlockImpl;
class TransformerImpl;

// A residual block's four linear layers, packed.
struct PackedBlock {
  FastLinear in_proj, out_proj, c_fc, c_proj;
};

// The choices made once per call for a transformer's blocks.
struct BlockPath {
  LinearCompute compute = LinearCompute::kFP32;  // how the linears compute
  bool short_attention = false;                  // the fused attention of short_attention.h
};

// One residual block on the fast path, updating h (the residual stream: fp32, contiguous, CPU,
// owned by the caller) in place; h + attn(ln_1(h)), then + mlp(ln_2(h)), as the block's forward.
void run_block_in_place(ResidualBlockImpl& block, PackedBlock& packed, torch::Tensor& h, const torch::Tensor& mask,
                        const BlockPath& path);

class InferencePlan {
 public:
  explicit InferencePlan(std::shared_ptr<ClipModuleImpl> module);
  InferencePlan(const InferencePlan&) = delete;
  InferencePlan& operator=(const InferencePlan&) = delete;

  // As ClipModuleImpl::encode_image / encode_text (same checks, outputs and records). precision:
  // kInt8 for the int8 path (on the fast path only; the reference forward runs fp32 otherwise);
  // bf16 follows CPU autocast (see above).
  torch::Tensor encode_image(const torch::Tensor& images, Intermediates* record,
                             Precision precision = Precision::kFP32);
  torch::Tensor encode_text(const torch::Tensor& tokens, Intermediates* record,
                            Precision precision = Precision::kFP32);
  // The text Transformer's blocks and ln_final on embedded tokens x [N, L, W] (embed_text's
  // output, plus whatever the caller adds) under the causal mask: the states of every position,
  // [N, L, W]. What the caption objective's zero-shot scoring runs for every image and prompt.
  torch::Tensor text_states(const torch::Tensor& x, Precision precision = Precision::kFP32);

  // Int8-only loading: when the int8 path runs the weight `name` (OpenAI key; model/int8_checkpoint.h
  // stored_as_int8), packs `values` (int8, as the file stores NAME: [N, K] for a linear, [K, N]
  // for a projection) with `scales` (its NAME.int8_scale), replaces `parameter`'s data by a
  // placeholder of its shape holding no weights (one float, broadcast), and returns true. Returns
  // false, changing nothing, for a weight the int8 path does not run (a CBOW text projection).
  bool take_int8_weight(const std::string& name, const torch::Tensor& values, const torch::Tensor& scales,
                        torch::Tensor& parameter);
  // Whether take_int8_weight took any weight: the model then runs int8 only.
  bool int8_only() const { return int8_only_; }
  // The bytes of the int8 weights and scales take_int8_weight took.
  uint64_t int8_weight_bytes() const { return int8_weight_bytes_; }

  // Whether a call with input x takes the fast path (see above).
  bool fast_path_applies(const torch::Tensor& x) const;
  // Whether the ResNet tower runs its maps channels-last (NHWC) for this batch (fast path only):
  // for 4 images or more, 2 or more in bf16. oneDNN's convolutions then read and write the maps
  // as they are, instead of reordering each convolution's input and output to their blocked
  // layout and back. Measured on RN50 (2 threads, images/s, NCHW -> NHWC): fp32 batch 1
  // 15.0 -> 12.3, batch 4 16.4 -> 16.4, batch 8 16.1 -> 17.0, batch 32 15.5 -> 17.4; bf16 batch 1
  // 24.5 -> 24.9, batch 2 27.2 -> 29.4, batch 8 29.3 -> 34.1, batch 32 28.9 -> 34.5. Same
  // arithmetic, other layout.
  static bool channels_last_applies(int64_t batch, bool bf16);

 private:
  torch::Tensor vit_image(const torch::Tensor& images, Intermediates* record, LinearCompute compute);
  torch::Tensor resnet_image(const torch::Tensor& images, Intermediates* record, bool bf16);
  // Refuses (clip::Error) a call an int8-only plan cannot serve: another precision, or the
  // reference forward, which would read the placeholders.
  void check_int8_only(const torch::Tensor& x, Precision precision) const;
  // The blocks of `transformer` on x, in place on a copy (the caller's x is never written).
  torch::Tensor run_transformer(TransformerImpl& transformer, std::vector<PackedBlock>& packed, const torch::Tensor& x,
                                const torch::Tensor& mask, Intermediates* record, const std::string& prefix,
                                LinearCompute compute);

  std::shared_ptr<ClipModuleImpl> module_;
  std::vector<torch::Tensor> parameters_;  // and buffers: handles that follow Module::to's changes
  std::vector<PackedBlock> text_blocks_, vision_blocks_;
  FastLinear text_projection_, vision_projection_;  // projections x·P, packed as the linear Pᵀ
  FastLinear pool_q_, pool_k_, pool_v_, pool_c_;    // the ResNet's attention pool
  // The linears the int8 path runs, by weight name, with their [N, K].
  struct Int8Linear {
    FastLinear* layer;
    int64_t n, k;
  };
  std::map<std::string, Int8Linear> int8_linears_;
  bool int8_only_ = false;
  uint64_t int8_weight_bytes_ = 0;
  // Int8-only: one block for all the packs, sliced in turn. Packs are in memory rounded up to
  // whole 2 MiB pages (util/huge_pages.h); a block each would round up 98 packs of ViT-B/32, ~220
  // MB for its ~125 MB of int8 weights.
  std::shared_ptr<void> int8_block_;
  size_t int8_block_used_ = 0;
};

}  // namespace clip::model
