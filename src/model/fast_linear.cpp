#include "model/cpu_support.h"
#include "model/fast_linear.h"

#include <ATen/autocast_mode.h>

#include <map>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "clip/error.h"
#include "model/int8_pack.h"
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

// Runs a primitive made with a user scratchpad: each execution brings its own (a tensor from
// libtorch's allocator), so concurrent calls never share one.
void execute_with_scratchpad(const dnnl::primitive& p, size_t bytes, std::unordered_map<int, dnnl::memory>& args,
                             dnnl::stream& stream) {
  torch::Tensor scratch;
  if (bytes > 0) {
    scratch = torch::empty({static_cast<int64_t>(bytes)}, torch::kUInt8);
    args[DNNL_ARG_SCRATCHPAD] = dnnl::memory(dnnl::memory::desc({static_cast<int64_t>(bytes)}, dt::u8, tag::a),
                                             onednn_cpu_engine(), scratch.data_ptr());
  }
  p.execute(stream, args);
  stream.wait();
}

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
    // int8 only: y = act(z · row scale + b) (+ y), the pass after the product z (see run).
    dnnl::binary rescale;
    size_t rescale_scratchpad_bytes = 0;
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
  bool int8_only = false;  // set_int8_weight: modes[kInt8] holds the only weights
};

namespace {

// The int8 product's attributes: the weight rows' scales as a [1, N] post-op (see run).
dnnl::primitive_attr int8_product_attr(int64_t n) {
  dnnl::post_ops dequantize;
  dequantize.append_binary(dnnl::algorithm::binary_mul, dnnl::memory::desc({1, n}, dt::f32, tag::ab));
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  attr.set_post_ops(dequantize);
  return attr;
}

// Reorders a plain weight (torch's row-major [N, K], the [K, N] matrix "ba") into `desc`; int8
// through our own packing where it applies (model/int8_pack.h: oneDNN's reorder is slow there).
// `buffer`: the memory to pack into (desc.get_size() bytes), or null for a new block.
std::shared_ptr<void> pack_weight(const torch::Tensor& w, int64_t n, int64_t k, dt type, const dnnl::memory::desc& desc,
                                  dnnl::memory& packed, std::shared_ptr<void> buffer = nullptr) {
  if (!buffer) buffer = util::allocate_for_streaming(desc.get_size());
  packed = dnnl::memory(desc, onednn_cpu_engine(), buffer.get());
  if (type == dt::s8 && pack_int8_weight(w, desc, buffer.get())) return buffer;
  dnnl::memory plain(dnnl::memory::desc({k, n}, type, tag::ba), onednn_cpu_engine(), w.data_ptr());
  dnnl::stream stream(onednn_cpu_engine());
  dnnl::reorder(plain, packed).execute(stream, plain, packed);
  stream.wait();
  return buffer;
}

}  // namespace

FastLinear::FastLinear() : impl_(std::make_unique<Impl>()) {}
FastLinear::~FastLinear() = default;

namespace {

// The int8 product's weight layout for an [N, K] weight. brgemm's int8 layout depends on N and K,
// not on the row count (checked on ViT-B/32's shapes), and an int8-only layer creates every
// primitive with this very layout, so one pack serves all calls.
dnnl::memory::desc int8_weight_layout(int64_t n, int64_t k) {
  const dnnl::memory::desc src_md({1, k}, dt::s8, tag::ab), w_md({k, n}, dt::s8, tag::any),
      dst_md({1, n}, dt::f32, tag::ab);
  return dnnl::matmul::primitive_desc(dnnl::matmul::desc(src_md, w_md, dst_md), int8_product_attr(n),
                                      onednn_cpu_engine())
      .weights_desc();
}

}  // namespace

size_t FastLinear::int8_pack_bytes(int64_t n, int64_t k) { return int8_weight_layout(n, k).get_size(); }

void FastLinear::set_int8_weight(const torch::Tensor& values, const torch::Tensor& scales,
                                 std::shared_ptr<void> memory) {
  if (values.scalar_type() != torch::kInt8 || values.dim() != 2 || !values.device().is_cpu() ||
      scales.scalar_type() != torch::kFloat32 || scales.numel() != values.size(0) || values.size(1) == 0)
    throw Error("FastLinear::set_int8_weight: expected int8 [N, K] values with N float32 scales, found " +
                std::string(c10::toString(values.scalar_type())) + " " + c10::str(values.sizes()) + " and " +
                c10::str(scales.sizes()));
  const int64_t n = values.size(0), k = values.size(1);
  Impl::Packed packed;
  packed.desc = int8_weight_layout(n, k);
  packed.buffer = pack_weight(values.contiguous(), n, k, dt::s8, packed.desc, packed.memory, std::move(memory));

  std::lock_guard<std::mutex> lock(impl_->mutex);
  for (Impl::Mode& mode : impl_->modes) mode = Impl::Mode();
  Impl::Mode& mode = impl_->modes[static_cast<int>(LinearCompute::kInt8)];
  mode.n = n;
  mode.k = k;
  mode.weight_scales = scales.reshape({n}).contiguous().clone();
  mode.packed.push_back(packed);
  impl_->int8_only = true;
  ++impl_->packs;
}

bool FastLinear::int8_only() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->int8_only;
}

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
  if (int8) require_int8_support("an int8 product");
  if (compute == LinearCompute::kBF16 && !onednn_bf16_available()) {
    // No bf16 product in oneDNN here: the same product in fp32 on the bf16-rounded inputs and
    // weights (a product of two bf16 values is exact in fp32, and oneDNN sums in fp32 too); the
    // bias and the activation in fp32 as oneDNN applies them.
    auto rounded = [](const torch::Tensor& t) { return t.to(torch::kBFloat16).to(torch::kFloat32); };
    torch::Tensor r = torch::matmul(rounded(x_in), rounded(weight).t());
    if (bias.defined()) r = r + bias.to(torch::kFloat32);
    r = activate(r, act).to(out);
    if (accumulate) y.add_(r);
    else y.copy_(r);
    return;
  }
  // The input as the product reads it: fp32, bf16, or int8 with one scale per row.
  torch::Tensor x, x_scales;
  if (int8) x_scales = quantize_per_row(x_in.contiguous(), x);
  else x = x_in.to(compute == LinearCompute::kBF16 ? torch::kBFloat16 : torch::kFloat32).contiguous();

  const dt xdt = int8 ? dt::s8 : compute == LinearCompute::kBF16 ? dt::bf16 : dt::f32;
  const dt ydt = out == torch::kBFloat16 ? dt::bf16 : dt::f32;
  Impl::Primitive prim;
  Impl::Packed packed;  // copied under the lock: the buffer stays alive while this call runs
  torch::Tensor bias_copy, weight_scales;
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    if (impl_->int8_only && !int8)
      throw Error(std::string(kInt8OnlyReason) + ": it runs precision int8 only", ErrorKind::kUnsupported);
    Impl::Mode& mode = impl_->modes[static_cast<int>(compute)];
    const bool bias_changed = mode.bias_ptr != pointer_of(bias) || mode.bias_version != version_of(bias);
    if (impl_->int8_only) {
      // The pack is the weight; the tensor passed is a placeholder of its shape. Only the bias
      // may be new (the first call).
      if (mode.n != n || mode.k != k)
        throw Error("FastLinear: an int8-only layer of " + std::to_string(mode.n) + "x" + std::to_string(mode.k) +
                    " called with a weight of " + std::to_string(n) + "x" + std::to_string(k));
      if (bias_changed) {
        mode.bias_ptr = pointer_of(bias);
        mode.bias_version = version_of(bias);
        mode.bias = bias.defined() ? bias.detach().to(torch::kFloat32).contiguous().clone() : torch::Tensor();
        mode.primitives.clear();  // they were made with or without a bias post-op
      }
    } else if (mode.weight_ptr != weight.data_ptr() || mode.weight_version != version_of(weight) || bias_changed ||
               mode.n != n || mode.k != k) {
      // Primitives hold the shape and whether a bias post-op exists.
      if (mode.n != n || mode.k != k || mode.bias.defined() != bias.defined()) mode.primitives.clear();
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
      // Int8-only: the layout of the one pack (set_int8_weight), else the layout oneDNN prefers.
      const dnnl::memory::desc w_md =
          impl_->int8_only ? mode.packed.front().desc : dnnl::memory::desc({k, n}, int8 ? dt::s8 : xdt, tag::any);
      const dnnl::memory::desc dst_md({m, n}, int8 ? dt::f32 : ydt, tag::ab);
      const dnnl::memory::desc row_md({1, n}, dt::f32, tag::ab);
      // The bias, activation and residual add: post-ops of the product, or in int8 of the rescale.
      dnnl::post_ops tail;
      if (int8 && mode.bias.defined()) tail.append_binary(dnnl::algorithm::binary_add, row_md);
      if (act == Activation::kQuickGelu) tail.append_eltwise(1.0f, dnnl::algorithm::eltwise_swish, 1.702f, 0.0f);
      else if (act == Activation::kGelu) tail.append_eltwise(1.0f, dnnl::algorithm::eltwise_gelu_erf, 0.0f, 0.0f);
      if (accumulate) tail.append_sum(1.0f);  // dst = dst + (x·W + b): the residual add, in the same pass
      // The product keeps oneDNN's fast (brgemm, VNNI) int8 kernel only with scales per output
      // column: z = s32 · weight_scales, one [1, N] binary post-op. The activations' scales are
      // per row, so they, and everything after them, go to a second pass: a binary primitive
      // z · [M, 1] (jit:uni in f32; measured, its bf16 output takes the reference kernel).
      dnnl::primitive_attr attr = int8 ? int8_product_attr(n) : dnnl::primitive_attr();
      attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
      if (!int8 && tail.len() > 0) attr.set_post_ops(tail);
      const dnnl::matmul::desc desc = mode.bias.defined() && !int8 ? dnnl::matmul::desc(src_md, w_md, row_md, dst_md)
                                                                    : dnnl::matmul::desc(src_md, w_md, dst_md);
      const dnnl::matmul::primitive_desc pd(desc, attr, onednn_cpu_engine());
      Impl::Primitive p;
      p.matmul = dnnl::matmul(pd);
      p.weights_desc = pd.weights_desc();
      p.scratchpad_bytes = pd.scratchpad_desc().get_size();
      if (int8) {
        dnnl::primitive_attr rescale_attr;
        rescale_attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
        if (tail.len() > 0) rescale_attr.set_post_ops(tail);
        const dnnl::memory::desc column_md({m, 1}, dt::f32, tag::ab);
        const dnnl::binary::primitive_desc rescale_pd(
            dnnl::binary::desc(dnnl::algorithm::binary_mul, dst_md, column_md, dst_md), rescale_attr,
            onednn_cpu_engine());
        p.rescale = dnnl::binary(rescale_pd);
        p.rescale_scratchpad_bytes = rescale_pd.scratchpad_desc().get_size();
      }
      it = mode.primitives.emplace(key, std::move(p)).first;
    }
    prim = it->second;
    for (const Impl::Packed& p : mode.packed)
      if (p.desc == prim.weights_desc) packed = p;
    if (!packed.buffer) {
      if (impl_->int8_only) throw Error("FastLinear: an int8-only layer's product wants another weight layout");
      torch::Tensor w;
      if (int8) {
        QuantizedWeight q = quantize_per_channel(weight);
        w = q.values;
        mode.weight_scales = q.scales;
      } else {
        w = weight.detach().contiguous();
      }
      packed.desc = prim.weights_desc;
      packed.buffer = pack_weight(w, n, k, int8 ? dt::s8 : dt::f32, packed.desc, packed.memory);
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
  // int8: the product's output z, fp32. It is y itself when y is fp32 and not accumulated into
  // (the rescale then runs in place), else a temporary.
  torch::Tensor z = y;
  if (int8 && (accumulate || out != torch::kFloat32)) z = torch::empty({m, n}, x.options().dtype(torch::kFloat32));
  dnnl::memory src(dnnl::memory::desc({m, k}, xdt, tag::ab), engine, x.data_ptr());
  dnnl::memory dst(dnnl::memory::desc({m, n}, int8 ? dt::f32 : ydt, tag::ab), engine, z.data_ptr());
  std::unordered_map<int, dnnl::memory> args{
      {DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, packed.memory}, {DNNL_ARG_DST, dst}};
  if (int8) {
    args.emplace(DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1,
                 dnnl::memory(row_md, engine, weight_scales.data_ptr()));
  } else if (bias_copy.defined()) {
    args.emplace(DNNL_ARG_BIAS, dnnl::memory(row_md, engine, bias_copy.data_ptr()));
  }
  dnnl::stream stream(engine);
  execute_with_scratchpad(prim.matmul, prim.scratchpad_bytes, args, stream);
  if (int8) {
    const torch::Tensor& rescaled = out == torch::kFloat32 ? y : z;
    std::unordered_map<int, dnnl::memory> rescale_args{
        {DNNL_ARG_SRC_0, dst},
        {DNNL_ARG_SRC_1, dnnl::memory(dnnl::memory::desc({m, 1}, dt::f32, tag::ab), engine, x_scales.data_ptr())},
        {DNNL_ARG_DST, dnnl::memory(dnnl::memory::desc({m, n}, dt::f32, tag::ab), engine, rescaled.data_ptr())}};
    if (bias_copy.defined())
      rescale_args.emplace(DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1,
                           dnnl::memory(row_md, engine, bias_copy.data_ptr()));
    execute_with_scratchpad(prim.rescale, prim.rescale_scratchpad_bytes, rescale_args, stream);
    if (out != torch::kFloat32) y.view({m, n}).copy_(z);
  }
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
