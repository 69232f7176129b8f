// `clip train` killed with SIGKILL at random moments while it writes a checkpoint every step, then
// resumed with `--resume latest` after the newest checkpoint was cut short (as a power cut could
// leave a file whose writes never reached the disk): the run resumes from the checkpoint before,
// finishes, and its metrics.jsonl holds each step's line exactly once.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "test_paths.h"
#include "train/checkpoint.h"
#include "util/file_io.h"
#include "util/strings.h"

namespace fs = std::filesystem;

namespace {

// Starts `command` (a shell command line; it should `exec` the program, so the pid is its own).
pid_t spawn(const std::string& command) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  return pid;
}

// The exit status, or -signal.
int wait_for(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

int64_t newest_step(const std::string& dir) {
  const std::string latest = clip::train::latest_checkpoint(dir);
  return latest.empty() ? 0 : std::stoll(latest.substr(latest.size() - 11, 8));
}

TEST(TrainKill, ResumeAfterKillsAndATruncatedCheckpointFinishesWithEachMetricOnce) {
  const std::string dir = clip::test::fresh_temp_dir("train_kill");
  std::string csv = "filepath,title\n";
  for (int i = 0; i < 10; ++i)
    csv +=
        clip::test::data_dir() + "/images/files/palette_color_10x10.png,a picture number " + std::to_string(i) + "\n";
  clip::util::write_file_atomic(dir + "/pairs.csv", csv);
  const nlohmann::json config{{"embed_dim", 16},         {"image_resolution", 28},  {"vision_layers", 1},
                              {"vision_width", 32},      {"vision_patch_size", 7},  {"context_length", 16},
                              {"vocab_size", 1024},      {"transformer_width", 32}, {"transformer_heads", 2},
                              {"transformer_layers", 1}, {"vision_head_width", 16}};
  clip::util::write_file_atomic(dir + "/tiny.json", config.dump());
  const std::string run = dir + "/run", checkpoints = run + "/checkpoints";
  const int64_t total_steps = 100;  // 5 steps an epoch × 20
  const std::string command = std::string("exec ") + CLIP_EXE + " train --data csv:" + dir + "/pairs.csv --model " +
                              dir +
                              "/tiny.json --batch-size 2 --epochs 20 --warmup 1 --save-every 1 --keep 3 --log-every 1 "
                              "--threads 1 --workers 1 --no-final-eval --out " +
                              run;

  std::mt19937 rng(12345);
  int kills = 0;
  for (int round = 0; round < 4; ++round) {
    const int64_t before = newest_step(checkpoints);
    const pid_t pid = spawn(command + (before > 0 ? " --resume latest" : "") + " > " + dir + "/log." +
                            std::to_string(round) + " 2>&1");
    // Once it has written a checkpoint of its own, kill it at a random moment (each step writes one).
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (newest_step(checkpoints) <= before && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 200000));
    ::kill(pid, SIGKILL);
    if (wait_for(pid) == -SIGKILL) ++kills;
    ASSERT_LT(newest_step(checkpoints), total_steps) << "the run finished before it was killed";
    ASSERT_GT(newest_step(checkpoints), before) << clip::util::read_file(dir + "/log." + std::to_string(round));
  }
  EXPECT_EQ(kills, 4);

  // The newest checkpoint cut short; a temporary file as a killed writer leaves it.
  const std::string newest = clip::train::latest_checkpoint(checkpoints);
  const int64_t truncated_step = newest_step(checkpoints);
  fs::resize_file(newest, fs::file_size(newest) / 2);
  clip::util::write_file_atomic(checkpoints + "/step-00000999.pt.tmp.1", "partial");
  const int64_t previous_step = [&] {
    const auto all = clip::train::checkpoints_newest_first(checkpoints);
    return all.size() >= 2 ? std::stoll(all[1].substr(all[1].size() - 11, 8)) : int64_t{-1};
  }();
  ASSERT_GT(previous_step, 0);

  const int status = wait_for(spawn(command + " --resume latest > " + dir + "/log.final 2>&1"));
  const std::string log = clip::util::read_file(dir + "/log.final");
  ASSERT_EQ(status, 0) << log;
  EXPECT_NE(log.find("skipping"), std::string::npos) << log;
  EXPECT_NE(log.find(newest), std::string::npos) << log;
  EXPECT_NE(log.find("resumed from " + clip::train::checkpoint_path(checkpoints, previous_step) + " at step " +
                     std::to_string(previous_step)),
            std::string::npos)
      << log;

  // Each step's line once, in order: none repeated from the killed runs, none missing.
  std::vector<int64_t> steps;
  for (const std::string& line : clip::util::split_lines(clip::util::read_file(run + "/metrics.jsonl"))) {
    if (line.empty()) continue;
    const nlohmann::json j = nlohmann::json::parse(line);
    if (j.contains("loss")) steps.push_back(j["step"].get<int64_t>());
  }
  std::vector<int64_t> expected(total_steps);
  for (int64_t i = 0; i < total_steps; ++i) expected[i] = i + 1;
  EXPECT_EQ(steps, expected) << "truncated checkpoint at step " << truncated_step << ", resumed at " << previous_step;
  for (const auto& e : fs::directory_iterator(checkpoints))
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();
  const nlohmann::json summary = nlohmann::json::parse(clip::util::read_file(run + "/summary.json"));
  EXPECT_EQ(summary["steps"], total_steps);
  EXPECT_EQ(summary["interrupted"], false);
}

}  // namespace
