// Tokenizer throughput beside the PyTorch peer's pure-Python BPE, in one run on the same lines.
//
//   bench_tokenizer [--corpus corpus.json] [--repeat 200] [--runs 5] [--peer torch_clip.py]
//                   [--python /usr/bin/python3] [--json out.json]
//
// The corpus texts are repeated `repeat` times, one text a line (characters Python's
// splitlines() breaks on become spaces, so both sides see the same lines). Each side does one
// pass with a fresh tokenizer (its cache filling as it goes), like the peer's bench-tokenizer.
// Ours also runs ftfy repairs, which the peer skips. Medians over `runs`.
#include <unistd.h>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "clip/tokenizer.h"
#include "text/utf8.h"
#include "util/file_io.h"

namespace {

using clip::bench::median;
using clip::bench::run_command;

using Clock = std::chrono::steady_clock;

bool is_python_line_break(char32_t c) {
  return c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || (c >= 0x1C && c <= 0x1E) || c == 0x85 || c == 0x2028 ||
         c == 0x2029;
}

struct Figures {
  double seconds = 0, texts_per_s = 0, tokens_per_s = 0, mb_per_s = 0;
  size_t tokens = 0;
};

}  // namespace

int main(int argc, char** argv) {
  std::string corpus_path = std::string(CLIP_SOURCE_DIR) + "/tests/data/tokenizer/corpus.json";
  std::string peer = std::string(CLIP_SOURCE_DIR) + "/../shared/peer/torch_clip.py";
  std::string python = "/usr/bin/python3", json_out;
  int repeat = 200, runs = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--corpus") corpus_path = v;
    else if (a == "--repeat") repeat = std::stoi(v);
    else if (a == "--runs") runs = std::stoi(v);
    else if (a == "--peer") peer = v;
    else if (a == "--python") python = v;
    else if (a == "--json") json_out = v;
    else {
      std::cerr << "unknown flag " << a << "\n";
      return 2;
    }
  }
  const auto corpus = nlohmann::json::parse(clip::util::read_file(corpus_path));
  std::vector<std::string> base;
  for (const auto& e : corpus["entries"]) {
    std::u32string t = clip::text::utf8_to_u32(e["text"].get<std::string>());
    for (char32_t& c : t)
      if (is_python_line_break(c)) c = U' ';
    base.push_back(clip::text::u32_to_utf8(t));
  }
  std::vector<std::string> lines;
  std::string file_text;
  size_t bytes = 0;
  for (int r = 0; r < repeat; ++r)
    for (const auto& t : base) {
      lines.push_back(t);
      file_text += t + "\n";
      bytes += t.size();
    }
  const std::string lines_path = "/tmp/clip_bench_tokenizer_" + std::to_string(::getpid()) + ".txt";
  clip::util::write_file_atomic(lines_path, file_text);
  const std::string vocab = clip::Tokenizer::default_vocab_path();

  // Ours, one thread: a fresh tokenizer per run, one pass (cache filling as it goes).
  std::vector<double> times;
  size_t tokens = 0;
  for (int r = 0; r < runs; ++r) {
    const clip::Tokenizer tok = clip::Tokenizer::from_openai_bpe(vocab);
    const auto t0 = Clock::now();
    size_t n = 0;
    for (const auto& s : lines) n += tok.encode(s).size();
    times.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    tokens = n;
  }
  Figures ours;
  ours.seconds = median(times);
  ours.tokens = tokens;
  ours.texts_per_s = lines.size() / ours.seconds;
  ours.tokens_per_s = tokens / ours.seconds;
  ours.mb_per_s = bytes / 1e6 / ours.seconds;

  // Ours, the batch API (rows of 77) on 1 thread and on all cores.
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  nlohmann::json batch_figures = nlohmann::json::object();
  for (int threads : {1, cores}) {
    std::vector<double> bt;
    for (int r = 0; r < runs; ++r) {
      const clip::Tokenizer tok = clip::Tokenizer::from_openai_bpe(vocab);
      const auto t0 = Clock::now();
      tok.tokenize(lines, 77, true, threads);
      bt.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    }
    batch_figures[std::to_string(threads) + "_threads_texts_per_s"] = lines.size() / median(bt);
  }

  // The peer, same lines, same vocabulary, in this run.
  std::vector<double> peer_tps, peer_mbps;
  nlohmann::json peer_last;
  for (int r = 0; r < runs; ++r) {
    try {
      const std::string out =
          run_command(python + " " + peer + " bench-tokenizer " + vocab + " " + lines_path + " 2>&1");
      peer_last = nlohmann::json::parse(out.substr(out.find('{')));
      peer_tps.push_back(peer_last["tokens_per_s"].get<double>());
      peer_mbps.push_back(peer_last["mb_per_s"].get<double>());
    } catch (const std::exception& e) {
      std::cerr << "peer run failed (is python3-torch/python3-regex installed?): " << e.what() << "\n";
      break;
    }
  }
  std::remove(lines_path.c_str());

  std::printf("tokenizer benchmark: %zu texts (%d x corpus), %.2f MB, 1 thread, median of %d runs\n", lines.size(),
              repeat, bytes / 1e6, runs);
  std::printf("%-28s %12s %14s %10s\n", "", "texts/s", "tokens/s", "MB/s");
  std::printf("%-28s %12.0f %14.0f %10.2f\n", "CLIP++ encode (with ftfy)", ours.texts_per_s, ours.tokens_per_s,
              ours.mb_per_s);
  nlohmann::json result = {{"texts", lines.size()},
                           {"bytes", bytes},
                           {"runs", runs},
                           {"ours",
                            {{"texts_per_s", ours.texts_per_s},
                             {"tokens_per_s", ours.tokens_per_s},
                             {"mb_per_s", ours.mb_per_s},
                             {"tokens", ours.tokens}}},
                           {"ours_batch", batch_figures}};
  if (!peer_tps.empty()) {
    const double ptps = median(peer_tps), pmb = median(peer_mbps);
    std::printf("%-28s %12.0f %14.0f %10.2f\n", "peer (Python BPE, no ftfy)",
                ptps / ours.tokens_per_s * ours.texts_per_s, ptps, pmb);
    std::printf("ratio tokens/s CLIP++ / peer: %.1fx (target >= 50x)\n", ours.tokens_per_s / ptps);
    if (peer_last["tokens"].get<size_t>() != ours.tokens)
      std::printf("note: token counts differ (ours %zu, peer %zu): the peer skips ftfy repairs\n", ours.tokens,
                  peer_last["tokens"].get<size_t>());
    result["peer"] = {{"tokens_per_s", ptps}, {"mb_per_s", pmb}, {"tokens", peer_last["tokens"]}};
    result["ratio_tokens_per_s"] = ours.tokens_per_s / ptps;
  }
  for (auto it = batch_figures.begin(); it != batch_figures.end(); ++it)
    std::printf("batch tokenize (77), %-22s %10.0f texts/s\n", it.key().c_str(), it.value().get<double>());
  if (!json_out.empty()) clip::util::write_file_atomic(json_out, result.dump(2) + "\n");
  return 0;
}
