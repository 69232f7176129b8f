// CLIP's towers as torch::nn modules, the reference: what training runs, written after OpenAI's
// model.py, and what CPU inference (inference_plan.h) is checked against. Parameter names are
// OpenAI's checkpoint keys ("visual.transformer.resblocks.0.attn.in_proj_weight", ...). Forward
// passes work in NLD (batch first); PyTorch's original runs the blocks in LND, which is the same
// computation. The linear layers and matrix products are differentiable oneDNN kernels
// (matmul.h, quick_gelu.h).
#pragma once

#include <torch/torch.h>

#include <string>

#include "clip/config.h"
#include "clip/model.h"

namespace clip::model {

// Stores `t` under `tag` when recording is on.
inline void record_to(Intermediates* r, const std::string& tag, const torch::Tensor& t) {
  if (r) (*r)[tag] = t.detach().clone();
}

// How a module's parameters start. kRandom: libtorch's defaults (what Model::random then
// re-initialises in part, initialize_parameters). kNone: the linear layers' weights and biases and
// the token embedding left uninitialized, for a model whose every parameter a checkpoint then
// overwrites: libtorch's default draws for ViT-B/32 (~92 M uniform numbers for the linears, drawn
// one at a time, 25 M normal ones for the embedding) cost more than the rest of a load, and an
// int8-only load (inference_plan.h) must not touch float copies of the weights it keeps as int8.
enum class ParameterInit { kRandom, kNone };

// A linear layer's parameters, weight [out, in] and bias [out], as torch::nn::Linear holds them
// (same names), with kRandom drawing exactly what torch::nn::Linear draws (kaiming-uniform weight,
// uniform bias, in that order), so seeded models are unchanged. Forward passes go through
// matmul.h / fast_linear.h, not through this module.
class LinearImpl : public torch::nn::Module {
 public:
  LinearImpl(int in, int out, ParameterInit init);
  torch::Tensor weight, bias;
};
TORCH_MODULE(Linear);

// A token embedding, weight [vocab, width], as torch::nn::Embedding holds it (same name and
// lookup), with kRandom drawing what torch::nn::Embedding draws (normal(0, 1)) and kNone drawing
// nothing (ViT-B/32's 25 M draws were a third of an int8-only load).
class EmbeddingImpl : public torch::nn::Module {
 public:
  EmbeddingImpl(int count, int width, ParameterInit init);
  torch::Tensor forward(const torch::Tensor& tokens);
  torch::Tensor weight;
};
TORCH_MODULE(Embedding);

class MultiheadAttentionImpl : public torch::nn::Module {
 public:
  MultiheadAttentionImpl(int width, int heads, ParameterInit init = ParameterInit::kRandom);
  // x: [N, L, D]; mask: additive [L, L] or undefined.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask);
  torch::Tensor in_proj_weight, in_proj_bias;
  Linear out_proj{nullptr};
  int heads;
};
TORCH_MODULE(MultiheadAttention);

class MlpImpl : public torch::nn::Module {
 public:
  MlpImpl(int width, int hidden, bool quick_gelu, ParameterInit init = ParameterInit::kRandom);
  torch::Tensor forward(const torch::Tensor& x);
  Linear c_fc{nullptr}, c_proj{nullptr};
  bool quick_gelu;  // QuickGELU (OpenAI's models), else the exact GELU
};
TORCH_MODULE(Mlp);

class ResidualBlockImpl : public torch::nn::Module {
 public:
  ResidualBlockImpl(int width, int heads, int mlp_width, bool quick_gelu, double eps,
                    ParameterInit init = ParameterInit::kRandom);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask);
  torch::nn::LayerNorm ln_1{nullptr}, ln_2{nullptr};
  MultiheadAttention attn{nullptr};
  Mlp mlp{nullptr};
};
TORCH_MODULE(ResidualBlock);

class TransformerImpl : public torch::nn::Module {
 public:
  TransformerImpl(int width, int layers, int heads, int mlp_width, bool quick_gelu, double eps,
                  ParameterInit init = ParameterInit::kRandom);
  torch::Tensor forward(torch::Tensor x, const torch::Tensor& mask, Intermediates* record, const std::string& prefix);
  ResidualBlockImpl& block(size_t i) { return *resblocks[i]->as<ResidualBlockImpl>(); }
  torch::nn::ModuleList resblocks;
  // Gradient checkpointing: with autograd on, each block keeps only its input and recomputes its
  // activations in the backward pass.
  bool checkpoint_blocks = false;
};
TORCH_MODULE(Transformer);

class VisionTransformerImpl : public torch::nn::Module {
 public:
  explicit VisionTransformerImpl(const ModelConfig& c, ParameterInit init = ParameterInit::kRandom);
  torch::Tensor forward(const torch::Tensor& images, Intermediates* record);
  // The transformer's input: patch embeddings after a class token, plus positions, ln_pre.
  torch::Tensor embed(const torch::Tensor& images, Intermediates* record);
  torch::nn::Conv2d conv1{nullptr};
  torch::Tensor class_embedding, positional_embedding, proj;
  torch::nn::LayerNorm ln_pre{nullptr}, ln_post{nullptr};
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
  AttentionPool2dImpl(int spacial_dim, int embed_dim, int heads, int output_dim,
                      ParameterInit init = ParameterInit::kRandom);
  torch::Tensor forward(const torch::Tensor& maps);
  // [N, C, H, W] -> [N, 1 + HW, C]: the mean token (the query) before the positions, plus the
  // positional embedding.
  torch::Tensor tokens(const torch::Tensor& maps);
  torch::Tensor positional_embedding;
  Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, c_proj{nullptr};
  int heads;
};
TORCH_MODULE(AttentionPool2d);

class ModifiedResNetImpl : public torch::nn::Module {
 public:
  explicit ModifiedResNetImpl(const ModelConfig& c, ParameterInit init = ParameterInit::kRandom);
  torch::Tensor forward(const torch::Tensor& images, Intermediates* record);
  // The stem and the four stages: the maps the attention pool reads.
  torch::Tensor feature_maps(const torch::Tensor& images, Intermediates* record);
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  torch::nn::Sequential layer1{nullptr}, layer2{nullptr}, layer3{nullptr}, layer4{nullptr};
  AttentionPool2d attnpool{nullptr};
};
TORCH_MODULE(ModifiedResNet);

class ClipModuleImpl : public torch::nn::Module {
 public:
  explicit ClipModuleImpl(const ModelConfig& c, ParameterInit init = ParameterInit::kRandom);
  torch::Tensor encode_image(const torch::Tensor& images, Intermediates* record);
  torch::Tensor encode_text(const torch::Tensor& tokens, Intermediates* record);
  // The CBOW text tower (config.is_cbow()): the mean of the token embeddings up to each row's end
  // token, times text_projection.
  torch::Tensor encode_text_cbow(const torch::Tensor& tokens, Intermediates* record);
  // The text transformer's input: token plus positional embeddings.
  torch::Tensor embed_text(const torch::Tensor& tokens, Intermediates* record);
  // CLIP's initialisation (normal std per OpenAI's initialize_parameters), from the global
  // generator state set by the caller.
  void initialize_parameters();

  ModelConfig config;
  std::shared_ptr<torch::nn::Module> visual;  // VisionTransformerImpl or ModifiedResNetImpl
  Transformer transformer{nullptr};           // no blocks for a CBOW text tower
  Embedding token_embedding{nullptr};
  torch::Tensor positional_embedding, text_projection, logit_scale;  // positional_embedding: undefined for CBOW
  torch::nn::LayerNorm ln_final{nullptr};                            // null for CBOW
};

}  // namespace clip::model
