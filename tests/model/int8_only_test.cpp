// Int8-only models (LoadOptions: precision int8 on a quantized checkpoint): the file's int8
// weights go straight into the packs (FastLinear::set_int8_weight, InferencePlan::take_int8_weight)
// and no float copy of them is kept. Their features against today's path (the file dequantized,
// then run at precision int8) and against the original model run at int8, every intermediate;
// and what such a model refuses.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cpu_features.h"
#include "clip/error.h"
#include "clip/model.h"
#include "io/safetensors.h"
#include "model/fast_linear.h"
#include "model/int8_checkpoint.h"
#include "model/int8_pack.h"
#include "model/model_access.h"
#include "model/quantize.h"
#include "reference_data.h"
#include "temp_dir.h"
#include "test_paths.h"
#include "tiny_model.h"
#include "util/file_io.h"

namespace {

using clip::model::Activation;
using clip::model::FastLinear;
using clip::model::LinearCompute;
using clip::test::fixtures;
using clip::test::load_npy;
using clip::test::TempDir;

// A clip::Error's message from `f`, or "(no error)".
template <class F>
std::string error_of(F f) {
  try {
    f();
  } catch (const clip::Error& e) {
    return e.what();
  }
  return "(no error)";
}

bool says_int8_only(const std::string& message) { return message.find("loaded int8-only") != std::string::npos; }

// One layer: packing the integers and scales directly gives, bit for bit, what packing a float
// weight that quantizes to them gives, through forward and accumulate, with and without bias.
TEST(Int8OnlyLinear, EqualsTheInt8PathOfTheFloatWeightBitForBit) {
  CLIP_SKIP_WITHOUT_INT8();
  torch::manual_seed(31);
  c10::InferenceMode inference;
  for (const auto& [m, k, n] : {std::tuple<int64_t, int64_t, int64_t>{1, 64, 48}, {17, 768, 2304}, {50, 96, 32}}) {
    const torch::Tensor w = torch::randn({n, k}) * torch::logspace(-3, 0, n).unsqueeze(1);
    const torch::Tensor x = torch::randn({m, k}), b = torch::randn({n});
    const clip::model::QuantizedWeight q = clip::model::quantize_per_channel(w);
    FastLinear from_float, from_ints;
    from_ints.set_int8_weight(q.values, q.scales);
    EXPECT_TRUE(from_ints.int8_only());
    EXPECT_EQ(from_ints.pack_count(), 1);
    // The model holds a placeholder of the weight's shape (one float, broadcast).
    const torch::Tensor placeholder = torch::zeros({1}).expand({n, k});
    for (const torch::Tensor& bias : {b, torch::Tensor()}) {
      for (const Activation act : {Activation::kNone, Activation::kQuickGelu}) {
        for (const torch::ScalarType out : {torch::kFloat32, torch::kBFloat16}) {
          const torch::Tensor want = from_float.forward(x, w, bias, act, LinearCompute::kInt8, out);
          const torch::Tensor got = from_ints.forward(x, placeholder, bias, act, LinearCompute::kInt8, out);
          EXPECT_TRUE(torch::equal(got, want)) << m << "x" << k << "x" << n << " bias " << bias.defined();
        }
      }
      torch::Tensor y1 = torch::randn({m, n}), y2 = y1.clone();
      from_float.accumulate(x, w, bias, LinearCompute::kInt8, y1);
      from_ints.accumulate(x, placeholder, bias, LinearCompute::kInt8, y2);
      EXPECT_TRUE(torch::equal(y1, y2));
    }
    EXPECT_EQ(from_ints.pack_count(), 1);  // never re-packed: the pack is the weight
    for (const LinearCompute other : {LinearCompute::kFP32, LinearCompute::kBF16}) {
      const std::string e =
          error_of([&] { from_ints.forward(x, placeholder, b, Activation::kNone, other, torch::kFloat32); });
      EXPECT_TRUE(says_int8_only(e)) << e;
    }
  }
}

// Our int8 packing writes the bytes oneDNN's reorder writes, padding and compensation included,
// for the layouts oneDNN's int8 matmul asks for (ViT-B/32's shapes, and shapes that need padding).
TEST(Int8Pack, WritesTheBytesOfOneDnnsReorder) {
  CLIP_SKIP_WITHOUT_INT8();
  torch::manual_seed(32);
  const dnnl::engine& engine = clip::model::onednn_cpu_engine();
  using dt = dnnl::memory::data_type;
  using tag = dnnl::memory::format_tag;
  for (const auto& [k, n] : std::vector<std::pair<int64_t, int64_t>>{
           {768, 2304}, {768, 768}, {768, 3072}, {3072, 768}, {512, 1536}, {768, 512}, {64, 48}, {5, 7}, {100, 33}}) {
    const torch::Tensor values = torch::randint(-127, 128, {n, k}).to(torch::kInt8);
    dnnl::post_ops po;
    po.append_binary(dnnl::algorithm::binary_mul, dnnl::memory::desc({1, n}, dt::f32, tag::ab));
    dnnl::primitive_attr attr;
    attr.set_post_ops(po);
    const dnnl::matmul::primitive_desc pd(
        dnnl::matmul::desc(dnnl::memory::desc({1, k}, dt::s8, tag::ab), dnnl::memory::desc({k, n}, dt::s8, tag::any),
                           dnnl::memory::desc({1, n}, dt::f32, tag::ab)),
        attr, engine);
    const dnnl::memory::desc desc = pd.weights_desc();
    // oneDNN allocates more than it writes: the bytes after the compensation stay as they were.
    std::vector<uint8_t> want(desc.get_size(), 0xAB), got(desc.get_size(), 0xAB);
    dnnl::memory plain(dnnl::memory::desc({k, n}, dt::s8, tag::ba), engine, values.data_ptr());
    dnnl::memory packed(desc, engine, want.data());
    dnnl::stream stream(engine);
    dnnl::reorder(plain, packed).execute(stream, plain, packed);
    stream.wait();
    ASSERT_TRUE(clip::model::pack_int8_weight(values, desc, got.data())) << k << "x" << n;
    EXPECT_TRUE(got == want) << k << "x" << n;
  }
}

struct Inputs {
  torch::Tensor images, tokens;
};

// The fixture's preprocessed images and caption tokens (as int8_test.cpp uses them).
Inputs fixture_inputs(const std::string& fx, const std::string& name) {
  const std::string ref_dir = fx + "/ref/" + name;
  const auto index = nlohmann::json::parse(clip::util::read_file(ref_dir + "/index.json"));
  return {load_npy(fx + "/" + index["image_input"].get<std::string>()),
          load_npy(ref_dir + "/text_tokens.npy").to(torch::kInt64)};
}

clip::LoadOptions with(clip::Precision p, bool keep_float_weights = false) {
  clip::LoadOptions o;
  o.precision = p;
  o.keep_float_weights = keep_float_weights;
  return o;
}

void expect_equal_records(const clip::Intermediates& got, const clip::Intermediates& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (const auto& [layer, w] : want) {
    ASSERT_TRUE(got.count(layer)) << what << " " << layer;
    EXPECT_TRUE(torch::equal(got.at(layer), w))
        << what << " " << layer << ": max difference " << (got.at(layer) - w).abs().max().item<float>();
  }
}

class Int8OnlyFixture : public ::testing::TestWithParam<const char*> {};

// The int8-only model runs the stored integers with the stored scales, which are the scales int8
// inference computed on the original model: its features and every intermediate equal, bit for
// bit, the original model's at precision int8 (for the float16 fixtures, whose other tensors the
// file keeps exactly). Today's path (the file dequantized to q × s, then
// quantized again at run time) recomputes each scale as max|q × s| / 127; that is s again for
// every weight of these fixtures (checked below), so it gives the same bits too.
TEST_P(Int8OnlyFixture, FeaturesEqualTheDequantizedPathAndTheOriginalAtInt8) {
  CLIP_SKIP_WITHOUT_INT8();
  const std::string name = GetParam(), fx = fixtures();
  const std::string original_path = fx + "/models/" + name + ".safetensors";
  if (!clip::test::path_exists(fx + "/models/" + name + ".config.json"))
    GTEST_SKIP() << "fixture model " << name << " needs ../shared/fixtures (set CLIP_FIXTURES)";
  TempDir tmp;
  const std::string path = tmp.file("q.safetensors");
  clip::LoadOptions original_options = with(clip::Precision::kInt8);
  original_options.config_path = fx + "/models/" + name + ".config.json";
  const clip::Model original = clip::Model::load(original_path, original_options);
  EXPECT_FALSE(original.int8_only());  // not a quantized file: loaded as always
  original.save_safetensors(path, torch::kInt8);

  const clip::Model int8_only = clip::Model::load(path, with(clip::Precision::kInt8));
  const clip::Model dequantized = clip::Model::load(path, with(clip::Precision::kInt8, /*keep_float_weights=*/true));
  ASSERT_TRUE(int8_only.int8_only());
  ASSERT_FALSE(dequantized.int8_only());
  EXPECT_EQ(int8_only.precision(), clip::Precision::kInt8);

  // The stored scales come back exactly from the dequantized weights (why the paths agree).
  const auto stored = clip::model::quantize_for_saving(dequantized.state_dict());
  const auto first = clip::model::quantize_for_saving(original.state_dict());
  ASSERT_EQ(stored.size(), first.size());
  for (size_t i = 0; i < stored.size(); ++i)
    EXPECT_TRUE(torch::equal(stored[i].second, first[i].second)) << stored[i].first;

  const Inputs in = fixture_inputs(fx, name);
  clip::Intermediates r_only, r_deq, r_orig;
  const torch::Tensor img = int8_only.encode_image(in.images, &r_only), txt = int8_only.encode_text(in.tokens, &r_only);
  const torch::Tensor img_deq = dequantized.encode_image(in.images, &r_deq),
                      txt_deq = dequantized.encode_text(in.tokens, &r_deq);
  original.encode_image(in.images, &r_orig);
  original.encode_text(in.tokens, &r_orig);
  EXPECT_TRUE(torch::equal(img, img_deq));
  EXPECT_TRUE(torch::equal(txt, txt_deq));
  expect_equal_records(r_only, r_deq, name + " against the dequantized file");
  // The file keeps other matrices as float16: the same values as the original's for the float16
  // fixtures only.
  if (name.size() > 4 && name.compare(name.size() - 4, 4, "-f16") == 0)
    expect_equal_records(r_only, r_orig, name + " against the original at int8");

  // Memory: the weights the int8 path runs are held as int8 with their scales (a quarter and a
  // bit), each float32 weight replaced by a one-float placeholder.
  uint64_t float_bytes = 0, int8_bytes = 0;
  for (const auto& [n, t] : stored) {
    if (t.scalar_type() == torch::kInt8) {
      float_bytes += 4 * t.numel();
      int8_bytes += t.numel() + 4;  // + the placeholder's float
    } else if (n.find(clip::model::kInt8ScaleSuffix) != std::string::npos) {
      int8_bytes += 4 * t.numel();
    }
  }
  EXPECT_EQ(int8_only.weight_bytes(), dequantized.weight_bytes() - float_bytes + int8_bytes);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Int8OnlyFixture, ::testing::Values("tiny-vit", "tiny-vit-f16", "tiny-rn-f16"));

// What an int8-only model cannot do refuses with clip::Error saying so, and the model still works.
TEST(Int8Only, RefusesOtherPrecisionsWeightsAndTrainingClearly) {
  CLIP_SKIP_WITHOUT_INT8();
  TempDir tmp;
  const std::string path = tmp.file("q.safetensors");
  clip::Model::load(clip::test::model_path()).save_safetensors(path, torch::kInt8);
  clip::Model m = clip::Model::load(path, with(clip::Precision::kInt8));
  ASSERT_TRUE(m.int8_only());
  const std::vector<std::pair<std::string, std::string>> refusals = {
      {"fp32", error_of([&] { m.set_precision(clip::Precision::kFP32); })},
      {"bf16", error_of([&] { m.set_precision(clip::Precision::kBF16); })},
      {"state_dict", error_of([&] { m.state_dict(); })},
      {"save", error_of([&] { m.save_safetensors(tmp.file("out.safetensors")); })},
      {"save int8", error_of([&] { m.save_safetensors(tmp.file("out8.safetensors"), torch::kInt8); })},
      {"gradient checkpointing", error_of([&] { m.set_gradient_checkpointing(true); })},
      {"module (training)", error_of([&] { clip::model::module_of(m); })},
  };
  for (const auto& [what, message] : refusals) {
    EXPECT_TRUE(says_int8_only(message)) << what << ": " << message;
    std::printf("[ int8-only ] %s: %s\n", what.c_str(), message.c_str());
  }
  EXPECT_FALSE(clip::util::file_exists(tmp.file("out.safetensors")));
  m.set_precision(clip::Precision::kInt8);  // its own precision stays allowed
  EXPECT_EQ(m.precision(), clip::Precision::kInt8);
  const int r = m.config().image_resolution;
  const torch::Tensor f = m.encode_image(torch::randn({2, 3, r, r}));
  EXPECT_EQ(f.size(0), 2);
  EXPECT_TRUE(torch::isfinite(f).all().item<bool>());
  EXPECT_GT(m.weight_bytes(), 0u);

  // Other precisions of the same file load as before: dequantized, every feature available.
  for (const clip::Precision p : {clip::Precision::kFP32, clip::Precision::kBF16}) {
    clip::Model full = clip::Model::load(path, with(p));
    EXPECT_FALSE(full.int8_only());
    EXPECT_FALSE(full.state_dict().empty());
    full.set_precision(clip::Precision::kInt8);
    full.set_precision(p);
  }
}

// A quantized file with hostile scales is refused by the int8-only load as by the dequantizing one
// (one validation, model/int8_checkpoint.h take_int8_scales).
TEST(Int8Only, HostileScalesAreRefusedAsWhenDequantizing) {
  CLIP_SKIP_WITHOUT_INT8();
  TempDir tmp;
  const std::string path = tmp.file("q.safetensors");
  clip::Model::load(clip::test::model_path()).save_safetensors(path, torch::kInt8);
  // Rewrite one scale as negative.
  clip::io::SafetensorsFile file(path);
  std::vector<torch::Tensor> keep;
  std::vector<clip::io::TensorToWrite> list;
  for (const auto& t : file.header().tensors) {
    const auto bytes = static_cast<int64_t>(t.end - t.begin);
    torch::Tensor v = torch::from_blob(const_cast<uint8_t*>(file.data(t)), {bytes}, torch::kUInt8).clone();
    if (t.name == "transformer.resblocks.0.mlp.c_fc.weight.int8_scale") v.view(torch::kFloat32).neg_();
    keep.push_back(v);
    list.push_back({t.name, t.dtype, t.shape, v.data_ptr(), static_cast<size_t>(bytes)});
  }
  const std::string bad = tmp.file("bad.safetensors");
  clip::io::write_safetensors(bad, list, file.header().metadata);
  for (const clip::Precision p : {clip::Precision::kFP32, clip::Precision::kInt8}) {
    const std::string e = error_of([&] { clip::Model::load(bad, with(p)); });
    EXPECT_NE(e.find("not finite and positive"), std::string::npos) << e;
  }
}

}  // namespace
