// Every spelling of a model name resolves to the same table row; bad names are refused.
#include <gtest/gtest.h>

#include "clip/error.h"
#include "clip/hub.h"
#include "hub/validate.h"

namespace clip::hub {
namespace {

ErrorKind kind_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.kind();
  }
  ADD_FAILURE() << "no clip::Error thrown";
  return ErrorKind::kInternal;
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(HubNames, TableCoversOpenAisNineAndOpenClipTags) {
  int openai = 0;
  for (const PretrainedEntry& e : pretrained_table()) openai += !e.openai_name.empty();
  EXPECT_EQ(openai, 9);
  EXPECT_GE(pretrained_table().size(), 60u);
}

TEST(HubNames, EverySpellingOfOneCheckpointGivesItsRepo) {
  const std::string repo = "laion/CLIP-ViT-B-32-laion2B-s34B-b79K";
  for (const auto& [name, pretrained] : std::vector<std::pair<std::string, std::string>>{
           {"ViT-B-32", "laion2b_s34b_b79k"},             // open_clip + --pretrained
           {"ViT-B-32/laion2b_s34b_b79k", ""},            // open_clip, one string
           {"ViT-B-32::laion2b-s34b-b79k", ""},           // clip-as-service
           {"ViT-B-32__laion2b-s34b-b79k", ""},           // immich
           {"open_clip:ViT-B-32/laion2b_s34b_b79k", ""},  // clip-retrieval with a tag
           {"open_clip:ViT-B-32", "laion2b_s34b_b79k"},
           {"vit-b-32/LAION2B-S34B-B79K", ""},  // case and dashes as open_clip cleans tags
       }) {
    const ModelSpec spec = parse_model_name(name, pretrained);
    EXPECT_EQ(spec.kind, SourceKind::kPretrained) << name;
    EXPECT_EQ(spec.repo, repo) << name;
    ASSERT_TRUE(spec.entry) << name;
    EXPECT_EQ(spec.entry->tag, "laion2b_s34b_b79k");
    EXPECT_FALSE(spec.entry->quick_gelu);
  }
  // hf-hub: names the repo itself and picks up the table row.
  const ModelSpec hub = parse_model_name("hf-hub:" + repo);
  EXPECT_EQ(hub.kind, SourceKind::kHubRepo);
  EXPECT_EQ(hub.repo, repo);
  EXPECT_EQ(hub.revision, "main");
  ASSERT_TRUE(hub.entry);
}

TEST(HubNames, OpenAiNamesAreTheOpenaiTag) {
  for (const auto& [openai, arch] : std::vector<std::pair<std::string, std::string>>{
           {"ViT-B/32", "ViT-B-32"}, {"ViT-L/14@336px", "ViT-L-14-336"}, {"RN50", "RN50"}, {"RN50x64", "RN50x64"}}) {
    const ModelSpec spec = parse_model_name(openai);
    ASSERT_TRUE(spec.entry) << openai;
    EXPECT_EQ(spec.entry->arch, arch);
    EXPECT_EQ(spec.entry->tag, "openai");
    EXPECT_TRUE(spec.entry->quick_gelu);
    EXPECT_EQ(spec.entry->openai_name, openai);
    // The same checkpoint in the other spellings.
    EXPECT_EQ(parse_model_name(arch + "/openai").repo, spec.repo);
    EXPECT_EQ(parse_model_name(arch + "__openai").repo, spec.repo);
  }
  EXPECT_EQ(parse_model_name("ViT-B/32").entry->openai_file, "ViT-B-32.pt");
  // OpenAI's spelling with an open_clip tag means that architecture.
  EXPECT_EQ(parse_model_name("RN50", "yfcc15m").repo, "timm/resnet50_clip.yfcc15m");
}

TEST(HubNames, QuickGeluSuffixAndClipRetrievalDefaultTag) {
  const ModelSpec q = parse_model_name("ViT-B-32-quickgelu/laion400m_e32");
  EXPECT_TRUE(q.entry->quick_gelu);
  EXPECT_EQ(q.repo, "timm/vit_base_patch32_clip_224.laion400m_e32");
  // clip-retrieval without a tag: dict(open_clip.list_pretrained())[arch], the arch's last tag.
  const ModelSpec d = parse_model_name("open_clip:ViT-B-32-quickgelu");
  EXPECT_EQ(d.entry->tag, "metaclip_fullcc");
  // A GELU-trained tag under the -quickgelu name is not offered.
  EXPECT_EQ(kind_of([] { parse_model_name("ViT-B-32-quickgelu/laion2b_s34b_b79k"); }), ErrorKind::kNotFound);
}

// Rows checked against open_clip's pretrained.py (2025): order (the last tag is clip-retrieval's
// default), repos, QuickGELU and preprocessing of the DFN and MetaCLIP rows.
TEST(HubNames, TableFollowsOpenClipsRegistry) {
  EXPECT_EQ(parse_model_name("open_clip:ViT-L-14").entry->tag, "dfn2b_s39b");
  EXPECT_EQ(parse_model_name("open_clip:ViT-L-14").repo, "apple/DFN2B-CLIP-ViT-L-14-39B");
  EXPECT_FALSE(parse_model_name("ViT-L-14/dfn2b_s39b").entry->quick_gelu);
  EXPECT_EQ(parse_model_name("open_clip:ViT-H-14").entry->tag, "dfn5b");
  EXPECT_EQ(parse_model_name("ViT-H-14/metaclip_altogether").repo,
            "timm/vit_huge_patch14_clip_224.metaclip_altogether");
  for (const char* name : {"ViT-H-14/dfn5b", "ViT-H-14-378/dfn5b"}) {
    const ModelSpec s = parse_model_name(name);
    EXPECT_TRUE(s.entry->quick_gelu) << name;
    EXPECT_EQ(s.entry->preprocess.resize_mode, "squash") << name;
    EXPECT_EQ(s.entry->preprocess.interpolation, "bicubic") << name;
  }
  EXPECT_EQ(parse_model_name("ViT-L-14/laion2b_s32b_b82k").entry->preprocess.mean[0], 0.5f);
  // open_clip maps the e32 tag of ViT-B-16-plus-240 to the e31 repo; the cache is shared with it.
  EXPECT_EQ(parse_model_name("ViT-B-16-plus-240/laion400m_e32").repo,
            "timm/vit_base_patch16_plus_clip_240.laion400m_e31");
}

TEST(HubNames, HubAndLocalDirForms) {
  const ModelSpec s = parse_model_name("hf-hub:openai/clip-vit-base-patch32@refs/pr/1");
  EXPECT_EQ(s.repo, "openai/clip-vit-base-patch32");
  EXPECT_EQ(s.revision, "refs/pr/1");
  EXPECT_FALSE(s.entry);
  const ModelSpec l = parse_model_name("local-dir:/models/b32");
  EXPECT_EQ(l.kind, SourceKind::kPath);
  EXPECT_EQ(l.path, "/models/b32");
}

TEST(HubNames, UnknownNamesSuggestTheClosest) {
  const std::string m = message_of([] { parse_model_name("ViT-B-32/laion2b_s34b_b97k"); });
  EXPECT_NE(m.find("closest known: ViT-B-32/laion2b_s34b_b79k"), std::string::npos) << m;
  const std::string a = message_of([] { parse_model_name("ViT-B-23/openai"); });
  EXPECT_NE(a.find("ViT-B-32/openai"), std::string::npos) << a;
  EXPECT_EQ(closest_names("ViT-B/23").front(), "ViT-B/32");
  EXPECT_EQ(kind_of([] { parse_model_name("convnext_base/laion400m_s13b_b51k"); }), ErrorKind::kNotFound);
  // An architecture without a tag lists its tags.
  const std::string t = message_of([] { parse_model_name("ViT-B-32"); });
  EXPECT_NE(t.find("laion2b_s34b_b79k"), std::string::npos) << t;
}

TEST(HubNames, MalformedRepoRevisionAndFileNamesAreRefused) {
  for (const std::string bad :
       {"hf-hub:../etc", "hf-hub:a/..", "hf-hub:a/b/c", "hf-hub:/abs", "hf-hub:a--b/c", "hf-hub:a/b@../../x",
        "hf-hub:a/b@", "hf-hub:a/b c", "ViT-B-32/open\nai", "hf-hub:a/b@x\x01y"})
    EXPECT_EQ(kind_of([&] { parse_model_name(bad); }), ErrorKind::kInvalidInput) << bad;
  for (const std::string bad : {"../x", "/etc/passwd", "a/../b", "a//b", "a\\b", "a\tb", "", "./a"})
    EXPECT_THROW(validate_repo_file(bad, "test"), Error) << bad;
  EXPECT_NO_THROW(validate_repo_file("onnx/visual/model.onnx", "test"));
  EXPECT_THROW(validate_blob_name("../x", "test"), Error);
  EXPECT_THROW(validate_blob_name("a/b", "test"), Error);
  EXPECT_EQ(kind_of([] { parse_model_name(std::string(5000, 'a')); }), ErrorKind::kTooLarge);
  EXPECT_EQ(kind_of([] { parse_model_name("hf-hub:a/b", "openai"); }), ErrorKind::kInvalidInput);
}

}  // namespace
}  // namespace clip::hub
