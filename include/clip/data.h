// Data sets for training and evaluation: what a reader yields, and how to open the formats users
// have (CSV/TSV, image folders, IDX, CIFAR, WebDataset tar shards). Torch-free (src/data).
//
// A reader only finds and reads records; decoding the image is left to whoever consumes the
// example (a loader's worker threads), so a slow decode never holds up a reader. Bad records
// (missing file, empty caption, broken JSON) are reported per example, never fatal: see
// Example::error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "clip/image.h"

namespace clip::data {

// One example as a data set holds it. Exactly one of image_path, image_bytes and pixels carries
// the image: a file on disk (CSV, image folders), the encoded bytes (tar shards), or raw pixels
// (IDX: mode L; CIFAR: mode RGB).
struct Example {
  std::string source;                 // where it came from, for messages: "train.csv:12", "shard-03.tar:000042"
  std::string image_path;             // a file to read and decode
  std::string image_bytes;            // an encoded image (JPEG, PNG, WebP, ...)
  image::Image pixels;                // decoded pixels (width > 0 when used)
  std::vector<std::string> captions;  // zero or more (tar shards may carry several)
  int label = -1;                     // class index, or -1 for caption-only data
  std::string error;                  // non-empty: this record is bad (says why); skip it and count it
  bool ok() const { return error.empty(); }
};

// Decodes the example's image, whichever way it is held. Throws clip::Error naming the example.
image::Image decode_example_image(const Example& example, const image::DecodeOptions& options = {});

// A data set with random access. at() is thread-safe (it may be called from loader threads).
class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual size_t size() const = 0;
  // Throws clip::Error for an index out of range; a bad record comes back with `error` set.
  virtual Example at(size_t index) const = 0;
  // Class names by label index (empty for caption-only data).
  virtual std::vector<std::string> class_names() const { return {}; }
  // "fashion-mnist train (60000 examples)", for logs and result files.
  virtual std::string description() const = 0;
};

// ---- readers with random access -----------------------------------------------------------

// CSV or TSV with a header row. Image paths are relative to the file's folder. Columns are named
// as open_clip names them (--csv-img-key, --csv-caption-key); a label column may hold class
// indices or class names (then class_names() is the sorted set of names, unless given).
struct TableOptions {
  std::string image_column = "filepath";
  std::string caption_column = "title";  // empty: no captions
  std::string label_column;              // empty: no labels
  char separator = 0;                    // 0: '\t' for .tsv, ',' otherwise; quotes as RFC 4180
  std::vector<std::string> class_names;  // optional, for a label column of names or indices
};
std::unique_ptr<Dataset> open_table(const std::string& path, const TableOptions& options = {});

// One sub-folder per class (ImageNet layout), classes sorted by folder name, images found
// recursively by extension (.jpg .jpeg .png .webp .bmp .gif, any case).
std::unique_ptr<Dataset> open_image_folder(const std::string& root);

// IDX images (ubyte, 3 dims) + labels (ubyte, 1 dim), gzip or not; MNIST / Fashion-MNIST.
std::unique_ptr<Dataset> open_idx(const std::string& images_path, const std::string& labels_path,
                                  std::vector<std::string> class_names = {});

// Fashion-MNIST from Debian's dataset-fashion-mnist (or `dir`): split "train" or "test".
inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";
std::unique_ptr<Dataset> open_fashion_mnist(const std::string& split, const std::string& dir = kFashionMnistDir);
// The ten Fashion-MNIST class names, as the data set's documentation names them.
const std::vector<std::string>& fashion_mnist_classes();

// CIFAR-10 / CIFAR-100: the binary distribution (data_batch_*.bin, test_batch.bin) or the Python
// pickle one (data_batch_*, test_batch / train, test). `path` is the extracted folder; split
// "train" or "test"; CIFAR-100 labels are the fine ones.
std::unique_ptr<Dataset> open_cifar(const std::string& path, const std::string& split);

// ---- tar archives, member by member ------------------------------------------------------

// One regular-file member of a tar archive.
struct TarMember {
  std::string name;   // its path inside the archive
  int64_t size = 0;   // bytes, from its header
  std::string data;   // its bytes, when they were wanted (see read_tar)
  std::string error;  // non-empty: its bytes could not be read (an implausible size); reading goes on
};

// How reading an archive ended.
struct TarEnd {
  bool opened = true;  // false: the archive could not be opened at all
  std::string error;   // empty: read to its end (or stopped by the visitor); else why the rest is unreadable
  std::string member;  // the member being read when it ended early (a truncated one), else ""
  bool ok() const { return error.empty(); }
};

// Reads the regular-file members of a tar archive (compressed or not: whatever libarchive knows)
// in order, calling `visit` for each; stops early when it returns false. `wanted(name)` says
// whether a member's bytes are read (null: all of them); the others are skipped unread (seeked
// over where the file allows). A missing or damaged archive is reported in the result, never
// thrown: the members before the damage have been visited.
TarEnd read_tar(const std::string& path, const std::function<bool(TarMember&&)>& visit,
                const std::function<bool(const std::string&)>& wanted = nullptr);

// The bytes of the first member named `member`. Throws clip::Error naming the archive and the
// member when the archive cannot be read up to it or holds no such member.
std::string read_tar_member(const std::string& path, const std::string& member);

// A member name split as WebDataset groups members into samples: the key is the name up to the
// first dot of its base name, the type its last suffix in lower case ("d/000.seg.PNG" is key
// "d/000", type "png"; a name without a dot has type "").
struct MemberName {
  std::string key, type;
};
MemberName split_member_name(const std::string& name);
// Whether a member type holds the sample's image (jpg, jpeg, png, webp), as the readers take it.
bool is_image_member_type(const std::string& type);

// ---- WebDataset tar shards (streamed) -----------------------------------------------------

// Brace expansion as WebDataset does it: "shards/{00000..00009}.tar" (zero-padded ranges) and
// "{a,b}" lists, nested and repeated. Throws clip::Error on an unbalanced or empty pattern.
std::vector<std::string> expand_braces(const std::string& pattern);

// Reads shards in the order given, one example per sample key (files grouped by the name before
// the first dot of their base name): the image from .jpg/.jpeg/.png/.webp, captions from .txt
// (one caption) or .json ("caption" string or "captions" list), the label from .cls when present;
// a member's type is its last suffix ("x.seg.png" is a PNG). A sample without an image, or with
// neither a caption nor a label (classification shards carry .cls and no caption), comes back
// with `error` set. A shard that cannot be opened
// or is corrupt yields one example with `error` set and the reader goes on to the next shard.
class ShardReader {
 public:
  explicit ShardReader(std::vector<std::string> shards);
  ~ShardReader();
  // Calls `visit` for every example in order; stops early when it returns false.
  void for_each(const std::function<bool(Example&&)>& visit) const;
  const std::vector<std::string>& shards() const { return shards_; }

 private:
  std::vector<std::string> shards_;
};

// Every example of the shards, read into memory (evaluation sets of modest size: the encoded
// images are kept). max_examples > 0 stops early. `name` is for description() ("wds:PATTERN").
std::unique_ptr<Dataset> read_shards(const std::vector<std::string>& shards, const std::string& name = "",
                                     size_t max_examples = 0);

}  // namespace clip::data

namespace clip::data {

// A view of some examples of another data set (by index), e.g. a held-out split.
std::unique_ptr<Dataset> subset(std::shared_ptr<const Dataset> base, std::vector<size_t> indices,
                                const std::string& name);

// Splits `base` into (train, held-out) with `held_out` examples drawn by a permutation from `seed`.
std::pair<std::unique_ptr<Dataset>, std::unique_ptr<Dataset>> split_held_out(std::shared_ptr<const Dataset> base,
                                                                             size_t held_out, uint64_t seed);

}  // namespace clip::data
