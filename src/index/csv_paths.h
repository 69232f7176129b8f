// The image paths of a CSV file (RFC 4180: a header row, comma-separated fields, fields quoted
// with "..." where "" is a quote; CRLF or LF line ends).
#pragma once

#include <string>
#include <vector>

namespace clip::index {

struct CsvPath {
  std::string path;  // as written in the file (relative to the CSV's folder unless absolute)
  int line = 0;      // 1-based line of the row, for messages
};

// The cells of `column` (or, when column is empty, of the first header among "path", "filepath",
// "image"). Throws clip::Error naming the file and line for malformed CSV, a missing column (listing
// the header), or a row without that column.
std::vector<CsvPath> read_csv_paths(const std::string& csv_path, const std::string& column);

}  // namespace clip::index
