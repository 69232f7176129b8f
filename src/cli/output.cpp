#include "cli/output.h"

#include <nlohmann/json.hpp>

#include "clip/error.h"
#include "util/file_io.h"
#include "util/npy.h"
#include "util/strings.h"

namespace clip::cli {
namespace {
std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n"), e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}
}  // namespace

void write_embeddings(const std::string& path, const torch::Tensor& features, const std::vector<EmbeddingRow>& rows) {
  const torch::Tensor f = features.to(torch::kCPU, torch::kFloat32).contiguous();
  if (util::ends_with(path, ".npy")) {
    util::write_npy(path, "<f4", {f.size(0), f.size(1)}, f.data_ptr<float>(), static_cast<size_t>(f.nbytes()));
    return;
  }
  if (!util::ends_with(path, ".jsonl"))
    throw Error("--out " + path + ": expected a file name ending in .npy or .jsonl");
  std::string out;
  for (int64_t i = 0; i < f.size(0); ++i) {
    const float* row = f[i].data_ptr<float>();
    nlohmann::json j = {
        {"type", rows[i].kind}, {"input", rows[i].input}, {"embedding", std::vector<float>(row, row + f.size(1))}};
    out += j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  }
  util::write_file_atomic(path, out);
}

std::vector<std::string> read_lines(const std::string& path) {
  std::vector<std::string> lines;
  for (std::string line : util::split_lines(util::read_file(path))) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!trim(line).empty()) lines.push_back(line);
  }
  return lines;
}

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(',', start);
    if (end == std::string::npos) end = s.size();
    const std::string item = trim(s.substr(start, end - start));
    if (!item.empty()) out.push_back(item);
    start = end + 1;
  }
  return out;
}

}  // namespace clip::cli
