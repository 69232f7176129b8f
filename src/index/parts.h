// The parts of a distributed build (docs/search.md, "Building on many machines"): rank R of W
// embeds a contiguous share of the source's sorted listing into INDEX/parts/rank-R-of-W/ (a work
// folder: state.json, numbered chunks, and done.json once finished); `merge` checks that every
// rank finished with the same model, storage, source, parameters and listing, moves the parts'
// chunks into the index in rank order (the order of a one-process build) and publishes generation 1.
#pragma once

#include <cstdint>
#include <string>

#include "clip/index.h"
#include "index/sources.h"

#include <nlohmann/json.hpp>

namespace clip::index {

inline constexpr const char* kPartDoneName = "done.json";

// "INDEX/parts/rank-R-of-W".
std::string part_dir(const std::string& index_dir, int rank, int world);

// What every rank must have listed alike: the number of files (or shards) and a SHA-256 of them.
nlohmann::json listing_summary(const SourceListing& listing);

// The report a finished part recorded.
BuildReport report_of_done_part(const std::string& done_path);

// Removes the chunk-<g>-<n> files an interrupted assembly left in a part (its numbered work chunks stay).
void remove_assembled_chunks(const std::string& part);

}  // namespace clip::index
