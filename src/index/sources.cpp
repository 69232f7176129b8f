#include "index/sources.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <system_error>

#include "clip/data.h"
#include "clip/error.h"
#include "index/csv_paths.h"
#include "index/shard_members.h"
#include "util/strings.h"

namespace fs = std::filesystem;

namespace clip::index {
namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// A shard path or pattern: braces (as in training), or a tar name.
bool names_shards(const std::string& argument) {
  const std::string l = lower(argument);
  return argument.find('{') != std::string::npos || util::ends_with(l, ".tar") || util::ends_with(l, ".tar.gz") ||
         util::ends_with(l, ".tgz");
}

Source shard_source(const std::string& argument, const std::string& csv_column) {
  if (!csv_column.empty())
    throw Error(argument + ": names tar shards, but a CSV column (\"" + csv_column +
                "\") was given; a column is only for a .csv file");
  Source s;
  s.kind = "shards";
  // Absolute, so that `update` finds the shards from any folder; not normalized, since ".." or
  // "/" inside braces belong to the alternatives.
  s.path = argument[0] == '/' ? argument : (fs::current_path() / argument).string();
  const std::vector<std::string> shards = data::expand_braces(s.path);  // checks the pattern
  std::error_code ec;
  for (const std::string& shard : shards)
    if (fs::is_regular_file(shard, ec)) return s;
  throw Error(
      argument + ": no such shard" +
          (shards.size() > 1 ? " (none of the " + std::to_string(shards.size()) + " names of the pattern exists)" : ""),
      ErrorKind::kNotFound);
}

}  // namespace

bool has_image_extension(const std::string& path) {
  const std::string ext = lower(fs::path(path).extension().string());
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".webp" || ext == ".bmp" || ext == ".gif";
}

Source source_from_argument(const std::string& argument, const std::string& csv_column) {
  if (argument.empty()) throw Error("empty path (expected a folder, a .csv file or tar shards)");
  std::error_code ec;
  const fs::path p(argument);
  const auto status = fs::status(p, ec);
  const bool exists = !ec && fs::exists(status);
  if (names_shards(argument) && !(exists && fs::is_directory(status))) return shard_source(argument, csv_column);
  if (!exists) throw Error(argument + ": no such file or folder", ErrorKind::kNotFound);
  Source s;
  s.path = fs::canonical(p, ec).string();
  if (ec) throw Error(argument + ": cannot resolve the path: " + ec.message(), ErrorKind::kIo);
  if (fs::is_directory(status)) {
    if (!csv_column.empty())
      throw Error(argument + ": is a folder, but a CSV column (\"" + csv_column +
                  "\") was given; a column is only for a .csv file");
    s.kind = "dir";
    return s;
  }
  if (fs::is_regular_file(status) && lower(p.extension().string()) == ".csv") {
    s.kind = "csv";
    s.csv_column = csv_column;
    return s;
  }
  throw Error(
      argument +
      ": expected a folder of images, a .csv file of image paths, or tar shards (x.tar, shards/{00000..00009}.tar)");
}

SourceListing list_source(const Source& source) {
  SourceListing out;
  if (source.kind == "dir") {
    std::error_code ec;
    // Symlinked folders are not followed (they can form loops); symlinked files are.
    fs::recursive_directory_iterator it(source.path, fs::directory_options::skip_permission_denied, ec);
    if (ec) throw Error(source.path + ": cannot list the folder: " + ec.message());
    for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (ec) throw Error(source.path + ": error while listing the folder: " + ec.message());
      const fs::path& p = it->path();
      std::error_code fec;
      if (!it->is_regular_file(fec)) continue;
      if (has_image_extension(p.string())) out.files.push_back(p.lexically_normal().string());
      else ++out.ignored;
    }
  } else if (source.kind == "csv") {
    const fs::path base = fs::path(source.path).parent_path();
    for (const CsvPath& row : read_csv_paths(source.path, source.csv_column)) {
      const std::string where = source.path + ":" + std::to_string(row.line);
      if (row.path.empty()) {
        out.missing.push_back({where, "empty path in the CSV row"});
        continue;
      }
      const fs::path p = fs::path(row.path).is_absolute() ? fs::path(row.path) : base / row.path;
      const std::string abs = p.lexically_normal().string();
      std::error_code ec;
      if (!fs::is_regular_file(p, ec)) {
        out.missing.push_back({abs, "no such file (listed at " + where + ")"});
        continue;
      }
      out.files.push_back(abs);
    }
  } else if (source.kind == "shards") {
    std::error_code ec;
    for (const std::string& name : data::expand_braces(source.path)) {
      if (!fs::is_regular_file(name, ec)) {
        out.missing.push_back({name, "no such shard (named by the pattern " + source.path + ")"});
        continue;
      }
      const std::string shard = fs::canonical(name, ec).string();
      if (ec) {
        out.missing.push_back({name, "cannot resolve the shard's path: " + ec.message()});
      } else if (shard.find(kMemberSeparator) != std::string::npos) {
        out.missing.push_back({shard, std::string("the shard's path holds '") + kMemberSeparator +
                                          "', which separates the shard from the member in the index's paths"});
      } else {
        out.files.push_back(shard);
      }
    }
  } else {
    throw Error("index source kind \"" + source.kind + "\": expected \"dir\", \"csv\" or \"shards\"");
  }
  std::sort(out.files.begin(), out.files.end());
  out.files.erase(std::unique(out.files.begin(), out.files.end()), out.files.end());
  return out;
}

}  // namespace clip::index
