// The local launcher: a free port, this process's own command line, one worker process per rank.
#include "train/launcher.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "clip/error.h"

extern char** environ;

namespace clip::train {
namespace {

using Clock = std::chrono::steady_clock;

// A port the kernel says is free now (it could be taken before rank 0 binds it; unlikely on
// one machine, and the rendezvous then fails with a clear error).
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw Error(std::string("--nproc-per-node: cannot open a socket: ") + std::strerror(errno));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    const std::string why = std::strerror(errno);
    ::close(fd);
    throw Error("--nproc-per-node: cannot find a free port on 127.0.0.1: " + why);
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

std::vector<std::string> own_command_line() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  const std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> args;
  std::string cur;
  for (char c : all) {
    if (c == '\0') {
      args.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (args.empty()) throw Error("--nproc-per-node: cannot read this process's command line from /proc/self/cmdline");
  return args;
}

// The workers' command line: ours without the launcher flag and the thread counts (given anew).
std::vector<std::string> worker_arguments(const std::vector<std::string>& args, int threads, int workers) {
  std::vector<std::string> out;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    bool dropped = false;
    for (const char* flag : {"--nproc-per-node", "--threads", "--workers"}) {
      if (a == flag) {
        ++i;  // and its value
        dropped = true;
      } else if (a.rfind(std::string(flag) + "=", 0) == 0) {
        dropped = true;
      }
      if (dropped) break;
    }
    if (!dropped) out.push_back(a);
  }
  out.insert(out.end(), {"--threads", std::to_string(threads)});
  if (workers > 0) out.insert(out.end(), {"--workers", std::to_string(workers)});
  return out;
}

int exit_code(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status); }

}  // namespace

int launch_local_workers(int nproc, int threads, int workers, const std::atomic<bool>* stop_flag) {
  if (nproc < 1) throw Error("--nproc-per-node must be at least 1, found " + std::to_string(nproc));
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int per_threads = std::max(1, (threads > 0 ? threads : cores) / nproc);
  const int per_workers = workers < 0 ? -1 : std::max(1, (workers > 0 ? workers : cores) / nproc);
  const std::vector<std::string> args = worker_arguments(own_command_line(), per_threads, per_workers);
  const int port = free_port();

  std::vector<std::string> base_env;
  for (char** e = environ; *e; ++e) {
    const std::string v = *e;
    bool ours = false;
    for (const char* k : {"RANK=", "WORLD_SIZE=", "LOCAL_RANK=", "LOCAL_WORLD_SIZE=", "MASTER_ADDR=", "MASTER_PORT="})
      ours = ours || v.rfind(k, 0) == 0;
    if (!ours) base_env.push_back(v);
  }
  std::vector<pid_t> pids;
  auto terminate_all = [&](int sig) {
    for (pid_t p : pids)
      if (p > 0) ::kill(p, sig);
  };
  for (int r = 0; r < nproc; ++r) {
    std::vector<std::string> env = base_env;
    env.insert(env.end(), {"RANK=" + std::to_string(r), "WORLD_SIZE=" + std::to_string(nproc),
                           "LOCAL_RANK=" + std::to_string(r), "LOCAL_WORLD_SIZE=" + std::to_string(nproc),
                           "MASTER_ADDR=127.0.0.1", "MASTER_PORT=" + std::to_string(port)});
    // Built before fork: the child only calls execve (async-signal-safe).
    std::vector<char*> argv, envp;
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    for (const std::string& e : env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    const pid_t pid = ::fork();
    if (pid < 0) {
      terminate_all(SIGKILL);
      throw Error(std::string("--nproc-per-node: cannot start worker ") + std::to_string(r) + ": " +
                  std::strerror(errno));
    }
    if (pid == 0) {
      ::execve("/proc/self/exe", argv.data(), envp.data());
      _exit(127);
    }
    pids.push_back(pid);
  }

  // Wait for all; on the first failure (or a stop request) terminate the others, then kill
  // whatever is still running after a grace period.
  int first_failure = 0;
  size_t running = pids.size();
  bool terminating = false;
  Clock::time_point kill_at{};
  while (running > 0) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid > 0) {
      int rank = -1;
      for (size_t r = 0; r < pids.size(); ++r)
        if (pids[r] == pid) {
          pids[r] = -1;
          rank = static_cast<int>(r);
          --running;
        }
      const int code = exit_code(status);
      // Named, so that the rank to rerun (or to look at) is known; ranks stopped by us are not news.
      if (code != 0 && rank >= 0 && !terminating) {
        if (WIFSIGNALED(status))
          std::fprintf(stderr, "error: rank %d (pid %d) was killed by signal %d (%s)\n", rank, static_cast<int>(pid),
                       WTERMSIG(status), strsignal(WTERMSIG(status)));
        else
          std::fprintf(stderr, "error: rank %d (pid %d) failed with exit status %d\n", rank, static_cast<int>(pid), code);
      }
      if (code != 0 && first_failure == 0) first_failure = code;
    } else if (pid < 0 && errno != EINTR) {
      break;
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (!terminating && (first_failure != 0 || (stop_flag && stop_flag->load()))) {
      terminating = true;
      kill_at = Clock::now() + std::chrono::seconds(first_failure != 0 ? 15 : 120);
      // A stop request reaches the workers as SIGTERM: they stop together with a checkpoint.
      terminate_all(SIGTERM);
    }
    if (terminating && running > 0 && Clock::now() > kill_at) {
      terminate_all(SIGKILL);
      kill_at = Clock::now() + std::chrono::hours(1);
    }
  }
  return first_failure;
}

}  // namespace clip::train
