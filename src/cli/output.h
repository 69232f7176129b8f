// Writing embeddings and tables from the `clip` command: .npy or .jsonl, atomically.
#pragma once

#include <string>
#include <vector>

#include <torch/torch.h>

namespace clip::cli {

struct EmbeddingRow {
  std::string kind;   // "image" or "text"
  std::string input;  // the path or the text
};

// Writes `features` [N, D] as float32 .npy, or as JSON lines {"type","input","embedding"} when
// the path ends in .jsonl; anything else is an error naming the path. Atomic.
void write_embeddings(const std::string& path, const torch::Tensor& features, const std::vector<EmbeddingRow>& rows);

// Reads a text file: one entry a line, blank lines skipped, "\r" trimmed.
std::vector<std::string> read_lines(const std::string& path);

// Splits "a,b,c" (entries trimmed, empty ones dropped).
std::vector<std::string> split_commas(const std::string& s);

}  // namespace clip::cli
