// Checks of the names that become URL and cache paths: repo ids, revisions, file names inside a
// repo, ETags and commit hashes from a server. Each throws clip::Error (kInvalidInput) naming
// `what` (the flag or header it came from), the value and the rule it breaks.
#pragma once

#include <string>

namespace clip::hub {

// ORG/NAME: 1-96 characters each of [A-Za-z0-9._-], no "..", no "--", not starting or ending
// with '.' or '-' (the Hub's own rules; "--" would make models--ORG--NAME ambiguous).
void validate_repo_id(const std::string& repo, const std::string& what);
// A branch, tag or commit: [A-Za-z0-9._/-], at most 255, no empty, "." or ".." component.
void validate_revision(const std::string& revision, const std::string& what);
// A path inside a repo: relative, '/'-separated, no empty, "." or ".." component, no backslash or
// control character, at most 1024 bytes.
void validate_repo_file(const std::string& file, const std::string& what);
// A blob name: [A-Za-z0-9._-] only (ETags are a sha256 or a git sha1 in hex), 1-128 characters.
void validate_blob_name(const std::string& etag, const std::string& what);
// 40 lowercase hex digits.
bool is_commit_hash(const std::string& s);

}  // namespace clip::hub
