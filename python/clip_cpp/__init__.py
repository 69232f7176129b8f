"""CLIP++ from Python, with open_clip's names and shapes (docs/python.md).

    import clip_cpp
    model, _, preprocess = clip_cpp.create_model_and_transforms("ViT-B-32", pretrained="laion2b_s34b_b79k")
    tokenizer = clip_cpp.get_tokenizer("ViT-B-32")
    image = preprocess(Image.open("cat.jpg")).unsqueeze(0)      # torch.FloatTensor [1, 3, 224, 224]
    text = tokenizer(["a cat", "a dog"])                        # torch.LongTensor [2, 77]
    image_features, text_features, scale = model(image, text)   # normalized, and logit_scale.exp()
    probs = (scale * image_features @ text_features.T).softmax(dim=-1)

Tensors are PyTorch's own (the same libtorch runs both sides) and cross without copies; numpy
arrays are accepted where tensors are and give numpy arrays back. The computations run in C++
with the GIL released. Errors raise FileNotFoundError, ValueError (TooLargeError and
UnsupportedError are ValueErrors), OSError or RuntimeError with CLIP++'s message.
"""
import os

import numpy as np
import torch  # first: the extension hands out torch.Tensor objects, so torch must be initialised

from . import _core
from ._core import TooLargeError, UnsupportedError, keep_freed_memory_for_reuse, set_threads

__all__ = [
    "CLIP", "Preprocess", "Tokenizer", "TooLargeError", "UnsupportedError", "build_zero_shot_classifier",
    "create_model", "create_model_and_transforms", "create_model_from_pretrained", "get_tokenizer",
    "OPENAI_DATASET_MEAN", "OPENAI_DATASET_STD", "image_transform", "keep_freed_memory_for_reuse", "list_models", "list_openai_models", "list_pretrained", "set_threads",
    "tokenize", "zero_shot_classifier",
]

# open_clip's names for CLIP's normalization.
OPENAI_DATASET_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_DATASET_STD = (0.26862954, 0.26130258, 0.27577711)

# Pillow modes the C++ side resizes as Pillow does (the rest are converted to RGB first).
_NATIVE_MODES = ("1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I")


def list_models():
    """Architectures CLIP++ knows by name (open_clip's list_models(), restricted to CLIP models)."""
    return _core.list_models()


def list_pretrained():
    """(architecture, tag) pairs, as open_clip.list_pretrained()."""
    return _core.list_pretrained()


def list_openai_models():
    """OpenAI's names (clip.available_models())."""
    return _core.openai_names()


# ----------------------------------------------------------------------------------- tokenizer
class Tokenizer:
    """CLIP's tokenizer: tokenizer(texts, context_length=77) -> torch.LongTensor [N, context_length],
    the rows of OpenAI's clip.tokenize / open_clip's SimpleTokenizer (over-long texts truncated,
    the last id the end token)."""

    def __init__(self, core=None, context_length=77):
        self._core = core if core is not None else _core.Tokenizer()
        self.context_length = context_length

    def __call__(self, texts, context_length=None):
        if isinstance(texts, str):
            texts = [texts]
        return self._core.tokenize(list(texts), context_length or self.context_length, True, 0)

    def encode(self, text):
        """Token ids of one text, without start and end tokens."""
        return self._core.encode(text)

    def decode(self, ids):
        if isinstance(ids, (torch.Tensor, np.ndarray)):
            ids = ids.tolist()
        return self._core.decode(list(ids))

    @property
    def sot_token_id(self):
        return self._core.sot_token_id

    @property
    def eot_token_id(self):
        return self._core.eot_token_id

    @property
    def vocab_size(self):
        return self._core.vocab_size

    def __repr__(self):
        return f"clip_cpp.Tokenizer(vocab_size={self.vocab_size}, context_length={self.context_length})"


def get_tokenizer(model_name="", context_length=None):
    """The tokenizer of a model name (open_clip's get_tokenizer). Every model CLIP++ runs by name
    uses OpenAI's vocabulary; an unknown name raises FileNotFoundError. For a checkpoint trained
    with a smaller vocabulary, use model.tokenizer."""
    # An architecture alone (open_clip's usage) or a checkpoint path needs no further check.
    known = {m.lower() for m in _core.list_models()}
    if model_name and model_name.lower() not in known and not os.path.exists(model_name):
        _core.check_model_name(model_name)
    return Tokenizer(_core.Tokenizer(), context_length or 77)


_default_tokenizer = None


def tokenize(texts, context_length=77):
    """open_clip.tokenize / clip.tokenize."""
    global _default_tokenizer
    if _default_tokenizer is None:
        _default_tokenizer = Tokenizer()
    return _default_tokenizer(texts, context_length)


# ---------------------------------------------------------------------------------- preprocess
def _palette_768(image):
    """The image's RGB palette as 768 bytes; entries it does not define are grey (i, i, i), as in
    Pillow's own palette."""
    palette = bytes(image.getpalette("RGB") or b"")[:768]
    entries = len(palette) // 3
    return palette[: entries * 3] + bytes(v for i in range(entries, 256) for v in (i, i, i))


class Preprocess:
    """A model's image transform: preprocess(image) -> torch.FloatTensor [3, H, W].

    image: a PIL image (resized in its own mode, as open_clip's transform does, then
    convert("RGB")), a path (str or os.PathLike), encoded bytes, or a uint8 numpy array
    (H x W grey, H x W x 3 RGB, H x W x 4 RGBA). Pillow-exact. Training transforms draw their
    random crop from torch's generator (torch.manual_seed makes them repeatable)."""

    def __init__(self, core):
        self._core = core

    @property
    def size(self):
        return self._core.size

    def _seed(self):
        return int(torch.randint(0, 2**62, ()).item()) if self._core.train else 0

    def __call__(self, image):
        seed = self._seed()
        if isinstance(image, (str, os.PathLike)):
            return self._core.from_file(os.fspath(image), seed)
        if isinstance(image, (bytes, bytearray, memoryview)):
            return self._core.from_bytes(bytes(image), "image bytes", seed)
        if isinstance(image, np.ndarray):
            return self._from_array(image, seed)
        if hasattr(image, "mode") and hasattr(image, "tobytes"):
            return self._from_pil(image, seed)
        raise TypeError(f"preprocess: expected a PIL image, a path, bytes or a uint8 numpy array, "
                        f"found {type(image).__name__}")

    def _from_pil(self, image, seed):
        mode = image.mode
        if mode.startswith("I;16"):
            image, mode = image.convert("I"), "I"  # the same values, 32-bit
        elif mode not in _NATIVE_MODES:
            image, mode = image.convert("RGB"), "RGB"  # docs/python.md: modes resized after conversion
        width, height = image.size
        # Mode 1 as one byte a pixel (0 or 255), the layout the C++ side takes.
        pixels = image.tobytes("raw", "L") if mode == "1" else image.tobytes()
        palette = _palette_768(image) if mode == "P" else None
        return self._core.from_pixels(mode, width, height, pixels, palette, "PIL image", seed)

    def _from_array(self, array, seed):
        if array.dtype != np.uint8:
            raise ValueError(f"preprocess: a numpy image must be uint8, found {array.dtype}")
        if array.ndim == 2:
            mode = "L"
        elif array.ndim == 3 and array.shape[2] in (1, 3, 4):
            mode = {1: "L", 3: "RGB", 4: "RGBA"}[array.shape[2]]
        else:
            raise ValueError(f"preprocess: a numpy image must be H x W, H x W x 3 or H x W x 4, "
                             f"found shape {array.shape}")
        height, width = array.shape[:2]
        return self._core.from_pixels(mode, width, height, np.ascontiguousarray(array).tobytes(), None,
                                      "numpy image", seed)

    def __repr__(self):
        kind = "train" if self._core.train else "val"
        return f"clip_cpp.Preprocess({kind}, size={self.size})"


def image_transform(image_size, is_train, mean=None, std=None, resize_mode=None, interpolation=None, fill_color=0):
    """open_clip's image_transform: a Preprocess for evaluation (resize, crop, convert("RGB"),
    normalize) or training (RandomResizedCrop with scale (0.9, 1.0), convert("RGB"), normalize)."""
    if isinstance(image_size, (tuple, list)):
        if len(image_size) != 2 or image_size[0] != image_size[1]:
            raise ValueError(f"image_transform: square sizes only, found {tuple(image_size)}")
        image_size = image_size[0]
    return Preprocess(_core.ImageTransform(
        int(image_size), list(mean or OPENAI_DATASET_MEAN), list(std or OPENAI_DATASET_STD),
        interpolation or "bicubic", resize_mode or "shortest", int(fill_color), bool(is_train)))


# --------------------------------------------------------------------------------------- model
def _tensor_in(x, what):
    """A torch.Tensor over x's memory, and whether x was a numpy array (results go back as numpy)."""
    if isinstance(x, torch.Tensor):
        return x, False
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(x)), True
    raise TypeError(f"{what}: expected a torch.Tensor or numpy.ndarray, found {type(x).__name__}")


class Visual:
    """model.visual: what open_clip code reads from the image tower."""

    def __init__(self, core):
        size = core.image_size
        # open_clip: a tuple for the ViT tower (to_2tuple), an int for ModifiedResNet.
        self.image_size = (size, size) if core.is_vit else size
        self.output_dim = core.embed_dim
        self.preprocess_cfg = core.preprocess_cfg


class CLIP:
    """A CLIP model (inference). open_clip's methods: encode_image, encode_text, forward (call),
    logit_scale, visual.image_size, eval(); plus the C++ fast paths embed_image_files and
    embed_texts (decoding, preprocessing and tokenizing on the C++ thread pool)."""

    def __init__(self, core):
        self._core = core
        self.visual = Visual(core)
        self.context_length = core.context_length
        self.vocab_size = core.vocab_size
        self.embed_dim = core.embed_dim

    @property
    def logit_scale(self):
        """The learned temperature as stored: a log (use logit_scale.exp())."""
        return torch.tensor(self._core.logit_scale)

    @property
    def tokenizer(self):
        """The model's own tokenizer (OpenAI's vocabulary cut to the model's vocab_size)."""
        return Tokenizer(self._core.tokenizer, self.context_length)

    @property
    def precision(self):
        """"fp32", "bf16" or "int8"."""
        return self._core.precision

    @property
    def int8_only(self):
        """Whether the model was loaded int8-only (precision "int8" on a file from `clip convert
        --dtype int8`: int8 weights without float copies; it runs int8 only)."""
        return self._core.int8_only

    def encode_image(self, image, normalize=False):
        """Image features [N, embed_dim] of preprocessed images float32 [N, 3, H, W]."""
        x, as_numpy = _tensor_in(image, "encode_image: image")
        out = self._core.encode_image(x, normalize)
        return out.numpy() if as_numpy else out

    def encode_text(self, text, normalize=False):
        """Text features [N, embed_dim] of token rows int64/int32 [N, L]."""
        t, as_numpy = _tensor_in(text, "encode_text: text")
        out = self._core.encode_text(t, normalize)
        return out.numpy() if as_numpy else out

    def forward(self, image=None, text=None):
        """(image_features, text_features, logit_scale.exp()), features normalized; a feature is
        None when its input is, as in open_clip."""
        if image is not None and text is not None:
            x, x_numpy = _tensor_in(image, "model: image")
            t, t_numpy = _tensor_in(text, "model: text")
            i, f, scale = self._core.forward(x, t)
            return (i.numpy() if x_numpy else i), (f.numpy() if t_numpy else f), scale
        image_features = self.encode_image(image, normalize=True) if image is not None else None
        text_features = self.encode_text(text, normalize=True) if text is not None else None
        return image_features, text_features, self.logit_scale.exp()

    __call__ = forward

    def eval(self):
        """Accepted for open_clip code: the model is always in inference mode."""
        return self

    def train(self, mode=True):
        if mode:
            raise NotImplementedError("clip_cpp models run inference only; train with `clip train` (docs/train.md)")
        return self

    def embed_image_files(self, paths, batch_size=32, normalize=False, progress=None):
        """Features [N, embed_dim] of image files, decoded and preprocessed on the C++ thread pool
        with the model's preprocessing. progress(done, total) is called after each batch."""
        return self._core.embed_image_files([os.fspath(p) for p in paths], batch_size, normalize, progress)

    def embed_texts(self, texts, batch_size=256, normalize=False, progress=None):
        """Features [N, embed_dim] of texts, tokenized in C++ (over-long texts truncated)."""
        if isinstance(texts, str):
            texts = [texts]
        return self._core.embed_texts(list(texts), batch_size, normalize, progress)

    def __repr__(self):
        return (f"clip_cpp.CLIP({self._core.source}, image_size={self._core.image_size}, "
                f"embed_dim={self.embed_dim}, precision={self.precision})")


def create_model(model_name, pretrained=None, precision="fp32", device="cpu", threads=None, cache_dir=None,
                 config=None):
    """Loads a model by name or path, as `clip --model` takes them (docs/models.md): a checkpoint
    file or folder, OpenAI's names (ViT-B/32), open_clip's (ViT-B-32 with pretrained=TAG, or
    ViT-B-32/TAG), hf-hub:ORG/REPO, local-dir:PATH and the spellings of clip-retrieval,
    clip-as-service and immich. pretrained may also be a checkpoint path (then loaded as is).
    precision: "fp32", "bf16" (fp32 weights, bf16 compute under autocast) or "int8" (CPU; a file from
    `clip convert --dtype int8` then loads int8-only, docs/models.md). threads: libtorch's
    intra-op threads (process-wide) and the decoding pool; None: all cores."""
    name, tag = model_name, pretrained or ""
    if tag and os.path.exists(tag):
        name, tag = tag, ""
    core = _core.load_model(os.fspath(name), tag, precision, device, threads, cache_dir or "", config or "")
    return CLIP(core)


def _transforms(model):
    """(preprocess_train, preprocess_val) with the model's preprocess_cfg."""
    cfg = model.visual.preprocess_cfg
    return tuple(image_transform(cfg["size"], is_train, cfg["mean"], cfg["std"], cfg["resize_mode"],
                                 cfg["interpolation"], cfg["fill_color"]) for is_train in (True, False))


def create_model_and_transforms(model_name, pretrained=None, precision="fp32", device="cpu", threads=None,
                                cache_dir=None, config=None):
    """(model, preprocess_train, preprocess_val), as open_clip's."""
    model = create_model(model_name, pretrained, precision, device, threads, cache_dir, config)
    train, val = _transforms(model)
    return model, train, val


def create_model_from_pretrained(model_name, pretrained=None, precision="fp32", device="cpu", threads=None,
                                 cache_dir=None, config=None, return_transform=True):
    """(model, preprocess), as open_clip's (model alone with return_transform=False)."""
    model = create_model(model_name, pretrained, precision, device, threads, cache_dir, config)
    if not return_transform:
        return model
    return model, _transforms(model)[1]


def build_zero_shot_classifier(model, tokenizer, classnames, templates, num_classes_per_batch=None, device=None,
                               use_tqdm=False):
    """Zero-shot weights [embed_dim, len(classnames)]: for each class, the mean of its prompts'
    normalized text features, renormalized (open_clip's build_zero_shot_classifier). templates:
    strings with "{}" (str.format) or callables of the class name. The texts are tokenized and
    encoded in C++; num_classes_per_batch, device and use_tqdm are accepted for open_clip code."""
    classnames, templates = list(classnames), list(templates)
    if not classnames or not templates:
        raise ValueError("zero-shot classifier: needs at least one class name and one template")
    prompts = [t.format(c) if isinstance(t, str) else t(c) for c in classnames for t in templates]
    core_tokenizer = tokenizer._core if isinstance(tokenizer, Tokenizer) else model._core.tokenizer
    return model._core.zero_shot_weights(core_tokenizer, prompts, len(classnames))


zero_shot_classifier = build_zero_shot_classifier
