// The restricted unpickler: see pickle.h. Opcode semantics follow CPython's Lib/pickle.py and
// the pickletools documentation; this is an independent implementation that builds a value tree
// instead of calling anything.
#include "io/pickle.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <unordered_map>

#include "clip/error.h"
#include "util/half.h"
#include "util/strings.h"
#include "util/utf8.h"

namespace clip::io::pickle {

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::kNone: return "None";
    case Kind::kBool: return "a bool";
    case Kind::kInt: return "an int";
    case Kind::kBigInt: return "a big int";
    case Kind::kFloat: return "a float";
    case Kind::kString: return "a string";
    case Kind::kBytes: return "bytes";
    case Kind::kTuple: return "a tuple";
    case Kind::kList: return "a list";
    case Kind::kDict: return "a dict";
    case Kind::kSet: return "a set";
    case Kind::kGlobal: return "a global";
    case Kind::kReduce: return "an object";
    case Kind::kPersId: return "a persistent id";
  }
  return "a value";
}

namespace {

// Interned immutable values, created first in every arena.
constexpr Ref kRefNone = 0, kRefTrue = 1, kRefFalse = 2, kRefEmptyTuple = 3;

const char* opcode_name(uint8_t op) {
  switch (op) {
    case '(': return "MARK";
    case '.': return "STOP";
    case '0': return "POP";
    case '1': return "POP_MARK";
    case '2': return "DUP";
    case 'F': return "FLOAT";
    case 'I': return "INT";
    case 'J': return "BININT";
    case 'K': return "BININT1";
    case 'L': return "LONG";
    case 'M': return "BININT2";
    case 'N': return "NONE";
    case 'P': return "PERSID";
    case 'Q': return "BINPERSID";
    case 'R': return "REDUCE";
    case 'S': return "STRING";
    case 'T': return "BINSTRING";
    case 'U': return "SHORT_BINSTRING";
    case 'V': return "UNICODE";
    case 'X': return "BINUNICODE";
    case 'a': return "APPEND";
    case 'b': return "BUILD";
    case 'c': return "GLOBAL";
    case 'd': return "DICT";
    case '}': return "EMPTY_DICT";
    case 'e': return "APPENDS";
    case 'g': return "GET";
    case 'h': return "BINGET";
    case 'i': return "INST";
    case 'j': return "LONG_BINGET";
    case 'l': return "LIST";
    case ']': return "EMPTY_LIST";
    case 'o': return "OBJ";
    case 'p': return "PUT";
    case 'q': return "BINPUT";
    case 'r': return "LONG_BINPUT";
    case 's': return "SETITEM";
    case 't': return "TUPLE";
    case ')': return "EMPTY_TUPLE";
    case 'u': return "SETITEMS";
    case 'G': return "BINFLOAT";
    case 'B': return "BINBYTES";
    case 'C': return "SHORT_BINBYTES";
    case 0x80: return "PROTO";
    case 0x81: return "NEWOBJ";
    case 0x82: return "EXT1";
    case 0x83: return "EXT2";
    case 0x84: return "EXT4";
    case 0x85: return "TUPLE1";
    case 0x86: return "TUPLE2";
    case 0x87: return "TUPLE3";
    case 0x88: return "NEWTRUE";
    case 0x89: return "NEWFALSE";
    case 0x8a: return "LONG1";
    case 0x8b: return "LONG4";
    case 0x8c: return "SHORT_BINUNICODE";
    case 0x8d: return "BINUNICODE8";
    case 0x8e: return "BINBYTES8";
    case 0x8f: return "EMPTY_SET";
    case 0x90: return "ADDITEMS";
    case 0x91: return "FROZENSET";
    case 0x92: return "NEWOBJ_EX";
    case 0x93: return "STACK_GLOBAL";
    case 0x94: return "MEMOIZE";
    case 0x95: return "FRAME";
    case 0x96: return "BYTEARRAY8";
    case 0x97: return "NEXT_BUFFER";
    case 0x98: return "READONLY_BUFFER";
    default: return nullptr;
  }
}

// UTF-8 as Python's "utf-8" codec with "surrogatepass" accepts it (encoded surrogates allowed).
bool valid_utf8(std::string_view s) { return util::is_valid_utf8(s, util::Surrogates::kAccept); }

// UTF-8 (already validated) -> code points, each < 256, as bytes; false if one is >= 256.
bool utf8_to_latin1(std::string_view s, std::string& out) {
  out.clear();
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const uint8_t c = static_cast<uint8_t>(s[i]);
    if (c < 0x80) {
      out += static_cast<char>(c);
      ++i;
    } else if ((c & 0xE0) == 0xC0 && i + 1 < s.size()) {
      const uint32_t cp = ((c & 0x1Fu) << 6) | (static_cast<uint8_t>(s[i + 1]) & 0x3Fu);
      if (cp > 0xFF) return false;
      out += static_cast<char>(cp);
      i += 2;
    } else {
      return false;
    }
  }
  return true;
}

std::string quoted(std::string_view s) { return util::quoted_for_message(s, 80); }

}  // namespace

bool checkpoint_global_allowed(std::string_view module, std::string_view name) {
  if (module == "collections") return name == "OrderedDict";
  if (module == "torch._utils") return name == "_rebuild_tensor_v2" || name == "_rebuild_parameter";
  if (module == "torch") return storage_dtype(module, name).has_value();
  if (module == "numpy.core.multiarray" || module == "numpy._core.multiarray") return name == "scalar";
  if (module == "numpy") return name == "dtype";
  if (module == "_codecs") return name == "encode";
  return false;
}

bool torchscript_global_allowed(std::string_view module, std::string_view name) {
  if (checkpoint_global_allowed(module, name)) return true;
  if (module == "__torch__" || module.rfind("__torch__.", 0) == 0) return !name.empty();
  if (module == "torch.jit._pickle")
    return name == "build_intlist" || name == "build_floatlist" || name == "build_doublelist" ||
           name == "build_boollist" || name == "build_tensorlist" || name == "restore_type_tag";
  if (module == "torch") return name == "device";
  return false;
}

std::optional<DType> storage_dtype(std::string_view module, std::string_view name) {
  if (module != "torch") return std::nullopt;
  struct Row {
    const char* name;
    DType dtype;
  };
  static constexpr Row kRows[] = {
      {"FloatStorage", DType::kF32},  {"HalfStorage", DType::kF16}, {"BFloat16Storage", DType::kBF16},
      {"DoubleStorage", DType::kF64}, {"LongStorage", DType::kI64}, {"IntStorage", DType::kI32},
      {"ShortStorage", DType::kI16},  {"CharStorage", DType::kI8},  {"ByteStorage", DType::kU8},
      {"BoolStorage", DType::kBool},
  };
  for (const Row& r : kRows)
    if (name == r.name) return r.dtype;
  return std::nullopt;
}

// --- Pickle -------------------------------------------------------------------------------------

Ref Pickle::dict_get(Ref dict, std::string_view key) const {
  const Value& d = at(dict);
  if (d.kind != Kind::kDict) return kNoRef;
  for (size_t k = 0; k + 1 < d.items.size(); k += 2) {
    const Value& kv = at(d.items[k]);
    if (kv.kind == Kind::kString && kv.text == key) return d.items[k + 1];
  }
  return kNoRef;
}

bool Pickle::is_global(Ref r, std::string_view module, std::string_view name) const {
  if (r == kNoRef) return false;
  const Value& v = at(r);
  return v.kind == Kind::kGlobal && v.text == module && v.name == name;
}

bool Pickle::is_call_to(Ref r, std::string_view module, std::string_view name) const {
  if (r == kNoRef) return false;
  const Value& v = at(r);
  return v.kind == Kind::kReduce && !v.items.empty() && is_global(v.items[0], module, name);
}

std::string Pickle::describe(Ref r) const {
  const Value& v = at(r);
  switch (v.kind) {
    case Kind::kInt: return "an int (" + std::to_string(v.i) + ")";
    case Kind::kBool: return v.b ? "a bool (True)" : "a bool (False)";
    case Kind::kString: return "a string " + quoted(v.text);
    case Kind::kGlobal: return "the global " + v.text + "." + v.name;
    case Kind::kReduce: {
      const Value& c = at(v.items.at(0));
      if (c.kind == Kind::kGlobal) {
        if (c.text == "torch._utils") return "a tensor";
        return "an object made by " + c.text + "." + c.name;
      }
      return "an object";
    }
    case Kind::kTuple:
    case Kind::kList:
    case Kind::kSet: return std::string(kind_name(v.kind)) + " of " + std::to_string(v.items.size()) + " items";
    case Kind::kDict: {
      if (v.items.empty()) return "an empty dict";
      std::string s = "a dict with keys ";
      const size_t n = v.items.size() / 2;
      for (size_t k = 0; k < n && k < 8; ++k) {
        if (k) s += ", ";
        const Value& key = at(v.items[2 * k]);
        if (key.kind == Kind::kString) s += quoted(key.text);
        else if (key.kind == Kind::kInt) s += std::to_string(key.i);
        else s += kind_name(key.kind);
      }
      if (n > 8) s += ", ... (" + std::to_string(n) + " keys)";
      return s;
    }
    default: return kind_name(v.kind);
  }
}

// --- the unpickler --------------------------------------------------------------------------------

class Unpickler {
 public:
  Unpickler(const uint8_t* data, size_t size, const std::string& what, const UnpickleOptions& opt)
      : p_(data), n_(size), what_(what), opt_(opt) {
    new_value(Kind::kNone);
    new_value(Kind::kBool).b = true;
    new_value(Kind::kBool).b = false;
    new_value(Kind::kTuple);
  }

  Pickle run() {
    if (n_ == 0) throw Error(what_ + ": empty pickle (0 bytes)");
    for (;;) {
      if (pos_ >= n_) fail_at(n_, "the pickle ends before its STOP opcode (truncated?)");
      op_pos_ = pos_;
      op_ = p_[pos_++];
      if (op_ == '.') break;
      step();
    }
    out_.root_ = pop();
    out_.consumed_ = pos_;
    return std::move(out_);
  }

 private:
  const uint8_t* p_;
  size_t n_;
  size_t pos_ = 0, op_pos_ = 0;
  uint8_t op_ = 0;
  const std::string& what_;
  const UnpickleOptions& opt_;
  Pickle out_;
  std::vector<Ref> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, Ref> memo_;

  [[noreturn]] void fail_at(size_t pos, const std::string& msg) const {
    throw Error(what_ + ": malformed pickle at byte " + std::to_string(pos) + ": " + msg);
  }
  [[noreturn]] void fail(const std::string& msg) const {
    const char* name = opcode_name(op_);
    fail_at(op_pos_, std::string("opcode ") + (name ? name : "?") + ": " + msg);
  }

  Value& val(Ref r) { return out_.values_[r]; }

  Value& new_value(Kind k) {
    if (out_.values_.size() >= opt_.max_values || out_.values_.size() >= kNoRef - 1)
      throw Error(what_ + ": pickle creates more than " + std::to_string(opt_.max_values) + " values",
                  ErrorKind::kTooLarge);
    out_.values_.emplace_back();
    out_.values_.back().kind = k;
    return out_.values_.back();
  }
  Ref last_ref() const { return static_cast<Ref>(out_.values_.size() - 1); }
  Ref push_new(Kind k) {
    new_value(k);
    stack_.push_back(last_ref());
    return last_ref();
  }

  // --- reading the input
  const uint8_t* take(uint64_t count) {
    if (count > n_ - pos_)
      fail("needs " + std::to_string(count) + " bytes, only " + std::to_string(n_ - pos_) + " left (truncated?)");
    const uint8_t* q = p_ + pos_;
    pos_ += static_cast<size_t>(count);
    return q;
  }
  uint64_t read_le(int bytes) {
    const uint8_t* q = take(bytes);
    uint64_t v = 0;
    for (int k = 0; k < bytes; ++k) v |= uint64_t(q[k]) << (8 * k);
    return v;
  }
  std::string_view read_line() {
    const void* nl = std::memchr(p_ + pos_, '\n', n_ - pos_);
    if (!nl) fail("no newline before the end of the input (truncated?)");
    const size_t len = static_cast<const uint8_t*>(nl) - (p_ + pos_);
    std::string_view s(reinterpret_cast<const char*>(p_ + pos_), len);
    pos_ += len + 1;
    return s;
  }
  std::string read_utf8(uint64_t len) {
    const uint8_t* q = take(len);
    std::string s(reinterpret_cast<const char*>(q), static_cast<size_t>(len));
    if (!valid_utf8(s)) fail("string is not valid UTF-8");
    return s;
  }

  // --- the stack
  Ref pop() {
    if (stack_.size() <= (marks_.empty() ? 0 : marks_.back())) fail("stack underflow");
    const Ref r = stack_.back();
    stack_.pop_back();
    return r;
  }
  Ref top() {
    if (stack_.size() <= (marks_.empty() ? 0 : marks_.back())) fail("stack underflow");
    return stack_.back();
  }
  // The items above the last MARK, removed from the stack (and the mark popped).
  std::vector<Ref> pop_mark() {
    if (marks_.empty()) fail("no MARK on the stack");
    const size_t m = marks_.back();
    marks_.pop_back();
    std::vector<Ref> items(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    return items;
  }

  void push_int(int64_t v) { val(push_new(Kind::kInt)).i = v; }

  void push_long_bytes(const uint8_t* q, size_t len) {
    // Little-endian two's complement, any length.
    if (len == 0) {
      push_int(0);
      return;
    }
    const bool neg = q[len - 1] & 0x80;
    bool fits = true;
    for (size_t k = 8; k < len; ++k)
      if (q[k] != (neg ? 0xFF : 0x00)) fits = false;
    if (len > 8 && (((q[7] & 0x80) != 0) != neg)) fits = false;
    if (!fits) {
      Ref r = push_new(Kind::kBigInt);
      val(r).text.assign(reinterpret_cast<const char*>(q), len);
      return;
    }
    uint64_t u = neg ? ~uint64_t{0} : 0;
    for (size_t k = 0; k < len && k < 8; ++k) {
      u &= ~(uint64_t{0xFF} << (8 * k));
      u |= uint64_t(q[k]) << (8 * k);
    }
    push_int(static_cast<int64_t>(u));
  }

  static bool parse_int(std::string_view s, int64_t& out) {
    if (!s.empty() && s.front() == '+') s.remove_prefix(1);
    const auto r = std::from_chars(s.data(), s.data() + s.size(), out);
    return r.ec == std::errc() && r.ptr == s.data() + s.size() && !s.empty();
  }

  void memo_put(uint64_t key) { memo_[key] = top(); }
  void memo_get(uint64_t key) {
    auto it = memo_.find(key);
    if (it == memo_.end()) fail("memo key " + std::to_string(key) + " was never stored");
    stack_.push_back(it->second);
  }

  void push_global(std::string module, std::string name) {
    if (!valid_utf8(module) || !valid_utf8(name)) fail("global name is not valid UTF-8");
    if (!opt_.allow_global || !opt_.allow_global(module, name))
      throw Error(what_ + ": refusing to load global " + module + "." + name + " (byte " + std::to_string(op_pos_) +
                  "): only tensors, storages, OrderedDict and numpy scalars are allowed in checkpoints");
    Ref r = push_new(Kind::kGlobal);
    val(r).text = std::move(module);
    val(r).name = std::move(name);
  }

  Ref make_tuple(std::vector<Ref> items) {
    if (items.empty()) return kRefEmptyTuple;
    Value& v = new_value(Kind::kTuple);
    v.items = std::move(items);
    return last_ref();
  }

  void setitems(Ref dict, const std::vector<Ref>& kv) {
    Value& d = val(dict);
    if (d.kind != Kind::kDict) fail(std::string("target is ") + kind_name(d.kind) + ", expected a dict");
    if (kv.size() % 2) fail("odd number of items: a key without a value");
    d.items.insert(d.items.end(), kv.begin(), kv.end());
  }

  // A call of `callable` with `args` (REDUCE, NEWOBJ, OBJ, INST). Calls whose result is plain
  // data are folded; everything else becomes a kReduce node.
  void call(Ref callable, Ref args, Ref kwargs, bool is_new) {
    if (val(callable).kind != Kind::kGlobal)
      fail(std::string("callable is ") + kind_name(val(callable).kind) + ", expected a global");
    if (val(args).kind != Kind::kTuple)
      fail(std::string("arguments are ") + kind_name(val(args).kind) + ", expected a tuple");
    const std::string& mod = val(callable).text;
    const std::string& name = val(callable).name;
    const std::vector<Ref> a = val(args).items;  // copy: new values may move nothing, but be safe
    if (mod == "collections" && name == "OrderedDict") {
      Ref d = push_new(Kind::kDict);
      if (is_new || a.empty()) return;
      // OrderedDict([[k, v], ...]) as older pickles write it.
      if (a.size() != 1 || val(a[0]).kind != Kind::kList)
        fail("OrderedDict(...) with arguments other than a list of pairs");
      const std::vector<Ref> pairs = val(a[0]).items;
      for (Ref pr : pairs) {
        const Value& pv = val(pr);
        if ((pv.kind != Kind::kList && pv.kind != Kind::kTuple) || pv.items.size() != 2)
          fail("OrderedDict(...) item is not a (key, value) pair");
        const Ref k = pv.items[0], v = pv.items[1];
        val(d).items.push_back(k);
        val(d).items.push_back(v);
      }
      return;
    }
    if (mod == "_codecs" && name == "encode" && !is_new && a.size() == 2 && val(a[0]).kind == Kind::kString &&
        val(a[1]).kind == Kind::kString && (val(a[1]).text == "latin1" || val(a[1]).text == "latin-1")) {
      std::string bytes;
      if (!utf8_to_latin1(val(a[0]).text, bytes)) fail("_codecs.encode(..., 'latin1') of a character above U+00FF");
      Ref r = push_new(Kind::kBytes);
      val(r).text = std::move(bytes);
      return;
    }
    if ((mod == "numpy.core.multiarray" || mod == "numpy._core.multiarray") && name == "scalar" && !is_new &&
        fold_numpy_scalar(a))
      return;
    Ref r = push_new(Kind::kReduce);
    val(r).items = {callable, args};
    if (kwargs != kNoRef) val(r).items.push_back(kwargs);
  }

  // numpy.core.multiarray.scalar(dtype, bytes) with dtype = numpy.dtype(code, ...) built with
  // state (3, byteorder, ...): pushes the number, or returns false to keep it as an object.
  bool fold_numpy_scalar(const std::vector<Ref>& a) {
    if (a.size() != 2 || val(a[1]).kind != Kind::kBytes) return false;
    const Value& dt = val(a[0]);
    if (dt.kind != Kind::kReduce || dt.items.size() < 2 || !out_.is_global(dt.items[0], "numpy", "dtype")) return false;
    const Value& dargs = val(dt.items[1]);
    if (dargs.kind != Kind::kTuple || dargs.items.empty() || val(dargs.items[0]).kind != Kind::kString) return false;
    const std::string code = val(dargs.items[0]).text;
    bool big = false;
    if (dt.state != kNoRef) {
      const Value& st = val(dt.state);
      if (st.kind == Kind::kTuple && st.items.size() > 1 && val(st.items[1]).kind == Kind::kString)
        big = val(st.items[1]).text == ">";
    }
    std::string b = val(a[1]).text;
    if (code.size() != 2) return false;
    const size_t width = static_cast<size_t>(code[1] - '0');
    if (width < 1 || width > 8 || b.size() != width) return false;  // at most 8 bytes fit the value below
    if (big) std::reverse(b.begin(), b.end());
    uint64_t u = 0;
    for (size_t k = 0; k < b.size(); ++k) u |= uint64_t(static_cast<uint8_t>(b[k])) << (8 * k);
    const char c = code[0];
    if (c == 'b' && width == 1) {
      stack_.push_back(u ? kRefTrue : kRefFalse);
      return true;
    }
    if (c == 'f' && (width == 2 || width == 4 || width == 8)) {
      double d;
      if (width == 8) {
        std::memcpy(&d, &u, 8);
      } else if (width == 4) {
        float f;
        const uint32_t u32 = static_cast<uint32_t>(u);
        std::memcpy(&f, &u32, 4);
        d = f;
      } else {
        d = util::half_to_float(static_cast<uint16_t>(u));
      }
      val(push_new(Kind::kFloat)).f = d;
      return true;
    }
    if ((c == 'i' || c == 'u') && (width == 1 || width == 2 || width == 4 || width == 8)) {
      int64_t v;
      if (c == 'u') {
        if (width == 8 && (u >> 63)) return false;
        v = static_cast<int64_t>(u);
      } else {
        const int shift = static_cast<int>(64 - 8 * width);
        v = static_cast<int64_t>(u << shift) >> shift;
      }
      push_int(v);
      return true;
    }
    return false;
  }

  // Protocol-0 quoted string: 'abc' or "abc" with backslash escapes.
  std::string unquote(std::string_view s) {
    if (s.size() < 2 || (s.front() != '\'' && s.front() != '"') || s.back() != s.front())
      fail("STRING argument is not quoted");
    s = s.substr(1, s.size() - 2);
    std::string out;
    for (size_t k = 0; k < s.size(); ++k) {
      if (s[k] != '\\') {
        out += s[k];
        continue;
      }
      if (++k >= s.size()) fail("STRING ends with a backslash");
      switch (s[k]) {
        case '\\': out += '\\'; break;
        case '\'': out += '\''; break;
        case '"': out += '"'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'x': {
          if (k + 2 >= s.size()) fail("STRING: short \\x escape");
          unsigned v = 0;
          const auto r = std::from_chars(s.data() + k + 1, s.data() + k + 3, v, 16);
          if (r.ec != std::errc() || r.ptr != s.data() + k + 3) fail("STRING: bad \\x escape");
          out += static_cast<char>(v);
          k += 2;
          break;
        }
        default: fail("STRING: unsupported escape");
      }
    }
    return out;
  }

  // Protocol-0 raw-unicode-escape: latin-1 bytes with \uXXXX and \UXXXXXXXX escapes.
  std::string raw_unicode(std::string_view s) {
    std::string out;
    for (size_t k = 0; k < s.size(); ++k) {
      if (s[k] == '\\' && k + 1 < s.size() && (s[k + 1] == 'u' || s[k + 1] == 'U')) {
        const size_t digits = s[k + 1] == 'u' ? 4 : 8;
        if (k + 2 + digits > s.size()) fail("UNICODE: short escape");
        uint32_t cp = 0;
        const auto r = std::from_chars(s.data() + k + 2, s.data() + k + 2 + digits, cp, 16);
        if (r.ec != std::errc() || r.ptr != s.data() + k + 2 + digits || cp > 0x10FFFF) fail("UNICODE: bad escape");
        util::append_utf8(out, cp);
        k += 1 + digits;
      } else {
        util::append_utf8(out, static_cast<uint8_t>(s[k]));
      }
    }
    return out;
  }

  void push_string_or_bytes(const uint8_t* q, size_t len) {
    // Python 2 str (STRING / BINSTRING): text when it decodes as UTF-8 (torch.load's encoding).
    std::string s(reinterpret_cast<const char*>(q), len);
    const bool text = valid_utf8(s);
    val(push_new(text ? Kind::kString : Kind::kBytes)).text = std::move(s);
  }

  void step() {
    switch (op_) {
      case 0x80: {  // PROTO
        const uint8_t v = *take(1);
        if (v > 5) fail("protocol " + std::to_string(v) + " is newer than 5");
        return;
      }
      case 0x95: {  // FRAME: a length hint; opcodes are read straight through
        const uint64_t len = read_le(8);
        if (len > n_ - pos_) fail("frame of " + std::to_string(len) + " bytes runs past the end of the input");
        return;
      }
      case '(': marks_.push_back(stack_.size()); return;
      case '0':
        if (!stack_.empty() && !marks_.empty() && marks_.back() == stack_.size()) {
          marks_.pop_back();  // POP of a MARK, as CPython allows
          return;
        }
        pop();
        return;
      case '1': pop_mark(); return;
      case '2': stack_.push_back(top()); return;
      case 'N': stack_.push_back(kRefNone); return;
      case 0x88: stack_.push_back(kRefTrue); return;
      case 0x89: stack_.push_back(kRefFalse); return;
      case 'J': push_int(static_cast<int32_t>(static_cast<uint32_t>(read_le(4)))); return;
      case 'K': push_int(static_cast<int64_t>(read_le(1))); return;
      case 'M': push_int(static_cast<int64_t>(read_le(2))); return;
      case 0x8a: {  // LONG1
        const size_t len = static_cast<size_t>(read_le(1));
        push_long_bytes(take(len), len);
        return;
      }
      case 0x8b: {  // LONG4
        const int32_t len = static_cast<int32_t>(static_cast<uint32_t>(read_le(4)));
        if (len < 0) fail("negative length");
        push_long_bytes(take(static_cast<uint64_t>(len)), static_cast<size_t>(len));
        return;
      }
      case 'I': {
        const std::string_view s = read_line();
        if (s == "00") {
          stack_.push_back(kRefFalse);
          return;
        }
        if (s == "01") {
          stack_.push_back(kRefTrue);
          return;
        }
        int64_t v;
        if (!parse_int(s, v)) fail("not a 64-bit decimal integer");
        push_int(v);
        return;
      }
      case 'L': {
        std::string_view s = read_line();
        if (!s.empty() && s.back() == 'L') s.remove_suffix(1);
        int64_t v;
        if (!parse_int(s, v)) fail("not a 64-bit decimal integer");
        push_int(v);
        return;
      }
      case 'F': {
        const std::string_view s = read_line();
        double d = 0;
        const auto r = std::from_chars(s.data(), s.data() + s.size(), d);
        if (r.ec != std::errc() || r.ptr != s.data() + s.size()) fail("not a decimal float");
        val(push_new(Kind::kFloat)).f = d;
        return;
      }
      case 'G': {
        const uint8_t* q = take(8);
        uint64_t u = 0;
        for (int k = 0; k < 8; ++k) u = (u << 8) | q[k];
        double d;
        std::memcpy(&d, &u, 8);
        val(push_new(Kind::kFloat)).f = d;
        return;
      }
      case 'X': {
        std::string s = read_utf8(read_le(4));
        val(push_new(Kind::kString)).text = std::move(s);
        return;
      }
      case 0x8c: {
        std::string s = read_utf8(read_le(1));
        val(push_new(Kind::kString)).text = std::move(s);
        return;
      }
      case 0x8d: {
        std::string s = read_utf8(read_le(8));
        val(push_new(Kind::kString)).text = std::move(s);
        return;
      }
      case 'V': {
        std::string s = raw_unicode(read_line());
        val(push_new(Kind::kString)).text = std::move(s);
        return;
      }
      case 'S': {
        std::string s = unquote(read_line());
        push_string_or_bytes(reinterpret_cast<const uint8_t*>(s.data()), s.size());
        return;
      }
      case 'T': {
        const int32_t len = static_cast<int32_t>(static_cast<uint32_t>(read_le(4)));
        if (len < 0) fail("negative length");
        push_string_or_bytes(take(static_cast<uint64_t>(len)), static_cast<size_t>(len));
        return;
      }
      case 'U': {
        const size_t len = static_cast<size_t>(read_le(1));
        push_string_or_bytes(take(len), len);
        return;
      }
      case 'B':
      case 'C':
      case 0x8e:
      case 0x96: {
        const uint64_t len = read_le(op_ == 'B' ? 4 : op_ == 'C' ? 1 : 8);
        const uint8_t* q = take(len);
        val(push_new(Kind::kBytes)).text.assign(reinterpret_cast<const char*>(q), static_cast<size_t>(len));
        return;
      }
      case ')': stack_.push_back(kRefEmptyTuple); return;
      case 't': {
        std::vector<Ref> items = pop_mark();
        stack_.push_back(make_tuple(std::move(items)));
        return;
      }
      case 0x85:
      case 0x86:
      case 0x87: {
        const size_t k = op_ - 0x84u;
        std::vector<Ref> items(k);
        for (size_t j = k; j-- > 0;) items[j] = pop();
        stack_.push_back(make_tuple(std::move(items)));
        return;
      }
      case ']': push_new(Kind::kList); return;
      case 'l': {
        std::vector<Ref> items = pop_mark();
        val(push_new(Kind::kList)).items = std::move(items);
        return;
      }
      case 'a': {
        const Ref v = pop();
        const Ref l = top();
        if (val(l).kind != Kind::kList) fail(std::string("target is ") + kind_name(val(l).kind) + ", expected a list");
        val(l).items.push_back(v);
        return;
      }
      case 'e': {
        std::vector<Ref> items = pop_mark();
        const Ref l = top();
        if (val(l).kind != Kind::kList) fail(std::string("target is ") + kind_name(val(l).kind) + ", expected a list");
        val(l).items.insert(val(l).items.end(), items.begin(), items.end());
        return;
      }
      case '}': push_new(Kind::kDict); return;
      case 'd': {
        std::vector<Ref> items = pop_mark();
        const Ref d = push_new(Kind::kDict);
        setitems(d, items);
        return;
      }
      case 's': {
        const Ref v = pop();
        const Ref k = pop();
        setitems(top(), {k, v});
        return;
      }
      case 'u': {
        std::vector<Ref> items = pop_mark();
        setitems(top(), items);
        return;
      }
      case 0x8f: push_new(Kind::kSet); return;
      case 0x90: {
        std::vector<Ref> items = pop_mark();
        const Ref s = top();
        if (val(s).kind != Kind::kSet) fail(std::string("target is ") + kind_name(val(s).kind) + ", expected a set");
        val(s).items.insert(val(s).items.end(), items.begin(), items.end());
        return;
      }
      case 0x91: {
        std::vector<Ref> items = pop_mark();
        val(push_new(Kind::kSet)).items = std::move(items);
        return;
      }
      case 'g':
      case 'p': {
        int64_t key;
        if (!parse_int(read_line(), key) || key < 0) fail("memo key is not a non-negative decimal integer");
        if (op_ == 'g') memo_get(static_cast<uint64_t>(key));
        else memo_put(static_cast<uint64_t>(key));
        return;
      }
      case 'h': memo_get(read_le(1)); return;
      case 'j': memo_get(read_le(4)); return;
      case 'q': memo_put(read_le(1)); return;
      case 'r': memo_put(read_le(4)); return;
      case 0x94: memo_put(memo_.size()); return;
      case 'c': {
        std::string module(read_line());
        std::string name(read_line());
        push_global(std::move(module), std::move(name));
        return;
      }
      case 0x93: {
        const Ref name = pop();
        const Ref module = pop();
        if (val(module).kind != Kind::kString || val(name).kind != Kind::kString)
          fail("module and name must be strings");
        push_global(val(module).text, val(name).text);
        return;
      }
      case 'R': {
        const Ref args = pop();
        const Ref callable = pop();
        call(callable, args, kNoRef, false);
        return;
      }
      case 0x81: {
        const Ref args = pop();
        const Ref cls = pop();
        call(cls, args, kNoRef, true);
        return;
      }
      case 0x92: {
        const Ref kwargs = pop();
        const Ref args = pop();
        const Ref cls = pop();
        if (val(kwargs).kind != Kind::kDict) fail("keyword arguments are not a dict");
        call(cls, args, kwargs, true);
        return;
      }
      case 'i': {  // INST module\nname\n, arguments above the MARK
        std::string module(read_line());
        std::string name(read_line());
        std::vector<Ref> items = pop_mark();
        push_global(std::move(module), std::move(name));
        const Ref cls = pop();
        call(cls, make_tuple(std::move(items)), kNoRef, false);
        return;
      }
      case 'o': {  // OBJ: MARK cls args...
        std::vector<Ref> items = pop_mark();
        if (items.empty()) fail("no class above the MARK");
        const Ref cls = items.front();
        items.erase(items.begin());
        call(cls, make_tuple(std::move(items)), kNoRef, false);
        return;
      }
      case 'b': {
        const Ref state = pop();
        const Ref obj = top();
        const Kind k = val(obj).kind;
        if (k != Kind::kDict && k != Kind::kReduce) fail(std::string("cannot set the state of ") + kind_name(k));
        val(obj).state = state;
        return;
      }
      case 'P': {
        std::string id(read_line());
        if (!valid_utf8(id)) fail("persistent id is not valid UTF-8");
        Value& s = new_value(Kind::kString);
        s.text = std::move(id);
        const Ref sr = last_ref();
        val(push_new(Kind::kPersId)).items = {sr};
        return;
      }
      case 'Q': {
        const Ref id = pop();
        val(push_new(Kind::kPersId)).items = {id};
        return;
      }
      case 0x82:
      case 0x83:
      case 0x84: fail("extension registry codes are not supported");
      case 0x97:
      case 0x98: fail("out-of-band buffers are not supported");
      default: {
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02x", op_);
        fail_at(op_pos_, std::string("unknown opcode ") + hex);
      }
    }
  }
};

Pickle unpickle(const uint8_t* data, size_t size, const std::string& what, const UnpickleOptions& options) {
  Unpickler u(data, size, what, options);
  return u.run();
}

// --- torch.save conventions -----------------------------------------------------------------------

int64_t TensorRef::numel() const {
  int64_t n = 1;
  for (int64_t s : sizes) n *= s;
  return n;
}

int64_t TensorRef::extent(const std::string& where) const {
  if (offset < 0) throw Error(where + ": negative storage offset " + std::to_string(offset));
  if (sizes.size() != strides.size())
    throw Error(where + ": " + std::to_string(sizes.size()) + " sizes but " + std::to_string(strides.size()) +
                " strides");
  int64_t last = offset;
  for (size_t d = 0; d < sizes.size(); ++d) {
    if (sizes[d] < 0) throw Error(where + ": negative size " + std::to_string(sizes[d]));
    if (strides[d] < 0) throw Error(where + ": negative stride " + std::to_string(strides[d]));
    if (sizes[d] == 0) return 0;
  }
  for (size_t d = 0; d < sizes.size(); ++d) {
    int64_t step;
    if (__builtin_mul_overflow(sizes[d] - 1, strides[d], &step) || __builtin_add_overflow(last, step, &last))
      throw Error(where + ": size and stride overflow 64 bits");
  }
  if (last == INT64_MAX) throw Error(where + ": size and stride overflow 64 bits");
  return last + 1;
}

namespace {

bool as_int(const Pickle& p, Ref r, int64_t& out) {
  const Value& v = p.at(r);
  if (v.kind != Kind::kInt) return false;
  out = v.i;
  return true;
}

std::vector<int64_t> int_tuple(const Pickle& p, Ref r, const std::string& where, const char* what) {
  const Value& v = p.at(r);
  if (v.kind != Kind::kTuple && v.kind != Kind::kList)
    throw Error(where + ": tensor " + what + " is " + p.describe(r) + ", expected a tuple of ints");
  if (v.items.size() > 64)
    throw Error(where + ": tensor has " + std::to_string(v.items.size()) + " dimensions (limit 64)");
  std::vector<int64_t> out;
  for (Ref e : v.items) {
    int64_t x;
    if (!as_int(p, e, x)) throw Error(where + ": tensor " + what + " holds " + p.describe(e) + ", expected ints");
    out.push_back(x);
  }
  return out;
}

}  // namespace

std::optional<TensorRef> as_tensor(const Pickle& p, Ref r, const std::string& where) {
  if (p.is_call_to(r, "torch._utils", "_rebuild_parameter")) {
    const Value& args = p.at(p.at(r).items[1]);
    if (args.items.empty() || !p.is_call_to(args.items[0], "torch._utils", "_rebuild_tensor_v2"))
      throw Error(where + ": _rebuild_parameter without a tensor");
    r = args.items[0];
  }
  if (!p.is_call_to(r, "torch._utils", "_rebuild_tensor_v2")) return std::nullopt;
  const Value& args = p.at(p.at(r).items[1]);
  if (args.items.size() < 4)
    throw Error(where + ": _rebuild_tensor_v2 with " + std::to_string(args.items.size()) +
                " arguments, expected at least 4");
  // The storage: persistent id ('storage', torch.<T>Storage, key, location, numel[, view]).
  const Value& pid = p.at(args.items[0]);
  if (pid.kind != Kind::kPersId)
    throw Error(where + ": tensor storage is " + p.describe(args.items[0]) + ", expected a persistent id");
  const Value& id = p.at(pid.items.at(0));
  if (id.kind != Kind::kTuple || id.items.size() < 5 || id.items.size() > 6 ||
      p.at(id.items[0]).kind != Kind::kString || p.at(id.items[0]).text != "storage")
    throw Error(where + ": tensor storage id is " + p.describe(pid.items[0]) +
                ", expected ('storage', type, key, location, numel)");
  const Value& type = p.at(id.items[1]);
  std::optional<DType> dtype;
  if (type.kind == Kind::kGlobal) dtype = storage_dtype(type.text, type.name);
  if (!dtype)
    throw Error(where + ": tensor storage type is " + p.describe(id.items[1]) + ", expected torch.<T>Storage");
  TensorRef t;
  t.dtype = *dtype;
  const Value& key = p.at(id.items[2]);
  if (key.kind != Kind::kString || key.text.empty() || key.text.size() > 256 ||
      key.text.find('\0') != std::string::npos)
    throw Error(where + ": tensor storage key is " + p.describe(id.items[2]) + ", expected a short string");
  t.storage_key = key.text;
  const Value& loc = p.at(id.items[3]);
  if (loc.kind != Kind::kString)
    throw Error(where + ": tensor storage location is " + p.describe(id.items[3]) + ", expected a string");
  t.location = loc.text;
  if (!as_int(p, id.items[4], t.storage_numel) || t.storage_numel < 0)
    throw Error(where + ": tensor storage size is " + p.describe(id.items[4]) + ", expected a non-negative int");
  if (id.items.size() == 6 && p.at(id.items[5]).kind != Kind::kNone)
    throw Error(where + ": legacy storage views are not supported", ErrorKind::kUnsupported);
  if (!as_int(p, args.items[1], t.offset))
    throw Error(where + ": tensor storage offset is " + p.describe(args.items[1]) + ", expected an int");
  t.sizes = int_tuple(p, args.items[2], where, "size");
  t.strides = int_tuple(p, args.items[3], where, "stride");
  const int64_t extent = t.extent(where);
  int64_t n = 1;
  for (int64_t s : t.sizes)
    if (__builtin_mul_overflow(n, s, &n)) throw Error(where + ": tensor size overflows 64 bits");
  if (extent > t.storage_numel)
    throw Error(where + ": tensor reaches element " + std::to_string(extent) + " of its storage \"" + t.storage_key +
                "\", which holds " + std::to_string(t.storage_numel));
  return t;
}

std::vector<std::pair<std::string, TensorRef>> find_state_dict(const Pickle& p, const std::string& what) {
  Ref d = p.root_ref();
  if (p.at(d).kind != Kind::kDict) throw Error(what + " holds " + p.describe(d) + ", expected a dict of tensors");
  auto has_tensor = [&](Ref dict) {
    const Value& v = p.at(dict);
    for (size_t k = 1; k < v.items.size(); k += 2)
      if (p.is_call_to(v.items[k], "torch._utils", "_rebuild_tensor_v2") ||
          p.is_call_to(v.items[k], "torch._utils", "_rebuild_parameter"))
        return true;
    return false;
  };
  std::string container;
  // Training checkpoints: {"epoch": .., "state_dict": {...}, "optimizer": ...}; a few levels at most.
  for (int level = 0; level < 3 && !has_tensor(d); ++level) {
    Ref next = kNoRef;
    for (const char* key : {"state_dict", "model", "module"}) {
      const Ref r = p.dict_get(d, key);
      if (r != kNoRef && p.at(r).kind == Kind::kDict) {
        next = r;
        container += std::string(container.empty() ? "" : ".") + key;
        break;
      }
    }
    if (next == kNoRef) break;
    d = next;
  }
  if (!has_tensor(d)) {
    throw Error(
        what + " holds " + p.describe(d) + (container.empty() ? "" : " (under \"" + container + "\")") +
        " but no tensors, expected a dict of tensors (a state_dict, or a checkpoint with a \"state_dict\" entry)");
  }
  std::vector<std::pair<std::string, TensorRef>> out;
  const Value& v = p.at(d);
  std::unordered_map<std::string, size_t> seen;
  for (size_t k = 0; k + 1 < v.items.size(); k += 2) {
    const Value& key = p.at(v.items[k]);
    const std::string where =
        what + ": " + (key.kind == Kind::kString ? "tensor \"" + key.text + "\"" : "entry " + std::to_string(k / 2));
    std::optional<TensorRef> t = as_tensor(p, v.items[k + 1], where);
    if (!t) continue;
    if (key.kind != Kind::kString) throw Error(where + ": key is " + p.describe(v.items[k]) + ", expected a string");
    if (!seen.emplace(key.text, out.size()).second) throw Error(where + ": the name appears twice");
    out.emplace_back(key.text, std::move(*t));
  }
  const std::string prefix = "module.";
  bool all = true;
  for (const auto& kv : out) all = all && kv.first.compare(0, prefix.size(), prefix) == 0;
  if (all)
    for (auto& kv : out) kv.first.erase(0, prefix.size());
  return out;
}

// --- TorchScript module trees ----------------------------------------------------------------------

namespace {

// The class of a scripted object: the global of NEWOBJ(__torch__.<...>, ()), or nullptr.
const Value* torch_class(const Pickle& p, Ref r) {
  const Value& v = p.at(r);
  if (v.kind != Kind::kReduce || v.items.empty()) return nullptr;
  const Value& c = p.at(v.items[0]);
  if (c.kind != Kind::kGlobal || (c.text != "__torch__" && c.text.rfind("__torch__.", 0) != 0)) return nullptr;
  return &c;
}

std::string class_name(const Value& c) { return c.text + "." + c.name; }

// A module's attribute dict: its BUILD state. Anything else is state made by __getstate__, which
// only the archive's own __setstate__ code could turn back into a module.
const Value& module_attributes(const Pickle& p, Ref module, const std::string& name, const std::string& what) {
  const Value& obj = p.at(module);
  const Value& cls = *torch_class(p, module);
  const std::string which =
      (name.empty() ? "the root module" : "module \"" + name + "\"") + " (" + class_name(cls) + ")";
  if (obj.state != kNoRef && p.at(obj.state).kind == Kind::kDict) return p.at(obj.state);
  throw Error(what + ": " + which + " is stored as " +
                  (obj.state == kNoRef ? std::string("no state") : p.describe(obj.state)) +
                  ", not as a dict of attributes: it defines __getstate__/__setstate__, and rebuilding it would mean "
                  "running code from the archive, which CLIP++ never does. Convert the checkpoint where running its "
                  "code is acceptable (e.g. a sandbox) to a plain state dict, in Python: "
                  "torch.save(torch.jit.load(path, map_location=\"cpu\").state_dict(), \"model.pt\"), then "
                  "`clip convert model.pt model.safetensors` (see docs/checkpoints.md)",
              ErrorKind::kUnsupported);
}

bool has_training_flag(const Pickle& p, const Value& attributes) {
  for (size_t k = 0; k + 1 < attributes.items.size(); k += 2) {
    const Value& key = p.at(attributes.items[k]);
    if (key.kind == Kind::kString && key.text == "training") return p.at(attributes.items[k + 1]).kind == Kind::kBool;
  }
  return false;
}

}  // namespace

std::vector<std::pair<std::string, TensorRef>> find_module_tensors(const Pickle& p, const std::string& what) {
  constexpr size_t kMaxDepth = 256;
  if (!torch_class(p, p.root_ref()))
    throw Error(what + " holds " + p.describe(p.root_ref()) +
                ", expected a TorchScript module (an object of a __torch__ class)");
  struct Pending {
    Ref module;
    std::string name;  // "" for the root, else "visual", "visual.conv1", ...
    size_t depth;
  };
  std::vector<Pending> pending{{p.root_ref(), "", 0}};
  std::vector<bool> visited(p.value_count(), false);
  std::vector<std::pair<std::string, TensorRef>> out;
  std::unordered_map<std::string, size_t> seen;
  while (!pending.empty()) {
    const Pending m = std::move(pending.back());
    pending.pop_back();
    if (visited[m.module]) continue;
    visited[m.module] = true;
    const Value& attributes = module_attributes(p, m.module, m.name, what);
    const std::string prefix = m.name.empty() ? "" : m.name + ".";
    std::vector<Pending> children;
    for (size_t k = 0; k + 1 < attributes.items.size(); k += 2) {
      const Value& key = p.at(attributes.items[k]);
      const Ref value = attributes.items[k + 1];
      if (key.kind != Kind::kString)
        throw Error(what + ": " + (m.name.empty() ? "the root module" : "module \"" + m.name + "\"") +
                    " has an attribute named by " + p.describe(attributes.items[k]) + ", expected a string");
      const std::string name = prefix + key.text;
      if (torch_class(p, value)) {
        const Value& child = p.at(value);
        // Submodules carry `training`; other scripted objects are not part of the state dict.
        if (child.state != kNoRef && p.at(child.state).kind == Kind::kDict && !has_training_flag(p, p.at(child.state)))
          continue;
        if (m.depth + 1 > kMaxDepth)
          throw Error(
              what + ": module \"" + name + "\" is nested more than " + std::to_string(kMaxDepth) + " levels deep",
              ErrorKind::kTooLarge);
        children.push_back({value, name, m.depth + 1});
        continue;
      }
      std::optional<TensorRef> t = as_tensor(p, value, what + ": tensor \"" + name + "\"");
      if (!t) continue;
      if (!seen.emplace(name, out.size()).second)
        throw Error(what + ": tensor \"" + name + "\": the name appears twice");
      out.emplace_back(name, std::move(*t));
    }
    // Depth first, in attribute order: the first child is taken next.
    for (auto it = children.rbegin(); it != children.rend(); ++it) pending.push_back(std::move(*it));
  }
  return out;
}

// --- legacy torch.save ----------------------------------------------------------------------------

namespace {
constexpr uint8_t kLegacyMagic[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
}

bool looks_like_legacy_torch(const uint8_t* data, size_t size) {
  return size >= sizeof kLegacyMagic && std::memcmp(data, kLegacyMagic, sizeof kLegacyMagic) == 0;
}

LegacyLayout parse_legacy_torch(const uint8_t* data, size_t size, const std::string& what) {
  if (!looks_like_legacy_torch(data, size)) throw Error(what + ": not a legacy torch.save file (no magic number)");
  size_t pos = 0;
  auto next = [&](const char* part) {
    Pickle p = unpickle(data + pos, size - pos, what + ": " + part);
    pos += p.consumed();
    return p;
  };
  next("magic number");
  {
    const Pickle proto = next("protocol version");
    if (proto.root().kind != Kind::kInt || proto.root().i != 1001)
      throw Error(what + ": legacy protocol version is " + proto.describe(proto.root_ref()) + ", expected 1001");
  }
  {
    const Pickle info = next("system info");
    const Ref le = info.dict_get(info.root_ref(), "little_endian");
    if (le != kNoRef && info.at(le).kind == Kind::kBool && !info.at(le).b)
      throw Error(what + ": written on a big-endian machine; not supported", ErrorKind::kUnsupported);
  }
  LegacyLayout out{next("data pickle"), {}};
  const Pickle keys = next("storage keys");
  if (keys.root().kind != Kind::kList)
    throw Error(what + ": legacy storage key list is " + keys.describe(keys.root_ref()) + ", expected a list");
  // Element sizes of the storages, from the persistent ids of the data pickle.
  std::unordered_map<std::string, DType> dtypes;
  for (Ref r = 0; r < out.main.value_count(); ++r) {
    const Value& v = out.main.at(r);
    if (v.kind != Kind::kPersId) continue;
    const Value& id = out.main.at(v.items.at(0));
    if (id.kind != Kind::kTuple || id.items.size() < 5) continue;
    const Value& type = out.main.at(id.items[1]);
    const Value& key = out.main.at(id.items[2]);
    if (type.kind != Kind::kGlobal || key.kind != Kind::kString) continue;
    if (auto dt = storage_dtype(type.text, type.name)) dtypes.emplace(key.text, *dt);
  }
  for (Ref kr : keys.root().items) {
    const Value& key = keys.at(kr);
    if (key.kind != Kind::kString)
      throw Error(what + ": legacy storage key is " + keys.describe(kr) + ", expected a string");
    auto it = dtypes.find(key.text);
    if (it == dtypes.end()) throw Error(what + ": legacy storage \"" + key.text + "\" is used by no tensor");
    if (size - pos < 8)
      throw Error(what + ": legacy storage \"" + key.text + "\": file ends before its size (truncated?)");
    uint64_t numel = 0;
    for (int k = 0; k < 8; ++k) numel |= uint64_t(data[pos + k]) << (8 * k);
    pos += 8;
    const uint64_t es = dtype_size(it->second);
    if (numel > (size - pos) / es)
      throw Error(what + ": legacy storage \"" + key.text + "\" of " + std::to_string(numel) +
                  " elements runs past the end of the file (truncated?)");
    out.storages.push_back({key.text, pos, numel * es});
    pos += static_cast<size_t>(numel * es);
  }
  return out;
}

}  // namespace clip::io::pickle
