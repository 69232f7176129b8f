#include "model/modules.h"

#include <cmath>

#include "model/attention.h"
#include "model/checkpointed_block.h"
#include "model/encoder_inputs.h"
#include "model/matmul.h"
#include "model/quick_gelu.h"

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

torch::Tensor linear(const Linear& layer, const torch::Tensor& x) {
  return trainable_linear(x, layer->weight, layer->bias);
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

}  // namespace

LinearImpl::LinearImpl(int in, int out, ParameterInit init) {
  weight = register_parameter("weight", torch::empty({out, in}));
  bias = register_parameter("bias", torch::empty({out}));
  if (init == ParameterInit::kNone) return;
  // torch::nn::LinearImpl::reset_parameters, call for call.
  torch::nn::init::kaiming_uniform_(weight, std::sqrt(5));
  const double bound = 1 / std::sqrt(static_cast<double>(in));
  torch::nn::init::uniform_(bias, -bound, bound);
}

EmbeddingImpl::EmbeddingImpl(int count, int width, ParameterInit init) {
  weight = register_parameter("weight", torch::empty({count, width}));
  if (init == ParameterInit::kRandom) torch::nn::init::normal_(weight);  // torch::nn::EmbeddingImpl's draws
}

torch::Tensor EmbeddingImpl::forward(const torch::Tensor& tokens) { return torch::embedding(weight, tokens); }

MultiheadAttentionImpl::MultiheadAttentionImpl(int width, int heads_, ParameterInit init) : heads(heads_) {
  in_proj_weight = register_parameter("in_proj_weight", torch::empty({3 * width, width}));
  in_proj_bias = register_parameter("in_proj_bias", torch::zeros({3 * width}));
  out_proj = register_module("out_proj", Linear(width, width, init));
}

torch::Tensor MultiheadAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& mask) {
  const std::vector<torch::Tensor> qkv = trainable_linear(x, in_proj_weight, in_proj_bias).chunk(3, -1);
  const torch::Tensor q = split_heads(qkv[0], heads), k = split_heads(qkv[1], heads), v = split_heads(qkv[2], heads);
  return linear(out_proj, merge_heads(scaled_dot_product_attention(q, k, v, mask)));
}

MlpImpl::MlpImpl(int width, int hidden, bool quick_gelu_, ParameterInit init) : quick_gelu(quick_gelu_) {
  c_fc = register_module("c_fc", Linear(width, hidden, init));
  c_proj = register_module("c_proj", Linear(hidden, width, init));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) {
  const torch::Tensor h = linear(c_fc, x);
  return linear(c_proj, quick_gelu ? model::quick_gelu(h) : torch::gelu(h));
}

ResidualBlockImpl::ResidualBlockImpl(int width, int heads, int mlp_width, bool quick_gelu, double eps,
                                     ParameterInit init) {
  ln_1 = register_module("ln_1", layer_norm(width, eps));
  attn = register_module("attn", MultiheadAttention(width, heads, init));
  ln_2 = register_module("ln_2", layer_norm(width, eps));
  mlp = register_module("mlp", Mlp(width, mlp_width, quick_gelu, init));
}

torch::Tensor ResidualBlockImpl::forward(const torch::Tensor& x_in, const torch::Tensor& mask) {
  const torch::Tensor x = x_in + attn(ln_1(x_in), mask);
  return x + mlp(ln_2(x));
}

TransformerImpl::TransformerImpl(int width, int layers, int heads, int mlp_width, bool quick_gelu, double eps,
                                 ParameterInit init) {
  resblocks = register_module("resblocks", torch::nn::ModuleList());
  for (int i = 0; i < layers; ++i) resblocks->push_back(ResidualBlock(width, heads, mlp_width, quick_gelu, eps, init));
}

torch::Tensor TransformerImpl::forward(torch::Tensor x, const torch::Tensor& mask, Intermediates* record,
                                       const std::string& prefix) {
  for (size_t i = 0; i < resblocks->size(); ++i) {
    if (checkpoint_blocks && torch::GradMode::is_enabled() && x.requires_grad())
      x = checkpointed_block(block(i), x, mask);
    else x = block(i).forward(x, mask);
    record_to(record, prefix + std::to_string(i), x);
  }
  return x;
}

VisionTransformerImpl::VisionTransformerImpl(const ModelConfig& c, ParameterInit init) {
  const int w = c.vision_width, grid = c.vision_grid();
  conv1 = register_module("conv1", conv(3, w, c.vision_patch_size, c.vision_patch_size));
  class_embedding = register_parameter("class_embedding", torch::empty({w}));
  positional_embedding = register_parameter("positional_embedding", torch::empty({grid * grid + 1, w}));
  ln_pre = register_module("ln_pre", layer_norm(w, c.layer_norm_eps));
  transformer = register_module(
      "transformer", Transformer(w, c.vision_layers, c.resolved_vision_heads(),
                                 static_cast<int>(w * c.vision_mlp_ratio), c.quick_gelu, c.layer_norm_eps, init));
  ln_post = register_module("ln_post", layer_norm(w, c.layer_norm_eps));
  proj = register_parameter("proj", torch::empty({w, c.embed_dim}));
}

torch::Tensor VisionTransformerImpl::embed(const torch::Tensor& images, Intermediates* record) {
  torch::Tensor x = conv1(images);  // [N, width, grid, grid]
  record_to(record, "image.conv1", x);
  x = x.flatten(2).transpose(1, 2);  // [N, grid², width]
  const torch::Tensor cls = class_embedding.view({1, 1, -1}).expand({x.size(0), 1, x.size(2)});
  x = ln_pre(torch::cat({cls, x}, 1) + positional_embedding);
  record_to(record, "image.ln_pre", x);
  return x;
}

torch::Tensor VisionTransformerImpl::forward(const torch::Tensor& images, Intermediates* record) {
  torch::Tensor x = transformer(embed(images, record), torch::Tensor(), record, "image.resblock");
  x = ln_post(x.select(1, 0));
  record_to(record, "image.ln_post", x);
  return trainable_matmul(x, proj);
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

AttentionPool2dImpl::AttentionPool2dImpl(int spacial_dim, int embed_dim, int heads_, int output_dim, ParameterInit init)
    : heads(heads_) {
  positional_embedding =
      register_parameter("positional_embedding", torch::empty({spacial_dim * spacial_dim + 1, embed_dim}));
  k_proj = register_module("k_proj", Linear(embed_dim, embed_dim, init));
  q_proj = register_module("q_proj", Linear(embed_dim, embed_dim, init));
  v_proj = register_module("v_proj", Linear(embed_dim, embed_dim, init));
  c_proj = register_module("c_proj", Linear(embed_dim, output_dim, init));
}

torch::Tensor AttentionPool2dImpl::tokens(const torch::Tensor& maps) {
  const torch::Tensor x = maps.flatten(2).transpose(1, 2);  // [N, HW, C]
  return torch::cat({x.mean(1, true), x}, 1) + positional_embedding;
}

torch::Tensor AttentionPool2dImpl::forward(const torch::Tensor& maps) {
  const torch::Tensor x = tokens(maps);
  const torch::Tensor q = split_heads(linear(q_proj, x.narrow(1, 0, 1)), heads);  // only the mean token asks
  const torch::Tensor k = split_heads(linear(k_proj, x), heads), v = split_heads(linear(v_proj, x), heads);
  return linear(c_proj, merge_heads(scaled_dot_product_attention(q, k, v, torch::Tensor()))).select(1, 0);
}

ModifiedResNetImpl::ModifiedResNetImpl(const ModelConfig& c, ParameterInit init) {
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
  attnpool = register_module(
      "attnpool", AttentionPool2d(c.image_resolution / 32, w * 32, c.resolved_vision_heads(), c.embed_dim, init));
}

torch::Tensor ModifiedResNetImpl::feature_maps(const torch::Tensor& images, Intermediates* record) {
  torch::Tensor x = conv_bn_relu(conv1, bn1, images);
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
  return x;
}

torch::Tensor ModifiedResNetImpl::forward(const torch::Tensor& images, Intermediates* record) {
  const torch::Tensor x = attnpool(feature_maps(images, record));
  record_to(record, "image.attnpool", x);
  return x;
}

ClipModuleImpl::ClipModuleImpl(const ModelConfig& c, ParameterInit init) : config(c) {
  if (c.is_vit()) visual = register_module("visual", std::make_shared<VisionTransformerImpl>(c, init));
  else visual = register_module("visual", std::make_shared<ModifiedResNetImpl>(c, init));
  // A CBOW text tower keeps an empty Transformer (no blocks, no parameters), so that code walking
  // the blocks (inference plan, gradient checkpointing) needs no case of its own.
  transformer = register_module(
      "transformer",
      Transformer(c.transformer_width, c.transformer_layers, c.is_cbow() ? 1 : c.resolved_text_heads(),
                  static_cast<int>(c.transformer_width * c.text_mlp_ratio), c.quick_gelu, c.layer_norm_eps, init));
  token_embedding = register_module("token_embedding", Embedding(c.vocab_size, c.transformer_width, init));
  if (!c.is_cbow()) {
    positional_embedding =
        register_parameter("positional_embedding", torch::empty({c.context_length, c.transformer_width}));
    ln_final = register_module("ln_final", layer_norm(c.transformer_width, c.layer_norm_eps));
  }
  text_projection = register_parameter("text_projection", torch::empty({c.transformer_width, c.embed_dim}));
  logit_scale = register_parameter("logit_scale", torch::full({}, std::log(1.0 / 0.07)));
}

torch::Tensor ClipModuleImpl::encode_image(const torch::Tensor& images, Intermediates* record) {
  check_images(config, images);
  torch::Tensor x = images.to(logit_scale.scalar_type());  // the parameters' type: fp32 (fp64 in exactness tests)
  x = config.is_vit() ? visual->as<VisionTransformerImpl>()->forward(x, record)
                      : visual->as<ModifiedResNetImpl>()->forward(x, record);
  record_to(record, "image.features", x);
  return x;
}

torch::Tensor ClipModuleImpl::embed_text(const torch::Tensor& tokens, Intermediates* record) {
  const torch::Tensor x = token_embedding(tokens);
  record_to(record, "text.token_embedding", x);
  return x + positional_embedding.narrow(0, 0, tokens.size(1));
}

torch::Tensor ClipModuleImpl::encode_text(const torch::Tensor& tokens, Intermediates* record) {
  if (config.is_cbow()) return encode_text_cbow(tokens, record);
  const TextBatch batch = text_batch(config, tokens, /*all_positions=*/record != nullptr);
  torch::Tensor x = embed_text(batch.tokens, record);
  x = transformer(x, causal_mask(x.size(1), x.options()), record, "text.resblock");
  x = ln_final(x);
  record_to(record, "text.ln_final", x);
  x = trainable_matmul(pool_at(x, batch.end), text_projection);
  record_to(record, "text.features", x);
  return x;
}

torch::Tensor ClipModuleImpl::encode_text_cbow(const torch::Tensor& tokens, Intermediates* record) {
  const TextBatch batch = text_batch(config, tokens, /*all_positions=*/record != nullptr);
  const torch::Tensor x = token_embedding(batch.tokens);  // [N, L, D]
  record_to(record, "text.token_embedding", x);
  // The caption's tokens are those up to its end token (start and end tokens included); the
  // positions after it are padding.
  const torch::Tensor positions = torch::arange(batch.tokens.size(1), batch.end.options());
  const torch::Tensor kept = (positions.unsqueeze(0) <= batch.end.unsqueeze(1)).to(x.scalar_type());  // [N, L]
  const torch::Tensor mean = (x * kept.unsqueeze(-1)).sum(1) / (batch.end + 1).to(x.scalar_type()).unsqueeze(1);
  record_to(record, "text.cbow_mean", mean);
  torch::Tensor out = trainable_matmul(mean, text_projection);
  record_to(record, "text.features", out);
  return out;
}

void ClipModuleImpl::initialize_parameters() {
  torch::NoGradGuard no_grad;
  const ModelConfig& c = config;
  torch::nn::init::normal_(token_embedding->weight, 0.0, 0.02);
  if (!c.is_cbow()) torch::nn::init::normal_(positional_embedding, 0.0, 0.01);
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
      for (size_t i = 0; i < (*layer)->size(); ++i)
        torch::nn::init::zeros_((*layer)[i]->as<BottleneckImpl>()->bn3->weight);
  }
}

}  // namespace clip::model
