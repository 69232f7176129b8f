#include "serve/openai_api.h"

#include "serve/base64.h"
#include "serve/embed_inputs.h"
#include "serve/image_url_fetch.h"
#include "util/strings.h"

using nlohmann::json;

namespace clip::serve {
namespace {

enum class InputKind { kText, kTokens, kImage };

struct Input {
  InputKind kind = InputKind::kText;
  std::string text;             // kText
  std::vector<int64_t> tokens;  // kTokens
  std::string image;            // kImage: the decoded file (fetched once the request is validated when image_url is set)
  std::string image_url;        // kImage given as an http(s) URL
};

bool is_http_url(const std::string& s) { return util::starts_with(s, "http://") || util::starts_with(s, "https://"); }

// A fetch's failure as an OpenAI error naming the input.
ApiError image_url_error(const ImageUrlError& e, const std::string& where) {
  using Reason = ImageUrlError::Reason;
  const std::string message = where + ": " + e.what();
  switch (e.reason()) {
    case Reason::kInvalid: return ApiError(400, message, "input", "invalid_image_url");
    case Reason::kNotAllowed: return ApiError(400, message, "input", "image_url_not_allowed");
    case Reason::kFailed: return ApiError(400, message, "input", "image_url_fetch_failed");
    case Reason::kTimeout: return ApiError(400, message, "input", "image_url_timeout");
    case Reason::kTooLarge: return ApiError(413, message, "input", "image_too_large");
    case Reason::kBusy: return ApiError(503, message, "input", "image_url_fetches_busy");
  }
  return ApiError(500, message, "input");
}

// Fetches the URL inputs, sequentially, all of them together within the body limit (the most a
// request could have sent inline).
void fetch_image_urls(ImageUrlFetcher& fetcher, const ServerOptions& o, std::vector<Input>& inputs, bool single) {
  uint64_t left = o.max_body_bytes;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i].image_url.empty()) continue;
    const std::string where = single ? "input" : "input[" + std::to_string(i) + "]";
    try {
      inputs[i].image = fetcher.fetch(inputs[i].image_url, left);
    } catch (const ImageUrlError& e) {
      throw image_url_error(e, where);
    }
    left -= inputs[i].image.size();
  }
}

json parse_body(const Request& req) {
  if (media_type(req.content_type) != "application/json")
    throw ApiError(415, "POST /v1/embeddings takes application/json, not \"" + req.content_type + "\"");
  json body = json::parse(req.body, nullptr, false);
  if (body.is_discarded()) throw ApiError(400, "the request body is not valid JSON");
  if (!body.is_object()) throw ApiError(400, "the request body must be a JSON object {\"model\": ..., \"input\": ...}");
  return body;
}

std::vector<int64_t> token_array(const json& a, const std::string& where) {
  std::vector<int64_t> ids;
  for (const json& v : a) {
    if (!v.is_number_integer()) throw ApiError(400, where + " holds something other than integer token ids", "input");
    ids.push_back(v.get<int64_t>());
  }
  return ids;
}

Input string_input(const ServerOptions& o, bool urls_allowed, const std::string& s, const std::string& where) {
  Input in;
  if (s.empty()) throw ApiError(400, where + " is an empty string", "input");
  if (is_data_uri(s)) {
    in.kind = InputKind::kImage;
    try {
      in.image = parse_image_data_uri(s, o.max_body_bytes, where).bytes;
    } catch (const Error& e) {
      throw ApiError(e.kind() == ErrorKind::kTooLarge ? 413 : 400, e.what(), "input");
    }
    return in;
  }
  if (is_http_url(s)) {
    if (!urls_allowed)
      throw ApiError(400,
                     where +
                         " is a URL: this server does not fetch images (that would let requests reach other "
                         "machines; `clip serve --allow-image-urls HOSTS` fetches from those hosts); send the "
                         "image inline as data:image/...;base64,...",
                     "input", "image_urls_not_allowed");
    if (s.size() > static_cast<size_t>(o.max_text_bytes))
      throw ApiError(413,
                     where + ": a URL of " + std::to_string(s.size()) + " bytes, more than the limit of " +
                         std::to_string(o.max_text_bytes),
                     "input");
    in.kind = InputKind::kImage;
    in.image_url = s;
    return in;
  }
  if (static_cast<int>(s.size()) > o.max_text_bytes)
    throw ApiError(413,
                   where + " has " + std::to_string(s.size()) + " bytes, more than the limit of " +
                       std::to_string(o.max_text_bytes),
                   "input");
  in.text = s;
  return in;
}

// input: a string, a list of strings, a token array, or a list of token arrays.
std::vector<Input> parse_inputs(const ServerOptions& o, bool urls_allowed, const json& input) {
  std::vector<Input> out;
  if (input.is_string()) {
    out.push_back(string_input(o, urls_allowed, input.get<std::string>(), "input"));
    return out;
  }
  if (!input.is_array())
    throw ApiError(400, "\"input\" must be a string, an array of strings, or token arrays", "input");
  if (input.empty()) throw ApiError(400, "\"input\" is an empty array", "input");
  if (input.front().is_number()) {
    Input in;
    in.kind = InputKind::kTokens;
    in.tokens = token_array(input, "input");
    out.push_back(std::move(in));
    return out;
  }
  if (static_cast<int>(input.size()) > o.max_texts)
    throw ApiError(413,
                   std::to_string(input.size()) + " inputs, more than the limit of " + std::to_string(o.max_texts) +
                       " per request",
                   "input");
  int images = 0;
  for (size_t i = 0; i < input.size(); ++i) {
    const std::string where = "input[" + std::to_string(i) + "]";
    if (input[i].is_string()) {
      out.push_back(string_input(o, urls_allowed, input[i].get<std::string>(), where));
      if (out.back().kind == InputKind::kImage && ++images > o.max_images)
        throw ApiError(413, "more than " + std::to_string(o.max_images) + " images per request", "input");
    } else if (input[i].is_array()) {
      Input in;
      in.kind = InputKind::kTokens;
      in.tokens = token_array(input[i], where);
      out.push_back(std::move(in));
    } else {
      throw ApiError(400, where + " is neither a string nor a token array", "input");
    }
  }
  return out;
}

}  // namespace

void handle_openai_embeddings(ModelRegistry& models, const ServerOptions& o, ImageUrlFetcher* image_urls,
                              const Request& req, Response& res) {
  const json body = parse_body(req);
  if (!body.contains("model") || !body["model"].is_string())
    throw ApiError(400, "\"model\" is missing or not a string; GET /v1/models lists the served models", "model");
  const std::string requested = body["model"].get<std::string>();
  const std::string name = models.resolve(requested);
  if (name.empty())
    throw ApiError(404, "The model \"" + requested + "\" is not served here; GET /v1/models lists those that are",
                   "model", "model_not_found");
  if (!body.contains("input")) throw ApiError(400, "\"input\" is missing", "input");
  std::string format = "float";
  if (body.contains("encoding_format") && !body["encoding_format"].is_null()) {
    if (!body["encoding_format"].is_string() ||
        (body["encoding_format"] != "float" && body["encoding_format"] != "base64"))
      throw ApiError(400, "\"encoding_format\" must be \"float\" or \"base64\"", "encoding_format");
    format = body["encoding_format"].get<std::string>();
  }
  if (body.contains("user") && !body["user"].is_null() && !body["user"].is_string())
    throw ApiError(400, "\"user\" must be a string", "user");
  std::vector<Input> inputs = parse_inputs(o, image_urls != nullptr, body["input"]);

  const std::shared_ptr<const LoadedModel> model = models.acquire(name);
  const int64_t dim = model->model.config().embed_dim;
  if (body.contains("dimensions") && !body["dimensions"].is_null()) {
    const json& d = body["dimensions"];
    if (!d.is_number_integer() || d.get<int64_t>() < 1)
      throw ApiError(400, "\"dimensions\" must be a positive integer", "dimensions");
    if (d.get<int64_t>() != dim)
      throw ApiError(400,
                     "\"dimensions\": " + std::to_string(d.get<int64_t>()) + " requested, but model \"" + name +
                         "\" gives " + std::to_string(dim) +
                         "-dimensional embeddings only: CLIP features are not trained to be truncated "
                         "(not Matryoshka), so a shorter prefix would not be a meaningful embedding",
                     "dimensions");
  }
  if (image_urls) fetch_image_urls(*image_urls, o, inputs, body["input"].is_string());  // once all else is valid

  // Each kind is computed in one batch, then the rows go back to input order.
  std::vector<std::string> texts, images, labels;
  std::vector<std::vector<int64_t>> token_arrays;
  std::vector<std::pair<InputKind, int64_t>> slot;  // per input: its kind and row in that kind's batch
  int64_t tokens_used = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Input& in = inputs[i];
    if (in.kind == InputKind::kText) {
      slot.emplace_back(in.kind, static_cast<int64_t>(texts.size()));
      texts.push_back(in.text);
      tokens_used += text_token_count(*model, in.text);
    } else if (in.kind == InputKind::kTokens) {
      slot.emplace_back(in.kind, static_cast<int64_t>(token_arrays.size()));
      token_arrays.push_back(in.tokens);
      tokens_used += static_cast<int64_t>(in.tokens.size()) + 2;
    } else {
      slot.emplace_back(in.kind, static_cast<int64_t>(images.size()));
      images.push_back(in.image);
      labels.push_back((in.image_url.empty() ? "the image data URI of input[" : "the image URL of input[") +
                       std::to_string(i) + "]");
    }
  }
  torch::Tensor text_rows, token_rows, image_rows;
  if (!token_arrays.empty()) {
    try {
      token_rows =
          embed_token_ids_normalized(*model, token_arrays, "input").to(torch::kCPU, torch::kFloat).contiguous();
    } catch (const ApiError&) {
      throw;
    } catch (const HttpError& e) {  // a bad token array: OpenAI names the field at fault
      throw ApiError(e.status(), e.what(), "input");
    }
  }
  if (!texts.empty()) text_rows = embed_texts_normalized(*model, texts).to(torch::kCPU, torch::kFloat).contiguous();
  if (!images.empty())
    image_rows = embed_images_normalized(*model, o, images, labels).to(torch::kCPU, torch::kFloat).contiguous();

  json data = json::array();
  for (size_t i = 0; i < slot.size(); ++i) {
    const auto [kind, row] = slot[i];
    const torch::Tensor& rows = kind == InputKind::kText     ? text_rows
                                : kind == InputKind::kTokens ? token_rows
                                                             : image_rows;
    const float* v = rows[row].data_ptr<float>();
    json embedding;
    if (format == "base64")
      embedding = base64_encode(v, sizeof(float) * static_cast<size_t>(dim));  // little-endian float32 (x86, arm64)
    else embedding = std::vector<float>(v, v + dim);
    data.push_back({{"object", "embedding"}, {"index", i}, {"embedding", std::move(embedding)}});
  }
  send_json(res, 200,
            {{"object", "list"},
             {"data", std::move(data)},
             {"model", name},
             {"usage", {{"prompt_tokens", tokens_used}, {"total_tokens", tokens_used}}}});
}

void handle_openai_models(const ModelRegistry& models, int64_t created, Response& res) {
  json data = json::array();
  for (const std::string& name : models.names())
    data.push_back({{"id", name}, {"object", "model"}, {"created", created}, {"owned_by", "clip++"}});
  send_json(res, 200, {{"object", "list"}, {"data", std::move(data)}});
}

Response openai_error(int status, const std::string& message, const std::string& param, const std::string& code) {
  Response res;
  send_json(res, status,
            {{"error",
              {{"message", message},
               {"type", status >= 500 ? "server_error" : "invalid_request_error"},
               {"param", param.empty() ? json(nullptr) : json(param)},
               {"code", code.empty() ? json(nullptr) : json(code)}}}});
  return res;
}

Response as_openai_error(Response generic) {
  const json j = json::parse(generic.body, nullptr, false);
  const std::string message =
      j.is_object() && j.contains("error") && j["error"].is_string() ? j["error"].get<std::string>() : generic.body;
  Response res = openai_error(generic.status, message, "", generic.status == 401 ? "invalid_api_key" : "");
  res.headers = std::move(generic.headers);
  return res;
}

}  // namespace clip::serve
