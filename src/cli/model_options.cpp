#include "cli/model_options.h"

#include "clip/error.h"

namespace clip::cli {

void add_model_options(CLI::App* cmd, ModelOptions& o) {
  cmd->add_option("--model", o.model, "Checkpoint file or folder (safetensors, torch.save, TorchScript, Hugging Face)")
      ->required();
  cmd->add_option("--config", o.config, "Architecture as JSON (ours or a Hugging Face config.json)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--threads", o.threads, "Threads (0: all cores)")->check(CLI::Range(0, 1024));
  cmd->add_option("--device", o.device, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}));
  cmd->add_option("--precision", o.precision, "fp32 or bf16")->check(CLI::IsMember({"fp32", "bf16"}));
}

Model load_model(const ModelOptions& o) {
  keep_freed_memory_for_reuse();
  set_threads(o.threads);
  LoadOptions lo;
  lo.config_path = o.config;
  lo.precision = precision_from_name(o.precision);
  if (o.device == "cuda") {
    if (!torch::cuda::is_available())
      throw Error("--device cuda: this build of libtorch has no CUDA device available (use --device cpu)");
    lo.device = torch::Device(torch::kCUDA);
  }
  return Model::load(o.model, lo);
}

}  // namespace clip::cli
