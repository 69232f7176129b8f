// The `clip` command's exit status for each kind of clip::Error (README.md, "Exit status").
// Header-only so that the CLI tests check the table itself.
#pragma once

#include "clip/error.h"

namespace clip::cli {

constexpr int kExitUsage = 2;  // CLI11 parse and validation errors

constexpr int exit_status_for(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kInvalidInput: return 1;
    case ErrorKind::kNotFound: return 3;
    case ErrorKind::kIo: return 4;
    case ErrorKind::kUnsupported: return 5;
    case ErrorKind::kTooLarge: return 6;
    case ErrorKind::kInternal: return 70;  // EX_SOFTWARE of sysexits.h
  }
  return 1;
}

}  // namespace clip::cli
