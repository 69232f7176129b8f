// `clip serve` as a process: it opens the port, becomes ready, and exits 0 on SIGTERM and SIGINT
// after finishing; bad flags fail with a message.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <regex>
#include <thread>

#include "cli/cli_run.h"
#include "tiny_model.h"

namespace {

using clip::test::model_path;

struct Child {
  pid_t pid = -1;
  int err_fd = -1;  // the child's stderr
  std::string log;
  // Reads stderr until `pattern` matches (or the child closes it); returns the first group.
  std::string read_until(const std::regex& pattern) {
    char buf[4096];
    std::smatch m;
    for (;;) {
      if (std::regex_search(log, m, pattern)) return m[1];
      const ssize_t n = ::read(err_fd, buf, sizeof buf);
      if (n <= 0) return "";
      log.append(buf, static_cast<size_t>(n));
    }
  }
  int wait_exit() {
    int status = 0;
    ::waitpid(pid, &status, 0);
    char buf[4096];
    ssize_t n;
    while ((n = ::read(err_fd, buf, sizeof buf)) > 0) log.append(buf, static_cast<size_t>(n));
    ::close(err_fd);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
};

Child spawn_serve(const std::vector<std::string>& extra) {
  int fds[2];
  if (::pipe(fds) != 0) throw std::runtime_error("pipe failed");
  std::vector<std::string> args = {CLIP_EXE, "serve", "--model", model_path(), "--port", "0", "--threads", "2"};
  args.insert(args.end(), extra.begin(), extra.end());
  Child c;
  c.pid = ::fork();
  if (c.pid == 0) {
    ::dup2(fds[1], 2);
    ::close(fds[0]);
    ::close(fds[1]);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(CLIP_EXE, argv.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  c.err_fd = fds[0];
  return c;
}

}  // namespace

TEST(ServeCli, StopsCleanlyOnSigtermAndSigint) {
  for (const int sig : {SIGTERM, SIGINT}) {
    Child c = spawn_serve({});
    const std::string port = c.read_until(std::regex(R"(listening on http://127\.0\.0\.1:(\d+)/)"));
    ASSERT_FALSE(port.empty()) << c.log;
    ASSERT_FALSE(c.read_until(std::regex("(ready)")).empty()) << c.log;
    httplib::Client client("127.0.0.1", std::stoi(port));
    auto r = client.Get("/healthz");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    ::kill(c.pid, sig);
    EXPECT_EQ(c.wait_exit(), 0) << c.log;
    EXPECT_NE(c.log.find("stopped"), std::string::npos) << c.log;
  }
}

TEST(ServeCli, BadFlagsAndUnloadableModelsFailWithAMessage) {
  auto r = clip::test::run_clip("serve --port 0 2>&1");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("--model"), std::string::npos) << r.output;
  r = clip::test::run_clip("serve --model " + model_path() + " --port 70000 2>&1");
  EXPECT_EQ(r.status, 2) << r.output;
  r = clip::test::run_clip("serve --index /nonexistent/index --port 0 2>&1");
  EXPECT_EQ(r.status, 3);  // not found: the load error keeps its kind
  EXPECT_NE(r.output.find("not an index folder"), std::string::npos) << r.output;
  // The port opens before the model loads; a model that cannot load ends the process with the
  // status of its error's kind (a PNG is no checkpoint format CLIP++ reads: unsupported, 5).
  r = clip::test::run_clip("serve --model " + clip::test::data_dir() + "/images/files/chelsea.png --port 0 2>&1");
  EXPECT_EQ(r.status, 5) << r.output;
  EXPECT_NE(r.output.find("error:"), std::string::npos) << r.output;
}
