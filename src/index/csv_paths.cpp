#include "index/csv_paths.h"

#include <algorithm>

#include "clip/error.h"
#include "util/file_io.h"

namespace clip::index {
namespace {

struct Row {
  std::vector<std::string> cells;
  int line = 0;
};

// Splits the whole text into rows of cells; quoted cells may span lines.
std::vector<Row> parse_csv(const std::string& text, const std::string& where) {
  std::vector<Row> rows;
  Row row;
  std::string cell;
  int line = 1;
  row.line = 1;
  bool quoted = false, cell_started = false;
  auto end_cell = [&] {
    row.cells.push_back(std::move(cell));
    cell.clear();
    cell_started = false;
  };
  auto end_row = [&] {
    end_cell();
    // A blank line is not a row.
    if (!(row.cells.size() == 1 && row.cells[0].empty())) rows.push_back(std::move(row));
    row = Row();
    row.line = line;
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          cell += '"';
          ++i;
        } else {
          quoted = false;
        }
      } else {
        if (c == '\n') ++line;
        cell += c;
      }
      continue;
    }
    if (c == '"') {
      if (cell_started)
        throw Error(where + ":" + std::to_string(line) + ": a quote inside an unquoted field (quote the whole field)");
      quoted = true;
      cell_started = true;
    } else if (c == ',') {
      end_cell();
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      ++line;
      end_row();
    } else {
      cell += c;
      cell_started = true;
    }
  }
  if (quoted)
    throw Error(where + ":" + std::to_string(row.line) + ": a quoted field is not closed before the end of the file");
  if (cell_started || !row.cells.empty()) end_row();
  return rows;
}

}  // namespace

std::vector<CsvPath> read_csv_paths(const std::string& csv_path, const std::string& column) {
  std::string text = util::read_file(csv_path);
  if (text.compare(0, 3, "\xEF\xBB\xBF") == 0) text.erase(0, 3);  // a UTF-8 byte-order mark
  const std::vector<Row> rows = parse_csv(text, csv_path);
  if (rows.empty()) throw Error(csv_path + ": empty CSV file (expected a header row naming a column of image paths)");
  const std::vector<std::string>& header = rows[0].cells;
  std::vector<std::string> wanted =
      column.empty() ? std::vector<std::string>{"path", "filepath", "image"} : std::vector<std::string>{column};
  size_t col = header.size();
  for (const auto& w : wanted) {
    col = static_cast<size_t>(std::find(header.begin(), header.end(), w) - header.begin());
    if (col < header.size()) break;
  }
  if (col >= header.size()) {
    std::string names;
    for (const auto& h : header) names += (names.empty() ? "\"" : ", \"") + h + "\"";
    throw Error(csv_path + ":1: no column " +
                (column.empty() ? "\"path\", \"filepath\" or \"image\"" : "\"" + column + "\"") +
                " in the header (found " + names + "; choose one with --csv-column)");
  }
  std::vector<CsvPath> out;
  for (size_t r = 1; r < rows.size(); ++r) {
    if (rows[r].cells.size() <= col)
      throw Error(csv_path + ":" + std::to_string(rows[r].line) + ": the row has " +
                  std::to_string(rows[r].cells.size()) + " fields, expected at least " + std::to_string(col + 1) +
                  " (column \"" + header[col] + "\")");
    out.push_back({rows[r].cells[col], rows[r].line});
  }
  return out;
}

}  // namespace clip::index
