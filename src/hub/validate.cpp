#include "hub/validate.h"

#include "clip/error.h"
#include "util/strings.h"

namespace clip::hub {
namespace {

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

// Control characters are shown escaped, so that a message never carries them to a terminal.
std::string shown(const std::string& s) { return util::quoted_for_message(s); }

[[noreturn]] void fail(const std::string& what, const std::string& value, const std::string& rule) {
  throw Error(what + ": invalid " + shown(value) + ": " + rule);
}

void check_components(const std::string& value, const std::string& what, const char* kind) {
  size_t start = 0;
  for (;;) {
    const size_t end = value.find('/', start);
    const std::string part = value.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (part.empty() || part == "." || part == "..")
      fail(what, value, std::string(kind) + " must not have an empty, \".\" or \"..\" component");
    if (end == std::string::npos) return;
    start = end + 1;
  }
}

}  // namespace

void validate_repo_id(const std::string& repo, const std::string& what) {
  const size_t slash = repo.find('/');
  if (slash == std::string::npos || repo.find('/', slash + 1) != std::string::npos)
    fail(what, repo, "a repo id is ORG/NAME (one '/')");
  for (const std::string& part : {repo.substr(0, slash), repo.substr(slash + 1)}) {
    if (part.empty() || part.size() > 96) fail(what, repo, "each part of a repo id has 1 to 96 characters");
    for (char c : part)
      if (!is_name_char(c)) fail(what, repo, "a repo id has only letters, digits, '.', '_' and '-'");
    if (part.find("..") != std::string::npos || part.find("--") != std::string::npos)
      fail(what, repo, "a repo id must not contain \"..\" or \"--\"");
    if (part.front() == '.' || part.front() == '-' || part.back() == '.' || part.back() == '-')
      fail(what, repo, "a repo id part must not start or end with '.' or '-'");
  }
}

void validate_revision(const std::string& revision, const std::string& what) {
  if (revision.empty() || revision.size() > 255) fail(what, revision, "a revision has 1 to 255 characters");
  for (char c : revision)
    if (!is_name_char(c) && c != '/')
      fail(what, revision, "a revision has only letters, digits, '.', '_', '-' and '/'");
  check_components(revision, what, "a revision");
}

void validate_repo_file(const std::string& file, const std::string& what) {
  if (file.empty() || file.size() > 1024) fail(what, file, "a file name has 1 to 1024 bytes");
  for (unsigned char c : file)
    if (c < 0x20 || c == 0x7f || c == '\\') fail(what, file, "a file name must not contain control characters or '\\'");
  if (file.front() == '/') fail(what, file, "a file name must be relative to the repo");
  check_components(file, what, "a file name");
}

void validate_blob_name(const std::string& etag, const std::string& what) {
  if (etag.empty() || etag.size() > 128) fail(what, etag, "an ETag has 1 to 128 characters");
  for (char c : etag)
    if (!is_name_char(c)) fail(what, etag, "an ETag has only letters, digits, '.', '_' and '-'");
  if (etag == "." || etag == "..") fail(what, etag, "an ETag must not be \".\" or \"..\"");
}

bool is_commit_hash(const std::string& s) {
  if (s.size() != 40) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

}  // namespace clip::hub
