"""open_clip's names and shapes, and the C++ fast paths agreeing with the per-item API."""
import numpy as np
import torch

import clip_cpp
from conftest import LOCAL_FIXTURES, fixtures, load_json, peer


def test_names():
    assert "ViT-B-32" in clip_cpp.list_models() and "RN50" in clip_cpp.list_models()
    assert ("ViT-B-32", "laion2b_s34b_b79k") in clip_cpp.list_pretrained()
    assert "ViT-B/32" in clip_cpp.list_openai_models()


def test_tokenizer_shapes():
    tokenizer = clip_cpp.get_tokenizer("ViT-B-32")
    one = tokenizer("a photo of a cat")
    assert one.dtype == torch.long and tuple(one.shape) == (1, 77)
    assert one[0, 0] == tokenizer.sot_token_id and tokenizer.eot_token_id in one[0].tolist()
    assert tuple(tokenizer(["a", "b", "c"], context_length=16).shape) == (3, 16)
    long = tokenizer(["word " * 200])
    assert long[0, -1] == tokenizer.eot_token_id  # truncated, end token last (open_clip)
    assert tokenizer.decode(tokenizer.encode("a photo of a cat")) == "a photo of a cat "
    assert torch.equal(clip_cpp.tokenize(["a cat"]), tokenizer(["a cat"]))


def test_model_and_transforms(tiny_model):
    model, preprocess_train, preprocess_val = tiny_model
    assert model.eval() is model
    assert model.visual.image_size == (32, 32)  # open_clip's ViT: a tuple
    assert model.logit_scale.dim() == 0
    image = preprocess_val(str(LOCAL_FIXTURES / "images" / "chelsea_120x80.png"))
    assert image.dtype == torch.float32 and tuple(image.shape) == (3, 32, 32)
    text = clip_cpp.tokenize(["a cat", "a dog"])
    image_features, text_features, scale = model(image.unsqueeze(0), text)
    assert tuple(image_features.shape) == (1, model.embed_dim) and tuple(text_features.shape) == (2, model.embed_dim)
    assert torch.allclose(image_features.norm(dim=-1), torch.ones(1)) and abs(scale.item() - model.logit_scale.exp().item()) < 1e-6
    none_image, only_text, _ = model(text=text)
    assert none_image is None and torch.allclose(only_text, text_features)
    assert torch.allclose(model.encode_text(text, normalize=True), text_features)


def test_training_transform_follows_torch_seed(tiny_model):
    preprocess_train = tiny_model[1]
    path = str(LOCAL_FIXTURES / "images" / "astronaut_224x224.png")
    torch.manual_seed(1)
    a = preprocess_train(path)
    torch.manual_seed(1)
    b = preprocess_train(path)
    crops = {preprocess_train(path).sum().item() for _ in range(8)}
    assert torch.equal(a, b) and tuple(a.shape) == (3, 32, 32)
    assert len(crops) > 1  # random crops differ


def test_embed_files_and_texts_equal_the_per_item_api(tiny_model):
    model, _, preprocess = tiny_model
    paths = [str(LOCAL_FIXTURES / "images" / f) for f in ("astronaut_224x224.png", "chelsea_120x80.png")] * 3
    fast = model.embed_image_files(paths, batch_size=4)
    slow = model.encode_image(torch.stack([preprocess(p) for p in paths]))
    assert (fast - slow).abs().max().item() <= 1e-5
    texts = [f"a photo of {i} cats" for i in range(10)]
    fast_text = model.embed_texts(texts, batch_size=3, normalize=True)
    assert (fast_text - model.encode_text(clip_cpp.tokenize(texts), normalize=True)).abs().max().item() <= 1e-5
    calls = []
    model.embed_texts(texts, batch_size=4, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(4, 10), (8, 10), (10, 10)]
    assert tuple(model.embed_texts([]).shape) == (0, model.embed_dim)


def test_zero_shot_classifier_is_the_normalized_template_mean(tiny_model):
    model = tiny_model[0]
    tokenizer = clip_cpp.get_tokenizer()
    classes, templates = ["cat", "dog", "car"], ["a photo of a {}.", lambda c: f"a drawing of a {c}."]
    weights = clip_cpp.zero_shot_classifier(model, tokenizer, classes, templates)
    assert tuple(weights.shape) == (model.embed_dim, 3)
    # open_clip's computation, on the peer when it is here, else on encode_text.
    prompts = [[f"a photo of a {c}.", f"a drawing of a {c}."] for c in classes]
    try:
        torch_clip = peer()
        checkpoint = fixtures() / "models" / "tiny-vit-f16.safetensors"
        theirs = torch_clip.CLIP(**load_json(fixtures() / "models" / "tiny-vit-f16.config.json")).eval()
        state = torch_clip.load_safetensors(str(checkpoint))
        torch_clip.load_state_dict(theirs, {k: v.float() for k, v in state.items()})
        encode = theirs.encode_text
    except BaseException:  # noqa: BLE001 (pytest's skip when the peer is absent)
        encode = model.encode_text
    with torch.no_grad():
        want = []
        for p in prompts:
            e = encode(tokenizer(p))
            e = (e / e.norm(dim=-1, keepdim=True)).mean(dim=0)
            want.append(e / e.norm())
    assert (weights - torch.stack(want, dim=1)).abs().max().item() <= 1e-5


def test_numpy_images_and_pil_modes_preprocess(tiny_model):
    from PIL import Image
    preprocess = tiny_model[2]
    rgb = np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    from_numpy = preprocess(rgb)
    assert torch.equal(from_numpy, preprocess(Image.fromarray(rgb)))
    grey = Image.fromarray(rgb).convert("L")
    assert torch.equal(preprocess(grey), preprocess(np.asarray(grey)))
    for mode in ("1", "P", "LA", "RGBA", "CMYK", "I", "I;16", "F", "YCbCr"):
        out = preprocess(Image.fromarray(rgb).convert(mode) if mode != "I;16" else grey.convert("I").convert("I;16"))
        assert tuple(out.shape) == (3, 32, 32), mode
