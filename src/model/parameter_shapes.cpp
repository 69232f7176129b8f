#include "model/parameter_shapes.h"

namespace clip::model {
namespace {

using Shape = std::vector<int64_t>;

class ShapeList {
 public:
  void add(const std::string& name, Shape shape, bool floating = true) {
    out.push_back({name, std::move(shape), floating});
  }
  void layer_norm(const std::string& p, int64_t width) {
    add(p + ".weight", {width});
    add(p + ".bias", {width});
  }
  void linear(const std::string& p, int64_t in, int64_t out_features) {
    add(p + ".weight", {out_features, in});
    add(p + ".bias", {out_features});
  }
  void conv(const std::string& p, int64_t in, int64_t out_channels, int64_t kernel) {
    add(p + ".weight", {out_channels, in, kernel, kernel});
  }
  void batch_norm(const std::string& p, int64_t channels) {
    add(p + ".weight", {channels});
    add(p + ".bias", {channels});
    add(p + ".running_mean", {channels});
    add(p + ".running_var", {channels});
    add(p + ".num_batches_tracked", {}, false);
  }
  // model/modules.cpp TransformerImpl: `layers` ResidualBlocks under <p>.resblocks.<i>.
  void transformer(const std::string& p, int64_t width, int layers, int64_t mlp_width) {
    for (int i = 0; i < layers; ++i) {
      const std::string b = p + ".resblocks." + std::to_string(i);
      layer_norm(b + ".ln_1", width);
      add(b + ".attn.in_proj_weight", {3 * width, width});
      add(b + ".attn.in_proj_bias", {3 * width});
      linear(b + ".attn.out_proj", width, width);
      layer_norm(b + ".ln_2", width);
      linear(b + ".mlp.c_fc", width, mlp_width);
      linear(b + ".mlp.c_proj", mlp_width, width);
    }
  }
  // model/modules.cpp BottleneckImpl.
  void bottleneck(const std::string& p, int64_t inplanes, int64_t planes, int stride) {
    conv(p + ".conv1", inplanes, planes, 1);
    batch_norm(p + ".bn1", planes);
    conv(p + ".conv2", planes, planes, 3);
    batch_norm(p + ".bn2", planes);
    conv(p + ".conv3", planes, planes * 4, 1);
    batch_norm(p + ".bn3", planes * 4);
    if (stride > 1 || inplanes != planes * 4) {
      conv(p + ".downsample.0", inplanes, planes * 4, 1);
      batch_norm(p + ".downsample.1", planes * 4);
    }
  }

  std::vector<ParameterShape> out;
};

void vision_transformer(ShapeList& s, const ModelConfig& c) {
  const int64_t w = c.vision_width, grid = c.vision_grid();
  s.add("visual.class_embedding", {w});
  s.add("visual.positional_embedding", {grid * grid + 1, w});
  s.add("visual.proj", {w, c.embed_dim});
  s.conv("visual.conv1", 3, w, c.vision_patch_size);
  s.layer_norm("visual.ln_pre", w);
  s.transformer("visual.transformer", w, c.vision_layers, static_cast<int>(w * c.vision_mlp_ratio));
  s.layer_norm("visual.ln_post", w);
}

void modified_resnet(ShapeList& s, const ModelConfig& c) {
  const int64_t w = c.vision_width;
  s.conv("visual.conv1", 3, w / 2, 3);
  s.batch_norm("visual.bn1", w / 2);
  s.conv("visual.conv2", w / 2, w / 2, 3);
  s.batch_norm("visual.bn2", w / 2);
  s.conv("visual.conv3", w / 2, w, 3);
  s.batch_norm("visual.bn3", w);
  int64_t inplanes = w;
  for (int stage = 0; stage < 4; ++stage) {
    const int64_t planes = w << stage;
    const std::string p = "visual.layer" + std::to_string(stage + 1) + ".";
    for (int i = 0; i < c.vision_resnet_layers[stage]; ++i) {
      s.bottleneck(p + std::to_string(i), inplanes, planes, i == 0 && stage > 0 ? 2 : 1);
      inplanes = planes * 4;
    }
  }
  const int64_t embed = w * 32, spacial = c.image_resolution / 32;
  s.add("visual.attnpool.positional_embedding", {spacial * spacial + 1, embed});
  s.linear("visual.attnpool.k_proj", embed, embed);
  s.linear("visual.attnpool.q_proj", embed, embed);
  s.linear("visual.attnpool.v_proj", embed, embed);
  s.linear("visual.attnpool.c_proj", embed, c.embed_dim);
}

}  // namespace

std::vector<ParameterShape> parameter_shapes(const ModelConfig& c) {
  ShapeList s;
  const int64_t tw = c.transformer_width;
  if (!c.is_cbow()) s.add("positional_embedding", {c.context_length, tw});
  s.add("text_projection", {tw, c.embed_dim});
  s.add("logit_scale", {});
  if (c.is_vit()) vision_transformer(s, c);
  else modified_resnet(s, c);
  s.transformer("transformer", tw, c.transformer_layers, static_cast<int>(tw * c.text_mlp_ratio));
  s.add("token_embedding.weight", {c.vocab_size, tw});
  if (!c.is_cbow()) s.layer_norm("ln_final", tw);
  return std::move(s.out);
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace clip::model
