// Small helpers shared by the benchmark programs.
#pragma once

#include <algorithm>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

namespace clip::bench {

// Runs a shell command and returns its standard output; throws when it fails.
inline std::string run_command(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) throw std::runtime_error("cannot run: " + cmd);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  if (pclose(p) != 0) throw std::runtime_error("command failed: " + cmd + "\n" + out);
  return out;
}

// The process's resident set, its peak so far and its anonymous part (VmRSS, VmHWM, RssAnon of
// /proc/self/status: RssAnon leaves out the clean file pages of mapped files), in MB.
struct Rss {
  double now_mb = 0, peak_mb = 0, anon_mb = 0;
};
inline Rss read_rss() {
  Rss r;
  FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return r;
  char line[256];
  while (std::fgets(line, sizeof line, f)) {
    double kb = 0;
    if (std::sscanf(line, "VmRSS: %lf kB", &kb) == 1) r.now_mb = kb / 1024;
    if (std::sscanf(line, "VmHWM: %lf kB", &kb) == 1) r.peak_mb = kb / 1024;
    if (std::sscanf(line, "RssAnon: %lf kB", &kb) == 1) r.anon_mb = kb / 1024;
  }
  std::fclose(f);
  return r;
}

// Resets the peak (VmHWM) to the current RSS, so a phase's own peak can be read (Linux >= 4.0).
inline bool reset_peak_rss() {
  FILE* f = std::fopen("/proc/self/clear_refs", "w");
  if (!f) return false;
  const bool ok = std::fputs("5", f) >= 0;
  return std::fclose(f) == 0 && ok;
}

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace clip::bench
