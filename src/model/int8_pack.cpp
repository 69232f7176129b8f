#include "model/int8_pack.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstring>
#include <vector>

namespace clip::model {
namespace {

// The offset of position p along dimension `dim` of a blocked descriptor, the other dimension at
// 0: oneDNN's offset is the sum of such terms (outer blocks by strides, then the inner blocks,
// innermost last), as memory_desc_wrapper::off_v computes it.
int64_t offset_along(const dnnl_memory_desc_t& d, int dim, int64_t p) {
  const dnnl_blocking_desc_t& b = d.format_desc.blocking;
  int64_t block = 1;
  for (int i = 0; i < b.inner_nblks; ++i)
    if (b.inner_idxs[i] == dim) block *= b.inner_blks[i];
  int64_t off = (p / block) * b.strides[dim];
  p %= block;
  int64_t stride = 1;
  for (int i = b.inner_nblks - 1; i >= 0; --i) {
    if (b.inner_idxs[i] == dim) {
      off += (p % b.inner_blks[i]) * stride;
      p /= b.inner_blks[i];
    }
    stride *= b.inner_blks[i];
  }
  return off;
}

}  // namespace

bool pack_int8_weight(const torch::Tensor& values, const dnnl::memory::desc& desc, void* out) {
  const dnnl_memory_desc_t& d = desc.data;
  const int64_t n = values.size(0), k = values.size(1);
  if (values.scalar_type() != torch::kInt8 || !values.is_contiguous() || d.ndims != 2 || d.dims[0] != k ||
      d.dims[1] != n || d.data_type != dnnl_s8 || d.format_kind != dnnl_blocked || d.offset0 != 0 ||
      d.extra.flags != dnnl_memory_extra_flag_compensation_conv_s8s8 || d.extra.compensation_mask != 2)
    return false;
  // The weights (their size as oneDNN's memory_desc_wrapper::size computes it: the largest outer
  // stride times its block count), then one int32 compensation per (padded) column; oneDNN may
  // allocate more after them, which it leaves unwritten, as this does.
  const dnnl_blocking_desc_t& b = d.format_desc.blocking;
  int64_t weight_bytes = 0;
  for (int dim = 0; dim < 2; ++dim) {
    int64_t block = 1;
    for (int i = 0; i < b.inner_nblks; ++i)
      if (b.inner_idxs[i] == dim) block *= b.inner_blks[i];
    weight_bytes = std::max(weight_bytes, d.padded_dims[dim] / block * b.strides[dim]);
  }
  const int64_t padded_n = d.padded_dims[1];
  if (static_cast<size_t>(weight_bytes + padded_n * 4) > desc.get_size()) return false;
  std::vector<int64_t> along_k(k), along_n(n);
  for (int64_t i = 0; i < k; ++i) along_k[i] = offset_along(d, 0, i);
  for (int64_t j = 0; j < n; ++j) along_n[j] = offset_along(d, 1, j);
  if (k > 0 && n > 0 && along_k.back() + along_n.back() >= weight_bytes) return false;

  auto* bytes = static_cast<int8_t*>(out);
  // The padding (and the padded columns' compensation) is zero.
  std::memset(bytes, 0, static_cast<size_t>(weight_bytes + padded_n * 4));
  auto* compensation = reinterpret_cast<int32_t*>(bytes + weight_bytes);
  const int8_t* v = values.data_ptr<int8_t>();
  at::parallel_for(0, n, std::max<int64_t>(1, (1 << 16) / std::max<int64_t>(k, 1)), [&](int64_t begin, int64_t end) {
    for (int64_t j = begin; j < end; ++j) {
      const int8_t* row = v + j * k;
      int8_t* column = bytes + along_n[j];
      int32_t sum = 0;
      for (int64_t i = 0; i < k; ++i) {
        column[along_k[i]] = row[i];
        sum += row[i];
      }
      compensation[j] = -128 * sum;
    }
  });
  return true;
}

}  // namespace clip::model
