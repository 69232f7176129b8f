// WebDataset tar shards: brace expansion of shard patterns, and a streaming reader that groups
// consecutive tar members (read by read_tar, src/data/tar.cpp) into samples by key.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>

#include "clip/data.h"
#include "clip/error.h"

namespace clip::data {
namespace {

// Past this many names a pattern is a mistake, not a shard list.
constexpr size_t kMaxExpansion = 1000000;

// The index of the '}' matching the '{' at `open`, or npos.
size_t matching_brace(const std::string& s, size_t open) {
  int depth = 0;
  for (size_t i = open; i < s.size(); ++i) {
    if (s[i] == '{') ++depth;
    if (s[i] == '}' && --depth == 0) return i;
  }
  return std::string::npos;
}

bool all_digits(const std::string& s) {
  return !s.empty() && s.size() <= 18 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// The alternatives inside one pair of braces: "a,b,{c,d}" split at top-level commas, or a range
// "000..099" (zero-padded to the wider bound when either bound has a leading zero).
std::vector<std::string> alternatives(const std::string& body, const std::string& pattern) {
  const size_t dots = body.find("..");
  if (body.find(',') == std::string::npos && dots != std::string::npos && body.find('{') == std::string::npos) {
    const std::string a = body.substr(0, dots), b = body.substr(dots + 2);
    if (!all_digits(a) || !all_digits(b))
      throw Error("shard pattern \"" + pattern + "\": range {" + body + "} must be two non-negative integers");
    const long long lo = std::strtoll(a.c_str(), nullptr, 10), hi = std::strtoll(b.c_str(), nullptr, 10);
    const size_t count = static_cast<size_t>((hi >= lo ? hi - lo : lo - hi) + 1);
    if (count > kMaxExpansion) throw Error("shard pattern \"" + pattern + "\": range {" + body + "} is too large");
    const bool padded = (a.size() > 1 && a[0] == '0') || (b.size() > 1 && b[0] == '0');
    const size_t width = padded ? std::max(a.size(), b.size()) : 0;
    std::vector<std::string> out;
    for (size_t k = 0; k < count; ++k) {
      std::string s = std::to_string(hi >= lo ? lo + static_cast<long long>(k) : lo - static_cast<long long>(k));
      if (s.size() < width) s.insert(0, width - s.size(), '0');
      out.push_back(s);
    }
    return out;
  }
  std::vector<std::string> out;
  int depth = 0;
  std::string cur;
  for (char c : body) {
    if (c == '{') ++depth;
    if (c == '}') --depth;
    if (c == ',' && depth == 0) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

void expand_into(const std::string& s, const std::string& pattern, std::vector<std::string>& out) {
  const size_t open = s.find('{');
  if (open == std::string::npos) {
    if (s.find('}') != std::string::npos) throw Error("shard pattern \"" + pattern + "\": '}' without a matching '{'");
    out.push_back(s);
    if (out.size() > kMaxExpansion) throw Error("shard pattern \"" + pattern + "\" expands to too many names");
    return;
  }
  if (s.substr(0, open).find('}') != std::string::npos)
    throw Error("shard pattern \"" + pattern + "\": '}' without a matching '{'");
  const size_t close = matching_brace(s, open);
  if (close == std::string::npos) throw Error("shard pattern \"" + pattern + "\": '{' without a matching '}'");
  const std::string body = s.substr(open + 1, close - open - 1);
  if (body.empty()) throw Error("shard pattern \"" + pattern + "\": empty braces {}");
  const std::string prefix = s.substr(0, open), suffix = s.substr(close + 1);
  for (const std::string& alt : alternatives(body, pattern)) expand_into(prefix + alt + suffix, pattern, out);
}

std::string base_name(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// One sample being assembled from consecutive members with the same key.
struct Sample {
  std::string key;
  Example ex;
  bool has_label_file = false;
};

// Fills the example from one member; a member it cannot use sets the error.
void add_member(Sample& s, const std::string& ext, std::string data) {
  Example& ex = s.ex;
  if (is_image_member_type(ext)) {
    if (!ex.image_bytes.empty()) {
      ex.error = "more than one image in the sample (." + ext + ")";
      return;
    }
    ex.image_bytes = std::move(data);
  } else if (ext == "txt") {
    while (!data.empty() && (data.back() == '\n' || data.back() == '\r')) data.pop_back();
    ex.captions.push_back(std::move(data));
  } else if (ext == "json") {
    const nlohmann::json j = nlohmann::json::parse(data, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      ex.error = "the .json member is not a JSON object";
      return;
    }
    if (j.contains("caption")) {
      if (!j["caption"].is_string()) {
        ex.error = "\"caption\" in the .json member is not a string";
        return;
      }
      ex.captions.push_back(j["caption"].get<std::string>());
    }
    if (j.contains("captions")) {
      if (!j["captions"].is_array()) {
        ex.error = "\"captions\" in the .json member is not a list";
        return;
      }
      for (const auto& c : j["captions"]) {
        if (!c.is_string()) {
          ex.error = "\"captions\" in the .json member holds a non-string";
          return;
        }
        ex.captions.push_back(c.get<std::string>());
      }
    }
  } else if (ext == "cls") {
    std::string t = data;
    while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) t.pop_back();
    char* end = nullptr;
    const long v = std::strtol(t.c_str(), &end, 10);
    if (t.empty() || *end != '\0' || v < 0 || v > 1000000000) {
      ex.error = "the .cls member \"" + t.substr(0, 40) + "\" is not a non-negative integer";
      return;
    }
    ex.label = static_cast<int>(v);
    s.has_label_file = true;
  }
  // Other members (.__key__, metadata) are ignored, as WebDataset's decoders do.
}

// Checks a complete sample before it is handed out.
Example finish(Sample&& s) {
  Example& ex = s.ex;
  if (ex.ok()) {
    if (ex.image_bytes.empty()) ex.error = "no image member (.jpg, .jpeg, .png or .webp)";
    else if (ex.captions.empty() && !s.has_label_file) ex.error = "no caption (.txt or .json) and no label (.cls)";
    else
      for (const auto& c : ex.captions)
        if (c.find_first_not_of(" \t\r\n") == std::string::npos) ex.error = "empty caption";
  }
  return std::move(ex);
}

// Reads one shard; returns false when the visitor asked to stop.
bool read_shard(const std::string& shard, const std::function<bool(Example&&)>& visit) {
  const std::string name = base_name(shard);
  Sample cur;
  bool have = false, stopped = false;
  // Makes `key` the current sample, handing out the previous one; false when the visitor stopped.
  auto begin_sample = [&](const std::string& key) {
    if (have && key == cur.key) return true;
    if (have && !visit(finish(std::move(cur)))) return false;
    cur = Sample();
    cur.key = key;
    cur.ex.source = name + ":" + key;
    have = true;
    return true;
  };
  const TarEnd end = read_tar(shard, [&](TarMember&& m) {
    const MemberName n = split_member_name(m.name);
    if (!begin_sample(n.key)) {
      stopped = true;
      return false;
    }
    if (!cur.ex.ok()) return true;
    if (!m.error.empty()) cur.ex.error = m.error;
    else add_member(cur, n.type, std::move(m.data));
    return true;
  });
  if (stopped) return false;
  auto fail = [&](const std::string& why) {
    Example ex;
    ex.source = name;
    ex.error = why;
    return visit(std::move(ex));
  };
  if (!end.opened) return fail("cannot open the shard " + shard + ": " + end.error);
  if (end.ok()) return !have || visit(finish(std::move(cur)));
  const std::string why = "corrupt shard " + shard + ": " + end.error + " (the rest of the shard is skipped)";
  if (!end.member.empty()) {
    // The sample loses its truncated member: report the damage with that sample.
    if (!begin_sample(split_member_name(end.member).key)) return false;
    cur.ex.error = why;
    return visit(std::move(cur.ex));
  }
  if (have && !visit(finish(std::move(cur)))) return false;
  return fail(why);
}

}  // namespace

std::vector<std::string> expand_braces(const std::string& pattern) {
  if (pattern.empty()) throw Error("empty shard pattern (expected e.g. shards/{00000..00009}.tar)");
  std::vector<std::string> out;
  expand_into(pattern, pattern, out);
  return out;
}

ShardReader::ShardReader(std::vector<std::string> shards) : shards_(std::move(shards)) {
  if (shards_.empty()) throw Error("no shards given (expected at least one .tar file)");
}

ShardReader::~ShardReader() = default;

void ShardReader::for_each(const std::function<bool(Example&&)>& visit) const {
  for (const std::string& shard : shards_)
    if (!read_shard(shard, visit)) return;
}

}  // namespace clip::data
