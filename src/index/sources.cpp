#include "index/sources.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <system_error>

#include "clip/error.h"
#include "index/csv_paths.h"

namespace fs = std::filesystem;

namespace clip::index {

bool has_image_extension(const std::string& path) {
  std::string ext = fs::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".webp" || ext == ".bmp" || ext == ".gif";
}

Source source_from_argument(const std::string& argument, const std::string& csv_column) {
  if (argument.empty()) throw Error("--images: empty path (expected a folder or a .csv file)");
  std::error_code ec;
  const fs::path p(argument);
  const auto status = fs::status(p, ec);
  const bool tar_like = argument.find(".tar") != std::string::npos || argument.find('{') != std::string::npos;
  if (ec || !fs::exists(status)) {
    if (tar_like)
      throw Error("--images " + argument + ": WebDataset tar shards are not supported by `clip index` yet "
                  "(give a folder or a .csv file)");
    throw Error("--images " + argument + ": no such file or folder");
  }
  Source s;
  s.path = fs::canonical(p, ec).string();
  if (ec) throw Error("--images " + argument + ": cannot resolve the path: " + ec.message());
  if (fs::is_directory(status)) {
    if (!csv_column.empty()) throw Error("--csv-column is only for a .csv --images, but " + argument + " is a folder");
    s.kind = "dir";
    return s;
  }
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  if (fs::is_regular_file(status) && ext == ".csv") {
    s.kind = "csv";
    s.csv_column = csv_column;
    return s;
  }
  if (tar_like)
    throw Error("--images " + argument + ": WebDataset tar shards are not supported by `clip index` yet "
                "(give a folder or a .csv file)");
  throw Error("--images " + argument + ": expected a folder of images or a .csv file of image paths");
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
  } else {
    throw Error("index source kind \"" + source.kind + "\": expected \"dir\" or \"csv\"");
  }
  std::sort(out.files.begin(), out.files.end());
  out.files.erase(std::unique(out.files.begin(), out.files.end()), out.files.end());
  return out;
}

}  // namespace clip::index
