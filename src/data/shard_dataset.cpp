// Tar shards read whole into memory, for evaluation sets that fit (random access, a size).
#include "clip/data.h"
#include "clip/error.h"

namespace clip::data {
namespace {

class ShardDataset : public Dataset {
 public:
  ShardDataset(std::vector<Example> examples, std::string name)
      : examples_(std::move(examples)), name_(std::move(name)) {}
  size_t size() const override { return examples_.size(); }
  std::string description() const override { return name_ + " (" + std::to_string(examples_.size()) + " examples)"; }
  Example at(size_t index) const override {
    if (index >= examples_.size())
      throw Error(name_ + ": example " + std::to_string(index) + " out of range (" + std::to_string(examples_.size()) +
                  " examples)");
    return examples_[index];
  }

 private:
  std::vector<Example> examples_;
  std::string name_;
};

}  // namespace

std::unique_ptr<Dataset> read_shards(const std::vector<std::string>& shards, const std::string& name,
                                     size_t max_examples) {
  std::vector<Example> examples;
  ShardReader(shards).for_each([&](Example&& ex) {
    examples.push_back(std::move(ex));
    return max_examples == 0 || examples.size() < max_examples;
  });
  return std::make_unique<ShardDataset>(std::move(examples), name.empty() ? "tar shards" : name);
}

}  // namespace clip::data
