#include "cli/model_options.h"

#include "clip/error.h"

namespace clip::cli {

void add_model_options(CLI::App* cmd, ModelOptions& o) {
  cmd->add_option("--model", o.model,
                  "A model name (ViT-B/32, ViT-B-32/laion2b_s34b_b79k, hf-hub:ORG/REPO, ...; `clip models list`) "
                  "or a checkpoint file or folder")
      ->required();
  add_model_name_options(cmd, o.pretrained, o.offline);
  cmd->add_option("--config", o.config,
                  "Architecture as JSON (ours, open_clip_config.json or a Hugging Face config.json)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--threads", o.threads, "Threads (0: all cores)")->check(CLI::Range(0, 1024));
  cmd->add_option("--device", o.device, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}));
  cmd->add_option("--precision", o.precision, "fp32, bf16 or int8 (CPU)")
      ->check(CLI::IsMember({"fp32", "bf16", "int8"}));
}

void add_model_name_options(CLI::App* cmd, std::string& pretrained, bool& offline) {
  cmd->add_option("--pretrained", pretrained,
                  "open_clip pretrained tag for an architecture --model (e.g. laion2b_s34b_b79k)");
  cmd->add_flag("--offline", offline, "Use the Hugging Face cache only, never download (also HF_HUB_OFFLINE=1)");
}

hub::HubOptions hub_options(bool offline) {
  hub::HubOptions h = hub::hub_options_from_environment();
  h.offline = h.offline || offline;
  return h;
}

hub::ResolvedModel resolve_model_files(const std::string& model, const std::string& pretrained, bool offline) {
  return hub::resolve_model(model, hub_options(offline), pretrained);
}

Model load_model(const ModelOptions& o, hub::ResolvedModel* resolved) {
  keep_freed_memory_for_reuse();
  set_threads(o.threads);
  const hub::ResolvedModel files = resolve_model_files(o.model, o.pretrained, o.offline);
  LoadOptions lo;
  lo.config_path = o.config.empty() ? files.config : o.config;
  // The preprocessing the name brings (open_clip_config.json's preprocess_cfg over the table's),
  // unless --config says otherwise.
  if (o.config.empty()) lo.preprocess = files.preprocess;
  lo.precision = precision_from_name(o.precision);
  if (o.device == "cuda") {
    if (!torch::cuda::is_available())
      throw Error("--device cuda: this build of libtorch has no CUDA device available (use --device cpu)");
    lo.device = torch::Device(torch::kCUDA);
  }
  if (resolved) *resolved = files;
  return Model::load(files.weights, lo);
}

}  // namespace clip::cli
