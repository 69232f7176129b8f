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

// `args` is shell text appended to the clip binary's path, e.g. "tokenize 'a dog' 2>&1".
inline CliResult run_clip(const std::string& args) {
  CliResult r;
  const std::string cmd = std::string(CLIP_EXE) + " " + args;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  const int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

}  // namespace clip::test
