// One linear layer through oneDNN's matmul primitive with pre-packed weights, for CPU inference.
//
// y = act(x · Wᵀ + b), with the bias and the activation fused into the product. Three compute
// modes: fp32; bf16 (bf16 inputs and weights, f32 accumulation, f32 or bf16 output); int8 (s8
// weights per output channel and s8 activations per token, model/quantize.h; s32 accumulation;
// the weight rows' scales as a post-op of the product, then one elementwise pass applying the
// activations' row scales, bias, activation and residual add).
//
// Packing and invalidation: the weights are packed lazily, on the first call of each mode, into
// the blocked layout oneDNN chose for the product. Every call passes the layer's current weight
// and bias tensors; the packed copy records their data pointers and version counters
// (Tensor::_version(), bumped by every in-place write such as copy_ or an optimizer step) and is
// re-packed when either changed. So loading, training and then running inference again all see
// the current weights, with no call to make by hand. Only the packs of the compute mode used last
// are kept (packing one mode frees the others'), so memory holds one packed copy at a time.
// Packs live in memory made for streaming reads (util/huge_pages.h).
//
// Primitives are cached per (row count M, activation, output type): they are JIT-compiled once per
// shape. The cache is thread-safe (one mutex, held only for the lookup); an execution uses its own
// memory objects and scratchpad (a tensor from libtorch's allocator), so calls can run
// concurrently.
#pragma once

#include <torch/torch.h>

#include <memory>

namespace dnnl {
struct engine;
}

namespace clip::model {

// The CPU engine every oneDNN primitive of the model runs on (created once, immutable).
const dnnl::engine& onednn_cpu_engine();

enum class Activation { kNone, kQuickGelu, kGelu };

// How a FastLinear computes (see above).
enum class LinearCompute { kFP32, kBF16, kInt8 };

// What every refusal of an int8-only layer or model (FastLinear::set_int8_weight) says first.
inline constexpr const char* kInt8OnlyReason =
    "this model was loaded int8-only (a quantized checkpoint loaded for precision int8: its linear weights are int8, "
    "without float copies)";

// The plain libtorch computation: torch::linear followed by the activation (QuickGELU is
// x·sigmoid(1.702x); GELU the exact, erf-based one).
torch::Tensor reference_linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                               Activation act);
// The activation alone, as reference_linear applies it.
torch::Tensor activate(const torch::Tensor& y, Activation act);

// Whether the fast path serves this call: inference (InferenceMode, or grad mode off), CPU fp32
// or bf16 input and fp32 weights. Training with autograd takes the libtorch path.
bool fast_linear_applies(const torch::Tensor& x, const torch::Tensor& weight);

// Whether CPU autocast to bf16 is on (the model's Precision::kBF16): the fast path then computes
// in bf16 itself.
bool cpu_autocast_bf16();

class FastLinear {
 public:
  FastLinear();
  ~FastLinear();
  FastLinear(const FastLinear&) = delete;
  FastLinear& operator=(const FastLinear&) = delete;

  // x: [..., K] on the CPU, fp32 or bf16; weight: fp32 [N, K]; bias: fp32 [N] or undefined.
  // compute: the mode (x is cast to bf16 for kBF16, quantized for kInt8). out: kFloat or
  // kBFloat16. Returns [..., N] of type out.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias, Activation act,
                        LinearCompute compute, torch::ScalarType out);

  // y += x · Wᵀ + b in place (a residual add fused into the product: oneDNN's sum post-op), with y
  // a contiguous fp32 CPU tensor of shape [..., N]; x and compute as for forward.
  void accumulate(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                  LinearCompute compute, torch::Tensor& y);

  // The layer as a model uses it: the fast path when fast_linear_applies (in bf16 when CPU
  // autocast to bf16 is on or x is bf16; the output is then bf16 if bf16_out, else fp32), else
  // reference_linear.
  torch::Tensor operator()(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                           Activation act = Activation::kNone, bool bf16_out = false);

  // Int8-only: packs `values` (int8 [N, K]) and their row scales (fp32, N of them) as this layer's
  // int8 weights, as a quantized checkpoint stores them (model/int8_checkpoint.h), so that no float
  // weight needs to exist. From then on the layer computes kInt8 only (another mode throws
  // clip::Error), the weight passed to a call only gives the shape [N, K] (the model holds a
  // placeholder, inference_plan.h), and the products use this pack: the same integers and
  // scales give the same outputs as packing a float weight that quantizes to them.
  // memory: where the pack goes (int8_pack_bytes(N, K) bytes, 64-byte aligned, kept alive by the
  // pointer), e.g. a slice of one block for a whole model; null: a block of its own.
  void set_int8_weight(const torch::Tensor& values, const torch::Tensor& scales,
                       std::shared_ptr<void> memory = nullptr);
  bool int8_only() const;
  // The bytes of an int8 pack of an [N, K] weight.
  static size_t int8_pack_bytes(int64_t n, int64_t k);

  // How many times the weights were packed (for tests of the invalidation).
  int pack_count() const;

 private:
  void run(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias, Activation act,
           LinearCompute compute, torch::Tensor& y, bool accumulate);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace clip::model
