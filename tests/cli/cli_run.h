// Runs the `clip` binary in a shell and captures its output and exit status (for CLI tests).
#pragma once

#include <sys/wait.h>
#include <cstdio>
#include <string>

namespace clip::test {

struct CliResult {
  int status = -1;     // exit status
  std::string output;  // stdout (and stderr when merged with 2>&1 in args)
};

// Runs shell text (e.g. with environment variables before the binary).
inline CliResult run_shell(const std::string& cmd) {
  CliResult r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  const int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

// `args` is shell text appended to the clip binary's path, e.g. "tokenize 'a dog' 2>&1".
inline CliResult run_clip(const std::string& args) { return run_shell(std::string(CLIP_EXE) + " " + args); }

}  // namespace clip::test
