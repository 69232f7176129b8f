// Downloads one file of a Hub repo into the Hugging Face cache, as huggingface_hub does: HEAD
// {endpoint}/{repo}/resolve/{revision}/{file} for X-Repo-Commit, the ETag (X-Linked-Etag for LFS)
// and the size; the blob resumed from blobs/<etag>.incomplete with Range; its sha256 (LFS) or
// git sha1 checked; renamed into blobs/, then the snapshot link and refs/<revision>. A flock on
// .locks/models--ORG--NAME/<etag>.lock keeps two processes from fetching one blob twice.
#pragma once

#include <string>

#include "clip/hub.h"

namespace clip::hub {

// Returns the snapshot path of the file. Throws clip::Error: kNotFound on 404 (the message names
// repo, revision and file), kIo for 401/403 (gated or private), network, disk and checksum failures.
std::string download_file(const HubOptions& options, const std::string& repo, const std::string& revision,
                          const std::string& file);

}  // namespace clip::hub
