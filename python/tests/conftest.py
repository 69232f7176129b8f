"""Shared helpers of the clip_cpp tests: where the data is, the PyTorch peer, the fixture models.

Core tests use tests/data (shipped with the repository); tests that need ../shared (the full
fixtures, the peer torch_clip.py) skip themselves, naming what is missing."""
import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest

SOURCE_DIR = Path(os.environ.get("CLIP_SOURCE_DIR", Path(__file__).resolve().parents[2]))
SHARED_DIR = Path(os.environ.get("CLIP_SHARED_DIR", SOURCE_DIR.parent / "shared"))
LOCAL_FIXTURES = SOURCE_DIR / "tests" / "data" / "fixtures"


def shared_fixtures():
    """../shared/fixtures (or $CLIP_FIXTURES), or None."""
    d = Path(os.environ.get("CLIP_FIXTURES") or SHARED_DIR / "fixtures")
    return d if (d / "README.md").exists() else None


def fixtures():
    """The shared fixtures when present, else the partial mirror in tests/data/fixtures."""
    return shared_fixtures() or LOCAL_FIXTURES


def require_shared_fixtures():
    d = shared_fixtures()
    if d is None:
        pytest.skip("shared fixtures not found (set CLIP_FIXTURES or place ../shared/fixtures)")
    return d


def load_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def load_npy(path):
    return np.load(path)


_peer = None


def peer():
    """The PyTorch peer ../shared/peer/torch_clip.py, imported by path into this process."""
    global _peer
    path = SHARED_DIR / "peer" / "torch_clip.py"
    if not path.exists():
        pytest.skip(f"the PyTorch peer is not there ({path}; place ../shared/peer)")
    if _peer is None:
        spec = importlib.util.spec_from_file_location("torch_clip", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _peer = module
    return _peer


def model_files(name):
    """(checkpoint, config) of a fixture model; skips when it is not in the fixtures at hand."""
    base = fixtures() / "models" / name
    if not Path(str(base) + ".config.json").exists():
        pytest.skip(f"fixture model {name} needs ../shared/fixtures (set CLIP_FIXTURES)")
    return Path(str(base) + ".safetensors"), Path(str(base) + ".config.json")


@pytest.fixture(scope="session")
def tiny_model():
    """tiny-vit-f16 (in tests/data): model, preprocess_train, preprocess_val."""
    import clip_cpp
    checkpoint, config = model_files("tiny-vit-f16")
    return clip_cpp.create_model_and_transforms(str(checkpoint), config=str(config), threads=2)
