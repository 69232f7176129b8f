#include "model/attention.h"

#include <cmath>

#include "model/matmul.h"

namespace clip::model {

torch::Tensor split_heads(const torch::Tensor& x, int heads) {
  return x.view({x.size(0), x.size(1), heads, x.size(2) / heads}).transpose(1, 2);
}

torch::Tensor merge_heads(const torch::Tensor& x) {
  return x.transpose(1, 2).reshape({x.size(0), x.size(2), x.size(1) * x.size(3)});
}

torch::Tensor scaled_dot_product_attention(const torch::Tensor& q_in, const torch::Tensor& k, const torch::Tensor& v,
                                           const torch::Tensor& mask) {
  const torch::Tensor q = q_in * (1.0 / std::sqrt(static_cast<double>(q_in.size(-1))));
  torch::Tensor scores = trainable_matmul(q, k.transpose(-2, -1));
  if (mask.defined()) scores = scores + mask;
  return trainable_matmul(torch::softmax(scores, -1), v);
}

}  // namespace clip::model
