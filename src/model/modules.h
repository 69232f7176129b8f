// CLIP's towers as torch::nn modules whose parameter names are OpenAI's checkpoint keys
// ("visual.transformer.resblocks.0.attn.in_proj_weight", ...). Forward passes work in NLD
// (batch first); PyTorch's original runs the blocks in LND, which is the same computation.
#pragma once

#include <torch/torch.h>

#include <string>

#include "clip/config.h"
#include "clip/model.h"
#include "model/fast_linear.h"

namespace clip::model {

// Stores `t` under `tag` when recording is on.
inline void record_to(Intermediates* r, const std::string& tag, const torch::Tensor& t) {
  if (r) (*r)[tag] = t.detach().clone();
}

class MultiheadAttentionImpl : public torch::nn::Module {
 public:
  MultiheadAttentionImpl(int width, int heads);
  // x: [N, L, D]; mask: additive [L, L] or undefined.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask);
  // The heads' outputs, merged, before out_proj: [N, L, D] (bf16 when computing in bf16).
  torch::Tensor attend(const torch::Tensor& x, const torch::Tensor& mask);
  torch::Tensor in_proj_weight, in_proj_bias;
  torch::nn::Linear out_proj{nullptr};
  int heads;
  // Inference through oneDNN with packed weights (fast_linear.h); training takes torch::linear.
  std::shared_ptr<FastLinear> fast_in = std::make_shared<FastLinear>(), fast_out = std::make_shared<FastLinear>();
};
TORCH_MODULE(MultiheadAttention);

class MlpImpl : public torch::nn::Module {
 public:
  MlpImpl(int width, int hidden, bool quick_gelu);
  torch::Tensor forward(const torch::Tensor& x);
  // The activated hidden layer, before c_proj (bf16 when computing in bf16).
  torch::Tensor hidden(const torch::Tensor& x);
  torch::nn::Linear c_fc{nullptr}, c_proj{nullptr};
  bool quick_gelu;
  std::shared_ptr<FastLinear> fast_fc = std::make_shared<FastLinear>(), fast_proj = std::make_shared<FastLinear>();
};
TORCH_MODULE(Mlp);

class ResidualBlockImpl : public torch::nn::Module {
 public:
  ResidualBlockImpl(int width, int heads, int mlp_width, bool quick_gelu, double eps);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask);
  // Inference on CPU, in place on the residual stream h (fp32, contiguous, owned by the caller):
  // LayerNorm writes the linears' input type directly (layer_norm.h) and each residual add
  // happens inside the product that feeds it (FastLinear::accumulate). Same computation as
  // forward, with fewer passes and library calls (bf16, one 10-token prompt: 4.5 -> 4.0 ms in an
  // A/B run).
  bool in_place_applies(const torch::Tensor& h) const;
  void forward_in_place(torch::Tensor& h, const torch::Tensor& mask);
  torch::nn::LayerNorm ln_1{nullptr}, ln_2{nullptr};
  MultiheadAttention attn{nullptr};
  Mlp mlp{nullptr};
};
TORCH_MODULE(ResidualBlock);

class TransformerImpl : public torch::nn::Module {
 public:
  TransformerImpl(int width, int layers, int heads, int mlp_width, bool quick_gelu, double eps);
  torch::Tensor forward(torch::Tensor x, const torch::Tensor& mask, Intermediates* record, const std::string& prefix);
  torch::nn::ModuleList resblocks;
  // Gradient checkpointing: with autograd on, each block keeps only its input and recomputes its
  // activations in the backward pass.
  bool checkpoint_blocks = false;
};
TORCH_MODULE(Transformer);

class VisionTransformerImpl : public torch::nn::Module {
 public:
  explicit VisionTransformerImpl(const ModelConfig& c);
  torch::Tensor forward(const torch::Tensor& images, Intermediates* record);
  torch::nn::Conv2d conv1{nullptr};
  torch::Tensor class_embedding, positional_embedding, proj;
  torch::nn::LayerNorm ln_pre{nullptr}, ln_post{nullptr};
  std::shared_ptr<FastLinear> fast_proj = std::make_shared<FastLinear>();  // proj at inference
  Transformer transformer{nullptr};
};
TORCH_MODULE(VisionTransformer);

// OpenAI's Bottleneck: all convolutions stride 1; an average pool does the striding
// (anti-aliased), and the shortcut is avgpool -> 1x1 conv -> BN.
class BottleneckImpl : public torch::nn::Module {
 public:
  BottleneckImpl(int inplanes, int planes, int stride);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  std::shared_ptr<torch::nn::Module> downsample;  // children "0" (conv) and "1" (bn), or null
  torch::nn::Conv2d down_conv{nullptr};
  torch::nn::BatchNorm2d down_bn{nullptr};
  int stride;
};
TORCH_MODULE(Bottleneck);

class AttentionPool2dImpl : public torch::nn::Module {
 public:
  AttentionPool2dImpl(int spacial_dim, int embed_dim, int heads, int output_dim);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor positional_embedding;
  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, c_proj{nullptr};
  int heads;
  std::shared_ptr<FastLinear> fast_q = std::make_shared<FastLinear>(), fast_k = std::make_shared<FastLinear>(),
                              fast_v = std::make_shared<FastLinear>(), fast_c = std::make_shared<FastLinear>();
};
TORCH_MODULE(AttentionPool2d);

class ModifiedResNetImpl : public torch::nn::Module {
 public:
  explicit ModifiedResNetImpl(const ModelConfig& c);
  torch::Tensor forward(const torch::Tensor& images, Intermediates* record);
  // Whether the maps run channels-last (NHWC): at CPU inference for 4 images or more, 2 or more
  // in bf16. oneDNN's convolutions then read and write the maps as they are, instead of
  // reordering each convolution's input and output to their blocked layout and back. Measured on
  // RN50 (2 threads, images/s, NCHW -> NHWC): fp32 batch 1 15.0 -> 12.3, batch 4 16.4 -> 16.4,
  // batch 8 16.1 -> 17.0, batch 32 15.5 -> 17.4; bf16 batch 1 24.5 -> 24.9, batch 2
  // 27.2 -> 29.4, batch 8 29.3 -> 34.1, batch 32 28.9 -> 34.5. Same arithmetic, other layout.
  bool channels_last_applies(const torch::Tensor& images) const;
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  torch::nn::Sequential layer1{nullptr}, layer2{nullptr}, layer3{nullptr}, layer4{nullptr};
  AttentionPool2d attnpool{nullptr};
};
TORCH_MODULE(ModifiedResNet);

class ClipModuleImpl : public torch::nn::Module {
 public:
  explicit ClipModuleImpl(const ModelConfig& c);
  torch::Tensor encode_image(const torch::Tensor& images, Intermediates* record);
  torch::Tensor encode_text(const torch::Tensor& tokens, Intermediates* record);
  // CLIP's initialisation (normal std per OpenAI's initialize_parameters), from the global
  // generator state set by the caller.
  void initialize_parameters();

  ModelConfig config;
  std::shared_ptr<torch::nn::Module> visual;  // VisionTransformerImpl or ModifiedResNetImpl
  Transformer transformer{nullptr};
  torch::nn::Embedding token_embedding{nullptr};
  torch::Tensor positional_embedding, text_projection, logit_scale;
  torch::nn::LayerNorm ln_final{nullptr};
  std::shared_ptr<FastLinear> fast_text_projection = std::make_shared<FastLinear>();  // at inference
};

}  // namespace clip::model
