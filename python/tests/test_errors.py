"""Bad input raises the documented Python exception with CLIP++'s message; nothing aborts."""
import numpy as np
import pytest
import torch

import clip_cpp
from conftest import LOCAL_FIXTURES, require_shared_fixtures


def test_missing_files_raise_file_not_found(tiny_model, tmp_path):
    model, _, preprocess = tiny_model
    missing = str(tmp_path / "no_such_image.png")
    with pytest.raises(FileNotFoundError, match="no_such_image.png"):
        preprocess(missing)
    with pytest.raises(FileNotFoundError, match="no_such_image.png"):
        model.embed_image_files([str(LOCAL_FIXTURES / "images" / "astronaut_224x224.png"), missing])
    with pytest.raises(FileNotFoundError, match="no_such_model"):
        clip_cpp.create_model(str(tmp_path / "no_such_model.safetensors"))


def test_unknown_model_names_raise_file_not_found_with_suggestions():
    with pytest.raises(FileNotFoundError, match="closest known: ViT-B/32"):
        clip_cpp.create_model("ViT-B-33", pretrained="openai")
    with pytest.raises(FileNotFoundError):
        clip_cpp.get_tokenizer("ViT-Q-99/no_such_tag")


def test_corrupt_images_raise_value_error(tiny_model, tmp_path):
    _, _, preprocess = tiny_model
    with pytest.raises(ValueError, match="empty"):
        preprocess(str(LOCAL_FIXTURES / "images" / "empty.png"))
    with pytest.raises(ValueError):
        preprocess(b"this is not an image")
    png = (LOCAL_FIXTURES / "images" / "chelsea_120x80.png").read_bytes()
    cut = tmp_path / "cut.png"
    cut.write_bytes(png[: len(png) // 2])
    with pytest.raises(ValueError, match="cut.png"):
        preprocess(str(cut))


def test_truncated_jpeg_is_rejected_as_pillow_does(tiny_model):
    fx = require_shared_fixtures()
    with pytest.raises(ValueError, match="truncated"):
        tiny_model[2](str(fx / "images" / "chelsea_truncated.jpg"))


def test_wrong_shapes_and_dtypes_raise_value_error(tiny_model):
    model = tiny_model[0]
    with pytest.raises(ValueError, match="float32"):
        model.encode_image(torch.zeros(1, 3, 32, 32, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"\[N, 3, 32, 32\]"):
        model.encode_image(torch.zeros(1, 3, 31, 32))
    with pytest.raises(ValueError, match="int64 or int32"):
        model.encode_text(torch.zeros(1, 77))
    with pytest.raises(ValueError, match=r"\[N, L\]"):
        model.encode_text(torch.zeros(77, dtype=torch.long))
    with pytest.raises(ValueError, match="token ids"):
        model.encode_text(torch.full((1, 77), 10**6, dtype=torch.long))
    with pytest.raises(ValueError, match="float32"):
        model(np.zeros((1, 3, 32, 32), np.float16), clip_cpp.tokenize(["a"]))
    with pytest.raises(TypeError):
        model.encode_image([[1.0, 2.0]])
    with pytest.raises(ValueError, match="batch_size"):
        model.embed_texts(["a"], batch_size=0)


def test_bad_images_and_options_raise_value_error(tiny_model):
    preprocess = tiny_model[2]
    with pytest.raises(ValueError, match="uint8"):
        preprocess(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ValueError, match="shape"):
        preprocess(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(clip_cpp.TooLargeError):  # refused from its size, before its bytes are looked at
        clip_cpp._core.ImageTransform(32, [0.5] * 3, [0.5] * 3).from_pixels("L", 20000, 20000, b"", None)
    with pytest.raises(ValueError, match="bytes of pixels"):
        clip_cpp._core.ImageTransform(32, [0.5] * 3, [0.5] * 3).from_pixels("RGB", 4, 4, b"\0" * 47, None)
    with pytest.raises(clip_cpp.UnsupportedError, match="mode"):
        clip_cpp._core.ImageTransform(32, [0.5] * 3, [0.5] * 3).from_pixels("YCbCr", 1, 1, b"\0" * 3, None)
    with pytest.raises(clip_cpp.UnsupportedError, match="interpolation"):
        clip_cpp.image_transform(32, False, interpolation="lanczos")
    with pytest.raises(TypeError):
        preprocess(12)


def test_bad_model_options_raise_value_error():
    checkpoint = str(LOCAL_FIXTURES / "models" / "tiny-vit-f16.safetensors")
    with pytest.raises(ValueError, match="fp16"):
        clip_cpp.create_model(checkpoint, precision="fp16")
    with pytest.raises(ValueError, match="tpu"):
        clip_cpp.create_model(checkpoint, device="tpu")
    with pytest.raises(ValueError, match="threads"):
        clip_cpp.create_model(checkpoint, threads=-1)


def test_a_failing_progress_callback_propagates_its_exception(tiny_model):
    def fail(done, total):
        raise KeyError("stop here")

    with pytest.raises(KeyError, match="stop here"):
        tiny_model[0].embed_texts(["a", "b"], batch_size=1, progress=fail)
