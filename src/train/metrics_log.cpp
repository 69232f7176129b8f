#include "train/metrics_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "clip/error.h"
#include "util/file_io.h"
#include "util/strings.h"

namespace clip::train {
namespace {

// The lines of `text` a run resumed at `step` keeps: every complete line up to `bytes` when the
// checkpoint recorded the length, else every line whose step is not past `step`.
std::string kept_prefix(const std::string& text, int64_t step, int64_t bytes) {
  if (bytes >= 0) {
    const std::string head = text.substr(0, std::min<size_t>(text.size(), static_cast<size_t>(bytes)));
    const size_t end = head.rfind('\n');
    return end == std::string::npos ? "" : head.substr(0, end + 1);
  }
  std::string kept;
  for (const std::string& line : util::split_lines(text)) {
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded()) continue;  // a partial line from an interrupted write
    if (j.is_object() && j.contains("step") && j["step"].is_number_integer() && j["step"].get<int64_t>() > step)
      continue;
    kept += line + "\n";
  }
  return kept;
}

}  // namespace

MetricsLog::MetricsLog(const std::string& path, int64_t resumed_step, int64_t resume_bytes) : path_(path) {
  if (resumed_step >= 0 && util::file_exists(path)) {
    // Rewritten atomically: a crash here leaves the old file, and the next resume cuts it again.
    const std::string kept = kept_prefix(util::read_file(path), resumed_step, resume_bytes);
    util::write_file_atomic(path, kept);
    length_ = static_cast<int64_t>(kept.size());
  }
  const int flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (resumed_step >= 0 ? 0 : O_TRUNC);
  fd_ = ::open(path.c_str(), flags, 0644);
  if (fd_ < 0) throw Error(path + ": cannot open for writing: " + std::strerror(errno), ErrorKind::kIo);
}

MetricsLog::~MetricsLog() {
  if (fd_ >= 0) ::close(fd_);
}

void MetricsLog::append(const std::string& line) {
  const std::string data = line + "\n";
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t w = ::write(fd_, data.data() + done, data.size() - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      throw Error(path_ + ": write failed: " + std::strerror(errno), ErrorKind::kIo);
    }
    done += static_cast<size_t>(w);
  }
  length_ += static_cast<int64_t>(data.size());
}

int64_t MetricsLog::sync() {
  if (::fsync(fd_) != 0) throw Error(path_ + ": cannot sync: " + std::strerror(errno), ErrorKind::kIo);
  return length_;
}

}  // namespace clip::train
