#include "train/objective_head.h"

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

}  // namespace clip::train
