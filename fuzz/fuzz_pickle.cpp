// libFuzzer target: the restricted unpickler and the torch.save conventions on top of it must
// reject any malformed input with clip::Error, never crash, never leak (cyclic memo references
// included), and never hand out a tensor that reaches past its storage. Each input is also read as
// a TorchScript archive's data.pkl (its allow-list and the module-tree walk).
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "clip/error.h"
#include "io/pickle.h"

namespace pk = clip::io::pickle;

namespace {

void check_tensors(const std::vector<std::pair<std::string, pk::TensorRef>>& tensors) {
  for (const auto& [name, t] : tensors) {
    if (t.extent(name) > t.storage_numel || t.sizes.size() != t.strides.size()) __builtin_trap();
  }
}

void check_state_dict(const pk::Pickle& p) { check_tensors(pk::find_state_dict(p, "fuzz")); }

void check_torchscript(const uint8_t* data, size_t size) {
  try {
    pk::UnpickleOptions options;
    options.allow_global = &pk::torchscript_global_allowed;
    const pk::Pickle p = pk::unpickle(data, size, "fuzz", options);
    check_tensors(pk::find_module_tensors(p, "fuzz"));
  } catch (const clip::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const pk::Pickle p = pk::unpickle(data, size, "fuzz");
    if (p.consumed() > size) __builtin_trap();
    (void)p.describe(p.root_ref());
    // Every node that looks like a tensor call is validated or refused cleanly.
    for (pk::Ref r = 0; r < p.value_count(); ++r) {
      try {
        (void)pk::as_tensor(p, r, "fuzz");
        (void)p.describe(r);
      } catch (const clip::Error&) {
      }
    }
    check_state_dict(p);
  } catch (const clip::Error&) {
  }
  check_torchscript(data, size);
  if (pk::looks_like_legacy_torch(data, size)) {
    try {
      const pk::LegacyLayout l = pk::parse_legacy_torch(data, size, "fuzz");
      for (const auto& s : l.storages)
        if (s.offset > size || s.bytes > size - s.offset) __builtin_trap();
      check_state_dict(l.main);
    } catch (const clip::Error&) {
    }
  }
  return 0;
}
