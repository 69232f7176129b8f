// PyTorch checkpoint readers: the fixture models' torch.save and TorchScript archives against
// their safetensors twins (names, dtypes, bit-identical values), the small files under
// tests/data/checkpoints (tools/make_checkpoint_fixtures.py: open_clip checkpoints, "module."
// prefixes, bf16, strided views, the legacy format, refused globals, corrupt archives), the
// TorchScript archives of tools/make_hostile_torchscript.py (a scripted module read as data; a
// module whose __setstate__ creates a file, refused without running it), and format detection.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <set>

#include <caffe2/serialize/inline_container.h>

#include "clip/error.h"
#include "clip/model.h"
#include "io/safetensors.h"
#include "io/torch/torch_checkpoint.h"
#include "test_paths.h"
#include "util/file_io.h"

namespace {

namespace fs = std::filesystem;
using clip::io::CheckpointFormat;
using clip::io::NamedTensors;

std::string models() { return clip::test::shared_fixtures() + "/models/"; }
std::string data(const std::string& name) { return clip::test::data_dir() + "/checkpoints/" + name; }

torch::ScalarType to_torch(clip::io::DType t) {
  switch (t) {
    case clip::io::DType::kF64: return torch::kFloat64;
    case clip::io::DType::kF32: return torch::kFloat32;
    case clip::io::DType::kF16: return torch::kFloat16;
    case clip::io::DType::kBF16: return torch::kBFloat16;
    case clip::io::DType::kI64: return torch::kInt64;
    case clip::io::DType::kI32: return torch::kInt32;
    case clip::io::DType::kI16: return torch::kInt16;
    case clip::io::DType::kI8: return torch::kInt8;
    case clip::io::DType::kU8: return torch::kUInt8;
    case clip::io::DType::kBool: return torch::kBool;
  }
  return torch::kFloat32;
}

// Exact equality of the float32 bit patterns (so -0.0 != 0.0 and subnormals count).
bool bit_identical_f32(const torch::Tensor& a, const torch::Tensor& b) {
  const torch::Tensor x = a.to(torch::kFloat32).contiguous(), y = b.to(torch::kFloat32).contiguous();
  return x.sizes() == y.sizes() && std::memcmp(x.data_ptr(), y.data_ptr(), x.numel() * 4) == 0;
}

bool is_jit_scalar(const std::string& name) {
  return name == "input_resolution" || name == "context_length" || name == "vocab_size";
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const clip::Error& e) {
    return e.what();
  }
  return "";
}

// A per-test temporary folder, removed afterwards.
class TempDir {
 public:
  TempDir() {
    dir_ = fs::temp_directory_path() / ("clip_ckpt_test_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string write(const std::string& name, const std::string& bytes) const {
    const std::string p = (dir_ / name).string();
    std::ofstream(p, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return p;
  }

 private:
  fs::path dir_;
};

// --- the fixture models ------------------------------------------------------------------------

struct FixtureStats {
  size_t f16 = 0, f32 = 0, i64 = 0;
  size_t safetensors_i64 = 0;  // num_batches_tracked in the ResNet
};

// Compares a torch checkpoint with the model's .safetensors: same names (the TorchScript int64
// scalars aside) and bit-identical float32 values.
FixtureStats expect_matches_safetensors(const NamedTensors& got, const std::string& model) {
  clip::io::SafetensorsFile st(models() + model + ".safetensors");
  FixtureStats s;
  for (const auto& info : st.header().tensors) s.safetensors_i64 += info.dtype == clip::io::DType::kI64;
  std::set<std::string> names;
  size_t subnormals = 0;
  for (const auto& [name, t] : got) {
    EXPECT_TRUE(t.device().is_cpu()) << name;
    if (t.scalar_type() == torch::kFloat16) ++s.f16;
    if (t.scalar_type() == torch::kFloat32) ++s.f32;
    if (t.scalar_type() == torch::kInt64) ++s.i64;
    if (is_jit_scalar(name)) {
      EXPECT_EQ(t.scalar_type(), torch::kInt64) << name;
      EXPECT_EQ(t.dim(), 0) << name;
      continue;
    }
    EXPECT_TRUE(names.insert(name).second) << "repeated " << name;
    const clip::io::TensorInfo* info = st.find(name);
    if (!info) {
      ADD_FAILURE() << model << ": " << name << " is not in the safetensors file";
      continue;
    }
    const torch::Tensor ref =
        torch::from_blob(const_cast<uint8_t*>(st.data(*info)), info->shape, to_torch(info->dtype));
    EXPECT_EQ(t.sizes(), ref.sizes()) << name;
    if (t.is_floating_point()) {
      EXPECT_TRUE(bit_identical_f32(t, ref)) << model << ": " << name;
      const torch::Tensor a = t.to(torch::kFloat32).abs();
      subnormals += ((a > 0) & (a < 6.103515625e-05)).sum().item<int64_t>();  // below fp16's smallest normal
    } else {
      EXPECT_TRUE(torch::equal(t, ref)) << model << ": " << name;
    }
  }
  EXPECT_EQ(names.size(), st.header().tensors.size()) << model;
  EXPECT_GT(subnormals, 1000u) << model << ": fp16 subnormals were flushed";
  return s;
}

TEST(TorchCheckpoint, FixturePtMatchesSafetensors) {
  CLIP_REQUIRE_SHARED_FIXTURES();
  for (const std::string model : {"tiny-vit-f16", "tiny-rn-f16"}) {
    const NamedTensors sd = clip::io::read_torch_state_dict(models() + model + ".pt");
    const FixtureStats s = expect_matches_safetensors(sd, model);
    // All floating tensors are HalfStorage; only num_batches_tracked is int64.
    EXPECT_EQ(s.f32, 0u) << model;
    EXPECT_EQ(s.f16 + s.i64, sd.size()) << model;
    EXPECT_EQ(s.i64, s.safetensors_i64) << model;
    EXPECT_EQ(s.i64, model == "tiny-rn-f16" ? 19u : 0u) << model;
  }
}

TEST(TorchCheckpoint, FixtureJitMatchesSafetensors) {
  CLIP_REQUIRE_SHARED_FIXTURES();
  for (const std::string model : {"tiny-vit-f16", "tiny-rn-f16"}) {
    const NamedTensors sd = clip::io::read_torchscript_state_dict(models() + model + ".jit.pt");
    const FixtureStats s = expect_matches_safetensors(sd, model);
    // convert_weights: conv/linear/attention weights fp16, the rest fp32; int64 scalars.
    EXPECT_EQ(s.f16, model == "tiny-vit-f16" ? 35u : 44u) << model;
    EXPECT_EQ(s.f16 + s.f32 + s.i64, sd.size()) << model;
    EXPECT_EQ(s.i64, s.safetensors_i64 + 3) << model;
    std::map<std::string, torch::ScalarType> dt;
    for (const auto& [n, t] : sd) dt[n] = t.scalar_type();
    EXPECT_EQ(dt.at("text_projection"), torch::kFloat16);
    EXPECT_EQ(dt.at("transformer.resblocks.0.attn.in_proj_weight"), torch::kFloat16);
    EXPECT_EQ(dt.at("token_embedding.weight"), torch::kFloat32);
    EXPECT_EQ(dt.at("ln_final.weight"), torch::kFloat32);
    EXPECT_EQ(dt.at("logit_scale"), torch::kFloat32);
    EXPECT_EQ(dt.at("input_resolution"), torch::kInt64);
    EXPECT_EQ(dt.at("vocab_size"), torch::kInt64);
    // state_dict order starts with the root's own tensors.
    EXPECT_EQ(sd.front().first, "positional_embedding");
  }
}

TEST(TorchCheckpoint, FixtureFormatsDetected) {
  CLIP_REQUIRE_SHARED_FIXTURES();
  using clip::io::detect_checkpoint_format;
  EXPECT_EQ(detect_checkpoint_format(models() + "tiny-vit.safetensors"), CheckpointFormat::kSafetensors);
  EXPECT_EQ(detect_checkpoint_format(models() + "tiny-vit-f16.hf.safetensors"), CheckpointFormat::kSafetensors);
  EXPECT_EQ(detect_checkpoint_format(models() + "tiny-vit-f16.pt"), CheckpointFormat::kTorchZip);
  EXPECT_EQ(detect_checkpoint_format(models() + "tiny-rn-f16.jit.pt"), CheckpointFormat::kTorchScript);
  EXPECT_EQ(detect_checkpoint_format(models() + "tiny-vit.config.json"), CheckpointFormat::kUnknown);
  // The wrong reader for a format says so.
  EXPECT_NE(error_of([] {
              clip::io::read_torch_state_dict(models() + "tiny-vit-f16.safetensors");
            }).find("a safetensors file, not a torch.save archive"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              clip::io::read_torch_state_dict(models() + "tiny-vit-f16.jit.pt");
            }).find("a TorchScript archive, not a torch.save file"),
            std::string::npos);
}

// --- small checkpoints: tools/make_checkpoint_fixtures.py -----------------------------------------

std::vector<std::string> names_of(const NamedTensors& sd) {
  std::vector<std::string> out;
  for (const auto& kv : sd) out.push_back(kv.first);
  return out;
}

const torch::Tensor& at(const NamedTensors& sd, const std::string& name) {
  for (const auto& kv : sd)
    if (kv.first == name) return kv.second;
  throw clip::Error("no tensor " + name);
}

void expect_base_state_dict(const NamedTensors& sd) {
  std::vector<std::string> want = {"a.weight",     "a.bias",   "b.bf16", "b.num_batches_tracked",
                                   "t.transposed", "v.offset", "m.mask", "e.empty",
                                   "s.scalar"};
  ASSERT_EQ(names_of(sd), want);
  const torch::Tensor w = at(sd, "a.weight");
  EXPECT_EQ(w.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::equal(w, torch::arange(12, torch::kFloat32).reshape({3, 4}) / 8 - 0.75));
  const torch::Tensor b = at(sd, "a.bias");
  EXPECT_EQ(b.scalar_type(), torch::kFloat16);
  EXPECT_TRUE(torch::equal(b.to(torch::kFloat32), torch::tensor({0.5f, -1.25f, 3.0f})));
  const torch::Tensor bf = at(sd, "b.bf16");
  EXPECT_EQ(bf.scalar_type(), torch::kBFloat16);
  EXPECT_EQ(bf.sizes(), (std::vector<int64_t>{2, 3}));
  EXPECT_TRUE(bit_identical_f32(
      bf, torch::tensor({1.0f, -2.0f, 0.375f, 4.5f, 1e-3f, -0.0f}).to(torch::kBFloat16).reshape({2, 3})));
  const torch::Tensor n = at(sd, "b.num_batches_tracked");
  EXPECT_EQ(n.scalar_type(), torch::kInt64);
  EXPECT_EQ(n.dim(), 0);
  EXPECT_EQ(n.item<int64_t>(), 42);
  const torch::Tensor t = at(sd, "t.transposed");
  EXPECT_EQ(t.scalar_type(), torch::kFloat64);
  EXPECT_EQ(t.sizes(), (std::vector<int64_t>{4, 3}));
  EXPECT_EQ(t.strides(), (std::vector<int64_t>{1, 4}));  // kept as stored, not made contiguous
  EXPECT_FALSE(t.is_contiguous());
  EXPECT_TRUE(torch::equal(t, (torch::arange(12, torch::kFloat64).reshape({3, 4}) - 5).t()));
  const torch::Tensor v = at(sd, "v.offset");
  EXPECT_EQ(v.scalar_type(), torch::kInt32);
  EXPECT_EQ(v.storage_offset(), 2);
  EXPECT_TRUE(torch::equal(v, torch::tensor({3, 4, 5, 6}, torch::kInt32).reshape({2, 2})));
  const torch::Tensor m = at(sd, "m.mask");
  EXPECT_EQ(m.scalar_type(), torch::kBool);
  EXPECT_TRUE(torch::equal(m, torch::tensor({true, false, true})));
  EXPECT_EQ(at(sd, "e.empty").sizes(), (std::vector<int64_t>{0, 3}));
  const torch::Tensor s = at(sd, "s.scalar");
  EXPECT_EQ(s.dim(), 0);
  EXPECT_EQ(s.item<float>(), 2.5f);
}

TEST(TorchCheckpoint, StateDictDtypesAndLayouts) {
  const NamedTensors sd = clip::io::read_torch_state_dict(data("state_dict.pt"));
  expect_base_state_dict(sd);
  EXPECT_EQ(clip::io::detect_checkpoint_format(data("state_dict.pt")), CheckpointFormat::kTorchZip);
}

TEST(TorchCheckpoint, LegacyFormat) {
  EXPECT_EQ(clip::io::detect_checkpoint_format(data("legacy.pt")), CheckpointFormat::kLegacyTorch);
  expect_base_state_dict(clip::io::read_torch_state_dict(data("legacy.pt")));
}

TEST(TorchCheckpoint, ModulePrefixStripped) {
  expect_base_state_dict(clip::io::read_torch_state_dict(data("module_prefixed.pt")));
}

TEST(TorchCheckpoint, OpenClipTrainingCheckpoint) {
  // {"epoch", "name", "state_dict" (module.-prefixed), "optimizer" (AdamW, numpy lr), "scaler"},
  // written to memory so its zip folder is "archive".
  const NamedTensors sd = clip::io::read_torch_state_dict(data("open_clip.pt"));
  ASSERT_EQ(names_of(sd), (std::vector<std::string>{"weight", "bias"}));
  EXPECT_TRUE(torch::equal(at(sd, "weight"), torch::arange(12, torch::kFloat32).reshape({3, 4}) / 8 - 0.75));
  EXPECT_TRUE(torch::equal(at(sd, "bias"), torch::tensor({0.5f, -1.25f, 3.0f})));
}

TEST(TorchCheckpoint, ModelKeyCheckpoint) {
  const NamedTensors sd = clip::io::read_torch_state_dict(data("model_key.pt"));
  ASSERT_EQ(names_of(sd), (std::vector<std::string>{"w"}));
  EXPECT_TRUE(torch::equal(at(sd, "w"), torch::ones({2, 2})));
}

TEST(TorchCheckpoint, ParametersAndTiedStorage) {
  // OrderedDict(enc.weight=w, dec.weight=w, row=w.data[1]) with w an nn.Parameter.
  const NamedTensors sd = clip::io::read_torch_state_dict(data("tied_params.pt"));
  ASSERT_EQ(names_of(sd), (std::vector<std::string>{"enc.weight", "dec.weight", "row"}));
  EXPECT_TRUE(torch::equal(at(sd, "enc.weight"), torch::arange(4, torch::kFloat32).reshape({2, 2})));
  EXPECT_FALSE(at(sd, "enc.weight").requires_grad());
  EXPECT_EQ(at(sd, "enc.weight").data_ptr(), at(sd, "dec.weight").data_ptr());  // one storage, read once
  EXPECT_EQ(at(sd, "row").storage_offset(), 2);
  EXPECT_TRUE(torch::equal(at(sd, "row"), torch::tensor({2.0f, 3.0f})));
}

TEST(TorchCheckpoint, NotAStateDict) {
  const std::string list = data("list.pt");
  EXPECT_EQ(error_of([&] { clip::io::read_torch_state_dict(list); }),
            list + ": data.pkl holds a list of 3 items, expected a dict of tensors");
  const std::string none = data("no_tensors.pt");
  const std::string e = error_of([&] { clip::io::read_torch_state_dict(none); });
  EXPECT_EQ(e.rfind(none + ": data.pkl holds a dict with keys \"epoch\", \"lr\" but no tensors", 0), 0u) << e;
}

TEST(TorchCheckpoint, DisallowedGlobalRefused) {
  const std::string p = data("disallowed_global.pt");
  const std::string e = error_of([&] { clip::io::read_torch_state_dict(p); });
  EXPECT_EQ(e.rfind(p + ": data.pkl: refusing to load global posix.system", 0), 0u) << e;
}

TEST(TorchCheckpoint, CorruptArchives) {
  const std::string missing = data("missing_record.pt");
  EXPECT_EQ(error_of([&] { clip::io::read_torch_state_dict(missing); }),
            missing + ": tensor \"a.weight\": record data/0 is missing from the archive");
  const std::string shrt = data("short_storage.pt");
  EXPECT_EQ(
      error_of([&] { clip::io::read_torch_state_dict(shrt); }),
      shrt + ": tensor \"a.weight\": record data/0 holds 40 bytes, but its storage has 12 F32 elements (48 bytes)");
  const std::string extent = data("bad_extent.pt");
  EXPECT_EQ(error_of([&] { clip::io::read_torch_state_dict(extent); }),
            extent + ": data.pkl: tensor \"a.weight\": tensor reaches element 16 of its storage \"0\", which holds 12");
}

TEST(TorchCheckpoint, TruncatedAndWrongFiles) {
  const TempDir tmp;
  const std::string full = clip::util::read_file(data("state_dict.pt"));
  for (size_t n : {size_t{10}, size_t{100}, full.size() / 2, full.size() - 30, full.size() - 1}) {
    const std::string p = tmp.write("cut" + std::to_string(n) + ".pt", full.substr(0, n));
    const std::string e = error_of([&] { clip::io::read_torch_state_dict(p); });
    EXPECT_EQ(e.rfind(p + ": cannot read the zip archive", 0), 0u) << n << ": " << e;
    EXPECT_EQ(clip::io::detect_checkpoint_format(p), CheckpointFormat::kTorchZip);
  }
  const std::string legacy = clip::util::read_file(data("legacy.pt"));
  for (size_t n : {size_t{20}, legacy.size() / 2, legacy.size() - 1}) {
    const std::string p = tmp.write("legacy" + std::to_string(n) + ".pt", legacy.substr(0, n));
    const std::string e = error_of([&] { clip::io::read_torch_state_dict(p); });
    EXPECT_EQ(e.rfind(p + ": ", 0), 0u) << e;
    EXPECT_NE(e.find("truncated"), std::string::npos) << e;
  }
  const std::string junk = tmp.write("junk.pt", "hello, world: not a checkpoint");
  EXPECT_EQ(
      error_of([&] { clip::io::read_torch_state_dict(junk); }),
      junk +
          ": not a torch.save file (expected a zip archive starting with PK\\x03\\x04, or a legacy torch.save pickle)");
  EXPECT_EQ(clip::io::detect_checkpoint_format(junk), CheckpointFormat::kUnknown);
  const std::string empty = tmp.write("empty.pt", "");
  EXPECT_EQ(error_of([&] { clip::io::read_torch_state_dict(empty); }),
            empty + ": empty file, expected a torch.save zip archive");
  EXPECT_EQ(clip::io::detect_checkpoint_format(empty), CheckpointFormat::kUnknown);
  const std::string bare = tmp.write("bare.pkl", std::string("\x80\x02}q\x00.", 6));
  EXPECT_NE(error_of([&] { clip::io::read_torch_state_dict(bare); }).find("a bare pickle"), std::string::npos);
  // Detection looks at bytes, not names.
  const std::string renamed = tmp.write("model.safetensors", full);
  EXPECT_EQ(clip::io::detect_checkpoint_format(renamed), CheckpointFormat::kTorchZip);
  const std::string nowhere = tmp.write("x", "") + ".missing";
  EXPECT_EQ(error_of([&] { clip::io::detect_checkpoint_format(nowhere); }).rfind(nowhere + ": cannot open", 0), 0u);
  EXPECT_EQ(error_of([&] { clip::io::read_torch_state_dict(nowhere); }).rfind(nowhere + ": cannot open", 0), 0u);
  EXPECT_EQ(error_of([&] { clip::io::read_torchscript_state_dict(nowhere); }).rfind(nowhere + ": cannot open", 0), 0u);
}

TEST(TorchCheckpoint, TorchScriptReaderErrors) {
  const std::string p = data("state_dict.pt");
  const std::string e = error_of([&] { clip::io::read_torchscript_state_dict(p); });
  EXPECT_EQ(e.rfind(p + ": data.pkl holds a dict with keys \"a.weight\"", 0), 0u) << e;
  EXPECT_NE(e.find("expected a TorchScript module (an object of a __torch__ class)"), std::string::npos) << e;
  const TempDir tmp;
  const std::string cut = tmp.write("cut.jit.pt", clip::util::read_file(data("scripted.jit.pt")).substr(0, 500));
  const std::string c = error_of([&] { clip::io::read_torchscript_state_dict(cut); });
  EXPECT_EQ(c.rfind(cut + ": cannot read the zip archive (truncated or not a TorchScript archive?): ", 0), 0u) << c;
  EXPECT_EQ(c.find('\n'), std::string::npos) << c;
}

// --- TorchScript archives read as data: tools/make_hostile_torchscript.py ------------------------

// A scripted module: its state_dict as torch.jit.load(...).state_dict() prints it (see the tool),
// plus the plain tensor attribute attn_mask, which only the archive's code tells from a buffer.
TEST(TorchCheckpoint, ScriptedArchive) {
  const std::string p = data("scripted.jit.pt");
  EXPECT_EQ(clip::io::detect_checkpoint_format(p), CheckpointFormat::kTorchScript);
  const NamedTensors sd = clip::io::read_torchscript_state_dict(p);
  ASSERT_EQ(names_of(sd), (std::vector<std::string>{"logit_scale", "input_resolution", "attn_mask", "visual.weight",
                                                    "visual.bias", "blocks.0.ln.weight", "blocks.0.ln.bias",
                                                    "blocks.1.ln.weight", "blocks.1.ln.bias"}));
  EXPECT_EQ(at(sd, "logit_scale").dim(), 0);
  EXPECT_EQ(at(sd, "logit_scale").item<float>(), 2.5f);
  EXPECT_EQ(at(sd, "input_resolution").scalar_type(), torch::kInt64);
  EXPECT_EQ(at(sd, "input_resolution").item<int64_t>(), 32);
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_TRUE(torch::equal(at(sd, "attn_mask"), torch::tensor({0.0f, -inf, 0.0f, 0.0f}).reshape({2, 2})));
  EXPECT_TRUE(torch::equal(at(sd, "visual.weight"), torch::arange(6, torch::kFloat32).reshape({3, 2}) / 4));
  EXPECT_TRUE(torch::equal(at(sd, "visual.bias"), torch::tensor({0.5f, -1.0f, 2.0f})));
  EXPECT_TRUE(torch::equal(at(sd, "blocks.0.ln.weight"), torch::tensor({1.0f, 2.0f})));
  EXPECT_TRUE(torch::equal(at(sd, "blocks.1.ln.weight"), torch::tensor({2.0f, 3.0f})));
  EXPECT_TRUE(torch::equal(at(sd, "blocks.1.ln.bias"), torch::tensor({-0.5f, 0.25f})));
}

// The same archive with its code/ records left out and constants.pkl replaced by junk still reads:
// neither is ever looked at (torch.jit.load cannot load it).
TEST(TorchCheckpoint, TorchScriptCodeAndConstantsAreNeverRead) {
  const TempDir tmp;
  const std::string out = tmp.write("nocode.jit.pt", "");
  {
    caffe2::serialize::PyTorchStreamReader in(data("scripted.jit.pt"));
    caffe2::serialize::PyTorchStreamWriter writer(out);
    size_t dropped = 0;
    for (const std::string& r : in.getAllRecords()) {
      if (r.rfind("code/", 0) == 0) {
        ++dropped;
        continue;
      }
      if (r == "version") continue;  // the writer adds its own
      if (r == "constants.pkl") {
        const std::string junk = "not a pickle";
        writer.writeRecord(r, junk.data(), junk.size());
        continue;
      }
      auto [bytes, n] = in.getRecord(r);
      writer.writeRecord(r, bytes.get(), n);
    }
    writer.writeEndOfFile();
    EXPECT_GT(dropped, 0u);
  }
  EXPECT_EQ(clip::io::detect_checkpoint_format(out), CheckpointFormat::kTorchScript);
  EXPECT_EQ(names_of(clip::io::read_torchscript_state_dict(out)),
            names_of(clip::io::read_torchscript_state_dict(data("scripted.jit.pt"))));
}

// Runs `f` with the current directory set to a fresh temporary folder, where the hostile
// archive's __setstate__ would create its marker file (a relative path).
void in_temp_cwd(const std::function<void(const std::string& dir)>& f) {
  const std::string dir = clip::test::fresh_temp_dir("hostile_cwd");
  const fs::path before = fs::current_path();
  fs::current_path(dir);
  try {
    f(dir);
  } catch (...) {
    fs::current_path(before);
    throw;
  }
  fs::current_path(before);
}

constexpr const char* kMarker = "HOSTILE_CODE_RAN";  // tools/make_hostile_torchscript.py --marker

void expect_refused_safely(const clip::Error& e, const std::string& path) {
  const std::string m = e.what();
  EXPECT_EQ(e.kind(), clip::ErrorKind::kUnsupported) << m;
  EXPECT_EQ(m.rfind(path + ": data.pkl: module \"visual\" (__torch__.Hostile) is stored as a tuple of 3 items", 0), 0u)
      << m;
  EXPECT_NE(m.find("__getstate__/__setstate__"), std::string::npos) << m;
  EXPECT_NE(m.find("torch.save(torch.jit.load(path, map_location=\"cpu\").state_dict(), \"model.pt\")"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("clip convert"), std::string::npos) << m;
  EXPECT_EQ(m.find('\n'), std::string::npos) << m;
}

TEST(TorchCheckpoint, HostileSetstateNeverRuns) {
  const std::string p = fs::absolute(data("hostile_setstate.jit.pt")).string();
  EXPECT_EQ(clip::io::detect_checkpoint_format(p), CheckpointFormat::kTorchScript);
  in_temp_cwd([&](const std::string& dir) {
    try {
      clip::io::read_torchscript_state_dict(p);
      ADD_FAILURE() << "the hostile archive was read";
    } catch (const clip::Error& e) {
      expect_refused_safely(e, p);
    }
    try {
      clip::Model::load(p);
      ADD_FAILURE() << "the hostile archive was loaded";
    } catch (const clip::Error& e) {
      expect_refused_safely(e, p);
    }
    EXPECT_FALSE(clip::test::path_exists(dir + "/" + kMarker)) << "code from the archive ran";
  });
}

}  // namespace
