// `clip tokenize`: prints the token ids of texts (arguments, or one text a line from stdin).
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "clip/error.h"
#include "clip/tokenizer.h"

namespace clip::cli {
namespace {

struct TokenizeOptions {
  std::vector<std::string> texts;
  int context_length = 77;
  bool no_truncate = false;
  bool json = false;
  bool pad = false;
  std::string vocab;
  int threads = 1;
};

std::vector<std::string> gather_texts(const std::vector<std::string>& args) {
  std::vector<std::string> texts;
  for (const std::string& a : args) {
    if (a != "-") {
      texts.push_back(a);
      continue;
    }
    std::string line;
    while (std::getline(std::cin, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      texts.push_back(line);
    }
  }
  return texts;
}

void run_tokenize(const TokenizeOptions& o) {
  const Tokenizer tok = o.vocab.empty() ? Tokenizer() : Tokenizer::from_path(o.vocab);
  const std::vector<std::string> texts = gather_texts(o.texts);
  const TokenBatch batch = tok.tokenize(texts, o.context_length, !o.no_truncate, o.threads);
  auto row_ids = [&](int64_t r) {
    const int64_t* row = batch.row(r);
    int64_t len = batch.context_length;
    if (!o.pad)
      while (len > 0 && row[len - 1] == 0) --len;
    return std::vector<int64_t>(row, row + len);
  };
  if (o.json) {
    nlohmann::json out = nlohmann::json::array();
    for (int64_t r = 0; r < batch.rows; ++r) {
      const std::vector<int32_t> ids = tok.encode(texts[static_cast<size_t>(r)]);
      out.push_back({{"text", nlohmann::json(texts[static_cast<size_t>(r)])},
                     {"ids", ids},
                     {"n_ids", ids.size()},
                     {"row", row_ids(r)}});
    }
    std::cout << out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return;
  }
  for (int64_t r = 0; r < batch.rows; ++r) {
    const std::vector<int64_t> ids = row_ids(r);
    for (size_t i = 0; i < ids.size(); ++i) std::cout << (i ? " " : "") << ids[i];
    std::cout << "\n";
  }
}

}  // namespace

void register_tokenize(CLI::App& app) {
  auto o = std::make_shared<TokenizeOptions>();
  CLI::App* cmd = app.add_subcommand("tokenize", "Print the token ids of texts ('-' reads one text a line from stdin)");
  cmd->add_option("texts", o->texts, "Texts to tokenize, or - for standard input")->required();
  cmd->add_option("--context-length", o->context_length, "Row length with start, end and padding")
      ->check(CLI::Range(2, 1 << 20));
  cmd->add_flag("--no-truncate", o->no_truncate, "Fail on a text longer than the context instead of truncating");
  cmd->add_flag("--json", o->json, "Print JSON: text, ids (no start/end), row (model input)");
  cmd->add_flag("--pad", o->pad, "Print rows with their zero padding");
  cmd->add_option("--vocab", o->vocab,
                  "Vocabulary: OpenAI .txt.gz, or Hugging Face vocab.json (merges.txt beside it) or its folder "
                  "(default: the shipped OpenAI vocabulary)");
  cmd->add_option("--threads", o->threads, "Threads (0: all cores)")->check(CLI::Range(0, 1024));
  cmd->callback([o] { run_tokenize(*o); });
}

}  // namespace clip::cli
