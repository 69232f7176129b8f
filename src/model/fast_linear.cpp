#include "model/fast_linear.h"

#include <ATen/autocast_mode.h>

#include <map>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <tuple>
#include <utility>
#include <vector>

#include "clip/error.h"
#include "model/quantize.h"
#include "util/huge_pages.h"

namespace clip::model {
namespace {

using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

int64_t version_of(const torch::Tensor& t) {
  if (!t.defined()) return -1;
  return t.is_inference() ? 0 : static_cast<int64_t>(t._version());  // inference tensors have no counter
}

const void* pointer_of(const torch::Tensor& t) { return t.defined() ? t.data_ptr() : nullptr; }

// More primitives than this (e.g. text batches of many lengths) clear the cache.
constexpr size_t kMaxPrimitives = 128;

}  // namespace

const dnnl::engine& onednn_cpu_engine() {
  static const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

torch::Tensor reference_linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                               Activation act) {
  return activate(torch::linear(x, weight, bias), act);
}

torch::Tensor activate(const torch::Tensor& y, Activation act) {
  switch (act) {
    case Activation::kNone: return y;
    case Activation::kQuickGelu: return y * torch::sigmoid(1.702 * y);
    case Activation::kGelu: return torch::gelu(y);
  }
  return y;
}

bool fast_linear_applies(const torch::Tensor& x, const torch::Tensor& weight) {
  const bool inference = c10::InferenceMode::is_enabled() || !torch::GradMode::is_enabled();
  return inference && x.device().is_cpu() && weight.device().is_cpu() &&
         (x.scalar_type() == torch::kFloat32 || x.scalar_type() == torch::kBFloat16) &&
         weight.scalar_type() == torch::kFloat32 && weight.dim() == 2 && x.dim() >= 1 && x.size(-1) == weight.size(1);
}

bool cpu_autocast_bf16() {
  return at::autocast::is_cpu_enabled() && at::autocast::get_autocast_cpu_dtype() == at::kBFloat16;
}

struct FastLinear::Impl {
  struct Primitive {
    dnnl::matmul matmul;
    dnnl::memory::desc weights_desc;
    size_t scratchpad_bytes = 0;
  };
  // Weights in the layout a primitive wants, in memory made for streaming reads (huge pages).
  struct Packed {
    dnnl::memory::desc desc;
    dnnl::memory memory;
    std::shared_ptr<void> buffer;  // owns memory's data
  };
  // The packed state of one compute mode.
  struct Mode {
    const void* weight_ptr = nullptr;
    int64_t weight_version = -2;
    const void* bias_ptr = nullptr;
    int64_t bias_version = -2;
    int64_t n = 0, k = 0;
    torch::Tensor bias;           // fp32 [N], contiguous copy
    torch::Tensor weight_scales;  // int8 only: fp32 [N], the scale of each quantized weight row
    std::vector<Packed> packed;   // by the layout a primitive wants
    std::map<std::tuple<int64_t, Activation, torch::ScalarType, bool>, Primitive> primitives;  // + accumulate
  };

  std::mutex mutex;
  Mode modes[3];  // by LinearCompute
  int packs = 0;
};

FastLinear::FastLinear() : impl_(std::make_unique<Impl>()) {}
FastLinear::~FastLinear() = default;

int FastLinear::pack_count() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->packs;
}

torch::Tensor FastLinear::forward(const torch::Tensor& x_in, const torch::Tensor& weight, const torch::Tensor& bias,
                                  Activation act, LinearCompute compute, torch::ScalarType out) {
  if (out != torch::kFloat32 && out != torch::kBFloat16) throw Error("FastLinear: output must be fp32 or bf16");
  std::vector<int64_t> out_sizes = x_in.sizes().vec();
  out_sizes.back() = weight.size(0);
  torch::Tensor y = torch::empty(out_sizes, x_in.options().dtype(out));
  run(x_in, weight, bias, act, compute, y, /*accumulate=*/false);
  return y;
}

void FastLinear::accumulate(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                            LinearCompute compute, torch::Tensor& y) {
  std::vector<int64_t> out_sizes = x.sizes().vec();
  out_sizes.back() = weight.size(0);
  if (y.scalar_type() != torch::kFloat32 || !y.is_contiguous() || y.sizes().vec() != out_sizes || !y.device().is_cpu())
    throw Error("FastLinear::accumulate: the output must be a contiguous fp32 CPU tensor of shape " +
                c10::str(c10::IntArrayRef(out_sizes)) + ", found " + c10::str(y.sizes()));
  run(x, weight, bias, Activation::kNone, compute, y, /*accumulate=*/true);
}

void FastLinear::run(const torch::Tensor& x_in, const torch::Tensor& weight, const torch::Tensor& bias, Activation act,
                     LinearCompute compute, torch::Tensor& y, bool accumulate) {
  const int64_t n = weight.size(0), k = weight.size(1);
  if (x_in.size(-1) != k)
    throw Error("FastLinear: input has " + std::to_string(x_in.size(-1)) + " features, expected " + std::to_string(k));
  const bool int8 = compute == LinearCompute::kInt8;
  const torch::ScalarType out = y.scalar_type();
  const int64_t m = k == 0 ? 0 : x_in.numel() / k;
  if (m == 0) return;
  if (k == 0) {
    const torch::Tensor r = reference_linear(x_in.to(torch::kFloat32), weight, bias, act).to(out);
    if (accumulate) y.add_(r);
    else y.copy_(r);
    return;
  }
  // The input as the product reads it: fp32, bf16, or int8 with its scale.
  torch::Tensor x;
  float x_scale = 1.0f;
  if (int8) x_scale = quantize_per_tensor(x_in.contiguous(), x);
  else x = x_in.to(compute == LinearCompute::kBF16 ? torch::kBFloat16 : torch::kFloat32).contiguous();

  const dt xdt = int8 ? dt::s8 : compute == LinearCompute::kBF16 ? dt::bf16 : dt::f32;
  const dt ydt = out == torch::kBFloat16 ? dt::bf16 : dt::f32;
  Impl::Primitive prim;
  Impl::Packed packed;  // copied under the lock: the buffer stays alive while this call runs
  torch::Tensor bias_copy, weight_scales;
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    Impl::Mode& mode = impl_->modes[static_cast<int>(compute)];
    if (mode.weight_ptr != weight.data_ptr() || mode.weight_version != version_of(weight) ||
        mode.bias_ptr != pointer_of(bias) || mode.bias_version != version_of(bias) || mode.n != n || mode.k != k) {
      if (mode.n != n || mode.k != k) mode.primitives.clear();
      mode.packed.clear();
      mode.weight_ptr = weight.data_ptr();
      mode.weight_version = version_of(weight);
      mode.bias_ptr = pointer_of(bias);
      mode.bias_version = version_of(bias);
      mode.n = n;
      mode.k = k;
      mode.bias = bias.defined() ? bias.detach().to(torch::kFloat32).contiguous().clone() : torch::Tensor();
      mode.weight_scales = torch::Tensor();
    }
    const auto key = std::make_tuple(m, act, out, accumulate);
    auto it = mode.primitives.find(key);
    if (it == mode.primitives.end()) {
      if (mode.primitives.size() >= kMaxPrimitives) mode.primitives.clear();
      const dnnl::memory::desc src_md({m, k}, xdt, tag::ab);
      const dnnl::memory::desc w_md({k, n}, int8 ? dt::s8 : xdt, tag::any);
      const dnnl::memory::desc dst_md({m, n}, ydt, tag::ab);
      const dnnl::memory::desc row_md({1, n}, dt::f32, tag::ab);
      dnnl::primitive_attr attr;
      attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
      dnnl::post_ops ops;
      if (int8) {
        // Dequantization and bias as binary post-ops with per-call operands: oneDNN 2.6 takes its
        // fast int8 kernel only with output scales fixed at creation, and the activations' scale
        // changes every call. So: s32 · (x_scale · weight_scales) + bias, one [1, N] row each.
        ops.append_binary(dnnl::algorithm::binary_mul, row_md);
        if (mode.bias.defined()) ops.append_binary(dnnl::algorithm::binary_add, row_md);
      }
      if (act == Activation::kQuickGelu) ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_swish, 1.702f, 0.0f);
      else if (act == Activation::kGelu) ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_gelu_erf, 0.0f, 0.0f);
      if (accumulate) ops.append_sum(1.0f);  // dst = dst + (x·W + b): the residual add, in the same pass
      if (ops.len() > 0) attr.set_post_ops(ops);
      const dnnl::matmul::desc desc = mode.bias.defined() && !int8 ? dnnl::matmul::desc(src_md, w_md, row_md, dst_md)
                                                                    : dnnl::matmul::desc(src_md, w_md, dst_md);
      const dnnl::matmul::primitive_desc pd(desc, attr, onednn_cpu_engine());
      Impl::Primitive p;
      p.matmul = dnnl::matmul(pd);
      p.weights_desc = pd.weights_desc();
      p.scratchpad_bytes = pd.scratchpad_desc().get_size();
      it = mode.primitives.emplace(key, std::move(p)).first;
    }
    prim = it->second;
    for (const Impl::Packed& p : mode.packed)
      if (p.desc == prim.weights_desc) packed = p;
    if (!packed.buffer) {
      // Torch's [N, K] row-major weight is the [K, N] matrix with strides {1, K} ("ba").
      torch::Tensor w;
      if (int8) {
        QuantizedWeight q = quantize_per_channel(weight);
        w = q.values;
        mode.weight_scales = q.scales;
      } else {
        w = weight.detach().contiguous();
      }
      dnnl::memory plain(dnnl::memory::desc({k, n}, int8 ? dt::s8 : dt::f32, tag::ba), onednn_cpu_engine(),
                         w.data_ptr());
      packed.desc = prim.weights_desc;
      packed.buffer = util::allocate_for_streaming(prim.weights_desc.get_size());
      packed.memory = dnnl::memory(prim.weights_desc, onednn_cpu_engine(), packed.buffer.get());
      dnnl::stream stream(onednn_cpu_engine());
      dnnl::reorder(plain, packed.memory).execute(stream, plain, packed.memory);
      stream.wait();
      mode.packed.push_back(packed);
      ++impl_->packs;
      // One precision's packed weights at a time: a model runs in one precision, and a second
      // set would add a quarter (int8), half (bf16) or all (fp32) of the layer's weights again.
      // Switching back re-packs (a fraction of a second for a whole model).
      for (int other = 0; other < 3; ++other)
        if (other != static_cast<int>(compute)) impl_->modes[other].packed.clear();
    }
    bias_copy = mode.bias;
    weight_scales = mode.weight_scales;
  }

  const dnnl::engine& engine = onednn_cpu_engine();
  const dnnl::memory::desc row_md({1, n}, dt::f32, tag::ab);
  dnnl::memory src(dnnl::memory::desc({m, k}, xdt, tag::ab), engine, x.data_ptr());
  dnnl::memory dst(dnnl::memory::desc({m, n}, ydt, tag::ab), engine, y.data_ptr());
  std::unordered_map<int, dnnl::memory> args{
      {DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, packed.memory}, {DNNL_ARG_DST, dst}};
  torch::Tensor dequantize;  // int8: x_scale · weight_scales, this call's
  if (int8) {
    dequantize = (weight_scales * x_scale).contiguous();
    args.emplace(DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1,
                 dnnl::memory(row_md, engine, dequantize.data_ptr()));
    if (bias_copy.defined())
      args.emplace(DNNL_ARG_ATTR_MULTIPLE_POST_OP(1) | DNNL_ARG_SRC_1,
                   dnnl::memory(row_md, engine, bias_copy.data_ptr()));
  } else if (bias_copy.defined()) {
    args.emplace(DNNL_ARG_BIAS, dnnl::memory(row_md, engine, bias_copy.data_ptr()));
  }
  torch::Tensor scratch;
  if (prim.scratchpad_bytes > 0) {
    scratch = torch::empty({static_cast<int64_t>(prim.scratchpad_bytes)}, torch::kUInt8);
    args.emplace(DNNL_ARG_SCRATCHPAD,
                 dnnl::memory(dnnl::memory::desc({static_cast<int64_t>(prim.scratchpad_bytes)}, dt::u8, tag::a), engine,
                              scratch.data_ptr()));
  }
  dnnl::stream stream(engine);
  prim.matmul.execute(stream, args);
  stream.wait();
}

torch::Tensor FastLinear::operator()(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                                     Activation act, bool bf16_out) {
  if (!fast_linear_applies(x, weight) || (bias.defined() && (!bias.device().is_cpu() || bias.dim() != 1)))
    return reference_linear(x, weight, bias, act);
  const bool bf16 = cpu_autocast_bf16() || x.scalar_type() == torch::kBFloat16;
  return forward(x, weight, bias, act, bf16 ? LinearCompute::kBF16 : LinearCompute::kFP32,
                 bf16 && bf16_out ? torch::kBFloat16 : torch::kFloat32);
}

}  // namespace clip::model
