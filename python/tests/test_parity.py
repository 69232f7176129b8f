"""clip_cpp against the ground truth (the fixtures: outputs of OpenAI's code) and beside the
PyTorch peer in the same process: tokenizer rows, preprocessed pixels, features of every fixture
model and checkpoint format, and model(image, text) logits."""
import warnings

import numpy as np
import pytest
import torch

import clip_cpp
from conftest import fixtures, load_json, load_npy, model_files, peer, require_shared_fixtures

# Features within 1e-5 of the reference, relative to the largest |value| when it exceeds 1 (the
# ResNet's image features reach |x| = 16); cosine >= 0.99999.
FEATURE_TOLERANCE = 1e-5
MODELS = ["tiny-vit", "tiny-vit-f16", "tiny-rn-f16"]
# Every container of the same weights (the config beside it: head counts cannot be inferred).
FORMATS = [("tiny-vit", ".safetensors"), ("tiny-vit-f16", ".safetensors"), ("tiny-vit-f16", ".pt"),
           ("tiny-vit-f16", ".jit.pt"), ("tiny-vit-f16", ".hf.safetensors"), ("tiny-rn-f16", ".safetensors"),
           ("tiny-rn-f16", ".pt"), ("tiny-rn-f16", ".jit.pt")]


def assert_close(got, want, label):
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, label
    bound = FEATURE_TOLERANCE * max(1.0, np.abs(want).max())
    diff = np.abs(got - want).max()
    assert diff <= bound, f"{label}: max|diff| {diff:.3g} > {bound:.3g}"
    g, w = got.reshape(len(got), -1), want.reshape(len(want), -1)
    cos = (g * w).sum(1) / np.linalg.norm(g, axis=1) / np.linalg.norm(w, axis=1)
    assert cos.min() >= 0.99999, f"{label}: cosine {cos.min()}"


# ------------------------------------------------------------------------------------- tokenizer
def test_tokenizer_rows_equal_the_reference_captions():
    ref = fixtures() / "ref" / "tiny-vit-f16"
    captions = load_json(ref / "index.json")["captions"]
    rows = clip_cpp.get_tokenizer("ViT-B-32")(captions)
    assert rows.dtype == torch.int64 and tuple(rows.shape) == (len(captions), 77)
    assert np.array_equal(rows.numpy(), load_npy(ref / "text_tokens.npy").astype(np.int64))


def test_tokenizer_rows_equal_openai_on_the_corpus_and_the_peer_where_ftfy_is_idle():
    fx = require_shared_fixtures()
    entries = load_json(fx / "tokenizer" / "corpus.json")["entries"]
    texts = [e["text"] for e in entries]
    rows = clip_cpp.tokenize(texts).tolist()
    assert [r == e["row77"] for r, e in zip(rows, entries)] == [True] * len(entries)
    # The peer has no ftfy: it agrees on the strings ftfy leaves alone.
    plain = [i for i, e in enumerate(entries) if not e["ftfy_changes_ids"]]
    peer_rows = peer().Tokenizer(str(fx / "vocab" / "bpe_simple_vocab_16e6.txt.gz")).tokenize([texts[i] for i in plain])
    assert peer_rows.tolist() == [rows[i] for i in plain]


# ------------------------------------------------------------------------------------ preprocess
def reference_images(resolution):
    """(file path, reference float [3, n, n]) of the readable fixture images at a resolution."""
    fx = fixtures()
    if not (fx / "pre" / str(resolution) / "index.json").exists():
        return []
    index = load_json(fx / "pre" / str(resolution) / "index.json")
    batch = load_npy(fx / index["batch"])
    return [(fx / "images" / e["file"], batch[e["row"]]) for e in index["order"] if (fx / "images" / e["file"]).exists()]


@pytest.mark.parametrize("resolution", [32, 64])
def test_preprocess_equals_the_reference_pixels_from_files_bytes_and_pil(resolution):
    from PIL import Image
    cases = reference_images(resolution)
    if not cases:
        pytest.skip(f"no fixture images at {resolution} px (needs ../shared/fixtures)")
    transform = clip_cpp.image_transform(resolution, is_train=False)
    warnings.filterwarnings("ignore", message="Palette images with Transparency")
    for path, want in cases:
        from_file = transform(path)
        assert from_file.dtype == torch.float32 and tuple(from_file.shape) == (3, resolution, resolution)
        assert np.array_equal(from_file.numpy(), want), f"{path.name} from its file"
        assert np.array_equal(transform(path.read_bytes()).numpy(), want), f"{path.name} from bytes"
        with Image.open(path) as img:  # Pillow decodes; resized in its own mode as open_clip does
            assert np.array_equal(transform(img).numpy(), want), f"{path.name} as a PIL image in mode {img.mode}"


def test_preprocess_beside_the_peer_same_process():
    fx = require_shared_fixtures()
    torch_clip = peer()
    transform = clip_cpp.image_transform(64, is_train=False)
    warnings.filterwarnings("ignore", message="Palette images with Transparency")
    for e in load_json(fx / "images" / "index.json")["images"]:
        if e["expect_error"] or e["format"] != "PNG":
            continue  # JPEG: the two decoders may differ by a level (fixtures README); PNG is exact
        path = fx / "images" / e["file"]
        assert torch.equal(transform(path), torch_clip.preprocess(str(path), 64)), e["file"]


# ----------------------------------------------------------------------------------------- models
def load_fixture_model(name, ext):
    checkpoint, config = model_files(name)
    path = checkpoint.with_name(name + ext)
    if not path.exists():
        pytest.skip(f"{path.name} needs ../shared/fixtures")
    if ext == ".hf.safetensors":  # the HF weights sit beside the folder holding config.json
        config = checkpoint.with_name(name + ".hf") / "config.json"
    return clip_cpp.create_model(str(path), config=str(config), threads=2)


@pytest.mark.parametrize("name,ext", FORMATS, ids=[n + e for n, e in FORMATS])
def test_features_and_logits_match_the_reference(name, ext):
    model = load_fixture_model(name, ext).eval()
    ref = fixtures() / "ref" / name
    index = load_json(ref / "index.json")
    images = load_npy(fixtures() / index["image_input"])
    tokens = load_npy(ref / "text_tokens.npy")  # int32, as stored
    assert_close(model.encode_image(torch.from_numpy(images)), load_npy(ref / "image_features.npy"), "image features")
    assert_close(model.encode_text(torch.from_numpy(tokens)), load_npy(ref / "text_features.npy"), "text features")
    # numpy in, numpy out
    assert isinstance(model.encode_text(tokens), np.ndarray)
    image_features, text_features, scale = model(torch.from_numpy(images), torch.from_numpy(tokens).long())
    logits = (scale * image_features @ text_features.T).numpy()
    assert abs(model.logit_scale.item() - index["logit_scale"]) <= 1e-6
    assert np.abs(logits - load_npy(ref / "logits_per_image.npy")).max() <= 1e-4


@pytest.mark.parametrize("name", MODELS)
def test_model_call_equals_the_peer_in_the_same_process(name):
    torch_clip = peer()
    checkpoint, config = model_files(name)
    ours = clip_cpp.create_model(str(checkpoint), config=str(config), threads=2)
    theirs = torch_clip.CLIP(**load_json(config)).eval()
    state = torch_clip.load_safetensors(str(checkpoint))
    torch_clip.load_state_dict(theirs, {k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    ref = fixtures() / "ref" / name
    images = torch.from_numpy(load_npy(fixtures() / load_json(ref / "index.json")["image_input"]))
    tokens = clip_cpp.get_tokenizer()(load_json(ref / "index.json")["captions"])
    with torch.no_grad():
        want_logits, _ = theirs(images, tokens)
        want_image, want_text = theirs.encode_image(images), theirs.encode_text(tokens)
    image_features, text_features, scale = ours(images, tokens)
    assert_close(ours.encode_image(images), want_image, "image features")
    assert_close(ours.encode_text(tokens), want_text, "text features")
    assert (scale * image_features @ text_features.T - want_logits).abs().max().item() <= 1e-4
