#include "serve/embed_inputs.h"

#include <algorithm>
#include <charconv>
#include <cstring>

#include "clip/error.h"

namespace clip::serve {

namespace {

// Token ids [N, context] through the model, in a batch with concurrent requests' (InferenceBatcher).
torch::Tensor encode_text_batched(const LoadedModel& m, const torch::Tensor& ids) {
  return m.batcher.run(InferenceBatcher::Kind::kText, ids, [&m](const torch::Tensor& t) { return m.model.encode_text(t); });
}

}  // namespace

torch::Tensor embed_texts_normalized(const LoadedModel& m, const std::vector<std::string>& texts) {
  const TokenBatch tokens = m.embedder.tokenizer().tokenize(texts, m.model.config().context_length, true, 1);
  const torch::Tensor ids =
      torch::from_blob(tokens.ids.get(), {tokens.rows, tokens.context_length}, torch::kInt64).clone();
  return normalize_rows(encode_text_batched(m, ids));
}

torch::Tensor embed_token_ids_normalized(const LoadedModel& m, const std::vector<std::vector<int64_t>>& ids,
                                         const std::string& what) {
  const int64_t context = m.model.config().context_length;
  const int64_t vocab = static_cast<int64_t>(m.embedder.tokenizer().vocab_size());
  torch::Tensor tokens = torch::zeros({static_cast<int64_t>(ids.size()), context}, torch::kInt64);
  auto rows = tokens.accessor<int64_t, 2>();
  for (size_t i = 0; i < ids.size(); ++i) {
    const std::string name = what + "[" + std::to_string(i) + "]";
    if (ids[i].empty()) throw HttpError(400, name + " is an empty token array");
    if (static_cast<int64_t>(ids[i].size()) > context - 2)
      throw HttpError(400, name + " has " + std::to_string(ids[i].size()) + " tokens; this model reads at most " +
                               std::to_string(context - 2) + " (its context of " + std::to_string(context) +
                               " less the start and end tokens)");
    rows[static_cast<int64_t>(i)][0] = m.embedder.tokenizer().sot_id();
    for (size_t j = 0; j < ids[i].size(); ++j) {
      if (ids[i][j] < 0 || ids[i][j] >= vocab)
        throw HttpError(400, name + "[" + std::to_string(j) + "] = " + std::to_string(ids[i][j]) +
                                 ": not a token id of this model (0.." + std::to_string(vocab - 1) + ")");
      rows[static_cast<int64_t>(i)][static_cast<int64_t>(j + 1)] = ids[i][j];
    }
    rows[static_cast<int64_t>(i)][static_cast<int64_t>(ids[i].size() + 1)] = m.embedder.tokenizer().eot_id();
  }
  return normalize_rows(encode_text_batched(m, tokens));
}

int64_t text_token_count(const LoadedModel& m, const std::string& text) {
  const int64_t n = static_cast<int64_t>(m.embedder.tokenizer().encode(text).size()) + 2;
  return std::min<int64_t>(n, m.model.config().context_length);
}

torch::Tensor embed_images_normalized(const LoadedModel& m, const ServerOptions& o,
                                      const std::vector<std::string>& encoded, const std::vector<std::string>& labels,
                                      std::vector<image::SourceInfo>* sources) {
  image::PreprocessOptions pre = m.embedder.preprocess_options();
  pre.decode.max_pixels = o.max_pixels;
  const int64_t r = pre.size;
  torch::Tensor batch = torch::empty({static_cast<int64_t>(encoded.size()), 3, r, r});
  for (size_t i = 0; i < encoded.size(); ++i) {
    try {
      const image::Preprocessed p = image::preprocess(encoded[i], labels[i], pre);
      std::memcpy(batch[static_cast<int64_t>(i)].data_ptr<float>(), p.input.data(), sizeof(float) * 3 * r * r);
      if (sources) sources->push_back(p.source);
    } catch (const Error& e) {
      throw HttpError(e.kind() == ErrorKind::kTooLarge ? 413 : 400, e.what());  // the input, not the server
    }
  }
  return normalize_rows(m.batcher.run(InferenceBatcher::Kind::kImage, batch,
                                      [&m](const torch::Tensor& x) { return m.model.encode_image(x.to(m.model.device())); }));
}

std::string float_array_text(const float* values, size_t n) {
  std::string out = "[";
  char buf[32];
  for (size_t i = 0; i < n; ++i) {
    if (i) out += ',';
    const auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), values[i]);
    out.append(buf, ec == std::errc() ? end : buf);
  }
  out += ']';
  return out;
}

}  // namespace clip::serve
