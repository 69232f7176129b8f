// Quantized checkpoints (model/int8_checkpoint.h, `clip convert --dtype int8`): the stored integers
// and scales against the documented quantization computed here, the file loading to q × scale,
// int8 inference of the file giving what int8 inference of the original gives, and hostile files
// (scales without their tensor, wrong shapes or dtypes, bad scale values) refused by name.
#include <gtest/gtest.h>

#include <map>

#include "cpu_features.h"
#include "clip/error.h"
#include "clip/model.h"
#include "io/safetensors.h"
#include "model/int8_checkpoint.h"
#include "temp_dir.h"
#include "tensor_compare.h"
#include "tiny_model.h"
#include "util/file_io.h"

namespace {

using clip::model::stored_as_int8;
using clip::test::TempDir;

std::map<std::string, torch::Tensor> by_name(const clip::StateDict& sd) { return {sd.begin(), sd.end()}; }

// Every tensor of a safetensors file, copied out of the mapping, with its stored dtype.
std::map<std::string, torch::Tensor> read_raw(const std::string& path) {
  clip::io::SafetensorsFile file(path);
  std::map<std::string, torch::Tensor> out;
  for (const auto& t : file.header().tensors) {
    const torch::ScalarType type = t.dtype == clip::io::DType::kI8    ? torch::kInt8
                                   : t.dtype == clip::io::DType::kF16 ? torch::kFloat16
                                   : t.dtype == clip::io::DType::kF32 ? torch::kFloat32
                                                                      : torch::kBFloat16;
    out[t.name] = torch::from_blob(const_cast<uint8_t*>(file.data(t)), t.shape, torch::dtype(type)).clone();
  }
  return out;
}

torch::Tensor some_tokens(const clip::ModelConfig& c) {
  torch::Tensor t = torch::zeros({3, c.context_length}, torch::kInt64);
  const std::vector<std::vector<int64_t>> rows = {{320, 1125, 539}, {550, 12, 900, 44, 7}, {1000}};
  for (size_t r = 0; r < rows.size(); ++r) {
    t[r][0] = 49406;
    for (size_t i = 0; i < rows[r].size(); ++i) t[r][i + 1] = rows[r][i];
    t[r][rows[r].size() + 1] = 49407;
  }
  return t;
}

TEST(Int8Checkpoint, StoresTheLinearsAsInt8WithPerChannelScalesAndTheRestAsDocumented) {
  TempDir tmp;
  const clip::Model& m = clip::test::tiny_model();
  const std::string path = tmp.file("q.safetensors");
  m.save_safetensors(path, torch::kInt8);
  const auto stored = read_raw(path);
  const auto original = by_name(m.state_dict());
  size_t quantized = 0;
  for (const auto& [name, w] : original) {
    if (!w.is_floating_point()) continue;
    ASSERT_TRUE(stored.count(name)) << name;
    const torch::Tensor& got = stored.at(name);
    if (stored_as_int8(name)) {
      ++quantized;
      ASSERT_EQ(got.scalar_type(), torch::kInt8) << name;
      const torch::Tensor scale = stored.at(name + ".int8_scale");
      // The documented quantization, in double: per output channel (rows of a linear's weight,
      // columns of a projection), s = max|channel| / 127, q = round(w / s).
      const bool columns = name == "text_projection" || name == "visual.proj";
      const torch::Tensor wd = w.to(torch::kFloat64);
      const torch::Tensor s = (columns ? wd.abs().amax(0, true) : wd.abs().amax(1, true)) / 127;
      EXPECT_EQ(scale.sizes(), s.sizes()) << name;
      EXPECT_LE((scale.to(torch::kFloat64) - s).abs().max().item<double>(), 1e-7 * s.max().item<double>()) << name;
      const torch::Tensor q = torch::round(wd / s);
      // A value within float rounding of a half may round either way: allow 1 where that happens.
      EXPECT_LE((got.to(torch::kFloat64) - q).abs().max().item<double>(), 1) << name;
      EXPECT_GE((got.to(torch::kFloat64) == q).to(torch::kFloat64).mean().item<double>(), 0.999) << name;
      EXPECT_EQ(got.abs().max().item<int>(), 127) << name;
    } else if (w.dim() >= 2) {
      ASSERT_EQ(got.scalar_type(), torch::kFloat16) << name;
      EXPECT_TRUE(torch::equal(got, w.to(torch::kFloat16))) << name;
      EXPECT_FALSE(stored.count(name + ".int8_scale")) << name;
    } else {
      ASSERT_EQ(got.scalar_type(), torch::kFloat32) << name;
      EXPECT_TRUE(torch::equal(got, w.to(torch::kFloat32))) << name;
    }
  }
  // Both towers' four linears per block and the two projections.
  const auto& c = m.config();
  EXPECT_EQ(quantized, static_cast<size_t>(4 * c.transformer_layers + 4 * c.vision_layers + 2));
  EXPECT_EQ(clip::io::SafetensorsFile(path).header().metadata.count("quantization"), 1u);
}

TEST(Int8Checkpoint, LoadsAsIntegersTimesScalesAndRunsInt8AsTheOriginalDoes) {
  CLIP_SKIP_WITHOUT_INT8();
  TempDir tmp;
  const clip::Model& m = clip::test::tiny_model();
  const std::string path = tmp.file("q.safetensors");
  m.save_safetensors(path, torch::kInt8);
  const auto stored = read_raw(path);
  clip::Model loaded = clip::Model::load(path);
  for (const auto& [name, w] : loaded.state_dict()) {
    EXPECT_EQ(name.find(".int8_scale"), std::string::npos) << name;
    if (stored_as_int8(name)) {
      EXPECT_TRUE(torch::equal(w, stored.at(name).to(torch::kFloat32) * stored.at(name + ".int8_scale"))) << name;
    }
  }

  torch::manual_seed(5);
  const int r = m.config().image_resolution;
  const torch::Tensor images = torch::randn({4, 3, r, r}), tokens = some_tokens(m.config());
  clip::Model original = clip::Model::load(clip::test::model_path());
  original.set_precision(clip::Precision::kInt8);
  loaded.set_precision(clip::Precision::kInt8);
  // The file's weights quantize back to the stored integers (the fixture is float16, so the
  // float16 tensors are its own values): int8 inference gives what it gives on the original.
  EXPECT_LE(clip::test::relative_error(loaded.encode_image(images), original.encode_image(images)), 1e-5);
  EXPECT_LE(clip::test::relative_error(loaded.encode_text(tokens), original.encode_text(tokens)), 1e-5);
}

// A file with `tensors` (name → tensor) and the tiny model's config.
std::string write_file(const TempDir& tmp, const std::string& name, const std::map<std::string, torch::Tensor>& tensors) {
  std::vector<clip::io::TensorToWrite> list;
  for (const auto& [n, t] : tensors) {
    const clip::io::DType d = t.scalar_type() == torch::kInt8 ? clip::io::DType::kI8 : clip::io::DType::kF32;
    list.push_back({n, d, t.sizes().vec(), t.data_ptr(), static_cast<size_t>(t.nbytes())});
  }
  const std::string path = tmp.file(name);
  clip::io::write_safetensors(path, list, {{"format", "pt"}});
  return path;
}

std::string load_error(const std::string& path) {
  try {
    clip::Model::load(path);
  } catch (const clip::Error& e) {
    return e.what();
  }
  return "(loaded)";
}

TEST(Int8Checkpoint, HostileScalesAndIntegersAreRefusedByName) {
  TempDir tmp;
  const std::string w = "transformer.resblocks.0.mlp.c_fc.weight", s = w + ".int8_scale";
  const torch::Tensor q = torch::randint(-127, 128, {8, 4}).to(torch::kInt8);
  const torch::Tensor good = torch::full({8, 1}, 0.01f);
  struct Case {
    std::string file;
    std::map<std::string, torch::Tensor> tensors;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"orphan.safetensors", {{s, good}}, "that the file does not hold"},
      {"float.safetensors", {{w, torch::randn({8, 4})}, {s, good}}, "must be an int8 matrix"},
      {"shape.safetensors", {{w, q}, {s, torch::full({4, 1}, 0.01f)}}, "expected float32 [8, 1] or [1, 4]"},
      {"vector.safetensors", {{w, q}, {s, torch::full({8}, 0.01f)}}, "expected float32 [8, 1] or [1, 4]"},
      {"negative.safetensors", {{w, q}, {s, -good}}, "not finite and positive"},
      {"nan.safetensors", {{w, q}, {s, torch::full({8, 1}, NAN)}}, "not finite and positive"},
      {"zero.safetensors", {{w, q}, {s, torch::zeros({8, 1})}}, "not finite and positive"},
      {"unscaled.safetensors", {{w, q}}, "is int8 without its scale"},
      {"control.safetensors", {{"a\x1b[2J.int8_scale", good}}, "\"a\\x1b[2J\""},
  };
  for (const Case& c : cases) {
    const std::string path = write_file(tmp, c.file, c.tensors);
    const std::string message = load_error(path);
    EXPECT_NE(message.find(path), std::string::npos) << c.file << ": " << message;
    EXPECT_NE(message.find(c.expected), std::string::npos) << c.file << ": " << message;
    EXPECT_EQ(message.find('\x1b'), std::string::npos) << c.file;
  }
}

}  // namespace
