"""Tensors cross between Python and C++ without copies, on one libtorch."""
import os

import numpy as np
import torch

import clip_cpp
from clip_cpp import _core


def test_one_libtorch_in_the_process():
    # torch's and clip_cpp's libtorch_cpu.so must be the same file, mapped once.
    with open("/proc/self/maps") as f:
        paths = {os.path.realpath(line.split()[-1]) for line in f if "libtorch_cpu.so" in line}
    assert len(paths) == 1, paths


def test_a_result_is_the_memory_cpp_wrote():
    tensor, address = _core._filled_in_cpp(1000)
    assert isinstance(tensor, torch.Tensor)
    assert tensor.data_ptr() == address
    assert torch.equal(tensor, torch.arange(1000, dtype=torch.float32))
    # Made under InferenceMode in C++, usable as any tensor in Python: in place, in autograd.
    assert not tensor.is_inference()
    tensor /= 2
    w = torch.ones(1000, requires_grad=True)
    (tensor * w).sum().backward()
    assert torch.equal(w.grad, tensor)


def test_an_argument_is_the_memory_python_holds():
    x = torch.randn(8, 3, 32, 32)
    assert _core._data_address(x) == x.data_ptr()
    array = np.zeros((4, 77), dtype=np.int64)
    assert _core._data_address(torch.from_numpy(array)) == array.__array_interface__["data"][0]


def test_features_can_be_normalized_in_place_as_openai_readme_does(tiny_model):
    model, _, preprocess = tiny_model
    image = torch.stack([preprocess(np.full((40, 50, 3), 128, np.uint8))])
    features = model.encode_image(image)
    assert not features.is_inference()
    features /= features.norm(dim=-1, keepdim=True)
    assert torch.allclose(features.norm(dim=-1), torch.ones(1))
    text = model.encode_text(clip_cpp.tokenize(["a cat"]))
    text /= text.norm(dim=-1, keepdim=True)


def test_numpy_results_share_the_tensor_memory(tiny_model):
    model = tiny_model[0]
    tokens = clip_cpp.tokenize(["a cat", "a dog"]).numpy()
    out = model.encode_text(tokens)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == (2, model.embed_dim)
    # .numpy() of the returned tensor: the array views the memory C++ wrote (it does not own it).
    assert not out.flags["OWNDATA"]
