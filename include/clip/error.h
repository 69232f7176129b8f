// The one exception type CLIP++ throws for bad input and failed operations.
#pragma once

#include <stdexcept>
#include <string>

namespace clip {

// What kind of failure an Error is, so that front ends choose a status without reading the
// message: the server maps kinds to HTTP statuses, the CLI to exit codes.
enum class ErrorKind {
  kInvalidInput,  // the input is malformed or inconsistent (the default)
  kTooLarge,      // the input exceeds a limit (pixels, bytes, counts)
  kNotFound,      // a named file, record, model or entry does not exist
  kIo,            // reading or writing failed for a reason outside the input (disk, permissions)
  kUnsupported,   // valid, but a feature CLIP++ does not (or will not) handle
  kInternal,      // a bug: an invariant did not hold
};

const char* error_kind_name(ErrorKind kind);

// Thrown for every user-facing failure. The message names the input (file, tensor, field,
// flag), what was found and what was expected.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message, ErrorKind kind = ErrorKind::kInvalidInput)
      : std::runtime_error(message), kind_(kind) {}
  explicit Error(const char* message, ErrorKind kind = ErrorKind::kInvalidInput)
      : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

inline const char* error_kind_name(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kInvalidInput: return "invalid input";
    case ErrorKind::kTooLarge: return "too large";
    case ErrorKind::kNotFound: return "not found";
    case ErrorKind::kIo: return "I/O error";
    case ErrorKind::kUnsupported: return "unsupported";
    case ErrorKind::kInternal: return "internal";
  }
  return "unknown";
}

}  // namespace clip
