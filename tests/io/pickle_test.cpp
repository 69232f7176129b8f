// The restricted unpickler: opcodes of protocols 0-5 on pickles written by CPython, the memo,
// the allow-list, torch.save's tensor conventions, and hostile input (truncation, absurd sizes,
// deep nesting, cycles), and TorchScript module trees. Torch-free.
//
// The byte strings were generated once with /usr/bin/python3 (3.11, numpy 1.24, torch 1.13):
// `pickle.dumps(obj, protocol=P)` for the object in each comment, printed with printable ASCII
// kept and every other byte as a 3-digit octal escape.
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "clip/error.h"
#include "io/pickle.h"
#include "test_paths.h"
#include "util/file_io.h"

namespace {

namespace pk = clip::io::pickle;
using pk::Kind;
using pk::Pickle;
using pk::Ref;

template <size_t N>
std::string bytes(const char (&s)[N]) {
  return std::string(s, N - 1);
}

Pickle load(const std::string& b, const pk::UnpickleOptions& opt = {}) {
  return pk::unpickle(reinterpret_cast<const uint8_t*>(b.data()), b.size(), "t.pkl", opt);
}

std::string error_of(const std::string& b) {
  try {
    load(b);
  } catch (const clip::Error& e) {
    return e.what();
  }
  return "";
}

// Value of the string key `key` in the root dict.
const pk::Value& get(const Pickle& p, const std::string& key) {
  const Ref r = p.dict_get(p.root_ref(), key);
  EXPECT_NE(r, pk::kNoRef) << key;
  return p.at(r == pk::kNoRef ? p.root_ref() : r);
}

// {"a": 1, "b": -2, "c": 3.5, "d": None, "e": True, "f": False, "g": "h\u00e9llo", "h": (1, 2),
//  "i": [1, 2, 3], "j": 2**40, "k": 2**70, "l": -300, "m": 70000, "n": b"\x00\xff"}, protocol 2
const std::string kP2Basic = bytes(
    "\200\002}q\000(X\001\000\000\000aq\001K\001X\001\000\000\000bq\002J\376\377\377\377X\001"
    "\000\000\000cq\003G@\014\000\000\000\000\000\000X\001\000\000\000dq\004NX\001\000\000\000e"
    "q\005\210X\001\000\000\000fq\006\211X\001\000\000\000gq\007X\006\000\000\000h\303\251lloq"
    "\010X\001\000\000\000hq\011K\001K\002\206q\012X\001\000\000\000iq\013]q\014(K\001K\002K"
    "\003eX\001\000\000\000jq\015\212\006\000\000\000\000\000\001X\001\000\000\000kq\016\212"
    "\011\000\000\000\000\000\000\000\000@X\001\000\000\000lq\017J\324\376\377\377X\001\000\000"
    "\000mq\020Jp\021\001\000X\001\000\000\000nq\021c_codecs\012encode\012q\022X\003\000\000"
    "\000\000\303\277q\023X\006\000\000\000latin1q\024\206q\025Rq\026u.");

TEST(Pickle, Protocol2Scalars) {
  const Pickle p = load(kP2Basic);
  EXPECT_EQ(p.consumed(), kP2Basic.size());
  ASSERT_EQ(p.root().kind, Kind::kDict);
  EXPECT_EQ(p.root().items.size(), 28u);
  EXPECT_EQ(get(p, "a").i, 1);
  EXPECT_EQ(get(p, "b").i, -2);
  EXPECT_EQ(get(p, "c").kind, Kind::kFloat);
  EXPECT_EQ(get(p, "c").f, 3.5);
  EXPECT_EQ(get(p, "d").kind, Kind::kNone);
  EXPECT_TRUE(get(p, "e").b);
  EXPECT_EQ(get(p, "f").kind, Kind::kBool);
  EXPECT_FALSE(get(p, "f").b);
  EXPECT_EQ(get(p, "g").text, "h\xc3\xa9llo");
  const pk::Value& h = get(p, "h");
  ASSERT_EQ(h.kind, Kind::kTuple);
  ASSERT_EQ(h.items.size(), 2u);
  EXPECT_EQ(p.at(h.items[1]).i, 2);
  const pk::Value& l = get(p, "i");
  ASSERT_EQ(l.kind, Kind::kList);
  ASSERT_EQ(l.items.size(), 3u);
  EXPECT_EQ(p.at(l.items[2]).i, 3);
  EXPECT_EQ(get(p, "j").i, int64_t{1} << 40);  // LONG1
  EXPECT_EQ(get(p, "k").kind, Kind::kBigInt);  // 2**70 does not fit
  EXPECT_EQ(get(p, "k").text.size(), 9u);
  EXPECT_EQ(get(p, "l").i, -300);
  EXPECT_EQ(get(p, "m").i, 70000);
  // Protocol 2 spells bytes as _codecs.encode("\x00\xff", "latin1"): folded to bytes.
  EXPECT_EQ(get(p, "n").kind, Kind::kBytes);
  EXPECT_EQ(get(p, "n").text, std::string("\0\xff", 2));
}

TEST(Pickle, Protocol0TextOpcodes) {
  // {"a": [1, 2.5, "x\u00e9"], "b": (True, None)}, protocol 0: DICT, PUT, UNICODE, LIST, INT, FLOAT
  const Pickle p =
      load(bytes("(dp0\012Va\012p1\012(lp2\012I1\012aF2.5\012aVx\351\012p3\012asVb\012p4\012(I01\012Ntp5\012s."));
  const pk::Value& a = get(p, "a");
  ASSERT_EQ(a.kind, Kind::kList);
  ASSERT_EQ(a.items.size(), 3u);
  EXPECT_EQ(p.at(a.items[0]).i, 1);
  EXPECT_EQ(p.at(a.items[1]).f, 2.5);
  EXPECT_EQ(p.at(a.items[2]).text, "x\xc3\xa9");  // raw-unicode-escape latin-1 -> UTF-8
  const pk::Value& b = get(p, "b");
  ASSERT_EQ(b.kind, Kind::kTuple);
  EXPECT_TRUE(p.at(b.items[0]).b);
  EXPECT_EQ(p.at(b.items[1]).kind, Kind::kNone);
}

TEST(Pickle, Protocol4FramesSetsStackGlobal) {
  // [OrderedDict([("x", 1), ("y", frozenset([2]))]), {3}, b"by"], protocol 4: FRAME, MEMOIZE,
  // SHORT_BINUNICODE, STACK_GLOBAL, FROZENSET, EMPTY_SET + ADDITEMS, SHORT_BINBYTES
  const Pickle p =
      load(bytes("\200\004\225B\000\000\000\000\000\000\000]\224(\214\013collections\224\214\013OrderedDict"
                 "\224\223\224)R\224(\214\001x\224K\001\214\001y\224(K\002\221\224u\217\224(K\003\220C\002by"
                 "\224e."));
  ASSERT_EQ(p.root().kind, Kind::kList);
  ASSERT_EQ(p.root().items.size(), 3u);
  const Ref od = p.root().items[0];
  ASSERT_EQ(p.at(od).kind, Kind::kDict);  // OrderedDict() folded to a dict
  EXPECT_EQ(p.at(p.dict_get(od, "x")).i, 1);
  const pk::Value& fs = p.at(p.dict_get(od, "y"));
  ASSERT_EQ(fs.kind, Kind::kSet);
  EXPECT_EQ(p.at(fs.items.at(0)).i, 2);
  const pk::Value& s = p.at(p.root().items[1]);
  ASSERT_EQ(s.kind, Kind::kSet);
  EXPECT_EQ(p.at(s.items.at(0)).i, 3);
  EXPECT_EQ(p.at(p.root().items[2]).text, "by");
}

TEST(Pickle, Protocol5Bytearray) {
  // bytearray(b"ab"), protocol 5: BYTEARRAY8
  const Pickle p =
      load(bytes("\200\005\225\015\000\000\000\000\000\000\000\226\002\000\000\000\000\000\000\000ab\224."));
  EXPECT_EQ(p.root().kind, Kind::kBytes);
  EXPECT_EQ(p.root().text, "ab");
}

TEST(Pickle, MemoSharesValues) {
  // l = [1]; [l, l], protocol 2: the second element is a BINGET of the first
  const Pickle p = load(bytes("\200\002]q\000(]q\001K\001ah\001e."));
  ASSERT_EQ(p.root().items.size(), 2u);
  EXPECT_EQ(p.root().items[0], p.root().items[1]);
}

TEST(Pickle, SelfReferenceIsACycleNotACrash) {
  // l = []; l.append(l), protocol 2
  const Pickle p = load(bytes("\200\002]q\000h\000a."));
  ASSERT_EQ(p.root().items.size(), 1u);
  EXPECT_EQ(p.root().items[0], p.root_ref());
  EXPECT_EQ(p.describe(p.root_ref()), "a list of 1 items");
}

TEST(Pickle, NumpyScalarsBecomeNumbers) {
  // {"f8": np.float64(0.5), "b1": np.bool_(True), "i8": np.int64(-7), "f4": np.float32(1.5),
  //  "f2": np.float16(-2.0), "u1": np.uint8(200)}, protocol 2: numpy.core.multiarray.scalar(
  //  numpy.dtype(code, False, True) + BUILD state, _codecs.encode(raw bytes, "latin1"))
  const Pickle p =
      load(bytes("\200\002}q\000(X\002\000\000\000f8q\001cnumpy.core.multiarray\012scalar\012q\002cnumpy\012"
                 "dtype\012q\003X\002\000\000\000f8q\004\211\210\207q\005Rq\006(K\003X\001\000\000\000<q\007"
                 "NNNJ\377\377\377\377J\377\377\377\377K\000tq\010bc_codecs\012encode\012q\011X\011\000\000"
                 "\000\000\000\000\000\000\000\303\240\077q\012X\006\000\000\000latin1q\013\206q\014Rq\015"
                 "\206q\016Rq\017X\002\000\000\000b1q\020h\002h\003X\002\000\000\000b1q\021\211\210\207q\022"
                 "Rq\023(K\003X\001\000\000\000|q\024NNNJ\377\377\377\377J\377\377\377\377K\000tq\025bh\011X"
                 "\001\000\000\000\001q\026h\013\206q\027Rq\030\206q\031Rq\032X\002\000\000\000i8q\033h\002h"
                 "\003X\002\000\000\000i8q\034\211\210\207q\035Rq\036(K\003h\007NNNJ\377\377\377\377J\377"
                 "\377\377\377K\000tq\037bh\011X\020\000\000\000\303\271\303\277\303\277\303\277\303\277\303"
                 "\277\303\277\303\277q h\013\206q!Rq\042\206q#Rq$X\002\000\000\000f4q%h\002h\003X\002\000"
                 "\000\000f4q&\211\210\207q'Rq((K\003h\007NNNJ\377\377\377\377J\377\377\377\377K\000tq)bh"
                 "\011X\005\000\000\000\000\000\303\200\077q*h\013\206q+Rq,\206q-Rq.X\002\000\000\000f2q/h"
                 "\002h\003X\002\000\000\000f2q0\211\210\207q1Rq2(K\003h\007NNNJ\377\377\377\377J\377\377"
                 "\377\377K\000tq3bh\011X\003\000\000\000\000\303\200q4h\013\206q5Rq6\206q7Rq8X\002\000\000"
                 "\000u1q9h\002h\003X\002\000\000\000u1q:\211\210\207q;Rq<(K\003h\024NNNJ\377\377\377\377J"
                 "\377\377\377\377K\000tq=bh\011X\002\000\000\000\303\210q>h\013\206q\077Rq@\206qARqBu."));
  EXPECT_EQ(get(p, "f8").kind, Kind::kFloat);
  EXPECT_EQ(get(p, "f8").f, 0.5);
  EXPECT_EQ(get(p, "b1").kind, Kind::kBool);
  EXPECT_TRUE(get(p, "b1").b);
  EXPECT_EQ(get(p, "i8").i, -7);
  EXPECT_EQ(get(p, "f4").f, 1.5);
  EXPECT_EQ(get(p, "f2").f, -2.0);
  EXPECT_EQ(get(p, "u1").i, 200);
}

TEST(Pickle, RefusesGlobalsOffTheAllowList) {
  // os.system, protocol 2 (GLOBAL) and protocol 4 (STACK_GLOBAL)
  for (const std::string& b :
       {bytes("\200\002cposix\012system\012q\000."),
        bytes("\200\004\225\024\000\000\000\000\000\000\000\214\005posix\224\214\006system\224\223\224.")}) {
    const std::string e = error_of(b);
    EXPECT_NE(e.find("t.pkl: refusing to load global posix.system"), std::string::npos) << e;
  }
  EXPECT_NE(error_of(bytes("\200\002cbuiltins\012eval\012.")).find("global builtins.eval"), std::string::npos);
  EXPECT_NE(error_of(bytes("\200\002ctorch\012load\012.")).find("global torch.load"), std::string::npos);
  EXPECT_NE(error_of(bytes("\200\002ctorch._utils\012_rebuild_qtensor\012.")).find("_rebuild_qtensor"),
            std::string::npos);
  // INST goes through the same check.
  EXPECT_NE(error_of(bytes("(iposix\012system\012.")).find("global posix.system"), std::string::npos);
  // A custom filter can allow more (e.g. for inspection tools).
  pk::UnpickleOptions any;
  any.allow_global = [](std::string_view, std::string_view) { return true; };
  const Pickle p = load(bytes("\200\002cposix\012system\012q\000."), any);
  EXPECT_TRUE(p.is_global(p.root_ref(), "posix", "system"));
}

TEST(Pickle, AllowListIsExact) {
  EXPECT_TRUE(pk::checkpoint_global_allowed("collections", "OrderedDict"));
  EXPECT_TRUE(pk::checkpoint_global_allowed("torch._utils", "_rebuild_tensor_v2"));
  EXPECT_TRUE(pk::checkpoint_global_allowed("torch._utils", "_rebuild_parameter"));
  for (const char* s : {"FloatStorage", "HalfStorage", "BFloat16Storage", "DoubleStorage", "LongStorage", "IntStorage",
                        "ShortStorage", "CharStorage", "ByteStorage", "BoolStorage"})
    EXPECT_TRUE(pk::checkpoint_global_allowed("torch", s)) << s;
  EXPECT_TRUE(pk::checkpoint_global_allowed("numpy.core.multiarray", "scalar"));
  EXPECT_TRUE(pk::checkpoint_global_allowed("numpy", "dtype"));
  EXPECT_TRUE(pk::checkpoint_global_allowed("_codecs", "encode"));
  EXPECT_FALSE(pk::checkpoint_global_allowed("torch", "ComplexFloatStorage"));
  EXPECT_FALSE(pk::checkpoint_global_allowed("torch", "device"));
  EXPECT_FALSE(pk::checkpoint_global_allowed("collections", "defaultdict"));
  EXPECT_FALSE(pk::checkpoint_global_allowed("numpy", "load"));
  EXPECT_FALSE(pk::checkpoint_global_allowed("_codecs", "decode"));
  EXPECT_FALSE(pk::checkpoint_global_allowed("argparse", "Namespace"));
  EXPECT_FALSE(pk::checkpoint_global_allowed("torch._utils.", "_rebuild_tensor_v2"));
}

TEST(Pickle, EveryTruncationIsACleanError) {
  for (size_t n = 0; n < kP2Basic.size(); ++n) {
    const std::string e = error_of(kP2Basic.substr(0, n));
    EXPECT_NE(e.find("t.pkl"), std::string::npos) << n;
  }
  EXPECT_NE(error_of(kP2Basic.substr(0, 100)).find("truncated"), std::string::npos);
  EXPECT_NE(error_of("").find("empty"), std::string::npos);
}

TEST(Pickle, MalformedInputsAreCleanErrors) {
  struct Case {
    std::string bytes, expect;
  };
  const Case cases[] = {
      {bytes("\200\002X\377\377\377\377."), "only 1 left"},                             // 4 GiB string
      {bytes("\200\004\216\377\377\377\377\377\377\377\177."), "left"},                 // BINBYTES8 2^63
      {bytes("\200\004\225\377\000\000\000\000\000\000\000N."), "frame of 255 bytes"},  // FRAME too long
      {bytes("\200\002\377."), "unknown opcode 0xff"},
      {bytes("\200\006N."), "protocol 6"},
      {bytes("\200\002h\007."), "memo key 7 was never stored"},
      {bytes("\200\002a."), "stack underflow"},
      {bytes("\200\002(."), "stack underflow"},  // STOP above a MARK
      {bytes("\200\002t."), "no MARK"},
      {bytes("\200\002NNNs."), "target is None, expected a dict"},  // SETITEM on None
      {bytes("\200\002}(Nu."), "odd number"},
      {bytes("\200\002]K\001Nb."), "cannot set the state of an int"},
      {bytes("\200\002K\001)R."), "callable is an int"},  // REDUCE on an int
      {bytes("\200\002ccollections\012OrderedDict\012K\001R."), "expected a tuple"},
      {bytes("\200\002X\002\000\000\000\377\376."), "UTF-8"},
      {bytes("\200\002\202\001."), "extension registry"},
      {bytes("\200\005\227."), "out-of-band"},
      {bytes("\200\002\213\377\377\377\377."), "negative length"},  // LONG4
      {bytes("I12x\012."), "decimal integer"},
      {bytes("S'abc\012."), "not quoted"},
      {bytes("\200\002cposix"), "no newline"},
  };
  for (const Case& c : cases) {
    const std::string e = error_of(c.bytes);
    EXPECT_NE(e.find(c.expect), std::string::npos) << "got: " << e;
    EXPECT_EQ(e.rfind("t.pkl: ", 0), 0u) << e;
  }
}

TEST(Pickle, DeepNestingNeitherRecursesNorCrashes) {
  // 200,000 nested lists: EMPTY_LIST x N then APPEND x (N-1): iterative, no recursion.
  const size_t n = 200000;
  std::string b = "\200\002" + std::string(n, ']') + std::string(n - 1, 'a') + ".";
  const Pickle p = load(b);
  EXPECT_EQ(p.root().kind, Kind::kList);
  EXPECT_EQ(p.describe(p.root_ref()), "a list of 1 items");
  // 200,000 MARKs and nested tuples.
  b = "\200\002" + std::string(n, '(') + std::string(n, 't') + ".";
  EXPECT_EQ(load(b).root().kind, Kind::kTuple);
  // MARKs left open: STOP finds nothing above the last one.
  EXPECT_NE(error_of("\200\002" + std::string(n, '(') + ".").find("stack underflow"), std::string::npos);
  // find_state_dict on a deeply nested structure returns or throws, without recursing.
  EXPECT_THROW(pk::find_state_dict(load("\200\002" + std::string(n, ']') + std::string(n - 1, 'a') + "."), "t.pkl"),
               clip::Error);
}

TEST(Pickle, ValueLimit) {
  pk::UnpickleOptions small;
  small.max_values = 100;
  EXPECT_THROW(load("\200\002" + std::string(200, ']') + ".", small), clip::Error);
}

// torch.save(OrderedDict(("module.w", torch.tensor([[1., 2.], [3., 4.]]).t()),
//                        ("module.b", torch.tensor([5, 6])[1:]))) -> archive/data.pkl
const std::string kTorchStateDict = bytes(
    "\200\002ccollections\012OrderedDict\012q\000)Rq\001(X\010\000\000\000module.wq\002ctorch._"
    "utils\012_rebuild_tensor_v2\012q\003((X\007\000\000\000storageq\004ctorch\012FloatStorage"
    "\012q\005X\001\000\000\0000q\006X\003\000\000\000cpuq\007K\004tq\010QK\000K\002K\002\206q"
    "\011K\001K\002\206q\012\211h\000)Rq\013tq\014Rq\015X\010\000\000\000module.bq\016h\003((h"
    "\004ctorch\012LongStorage\012q\017X\001\000\000\0001q\020h\007K\002tq\021QK\001K\001\205q"
    "\022K\001\205q\023\211h\000)Rq\024tq\025Rq\026u.");

TEST(TorchPickle, StateDictEntries) {
  const auto sd = pk::find_state_dict(load(kTorchStateDict), "x.pt: data.pkl");
  ASSERT_EQ(sd.size(), 2u);
  EXPECT_EQ(sd[0].first, "w");  // "module." stripped from every key
  EXPECT_EQ(sd[0].second.storage_key, "0");
  EXPECT_EQ(sd[0].second.dtype, clip::io::DType::kF32);
  EXPECT_EQ(sd[0].second.location, "cpu");
  EXPECT_EQ(sd[0].second.storage_numel, 4);
  EXPECT_EQ(sd[0].second.offset, 0);
  EXPECT_EQ(sd[0].second.sizes, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(sd[0].second.strides, (std::vector<int64_t>{1, 2}));  // transposed
  EXPECT_EQ(sd[1].first, "b");
  EXPECT_EQ(sd[1].second.dtype, clip::io::DType::kI64);
  EXPECT_EQ(sd[1].second.offset, 1);
  EXPECT_EQ(sd[1].second.sizes, (std::vector<int64_t>{1}));
  EXPECT_EQ(sd[1].second.extent("b"), 2);
}

TEST(TorchPickle, ExtentBeyondStorageIsRefused) {
  // The same pickle with module.w's size (2, 2) patched to (2, 3): needs 1 + 1*1 + 2*2 = 6 > 4.
  std::string b = kTorchStateDict;
  const size_t at = b.find(bytes("K\002K\002\206"));
  ASSERT_NE(at, std::string::npos);
  b[at + 3] = '\003';
  try {
    pk::find_state_dict(load(b), "x.pt: data.pkl");
    FAIL() << "no error";
  } catch (const clip::Error& e) {
    EXPECT_STREQ(e.what(),
                 "x.pt: data.pkl: tensor \"module.w\": tensor reaches element 6 of its storage \"0\", which holds 4");
  }
  // Overflowing sizes and strides.
  pk::TensorRef t;
  t.sizes = {INT64_MAX / 2, 4};
  t.strides = {4, 1};
  EXPECT_THROW(t.extent("t"), clip::Error);
  t.sizes = {2};
  t.strides = {-1};
  EXPECT_THROW(t.extent("t"), clip::Error);
  t.sizes = {0, 5};
  t.strides = {INT64_MAX, INT64_MAX};
  EXPECT_EQ(t.extent("t"), 0);
}

TEST(TorchPickle, NoStateDict) {
  // [1, 2, 3]: "t.pkl holds a list of 3 items, expected a dict of tensors"
  try {
    pk::find_state_dict(load(bytes("\200\002]q\000(K\001K\002K\003e.")), "x.pt: data.pkl");
    FAIL();
  } catch (const clip::Error& e) {
    EXPECT_STREQ(e.what(), "x.pt: data.pkl holds a list of 3 items, expected a dict of tensors");
  }
  // The basic dict above has no tensors.
  try {
    pk::find_state_dict(load(kP2Basic), "x.pt: data.pkl");
    FAIL();
  } catch (const clip::Error& e) {
    EXPECT_NE(std::string(e.what()).find("holds a dict with keys \"a\", \"b\""), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("but no tensors"), std::string::npos) << e.what();
  }
}

TEST(TorchPickle, LegacyFormatLayout) {
  // tests/data/checkpoints/legacy.pt (tools/make_checkpoint_fixtures.py).
  const std::string f = clip::util::read_file(clip::test::data_dir() + "/checkpoints/legacy.pt");
  const auto* d = reinterpret_cast<const uint8_t*>(f.data());
  ASSERT_TRUE(pk::looks_like_legacy_torch(d, f.size()));
  const pk::LegacyLayout l = pk::parse_legacy_torch(d, f.size(), "legacy.pt");
  const auto sd = pk::find_state_dict(l.main, "legacy.pt");
  ASSERT_EQ(sd.size(), 9u);
  EXPECT_EQ(sd[0].first, "a.weight");
  EXPECT_EQ(l.storages.size(), 9u);
  uint64_t end = 0;
  for (const auto& s : l.storages) {
    EXPECT_GE(s.offset, end);
    end = s.offset + s.bytes;
  }
  EXPECT_EQ(end, f.size());
  // Every truncation of the file is a clean error.
  for (size_t n = 0; n < f.size(); n += 7) EXPECT_THROW(pk::parse_legacy_torch(d, n, "legacy.pt"), clip::Error) << n;
}

// --- TorchScript module trees -------------------------------------------------------------------

// A module tree as TorchScript pickles it (NEWOBJ of a __torch__ class, BUILD with its attribute
// dict), written by CPython with stand-in classes: root M {w: tensor "0" [3], training: False,
// sub: M {training: False, b: tensor "1" [2], back: root}, again: sub, obj: Obj {t: tensor "9"
// [1]} (no `training`: not a module), flag: 3, me: root}.
const std::string kModuleTree = bytes(
    "\200\002c__torch__\012M\012q\000)\201q\001}q\002(X\001\000\000\000wq\003ctorch._utils\012_rebuil"
    "d_tensor_v2\012q\004((X\007\000\000\000storageq\005ctorch\012FloatStorage\012q\006X\001\000\000"
    "\0000q\007X\003\000\000\000cpuq\010K\003tq\011QK\000K\003\205q\012K\001\205q\013\211Ntq\014Rq"
    "\015X\010\000\000\000trainingq\016\211X\003\000\000\000subq\017h\000)\201q\020}q\021(h\016\211X"
    "\001\000\000\000bq\022h\004((h\005h\006X\001\000\000\0001q\023h\010K\002tq\024QK\000K\002\205q"
    "\025h\013\211Ntq\026Rq\027X\004\000\000\000backq\030h\001ubX\005\000\000\000againq\031h\020X\003"
    "\000\000\000objq\032c__torch__\012Obj\012q\033)\201q\034}q\035X\001\000\000\000tq\036h\004((h"
    "\005h\006X\001\000\000\0009q\037h\010K\001tq QK\000K\001\205q!h\013\211Ntq\042Rq#sbX\004\000\000"
    "\000flagq$K\003X\002\000\000\000meq%h\001ub.");

// Root M {training: True, w: tensor, odd: Odd} where Odd's __getstate__ returned (1, 2).
const std::string kSetstateModule = bytes(
    "\200\002c__torch__\012M\012q\000)\201q\001}q\002(X\010\000\000\000trainingq\003\210X\001\000\000"
    "\000wq\004ctorch._utils\012_rebuild_tensor_v2\012q\005((X\007\000\000\000storageq\006ctorch\012F"
    "loatStorage\012q\007X\001\000\000\0000q\010X\003\000\000\000cpuq\011K\003tq\012QK\000K\003\205q"
    "\013K\001\205q\014\211Ntq\015Rq\016X\003\000\000\000oddq\017c__torch__\012Odd\012q\020)\201q\021"
    "K\001K\002\206q\022bub.");

pk::UnpickleOptions torchscript_options() {
  pk::UnpickleOptions o;
  o.allow_global = &pk::torchscript_global_allowed;
  return o;
}

TEST(TorchScriptPickle, ModuleTreeIsWalkedOnceWithoutRunningAnything) {
  EXPECT_NE(error_of(kModuleTree).find("t.pkl: refusing to load global __torch__.M"),
            std::string::npos);  // not in torch.save files
  const Pickle p = load(kModuleTree, torchscript_options());
  const auto tensors = pk::find_module_tensors(p, "t.pkl");
  ASSERT_EQ(tensors.size(), 2u);
  EXPECT_EQ(tensors[0].first, "w");
  EXPECT_EQ(tensors[0].second.storage_key, "0");
  EXPECT_EQ(tensors[0].second.sizes, (std::vector<int64_t>{3}));
  EXPECT_EQ(tensors[1].first, "sub.b");  // once, though `again` and the cycles reach it again
  EXPECT_EQ(tensors[1].second.storage_key, "1");
}

TEST(TorchScriptPickle, StateOnlySetstateCanRebuildIsRefused) {
  const Pickle p = load(kSetstateModule, torchscript_options());
  try {
    pk::find_module_tensors(p, "t.pkl");
    ADD_FAILURE() << "accepted";
  } catch (const clip::Error& e) {
    EXPECT_EQ(e.kind(), clip::ErrorKind::kUnsupported);
    EXPECT_EQ(
        std::string(e.what()).rfind("t.pkl: module \"odd\" (__torch__.Odd) is stored as a tuple of 2 items, not as a "
                                    "dict of attributes",
                                    0),
        0u)
        << e.what();
  }
}

TEST(TorchScriptPickle, RootMustBeAScriptedModule) {
  const Pickle p = load(kP2Basic, torchscript_options());
  try {
    pk::find_module_tensors(p, "t.pkl");
    ADD_FAILURE() << "accepted";
  } catch (const clip::Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("t.pkl holds a dict with keys \"a\"", 0), 0u) << e.what();
  }
  for (const char* allowed : {"build_intlist", "build_tensorlist", "restore_type_tag"})
    EXPECT_TRUE(pk::torchscript_global_allowed("torch.jit._pickle", allowed)) << allowed;
  EXPECT_TRUE(pk::torchscript_global_allowed("__torch__.torch.nn.modules.conv", "Conv2d"));
  EXPECT_FALSE(pk::torchscript_global_allowed("__torch___evil", "x"));
  EXPECT_FALSE(pk::torchscript_global_allowed("torch.jit._pickle", "load"));
  EXPECT_FALSE(pk::torchscript_global_allowed("builtins", "eval"));
  EXPECT_FALSE(pk::torchscript_global_allowed("torch", "load"));
}

}  // namespace
