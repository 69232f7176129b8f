// Uses the installed CLIP++ as any program would (one header, ClipPP::clip): tokenizes and embeds a
// caption with the tiny test model, and compares both with what OpenAI's CLIP code computed for it
// (the reference outputs of the fixtures, ref/tiny-vit-f16). Prints what it compared; exit status
// 0 when both match, 1 otherwise.
//
// Usage: consumer MODEL.safetensors MODEL.config.json REF_DIR
#include <clip/clip.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

// Row 0 of REF_DIR's arrays is this caption (index.json: captions[0]).
constexpr const char* kCaption = "a photo of an astronaut.";

// The first row of a 2-D little-endian .npy array (format 1.0) whose dtype is `descr`.
template <class T>
std::vector<T> npy_first_row(const std::string& path, const char* descr) {
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (bytes.size() < 10 || bytes.compare(0, 6, "\x93NUMPY") != 0 || bytes[6] != 1)
    throw std::runtime_error(path + ": not a .npy file of format 1.0");
  const size_t header_size = static_cast<unsigned char>(bytes[8]) | static_cast<unsigned char>(bytes[9]) << 8;
  const std::string header = bytes.substr(10, header_size);
  if (header.find(std::string("'descr': '") + descr + "'") == std::string::npos ||
      header.find("'fortran_order': False") == std::string::npos)
    throw std::runtime_error(path + ": expected a C-order array of " + descr + ", found " + header);
  const size_t comma = header.find(',', header.find("'shape': ("));
  const size_t columns = std::stoul(header.substr(comma + 1));
  if (bytes.size() < 10 + header_size + columns * sizeof(T)) throw std::runtime_error(path + ": truncated");
  std::vector<T> row(columns);
  std::memcpy(row.data(), bytes.data() + 10 + header_size, columns * sizeof(T));
  return row;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: consumer MODEL.safetensors MODEL.config.json REF_DIR\n");
    return 2;
  }
  const std::string ref_dir = argv[3];
  try {
    clip::set_threads(2);
    clip::LoadOptions options;
    options.config_path = argv[2];
    const clip::Model model = clip::Model::load(argv[1], options);
    const clip::Embedder embedder(model);

    const clip::TokenBatch tokens = embedder.tokenizer().tokenize({kCaption}, model.config().context_length);
    const std::vector<int32_t> ref_tokens = npy_first_row<int32_t>(ref_dir + "/text_tokens.npy", "<i4");
    const bool tokens_match = std::equal(tokens.begin(), tokens.end(), ref_tokens.begin(), ref_tokens.end());
    std::printf("tokens:");
    for (size_t i = 0; i < tokens.size() && tokens.data()[i] != 0; ++i)
      std::printf(" %lld", static_cast<long long>(tokens.data()[i]));
    std::printf(" (%s the reference)\n", tokens_match ? "equal to" : "DIFFERENT FROM");

    const torch::Tensor features = embedder.embed_texts({kCaption})[0];
    const std::vector<float> ref = npy_first_row<float>(ref_dir + "/text_features.npy", "<f4");
    const torch::Tensor ref_features = torch::tensor(ref);
    // The parity tests' tolerance (tests/model/model_parity_test.cpp).
    const double max_diff = (features - ref_features).abs().max().item<double>();
    const double allowed = 1e-4 * std::max(1.0, ref_features.abs().max().item<double>());
    const double cosine = torch::cosine_similarity(features, ref_features, 0).item<double>();
    const bool features_match = features.numel() == ref_features.numel() && max_diff <= allowed && cosine >= 0.99999;
    std::printf("text features: %lld values, max|diff| %.2e (allowed %.2e), cosine %.7f (%s)\n",
                static_cast<long long>(features.numel()), max_diff, allowed, cosine,
                features_match ? "match" : "DO NOT MATCH");
    return tokens_match && features_match ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
