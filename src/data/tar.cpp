// Tar archives read member by member with libarchive: the one tar parser of the project (the
// WebDataset reader and the embedding index both read shards through it).
#include <archive.h>
#include <archive_entry.h>

#include <algorithm>
#include <cctype>
#include <memory>

#include "clip/data.h"
#include "clip/error.h"

namespace clip::data {
namespace {

// Members are read whole; past this size a header is damaged or hostile, not an image sample.
constexpr la_int64_t kMaxMemberBytes = la_int64_t{1} << 30;

// libarchive's last message, or a fallback: archive_error_string may return null.
std::string archive_message(archive* a) {
  const char* m = archive_error_string(a);
  return m ? m : "unknown libarchive error";
}

struct ArchiveCloser {
  void operator()(archive* a) const { archive_read_free(a); }
};

}  // namespace

TarEnd read_tar(const std::string& path, const std::function<bool(TarMember&&)>& visit,
                const std::function<bool(const std::string&)>& wanted) {
  TarEnd end;
  std::unique_ptr<archive, ArchiveCloser> a(archive_read_new());
  archive_read_support_filter_all(a.get());  // .tar, .tar.gz, ...
  archive_read_support_format_tar(a.get());
  if (archive_read_open_filename(a.get(), path.c_str(), 1 << 16) != ARCHIVE_OK) {
    end.opened = false;
    end.error = archive_message(a.get());
    return end;
  }
  archive_entry* entry = nullptr;
  for (;;) {
    const int rc = archive_read_next_header(a.get(), &entry);
    if (rc == ARCHIVE_EOF) return end;
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) {
      end.error = archive_message(a.get());
      return end;
    }
    if (archive_entry_filetype(entry) != AE_IFREG) continue;
    TarMember m;
    m.name = archive_entry_pathname(entry) ? archive_entry_pathname(entry) : "";
    const la_int64_t size = archive_entry_size(entry);
    m.size = static_cast<int64_t>(size);
    if (size < 0 || size > kMaxMemberBytes) {
      m.error = "member " + m.name + " has an implausible size";
      archive_read_data_skip(a.get());
    } else if (!wanted || wanted(m.name)) {
      m.data.assign(static_cast<size_t>(size), '\0');
      const la_ssize_t got = size ? archive_read_data(a.get(), m.data.data(), m.data.size()) : 0;
      if (got < 0 || got != size) {
        end.error = "member " + m.name + " is truncated" +
                    (got < 0 ? std::string(" (") + archive_message(a.get()) + ")" : std::string());
        end.member = m.name;
        return end;
      }
    } else {
      archive_read_data_skip(a.get());
    }
    if (!visit(std::move(m))) return end;
  }
}

std::string read_tar_member(const std::string& path, const std::string& member) {
  std::string data;
  bool found = false;
  const TarEnd end = read_tar(
      path,
      [&](TarMember&& m) {
        if (m.name != member) return true;
        if (!m.error.empty()) throw Error(path + ": " + m.error);
        data = std::move(m.data);
        found = true;
        return false;
      },
      [&](const std::string& name) { return name == member; });
  if (found) return data;
  if (!end.opened) throw Error(path + ": cannot open the tar archive: " + end.error);
  if (!end.ok()) throw Error(path + ": cannot read member " + member + " from the tar archive: " + end.error);
  throw Error(path + ": no member named " + member + " in the tar archive");
}

MemberName split_member_name(const std::string& name) {
  const size_t slash = name.find_last_of('/');
  const size_t dot = name.find('.', slash == std::string::npos ? 0 : slash + 1);
  MemberName n;
  n.key = dot == std::string::npos ? name : name.substr(0, dot);
  if (dot != std::string::npos) {
    n.type = name.substr(name.find_last_of('.') + 1);
    std::transform(n.type.begin(), n.type.end(), n.type.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  }
  return n;
}

bool is_image_member_type(const std::string& type) {
  return type == "jpg" || type == "jpeg" || type == "png" || type == "webp";
}

}  // namespace clip::data
