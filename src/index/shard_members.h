// Members of WebDataset tar shards as index rows: the record path "<shard>#<member>", and the
// image members of one shard read for embedding (the bytes come from src/data's tar reader).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "clip/index.h"

namespace clip::index {

// Separates the shard from the member in a record path. Shard paths holding it are refused (see
// list_source), so the first one in a record path is always the separator.
inline constexpr char kMemberSeparator = '#';

std::string member_record_path(const std::string& shard, const std::string& member);
// The shard and the member of a record path; false when it names no member.
bool split_member_record_path(const std::string& path, std::string* shard, std::string* member);

struct ShardImage {
  std::string member;  // the member's name in the tar
  int64_t size = 0;
  std::string bytes;  // the encoded image
};

struct ShardImages {
  std::vector<ShardImage> images;    // the image member of every sample, in tar order
  std::vector<SkippedFile> skipped;  // samples without an image, unreadable members, damage
  bool complete = true;              // read to its end (else it is read again by the next update)
};

// Never throws for a missing, unreadable or damaged shard: that is a skipped entry.
ShardImages read_shard_images(const std::string& shard);

}  // namespace clip::index
