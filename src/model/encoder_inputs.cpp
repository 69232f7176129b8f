#include "model/encoder_inputs.h"

#include <algorithm>
#include <limits>
#include <string>
#include <utility>

#include "clip/error.h"

namespace clip::model {
namespace {

// Each row's end position and the largest of them, after checking that every id lies in
// [0, vocab). On the CPU in one pass over the ids (at batch 1 the library calls it replaces cost
// more than the pass).
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

}  // namespace

void check_images(const ModelConfig& config, const torch::Tensor& images) {
  const int r = config.image_resolution;
  if (images.dim() != 4 || images.size(1) != 3 || images.size(2) != r || images.size(3) != r)
    throw Error("encode_image: expected images of shape [N, 3, " + std::to_string(r) + ", " + std::to_string(r) +
                "], found " + c10::str(images.sizes()));
}

TextBatch text_batch(const ModelConfig& config, const torch::Tensor& tokens_in, bool all_positions) {
  if (tokens_in.dim() != 2 || tokens_in.size(1) > config.context_length || tokens_in.size(1) < 1)
    throw Error("encode_text: expected tokens of shape [N, L] with 1 <= L <= " + std::to_string(config.context_length) +
                ", found " + c10::str(tokens_in.sizes()));
  const torch::Tensor tokens = tokens_in.to(torch::kInt64).contiguous();
  auto [end, last_end] = end_positions(tokens, config.vocab_size);
  if (all_positions || tokens.size(0) == 0) return {tokens, end};
  return {tokens.narrow(1, 0, last_end + 1), end};
}

torch::Tensor causal_mask(int64_t length, const torch::TensorOptions& options) {
  return torch::full({length, length}, -std::numeric_limits<float>::infinity(), options).triu(1);
}

torch::Tensor pool_at(const torch::Tensor& x, const torch::Tensor& end) {
  return x.index({torch::arange(x.size(0), end.options()), end});
}

}  // namespace clip::model
