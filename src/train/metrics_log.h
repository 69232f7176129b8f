// metrics.jsonl: one JSON object a line, appended and flushed as the run goes. A resumed run
// first cuts the file back to what it held when its checkpoint was saved, so that no line is
// written twice and none describes steps the resumed run does again.
#pragma once

#include <cstdint>
#include <string>

namespace clip::train {

class MetricsLog {
 public:
  // A new run (resumed_step < 0) empties the file. A resumed one keeps its first `resume_bytes`
  // (the length recorded in the checkpoint), or, for a checkpoint that recorded none, the lines
  // whose "step" is at most `resumed_step`; a partial last line is dropped in both cases.
  MetricsLog(const std::string& path, int64_t resumed_step, int64_t resume_bytes);
  ~MetricsLog();
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;

  void append(const std::string& line);  // one line, without its newline
  // Makes the lines so far durable and returns the file's length (what a checkpoint records).
  int64_t sync();

 private:
  std::string path_;
  int fd_ = -1;
  int64_t length_ = 0;
};

}  // namespace clip::train
