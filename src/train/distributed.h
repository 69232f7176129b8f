// Data-parallel training over c10d: the process group (TCPStore rendezvous + Gloo on CPU, NCCL on
// a CUDA build), the all-gather of features with gradients and the bucketed gradient all-reduce.
// The `--nproc-per-node` launcher is train/launcher.h. See docs/distributed.md.
//
// The gradient arithmetic (checked by tests/distributed): every rank gathers all ranks' features
// and computes a loss L_r over them (the same global loss, or with --local-loss its own rows and
// columns, the L_r averaging to the global loss). In the backward pass the gradient of the
// gathered tensor is summed over ranks (all-reduce) before the rank keeps its own rows, so the
// rows get Σ_r ∂L_r/∂f; each rank's parameter gradient is then Σ_r ∂L_r/∂θ through its own
// samples, and averaging the parameter gradients over the W ranks gives ∂L/∂θ — the gradient one
// process computes with the global batch.
#pragma once

#include <torch/torch.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace clip::train {

// torchrun's variables. world_size == 1 (WORLD_SIZE unset) is a single process.
struct DistributedEnv {
  int rank = 0, world_size = 1, local_rank = 0, local_world_size = 1;
  std::string master_addr;
  int master_port = 0;
};

// Reads MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE. Without
// WORLD_SIZE (or with WORLD_SIZE=1) the result is a single process; otherwise every variable
// must be present and valid, or clip::Error names the one that is not.
DistributedEnv distributed_env_from_environment();

struct GatheredFeatures {
  torch::Tensor image, text;  // all ranks' rows, in rank order
  int64_t offset = 0;         // where this rank's rows start
};

class DistributedContext {
 public:
  // Joins the group: rank 0 hosts the TCPStore at MASTER_ADDR:MASTER_PORT, every rank connects
  // and builds the process group. `timeout` bounds the rendezvous and every collective.
  DistributedContext(const DistributedEnv& env, std::chrono::seconds timeout, torch::Device device);
  ~DistributedContext();
  DistributedContext(const DistributedContext&) = delete;
  DistributedContext& operator=(const DistributedContext&) = delete;

  int rank() const { return env_.rank; }
  int world_size() const { return env_.world_size; }

  // Every rank's features, differentiable: gradients flow back to this rank's rows as described
  // above. Ranks may hold different numbers of rows (samples skipped as bad).
  GatheredFeatures gather_features(const torch::Tensor& image, const torch::Tensor& text);
  // Rank 0's values into every rank's tensors (in place).
  void broadcast(const std::vector<torch::Tensor>& tensors);
  // Averages the gradients of `parameters` (those with a defined .grad) over the ranks, in
  // flattened buckets of about `bucket_bytes` each.
  void average_gradients(const std::vector<torch::Tensor>& parameters, int64_t bucket_bytes = 25 << 20);
  // Element-wise sum over the ranks of a few doubles (step agreement, logged loss).
  std::vector<double> sum(const std::vector<double>& values);

  // Seconds and bytes (sent by this rank's payload, before the algorithm's own traffic) spent in
  // collectives since the last reset: for the log and the benchmark.
  double comm_seconds() const { return comm_seconds_; }
  int64_t comm_bytes() const { return comm_bytes_; }
  void reset_comm_counters() { comm_seconds_ = 0, comm_bytes_ = 0; }

  struct Impl;  // public for the autograd function in distributed.cpp

 private:
  DistributedEnv env_;
  std::chrono::seconds timeout_;
  std::unique_ptr<Impl> impl_;
  double comm_seconds_ = 0;
  int64_t comm_bytes_ = 0;
  friend struct Impl;
};

}  // namespace clip::train
