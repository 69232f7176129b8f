#include "train/objective_head.h"

#include <algorithm>
#include <vector>

#include "io/safetensors.h"

namespace clip::train {

const char* objective_name(Objective objective) {
  switch (objective) {
    case Objective::kBowPredict: return "bow-predict";
    case Objective::kCaption: return "caption";
    case Objective::kContrastive: break;
  }
  return "contrastive";
}

std::string objective_head_file(Objective objective) {
  switch (objective) {
    case Objective::kBowPredict: return "bow_head.safetensors";
    case Objective::kCaption: return "caption_head.safetensors";
    case Objective::kContrastive: break;
  }
  return "";
}

void save_objective_head(const ObjectiveHead& head, Objective objective, const std::string& path) {
  const torch::Tensor w = head.weight.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  const torch::Tensor b = head.bias.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  io::write_safetensors(path,
                        {{"weight", io::DType::kF32, w.sizes().vec(), w.data_ptr(), static_cast<size_t>(w.nbytes())},
                         {"bias", io::DType::kF32, b.sizes().vec(), b.data_ptr(), static_cast<size_t>(b.nbytes())}},
                        {{"format", "pt"}, {"objective", objective_name(objective)}});
}

double accumulate_mean_loss(const torch::Tensor& images, const torch::Tensor& tokens, int64_t micro_batches,
                            const ChunkLoss& loss_of) {
  const int64_t rows = images.size(0);
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(micro_batches, rows));
  const std::vector<torch::Tensor> image_chunks = images.chunk(chunks), token_chunks = tokens.chunk(chunks);
  double total = 0;
  for (size_t j = 0; j < image_chunks.size(); ++j) {
    const double share = static_cast<double>(image_chunks[j].size(0)) / static_cast<double>(rows);
    const torch::Tensor loss = loss_of(image_chunks[j], token_chunks[j]);
    (loss * share).backward();
    total += loss.item<double>() * share;
  }
  return total;
}

}  // namespace clip::train
