#include "serve/handlers.h"

#include <filesystem>

#include "clip/error.h"
#include "index/shard_members.h"
#include "model/image_batch.h"
#include "serve/http_util.h"
#include "serve/thumbnail.h"

using nlohmann::json;

namespace clip::serve {
namespace {

std::vector<std::vector<float>> rows_of(const torch::Tensor& t) {
  const torch::Tensor c = t.to(torch::kCPU, torch::kFloat).contiguous();
  std::vector<std::vector<float>> rows(static_cast<size_t>(c.size(0)));
  for (int64_t i = 0; i < c.size(0); ++i) rows[i].assign(c[i].data_ptr<float>(), c[i].data_ptr<float>() + c.size(1));
  return rows;
}

// Preprocesses uploaded images for the model; a bad upload is 400 naming it, too many pixels 413.
torch::Tensor encode_uploads(const Loaded& s, const ServerOptions& o, const std::vector<const FormPart*>& files) {
  image::PreprocessOptions pre = s.embedder().preprocess_options();
  pre.decode.max_pixels = o.max_pixels;
  std::vector<std::vector<float>> inputs(files.size());
  for (size_t i = 0; i < files.size(); ++i) {
    try {
      inputs[i] = image::preprocess(files[i]->content, "uploaded image \"" + files[i]->filename + "\"", pre).input;
    } catch (const Error& e) {
      throw HttpError(e.kind() == ErrorKind::kTooLarge ? 413 : 400, e.what());  // the upload, not the server
    }
  }
  std::vector<const std::vector<float>*> pointers;
  for (const std::vector<float>& input : inputs) pointers.push_back(&input);
  const torch::Tensor batch = model::stack_image_inputs(pointers, pre.size);
  return normalize_rows(s.model().encode_image(batch.to(s.model().device())));
}

std::string checked_text(const ServerOptions& o, const std::string& text, const std::string& what) {
  if (text.empty()) throw HttpError(400, what + " is empty");
  if (static_cast<int>(text.size()) > o.max_text_bytes)
    throw HttpError(413, what + " has " + std::to_string(text.size()) + " bytes, more than the limit of " +
                             std::to_string(o.max_text_bytes));
  return text;
}

// labels × templates prompts, each filled template at most max_text_bytes, all of them at most
// max_prompt_bytes: computed from the sizes, before any prompt is built.
void check_prompt_sizes(const ServerOptions& o, const std::vector<std::string>& labels,
                        const std::vector<std::string>& templates) {
  if (labels.size() * templates.size() > static_cast<size_t>(o.max_prompts))
    throw HttpError(413, std::to_string(labels.size()) + " labels × " + std::to_string(templates.size()) +
                             " templates make more prompts than the limit of " + std::to_string(o.max_prompts));
  size_t longest_label = 0, label_bytes = 0;
  for (const auto& l : labels) {
    longest_label = std::max(longest_label, l.size());
    label_bytes += l.size();
  }
  size_t total = 0;
  for (const auto& t : templates) {
    size_t holes = 0;  // the "{}" fill_template replaces, scanning left to right
    for (size_t i = 0; i < t.size();) i += t.compare(i, 2, "{}") == 0 ? (++holes, 2) : 1;
    const size_t rest = t.size() - 2 * holes;
    if (rest + holes * longest_label > static_cast<size_t>(o.max_text_bytes))
      throw HttpError(413, "template \"" + t.substr(0, 64) + "\" filled with the longest label has more than " +
                               std::to_string(o.max_text_bytes) + " bytes");
    total += rest * labels.size() + holes * label_bytes;
  }
  if (total > o.max_prompt_bytes)
    throw HttpError(413, "the filled templates have " + std::to_string(total) + " bytes, more than the limit of " +
                             std::to_string(o.max_prompt_bytes));
}

const index::ImageIndex& require_index(const Loaded& s) {
  if (!s.index) throw HttpError(404, "no index is loaded: start `clip serve` with --index INDEX to search");
  return *s.index;
}

int k_of(const ServerOptions& o, const Request& req) {
  const std::string k = form_value(req, "k");
  return k.empty() ? 10 : parse_int("k", k, 1, o.max_k);
}

// What the page shows under a thumbnail: the file's name, or the tar member's ("SHARD#MEMBER").
std::string display_name(const index::ImageIndex& idx, const std::string& path) {
  std::string shard, member;
  if (idx.manifest().source.kind == "shards" && index::split_member_record_path(path, &shard, &member))
    return std::filesystem::path(member).filename().string();
  return std::filesystem::path(path).filename().string();
}

json hits_json(const index::ImageIndex& idx, const std::vector<index::Hit>& hits) {
  json out = json::array();
  for (size_t i = 0; i < hits.size(); ++i)
    out.push_back({{"rank", i + 1},
                   {"id", hits[i].id},
                   {"score", hits[i].score},
                   {"path", hits[i].path},
                   {"name", display_name(idx, hits[i].path)},
                   {"url", "/images/" + std::to_string(hits[i].id)}});
  return out;
}

}  // namespace

void handle_embed(const Loaded& s, const ServerOptions& o, const Request& req, Response& res) {
  if (req.multipart) {
    const auto files = uploaded_files(req, {"image", "images"});
    if (files.empty()) throw HttpError(400, "no uploaded file in a form field named \"image\"");
    if (static_cast<int>(files.size()) > o.max_images)
      throw HttpError(413, std::to_string(files.size()) + " images, more than the limit of " +
                               std::to_string(o.max_images) + " per request");
    json inputs = json::array();
    for (const FormPart* f : files) inputs.push_back({{"type", "image"}, {"name", f->filename}});
    const torch::Tensor features = encode_uploads(s, o, files);
    send_json(res, 200,
              {{"dim", features.size(1)}, {"normalized", true}, {"inputs", inputs}, {"embeddings", rows_of(features)}});
    return;
  }
  if (media_type(req.content_type) != "application/json")
    throw HttpError(415, "POST /embed takes application/json {\"texts\": [...]} or multipart/form-data images, not \"" +
                             req.content_type + "\"");
  json body;
  try {
    body = json::parse(req.body);
  } catch (const json::parse_error& e) {
    throw HttpError(400, std::string("the request body is not valid JSON: ") + e.what());
  }
  if (!body.is_object() || !body.contains("texts") || !body["texts"].is_array())
    throw HttpError(400, "expected a JSON object with \"texts\": an array of strings");
  const json& texts_json = body["texts"];
  if (texts_json.empty()) throw HttpError(400, "\"texts\" is empty");
  if (static_cast<int>(texts_json.size()) > o.max_texts)
    throw HttpError(413, std::to_string(texts_json.size()) + " texts, more than the limit of " +
                             std::to_string(o.max_texts) + " per request");
  std::vector<std::string> texts;
  for (size_t i = 0; i < texts_json.size(); ++i) {
    if (!texts_json[i].is_string()) throw HttpError(400, "\"texts\"[" + std::to_string(i) + "] is not a string");
    texts.push_back(checked_text(o, texts_json[i].get<std::string>(), "\"texts\"[" + std::to_string(i) + "]"));
  }
  const torch::Tensor features = normalize_rows(s.embedder().embed_texts(texts));
  json inputs = json::array();
  for (const auto& t : texts) inputs.push_back({{"type", "text"}, {"text", t}});
  send_json(res, 200,
            {{"dim", features.size(1)}, {"normalized", true}, {"inputs", inputs}, {"embeddings", rows_of(features)}});
}

void handle_classify(const Loaded& s, const ServerOptions& o, const Request& req, Response& res) {
  if (!req.multipart)
    throw HttpError(415, "POST /classify takes multipart/form-data: an \"image\" file and \"labels\"");
  const auto files = uploaded_files(req, {"image"});
  if (files.size() != 1)
    throw HttpError(400,
                    "expected exactly one uploaded file in the field \"image\", found " + std::to_string(files.size()));
  // Labels: one comma-separated field, or the field repeated.
  std::vector<std::string> labels, templates;
  auto collect = [&](const char* field, std::vector<std::string>& out, bool split) {
    for (const FormPart& part : req.parts) {
      if (part.name != field || !part.filename.empty()) continue;
      const std::string& value = part.content;
      size_t start = 0;
      while (start <= value.size()) {
        size_t end = split ? value.find(',', start) : std::string::npos;
        if (end == std::string::npos) end = value.size();
        std::string item = value.substr(start, end - start);
        item.erase(0, item.find_first_not_of(" \t\r\n"));
        item.erase(item.find_last_not_of(" \t\r\n") + 1);
        if (!item.empty()) out.push_back(checked_text(o, item, std::string("a ") + field + " entry"));
        start = end + 1;
      }
    }
  };
  collect("labels", labels, true);
  collect("templates", templates, false);
  if (labels.empty()) throw HttpError(400, "no labels: give a form field \"labels\" (comma-separated, or repeated)");
  if (static_cast<int>(labels.size()) > o.max_labels || static_cast<int>(templates.size()) > o.max_labels)
    throw HttpError(413, "more than " + std::to_string(o.max_labels) + " labels or templates");
  if (templates.empty()) templates.push_back("a photo of a {}.");
  for (const auto& t : templates)
    if (t.find("{}") == std::string::npos) throw HttpError(400, "template \"" + t + "\" has no \"{}\" for the label");
  check_prompt_sizes(o, labels, templates);
  const torch::Tensor image = encode_uploads(s, o, files);
  const torch::Tensor weights = s.embedder().zero_shot_weights(labels, templates);
  const torch::Tensor probs =
      torch::softmax(std::exp(s.model().logit_scale()) * torch::matmul(image, weights.to(image.device())), 1)
          .to(torch::kCPU);
  std::vector<std::pair<float, std::string>> ranked;
  for (size_t i = 0; i < labels.size(); ++i)
    ranked.push_back({probs[0][static_cast<int64_t>(i)].item<float>(), labels[i]});
  std::stable_sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  json out = json::array();
  for (const auto& [p, label] : ranked) out.push_back({{"label", label}, {"probability", p}});
  send_json(res, 200, {{"image", files[0]->filename}, {"labels", out}});
}

void handle_search_text(const Loaded& s, const ServerOptions& o, const Request& req, Response& res) {
  const index::ImageIndex& idx = require_index(s);
  if (!req.has_param("q")) throw HttpError(400, "missing the query parameter q (GET /search?q=a+dog&k=10)");
  const std::string q = checked_text(o, req.param("q"), "the query q");
  const int k = k_of(o, req);
  const auto hits = idx.search(s.embedder().embed_texts({q}), k);
  send_json(res, 200, {{"query", q}, {"k", k}, {"results", hits_json(idx, hits)}});
}

void handle_search_image(const Loaded& s, const ServerOptions& o, const Request& req, Response& res) {
  const index::ImageIndex& idx = require_index(s);
  if (!req.multipart)
    throw HttpError(415, "POST /search takes multipart/form-data with an \"image\" file (search by example)");
  const auto files = uploaded_files(req, {"image"});
  if (files.size() != 1)
    throw HttpError(400,
                    "expected exactly one uploaded file in the field \"image\", found " + std::to_string(files.size()));
  const int k = k_of(o, req);
  const auto hits = idx.search(encode_uploads(s, o, files), k);
  send_json(res, 200, {{"query", {{"image", files[0]->filename}}}, {"k", k}, {"results", hits_json(idx, hits)}});
}

void handle_duplicates(const Loaded& s, const ServerOptions& o, const Request& req, Response& res) {
  const index::ImageIndex& idx = require_index(s);
  float threshold = 0.95f;
  if (req.has_param("threshold")) {
    const std::string text = req.param("threshold");
    char* end = nullptr;
    const double t = text.size() <= 32 ? std::strtod(text.c_str(), &end) : 0.0;
    if (text.empty() || !end || *end || !(t > 0 && t <= 1))
      throw HttpError(400, "threshold \"" + text.substr(0, 32) + "\": expected a cosine in (0, 1]");
    threshold = static_cast<float>(t);
  }
  if (idx.size() > o.max_duplicates_images)
    throw HttpError(413, "the index holds " + std::to_string(idx.size()) + " images; finding duplicates among more than " +
                             std::to_string(o.max_duplicates_images) +
                             " is left to the command line (clip index duplicates)");
  DuplicatesCache& cache = *s.duplicates;
  // One computation at a time (each takes the cores for up to a minute); others are told to retry.
  std::unique_lock<std::mutex> lock(cache.mutex, std::try_to_lock);
  if (!lock.owns_lock())
    throw HttpError(503, "duplicates are being computed for another request; retry in a few seconds");
  auto cached = cache.body_by_threshold.find(threshold);
  if (cached == cache.body_by_threshold.end()) {
    const index::Duplicates d = index::find_duplicates(idx, threshold);
    auto groups = [&](const std::vector<index::DuplicateGroup>& list, bool exact) {
      json out = json::array();
      for (const auto& g : list) {
        json members = json::array();
        for (const auto& m : g.members) {
          json member = {{"id", m.id},
                         {"path", m.path},
                         {"name", display_name(idx, m.path)},
                         {"url", "/images/" + std::to_string(m.id)}};
          if (!exact) member["best_score"] = m.best_score;
          members.push_back(member);
        }
        out.push_back(exact ? json{{"sha256", g.sha256}, {"members", members}} : json{{"members", members}});
      }
      return out;
    };
    const json body = {{"threshold", threshold},
                       {"images", idx.size()},
                       {"exact", groups(d.exact, true)},
                       {"near", groups(d.near, false)}};
    if (cache.body_by_threshold.size() >= 8) cache.body_by_threshold.clear();  // bounded
    cached = cache.body_by_threshold.emplace(threshold, body.dump(-1, ' ', false, json::error_handler_t::replace)).first;
  }
  res.set_content(cached->second, "application/json");
}

void handle_image(const Loaded& s, const ServerOptions& o, const Request& req, Response& res) {
  const index::ImageIndex& idx = require_index(s);
  // The route only matches digits; ids are rows of the index, so only indexed files are served.
  const std::string& id_text = req.path_id;
  int64_t id = -1;
  try {
    id = id_text.size() <= 18 ? std::stoll(id_text) : -1;
  } catch (const std::exception&) {
    id = -1;
  }
  if (id < 0 || id >= idx.size())
    throw HttpError(404, "no image " + id_text + " in the index (ids are 0.." + std::to_string(idx.size() - 1) + ")");
  const std::string path = idx.record(id).path;
  std::string encoded;
  try {
    // A regular file with the size and mtime it had when indexed (or the member of its shard).
    encoded = idx.read_image(id);
  } catch (const Error& e) {
    throw HttpError(404, "image " + id_text + " can no longer be read: " + e.what());
  }
  std::string png;
  try {
    // The upload limit does not apply: the file was accepted when it was indexed.
    png = make_thumbnail(encoded, path, o.thumbnail_size, image::kDefaultMaxPixels);
  } catch (const Error&) {
    // The decoder's message may quote the file's first bytes: not for a client to read.
    throw HttpError(404, "image " + id_text + " can no longer be decoded");
  }
  res.set_header("Cache-Control", "max-age=300");
  res.set_content(png, "image/png");
}

}  // namespace clip::serve
