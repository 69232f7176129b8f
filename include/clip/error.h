// The one exception type CLIP++ throws for bad input and failed operations.
#pragma once

#include <stdexcept>
#include <string>

namespace clip {

// Thrown for every user-facing failure. The message names the input (file, tensor, field,
// flag), what was found and what was expected.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace clip
