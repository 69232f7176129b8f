#include "data/loader.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <mutex>
#include <numeric>
#include <thread>

#include "clip/error.h"
#include "util/thread_pool.h"

namespace clip::data {
namespace {

// SplitMix64: turns (seed, epoch, sample) into independent, well-mixed stream seeds.
uint64_t mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
uint64_t stream_seed(uint64_t seed, int64_t epoch, uint64_t sample) {
  return mix(mix(mix(seed) ^ static_cast<uint64_t>(epoch)) ^ sample);
}

// Decodes, augments and tokenizes the examples of one batch on the pool; bad ones are dropped
// and listed. `ids` give each example's randomness (its sample number).
Batch assemble(std::vector<Example>& examples, const std::vector<uint64_t>& ids, int64_t epoch, int64_t index,
               const CaptionFn& captions, const Tokenizer& tokenizer, const LoaderOptions& o, util::ThreadPool& pool) {
  const size_t n = examples.size();
  const size_t pixels = 3 * static_cast<size_t>(o.image_size) * o.image_size;
  std::vector<float> images(n * pixels);
  std::vector<std::string> chosen(n), errors(n);
  pool.parallel_for(n, [&](size_t i) {
    const Example& e = examples[i];
    if (!e.ok()) {
      errors[i] = e.source + ": " + e.error;
      return;
    }
    std::mt19937_64 rng(stream_seed(o.seed, epoch, ids[i]));
    try {
      chosen[i] = captions(e, rng);
      if (chosen[i].find_first_not_of(" \t\r\n") == std::string::npos) {
        errors[i] = e.source + ": empty caption";
        return;
      }
      prepare_image(e, o, rng, images.data() + i * pixels);
    } catch (const std::exception& ex) {
      errors[i] = ex.what();
    }
  });
  Batch b;
  b.epoch = epoch;
  b.index = index;
  std::vector<std::string> texts;
  for (size_t i = 0; i < n; ++i) {
    if (!errors[i].empty()) {
      b.skipped.push_back(errors[i]);
      continue;
    }
    if (static_cast<size_t>(b.rows) != i)
      std::memmove(images.data() + b.rows * pixels, images.data() + i * pixels, pixels * sizeof(float));
    b.labels.push_back(examples[i].label);
    texts.push_back(chosen[i]);
    ++b.rows;
  }
  images.resize(static_cast<size_t>(b.rows) * pixels);
  b.images = std::move(images);
  const TokenBatch tokens = tokenizer.tokenize(texts, o.context_length, /*truncate=*/true, 1);
  b.tokens.assign(tokens.begin(), tokens.end());
  b.captions = std::move(texts);
  return b;
}

// A producer thread filling a bounded queue; subclasses say how an epoch's batches are made.
class ProducerSource : public BatchSource {
 public:
  ProducerSource(CaptionFn captions, Tokenizer tokenizer, const LoaderOptions& o)
      : captions_(std::move(captions)), tokenizer_(std::move(tokenizer)), options_(o), pool_(o.workers) {
    if (o.batch_size <= 0) throw Error("batch size must be positive, found " + std::to_string(o.batch_size));
    if (o.image_size <= 0) throw Error("image size must be positive, found " + std::to_string(o.image_size));
    if (o.world_size <= 0 || o.rank < 0 || o.rank >= o.world_size)
      throw Error("rank " + std::to_string(o.rank) + " is outside world size " + std::to_string(o.world_size));
  }
  ~ProducerSource() override { stop(); }

  void start(int64_t epoch, int64_t start_batch) override {
    stop();
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.clear();
    done_ = false;
    cancel_ = false;
    failure_ = nullptr;
    thread_ = std::thread([this, epoch, start_batch] {
      try {
        produce(epoch, start_batch);
      } catch (...) {
        std::lock_guard<std::mutex> l(mutex_);
        failure_ = std::current_exception();
      }
      std::lock_guard<std::mutex> l(mutex_);
      done_ = true;
      changed_.notify_all();
    });
  }

  std::optional<Batch> next() override {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [&] { return !queue_.empty() || done_; });
    if (!queue_.empty()) {
      Batch b = std::move(queue_.front());
      queue_.pop_front();
      changed_.notify_all();
      return b;
    }
    if (failure_) std::rethrow_exception(failure_);
    return std::nullopt;
  }

 protected:
  virtual void produce(int64_t epoch, int64_t start_batch) = 0;

  // Hands a batch to the consumer; false when production should stop.
  bool emit(Batch b) {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [&] { return cancel_ || static_cast<int>(queue_.size()) < std::max(1, options_.prefetch); });
    if (cancel_) return false;
    queue_.push_back(std::move(b));
    changed_.notify_all();
    return true;
  }
  bool cancelled() {
    std::lock_guard<std::mutex> lock(mutex_);
    return cancel_;
  }
  Batch make_batch(std::vector<Example>& examples, const std::vector<uint64_t>& ids, int64_t epoch, int64_t index) {
    return assemble(examples, ids, epoch, index, captions_, tokenizer_, options_, pool_);
  }

  // Stops the producer thread; subclasses call it in their destructor (the thread uses them).
  void stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      cancel_ = true;
      changed_.notify_all();
    }
    if (thread_.joinable()) thread_.join();
  }

  CaptionFn captions_;
  Tokenizer tokenizer_;
  LoaderOptions options_;

 private:
  util::ThreadPool pool_;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Batch> queue_;
  bool done_ = true, cancel_ = false;
  std::exception_ptr failure_;
};

class DatasetLoader : public ProducerSource {
 public:
  DatasetLoader(std::shared_ptr<const Dataset> data, CaptionFn captions, Tokenizer tokenizer, const LoaderOptions& o)
      : ProducerSource(std::move(captions), std::move(tokenizer), o), data_(std::move(data)) {
    if (batches_per_epoch() == 0)
      throw Error(data_->description() + ": fewer examples (" + std::to_string(data_->size()) +
                  ") than one global batch (" + std::to_string(global_batch()) + ")");
  }
  ~DatasetLoader() override { stop(); }
  int64_t batches_per_epoch() const override { return static_cast<int64_t>(data_->size()) / global_batch(); }
  std::string description() const override { return data_->description(); }

 protected:
  void produce(int64_t epoch, int64_t start_batch) override {
    std::vector<uint64_t> order(data_->size());
    std::iota(order.begin(), order.end(), uint64_t{0});
    std::mt19937_64 rng(stream_seed(options_.seed, epoch, ~uint64_t{0}));
    std::shuffle(order.begin(), order.end(), rng);
    const int64_t per_rank = options_.batch_size;
    for (int64_t k = start_batch; k < batches_per_epoch(); ++k) {
      if (cancelled()) return;
      const size_t first = static_cast<size_t>(k * global_batch() + options_.rank * per_rank);
      std::vector<uint64_t> ids(order.begin() + first, order.begin() + first + per_rank);
      std::vector<Example> examples(ids.size());
      for (size_t i = 0; i < ids.size(); ++i) examples[i] = data_->at(ids[i]);
      if (!emit(make_batch(examples, ids, epoch, k))) return;
    }
  }

 private:
  int64_t global_batch() const { return static_cast<int64_t>(options_.batch_size) * options_.world_size; }
  std::shared_ptr<const Dataset> data_;
};

class ShardLoader : public ProducerSource {
 public:
  ShardLoader(std::vector<std::string> shards, CaptionFn captions, Tokenizer tokenizer, const LoaderOptions& o)
      : ProducerSource(std::move(captions), std::move(tokenizer), o), shards_(std::move(shards)) {
    if (shards_.empty()) throw Error("no tar shards given");
    if (static_cast<int>(shards_.size()) < o.world_size)
      throw Error(std::to_string(shards_.size()) + " shard(s) cannot be split over " + std::to_string(o.world_size) +
                  " ranks (expected at least one shard per rank)");
  }
  ~ShardLoader() override { stop(); }
  int64_t batches_per_epoch() const override { return -1; }
  std::string description() const override {
    return std::to_string(shards_.size()) + " tar shard(s) from " + shards_.front();
  }

 protected:
  void produce(int64_t epoch, int64_t start_batch) override {
    std::vector<std::string> order = shards_;
    std::mt19937_64 shard_rng(stream_seed(options_.seed, epoch, ~uint64_t{1}));
    std::shuffle(order.begin(), order.end(), shard_rng);
    std::vector<std::string> mine;
    for (size_t i = 0; i < order.size(); ++i)
      if (static_cast<int>(i % options_.world_size) == options_.rank) mine.push_back(order[i]);

    std::mt19937_64 pick(stream_seed(options_.seed, epoch, ~uint64_t{2} - static_cast<uint64_t>(options_.rank)));
    std::vector<Example> buffer, pending;
    std::vector<uint64_t> pending_ids;
    uint64_t ordinal = 0;
    int64_t index = 0;
    bool stopped = false;
    // Takes a random example out of the buffer into the pending batch; emits full batches
    // (batches before start_batch are skipped without decoding: resume).
    auto take = [&](size_t at) {
      pending.push_back(std::move(buffer[at]));
      buffer[at] = std::move(buffer.back());
      buffer.pop_back();
      pending_ids.push_back(ordinal++);
      if (static_cast<int>(pending.size()) == options_.batch_size) {
        if (index >= start_batch && !emit(make_batch(pending, pending_ids, epoch, index))) stopped = true;
        ++index;
        pending.clear();
        pending_ids.clear();
      }
    };
    const size_t capacity = std::max<size_t>(1, options_.shuffle_buffer);
    ShardReader(mine).for_each([&](Example&& e) {
      buffer.push_back(std::move(e));
      if (buffer.size() >= capacity) take(std::uniform_int_distribution<size_t>(0, buffer.size() - 1)(pick));
      return !stopped && !cancelled();
    });
    while (!buffer.empty() && !stopped && !cancelled())
      take(std::uniform_int_distribution<size_t>(0, buffer.size() - 1)(pick));
    // The last partial batch is dropped, as for random-access data.
  }

 private:
  std::vector<std::string> shards_;
};

}  // namespace

CaptionFn any_caption() {
  return [](const Example& e, std::mt19937_64& rng) -> std::string {
    if (e.captions.empty()) return "";
    return e.captions[std::uniform_int_distribution<size_t>(0, e.captions.size() - 1)(rng)];
  };
}

void prepare_image(const Example& example, const LoaderOptions& o, std::mt19937_64& rng, float* out) {
  const image::Image img = decode_example_image(example, o.decode);
  const image::Rgb8 rgb = o.augment.enabled ? random_resized_crop(img, o.image_size, o.augment, rng)
                                            : image::resize_crop(img, o.image_size);
  const std::vector<float> input = image::normalize(rgb, o.mean, o.std);
  std::memcpy(out, input.data(), input.size() * sizeof(float));
}

std::unique_ptr<BatchSource> make_loader(std::shared_ptr<const Dataset> data, CaptionFn captions, Tokenizer tokenizer,
                                         const LoaderOptions& options) {
  return std::make_unique<DatasetLoader>(std::move(data), std::move(captions), std::move(tokenizer), options);
}

std::unique_ptr<BatchSource> make_shard_loader(std::vector<std::string> shards, CaptionFn captions, Tokenizer tokenizer,
                                               const LoaderOptions& options) {
  return std::make_unique<ShardLoader>(std::move(shards), std::move(captions), std::move(tokenizer), options);
}

}  // namespace clip::data
