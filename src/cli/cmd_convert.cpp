// `clip convert IN OUT.safetensors`: any supported checkpoint to one safetensors file with
// OpenAI key names and the config in its metadata.
#include <cstdio>

#include "cli/commands.h"
#include "cli/model_options.h"
#include "clip/error.h"

namespace clip::cli {
namespace {

struct ConvertOptions {
  std::string input, output, config, dtype = "f32";
};

void run_convert(const ConvertOptions& o) {
  LoadOptions lo;
  lo.config_path = o.config;
  const Model model = Model::load(o.input, lo);
  const torch::ScalarType st = o.dtype == "f16"    ? torch::kFloat16
                               : o.dtype == "bf16" ? torch::kBFloat16
                               : o.dtype == "int8" ? torch::kInt8
                                                   : torch::kFloat32;
  const size_t count = model.save_safetensors(o.output, st);
  std::fprintf(stderr, "wrote %zu tensors (%s) to %s\n", count, o.dtype.c_str(), o.output.c_str());
}

}  // namespace

void register_convert(CLI::App& app) {
  auto o = std::make_shared<ConvertOptions>();
  CLI::App* cmd =
      app.add_subcommand("convert", "Convert a checkpoint to one safetensors file (config in its metadata)");
  cmd->add_option("input", o->input, "Checkpoint file or folder")->required();
  cmd->add_option("output", o->output, "Output .safetensors file")->required();
  cmd->add_option("--config", o->config, "Architecture as JSON")->check(CLI::ExistingFile);
  cmd->add_option("--dtype", o->dtype, "Stored dtype: f32, f16, bf16, or int8 (the linears int8 inference runs, with their "
                  "scales; the rest f16)")
      ->check(CLI::IsMember({"f32", "f16", "bf16", "int8"}));
  cmd->callback([o] { run_convert(*o); });
}

}  // namespace clip::cli
