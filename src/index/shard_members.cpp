#include "index/shard_members.h"

#include <unordered_set>

#include "clip/data.h"

namespace clip::index {

std::string member_record_path(const std::string& shard, const std::string& member) {
  return shard + kMemberSeparator + member;
}

bool split_member_record_path(const std::string& path, std::string* shard, std::string* member) {
  const size_t at = path.find(kMemberSeparator);
  if (at == std::string::npos) return false;
  *shard = path.substr(0, at);
  *member = path.substr(at + 1);
  return true;
}

ShardImages read_shard_images(const std::string& shard) {
  ShardImages out;
  std::unordered_set<std::string> seen;  // member names: a tar may hold a name twice
  // The sample being read (members of a sample are consecutive, as WebDataset writes them).
  std::string key, first_member;
  bool have = false, has_image = false;
  auto end_sample = [&] {
    if (have && !has_image)
      out.skipped.push_back({member_record_path(shard, first_member),
                             "sample " + key + " has no image member (.jpg, .jpeg, .png or .webp)"});
  };
  const data::TarEnd end = data::read_tar(
      shard,
      [&](data::TarMember&& m) {
        const data::MemberName n = data::split_member_name(m.name);
        if (!have || n.key != key) {
          end_sample();
          key = n.key;
          first_member = m.name;
          have = true;
          has_image = false;
        }
        if (!data::is_image_member_type(n.type)) return true;
        has_image = true;
        const std::string path = member_record_path(shard, m.name);
        if (!m.error.empty()) {
          out.skipped.push_back({path, m.error});
        } else if (!seen.insert(m.name).second) {
          // Extracting the tar would keep the last one; the index serves the first (read_tar_member).
          out.skipped.push_back({path, "the shard holds another member of this name before it (that one is indexed)"});
        } else {
          out.images.push_back({m.name, m.size, std::move(m.data)});
        }
        return true;
      },
      [](const std::string& name) { return data::is_image_member_type(data::split_member_name(name).type); });
  if (!end.opened) {
    out.complete = false;
    out.skipped.push_back({shard, "cannot open the shard: " + end.error});
    return out;
  }
  if (!end.ok()) {
    out.complete = false;
    out.skipped.push_back({end.member.empty() ? shard : member_record_path(shard, end.member),
                           "corrupt shard: " + end.error + " (the rest of the shard is skipped)"});
    return out;
  }
  end_sample();
  return out;
}

}  // namespace clip::index
