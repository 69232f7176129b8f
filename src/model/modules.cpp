#include "model/modules.h"

#include <ATen/autocast_mode.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include "clip/error.h"
#include "model/layer_norm.h"
#include "model/matmul.h"
#include "model/quick_gelu.h"
#include "model/short_attention.h"

namespace clip::model {
namespace F = torch::nn::functional;
namespace {

torch::nn::LayerNorm layer_norm(int width, double eps) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({width}).eps(eps));
}

torch::nn::Conv2d conv(int in, int out, int kernel, int stride = 1, int padding = 0) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(padding).bias(false));
}

torch::nn::BatchNorm2d batch_norm(int channels) {
  return torch::nn::BatchNorm2d(torch::nn::BatchNorm2dOptions(channels).eps(1e-5));
}

// Scaled dot-product attention over [N, H, L, hd] with an optional additive mask.
torch::Tensor attention(torch::Tensor q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& mask) {
  q = q * (1.0 / std::sqrt(static_cast<double>(q.size(-1))));
  torch::Tensor scores = trainable_matmul(q, k.transpose(-2, -1));
  if (mask.defined()) scores = scores + mask;
  return trainable_matmul(torch::softmax(scores, -1), v);
}

// relu(bn(conv(x))) holding at most two maps at a time: each intermediate is released as soon as
// the next one exists, and the ReLU runs in place (autograd allows it: BatchNorm's backward does
// not read its output). At batch 32 a ResNet stage's maps are ~100 MB each, so this sets the
// image tower's peak memory.
torch::Tensor conv_bn_relu(torch::nn::Conv2d& conv, torch::nn::BatchNorm2d& bn, const torch::Tensor& x) {
  torch::Tensor y = conv(x);
  y = bn(y);
  return y.relu_();
}

// [N, L, D] -> [N, H, L, D/H]
torch::Tensor split_heads(const torch::Tensor& x, int heads) {
  return x.view({x.size(0), x.size(1), heads, x.size(2) / heads}).transpose(1, 2);
}

torch::Tensor merge_heads(const torch::Tensor& x) {
  return x.transpose(1, 2).reshape({x.size(0), x.size(2), x.size(1) * x.size(3)});
}

// A linear layer: oneDNN's packed path for inference; in training mode always the differentiable
// one (matmul.h), so that a forward without autograd (gradient checkpointing) computes exactly
// what its recomputation with autograd does.
torch::Tensor linear(FastLinear& fast, bool training, const torch::Tensor& x, const torch::Tensor& weight,
                     const torch::Tensor& bias, Activation act = Activation::kNone, bool bf16_out = false) {
  if (training) {
    const torch::Tensor y = trainable_linear(x, weight, bias);
    return act == Activation::kQuickGelu ? quick_gelu(y) : activate(y, act);
  }
  return fast(x, weight, bias, act, bf16_out);
}

// Pooling takes each row's end token: its largest id (the first one, when repeated). Returns those
// positions and the largest of them, after checking that every id lies in [0, vocab). On the CPU
// in one pass over the ids (at batch 1 the library calls it replaces cost more than the pass).
std::pair<torch::Tensor, int64_t> end_positions(const torch::Tensor& tokens, int64_t vocab) {
  const auto out_of_range = [vocab] {
    return Error("encode_text: token ids must lie in [0, " + std::to_string(vocab) + ")");
  };
  if (!tokens.device().is_cpu()) {
    if (tokens.numel() > 0 && (tokens.min().item<int64_t>() < 0 || tokens.max().item<int64_t>() >= vocab))
      throw out_of_range();
    const torch::Tensor eot = tokens.argmax(-1);
    return {eot, tokens.size(0) > 0 ? eot.max().item<int64_t>() : 0};
  }
  const int64_t rows = tokens.size(0), cols = tokens.size(1);
  torch::Tensor eot = torch::empty({rows}, tokens.options());
  const int64_t* ids = tokens.data_ptr<int64_t>();
  int64_t* pos = eot.data_ptr<int64_t>();
  int64_t last = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t* row = ids + r * cols;
    int64_t best = 0;
    for (int64_t c = 0; c < cols; ++c) {
      if (row[c] < 0 || row[c] >= vocab) throw out_of_range();
      if (row[c] > row[best]) best = c;
    }
    pos[r] = best;
    last = std::max(last, best);
  }
  return {eot, last};
}

// x · p for a projection p [in, out] (CLIP stores projections transposed to a linear's weight):
// at inference a FastLinear with the packed transpose, so bf16 does not cast p on every call.
torch::Tensor project(FastLinear& fast, bool training, const torch::Tensor& x, const torch::Tensor& p) {
  const torch::Tensor w = p.t();
  if (!training && fast_linear_applies(x, w)) return fast(x, w, torch::Tensor());
  return trainable_matmul(x, p);
}

// One residual block run without keeping its activations: the forward runs with autograd off
// (custom Functions do), and the backward recomputes the block with autograd on, under the
// autocast state of the forward, then back-propagates through it (the parameters' gradients
// accumulate there; the input's gradient is returned). Reentrant, as torch.utils.checkpoint.
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

MultiheadAttentionImpl::MultiheadAttentionImpl(int width, int heads_) : heads(heads_) {
  in_proj_weight = register_parameter("in_proj_weight", torch::empty({3 * width, width}));
  in_proj_bias = register_parameter("in_proj_bias", torch::zeros({3 * width}));
  out_proj = register_module("out_proj", torch::nn::Linear(width, width));
}

torch::Tensor MultiheadAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& mask) {
  return linear(*fast_out, is_training(), attend(x, mask), out_proj->weight, out_proj->bias);
}

torch::Tensor MultiheadAttentionImpl::attend(const torch::Tensor& x, const torch::Tensor& mask) {
  const std::vector<torch::Tensor> qkv =
      linear(*fast_in, is_training(), x, in_proj_weight, in_proj_bias, Activation::kNone, /*bf16_out=*/true).chunk(3, -1);
  const torch::Tensor q = split_heads(qkv[0], heads), k = split_heads(qkv[1], heads), v = split_heads(qkv[2], heads);
  if (!is_training() && short_attention_applies(q, k, v, mask))
    return short_attention(q, k, v, mask, cpu_autocast_bf16() ? torch::kBFloat16 : torch::kFloat32);
  return merge_heads(attention(q, k, v, mask));
}

MlpImpl::MlpImpl(int width, int hidden, bool quick_gelu_) : quick_gelu(quick_gelu_) {
  c_fc = register_module("c_fc", torch::nn::Linear(width, hidden));
  c_proj = register_module("c_proj", torch::nn::Linear(hidden, width));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) {
  return linear(*fast_proj, is_training(), hidden(x), c_proj->weight, c_proj->bias);
}

torch::Tensor MlpImpl::hidden(const torch::Tensor& x) {
  return linear(*fast_fc, is_training(), x, c_fc->weight, c_fc->bias, quick_gelu ? Activation::kQuickGelu : Activation::kGelu,
                /*bf16_out=*/true);
}

ResidualBlockImpl::ResidualBlockImpl(int width, int heads, int mlp_width, bool quick_gelu, double eps) {
  ln_1 = register_module("ln_1", layer_norm(width, eps));
  attn = register_module("attn", MultiheadAttention(width, heads));
  ln_2 = register_module("ln_2", layer_norm(width, eps));
  mlp = register_module("mlp", Mlp(width, mlp_width, quick_gelu));
}

torch::Tensor ResidualBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& mask) {
  const torch::Tensor y = x + attn(ln_1(x), mask);
  return y + mlp(ln_2(y));
}

bool ResidualBlockImpl::in_place_applies(const torch::Tensor& h) const {
  if (is_training() || !layer_norm_rows_applies(h, ln_1->weight, ln_1->bias) ||
      !layer_norm_rows_applies(h, ln_2->weight, ln_2->bias))
    return false;
  // The four linears take the fast path. The MLP's second reads the first's output (fp32 or bf16,
  // on the CPU), so only its weight is left to check.
  const torch::Tensor& c_proj = mlp->c_proj->weight;
  return fast_linear_applies(h, attn->in_proj_weight) && fast_linear_applies(h, attn->out_proj->weight) &&
         fast_linear_applies(h, mlp->c_fc->weight) && c_proj.device().is_cpu() &&
         c_proj.scalar_type() == torch::kFloat32 && c_proj.dim() == 2 && c_proj.size(1) == mlp->c_fc->weight.size(0);
}

void ResidualBlockImpl::forward_in_place(torch::Tensor& h, const torch::Tensor& mask) {
  const bool bf16 = cpu_autocast_bf16();
  const torch::ScalarType in_type = bf16 ? torch::kBFloat16 : torch::kFloat32;
  const torch::Tensor a = layer_norm_rows(h, ln_1->weight, ln_1->bias, ln_1->options.eps(), in_type);
  attn->fast_out->accumulate(attn->attend(a, mask), attn->out_proj->weight, attn->out_proj->bias, bf16, h);
  const torch::Tensor b = layer_norm_rows(h, ln_2->weight, ln_2->bias, ln_2->options.eps(), in_type);
  mlp->fast_proj->accumulate(mlp->hidden(b), mlp->c_proj->weight, mlp->c_proj->bias, bf16, h);
}

TransformerImpl::TransformerImpl(int width, int layers, int heads, int mlp_width, bool quick_gelu, double eps) {
  resblocks = register_module("resblocks", torch::nn::ModuleList());
  for (int i = 0; i < layers; ++i) resblocks->push_back(ResidualBlock(width, heads, mlp_width, quick_gelu, eps));
}

torch::Tensor TransformerImpl::forward(torch::Tensor x, const torch::Tensor& mask, Intermediates* record,
                                       const std::string& prefix) {
  bool owned = false;  // whether x is this pass's own tensor, free to update in place
  for (size_t i = 0; i < resblocks->size(); ++i) {
    ResidualBlockImpl* block = resblocks[i]->as<ResidualBlockImpl>();
    if (checkpoint_blocks && torch::GradMode::is_enabled() && x.requires_grad()) {
      x = CheckpointedBlock::apply(x, mask.defined() ? mask : torch::empty({0}, x.options()), reinterpret_cast<int64_t>(block));
    } else if (block->in_place_applies(x)) {
      if (!owned) x = x.clone();
      block->forward_in_place(x, mask);
    } else {
      x = block->forward(x, mask);
    }
    owned = true;
    record_to(record, prefix + std::to_string(i), x);
  }
  return x;
}

VisionTransformerImpl::VisionTransformerImpl(const ModelConfig& c) {
  const int w = c.vision_width, grid = c.vision_grid();
  conv1 = register_module("conv1", conv(3, w, c.vision_patch_size, c.vision_patch_size));
  class_embedding = register_parameter("class_embedding", torch::empty({w}));
  positional_embedding = register_parameter("positional_embedding", torch::empty({grid * grid + 1, w}));
  ln_pre = register_module("ln_pre", layer_norm(w, c.layer_norm_eps));
  transformer = register_module(
      "transformer", Transformer(w, c.vision_layers, c.resolved_vision_heads(),
                                 static_cast<int>(w * c.vision_mlp_ratio), c.quick_gelu, c.layer_norm_eps));
  ln_post = register_module("ln_post", layer_norm(w, c.layer_norm_eps));
  proj = register_parameter("proj", torch::empty({w, c.embed_dim}));
}

torch::Tensor VisionTransformerImpl::forward(const torch::Tensor& images, Intermediates* record) {
  torch::Tensor x = conv1(images);  // [N, width, grid, grid]
  record_to(record, "image.conv1", x);
  x = x.flatten(2).transpose(1, 2);  // [N, grid², width]
  const torch::Tensor cls = class_embedding.view({1, 1, -1}).expand({x.size(0), 1, x.size(2)});
  x = ln_pre(torch::cat({cls, x}, 1) + positional_embedding);
  record_to(record, "image.ln_pre", x);
  x = transformer(x, torch::Tensor(), record, "image.resblock");
  x = ln_post(x.select(1, 0));
  record_to(record, "image.ln_post", x);
  return project(*fast_proj, is_training(), x, proj);
}

BottleneckImpl::BottleneckImpl(int inplanes, int planes, int stride_) : stride(stride_) {
  conv1 = register_module("conv1", conv(inplanes, planes, 1));
  bn1 = register_module("bn1", batch_norm(planes));
  conv2 = register_module("conv2", conv(planes, planes, 3, 1, 1));
  bn2 = register_module("bn2", batch_norm(planes));
  conv3 = register_module("conv3", conv(planes, planes * 4, 1));
  bn3 = register_module("bn3", batch_norm(planes * 4));
  if (stride > 1 || inplanes != planes * 4) {
    downsample = register_module("downsample", std::make_shared<torch::nn::Module>());
    down_conv = downsample->register_module("0", conv(inplanes, planes * 4, 1));
    down_bn = downsample->register_module("1", batch_norm(planes * 4));
  }
}

torch::Tensor BottleneckImpl::forward(const torch::Tensor& x) {
  torch::Tensor out = conv_bn_relu(conv1, bn1, x);
  out = conv_bn_relu(conv2, bn2, out);
  if (stride > 1) out = F::avg_pool2d(out, F::AvgPool2dFuncOptions(stride));
  out = conv3(out);
  out = bn3(out);
  torch::Tensor identity = x;
  if (downsample) {
    if (stride > 1) identity = F::avg_pool2d(identity, F::AvgPool2dFuncOptions(stride));
    identity = down_conv(identity);
    identity = down_bn(identity);
  }
  return out.add_(identity).relu_();
}

AttentionPool2dImpl::AttentionPool2dImpl(int spacial_dim, int embed_dim, int heads_, int output_dim) : heads(heads_) {
  positional_embedding = register_parameter("positional_embedding", torch::empty({spacial_dim * spacial_dim + 1, embed_dim}));
  k_proj = register_module("k_proj", torch::nn::Linear(embed_dim, embed_dim));
  q_proj = register_module("q_proj", torch::nn::Linear(embed_dim, embed_dim));
  v_proj = register_module("v_proj", torch::nn::Linear(embed_dim, embed_dim));
  c_proj = register_module("c_proj", torch::nn::Linear(embed_dim, output_dim));
}

torch::Tensor AttentionPool2dImpl::forward(const torch::Tensor& maps) {
  torch::Tensor x = maps.flatten(2).transpose(1, 2);  // [N, HW, C]
  x = torch::cat({x.mean(1, true), x}, 1) + positional_embedding;  // the query is the mean token
  const torch::Tensor q = split_heads(linear(*fast_q, is_training(), x.narrow(1, 0, 1), q_proj->weight, q_proj->bias, Activation::kNone, true), heads);
  const torch::Tensor k = split_heads(linear(*fast_k, is_training(), x, k_proj->weight, k_proj->bias, Activation::kNone, true), heads);
  const torch::Tensor v = split_heads(linear(*fast_v, is_training(), x, v_proj->weight, v_proj->bias, Activation::kNone, true), heads);
  const torch::Tensor out = attention(q, k, v, torch::Tensor());
  return linear(*fast_c, is_training(), merge_heads(out), c_proj->weight, c_proj->bias).select(1, 0);
}

bool ModifiedResNetImpl::channels_last_applies(const torch::Tensor& images) const {
  const int64_t batch = images.size(0);
  return !is_training() && images.device().is_cpu() && (batch >= 4 || (cpu_autocast_bf16() && batch >= 2));
}

ModifiedResNetImpl::ModifiedResNetImpl(const ModelConfig& c) {
  const int w = c.vision_width;
  conv1 = register_module("conv1", conv(3, w / 2, 3, 2, 1));
  bn1 = register_module("bn1", batch_norm(w / 2));
  conv2 = register_module("conv2", conv(w / 2, w / 2, 3, 1, 1));
  bn2 = register_module("bn2", batch_norm(w / 2));
  conv3 = register_module("conv3", conv(w / 2, w, 3, 1, 1));
  bn3 = register_module("bn3", batch_norm(w));
  int inplanes = w;
  auto make_layer = [&](int planes, int blocks, int stride) {
    torch::nn::Sequential layer;
    layer->push_back(Bottleneck(inplanes, planes, stride));
    inplanes = planes * 4;
    for (int i = 1; i < blocks; ++i) layer->push_back(Bottleneck(inplanes, planes, 1));
    return layer;
  };
  layer1 = register_module("layer1", make_layer(w, c.vision_resnet_layers[0], 1));
  layer2 = register_module("layer2", make_layer(w * 2, c.vision_resnet_layers[1], 2));
  layer3 = register_module("layer3", make_layer(w * 4, c.vision_resnet_layers[2], 2));
  layer4 = register_module("layer4", make_layer(w * 8, c.vision_resnet_layers[3], 2));
  attnpool = register_module("attnpool",
                             AttentionPool2d(c.image_resolution / 32, w * 32, c.resolved_vision_heads(), c.embed_dim));
}

torch::Tensor ModifiedResNetImpl::forward(const torch::Tensor& images, Intermediates* record) {
  torch::Tensor x = conv_bn_relu(conv1, bn1, channels_last_applies(images) ? images.contiguous(torch::MemoryFormat::ChannelsLast) : images);
  record_to(record, "image.stem_relu1", x);
  x = conv_bn_relu(conv2, bn2, x);
  record_to(record, "image.stem_relu2", x);
  x = conv_bn_relu(conv3, bn3, x);
  record_to(record, "image.stem_relu3", x);
  x = F::avg_pool2d(x, F::AvgPool2dFuncOptions(2));
  record_to(record, "image.stem", x);
  int i = 1;
  for (auto* layer : {&layer1, &layer2, &layer3, &layer4}) {
    x = (*layer)->forward(x);
    record_to(record, "image.layer" + std::to_string(i++), x);
  }
  x = attnpool(x);
  record_to(record, "image.attnpool", x);
  return x;
}

ClipModuleImpl::ClipModuleImpl(const ModelConfig& c) : config(c) {
  if (c.is_vit()) visual = register_module("visual", std::make_shared<VisionTransformerImpl>(c));
  else visual = register_module("visual", std::make_shared<ModifiedResNetImpl>(c));
  transformer = register_module(
      "transformer", Transformer(c.transformer_width, c.transformer_layers, c.resolved_text_heads(),
                                 static_cast<int>(c.transformer_width * c.text_mlp_ratio), c.quick_gelu,
                                 c.layer_norm_eps));
  token_embedding = register_module("token_embedding", torch::nn::Embedding(c.vocab_size, c.transformer_width));
  positional_embedding = register_parameter("positional_embedding", torch::empty({c.context_length, c.transformer_width}));
  ln_final = register_module("ln_final", layer_norm(c.transformer_width, c.layer_norm_eps));
  text_projection = register_parameter("text_projection", torch::empty({c.transformer_width, c.embed_dim}));
  logit_scale = register_parameter("logit_scale", torch::full({}, std::log(1.0 / 0.07)));
}

torch::Tensor ClipModuleImpl::encode_image(const torch::Tensor& images, Intermediates* record) {
  const int r = config.image_resolution;
  if (images.dim() != 4 || images.size(1) != 3 || images.size(2) != r || images.size(3) != r)
    throw Error("encode_image: expected images of shape [N, 3, " + std::to_string(r) + ", " + std::to_string(r) +
                "], found " + c10::str(images.sizes()));
  torch::Tensor x = images.to(logit_scale.scalar_type());  // the parameters' type: fp32 (fp64 in exactness tests)
  x = config.is_vit() ? visual->as<VisionTransformerImpl>()->forward(x, record)
                      : visual->as<ModifiedResNetImpl>()->forward(x, record);
  record_to(record, "image.features", x);
  return x;
}

torch::Tensor ClipModuleImpl::encode_text(const torch::Tensor& tokens_in, Intermediates* record) {
  if (tokens_in.dim() != 2 || tokens_in.size(1) > config.context_length || tokens_in.size(1) < 1)
    throw Error("encode_text: expected tokens of shape [N, L] with 1 <= L <= " + std::to_string(config.context_length) +
                ", found " + c10::str(tokens_in.sizes()));
  const torch::Tensor tokens = tokens_in.to(torch::kInt64).contiguous();
  const auto [eot, last_eot] = end_positions(tokens, config.vocab_size);
  torch::Tensor used = tokens;
  if (!record && tokens.size(0) > 0) {
    // Causal attention: positions after the batch's last end token cannot change the pooled
    // outputs, so they are not computed.
    used = tokens.narrow(1, 0, last_eot + 1);
  }
  const int64_t L = used.size(1);
  torch::Tensor x = token_embedding(used);
  record_to(record, "text.token_embedding", x);
  x = x + positional_embedding.narrow(0, 0, L);
  const torch::Tensor mask =
      torch::full({L, L}, -std::numeric_limits<float>::infinity(), x.options()).triu(1);
  x = transformer(x, mask, record, "text.resblock");
  x = ln_final(x);
  record_to(record, "text.ln_final", x);
  x = x.index({torch::arange(x.size(0), eot.options()), eot});
  x = project(*fast_text_projection, is_training(), x, text_projection);
  record_to(record, "text.features", x);
  return x;
}

void ClipModuleImpl::initialize_parameters() {
  torch::NoGradGuard no_grad;
  const ModelConfig& c = config;
  torch::nn::init::normal_(token_embedding->weight, 0.0, 0.02);
  torch::nn::init::normal_(positional_embedding, 0.0, 0.01);
  auto init_transformer = [](Transformer& t, int width, int layers) {
    const double proj_std = std::pow(width, -0.5) * std::pow(2.0 * layers, -0.5);
    const double attn_std = std::pow(width, -0.5);
    const double fc_std = std::pow(2.0 * width, -0.5);
    for (size_t i = 0; i < t->resblocks->size(); ++i) {
      auto* b = t->resblocks[i]->as<ResidualBlockImpl>();
      torch::nn::init::normal_(b->attn->in_proj_weight, 0.0, attn_std);
      torch::nn::init::normal_(b->attn->out_proj->weight, 0.0, proj_std);
      torch::nn::init::normal_(b->mlp->c_fc->weight, 0.0, fc_std);
      torch::nn::init::normal_(b->mlp->c_proj->weight, 0.0, proj_std);
    }
  };
  init_transformer(transformer, c.transformer_width, c.transformer_layers);
  torch::nn::init::normal_(text_projection, 0.0, std::pow(c.transformer_width, -0.5));
  if (c.is_vit()) {
    auto* v = visual->as<VisionTransformerImpl>();
    const double scale = std::pow(c.vision_width, -0.5);
    torch::nn::init::normal_(v->class_embedding, 0.0, scale);
    torch::nn::init::normal_(v->positional_embedding, 0.0, scale);
    torch::nn::init::normal_(v->proj, 0.0, scale);
    init_transformer(v->transformer, c.vision_width, c.vision_layers);
  } else {
    auto* r = visual->as<ModifiedResNetImpl>();
    const double std = std::pow(r->attnpool->c_proj->weight.size(1), -0.5);
    for (auto* l : {&r->attnpool->q_proj, &r->attnpool->k_proj, &r->attnpool->v_proj, &r->attnpool->c_proj})
      torch::nn::init::normal_((*l)->weight, 0.0, std);
    torch::nn::init::normal_(r->attnpool->positional_embedding, 0.0, std::pow(c.vision_width * 32, -0.5));
    // Zero-init the last BN of each residual branch, as OpenAI does.
    for (auto* layer : {&r->layer1, &r->layer2, &r->layer3, &r->layer4})
      for (size_t i = 0; i < (*layer)->size(); ++i) torch::nn::init::zeros_((*layer)[i]->as<BottleneckImpl>()->bn3->weight);
  }
}

}  // namespace clip::model
