// Data-parallel training over Gloo on 127.0.0.1.
//  - The gradient arithmetic, in one process with a rank per thread: the averaged gradients of W
//    ranks equal the single-process gradient of the global batch (global loss and --local-loss).
//  - Whole runs of the `clip` command: 2 ranks × B/2 end with the same losses and weights as
//    1 rank × B on the same data order; a killed rank makes the other fail within the timeout with
//    an error naming it, and the run resumes (on another world size) to the end.
#include <gtest/gtest.h>

#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <thread>

#include "clip/data.h"
#include "clip/error.h"
#include "clip/model.h"
#include "clip/train.h"
#include "model/model_access.h"
#include "model/modules.h"
#include "test_paths.h"
#include "train/distributed.h"
#include "util/file_io.h"
#include "util/strings.h"

extern char** environ;

namespace {

using clip::train::DistributedContext;
using clip::train::DistributedEnv;

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// ---- the environment ------------------------------------------------------------------------

// Sets torchrun's variables for one test and restores the previous environment after it.
class ScopedEnv {
 public:
  explicit ScopedEnv(const std::vector<std::pair<std::string, const char*>>& vars) {
    for (const char* k : {"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"}) {
      const char* v = std::getenv(k);
      saved_.emplace_back(k, v ? std::optional<std::string>(v) : std::nullopt);
      ::unsetenv(k);
    }
    for (const auto& [k, v] : vars)
      if (v) ::setenv(k.c_str(), v, 1);
  }
  ~ScopedEnv() {
    for (const auto& [k, v] : saved_) v ? ::setenv(k.c_str(), v->c_str(), 1) : ::unsetenv(k.c_str());
  }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

std::string env_error(const std::vector<std::pair<std::string, const char*>>& vars) {
  ScopedEnv env(vars);
  try {
    clip::train::distributed_env_from_environment();
  } catch (const clip::Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(DistributedEnvironment, AbsentWorldSizeIsOneProcess) {
  ScopedEnv env({});
  const DistributedEnv e = clip::train::distributed_env_from_environment();
  EXPECT_EQ(e.world_size, 1);
  EXPECT_EQ(e.rank, 0);
}

TEST(DistributedEnvironment, ReadsTorchrunVariables) {
  ScopedEnv env({{"WORLD_SIZE", "4"},
                 {"RANK", "3"},
                 {"LOCAL_RANK", "1"},
                 {"LOCAL_WORLD_SIZE", "2"},
                 {"MASTER_ADDR", "10.0.0.7"},
                 {"MASTER_PORT", "29511"}});
  const DistributedEnv e = clip::train::distributed_env_from_environment();
  EXPECT_EQ(e.world_size, 4);
  EXPECT_EQ(e.rank, 3);
  EXPECT_EQ(e.local_rank, 1);
  EXPECT_EQ(e.local_world_size, 2);
  EXPECT_EQ(e.master_addr, "10.0.0.7");
  EXPECT_EQ(e.master_port, 29511);
}

TEST(DistributedEnvironment, ErrorsNameTheVariable) {
  const std::vector<std::pair<std::string, const char*>> good{{"WORLD_SIZE", "2"},          {"RANK", "1"},
                                                              {"LOCAL_RANK", "1"},          {"LOCAL_WORLD_SIZE", "2"},
                                                              {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", "29500"}};
  auto with = [&](const std::string& key, const char* value) {
    auto v = good;
    for (auto& [k, val] : v)
      if (k == key) val = value;
    return v;
  };
  EXPECT_NE(env_error(with("RANK", nullptr)).find("RANK is not set"), std::string::npos);
  EXPECT_NE(env_error(with("RANK", "2")).find("RANK=\"2\""), std::string::npos);
  EXPECT_NE(env_error(with("MASTER_ADDR", nullptr)).find("MASTER_ADDR"), std::string::npos);
  EXPECT_NE(env_error(with("MASTER_PORT", "http")).find("MASTER_PORT=\"http\""), std::string::npos);
  EXPECT_NE(env_error(with("LOCAL_RANK", "-1")).find("LOCAL_RANK"), std::string::npos);
  EXPECT_NE(env_error(with("WORLD_SIZE", "two")).find("WORLD_SIZE"), std::string::npos);
  EXPECT_EQ(env_error(good), "(no error)");
}

// ---- the gradient arithmetic, one rank per thread ---------------------------------------------

struct Params {
  torch::Tensor image_proj, text_proj, logit_scale;
  std::vector<torch::Tensor> list() const { return {image_proj, text_proj, logit_scale}; }
};

Params fresh_params(const Params& init) {
  return {init.image_proj.clone().set_requires_grad(true), init.text_proj.clone().set_requires_grad(true),
          init.logit_scale.clone().set_requires_grad(true)};
}

std::pair<torch::Tensor, torch::Tensor> features(const Params& p, const torch::Tensor& x, const torch::Tensor& y) {
  const torch::Tensor i = torch::matmul(x, p.image_proj), t = torch::matmul(y, p.text_proj);
  return {i / i.norm(2, -1, true), t / t.norm(2, -1, true)};
}

// Runs `world` ranks over rows split as `rows`, each computing its loss on gathered features and
// averaging gradients; returns each rank's parameters (with their .grad) after that.
std::vector<Params> distributed_gradients(const Params& init, const torch::Tensor& x, const torch::Tensor& y,
                                          const std::vector<int64_t>& rows, bool local_loss) {
  const int world = static_cast<int>(rows.size());
  const int port = free_port();
  std::vector<Params> out(world);
  std::vector<std::string> errors(world);
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r) {
    threads.emplace_back([&, r] {
      try {
        DistributedEnv env;
        env.rank = r;
        env.world_size = world;
        env.local_rank = r;
        env.local_world_size = world;
        env.master_addr = "127.0.0.1";
        env.master_port = port;
        DistributedContext dist(env, std::chrono::seconds(30), torch::kCPU);
        int64_t start = 0;
        for (int s = 0; s < r; ++s) start += rows[s];
        Params p = fresh_params(init);
        auto [i, t] = features(p, x.narrow(0, start, rows[r]), y.narrow(0, start, rows[r]));
        const clip::train::GatheredFeatures all = dist.gather_features(i, t);
        EXPECT_EQ(all.offset, start);
        const torch::Tensor loss =
            local_loss ? clip::train::contrastive_loss_local(i, t, all.image, all.text, all.offset, p.logit_scale)
                       : clip::train::contrastive_loss(all.image, all.text, p.logit_scale);
        loss.backward();
        dist.average_gradients(p.list());
        out[r] = p;
      } catch (const std::exception& e) {
        errors[r] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int r = 0; r < world; ++r) EXPECT_EQ(errors[r], "") << "rank " << r;
  return out;
}

void expect_same_gradients(const std::vector<int64_t>& rows, bool local_loss) {
  torch::manual_seed(7);
  int64_t n = 0;
  for (int64_t r : rows) n += r;
  const torch::Tensor x = torch::randn({n, 6}, torch::kFloat64), y = torch::randn({n, 5}, torch::kFloat64);
  const Params init{torch::randn({6, 4}, torch::kFloat64), torch::randn({5, 4}, torch::kFloat64),
                    torch::full({}, std::log(1 / 0.07), torch::kFloat64)};
  Params single = fresh_params(init);
  auto [i, t] = features(single, x, y);
  clip::train::contrastive_loss(i, t, single.logit_scale).backward();

  const std::vector<Params> ranks = distributed_gradients(init, x, y, rows, local_loss);
  for (size_t r = 0; r < ranks.size(); ++r) {
    ASSERT_TRUE(ranks[r].image_proj.grad().defined()) << "rank " << r;
    const auto expected = single.list(), got = ranks[r].list();
    for (size_t k = 0; k < expected.size(); ++k) {
      // The gradient is far from zero, so the comparison is meaningful.
      EXPECT_GT(expected[k].grad().abs().max().item<double>(), 1e-3);
      // The losses compute in fp32 (and --local-loss in another order): agreement to fp32 rounding;
      // a wrong factor or a missing term would be off by far more.
      const double scale = expected[k].grad().abs().max().item<double>();
      EXPECT_LT((got[k].grad() - expected[k].grad()).abs().max().item<double>(), 2e-6 * scale)
          << "rank " << r << ", parameter " << k << "\n"
          << got[k].grad() << "\nexpected\n"
          << expected[k].grad();
    }
  }
}

TEST(DistributedGradients, TwoRanksMatchOneProcess) { expect_same_gradients({4, 4}, false); }
TEST(DistributedGradients, TwoRanksLocalLossMatchOneProcess) { expect_same_gradients({4, 4}, true); }
TEST(DistributedGradients, ThreeRanksLocalLossMatchOneProcess) { expect_same_gradients({3, 3, 3}, true); }
// A rank that lost bad samples holds fewer rows: the gather pads and unpads.
TEST(DistributedGradients, UnequalRowCountsMatchOneProcess) { expect_same_gradients({3, 5}, false); }

TEST(DistributedGradients, AveragingUsesSeveralBuckets) {
  const int port = free_port();
  std::vector<std::vector<torch::Tensor>> grads(2);
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&, r] {
      DistributedEnv env{r, 2, r, 2, "127.0.0.1", port};
      DistributedContext dist(env, std::chrono::seconds(30), torch::kCPU);
      std::vector<torch::Tensor> params;
      for (int k = 0; k < 5; ++k) {
        torch::Tensor p = torch::zeros({100 + k}, torch::kFloat32).set_requires_grad(true);
        p.mutable_grad() = torch::full({100 + k}, static_cast<float>((r + 1) * (k + 1)));
        params.push_back(p);
      }
      dist.average_gradients(params, /*bucket_bytes=*/512);  // ~1 tensor per bucket
      for (const auto& p : params) grads[r].push_back(p.grad());
    });
  }
  for (auto& t : threads) t.join();
  for (int r = 0; r < 2; ++r)
    for (int k = 0; k < 5; ++k) EXPECT_TRUE(torch::allclose(grads[r][k], torch::full({100 + k}, 1.5f * (k + 1))));
}

// ---- whole runs of `clip train` --------------------------------------------------------------

std::string tiny_config(const std::string& dir) {
  const std::string path = dir + "/tiny.json";
  nlohmann::json c{{"embed_dim", 32},         {"image_resolution", 28},  {"vision_layers", 1},
                   {"vision_width", 32},      {"vision_patch_size", 7},  {"context_length", 16},
                   {"vocab_size", 1024},      {"transformer_width", 32}, {"transformer_heads", 2},
                   {"transformer_layers", 1}, {"vision_head_width", 16}};
  clip::util::write_file_atomic(path, c.dump());
  return path;
}

std::string train_command(const std::string& dir, const std::string& out, int64_t steps, const std::string& extra) {
  return std::string(CLIP_EXE) + " train --data fashion-mnist --val-size 0 --model " + tiny_config(dir) + " --out " +
         out + " --batch-size 16 --epochs 1 --steps " + std::to_string(steps) +
         " --warmup 2 --lr 1e-3 --precision fp32 --log-every 1 --seed 3 " + extra;
}

int run(const std::string& command, const std::string& log) {
  const int status = std::system((command + " > '" + log + "' 2>&1").c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::vector<double> losses(const std::string& run_dir) {
  std::vector<double> out;
  for (const std::string& line : clip::util::split_lines(clip::util::read_file(run_dir + "/metrics.jsonl")))
    if (!line.empty()) {
      const auto j = nlohmann::json::parse(line);
      if (j.contains("loss")) out.push_back(j["loss"].get<double>());
    }
  return out;
}

// The largest |difference| of two models' weights, and the parameter where it is. Attention's key
// bias (the middle third of in_proj_bias) is left out: softmax ignores a shift shared by all keys,
// so its exact gradient is zero and what both runs compute is float rounding noise, which AdamW
// normalizes into steps of up to ~lr in either run. It is only checked to stay near its start.
std::pair<double, std::string> max_weight_difference(const std::string& a, const std::string& b) {
  const clip::Model ma = clip::Model::load(a), mb = clip::Model::load(b);
  const auto pa = clip::model::module_of(ma)->named_parameters(true);
  const auto pb = clip::model::module_of(mb)->named_parameters(true);
  EXPECT_EQ(pa.size(), pb.size());
  std::pair<double, std::string> worst{0.0, ""};
  for (const auto& p : pa) {
    torch::Tensor x = p.value(), y = pb[p.key()];
    const std::string suffix = "attn.in_proj_bias";
    if (p.key().size() >= suffix.size() &&
        p.key().compare(p.key().size() - suffix.size(), suffix.size(), suffix) == 0) {
      const auto xs = x.chunk(3), ys = y.chunk(3);
      EXPECT_LT((xs[1] - ys[1]).abs().max().item<double>(), 1e-3) << p.key() << " (keys)";
      x = torch::cat({xs[0], xs[2]});
      y = torch::cat({ys[0], ys[2]});
    }
    const double d = (x - y).abs().max().item<double>();
    if (d > worst.first) worst = {d, p.key()};
  }
  return worst;
}

class DistributedRun : public ::testing::Test {
 protected:
  static constexpr int64_t kSteps = 6;
  // The reference: one process with the global batch.
  static void SetUpTestSuite() {
    if (!clip::test::path_exists(std::string(clip::data::kFashionMnistDir) + "/train-images-idx3-ubyte.gz")) return;
    dir_ = new std::string(clip::test::fresh_temp_dir("dist_run"));
    reference_status_ =
        run(train_command(*dir_, *dir_ + "/one", kSteps, "--threads 1 --workers 1"), *dir_ + "/one.log");
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  void expect_same_as_reference(const std::string& name, const std::string& flags) {
    ASSERT_EQ(reference_status_, 0) << clip::util::read_file(*dir_ + "/one.log");
    const std::string out = *dir_ + "/" + name;
    ASSERT_EQ(
        run(train_command(*dir_, out, kSteps, "--nproc-per-node 2 --threads 2 --workers 2 " + flags), out + ".log"), 0)
        << clip::util::read_file(out + ".log");
    const std::vector<double> one = losses(*dir_ + "/one"), two = losses(out);
    ASSERT_EQ(one.size(), static_cast<size_t>(kSteps));
    ASSERT_EQ(two.size(), one.size());
    for (size_t k = 0; k < one.size(); ++k) EXPECT_NEAR(two[k], one[k], 1e-5) << "step " << k + 1;
    EXPECT_GT(one.front() - one.back(), 0.0) << "the weights changed the loss (the runs did train)";
    const auto [diff, where] = max_weight_difference(*dir_ + "/one/model.safetensors", out + "/model.safetensors");
    EXPECT_LE(diff, 1e-5) << "at " << where;
    const nlohmann::json summary = nlohmann::json::parse(clip::util::read_file(out + "/summary.json"));
    EXPECT_EQ(summary["steps"].get<int64_t>(), kSteps);
    EXPECT_EQ(summary["samples"].get<int64_t>(), kSteps * 16);
  }

  static std::string* dir_;
  static int reference_status_;
};
std::string* DistributedRun::dir_ = nullptr;
int DistributedRun::reference_status_ = -1;

TEST_F(DistributedRun, TwoRanksHalfBatchEqualOneProcess) {
  CLIP_REQUIRE_FASHION_MNIST();
  expect_same_as_reference("two", "");
}

TEST_F(DistributedRun, TwoRanksLocalLossEqualOneProcess) {
  CLIP_REQUIRE_FASHION_MNIST();
  expect_same_as_reference("two_local", "--local-loss");
}

TEST(DistributedLauncher, ForwardsTheWorkersFailure) {
  const std::string dir = clip::test::fresh_temp_dir("dist_launcher");
  // 15 rows cannot be split over 2 ranks: both workers fail before loading anything.
  const int status =
      run(std::string(CLIP_EXE) + " train --nproc-per-node 2 --batch-size 15 --out " + dir + "/run", dir + "/log");
  const std::string log = clip::util::read_file(dir + "/log");
  EXPECT_EQ(status, 1) << log;
  EXPECT_NE(log.find("divisible by the world size 2"), std::string::npos) << log;
}

// Starts `command` as one rank (its output in `log`); returns the pid.
pid_t start_rank(const std::string& command, const std::string& log, int rank, int port) {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) env.emplace_back(*e);
  env.insert(env.end(), {"RANK=" + std::to_string(rank), "WORLD_SIZE=2", "LOCAL_RANK=" + std::to_string(rank),
                         "LOCAL_WORLD_SIZE=2", "MASTER_ADDR=127.0.0.1", "MASTER_PORT=" + std::to_string(port)});
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string shell = "exec " + command + " > '" + log + "' 2>&1";
  std::vector<char*> argv{const_cast<char*>("sh"), const_cast<char*>("-c"), shell.data(), nullptr};
  pid_t pid = 0;
  EXPECT_EQ(::posix_spawn(&pid, "/bin/sh", nullptr, nullptr, argv.data(), envp.data()), 0);
  return pid;
}

// Waits for `pid` to end for at most `limit`; returns its wait status, or kills it and returns -1.
int wait_at_most(pid_t pid, std::chrono::seconds limit) {
  const auto t0 = std::chrono::steady_clock::now();
  int status = 0;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() - t0 > limit) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return status;
}

bool wait_for_file(const std::string& path, std::chrono::seconds limit) {
  const auto t0 = std::chrono::steady_clock::now();
  while (!clip::test::path_exists(path) && std::chrono::steady_clock::now() - t0 < limit)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  return clip::test::path_exists(path);
}

// A stalled rank (stopped, its connections still open) is only noticed by the timeout.
TEST(DistributedFailure, StalledRankStopsTheOtherAfterTheTimeout) {
  CLIP_REQUIRE_FASHION_MNIST();
  const std::string dir = clip::test::fresh_temp_dir("dist_stall"), out = dir + "/run";
  const int port = free_port();
  const std::string command =
      train_command(dir, out, 1000, "--threads 1 --workers 1 --save-every 2 --keep 1 --dist-timeout 5");
  const pid_t rank0 = start_rank(command, dir + "/rank0.log", 0, port);
  const pid_t rank1 = start_rank(command, dir + "/rank1.log", 1, port);
  const bool started = wait_for_file(out + "/checkpoints/step-00000002.pt", std::chrono::seconds(60));
  ::kill(rank1, SIGSTOP);
  const auto stalled = std::chrono::steady_clock::now();
  const int status = wait_at_most(rank0, std::chrono::seconds(60));
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - stalled).count();
  ::kill(rank1, SIGKILL);
  ::waitpid(rank1, nullptr, 0);
  const std::string log0 = clip::util::read_file(dir + "/rank0.log");
  ASSERT_TRUE(started) << log0;
  ASSERT_NE(status, -1) << "rank 0 still ran 60 s after rank 1 stalled\n" << log0;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << log0;
  // The 5 s timeout, then up to 5 s of looking for the missing rank, plus slack for a loaded machine.
  EXPECT_GE(waited, 4.5) << log0;
  EXPECT_LT(waited, 5 + 5 + 10) << log0;
  EXPECT_NE(log0.find("rank 1 did not answer"), std::string::npos) << log0;
}

TEST(DistributedFailure, KilledRankStopsTheOtherWithinTheTimeoutAndTheRunResumes) {
  CLIP_REQUIRE_FASHION_MNIST();
  const std::string dir = clip::test::fresh_temp_dir("dist_kill"), out = dir + "/run";
  constexpr int64_t kSteps = 150;
  const int port = free_port();
  const std::string command =
      train_command(dir, out, kSteps, "--threads 1 --workers 1 --save-every 2 --keep 1000 --dist-timeout 10");
  const pid_t rank0 = start_rank(command, dir + "/rank0.log", 0, port);
  const pid_t rank1 = start_rank(command, dir + "/rank1.log", 1, port);

  // Kill rank 1 once rank 0 has written its first checkpoint.
  const auto t0 = std::chrono::steady_clock::now();
  while (!clip::test::path_exists(out + "/checkpoints/step-00000002.pt") &&
         std::chrono::steady_clock::now() - t0 < std::chrono::seconds(60))
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_TRUE(clip::test::path_exists(out + "/checkpoints/step-00000002.pt"))
      << clip::util::read_file(dir + "/rank0.log");
  ::kill(rank1, SIGKILL);
  const auto killed = std::chrono::steady_clock::now();
  int status = 0;
  ::waitpid(rank1, &status, 0);

  // Rank 0 must give up on its own within the timeout (plus start-up slack on a loaded machine).
  pid_t done = 0;
  while ((done = ::waitpid(rank0, &status, WNOHANG)) == 0 &&
         std::chrono::steady_clock::now() - killed < std::chrono::seconds(60))
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  if (done == 0) {
    ::kill(rank0, SIGKILL);
    ::waitpid(rank0, &status, 0);
    FAIL() << "rank 0 still ran 60 s after rank 1 was killed";
  }
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - killed).count();
  const std::string log0 = clip::util::read_file(dir + "/rank0.log");
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << log0;
  EXPECT_LT(waited, 10 + 10) << log0;
  EXPECT_NE(log0.find("rank 1 did not answer"), std::string::npos) << log0;
  EXPECT_EQ(log0.find("model:"), std::string::npos) << "rank 0 did not finish the run";

  // Resume from the last complete checkpoint, on one process: the global position carries over.
  ASSERT_EQ(run(command.substr(0, command.find("--dist-timeout")) + " --resume latest", dir + "/resume.log"), 0)
      << clip::util::read_file(dir + "/resume.log");
  const std::string resume_log = clip::util::read_file(dir + "/resume.log");
  EXPECT_NE(resume_log.find("resumed from"), std::string::npos) << resume_log;
  const nlohmann::json summary = nlohmann::json::parse(clip::util::read_file(out + "/summary.json"));
  EXPECT_EQ(summary["steps"].get<int64_t>(), kSteps);
  EXPECT_EQ(summary["samples"].get<int64_t>(), kSteps * 16);
  EXPECT_TRUE(clip::test::path_exists(out + "/model.safetensors"));
}

}  // namespace
