// Views of part of a data set: held-out splits carved from a training set.
#include <algorithm>
#include <numeric>
#include <random>

#include "clip/data.h"
#include "clip/error.h"

namespace clip::data {
namespace {

class Subset : public Dataset {
 public:
  Subset(std::shared_ptr<const Dataset> base, std::vector<size_t> indices, std::string name)
      : base_(std::move(base)), indices_(std::move(indices)), name_(std::move(name)) {
    for (size_t i : indices_)
      if (i >= base_->size())
        throw Error(name_ + ": index " + std::to_string(i) + " is outside " + base_->description());
  }
  size_t size() const override { return indices_.size(); }
  Example at(size_t index) const override {
    if (index >= indices_.size()) throw Error(description() + ": index " + std::to_string(index) + " is out of range");
    return base_->at(indices_[index]);
  }
  std::vector<std::string> class_names() const override { return base_->class_names(); }
  std::string description() const override { return name_ + " (" + std::to_string(indices_.size()) + " examples)"; }

 private:
  std::shared_ptr<const Dataset> base_;
  std::vector<size_t> indices_;
  std::string name_;
};

}  // namespace

std::unique_ptr<Dataset> subset(std::shared_ptr<const Dataset> base, std::vector<size_t> indices,
                                const std::string& name) {
  return std::make_unique<Subset>(std::move(base), std::move(indices), name);
}

std::pair<std::unique_ptr<Dataset>, std::unique_ptr<Dataset>> split_held_out(std::shared_ptr<const Dataset> base,
                                                                             size_t held_out, uint64_t seed) {
  if (held_out >= base->size())
    throw Error(base->description() + ": cannot hold out " + std::to_string(held_out) + " examples (it has " +
                std::to_string(base->size()) + ")");
  std::vector<size_t> order(base->size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::shuffle(order.begin(), order.end(), std::mt19937_64(seed));
  std::vector<size_t> rest(order.begin() + static_cast<std::ptrdiff_t>(held_out), order.end());
  std::vector<size_t> out(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(held_out));
  std::sort(rest.begin(), rest.end());
  std::sort(out.begin(), out.end());
  std::string name = base->description();
  name = name.substr(0, name.find(" ("));
  return {subset(base, std::move(rest), name + " minus held-out"), subset(base, std::move(out), name + " held-out")};
}

}  // namespace clip::data
