// A restricted, torch-free unpickler for PyTorch checkpoints (pickle protocols 2-5, plus the
// few protocol-0/1 opcodes those still emit). It never executes anything: globals are recorded
// (and checked against an allow-list), REDUCE/NEWOBJ calls and BUILD states are kept as nodes of
// a value tree. A handful of allowed calls whose meaning is pure data are folded on the spot:
// `collections.OrderedDict()` becomes a dict, `_codecs.encode(s, "latin1")` becomes bytes, and
// a numpy scalar becomes a number.
//
// The tree lives in an arena (`Pickle`) and refers to its nodes by index, so the memo's shared
// and even cyclic references cost nothing and cannot leak. Nothing here recurses on the input
// except the helpers that take an explicit depth limit.
//
// Also here, still torch-free: the torch.save conventions on top of the tree (a tensor is
// `torch._utils._rebuild_tensor_v2(persistent_id(('storage', torch.HalfStorage, key, location,
// numel)), offset, size, stride, ...)`), finding the state dict inside a checkpoint, the tensors
// of a TorchScript archive's module tree, and the layout of the legacy (pre-1.6, non-zip)
// torch.save format.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "io/safetensors.h"  // DType

namespace clip::io::pickle {

enum class Kind : uint8_t {
  kNone,
  kBool,
  kInt,     // fits in int64: `i`
  kBigInt,  // does not fit: `text` holds the little-endian two's-complement bytes
  kFloat,   // `f`
  kString,  // `text` (UTF-8)
  kBytes,   // `text` (raw bytes; also bytearray)
  kTuple,   // `items`
  kList,    // `items`
  kDict,    // `items` = key0, value0, key1, value1, ... in insertion order (repeats kept)
  kSet,     // `items` (set and frozenset)
  kGlobal,  // `text` = module, `name` = attribute
  kReduce,  // `items` = callable, args [, kwargs]  (REDUCE, NEWOBJ, NEWOBJ_EX)
  kPersId,  // `items` = the persistent id
};

using Ref = uint32_t;
inline constexpr Ref kNoRef = UINT32_MAX;

struct Value {
  Kind kind = Kind::kNone;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string text;
  std::string name;
  std::vector<Ref> items;
  Ref state = kNoRef;  // set by BUILD (the object's __setstate__ argument)
};

// "a dict", "an int", "a call to torch._utils._rebuild_tensor_v2" ...
const char* kind_name(Kind k);

// The parsed pickle: an arena of values and the root (what STOP returned).
class Pickle {
 public:
  const Value& at(Ref r) const { return values_.at(r); }
  const Value& root() const { return at(root_); }
  Ref root_ref() const { return root_; }
  size_t value_count() const { return values_.size(); }
  // Bytes of input up to and including STOP (pickles can be followed by other data).
  size_t consumed() const { return consumed_; }

  // Dict lookup by string key (the first match), or kNoRef.
  Ref dict_get(Ref dict, std::string_view key) const;
  // True when `r` is a Global or a call to (module, name).
  bool is_global(Ref r, std::string_view module, std::string_view name) const;
  bool is_call_to(Ref r, std::string_view module, std::string_view name) const;
  // A short description for messages: "a list", "a dict with keys epoch, name, ...", "an int (3)".
  std::string describe(Ref r) const;

 private:
  friend class Unpickler;
  std::deque<Value> values_;
  Ref root_ = kNoRef;
  size_t consumed_ = 0;
};

// Which globals may appear. Returns true to accept module.name.
using GlobalFilter = bool (*)(std::string_view module, std::string_view name);

// The allow-list for checkpoints (see docs/checkpoints.md): collections.OrderedDict,
// torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter, torch.<T>Storage for the
// ten storage types below, numpy.core.multiarray.scalar (and numpy._core...), numpy.dtype,
// _codecs.encode.
bool checkpoint_global_allowed(std::string_view module, std::string_view name);

struct UnpickleOptions {
  GlobalFilter allow_global = &checkpoint_global_allowed;
  // Upper bound on values created (beyond the input-size bound that holds anyway).
  size_t max_values = size_t{1} << 26;
};

// Parses one pickle from data[0, size). `what` names the input in errors ("x.pt: data.pkl").
// Throws clip::Error naming `what`, the byte offset and the opcode for malformed input, a global
// that is not allowed ("refusing to load global posix.system"), or unsupported opcodes.
Pickle unpickle(const uint8_t* data, size_t size, const std::string& what, const UnpickleOptions& options = {});

// --- torch.save conventions -------------------------------------------------------------------

// The storage class named by a persistent id: torch.HalfStorage -> kF16 etc.
std::optional<DType> storage_dtype(std::string_view module, std::string_view name);

struct TensorRef {
  std::string storage_key;  // the zip record data/<key>, or the legacy storage key
  DType dtype = DType::kF32;
  int64_t storage_numel = 0;  // elements, from the persistent id
  std::string location;       // "cpu", "cuda:0", ...
  int64_t offset = 0;         // elements
  std::vector<int64_t> sizes, strides;

  int64_t numel() const;
  // Elements of the storage the tensor reaches: offset + sum((size-1)*stride) + 1, or 0 when it
  // has no elements. Throws clip::Error naming `where` on negative values or overflow.
  int64_t extent(const std::string& where) const;
};

// The tensor described by `r`: a call to _rebuild_tensor_v2 (possibly inside _rebuild_parameter).
// Returns nullopt when `r` is no such call; throws clip::Error naming `where` when it is one but
// malformed (wrong arity, not a storage persistent id, bad sizes, extent beyond the storage).
std::optional<TensorRef> as_tensor(const Pickle& p, Ref r, const std::string& where);

// The name -> tensor entries of a checkpoint pickle, in pickle order: the root dict itself, or
// the dict under "state_dict", "model" or "module" (open_clip and other trainers' checkpoints).
// Non-tensor entries are skipped; a "module." prefix on every key is stripped. Throws clip::Error
// naming `what` when there is no dict of tensors ("holds a list, expected a dict of tensors"),
// for a non-string key or a repeated name.
std::vector<std::pair<std::string, TensorRef>> find_state_dict(const Pickle& p, const std::string& what);

// --- TorchScript archives ----------------------------------------------------------------------

// The allow-list for a TorchScript archive's data.pkl: the checkpoint list above, plus the
// classes of scripted modules and objects (module "__torch__" or "__torch__.*"), which stay inert
// object nodes, and the pure-data helpers TorchScript's pickler writes (torch.jit._pickle's
// build_intlist, build_floatlist, build_doublelist, build_boollist, build_tensorlist,
// restore_type_tag; torch.device). Nothing is ever called, so allowing a name only lets it appear.
bool torchscript_global_allowed(std::string_view module, std::string_view name);

// The tensors of the module tree a TorchScript archive's data.pkl holds, without running any of
// its code. TorchScript pickles each module as NEWOBJ of `__torch__.<qualified class>` with an
// empty tuple, then BUILD with a dict of its attributes (parameters, buffers, submodules,
// `training`, ...). Names are joined with '.' as in state_dict ("visual.conv1.weight"); each
// module lists its own tensor attributes first, then its submodules (objects with a `training`
// bool), depth first in attribute order. Other attributes (flags, lists, script-class objects)
// are skipped; a module reached twice is listed once.
//
// A module whose pickled state is not an attribute dict (it defines __getstate__/__setstate__,
// whose code PyTorch would run to rebuild it) is refused: clip::Error of kind kUnsupported naming
// `what`, the module and its class, and the safe alternatives. Also throws clip::Error naming
// `what` when the root is not a scripted module, for a non-string attribute name, a repeated
// name, or nesting deeper than 256 modules.
std::vector<std::pair<std::string, TensorRef>> find_module_tensors(const Pickle& p, const std::string& what);

// --- legacy (non-zip) torch.save ----------------------------------------------------------------

// True when data starts like a legacy torch.save file: protocol-2 pickle of the magic number
// 0x1950a86a20f9469cfc6c.
bool looks_like_legacy_torch(const uint8_t* data, size_t size);

struct LegacyStorage {
  std::string key;
  uint64_t offset = 0;  // of the raw bytes in the file
  uint64_t bytes = 0;
};

struct LegacyLayout {
  Pickle main;                          // the object pickle
  std::vector<LegacyStorage> storages;  // in file order
};

// Parses a legacy torch.save file held in data[0, size): magic, protocol version, system info,
// the object pickle, the storage key list, then per storage an int64 element count and the raw
// bytes. Sizes come from the object pickle's persistent ids and are checked against the file.
LegacyLayout parse_legacy_torch(const uint8_t* data, size_t size, const std::string& what);

}  // namespace clip::io::pickle
