#include "index/generation_rows.h"

#include <algorithm>

#include "clip/error.h"

namespace clip::index {

GenerationRows GenerationRows::open(const std::string& dir, const std::vector<ChunkEntry>& chunks, int dim,
                                    const std::map<std::string, std::string>* located, RowAccess access) {
  GenerationRows out;
  out.dim_ = dim;
  out.first_.push_back(0);
  for (const ChunkEntry& c : chunks) {
    const auto it = located ? located->find(c.embeddings) : std::map<std::string, std::string>::const_iterator();
    const std::string path = located && it != located->end() ? it->second : dir + "/" + c.embeddings;
    out.files_.push_back(MappedEmbeddings::open(path, c.rows, dim, access));
    std::vector<int64_t> live;
    if (!c.dropped.empty()) {
      live.reserve(static_cast<size_t>(c.live()));
      size_t next = 0;
      for (int64_t r = 0; r < c.rows; ++r) {
        if (next < c.dropped.size() && c.dropped[next] == r) {
          ++next;
          continue;
        }
        live.push_back(r);
      }
    }
    out.live_.push_back(std::move(live));
    out.first_.push_back(out.first_.back() + c.live());
  }
  return out;
}

template <typename Visit>
void GenerationRows::for_each_run(int64_t begin, int64_t end, Visit visit) const {
  if (begin < 0 || end > count() || begin > end)
    throw Error("embedding rows " + std::to_string(begin) + ".." + std::to_string(end) + ": the generation has " +
                    std::to_string(count()),
                ErrorKind::kInternal);
  // The chunk holding id `begin`: the last whose first id is <= begin.
  size_t c = static_cast<size_t>(std::upper_bound(first_.begin(), first_.end(), begin) - first_.begin()) - 1;
  for (int64_t id = begin; id < end; ++c) {
    const int64_t in_chunk = std::min(end, first_[c + 1]) - id;
    if (in_chunk <= 0) continue;  // an empty chunk
    const int64_t local = id - first_[c];
    const std::vector<int64_t>& live = live_[c];
    if (live.empty()) {
      visit(c, local, in_chunk, id);
    } else {
      // Runs of consecutive file rows between dropped ones.
      for (int64_t k = 0; k < in_chunk;) {
        int64_t run = 1;
        while (k + run < in_chunk && live[local + k + run] == live[local + k] + run) ++run;
        visit(c, live[local + k], run, id + k);
        k += run;
      }
    }
    id += in_chunk;
  }
}

void GenerationRows::read(int64_t begin, int64_t n, float* out) const {
  for_each_run(begin, begin + n, [&](size_t c, int64_t row, int64_t run, int64_t id) {
    files_[c].read(row, run, out + (id - begin) * dim_);
  });
}

void GenerationRows::release(int64_t begin, int64_t end) const {
  for_each_run(begin, end, [&](size_t c, int64_t row, int64_t run, int64_t) { files_[c].release(row, row + run); });
}

void GenerationRows::will_need(const std::vector<int64_t>& ids) const {
  for (const int64_t id : ids) {
    if (id < 0 || id >= count()) continue;
    for_each_run(id, id + 1, [&](size_t c, int64_t row, int64_t run, int64_t) { files_[c].will_need(row, row + run); });
  }
}

std::vector<float> read_generation_embeddings(const std::string& dir, const Manifest& m) {
  const GenerationRows rows = GenerationRows::open(dir, m.chunks, m.dim);
  std::vector<float> out(static_cast<size_t>(rows.count()) * static_cast<size_t>(m.dim));
  rows.read(0, rows.count(), out.data());
  return out;
}

}  // namespace clip::index
