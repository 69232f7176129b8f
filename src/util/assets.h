// Files shipped with CLIP++ (assets/: the BPE vocabulary, named model configs), found at run
// time in $CLIP_DATA_DIR, then the install folder (share/clip), then the source tree.
#pragma once

#include <string>

namespace clip::util {

// The path of a shipped asset, e.g. find_asset("bpe_simple_vocab_16e6.txt.gz"); throws
// clip::Error listing the folders searched when it is in none of them.
std::string find_asset(const std::string& relative_path);

}  // namespace clip::util
