// c10d process group, differentiable feature gathering, gradient averaging.
//
// Debian's libtorch is built with Gloo, but its headers guard the Gloo process group behind the
// build's macro; define it here only, so no other translation unit sees Gloo's headers.
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO
#endif
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <cerrno>
#include <cstdlib>
#include <thread>

#include "clip/error.h"
#include "train/distributed.h"

namespace clip::train {
namespace {

using Clock = std::chrono::steady_clock;

// A required integer variable of torchrun's environment.
int env_int(const char* name, int min, int max) {
  const char* value = std::getenv(name);
  if (!value || !*value)
    throw Error(std::string("distributed training: the environment variable ") + name + " is not set");
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(value, &end, 10);
  if (errno || *end || v < min || v > max)
    throw Error(std::string("distributed training: ") + name + "=\"" + value + "\" is not an integer in [" +
                std::to_string(min) + ", " + std::to_string(max) + "]");
  return static_cast<int>(v);
}

}  // namespace

DistributedEnv distributed_env_from_environment() {
  DistributedEnv e;
  const char* world = std::getenv("WORLD_SIZE");
  if (!world || !*world) return e;
  e.world_size = env_int("WORLD_SIZE", 1, 1 << 20);
  if (e.world_size == 1) return e;
  e.rank = env_int("RANK", 0, e.world_size - 1);
  e.local_world_size = env_int("LOCAL_WORLD_SIZE", 1, e.world_size);
  e.local_rank = env_int("LOCAL_RANK", 0, e.local_world_size - 1);
  const char* addr = std::getenv("MASTER_ADDR");
  if (!addr || !*addr)
    throw Error("distributed training: the environment variable MASTER_ADDR is not set (rank 0's host)");
  e.master_addr = addr;
  e.master_port = env_int("MASTER_PORT", 1, 65535);
  return e;
}

struct DistributedContext::Impl {
  DistributedContext& owner;
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroup> group;

  // A failed collective: name the ranks that no longer answer. Each rank that sees a failure
  // checks in at the store (hosted by rank 0) and looks for the others' check-ins for a few
  // seconds; the ranks missing then are dead or stalled.
  std::string missing_ranks() {
    const int me = owner.rank(), n = owner.world_size();
    try {
      store->set("failed/" + std::to_string(me), std::vector<uint8_t>{1});
      std::vector<int> missing;
      const auto deadline = Clock::now() + std::min<std::chrono::seconds>(owner.timeout_, std::chrono::seconds(5));
      do {
        missing.clear();
        for (int r = 0; r < n; ++r)
          if (r != me && !store->check({"failed/" + std::to_string(r)})) missing.push_back(r);
        if (missing.empty()) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      } while (Clock::now() < deadline);
      if (missing.empty()) return "every rank is still reachable";
      std::string s = missing.size() == 1 ? "rank " : "ranks ";
      for (size_t i = 0; i < missing.size(); ++i) s += (i ? ", " : "") + std::to_string(missing[i]);
      return s + " did not answer (dead or stalled; timeout " + std::to_string(owner.timeout_.count()) + " s)";
    } catch (const std::exception&) {
      return "rank 0 did not answer (it hosts the rendezvous store at " + owner.env_.master_addr + ":" +
             std::to_string(owner.env_.master_port) + ")";
    }
  }

  void run(const char* what, const c10::intrusive_ptr<c10d::Work>& work, int64_t bytes) {
    const auto t0 = Clock::now();
    try {
      work->wait();
    } catch (const std::exception& e) {
      throw Error("distributed training (rank " + std::to_string(owner.rank()) + " of " +
                  std::to_string(owner.world_size()) + "): the " + what + " failed: " + missing_ranks() +
                  ". Gloo said: " + e.what());
    }
    owner.comm_seconds_ += std::chrono::duration<double>(Clock::now() - t0).count();
    owner.comm_bytes_ += bytes;
  }

  void all_reduce_sum(const char* what, torch::Tensor& t) {
    std::vector<torch::Tensor> v{t};
    run(what, group->allreduce(v), t.numel() * static_cast<int64_t>(t.element_size()));
  }
};

namespace {

// all-gather forward; backward: sum the gathered gradient over the ranks, keep this rank's rows
// (see the header for why the sum).
class GatherWithGrad : public torch::autograd::Function<GatherWithGrad> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& local,
                               DistributedContext::Impl* impl, const std::vector<int64_t>& counts, int rank) {
    const int64_t most = *std::max_element(counts.begin(), counts.end());
    const int world = static_cast<int>(counts.size());
    // Gloo gathers equal shapes: pad to the largest rank's rows, then drop the padding.
    torch::Tensor padded = local.size(0) == most
                               ? local.contiguous()
                               : torch::cat({local, local.new_zeros({most - local.size(0), local.size(1)})});
    std::vector<std::vector<torch::Tensor>> out(1);
    for (int r = 0; r < world; ++r) out[0].push_back(torch::empty_like(padded));
    std::vector<torch::Tensor> in{padded};
    impl->run("all-gather of features", impl->group->allgather(out, in), padded.numel() * padded.element_size());
    std::vector<torch::Tensor> parts;
    int64_t offset = 0;
    for (int r = 0; r < world; ++r) {
      parts.push_back(out[0][r].narrow(0, 0, counts[r]));
      if (r < rank) offset += counts[r];
    }
    // The context outlives the graph of one step; autograd's saved data holds IValues only,
    // hence the pointer as an integer.
    ctx->saved_data["impl"] = reinterpret_cast<int64_t>(impl);
    ctx->saved_data["offset"] = offset;
    ctx->saved_data["rows"] = local.size(0);
    return torch::cat(parts);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto* impl = reinterpret_cast<DistributedContext::Impl*>(ctx->saved_data["impl"].toInt());
    torch::Tensor g = grads[0].contiguous().clone();
    impl->all_reduce_sum("all-reduce of feature gradients", g);
    return {g.narrow(0, ctx->saved_data["offset"].toInt(), ctx->saved_data["rows"].toInt()), torch::Tensor(),
            torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

DistributedContext::DistributedContext(const DistributedEnv& env, std::chrono::seconds timeout, torch::Device device)
    : env_(env), timeout_(timeout), impl_(std::make_unique<Impl>(Impl{*this, {}, {}})) {
  if (env.world_size < 2)
    throw Error("distributed training needs WORLD_SIZE >= 2, found " + std::to_string(env.world_size));
  const std::string where = env.master_addr + ":" + std::to_string(env.master_port);
  try {
    c10d::TCPStoreOptions so;
    so.port = static_cast<uint16_t>(env.master_port);
    so.isServer = env.rank == 0;
    so.numWorkers = env.world_size;
    so.waitWorkers = true;
    so.timeout = timeout;
    auto tcp = c10::make_intrusive<c10d::TCPStore>(env.master_addr, so);
    impl_->store = c10::make_intrusive<c10d::PrefixStore>("clip", tcp);
  } catch (const std::exception& e) {
    throw Error("distributed training (rank " + std::to_string(env.rank) + " of " + std::to_string(env.world_size) +
                "): the rendezvous at MASTER_ADDR:MASTER_PORT = " + where + " failed within " +
                std::to_string(timeout.count()) + " s: " + e.what());
  }
  try {
    if (device.is_cuda()) {
#ifdef USE_C10D_NCCL
      auto o = c10d::ProcessGroupNCCL::Options::create();
      o->timeout = timeout;
      impl_->group = c10::make_intrusive<c10d::ProcessGroupNCCL>(impl_->store, env.rank, env.world_size, o);
#else
      throw Error("this libtorch has no NCCL: distributed training on a CUDA device is not available");
#endif
    } else {
      auto o = c10d::ProcessGroupGloo::Options::create(timeout);
      // As PyTorch: GLOO_SOCKET_IFNAME (comma-separated interfaces) picks the network; otherwise
      // the address this host's name resolves to (falling back to loopback).
      const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
      if (ifname && *ifname) {
        std::string names = ifname;
        for (size_t at = 0; at <= names.size();) {
          const size_t comma = std::min(names.find(',', at), names.size());
          if (comma > at)
            o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(names.substr(at, comma - at)));
          at = comma + 1;
        }
      }
      if (o->devices.empty()) o->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      o->threads = 2;
      impl_->group = c10::make_intrusive<c10d::ProcessGroupGloo>(impl_->store, env.rank, env.world_size, o);
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error("distributed training (rank " + std::to_string(env.rank) + " of " + std::to_string(env.world_size) +
                "): connecting the ranks (store " + where + ") failed within " + std::to_string(timeout.count()) +
                " s: " + e.what());
  }
}

DistributedContext::~DistributedContext() = default;

GatheredFeatures DistributedContext::gather_features(const torch::Tensor& image, const torch::Tensor& text) {
  if (image.dim() != 2 || text.sizes() != image.sizes())
    throw Error("gather_features: expected image and text features of the same shape [N, D], found " +
                c10::str(image.sizes()) + " and " + c10::str(text.sizes()));
  // Row counts first (a rank may have left bad samples out), then one gather of [image | text].
  torch::Tensor count =
      torch::full({1}, image.size(0), torch::TensorOptions().dtype(torch::kInt64).device(image.device()));
  std::vector<std::vector<torch::Tensor>> counts_out(1);
  for (int r = 0; r < world_size(); ++r) counts_out[0].push_back(torch::empty_like(count));
  std::vector<torch::Tensor> counts_in{count};
  impl_->run("all-gather of row counts", impl_->group->allgather(counts_out, counts_in), 8);
  std::vector<int64_t> counts;
  for (const torch::Tensor& c : counts_out[0]) counts.push_back(c.item<int64_t>());

  const int64_t d = image.size(1);
  const torch::Tensor both = GatherWithGrad::apply(torch::cat({image, text}, 1), impl_.get(), counts, rank());
  GatheredFeatures g;
  g.image = both.narrow(1, 0, d);
  g.text = both.narrow(1, d, d);
  for (int r = 0; r < rank(); ++r) g.offset += counts[r];
  return g;
}

void DistributedContext::broadcast(const std::vector<torch::Tensor>& tensors) {
  torch::NoGradGuard no_grad;
  for (const torch::Tensor& t : tensors) {
    // Broadcast writes into the tensors it is given: a contiguous stand-in when t is a view.
    std::vector<torch::Tensor> v{t.is_contiguous() ? t : t.contiguous()};
    impl_->run("broadcast of rank 0's weights", impl_->group->broadcast(v), t.numel() * t.element_size());
    if (!v[0].is_same(t)) t.copy_(v[0]);
  }
}

void DistributedContext::average_gradients(const std::vector<torch::Tensor>& parameters, int64_t bucket_bytes) {
  torch::NoGradGuard no_grad;
  // Buckets of same-dtype gradients, in parameter order (the same on every rank).
  std::vector<torch::Tensor> bucket;
  int64_t bytes = 0;
  auto flush = [&] {
    if (bucket.empty()) return;
    std::vector<torch::Tensor> flat_parts;
    for (const torch::Tensor& g : bucket) flat_parts.push_back(g.reshape({-1}));
    torch::Tensor flat = torch::cat(flat_parts);
    impl_->all_reduce_sum("all-reduce of gradients", flat);
    flat.div_(world_size());
    int64_t at = 0;
    for (torch::Tensor g : bucket) {
      g.copy_(flat.narrow(0, at, g.numel()).view(g.sizes()));
      at += g.numel();
    }
    bucket.clear();
    bytes = 0;
  };
  for (const torch::Tensor& p : parameters) {
    // A parameter this rank's backward left without a gradient gets zeros: every rank's buckets
    // must hold the same tensors in the same order.
    if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
    const torch::Tensor& g = p.grad();
    if (!bucket.empty() && (bucket.front().scalar_type() != g.scalar_type() || bytes >= bucket_bytes)) flush();
    bucket.push_back(g);
    bytes += g.numel() * g.element_size();
  }
  flush();
}

std::vector<double> DistributedContext::sum(const std::vector<double>& values) {
  torch::Tensor t = torch::tensor(values, torch::kFloat64);
  impl_->all_reduce_sum("all-reduce of step status", t);
  return std::vector<double>(t.data_ptr<double>(), t.data_ptr<double>() + t.numel());
}

}  // namespace clip::train
