// libFuzzer target: the data-set readers (src/data) on arbitrary bytes. The first byte picks the
// reader; the rest is the pattern or the file's content. Every malformed input must end in
// clip::Error or a bad example (Example::error), never a crash, a leak or an out-of-bounds read;
// every example a reader hands out must be consistent (pixels sized as the header says).
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

#include "clip/data.h"
#include "clip/error.h"
#include "util/file_io.h"

namespace {

// A folder of this process's own (libFuzzer may run several processes side by side), removed
// at exit.
struct WorkDir {
  std::string path = std::filesystem::temp_directory_path().string() + "/clip_fuzz_data_" + std::to_string(::getpid());
  WorkDir() { std::filesystem::create_directories(path); }
  ~WorkDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

const std::string& work_dir() {
  static const WorkDir dir;
  return dir.path;
}

void check(const clip::data::Example& e) {
  if (e.pixels.width > 0 && e.pixels.pixels.size() != static_cast<size_t>(e.pixels.width) * e.pixels.height *
                                                          clip::image::bytes_per_pixel(e.pixels.mode))
    __builtin_trap();
}

void visit_all(const clip::data::Dataset& ds) {
  for (size_t i = 0; i < ds.size() && i < 64; ++i) check(ds.at(i));
  (void)ds.description();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const int mode = data[0] % 5;
  const std::string body(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::string dir = work_dir();
  try {
    switch (mode) {
      case 0: {                          // brace expansion of a shard pattern
        if (body.size() > 64) return 0;  // long patterns only multiply the work
        (void)clip::data::expand_braces(body);
        break;
      }
      case 1: {  // CSV with every column role
        clip::util::write_file_atomic(dir + "/t.csv", body);
        clip::data::TableOptions o;
        o.label_column = "label";
        visit_all(*clip::data::open_table(dir + "/t.csv", o));
        break;
      }
      case 2: {  // IDX (raw or gzip) as images and as labels
        clip::util::write_file_atomic(dir + "/i.idx", body);
        visit_all(*clip::data::open_idx(dir + "/i.idx", dir + "/i.idx"));
        break;
      }
      case 3: {  // a tar shard
        clip::util::write_file_atomic(dir + "/s.tar", body);
        clip::data::ShardReader({dir + "/s.tar"}).for_each([](clip::data::Example&& e) {
          check(e);
          return true;
        });
        break;
      }
      case 4: {  // CIFAR-10 Python pickles (the batch and the class names)
        std::filesystem::create_directories(dir + "/cifar");
        clip::util::write_file_atomic(dir + "/cifar/test_batch", body);
        clip::util::write_file_atomic(dir + "/cifar/batches.meta", body);
        visit_all(*clip::data::open_cifar(dir + "/cifar", "test"));
        break;
      }
    }
  } catch (const clip::Error&) {
  }
  return 0;
}
