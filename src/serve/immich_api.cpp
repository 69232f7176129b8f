#include "serve/immich_api.h"

#include "serve/embed_inputs.h"

using nlohmann::json;

namespace clip::serve {
namespace {

// immich answers a form it cannot read with 422 "Invalid request format."; ours says why.
[[noreturn]] void invalid_format(const std::string& why) { throw HttpError(422, "Invalid request format: " + why); }

const FormPart* find_part(const Request& req, const std::string& name) {
  for (const FormPart& p : req.parts)
    if (p.name == name) return &p;
  return nullptr;
}

struct ClipEntry {
  std::string type;        // "visual" or "textual"
  std::string model_name;  // as immich names it, e.g. "ViT-B-32__openai"
};

// entries = {"clip": {"visual" | "textual": {"modelName": ..., "options": {...}}}}
ClipEntry parse_entries(const Request& req) {
  const FormPart* part = find_part(req, "entries");
  if (!part || !part->filename.empty()) invalid_format("no form field \"entries\"");
  const json entries = json::parse(part->content, nullptr, false);
  if (!entries.is_object()) invalid_format("\"entries\" is not a JSON object");
  ClipEntry out;
  for (const auto& [task, types] : entries.items()) {
    if (task != "clip") invalid_format("task \"" + task + "\": this server (CLIP++) serves only the task \"clip\"");
    if (!types.is_object() || types.size() != 1)
      invalid_format("\"clip\" must hold one entry, \"visual\" or \"textual\"");
    const std::string type = types.begin().key();
    const json& entry = types.begin().value();
    if (type != "visual" && type != "textual") invalid_format("clip type \"" + type + "\": expected visual or textual");
    if (!entry.is_object() || !entry.contains("modelName") || !entry["modelName"].is_string())
      invalid_format("clip." + type + " has no string \"modelName\"");
    if (entry.contains("options") && !entry["options"].is_object())
      invalid_format("clip." + type + ".options is not an object");
    out.type = type;
    out.model_name = entry["modelName"].get<std::string>();
  }
  if (out.type.empty()) invalid_format("\"entries\" names no task");
  return out;
}

}  // namespace

void handle_immich_predict(ModelRegistry& models, const ServerOptions& o, const Request& req, Response& res) {
  if (!req.multipart) invalid_format("POST /predict takes multipart/form-data");
  const ClipEntry entry = parse_entries(req);
  const FormPart* image = find_part(req, "image");
  const FormPart* text = find_part(req, "text");
  if (text && !text->filename.empty()) text = nullptr;
  if (!image && !text) throw HttpError(400, "Either image or text must be provided");
  if (entry.type == "visual" && !image) throw HttpError(400, "clip.visual needs an \"image\" file");
  if (entry.type == "textual" && !text) throw HttpError(400, "clip.textual needs a \"text\" field");

  const std::string name = models.resolve(entry.model_name);
  if (name.empty())
    throw HttpError(404, "modelName \"" + entry.model_name + "\" is not served here: start `clip serve` with --model " +
                             entry.model_name + "=PATH");
  const std::shared_ptr<const LoadedModel> model = models.acquire(name);

  json reply;
  torch::Tensor row;
  if (entry.type == "visual") {
    std::vector<image::SourceInfo> sources;
    row = embed_images_normalized(*model, o, {image->content}, {"the uploaded image"}, &sources);
    reply["imageHeight"] = sources.at(0).height;
    reply["imageWidth"] = sources.at(0).width;
  } else {
    // options.language picks a multilingual tokenizer in immich; CLIP++'s models are English-only.
    if (text->content.empty()) throw HttpError(400, "\"text\" is empty");
    if (static_cast<int>(text->content.size()) > o.max_text_bytes)
      throw HttpError(413, "\"text\" has " + std::to_string(text->content.size()) + " bytes, more than the limit of " +
                               std::to_string(o.max_text_bytes));
    row = embed_texts_normalized(*model, {text->content});
  }
  row = row.to(torch::kCPU, torch::kFloat).contiguous();
  reply["clip"] = float_array_text(row.data_ptr<float>(), static_cast<size_t>(row.size(1)));
  send_json(res, 200, reply);
}

Response immich_ping() {
  Response res;
  res.set_content("pong", "text/plain; charset=utf-8");
  return res;
}

}  // namespace clip::serve
