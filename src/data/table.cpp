// CSV / TSV data sets (open_clip's --csv-img-key / --csv-caption-key layout) with RFC 4180
// quoting: fields in double quotes may hold separators, newlines and doubled quotes ("").
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>

#include "clip/data.h"
#include "clip/error.h"
#include "util/file_io.h"

namespace clip::data {
namespace {

namespace fs = std::filesystem;

struct Row {
  size_t line = 0;  // 1-based line where the record starts
  std::vector<std::string> fields;
  std::string error;  // a malformed record (unterminated quote, text after a closing quote)
};

// Splits the whole text into records. Never throws: a malformed record carries its error.
std::vector<Row> parse_records(const std::string& text, char sep) {
  std::vector<Row> rows;
  size_t i = 0, line = 1;
  const size_t n = text.size();
  if (n >= 3 && text.compare(0, 3, "\xEF\xBB\xBF") == 0) i = 3;  // a UTF-8 byte order mark
  while (i < n) {
    Row row;
    row.line = line;
    std::string field;
    bool end_of_record = false;
    while (!end_of_record) {
      field.clear();
      if (i < n && text[i] == '"') {
        ++i;
        bool closed = false;
        while (i < n) {
          if (text[i] == '"') {
            if (i + 1 < n && text[i + 1] == '"') {
              field += '"';
              i += 2;
              continue;
            }
            ++i;
            closed = true;
            break;
          }
          if (text[i] == '\n') ++line;
          field += text[i++];
        }
        if (!closed) {
          row.error = "a quoted field is not closed before the end of the file";
          i = n;
        } else if (i < n && text[i] != sep && text[i] != '\n' && text[i] != '\r') {
          row.error = std::string("unexpected character '") + text[i] +
                      "' after a closing quote (expected the separator or the end of the line)";
          while (i < n && text[i] != '\n') ++i;  // skip the rest of this line
        }
      } else {
        while (i < n && text[i] != sep && text[i] != '\n') field += text[i++];
        if (!field.empty() && field.back() == '\r' && (i >= n || text[i] == '\n')) field.pop_back();
      }
      row.fields.push_back(field);
      if (i < n && text[i] == '\r') ++i;
      if (i >= n) {
        end_of_record = true;
      } else if (text[i] == sep) {
        ++i;
      } else if (text[i] == '\n') {
        ++i;
        ++line;
        end_of_record = true;
      }
    }
    // A blank line is no record.
    if (row.error.empty() && row.fields.size() == 1 && row.fields[0].empty()) continue;
    rows.push_back(std::move(row));
  }
  return rows;
}

bool parse_index(const std::string& s, long* out) {
  if (s.empty() || s.size() > 9) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  *out = std::strtol(s.c_str(), nullptr, 10);
  return true;
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + ("\"" + s + "\"");
  return out;
}

class TableDataset : public Dataset {
 public:
  TableDataset(const std::string& path, const TableOptions& o)
      : path_(path), name_(fs::path(path).filename().string()) {
    const char sep = o.separator ? o.separator : (fs::path(path).extension() == ".tsv" ? '\t' : ',');
    const std::string text = util::read_file(path);
    std::vector<Row> rows = parse_records(text, sep);
    if (rows.empty()) throw Error(path + ": empty table (expected a header row naming the columns)");
    const Row& header = rows[0];
    if (!header.error.empty()) throw Error(path + ":" + std::to_string(header.line) + ": header row: " + header.error);
    auto column = [&](const std::string& name, const char* role) -> int {
      const auto it = std::find(header.fields.begin(), header.fields.end(), name);
      if (it == header.fields.end())
        throw Error(path + ": no " + role + " column \"" + name + "\" in the header (columns: " + join(header.fields) +
                    std::string("; separator ") + (sep == '\t' ? "tab" : std::string("'") + sep + "'") + ")");
      return static_cast<int>(it - header.fields.begin());
    };
    if (o.image_column.empty()) throw Error(path + ": no image column named (expected a column name)");
    image_col_ = column(o.image_column, "image");
    caption_col_ = o.caption_column.empty() ? -1 : column(o.caption_column, "caption");
    label_col_ = o.label_column.empty() ? -1 : column(o.label_column, "label");
    columns_ = header.fields.size();
    base_dir_ = fs::path(path).parent_path();
    rows.erase(rows.begin());
    rows_ = std::move(rows);
    if (label_col_ >= 0) resolve_labels(o.class_names);
  }

  size_t size() const override { return rows_.size(); }
  std::vector<std::string> class_names() const override { return class_names_; }
  std::string description() const override {
    return "table " + path_ + " (" + std::to_string(rows_.size()) + " examples)";
  }

  Example at(size_t index) const override {
    if (index >= rows_.size())
      throw Error(path_ + ": example " + std::to_string(index) + " out of range (" + std::to_string(rows_.size()) +
                  " rows)");
    const Row& row = rows_[index];
    Example ex;
    ex.source = name_ + ":" + std::to_string(row.line);
    if (!row.error.empty()) {
      ex.error = row.error;
      return ex;
    }
    if (row.fields.size() != columns_) {
      ex.error = "found " + std::to_string(row.fields.size()) + " fields, expected " + std::to_string(columns_) +
                 " (as in the header)";
      return ex;
    }
    const std::string& file = row.fields[image_col_];
    if (file.empty()) {
      ex.error = "empty image path";
      return ex;
    }
    const fs::path p(file);
    ex.image_path = p.is_absolute() ? file : (base_dir_ / p).string();
    if (caption_col_ >= 0) {
      const std::string& caption = row.fields[caption_col_];
      if (caption.find_first_not_of(" \t\r\n") == std::string::npos) {
        ex.error = "empty caption";
        return ex;
      }
      ex.captions.push_back(caption);
    }
    if (label_col_ >= 0) {
      ex.label = labels_[index];
      if (ex.label < 0) {
        ex.error = label_errors_.at(index);
        return ex;
      }
    }
    if (!util::file_exists(ex.image_path)) ex.error = "image file not found: " + ex.image_path;
    return ex;
  }

 private:
  // Labels are indices when every value is a number (or the class names are given and the value
  // is one of them); otherwise names, numbered in sorted order.
  void resolve_labels(const std::vector<std::string>& given) {
    labels_.assign(rows_.size(), -1);
    std::map<std::string, int> by_name;
    for (size_t i = 0; i < given.size(); ++i) by_name.emplace(given[i], static_cast<int>(i));
    bool all_numbers = true;
    for (const Row& r : rows_) {
      long v;
      if (r.error.empty() && r.fields.size() == columns_ && !parse_index(r.fields[label_col_], &v)) all_numbers = false;
    }
    if (given.empty() && !all_numbers) {
      std::set<std::string> names;
      for (const Row& r : rows_)
        if (r.error.empty() && r.fields.size() == columns_ && !r.fields[label_col_].empty())
          names.insert(r.fields[label_col_]);
      int k = 0;
      for (const auto& s : names) {
        class_names_.push_back(s);
        by_name.emplace(s, k++);
      }
    } else {
      class_names_ = given;
    }
    for (size_t i = 0; i < rows_.size(); ++i) {
      const Row& r = rows_[i];
      if (!r.error.empty() || r.fields.size() != columns_) continue;
      const std::string& s = r.fields[label_col_];
      const auto it = by_name.find(s);
      long v;
      if (it != by_name.end()) {
        labels_[i] = it->second;
      } else if (s.empty()) {
        label_errors_[i] = "empty label";
      } else if (parse_index(s, &v) && (given.empty() || v < static_cast<long>(given.size()))) {
        labels_[i] = static_cast<int>(v);
      } else if (parse_index(s, &v)) {
        label_errors_[i] = "label " + s + " out of range (" + std::to_string(given.size()) + " classes)";
      } else {
        label_errors_[i] = "unknown class name \"" + s + "\"";
      }
    }
  }

  std::string path_, name_;
  fs::path base_dir_;
  int image_col_ = -1, caption_col_ = -1, label_col_ = -1;
  size_t columns_ = 0;
  std::vector<Row> rows_;
  std::vector<int> labels_;
  std::map<size_t, std::string> label_errors_;
  std::vector<std::string> class_names_;
};

}  // namespace

std::unique_ptr<Dataset> open_table(const std::string& path, const TableOptions& options) {
  return std::make_unique<TableDataset>(path, options);
}

}  // namespace clip::data
