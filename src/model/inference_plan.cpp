#include "model/inference_plan.h"

#include <utility>

#include "clip/error.h"
#include "model/attention.h"
#include "model/encoder_inputs.h"
#include "model/layer_norm.h"
#include "model/modules.h"
#include "model/short_attention.h"
#include "util/huge_pages.h"

namespace clip::model {
namespace {

torch::ScalarType compute_type(bool bf16) { return bf16 ? torch::kBFloat16 : torch::kFloat32; }

// What the linears read and the inner outputs are: bf16 in bf16, fp32 otherwise (int8 quantizes
// fp32 rows; attention and LayerNorm stay fp32).
torch::ScalarType inner_type(LinearCompute compute) { return compute_type(compute == LinearCompute::kBF16); }

LinearCompute linear_compute(bool bf16) { return bf16 ? LinearCompute::kBF16 : LinearCompute::kFP32; }

// CLIP's projections, stored [in, out] where a linear's weight is [out, in].
bool is_projection(const std::string& name) { return name == "text_projection" || name == "visual.proj"; }

// An int8-only pack's share of the model's block: whole cache lines, so each pack starts aligned.
size_t slice_bytes(size_t pack_bytes) { return (pack_bytes + 63) / 64 * 64; }

// The mode of a call: int8 when asked, else bf16 under CPU autocast to bf16, else fp32.
LinearCompute call_compute(Precision precision) {
  return precision == Precision::kInt8 ? LinearCompute::kInt8 : linear_compute(cpu_autocast_bf16());
}

// x · p for a projection p [in, out] (CLIP stores projections transposed to a linear's weight),
// as the linear pᵀ: packed once, so bf16 and int8 do not convert p on every call.
torch::Tensor project(FastLinear& packed, const torch::Tensor& x, const torch::Tensor& p, LinearCompute compute) {
  return packed.forward(x, p.t(), torch::Tensor(), Activation::kNone, compute, torch::kFloat32);
}

}  // namespace

void run_block_in_place(ResidualBlockImpl& block, PackedBlock& packed, torch::Tensor& h, const torch::Tensor& mask,
                        const BlockPath& path) {
  MultiheadAttentionImpl& attn = *block.attn;
  MlpImpl& mlp = *block.mlp;
  const torch::ScalarType in_type = inner_type(path.compute);  // what the linears read, and the inner outputs

  // h += attn(ln_1(h))
  const torch::Tensor a = layer_norm_rows(h, block.ln_1->weight, block.ln_1->bias, block.ln_1->options.eps(), in_type);
  const std::vector<torch::Tensor> qkv =
      packed.in_proj.forward(a, attn.in_proj_weight, attn.in_proj_bias, Activation::kNone, path.compute, in_type)
          .chunk(3, -1);
  const torch::Tensor q = split_heads(qkv[0], attn.heads), k = split_heads(qkv[1], attn.heads),
                      v = split_heads(qkv[2], attn.heads);
  const torch::Tensor heads = path.short_attention ? short_attention(q, k, v, mask, in_type)
                                                   : merge_heads(scaled_dot_product_attention(q, k, v, mask));
  packed.out_proj.accumulate(heads, attn.out_proj->weight, attn.out_proj->bias, path.compute, h);

  // h += mlp(ln_2(h))
  const torch::Tensor b = layer_norm_rows(h, block.ln_2->weight, block.ln_2->bias, block.ln_2->options.eps(), in_type);
  const torch::Tensor hidden =
      packed.c_fc.forward(b, mlp.c_fc->weight, mlp.c_fc->bias,
                          mlp.quick_gelu ? Activation::kQuickGelu : Activation::kGelu, path.compute, in_type);
  packed.c_proj.accumulate(hidden, mlp.c_proj->weight, mlp.c_proj->bias, path.compute, h);
}

InferencePlan::InferencePlan(std::shared_ptr<ClipModuleImpl> module)
    : module_(std::move(module)),
      text_blocks_(module_->transformer->resblocks->size()),
      vision_blocks_(
          module_->config.is_vit() ? module_->visual->as<VisionTransformerImpl>()->transformer->resblocks->size() : 0) {
  for (const auto& p : module_->parameters(true)) parameters_.push_back(p);
  for (const auto& b : module_->buffers(true))
    if (b.is_floating_point()) parameters_.push_back(b);  // BatchNorm's statistics (not its int64 counter)
  // The weights the int8 path runs (call_compute: every block linear, both projections; not the
  // ResNet's attention pool, which runs in bf16, nor a CBOW text tower, which has no fast path).
  std::map<std::string, FastLinear*> layers;
  const auto add_blocks = [&layers](const std::string& prefix, std::vector<PackedBlock>& blocks) {
    for (size_t i = 0; i < blocks.size(); ++i) {
      const std::string b = prefix + std::to_string(i) + ".";
      layers[b + "attn.in_proj_weight"] = &blocks[i].in_proj;
      layers[b + "attn.out_proj.weight"] = &blocks[i].out_proj;
      layers[b + "mlp.c_fc.weight"] = &blocks[i].c_fc;
      layers[b + "mlp.c_proj.weight"] = &blocks[i].c_proj;
    }
  };
  add_blocks("transformer.resblocks.", text_blocks_);
  add_blocks("visual.transformer.resblocks.", vision_blocks_);
  if (!module_->config.is_cbow()) layers["text_projection"] = &text_projection_;
  if (module_->config.is_vit()) layers["visual.proj"] = &vision_projection_;
  for (const auto& p : module_->named_parameters(true)) {
    const auto it = layers.find(p.key());
    if (it == layers.end()) continue;
    const bool projection = is_projection(p.key());  // [in, out]: the linear's [N, K] transposed
    const int64_t n = p.value().size(projection ? 1 : 0), k = p.value().size(projection ? 0 : 1);
    int8_linears_[p.key()] = {it->second, n, k};
  }
}

bool InferencePlan::take_int8_weight(const std::string& name, const torch::Tensor& values, const torch::Tensor& scales,
                                     torch::Tensor& parameter) {
  const auto it = int8_linears_.find(name);
  if (it == int8_linears_.end()) return false;
  const Int8Linear& linear = it->second;
  if (!int8_block_) {
    size_t total = 0;
    for (const auto& [n, l] : int8_linears_) total += slice_bytes(FastLinear::int8_pack_bytes(l.n, l.k));
    int8_block_ = util::allocate_for_streaming(total);
  }
  const size_t bytes = slice_bytes(FastLinear::int8_pack_bytes(linear.n, linear.k));
  // The slice shares the block's ownership (shared_ptr's aliasing constructor).
  std::shared_ptr<void> slice(int8_block_, static_cast<char*>(int8_block_.get()) + int8_block_used_);
  int8_block_used_ += bytes;
  // Projections are stored [in, out] and run as the linear pᵀ (project), one scale per column.
  linear.layer->set_int8_weight(is_projection(name) ? values.t().contiguous() : values, scales.reshape({-1}),
                                std::move(slice));
  torch::NoGradGuard no_grad;
  parameter.set_data(torch::zeros({1}, torch::dtype(parameter.scalar_type())).expand(parameter.sizes()));
  int8_only_ = true;
  int8_weight_bytes_ += values.nbytes() + scales.nbytes();
  return true;
}

void InferencePlan::check_int8_only(const torch::Tensor& x, Precision precision) const {
  if (!int8_only_) return;
  if (precision != Precision::kInt8)
    throw Error(std::string(kInt8OnlyReason) + ": it runs precision int8 only, not " + precision_name(precision),
                ErrorKind::kUnsupported);
  if (!fast_path_applies(x))
    throw Error(std::string(kInt8OnlyReason) + ": it runs CPU inference only (eval mode, no autograd)",
                ErrorKind::kUnsupported);
}

bool InferencePlan::fast_path_applies(const torch::Tensor& x) const {
  const bool inference = c10::InferenceMode::is_enabled() || !torch::GradMode::is_enabled();
  if (!inference || module_->is_training() || !x.device().is_cpu()) return false;
  for (const torch::Tensor& p : parameters_)
    if (!p.device().is_cpu() || p.scalar_type() != torch::kFloat32) return false;
  return true;
}

bool InferencePlan::channels_last_applies(int64_t batch, bool bf16) { return batch >= 4 || (bf16 && batch >= 2); }

torch::Tensor InferencePlan::run_transformer(TransformerImpl& transformer, std::vector<PackedBlock>& packed,
                                             const torch::Tensor& x, const torch::Tensor& mask, Intermediates* record,
                                             const std::string& prefix, LinearCompute compute) {
  BlockPath path;
  path.compute = compute;
  const int64_t heads = transformer.resblocks->is_empty() ? 1 : transformer.block(0).attn->heads;
  path.short_attention = x.size(1) <= kShortAttentionMaxLength && x.size(0) * heads <= kShortAttentionMaxHeads;
  torch::Tensor h = x.clone(at::MemoryFormat::Contiguous);  // the stream this call updates in place
  for (size_t i = 0; i < packed.size(); ++i) {
    run_block_in_place(transformer.block(i), packed[i], h, mask, path);
    record_to(record, prefix + std::to_string(i), h);
  }
  return h;
}

torch::Tensor InferencePlan::vit_image(const torch::Tensor& images, Intermediates* record, LinearCompute compute) {
  VisionTransformerImpl& vit = *module_->visual->as<VisionTransformerImpl>();
  torch::Tensor x = vit.embed(images, record);
  x = run_transformer(*vit.transformer, vision_blocks_, x, torch::Tensor(), record, "image.resblock", compute);
  x = vit.ln_post(x.select(1, 0));
  record_to(record, "image.ln_post", x);
  return project(vision_projection_, x, vit.proj, compute);
}

torch::Tensor InferencePlan::resnet_image(const torch::Tensor& images, Intermediates* record, bool bf16) {
  ModifiedResNetImpl& resnet = *module_->visual->as<ModifiedResNetImpl>();
  const torch::Tensor maps = resnet.feature_maps(
      channels_last_applies(images.size(0), bf16) ? images.contiguous(torch::MemoryFormat::ChannelsLast) : images,
      record);
  AttentionPool2dImpl& pool = *resnet.attnpool;
  const torch::Tensor x = pool.tokens(maps);
  const torch::ScalarType inner = compute_type(bf16);
  const LinearCompute compute = linear_compute(bf16);
  const torch::Tensor q = split_heads(
      pool_q_.forward(x.narrow(1, 0, 1), pool.q_proj->weight, pool.q_proj->bias, Activation::kNone, compute, inner),
      pool.heads);
  const torch::Tensor k = split_heads(
      pool_k_.forward(x, pool.k_proj->weight, pool.k_proj->bias, Activation::kNone, compute, inner), pool.heads);
  const torch::Tensor v = split_heads(
      pool_v_.forward(x, pool.v_proj->weight, pool.v_proj->bias, Activation::kNone, compute, inner), pool.heads);
  const torch::Tensor heads = merge_heads(scaled_dot_product_attention(q, k, v, torch::Tensor()));
  const torch::Tensor pooled =
      pool_c_.forward(heads, pool.c_proj->weight, pool.c_proj->bias, Activation::kNone, compute, torch::kFloat32)
          .select(1, 0);
  record_to(record, "image.attnpool", pooled);
  return pooled;
}

torch::Tensor InferencePlan::encode_image(const torch::Tensor& images, Intermediates* record, Precision precision) {
  check_int8_only(images, precision);
  if (!fast_path_applies(images)) return module_->encode_image(images, record);
  check_images(module_->config, images);
  const torch::Tensor x = images.to(torch::kFloat32);
  torch::Tensor features;
  if (module_->config.is_vit()) {
    features = vit_image(x, record, call_compute(precision));
  } else {
    // int8: the ResNet in bf16 (its convolutions under autocast), see the header.
    const AutocastScope bf16_for_int8(precision == Precision::kInt8 ? Precision::kBF16 : Precision::kFP32,
                                      torch::kCPU);
    features = resnet_image(x, record, cpu_autocast_bf16());
  }
  record_to(record, "image.features", features);
  return features;
}

torch::Tensor InferencePlan::encode_text(const torch::Tensor& tokens, Intermediates* record, Precision precision) {
  check_int8_only(tokens, precision);
  // CBOW: a gather, a mean and one small product; the reference is the fast path.
  if (module_->config.is_cbow() || !fast_path_applies(tokens)) return module_->encode_text(tokens, record);
  ClipModuleImpl& m = *module_;
  const LinearCompute compute = call_compute(precision);
  const TextBatch batch = text_batch(m.config, tokens, /*all_positions=*/record != nullptr);
  torch::Tensor x = m.embed_text(batch.tokens, record);
  x = run_transformer(*m.transformer, text_blocks_, x, causal_mask(x.size(1), x.options()), record, "text.resblock",
                      compute);
  x = m.ln_final(x);
  record_to(record, "text.ln_final", x);
  x = project(text_projection_, pool_at(x, batch.end), m.text_projection, compute);
  record_to(record, "text.features", x);
  return x;
}

torch::Tensor InferencePlan::text_states(const torch::Tensor& x, Precision precision) {
  ClipModuleImpl& m = *module_;
  if (m.config.is_cbow()) throw Error("text states: the model's text tower is CBOW, it has no Transformer");
  const torch::Tensor mask = causal_mask(x.size(1), x.options());
  if (!fast_path_applies(x)) return m.ln_final(m.transformer(x, mask, nullptr, "text.resblock"));
  return m.ln_final(run_transformer(*m.transformer, text_blocks_, x, mask, nullptr, "", call_compute(precision)));
}

}  // namespace clip::model
