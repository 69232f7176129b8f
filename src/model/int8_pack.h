// Packing int8 weights straight into the blocked layout of oneDNN's int8 matmul, for int8-only
// models (FastLinear::set_int8_weight). oneDNN 2.6 reorders int8 weights into that layout (s8
// with the s8s8 compensation) with its generic "simple:any" kernel at ~15 ns a weight: 1.8 s for
// ViT-B/32's linears, six times the budget for the whole load. The layout is all in the
// memory descriptor (blocked strides and inner blocks; then one int32 per output column, -128 ×
// the column's sum: oneDNN's VNNI products take u8 inputs, so it runs s8 inputs as x + 128 and
// subtracts this back), so one pass over the weights writes the same bytes. tests/model/int8_only_test.cpp compares
// them with oneDNN's reorder.
#pragma once

#include <torch/torch.h>

#include <oneapi/dnnl/dnnl.hpp>

namespace clip::model {

// Writes `values` (int8 [N, K], contiguous: torch's linear weight, the [K, N] matrix transposed)
// into `out` (desc.get_size() bytes) in the layout `desc` (a [K, N] s8 weight descriptor of an
// int8 matmul). Returns false, writing nothing, for a descriptor outside what this handles
// (other dimensions, formats or extra flags than the s8s8 compensation per column); the caller
// then uses oneDNN's reorder.
bool pack_int8_weight(const torch::Tensor& values, const dnnl::memory::desc& desc, void* out);

}  // namespace clip::model
