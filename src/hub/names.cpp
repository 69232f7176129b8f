// Every spelling of a model name, parsed into a ModelSpec (no file system, no network).
#include <algorithm>
#include <cctype>

#include "clip/error.h"
#include "clip/hub.h"
#include "hub/validate.h"
#include "util/strings.h"

namespace clip::hub {
namespace {

constexpr size_t kMaxNameBytes = 4096;
constexpr const char* kQuickGeluSuffix = "-quickgelu";

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// open_clip's _clean_tag: clip-as-service and immich write tags with dashes.
std::string clean_tag(const std::string& tag) {
  std::string out = lower(tag);
  std::replace(out.begin(), out.end(), '-', '_');
  return out;
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

std::vector<std::string> known_spellings() {
  std::vector<std::string> names;
  for (const PretrainedEntry& e : pretrained_table()) {
    if (!e.openai_name.empty()) names.push_back(e.openai_name);
    names.push_back(e.arch + "/" + e.tag);
  }
  return names;
}

[[noreturn]] void unknown(const std::string& what, const std::string& name) {
  std::string message = "unknown model " + what;
  const std::vector<std::string> near = closest_names(name);
  if (!near.empty()) {
    message += "; closest known: ";
    for (size_t i = 0; i < near.size(); ++i) message += (i ? ", " : "") + near[i];
  }
  message += " (`clip models list` shows all; a Hub repo is written hf-hub:ORG/REPO, a folder local-dir:PATH)";
  throw Error(message, ErrorKind::kNotFound);
}

// The entries of an architecture (case-insensitive), with "-quickgelu" stripped into `quick_gelu`.
std::vector<const PretrainedEntry*> entries_of(std::string arch, bool& quick_gelu) {
  quick_gelu = util::ends_with(lower(arch), kQuickGeluSuffix);
  if (quick_gelu) arch.resize(arch.size() - std::string(kQuickGeluSuffix).size());
  std::vector<const PretrainedEntry*> found;
  for (const PretrainedEntry& e : pretrained_table())
    if (lower(e.arch) == lower(arch) && (!quick_gelu || e.quick_gelu)) found.push_back(&e);
  return found;
}

ModelSpec from_entry(const PretrainedEntry& e, const std::string& name) {
  ModelSpec spec;
  spec.kind = SourceKind::kPretrained;
  spec.repo = e.repo;
  spec.entry = e;
  spec.name = name;
  return spec;
}

// ARCH with TAG; an empty tag takes the architecture's last tag when `default_tag` (clip-retrieval's
// dict(open_clip.list_pretrained())[arch]), else is an error listing the tags.
ModelSpec arch_and_tag(const std::string& arch, const std::string& tag, bool default_tag, const std::string& name) {
  bool quick_gelu = false;
  const std::vector<const PretrainedEntry*> entries = entries_of(arch, quick_gelu);
  if (entries.empty()) unknown("architecture \"" + arch + "\" in \"" + name + "\"", name);
  if (tag.empty()) {
    if (default_tag) return from_entry(*entries.back(), name);
    std::string tags;
    for (const PretrainedEntry* e : entries) tags += (tags.empty() ? "" : ", ") + e->tag;
    throw Error("model \"" + name + "\" names an architecture without a pretrained tag: write " +
                    entries.front()->arch + "/TAG or give --pretrained TAG (tags: " + tags + ")",
                ErrorKind::kNotFound);
  }
  for (const PretrainedEntry* e : entries)
    if (e->tag == clean_tag(tag)) return from_entry(*e, name);
  unknown("tag \"" + tag + "\" for " + arch, entries.front()->arch + "/" + clean_tag(tag));
}

}  // namespace

std::vector<std::string> closest_names(const std::string& name, size_t count) {
  if (name.size() > 256) return {};
  std::string query = lower(name);
  for (const char* separator : {"::", "__"}) {
    const size_t at = query.find(separator);
    if (at != std::string::npos) query = query.substr(0, at) + "/" + query.substr(at + 2);
  }
  std::vector<std::pair<size_t, std::string>> scored;
  for (const std::string& known : known_spellings()) {
    std::string key = lower(known);
    // Compare tags the way they are matched: dashes and underscores alike.
    std::replace(key.begin(), key.end(), '_', '-');
    std::string q = query;
    std::replace(q.begin(), q.end(), '_', '-');
    scored.emplace_back(edit_distance(q, key), known);
  }
  std::stable_sort(scored.begin(), scored.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::string> out;
  for (size_t i = 0; i < scored.size() && out.size() < count; ++i) out.push_back(scored[i].second);
  return out;
}

ModelSpec parse_model_name(const std::string& name, const std::string& pretrained) {
  if (name.empty()) throw Error("--model: empty model name");
  if (name.size() > kMaxNameBytes)
    throw Error("--model: the name has " + std::to_string(name.size()) + " bytes, expected at most " +
                    std::to_string(kMaxNameBytes),
                ErrorKind::kTooLarge);
  for (unsigned char c : name)
    if (c < 0x20 || c == 0x7f) throw Error("--model: the name contains a control character");
  auto no_pretrained = [&](const char* form) {
    if (!pretrained.empty())
      throw Error(std::string("--pretrained ") + pretrained + " does not apply to a " + form + " model (" + name + ")");
  };

  if (util::starts_with(name, "hf-hub:")) {
    no_pretrained("hf-hub:");
    ModelSpec spec;
    spec.kind = SourceKind::kHubRepo;
    spec.name = name;
    std::string rest = name.substr(7);
    const size_t at = rest.find('@');
    if (at != std::string::npos) {
      spec.revision = rest.substr(at + 1);
      rest.resize(at);
      validate_revision(spec.revision, "--model " + name + " (revision)");
    }
    validate_repo_id(rest, "--model " + name + " (repo id)");
    spec.repo = rest;
    // A known repo brings its table row (preprocessing, quick_gelu) along.
    for (const PretrainedEntry& e : pretrained_table())
      if (e.repo == spec.repo) spec.entry = e;
    return spec;
  }
  if (util::starts_with(name, "local-dir:")) {
    no_pretrained("local-dir:");
    ModelSpec spec;
    spec.path = name.substr(10);
    if (spec.path.empty()) throw Error("--model local-dir: needs a folder, e.g. local-dir:/models/ViT-B-32");
    spec.name = name;
    return spec;
  }
  if (util::starts_with(name, "open_clip:")) {  // clip-retrieval
    const std::string rest = name.substr(10);
    const size_t slash = rest.find('/');
    if (slash != std::string::npos) {
      no_pretrained("open_clip:ARCH/TAG");
      return arch_and_tag(rest.substr(0, slash), rest.substr(slash + 1), false, name);
    }
    return arch_and_tag(rest, pretrained, true, name);
  }
  for (const PretrainedEntry& e : pretrained_table()) {
    if (e.openai_name.empty() || lower(e.openai_name) != lower(name)) continue;
    // OpenAI's name alone means OpenAI's weights; with --pretrained, the architecture (as open_clip).
    return pretrained.empty() ? from_entry(e, name) : arch_and_tag(e.arch, pretrained, false, name);
  }
  for (const char* separator : {"::", "__", "/"}) {  // clip-as-service, immich, open_clip
    const size_t at = name.find(separator);
    if (at == std::string::npos) continue;
    no_pretrained("ARCH/TAG");
    return arch_and_tag(name.substr(0, at), name.substr(at + std::string(separator).size()), false, name);
  }
  // open_clip's architecture with --pretrained; OpenAI's "ViT-B/32" spelling too.
  return arch_and_tag(name, pretrained, false, name);
}

}  // namespace clip::hub
